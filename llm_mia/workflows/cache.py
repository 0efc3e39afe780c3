"""The stats cache as ``llm-mia cache`` shows it: where it is and how big, every entry's checksum checked, or
emptied. A damaged entry is never trusted: scoring treats it as missing and recomputes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_mia.engine.stats_cache import StatsCache

ACTIONS = ("info", "verify", "clear")


@dataclass
class CacheReport:
    """What one cache action found. ``record``: its numbers (path, entries and size; entries checked and damaged;
    entries removed); ``ok``: False when verify found damaged entries it did not delete."""

    action: str
    record: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not (self.action == "verify" and self.record["damaged"] and not self.record["deleted"])

    def summary_lines(self) -> list[str]:
        record = self.record
        if self.action == "info":
            return [f"path: {record['path']}", f"entries: {record['entries']}", f"size: {record['mib']:.1f} MiB"]
        if self.action == "verify":
            deleted = " (deleted)" if record["damaged"] and record["deleted"] else ""
            return [f"{record['checked']} entries checked, {len(record['damaged'])} damaged{deleted}"]
        return [f"removed {record['removed']} entries from {record['path']}"]


def cache_action(action: str, *, directory: str | Path | None = None, delete_damaged: bool = False) -> CacheReport:
    """``info``, ``verify`` (with ``delete_damaged``: drop the damaged entries) or ``clear`` the stats cache in
    ``directory`` (None: the default one)."""
    if action not in ACTIONS:
        from llm_mia.errors import unknown_name

        raise unknown_name("cache action", action, ACTIONS)
    cache = StatsCache(Path(directory) / "tokenstats.sqlite" if directory else None)
    if action == "info":
        info = cache.info()
        record = {"path": str(info["path"]), "entries": info["entries"], "mib": info["file_bytes"] / 2**20}
        return CacheReport(action, record)
    if action == "verify":
        checked, damaged = cache.verify(delete_damaged=delete_damaged)
        return CacheReport(action, {"checked": checked, "damaged": list(damaged), "deleted": delete_damaged})
    return CacheReport(action, {"path": str(cache.path), "removed": cache.clear()})
