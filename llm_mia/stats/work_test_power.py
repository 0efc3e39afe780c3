"""Power of the work-level test measured on a known split, for ``llm-mia plan`` to print before any scoring.

The table (``llm_mia/data/work_test_power.json``) is written by ``python benchmarks/false_positives.py --parts
power --power-table llm_mia/data/work_test_power.json``: one trained work (8 member summaries of a GPT-2 trained
from scratch on Wikipedia lead summaries) against m control works of 8 unseen summaries each, per training epoch
and statistic, with how many of the draws gave "consistent with training". A user's model, work and controls are
not this recipe's: the figures tell the order of magnitude a design of that size can detect, not a promise.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

TABLE = Path(__file__).resolve().parents[1] / "data" / "work_test_power.json"  # llm_mia/data/


@cache
def power_table() -> dict[str, Any] | None:
    """The measured table, or None when this installation has none."""
    if not TABLE.is_file():
        return None
    return json.loads(TABLE.read_text(encoding="utf-8"))


def nearest_power(controls: int, statistic: str) -> dict[str, Any] | None:
    """The measured rows (every epoch) for the control-work count nearest to ``controls`` and ``statistic``, with
    the recipe and the command that measured them; None without a table."""
    table = power_table()
    if table is None:
        return None
    rows = [r for r in table["rows"] if r["statistic"] == statistic and r["trained"]]
    if not rows:
        return None
    nearest = min({r["controls"] for r in rows}, key=lambda m: (abs(m - controls), m))
    chosen = sorted((r for r in rows if r["controls"] == nearest), key=lambda r: r["epoch"])
    return {
        "recipe": table["recipe"],
        "command": table["command"],
        "controls": nearest,
        "statistic": statistic,
        "found": [{"epoch": r["epoch"], "found": r["hits"], "draws": r["reps"]} for r in chosen],
    }


def power_sentence(summary: dict[str, Any] | None) -> str:
    """The measured power in words, or why there is none.

    >>> power_sentence(None)
    'no power measured for this installation (benchmarks/false_positives.py --parts power writes the table)'
    """
    if summary is None:
        return "no power measured for this installation (benchmarks/false_positives.py --parts power writes the table)"
    found = ", ".join(f"{r['found']}/{r['draws']} after {r['epoch']} epoch(s)" for r in summary["found"])
    return (
        f"on a known split ({summary['recipe']}; one work against {summary['controls']} control works, "
        f"{summary['statistic']} statistic) training was found in {found}; your model, work and controls differ, "
        f"so read this as the order of magnitude such a design detects (`{summary['command']}`)"
    )
