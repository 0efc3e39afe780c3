"""List the registered scorers: name, the views (model passes) each reads, hyperparameters, summary.

examples:
  llm-mia list
  llm-mia list --verbose-docs      # full docstrings: formula, direction, source
"""

from __future__ import annotations

import argparse

from llm_mia.scorers import all_scorers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose-docs", action="store_true", help="print each scorer's full docstring")


def run(args: argparse.Namespace) -> int:
    for scorer in all_scorers().values():
        params = ", ".join(f"{k}={v}" for k, v in scorer.defaults.items()) or "-"
        length = "" if scorer.length_invariant else " [length-sensitive: left out of dataset tests]"
        print(f"{scorer.name:<18} reads: {', '.join(scorer.views):<22} params: {params:<8} {scorer.summary}{length}")
        if args.verbose_docs:
            print("\n".join("    " + line for line in scorer.doc.splitlines()) + "\n")
    print("all scores: higher = more likely a member")
    return 0
