"""Content-addressed TokenStats cache: a killed run resumes where it stopped, with identical results.

Key = SHA-256 of (model fingerprint, extraction settings, engine version, the batch layout the document was
computed in, exact text). The model fingerprint hashes every file that decides the numbers (config, weights,
tokenizer) plus the revision; settings are the dtype, window, stride, BOS prefix, device and CPU thread count.
The batch layout (see ``extract._group_fingerprint``) is planned from the texts alone, identically for any
process count and whatever the cache holds, so single- and multi-process runs share entries, and an entry is
reused only where it has the very bits a fresh computation would give.

Inside one long document, the windows already computed are kept too (table ``windows``), so a book given as
one file and killed half-way resumes half-way. A window entry's key (:func:`window_key`) is the SHA-256 of the
same settings string, the window-entry format (``WINDOW_FORMAT``), the document's text hash, the window's index
in the document, the fingerprint of the batch it ran in (every segment's token ids, in batch order) and its
row in that batch: the window's floats depend on that batch (padding, rows per matmul), and a resumed run
plans the very same batches, so a window read back has the bits a fresh computation would give. A window
entry holds only that window's per-token arrays; it is scaffolding for an unfinished document, deleted in the
transaction that stores the finished document.

Storage: one SQLite database (stdlib, transactional: a SIGKILL mid-write leaves the last committed state),
one row per document with the scalar fields as JSON, the arrays as an ``.npz`` blob read with
``allow_pickle=False``, and a SHA-256 checksum of both; one row per window of an unfinished document, its arrays
as one ``.npy`` (a structured array, read with ``allow_pickle=False``) and a checksum.
An entry whose checksum does not match, or that does not decode, is treated as missing and recomputed; a
database file that SQLite cannot read is moved aside. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.identity import cache_dir, sha256_file
from llm_mia.models import LoadedModel
from llm_mia.outputs import CACHE_FIX, check_cache_writable, database_not_writable
from llm_mia.stats import TokenStats

logger = logging.getLogger(__name__)

# Bump when the engine's numbers change for the same model, settings and text: old entries stop matching.
ENGINE_VERSION = "2"
# Bump when what a window entry holds, or how its key is made, changes: entries of another format never match.
WINDOW_FORMAT = "1"

_ARRAY_FIELDS = ("token_ids", "logprob", "mu", "sigma", "rank", "top1_logprob")
_SCALAR_FIELDS = tuple(f.name for f in fields(TokenStats) if f.name not in _ARRAY_FIELDS)
_MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".txt", ".jinja", ".tiktoken")


def default_cache_path() -> Path:
    return cache_dir() / "stats" / "tokenstats.sqlite"


def _memoised_file_hashes() -> Path:
    return cache_dir() / "file-hashes.json"


def model_fingerprint(loaded: LoadedModel) -> str:
    """SHA-256 over the model directory's files that decide the numbers, and the revision."""
    return directory_fingerprint(Path(loaded.directory), loaded.spec.revision)


def directory_fingerprint(directory: Path, revision: str | None) -> str:
    """SHA-256 over a model directory's files that decide the numbers, and the revision (no weights loaded).

    File hashes are memoised by (path, size, mtime) in the cache directory, so a 500 MB checkpoint is hashed
    once, not at every load.
    """
    memo_path = _memoised_file_hashes()
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    digest = hashlib.sha256(f"revision={revision}\n".encode())
    changed = False
    for path in sorted(Path(directory).iterdir()):
        if not path.is_file() or path.suffix not in _MODEL_FILE_SUFFIXES or path.name == "llm_mia_source.json":
            continue
        stat = path.stat()
        memo_key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        if memo_key not in memo:
            memo[memo_key] = sha256_file(path)
            changed = True
        digest.update(f"{path.name}={memo[memo_key]}\n".encode())
    if changed:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = memo_path.with_name(f".{memo_path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(memo))
        os.replace(temporary, memo_path)
    return digest.hexdigest()


def settings_key(loaded: LoadedModel, *, window: int, stride: int | None) -> str:
    """Everything besides the text and its batch that decides a document's TokenStats, as one string.

    The device and, on CPU, the number of torch threads are part of it: they change how matrix products are
    blocked, and so the last bits of a result.
    """
    import torch

    return json.dumps(
        {
            "engine": ENGINE_VERSION,
            "model": model_fingerprint(loaded),
            "dtype": loaded.spec.dtype,
            "window": window,
            "stride": stride,
            "prefix": list(loaded.prefix_ids),
            "device": loaded.device.split(":")[0],  # cuda:0 and cuda:1 of one multi-GPU run share entries
            "threads": torch.get_num_threads() if loaded.device == "cpu" else None,
        }
        # only when set, so the keys of undefended runs (every entry cached before defenses existed) stay valid
        | ({"output_defense": loaded.output_defense.spec} if getattr(loaded, "output_defense", None) else {}),
        sort_keys=True,
    )


def entry_key(settings: str, text: str) -> str:
    digest = hashlib.sha256(settings.encode())
    digest.update(b"\0")
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def window_key(settings: str, *, text_sha256: str, index: int, batch: str, row: int) -> str:
    """Key of one window of a long document: settings, document, window index, and the batch it ran in.

    ``batch`` is the fingerprint of the window's batch (``extract._batch_fingerprint``: every segment's token ids,
    in order) and ``row`` the window's row in it; together with ``settings`` they decide the window's bits.
    """
    digest = hashlib.sha256(settings.encode())
    digest.update(f"\0window-format={WINDOW_FORMAT}\0{text_sha256}\0{index}\0{batch}\0{row}".encode())
    return digest.hexdigest()


def _encode_arrays(arrays: dict[str, np.ndarray]) -> tuple[bytes, str]:
    """One window's per-token arrays (all of one length) as one ``.npy`` of a structured array, and its checksum.

    A single plain ``.npy`` rather than an ``.npz`` (a zip archive per window would cost more than a tiny model's
    forward pass); like every blob here it is read with ``allow_pickle=False``.
    """
    names = sorted(arrays)
    length = len(arrays[names[0]])
    table = np.empty(length, dtype=[(name, arrays[name].dtype) for name in names])  # (T_window,) records
    for name in names:
        table[name] = arrays[name]
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, table, allow_pickle=False)
    blob = buffer.getvalue()
    return blob, hashlib.sha256(blob).hexdigest()


def _decode_arrays(blob: bytes, checksum: str) -> dict[str, np.ndarray] | None:
    if hashlib.sha256(blob).hexdigest() != checksum:
        return None
    try:
        table = np.lib.format.read_array(io.BytesIO(blob), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
    if table.dtype.names is None:
        return None
    return {name: np.ascontiguousarray(table[name]) for name in table.dtype.names}


def _encode(stats: TokenStats) -> tuple[str, bytes, str]:
    buffer = io.BytesIO()
    np.savez(buffer, **{name: getattr(stats, name) for name in _ARRAY_FIELDS})
    blob = buffer.getvalue()
    meta = json.dumps({name: getattr(stats, name) for name in _SCALAR_FIELDS}, sort_keys=True)
    return meta, blob, hashlib.sha256(meta.encode() + blob).hexdigest()


def _decode(meta: str, blob: bytes, checksum: str) -> TokenStats | None:
    if hashlib.sha256(meta.encode() + blob).hexdigest() != checksum:
        return None
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
            values = {name: arrays[name] for name in _ARRAY_FIELDS}
        values.update(json.loads(meta))
        return TokenStats(**values)
    except (ValueError, KeyError, TypeError, OSError):
        return None


class StatsCache:
    """The on-disk TokenStats store (see module docstring). Safe for several processes at once."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        check_cache_writable(self.path)
        self.hits = 0
        self.stored = 0
        self.rejected = 0
        self.window_hits = 0  # windows of unfinished documents read back
        self.windows_stored = 0
        self._connection = self._open()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        # In WAL mode, NORMAL survives a killed process (the last committed batch is kept); only a power
        # loss may lose the newest transactions, never consistency. FULL would fsync every batch.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, meta TEXT NOT NULL, "
            "arrays BLOB NOT NULL, checksum TEXT NOT NULL, created REAL NOT NULL)"
        )
        connection.execute(
            "CREATE TABLE IF NOT EXISTS windows (key TEXT PRIMARY KEY, arrays BLOB NOT NULL, checksum TEXT NOT NULL, "
            "created REAL NOT NULL)"
        )
        return connection

    def _open(self) -> sqlite3.Connection:
        try:
            connection = self._connect()
            connection.execute("SELECT count(*) FROM stats").fetchone()
            return connection
        except sqlite3.DatabaseError as error:
            if unwritable := database_not_writable(error, self.path, what="the stats cache", fix=CACHE_FIX):
                raise unwritable from error  # the disk's fault, not a damaged database: keep it where it is
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            logger.warning("cache %s is unreadable (%s); moved aside to %s, starting afresh", self.path, error, aside)
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return self._connect()

    def get_many(self, keys: Sequence[str]) -> dict[str, TokenStats]:
        """Entries found and intact, by key; damaged entries are logged, counted and left out."""
        found: dict[str, TokenStats] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # SQLite limits the number of bound parameters
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, meta, arrays, checksum FROM stats WHERE key IN ({marks})"
            for key, meta, blob, checksum in self._connection.execute(query, chunk):
                stats = _decode(meta, blob, checksum)
                if stats is None:
                    self.rejected += 1
                    logger.warning("cache entry %s… failed its checksum; recomputing it", key[:12])
                else:
                    found[key] = stats
        self.hits += len(found)
        return found

    def get_windows(self, keys: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
        """Window entries found and intact, by key (arrays by name); damaged ones are logged and left out."""
        found: dict[str, dict[str, np.ndarray]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            query = f"SELECT key, arrays, checksum FROM windows WHERE key IN ({','.join('?' * len(chunk))})"
            for key, blob, checksum in self._connection.execute(query, chunk):
                arrays = _decode_arrays(blob, checksum)
                if arrays is None:
                    self.rejected += 1
                    logger.warning("cache window entry %s… failed its checksum; recomputing it", key[:12])
                else:
                    found[key] = arrays
        self.window_hits += len(found)
        return found

    def put_many(
        self,
        items: Iterable[tuple[str, TokenStats]],
        *,
        windows: Iterable[tuple[str, dict[str, np.ndarray]]] = (),
        drop_windows: Iterable[str] = (),
    ) -> None:
        """Store entries in one transaction: all of them or, if the process dies, none.

        ``windows``: window entries of documents not finished yet; ``drop_windows``: window keys of documents
        finished now (stored in ``items``), removed in the same transaction.
        """
        now = time.time()
        rows = [(key, *_encode(stats), now) for key, stats in items]
        window_rows = [(key, *_encode_arrays(arrays), now) for key, arrays in windows]
        dropped = [(key,) for key in drop_windows]
        if not (rows or window_rows or dropped):
            return
        try:
            with self._connection:
                self._connection.execute("BEGIN IMMEDIATE")
                self._connection.executemany("INSERT OR REPLACE INTO stats VALUES (?, ?, ?, ?, ?)", rows)
                self._connection.executemany("INSERT OR REPLACE INTO windows VALUES (?, ?, ?, ?)", window_rows)
                self._connection.executemany("DELETE FROM windows WHERE key = ?", dropped)
        except sqlite3.OperationalError as error:
            if unwritable := database_not_writable(error, self.path, what="the stats cache", fix=CACHE_FIX):
                raise unwritable from error
            raise
        self.stored += len(rows)
        self.windows_stored += len(window_rows)

    def info(self) -> dict[str, Any]:
        """Documents (``entries``) and windows of unfinished documents (``windows``), with their sizes."""
        count, size = self._connection.execute(
            "SELECT count(*), coalesce(sum(length(arrays)), 0) FROM stats"
        ).fetchone()
        windows, window_size = self._connection.execute(
            "SELECT count(*), coalesce(sum(length(arrays)), 0) FROM windows"
        ).fetchone()
        return {
            "path": str(self.path),
            "entries": count,
            "array_bytes": size + window_size,
            "windows": windows,
            "file_bytes": self.path.stat().st_size,
        }

    def verify(self, *, delete_damaged: bool = False) -> tuple[int, list[str]]:
        """Check every entry's checksum and decoding, windows included; returns (entries checked, damaged keys)."""
        damaged, damaged_windows, checked = [], [], 0
        for key, meta, blob, checksum in self._connection.execute("SELECT key, meta, arrays, checksum FROM stats"):
            checked += 1
            if _decode(meta, blob, checksum) is None:
                damaged.append(key)
        for key, blob, checksum in self._connection.execute("SELECT key, arrays, checksum FROM windows"):
            checked += 1
            if _decode_arrays(blob, checksum) is None:
                damaged_windows.append(key)
        if delete_damaged and (damaged or damaged_windows):
            with self._connection:
                self._connection.executemany("DELETE FROM stats WHERE key = ?", [(k,) for k in damaged])
                self._connection.executemany("DELETE FROM windows WHERE key = ?", [(k,) for k in damaged_windows])
        return checked, damaged + damaged_windows

    def clear(self) -> int:
        """Remove every entry, windows included; returns how many."""
        with self._connection:
            removed = self._connection.execute("DELETE FROM stats").rowcount
            removed += self._connection.execute("DELETE FROM windows").rowcount
        self._connection.execute("VACUUM")
        return removed

    def close(self) -> None:
        self._connection.close()
