"""Score files: writing rows (JSONL or CSV) with a run record beside them, and reading them back.

A score file has one row per document: the columns in ``llm_mia.scoring.META_COLUMNS`` then one column per
score (higher = more likely member; empty/null where the score was unavailable, the status says why).
Beside ``scores.jsonl`` sits ``scores.jsonl.run.json``: models, scorers, settings, input hash, versions.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.scoring import META_COLUMNS

OUTPUT_FORMATS = (".jsonl", ".csv")
RUN_RECORD_SUFFIX = ".run.json"


def check_output_path(path: str | Path, *, overwrite: bool) -> Path:
    """Validate an output path before any work starts, so a long run never ends in a refused write."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise LlmMiaError(f"{path}: output must end in {' or '.join(OUTPUT_FORMATS)}")
    if path.exists() and not overwrite:
        raise LlmMiaError(f"{path} exists; pass --overwrite to replace it, or choose another --output")
    if not path.parent.exists():
        raise LlmMiaError(f"{path.parent}: output directory does not exist; create it first")
    return path


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same directory and rename: a crash never leaves half a file."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def json_ready(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null, inside dicts, lists and tuples too."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write score rows to ``.jsonl`` (one object per line) or ``.csv`` (empty cell = unavailable)."""
    path = Path(path)
    columns = list(rows[0]) if rows else list(META_COLUMNS)
    if path.suffix.lower() == ".jsonl":

        def write(stream: Any) -> None:
            for row in rows:
                stream.write(json.dumps(json_ready(row), ensure_ascii=False) + "\n")

    else:

        def write(stream: Any) -> None:
            writer = csv.DictWriter(stream, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if json_ready(v) is None else v for k, v in row.items()})

    _atomic_write(path, write)
    return path


def sha256_documents(texts: Sequence[str]) -> str:
    """Hash of the exact texts scored, in order (length-prefixed so boundaries count)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("llm-mia", "torch", "transformers", "numpy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def write_run_record(path: str | Path, record: dict[str, Any]) -> Path:
    """Write ``<output>.run.json``: the given record plus time, platform and package versions."""
    target = Path(f"{path}{RUN_RECORD_SUFFIX}")
    full = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "versions": _versions(),
        **record,
    }
    _atomic_write(target, lambda stream: json.dump(full, stream, indent=2, default=str))
    return target


def read_scores(path: str | Path) -> Any:
    """Read a score file written by ``llm-mia score`` into a pandas DataFrame (nulls become NaN)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such score file; write one with `llm-mia score --output {path.name}`")
    if path.suffix.lower() == ".jsonl":
        try:
            frame = pd.read_json(path, lines=True, dtype={"id": str, "group": str})
        except ValueError as error:
            raise InputError(f"{path}: not a valid JSONL score file ({error})") from None
    elif path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype={"id": str, "group": str, "status": str})
    else:
        raise InputError(f"{path}: score files end in {' or '.join(OUTPUT_FORMATS)}")
    missing = [c for c in ("id", "status") if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; columns found: {', '.join(frame.columns)}")
    return frame


def score_columns(frame: Any) -> list[str]:
    """The score columns of a score frame: everything that is not a META column."""
    return [column for column in frame.columns if column not in META_COLUMNS]
