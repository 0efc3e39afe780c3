"""An append-only log of every model call, hash-chained so that a removed, reordered or edited line shows.

Each line is one JSON object (keys sorted, no spaces) with ``n`` (its position), ``prev`` (the SHA-256 of the
previous line's bytes; for the first line, the plan's SHA-256, which binds the log to its plan) and the
entry: when, which view (model and text variant), the model's file-list hash, the passage ids, their window
indices and token counts. ``walk`` re-derives the chain and names the first line that breaks it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class QueryLog:
    """Writes the log line by line (flushed, so a killed run keeps what was logged). The file is created with
    its first line, so a run that fails before any call leaves none behind (see :meth:`close`)."""

    def __init__(self, path: str | Path, *, anchor: str, model_hashes: dict[str, str]) -> None:
        self.path = Path(path)
        self.prev = anchor
        self.count = 0
        self.model_hashes = model_hashes  # model role -> the plan's hash of its file list
        self._stream: Any = None

    def record(self, entry: dict[str, Any]) -> None:
        """Append one entry (an observer of ``llm_mia.scoring.extract_views``)."""
        from llm_mia.scorers import VIEWS

        role = VIEWS[entry["view"]].model if entry.get("view") in VIEWS else None
        line = _line(
            {
                **entry,
                "n": self.count,
                "prev": self.prev,
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "model_sha256": self.model_hashes.get(role or "", None),
            }
        )
        if self._stream is None:
            self._stream = self.path.open("wb")
        self._stream.write(line + b"\n")
        self._stream.flush()
        self.prev = hashlib.sha256(line).hexdigest()
        self.count += 1

    def close(self, *, keep_empty: bool = True) -> dict[str, Any]:
        """Close the file; returns what ``run.json`` records of the log (line count and head hash). A log that
        holds no line is written empty with ``keep_empty`` (a finished run's record of making no call) and
        left unwritten without it (a run that failed before any call)."""
        if self._stream is None and keep_empty:
            self._stream = self.path.open("wb")
        if self._stream is not None:
            self._stream.close()
        return {"lines": self.count, "head": self.prev}


def walk(path: str | Path, *, anchor: str) -> tuple[int, str, str | None]:
    """Re-derive the chain: (lines, head hash, the first problem or None)."""
    prev, count = anchor, 0
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\n")
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                return count, prev, f"line {number} is not JSON"
            if entry.get("prev") != prev or entry.get("n") != count:
                return (
                    count,
                    prev,
                    (
                        f"line {number} breaks the chain (it names line {entry.get('n')} and previous hash "
                        f"{str(entry.get('prev'))[:16]}..., expected line {count} after {prev[:16]}...): a line was "
                        f"removed, reordered or edited"
                    ),
                )
            if _line(entry) != line:
                return count, prev, f"line {number} is not in the form it was written in"
            prev, count = hashlib.sha256(line).hexdigest(), count + 1
    return count, prev, None
