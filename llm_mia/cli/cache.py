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

from llm_mia.cli.common import summarise
from llm_mia.cli.flags import add_flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("info", "verify", "clear"))
    add_flags(parser, "cache_dir")
    parser.add_argument("--delete-damaged", action="store_true", help="with verify: remove damaged entries")


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.cache import cache_action

    report = cache_action(args.action, directory=args.cache_dir, delete_damaged=args.delete_damaged)
    summarise(report)
    return 0 if report.ok else 1
