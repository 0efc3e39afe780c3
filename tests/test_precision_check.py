"""The precision check: what a lower dtype moves, measured against plain runs in each precision."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from llm_mia.cli import main
from llm_mia.documents import Document
from llm_mia.metrics import auroc
from llm_mia.settings import ModelSettings, ScoringSettings
from llm_mia.workflows.precision import PrecisionCheck, fidelity, precision_check, sample_documents
from llm_mia.workflows.score import score_documents

TEXTS = [
    "the cat sat on the mat and looked at the door",
    "a dog ran across the field after the red ball",
    "rain fell over the quiet town all night long",
    "she wrote a letter to her brother in the city",
    "the old clock in the hall struck twelve twice",
    "green hills rolled away under a grey sky",
    "they built a small boat from driftwood and rope",
    "the market opened early on the first spring day",
    "he read the map twice before he left the road",
    "bright lamps hung along the narrow stone bridge",
]
SCORERS = ("loss", "min_k:k=0.2", "min_k_plus_plus:k=0.2")


def _documents():
    return [Document(id=f"d{i}", text=t, label=i % 2) for i, t in enumerate(TEXTS)]


def _settings(path, dtype):
    return ScoringSettings(
        models=ModelSettings(model=str(path), dtype=dtype, device="cpu"), scorers=SCORERS, cache=False
    )


def test_the_check_compares_the_same_sample_scored_plainly_in_each_precision(tiny_model_dirs):
    documents = _documents()
    check = precision_check(documents, _settings(tiny_model_dirs["llama"], "bfloat16"), size=8, seed=3)
    picked = [documents[i] for i in sample_documents(documents, 8, seed=3)]
    low = score_documents(picked, _settings(tiny_model_dirs["llama"], "bfloat16")).rows
    full = score_documents(picked, _settings(tiny_model_dirs["llama"], "float32")).rows
    assert check.sampled == 8 and check.of == 10 and check.dtype == "bfloat16"
    assert [s.scorer for s in check.scorers] == ["loss", "min_k", "min_k_plus_plus"]
    for fid in check.scorers:
        a = np.array([row[fid.scorer] for row in low])
        b = np.array([row[fid.scorer] for row in full])
        assert fid.max_abs_difference == pytest.approx(np.max(np.abs(a - b)), abs=0)
        assert fid.spearman == pytest.approx(spearmanr(a, b).statistic)
        assert fid.max_abs_difference > 0  # bfloat16 weights and activations do move the scores
        assert fid.auroc_float32 is None  # no labels given
    assert set(check.seconds) == {"bfloat16", "float32"}
    again = PrecisionCheck.from_dict(json.loads(json.dumps(check.to_dict())))
    assert again == check


def test_with_labels_the_auroc_under_each_precision():
    low = [0.1, 0.5, 0.35, 0.9, 0.2, 0.7]
    full = [0.12, 0.45, 0.4, 0.8, 0.25, 0.66]
    labels = [0, 1, 0, 1, 0, 1]
    fid = fidelity("loss", low, full, labels)
    assert fid.auroc_float32 == auroc(np.array(full), np.array(labels))
    assert fid.auroc_dtype == auroc(np.array(low), np.array(labels))
    assert fid.auroc_float32_ci[0] <= fid.auroc_float32 <= fid.auroc_float32_ci[1]
    assert fid.max_abs_difference == pytest.approx(0.1)
    nan = fidelity("loss", [1.0, float("nan"), 3.0], [1.0, 2.0, 2.5])
    assert nan.documents == 2 and nan.max_abs_difference == pytest.approx(0.5)


def test_the_sample_is_seeded_and_refuses_nothing_to_sample():
    documents = _documents()
    assert sample_documents(documents, 4, seed=1) == sample_documents(documents, 4, seed=1)
    assert sample_documents(documents, 4, seed=1) != sample_documents(documents, 4, seed=2)
    with pytest.raises(Exception, match="positive number"):
        sample_documents(documents, 0, seed=0)


def test_cli_prints_and_records_the_check_and_refuses_it_in_float32(tiny_model_dirs, tmp_path, capsys):
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    output = tmp_path / "scores.jsonl"
    model = str(tiny_model_dirs["gpt2"])
    common = ["score", "--input", str(source), "--model", model, "--device", "cpu", "--scorers", *SCORERS]
    assert main([*common, "--precision-check", "4"]) == 2
    assert "add --dtype bfloat16 or float16" in capsys.readouterr().err
    code = main([*common, "--dtype", "bfloat16", "--precision-check", "4", "--output", str(output), "--no-cache"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "precision check: 4 of 10 document(s)" in printed and "rank correlation" in printed
    record = json.loads((tmp_path / "scores.jsonl.run.json").read_text())
    assert record["precision_check"]["dtype"] == "bfloat16" and record["precision_check"]["sampled"] == 4
    assert [s["scorer"] for s in record["precision_check"]["scorers"]] == ["loss", "min_k", "min_k_plus_plus"]
