"""Every API response kept on disk, so that a rerun or a resumed run sends nothing twice.

Key = SHA-256 of the canonical JSON of (API root, endpoint, request body, and the served weights'
fingerprint). The request body holds the model
name and every parameter, never the key (it travels in a header). Storage: one SQLite table beside the stats
cache (``responses.sqlite``), one row per request, the response as JSON with a SHA-256 checksum; a row whose
checksum fails is treated as missing and asked again. Each response is committed as soon as it arrives: a run
killed mid-document resumes at the next unanswered request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from llm_mia.identity import cache_dir
from llm_mia.outputs import CACHE_FIX, check_cache_writable, database_not_writable

logger = logging.getLogger(__name__)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(root: str, path: str, payload: dict[str, Any], *, salt: str = "") -> str:
    """SHA-256 of (API root, endpoint, request body[, salt]) as canonical JSON: the request's identity.

    ``salt``: the served weights' fingerprint (``RemoteModel.fingerprint``), so that other weights served under
    the same name are never answered from this cache.

    >>> a = request_key("http://h/v1", "completions", {"b": 1, "a": 2})
    >>> a == request_key("http://h/v1/", "/completions", {"a": 2, "b": 1}), len(a)
    (True, 64)
    """
    identity = [root.rstrip("/"), path.lstrip("/"), payload] + ([salt] if salt else [])
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()


def default_responses_path() -> Path:
    return cache_dir() / "stats" / "responses.sqlite"


class ResponseCache:
    """The on-disk response store (see module docstring). Safe for several processes and threads at once."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_responses_path()
        check_cache_writable(self.path)
        self._lock = threading.Lock()  # one connection, shared by the threads of concurrent requests
        self._connection = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT NOT NULL, "
            "checksum TEXT NOT NULL, created REAL NOT NULL)"
        )
        self.hits = 0
        self.stored = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._connection.execute("SELECT body, checksum FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        body, checksum = row
        if hashlib.sha256(body.encode()).hexdigest() != checksum:
            logger.warning("cached response %s… failed its checksum; asking the server again", key[:12])
            return None
        with self._lock:
            self.hits += 1
        return json.loads(body)

    def put(self, key: str, response: dict[str, Any]) -> None:
        body = canonical_json(response)
        checksum = hashlib.sha256(body.encode()).hexdigest()
        try:
            with self._lock, self._connection:
                self._connection.execute(
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", (key, body, checksum, time.time())
                )
                self.stored += 1
        except sqlite3.OperationalError as error:
            if unwritable := database_not_writable(error, self.path, what="the response cache", fix=CACHE_FIX):
                raise unwritable from error
            raise

    def close(self) -> None:
        self._connection.close()


def response_cache(cache: bool | str | Path) -> ResponseCache | None:
    """The response cache a workflow's ``cache`` setting names: True the default one, a path that file, False none."""
    if cache is False:
        return None
    return ResponseCache(None if cache is True else Path(cache))
