"""Planting canaries into a work or a corpus, R copies each, with a log of where every copy went.

Modes: ``append`` (copies after the text, each its own paragraph), ``paragraphs`` (copies between paragraphs
of the text at seeded random places; a text with one paragraph gets them at its end), and ``documents`` (a
JSONL corpus: each copy becomes a new document line after the corpus's own). The source is never changed; the
planted copy and the log are written only when everything succeeded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.errors import InputError

MODES = ("append", "paragraphs", "documents")


def plant_canaries(
    record: dict[str, Any], source: Path, output: Path, *, repetitions: int, mode: str = "paragraphs", seed: int = 0
) -> list[dict[str, Any]]:
    """Write ``source`` with every canary of ``record`` planted ``repetitions`` times to ``output``; returns the
    log: one entry per copy (canary id, copy number, output file, and character offset or line number)."""
    if mode not in MODES:
        raise InputError(f"--mode {mode!r}: valid are {', '.join(MODES)}")
    if repetitions < 1:
        raise InputError(f"--repetitions {repetitions}: plant each canary at least once")
    if not source.is_file():
        raise InputError(f"{source}: no such file to plant into")
    if output.exists():
        raise InputError(f"{output} exists: write the planted copy to a new file")
    copies = [(c["id"], r, c["text"]) for c in record["canaries"] for r in range(repetitions)]
    order = np.random.default_rng(seed).permutation(len(copies))
    copies = [copies[i] for i in order]
    text = source.read_text(encoding="utf-8")
    if mode == "documents":
        planted, log = _as_documents(text, copies, source, output)
    else:
        planted, log = _into_text(text, copies, output, mode, seed)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.tmp")
    staging.write_text(planted, encoding="utf-8")
    staging.replace(output)
    return log


def _into_text(
    text: str, copies: list[tuple[str, int, str]], output: Path, mode: str, seed: int
) -> tuple[str, list[dict[str, Any]]]:
    paragraphs = [p for p in text.strip("\n").split("\n\n")]
    slots: dict[int, list[tuple[str, int, str]]] = {}
    rng = np.random.default_rng([seed, 2])
    for copy in copies:
        after = len(paragraphs) if mode == "append" or len(paragraphs) < 2 else int(rng.integers(1, len(paragraphs)))
        slots.setdefault(after, []).append(copy)
    pieces: list[str] = []
    log: list[dict[str, Any]] = []
    offset = 0
    for index in range(len(paragraphs) + 1):
        for canary, number, canary_text in slots.get(index, []):
            log.append({"canary": canary, "copy": number, "file": str(output), "offset": offset})
            pieces.append(canary_text)
            offset += len(canary_text) + 2
        if index < len(paragraphs):
            pieces.append(paragraphs[index])
            offset += len(paragraphs[index]) + 2
    return "\n\n".join(pieces) + "\n", log


def _as_documents(
    text: str, copies: list[tuple[str, int, str]], source: Path, output: Path
) -> tuple[str, list[dict[str, Any]]]:
    lines = [line for line in text.splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        try:
            json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{source}:{number}: not a JSON line ({error}); --mode documents needs JSONL") from None
    log = []
    for canary, number, canary_text in copies:
        lines.append(json.dumps({"id": f"{canary}-copy-{number}", "text": canary_text}, ensure_ascii=False))
        log.append({"canary": canary, "copy": number, "file": str(output), "line": len(lines)})
    return "\n".join(lines) + "\n", log
