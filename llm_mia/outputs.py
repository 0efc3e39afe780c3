"""Writing results safely: output paths checked before any work starts, atomic writes, JSON without NaN.

The one home for the "exists; pass --overwrite" rule, so every command words it the same way and checks it
before a model is loaded (a long run never ends in a refused write).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llm_mia.errors import LlmMiaError


def _refuse_existing(path: Path, *, option: str) -> LlmMiaError:
    return LlmMiaError(f"{path} exists; pass --overwrite to replace it, or choose another {option}")


def check_output_file(path: str | Path, *, overwrite: bool, suffixes: Sequence[str], option: str = "--output") -> Path:
    """Validate an output file: its extension is one of ``suffixes``, it does not exist (or ``overwrite``),
    and its directory exists."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise LlmMiaError(f"{option} {path}: the file must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise LlmMiaError(f"{option} {path} is a directory; give a file name ending in {' or '.join(suffixes)}")
    if path.exists() and not overwrite:
        raise _refuse_existing(path, option=option)
    if not path.parent.exists():
        raise LlmMiaError(f"{path.parent}: the directory of {option} does not exist; create it first")
    return path


def check_output_dir(path: str | Path, *, overwrite: bool, owned: Sequence[str], option: str = "--output-dir") -> Path:
    """Validate a report directory: not a file, its parent exists, and none of the ``owned`` file names it would
    write exist in it (or ``overwrite``). The directory itself is created by the writer."""
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise LlmMiaError(f"{option} {directory} is a file; give a directory")
    if not directory.absolute().parent.exists():
        raise LlmMiaError(f"{directory.absolute().parent}: parent of {option} does not exist; create it first")
    existing = [name for name in owned if (directory / name).exists()]
    if existing and not overwrite:
        raise _refuse_existing(directory / existing[0], option=option)
    return directory


def atomic_write(path: str | Path, write: Callable[[Any], None], *, mode: str = "w") -> Path:
    """Write through a temporary file in the same directory and rename: a crash never leaves half a file."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        if "b" in mode:
            with os.fdopen(handle, mode) as stream:
                write(stream)
        else:
            with os.fdopen(handle, mode, encoding="utf-8", newline="") as stream:
                write(stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def json_ready(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null, inside dicts, lists and tuples too.

    >>> json_ready({"a": float("nan"), "b": [1.0, float("inf")]})
    {'a': None, 'b': [1.0, None]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def write_json(path: str | Path, data: Any, *, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON atomically, NaN/inf as null; values JSON cannot hold are written with ``str``."""
    text = json.dumps(json_ready(data), indent=indent, default=str, allow_nan=False, ensure_ascii=False)
    return atomic_write(path, lambda stream: stream.write(text + "\n"))


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically."""
    return atomic_write(path, lambda stream: stream.write(text))
