"""benchmarks/false_positives.py runs (its simulation part, at a tiny size) and reports what it claims to."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "false_positives.py"


def _load():
    spec = importlib.util.spec_from_file_location("false_positives_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_simulation_rows_cover_every_design_with_exact_intervals(capsys):
    benchmark = _load()
    rows = benchmark.simulation(2)
    designs = " | ".join(row["design"] for row in rows)
    for needed in (
        "between-work SD 0.0",
        "between-work SD 0.5",
        "one control source offset by 0.5 SD",
        "5 per paragraph",
        "20 unseen works vs 20 control works",
        "best of 6 correlated scorers",
        "Benjamini-Hochberg",
        "(conditional)",
        "power: one trained work",
    ):
        assert needed in designs, needed
    for row in rows:
        assert row["rate"] == row["hits"] / row["reps"] and row["ci"][0] <= row["rate"] <= row["ci"][1]
    # one control source never gets a verdict of training, however strong the passage-level difference
    single = next(r for r in rows if r["design"] == "one unseen work vs one control source offset by 0.5 SD")
    assert single["hits"] == 0
    assert "false positive" in capsys.readouterr().out


def test_grouped_rows_cover_max_t_and_verdicts_over_works(capsys):
    rows = _load().grouped(2)
    designs = " | ".join(row["design"] for row in rows)
    for needed in ("max-T permuting single documents", "max-T permuting whole works", "BH over documents"):
        assert needed in designs, needed
    assert len(rows) == 5 and all(row["reps"] == 2 for row in rows)
    assert "false discovery" in capsys.readouterr().out
