"""The workflows as library calls, and what a new user trips over: empty input, one string, score files from
other tools, Ctrl-C, a resumed run saying so, the lazy import."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import llm_mia
from llm_mia.backends.loading import ModelSettings
from llm_mia.cli import main
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.errors import InputError, LlmMiaError, NotFittedError
from llm_mia.scoring.settings import ScoringSettings
from llm_mia.workflows.evaluate import EvaluationSettings, evaluate_table
from llm_mia.workflows.score import score_documents


def test_importing_the_package_and_the_statistics_loads_no_torch():
    code = (
        "import sys, llm_mia, llm_mia.stats.metrics, llm_mia.stats.verdicts, llm_mia.stats.blind_baseline, "
        "llm_mia.stats.dataset_inference, "
        "llm_mia.io.records, llm_mia.io.score_files, llm_mia.cli; print('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_settings_are_validated_before_any_model_loads():
    with pytest.raises(LlmMiaError, match="unknown scorer 'los'"):
        ScoringSettings(scorers=("los",))
    with pytest.raises(LlmMiaError, match="need a reference model"):
        ScoringSettings(scorers=("reference",))
    with pytest.raises(LlmMiaError, match="dtype"):
        ModelSettings(dtype="float8")
    with pytest.raises(LlmMiaError, match="window"):
        ExtractionSettings(window=1)
    with pytest.raises(LlmMiaError, match="not the string"):
        ScoringSettings(scorers="loss")
    assert isinstance(LlmMiaError("x"), ValueError) and issubclass(NotFittedError, AttributeError)


def test_empty_inputs_are_refused_before_loading_a_model(tmp_path, capsys):
    missing_model = ScoringSettings(models=ModelSettings(model=str(tmp_path / "no-model")))
    with pytest.raises(InputError, match="no documents"):
        score_documents([], missing_model)
    with pytest.raises(InputError, match="all 2 document"):
        score_documents([llm_mia.Document("a", " "), llm_mia.Document("b", "")], missing_model)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["score", "--input", str(empty), "--model", str(tmp_path / "no-model")]) == 2
    assert "no documents; nothing to score" in capsys.readouterr().err


def test_one_string_is_one_document(tiny_model_dirs):
    frame = llm_mia.score("the river carried cold water", model=str(tiny_model_dirs["gpt2"]), progress=False)
    assert len(frame) == 1 and frame.loc[0, "status"] == "ok"
    assert frame.loc[0, "text_sha256"] == llm_mia.io.identity.sha256_text("the river carried cold water")


def test_score_workflow_returns_rows_and_a_full_run_record(tiny_model_dirs, tmp_path):
    settings = ScoringSettings(
        models=ModelSettings(model=str(tiny_model_dirs["llama"]), device="cpu"),
        scorers=("loss", "min_k:k=0.5"),
        extraction=ExtractionSettings(progress=False),
        cache=False,
    )
    documents = [llm_mia.Document("a", "the river carried cold water"), llm_mia.Document("b", "old mills")]
    run = score_documents(documents, settings, source="here")
    assert [row["id"] for row in run.rows] == ["a", "b"] and run.is_main
    record = run.record
    assert record["tool"] == "llm-mia score" and record["input"]["documents"] == 2
    assert record["scorers"] == [
        {"column": "loss", "scorer": "loss", "params": {}},
        {"column": "min_k[k=0.5]", "scorer": "min_k", "params": {"k": 0.5}},
    ]
    assert record["settings"] == {
        "batch_size": 8,
        "window": None,
        "stride": None,
        "block_documents": 256,
        "threads": None,
    }
    assert "argv" in record and "llm_mia_commit" in record and record["execution"]["processes"] == 1
    _, written = run.write(tmp_path / "s.jsonl")
    assert json.loads(written.read_text())["input"]["sha256"] == record["input"]["sha256"]


def test_evaluate_ignores_text_columns_and_needs_no_status(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = [1] * 15 + [0] * 15
    frame = pd.DataFrame(
        {
            "id": [f"d{i}" for i in range(30)],
            "label": labels,
            "text": [f"text {i}" for i in range(30)],
            "loss": rng.normal(size=30) + np.array(labels),
        }
    )
    path = tmp_path / "other_tool.csv"
    frame.to_csv(path, index=False)
    assert main(["evaluate", "--scores", str(path), "--no-blind", "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "loss" in out and "text" not in out.split("evaluated")[1].split("\n")[3]
    with pytest.raises(InputError, match="map each document id to its text"):
        evaluate_table(frame, texts=list(frame["text"]), settings=EvaluationSettings(n_bootstrap=10))


def test_ctrl_c_gives_a_resume_hint_not_a_traceback(monkeypatch, tiny_model_dirs, tmp_path, capsys):
    import llm_mia.workflows.score_job as score_job  # what `llm-mia score` calls

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(score_job, "score_documents", interrupted)
    text = tmp_path / "t.txt"
    text.write_text("some text")
    assert main(["score", "--input", str(text), "--model", str(tiny_model_dirs["gpt2"])]) == 130
    error = capsys.readouterr().err
    assert "interrupted" in error and "run the same command again to resume" in error and "Traceback" not in error


def test_a_resumed_run_says_so(tiny_model_dirs, tmp_path, capsys):
    texts = tmp_path / "t.jsonl"
    texts.write_text(
        "".join(json.dumps({"id": str(i), "text": f"the river {i} carried water"}) + "\n" for i in range(5))
    )
    args = ["score", "--input", str(texts), "--model", str(tiny_model_dirs["gpt2"]), "--cache-dir", str(tmp_path)]
    assert main([*args, "--output", str(tmp_path / "a.jsonl")]) == 0
    capsys.readouterr()
    assert main([*args, "--output", str(tmp_path / "b.jsonl")]) == 0
    assert "resuming, 5 document(s) found in the stats cache" in capsys.readouterr().err
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
