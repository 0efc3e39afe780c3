"""benchmarks/dataset_inference.py end to end on a tiny GPT-2 trained from scratch (a few seconds)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "dataset_inference.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("dataset_inference_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpt2_from_scratch_path_runs_and_reuses_its_cached_model(tmp_path, monkeypatch, capsys):
    from llm_mia.corpora import wikipedia_summaries

    try:
        wikipedia_summaries()
    except Exception as error:  # the corpus is an optional package
        pytest.skip(f"Wikipedia summaries not installed: {error}")
    monkeypatch.setenv("LLM_MIA_CACHE", str(tmp_path / "cache"))
    benchmark = _load_benchmark()
    tiny = ["--model-kind", "gpt2", "--members", "8", "--train-docs", "24", "--control-docs", "16", "--pool", "32"]
    tiny += ["--layers", "1", "--dims", "32", "--vocab-size", "300", "--epochs", "1", "--splits", "3"]
    tiny += ["--fpr-splits", "4", "--threads", "1", "--no-progress"]
    output = tmp_path / "report.json"
    benchmark.main([*tiny, "--json", str(output)])
    first = json.loads(output.read_text(encoding="utf-8"))
    printed = capsys.readouterr().out
    assert "trained from scratch 1 epochs" in printed and "trained in" in printed
    assert {"base", "trained", "false_positive_check", "blind_baseline"} <= set(first)
    assert 0 <= first["trained"]["main"]["p_value"] <= 1
    assert first["false_positive_check"]["splits"] == 4

    benchmark.main([*tiny, "--no-base", "--json", str(output)])
    second = json.loads(output.read_text(encoding="utf-8"))
    assert "re-used cached run" in capsys.readouterr().out
    assert second["trained"]["main"]["p_value"] == first["trained"]["main"]["p_value"]  # same cached weights


def test_train_docs_is_only_for_gpt2():
    benchmark = _load_benchmark()
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--train-docs", "64"])
    assert benchmark.parse_args(["--model-kind", "gpt2"]).train_docs == 512
    assert benchmark.parse_args([]).lr == 1e-4
