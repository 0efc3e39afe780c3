"""Verbatim overlap between the suspect work and the controls, on real text (the WikiMIA file)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from llm_mia.stats.overlap import WINDOW, K, fingerprints, normalise, shared_passages, window_hashes

WIKIMIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikimia" / "256.jsonl"


@pytest.fixture(scope="module")
def texts() -> dict[int, list[str]]:
    if not WIKIMIA.is_file():  # as tests/test_labelled_sets.py: the copy lives in ../shared beside the project
        pytest.skip("the shared WikiMIA copy is not beside the project")
    rows = [json.loads(line) for line in WIKIMIA.read_text(encoding="utf-8").splitlines()]
    return {label: [r["input"] for r in rows if r["label"] == label] for label in (0, 1)}


def _passages(prefix: str, texts: list[str]) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=f"{prefix}{i}", text=text) for i, text in enumerate(texts)]


def test_rolling_hash_equals_the_hash_of_each_window_computed_alone():
    text = "zürich–1848:thesamewords,againandagain;thesamewords." * 3  # nothing normalisation changes
    alone = [int(window_hashes(text[i : i + 12], k=12)[0]) for i in range(len(text) - 11)]
    assert window_hashes(text, k=12).tolist() == alone
    assert len(set(alone)) == len({text[i : i + 12] for i in range(len(text) - 11)})  # no collision here


def test_separate_real_texts_share_nothing(texts):
    assert shared_passages(_passages("m", texts[1]), _passages("n", texts[0])) == []


def test_a_quotation_off_the_passage_grid_is_found_in_both_directions(texts):
    members, controls = _passages("m", texts[1][:50]), _passages("n", texts[0][:50])
    source = members[7].text
    quoted = f"As one account puts it, {source[37:-23]} Which is all we know."  # starts mid-word, ends early
    controls[3] = SimpleNamespace(id="n3", text=quoted)
    found = {(f.side, f.passage, f.other) for f in shared_passages(members, controls)}
    assert found == {("suspect", "m7", "n3"), ("control", "n3", "m7")}


def test_case_and_whitespace_do_not_hide_a_copy(texts):
    members, controls = _passages("m", texts[1][:20]), _passages("n", texts[0][:20])
    controls.append(SimpleNamespace(id="copy", text=members[2].text.upper().replace(" ", " \n\t ")))
    (first, second) = shared_passages(members, controls)
    assert (first.passage, first.other, first.containment) == ("m2", "copy", 1.0)
    assert (second.passage, second.other, second.containment) == ("copy", "m2", 1.0)


def test_a_shared_phrase_shorter_than_the_guarantee_is_not_a_copy(texts):
    members, controls = _passages("m", texts[1][:20]), _passages("n", texts[0][:20])
    phrase = normalise(members[4].text)[: K - 1]
    controls[0] = SimpleNamespace(id="n0", text=f"{controls[0].text} {phrase}")
    assert shared_passages(members, controls) == []


def test_winnowing_guarantee_a_span_of_k_plus_window_minus_one_shares_a_fingerprint(texts):
    rng = np.random.default_rng(0)
    for text in texts[1][:40]:
        norm = normalise(text)
        start = int(rng.integers(0, len(norm) - (K + WINDOW - 1)))
        span = norm[start : start + K + WINDOW - 1]
        assert fingerprints(span) & fingerprints(f"unrelated words first. {span} and after")
