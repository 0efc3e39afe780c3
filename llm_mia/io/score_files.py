"""Score files: one row per document (JSONL or CSV), written atomically, read back into a table.

A score file has the columns in :data:`META_COLUMNS` then one column per score (higher = more likely member;
empty/null where the score was unavailable, the status says why). Beside ``scores.jsonl`` sits
``scores.jsonl.run.json``, the run record (``llm_mia.io.records``).

Reading is forgiving about files from other tools: only ``id`` and at least one numeric score column are
required; ``status`` is optional (missing means every row is usable); other non-numeric columns (a ``text``
column, say) are kept but never treated as scores.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError
from llm_mia.io.outputs import atomic_write, check_output_file, json_ready

# Columns every score row starts with; every other numeric column is a score.
META_COLUMNS = ("id", "label", "group", "status", "n_bytes", "n_tokens", "n_scored", "n_windows", "text_sha256")
SCORE_FILE_FORMATS = (".jsonl", ".csv")
STATUS_OK = "ok"


def check_score_output(path: str | Path, *, overwrite: bool, option: str = "--output") -> Path:
    """Validate a score-file output path before any work starts."""
    return check_output_file(path, overwrite=overwrite, suffixes=SCORE_FILE_FORMATS, option=option)


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write rows to ``.jsonl`` (one object per line) or ``.csv`` (empty cell = unavailable), atomically."""
    path = Path(path)
    columns = list(dict.fromkeys(column for row in rows for column in row)) if rows else list(META_COLUMNS)
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

    return atomic_write(path, write)


def read_scores(path: str | Path) -> Any:
    """Read a score file into a pandas DataFrame (nulls become NaN); ``id`` is read as text."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such score file; write one with `llm-mia score --output {path.name}`")
    suffix = path.suffix.lower()
    text_columns = {"id": str, "group": str, "status": str, "text_sha256": str}
    if suffix == ".jsonl":
        try:
            frame = pd.read_json(path, lines=True, dtype=text_columns)
        except ValueError as error:
            raise InputError(f"{path}: not a valid JSONL score file ({error})") from None
    elif suffix == ".csv":
        try:
            frame = pd.read_csv(path, dtype=text_columns, keep_default_na=False, na_values=[""])
        except (ValueError, pd.errors.ParserError) as error:
            raise InputError(f"{path}: not a valid CSV score file ({error})") from None
    else:
        raise InputError(f"{path}: score files end in {' or '.join(SCORE_FILE_FORMATS)}")
    if "id" not in frame.columns:
        raise InputError(f"{path}: no 'id' column; columns found: {', '.join(map(str, frame.columns))}")
    if "status" not in frame.columns:
        frame["status"] = STATUS_OK  # a score file from another tool: every row counts as usable
    frame["status"] = frame["status"].fillna(STATUS_OK).astype(str)
    return frame


def score_columns(frame: Any) -> list[str]:
    """The score columns of a score table: every numeric (or all-empty) column that is not a META column.

    Text columns (e.g. a ``text`` column kept from the input) are not scores and are left out.
    """
    import pandas as pd

    return [
        column
        for column in frame.columns
        if column not in META_COLUMNS
        and (pd.api.types.is_numeric_dtype(frame[column]) or frame[column].isna().all())
        and not pd.api.types.is_bool_dtype(frame[column])
    ]


def pick_score_columns(frame: Any, requested: Sequence[str] | None, *, source: str) -> list[str]:
    """The score columns asked for (all of them when None), each checked to exist and hold numbers."""
    available = score_columns(frame)
    if not requested:
        if not available:
            raise InputError(f"{source}: no numeric score columns; columns found: {', '.join(map(str, frame.columns))}")
        return available
    for name in requested:
        if name not in frame.columns:
            raise InputError(f"{source}: no score column {name!r}; available: {', '.join(available) or 'none'}")
        if name not in available:
            raise InputError(f"{source}: column {name!r} does not hold numbers, so it is not a score")
    return list(requested)


def usable_mask(frame: Any) -> Any:
    """Rows whose status is ``ok`` (a boolean numpy array)."""
    return (frame["status"] == STATUS_OK).to_numpy()
