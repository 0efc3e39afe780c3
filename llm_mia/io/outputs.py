"""Writing results safely: output paths checked before any work starts, atomic writes, JSON without NaN.

The one home for the "exists; pass --overwrite" rule and for the "can this be written at all" probe, so every
command words them the same way and checks them before a model is loaded (a long run never ends in a refused
write). Files are written atomically with the mode the user's umask allows (0666 & ~umask, as ``open`` gives),
so a bundle or a shared results folder is readable by whoever the umask lets read it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeGuard

from llm_mia.errors import LlmMiaError, OutputError
from llm_mia.io.identity import cache_dir


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
    check_writable(path.parent, what=f"the directory of {option} {path}", fix=f"choose another {option}")
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
    where = directory if directory.is_dir() else directory.absolute().parent  # the writer creates the directory
    check_writable(where, what=f"{option} {directory}", fix=f"choose another {option}")
    return directory


PROBE_BYTES = 4096  # one block: on a full disk the write itself fails, not just the (metadata-only) create


def check_writable(directory: str | Path, *, what: str, fix: str) -> Path:
    """Refuse, before any work starts, a ``directory`` that cannot be written: create a probe file there, write
    a block into it, flush it to the disk and delete it. A read-only or full disk, a missing permission or a
    quota fails here with an :class:`OutputError` naming the path, the reason and ``fix`` (e.g. "choose another
    --output"), instead of after hours of scoring. ``what`` names the destination in the message."""
    directory = Path(directory)
    probe = directory / f".llm-mia-write-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        handle = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(handle, b"\0" * PROBE_BYTES)
            os.fsync(handle)
        finally:
            os.close(handle)
    except OSError as error:
        raise not_writable(error, directory, what=what, fix=fix) from error
    finally:
        with contextlib.suppress(OSError):  # where it could not even be created
            probe.unlink(missing_ok=True)
    return directory


_REASONS = {
    errno.ENOSPC: ("no space is left on that disk", "free space there, or {fix}"),
    getattr(errno, "EDQUOT", errno.ENOSPC): ("your disk quota there is used up", "free space there, or {fix}"),
    errno.EROFS: ("it is on a read-only file system", "{fix} on a writable disk"),
    errno.EACCES: ("you have no permission to write there", "{fix}, or make the directory writable"),
    errno.EPERM: ("you have no permission to write there", "{fix}, or make the directory writable"),
    errno.EFBIG: ("the file is larger than that file system allows", "{fix} on another file system"),
}


def is_destination_error(error: BaseException) -> TypeGuard[OSError]:
    """Whether an error is the destination's fault (full, read-only, forbidden), not the data's or the code's."""
    return isinstance(error, OSError) and error.errno in _REASONS


def not_writable(error: OSError, path: str | Path, *, what: str, fix: str) -> OutputError:
    """The one-line error for an ``OSError`` met writing ``path``: what, where, why in words, and the fix."""
    reason, remedy = _REASONS.get(error.errno, (error.strerror or str(error), "{fix}"))
    return OutputError(f"cannot write {what} ({path}): {reason}; {remedy.format(fix=fix)}")


# SQLite's words for a database its disk will not let it write (it reports no errno)
_DATABASE_REASONS = {
    "database or disk is full": _REASONS[errno.ENOSPC],
    "readonly database": ("the database file or its directory is read-only", "{fix}, or make it writable"),
    "unable to open database file": ("it cannot be created or opened there", "{fix}, or make the directory writable"),
    "disk i/o error": ("the disk reported an I/O error", "check the disk, or {fix}"),
}


def database_not_writable(error: Exception, path: str | Path, *, what: str, fix: str) -> OutputError | None:
    """The one-line error for an SQLite error that is its disk's fault (full, read-only, cannot be opened), or
    None when ``error`` is something else."""
    text = str(error).lower()
    for words, (reason, remedy) in _DATABASE_REASONS.items():
        if words in text:
            return OutputError(f"cannot write {what} ({path}): {reason}; {remedy.format(fix=fix)}")
    return None


CACHE_FIX = "pass --cache-dir on another disk, or --no-cache"


def check_cache_writable(path: str | Path | None) -> None:
    """Refuse, before any model loads, a stats cache (the database ``path``; None: no cache) whose directory
    cannot be created or written (see :func:`check_writable`)."""
    if path is None:
        return
    directory = Path(path).parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise not_writable(error, directory, what="the stats cache", fix=CACHE_FIX) from error
    check_writable(directory, what="the stats cache", fix=CACHE_FIX)


def atomic_write(path: str | Path, write: Callable[[Any], None], *, mode: str = "w") -> Path:
    """Write through a temporary file in the same directory and rename: a crash never leaves half a file.

    The file gets the mode a plain ``open`` gives (0666 & ~umask): the temporary file is created with 0666 and
    the kernel applies the umask (``tempfile.mkstemp`` would make every output 0600). A disk that fills up or a
    directory that cannot be written raises :class:`OutputError` naming the file; nothing is left behind.
    """
    path = Path(path)
    handle, temporary = _create_temporary(path)
    try:
        if "b" in mode:
            with os.fdopen(handle, mode) as stream:
                write(stream)
        else:
            with os.fdopen(handle, mode, encoding="utf-8", newline="") as stream:
                write(stream)
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if is_destination_error(error):
            raise not_writable(error, path, what="the output", fix="choose another location") from error
        raise
    return path


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file beside ``path`` (hidden, random name), created 0666 so that the umask decides its mode."""
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary
    except OSError as error:
        raise not_writable(error, path, what="the output", fix="choose another location") from error


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


def check_cache_root_writable() -> Path:
    """The cache root (``$LLM_MIA_CACHE``, where known-split runs keep splits and trained models), checked to be
    writable before any work starts."""
    root = cache_dir()
    fix = "set LLM_MIA_CACHE to a directory on another disk"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise not_writable(error, root, what="the cache", fix=fix) from error
    return check_writable(root, what="the cache", fix=fix)
