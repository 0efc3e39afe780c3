"""The probe's first step, ``GET /models``, against a stub endpoint: no server needed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from llm_mia.backends.remote.capabilities import probe, served_models
from llm_mia.backends.remote.client import RemoteError


class ListingOnly:
    """An endpoint that answers ``GET /models`` with a fixed listing and nothing else."""

    def __init__(self, listing: dict[str, Any]) -> None:
        self.listing = listing
        self.settings = SimpleNamespace(root="http://127.0.0.1:9/v1")

    def get(self, path: str) -> dict[str, Any]:
        assert path == "models"
        return self.listing


def test_entries_without_a_model_id_are_not_taken_for_served_models() -> None:
    listing = {"data": [{"id": "served-a"}, {"object": "model"}, {"id": 7}, "not an object", {"id": "served-b"}]}
    assert served_models(ListingOnly(listing)) == ["served-a", "served-b"]


def test_a_model_not_in_a_listing_with_an_id_less_entry_is_refused_naming_what_is_served() -> None:
    listing = {"data": [{"id": "served-a"}, {"object": "model"}]}
    with pytest.raises(RemoteError, match=r"'other' is not served .*it serves: served-a \(pass one"):
        probe(ListingOnly(listing), "other")
