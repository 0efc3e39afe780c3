"""Inspect, check or empty the stats cache (per-document extraction results, content-addressed).

examples:
  llm-mia cache info
  llm-mia cache verify                      # check every entry's checksum
  llm-mia cache verify --delete-damaged     # and drop damaged entries (they are recomputed on the next run)
  llm-mia cache clear --cache-dir ./run-cache

A damaged entry is never trusted: scoring treats it as missing and recomputes it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llm_mia.cli.flags import add_flags
from llm_mia.engine.stats_cache import StatsCache


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("info", "verify", "clear"))
    add_flags(parser, "cache_dir")
    parser.add_argument("--delete-damaged", action="store_true", help="with verify: remove damaged entries")


def run(args: argparse.Namespace) -> int:
    cache = StatsCache(Path(args.cache_dir) / "tokenstats.sqlite" if args.cache_dir else None)
    if args.action == "info":
        info = cache.info()
        print(f"path: {info['path']}\nentries: {info['entries']}\nsize: {info['file_bytes'] / 2**20:.1f} MiB")
        return 0
    if args.action == "verify":
        checked, damaged = cache.verify(delete_damaged=args.delete_damaged)
        print(
            f"{checked} entries checked, {len(damaged)} damaged"
            + (" (deleted)" if damaged and args.delete_damaged else "")
        )
        return 1 if damaged and not args.delete_damaged else 0
    print(f"removed {cache.clear()} entries from {cache.path}")
    return 0
