"""benchmarks/false_positives.py's real-text part runs the user's path (files with a group column, cut by the
target's tokenizer, scored, tested, checked) and gives the outcomes its table counts: a manual page against
Debian changelogs is withheld by a text check under the scores statistic, and the same texts under the
reference-gap statistic are judged with the text checks reported, not withholding."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from llm_mia.errors import LlmMiaError

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "false_positives.py"


def _load():
    spec = importlib.util.spec_from_file_location("false_positives_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_real_text_designs_run_the_users_path_and_count_outcomes(tmp_path, capsys):
    benchmark = _load()
    try:
        rows = benchmark.real(1, tmp_path, ["format"], size="ci", max_words=300)
    except LlmMiaError as error:  # a machine without Debian's documentation
        pytest.skip(str(error))
    by_statistic = {row["design"].rsplit("[", 1)[1].rstrip("]"): row for row in rows}
    plain, gap = by_statistic["scores"], by_statistic["reference-gap"]
    assert plain["reps"] == gap["reps"] == 1
    assert plain["verdicts"] == {"withheld": 1} and plain["hits"] == 0
    assert set(plain["withheld_by"]) & {"difference from the control works", "format"}
    assert not set(gap["withheld_by"]) & {"difference from the control works", "format"}
    assert "withheld by" in capsys.readouterr().out


def test_grouped_rows_cover_max_t_and_verdicts_over_works(capsys):
    rows = _load().grouped(2)
    designs = " | ".join(row["design"] for row in rows)
    for needed in ("max-T permuting single documents", "max-T permuting whole works", "BH over documents"):
        assert needed in designs, needed
    assert len(rows) == 5 and all(row["reps"] == 2 for row in rows)
    assert "false discovery" in capsys.readouterr().out
