"""`llm-mia score` and `llm-mia list` end to end through main([...]), and the Python API's equal numbers."""

from __future__ import annotations

import csv
import json

import pytest

import llm_mia
from llm_mia.cli import main
from llm_mia.io.score_files import META_COLUMNS


@pytest.fixture()
def labelled_jsonl(tmp_path):
    path = tmp_path / "texts.jsonl"
    rows = [
        {"id": "m1", "text": "the river carried cold water past old mills", "label": 1},
        {"id": "n1", "text": "quiet fields of barley where a farmer mended fences", "label": 0},
        {"id": "empty", "text": "  ", "label": 0},
        {"id": "short", "text": "a", "label": 1},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_writes_jsonl_with_statuses_and_a_run_record(tiny_model_dirs, labelled_jsonl, tmp_path, capsys):
    output = tmp_path / "scores.jsonl"
    model = str(tiny_model_dirs["gpt2"])
    code = main(["score", "--model", model, "--input", str(labelled_jsonl), "--output", str(output), "--no-progress"])
    assert code == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["m1", "n1", "empty", "short"]
    assert list(rows[0])[: len(META_COLUMNS)] == list(META_COLUMNS)
    assert {"loss", "zlib", "lowercase", "min_k", "min_k_plus_plus", "perplexity"} <= set(rows[0])
    assert rows[0]["status"] == "ok" and rows[0]["label"] == 1 and isinstance(rows[0]["loss"], float)
    assert rows[2]["status"].startswith("empty") and rows[2]["loss"] is None
    assert rows[3]["status"].startswith("no scorable tokens") and rows[3]["min_k"] is None
    record = json.loads((tmp_path / "scores.jsonl.run.json").read_text())
    assert record["models"]["target"]["adds_bos"] is False
    assert record["input"]["documents"] == 4 and len(record["input"]["sha256"]) == 64
    assert "2 with a non-ok status" in capsys.readouterr().out


def test_api_gives_the_same_numbers_as_the_cli(tiny_model_dirs, labelled_jsonl, tmp_path):
    output = tmp_path / "scores.csv"
    model = str(tiny_model_dirs["llama"])
    args = ["score", "--model", model, "--input", str(labelled_jsonl), "--output", str(output), "--no-progress"]
    # no cache: entries from other runs were computed in other batches, equal only up to float rounding
    assert main([*args, "--no-cache", "--scorers", "loss", "min_k:k=0.1,0.5"]) == 0
    with output.open() as handle:
        cli_rows = list(csv.DictReader(handle))
    documents = llm_mia.read_documents(labelled_jsonl)
    frame = llm_mia.score(documents, model=model, scorers=["loss", "min_k:k=0.1,0.5"], progress=False)
    assert list(frame.columns) == [*META_COLUMNS, "loss", "min_k[k=0.1]", "min_k[k=0.5]"]
    for cli_row, (_, api_row) in zip(cli_rows, frame.iterrows(), strict=True):
        assert cli_row["id"] == api_row["id"]
        for column in ("loss", "min_k[k=0.1]", "min_k[k=0.5]"):
            if cli_row[column] == "":
                assert api_row[column] != api_row[column]  # NaN where the CLI left the cell empty
            else:
                assert float(cli_row[column]) == pytest.approx(api_row[column], rel=1e-12)


def test_existing_output_is_not_overwritten_without_the_flag(tiny_model_dirs, labelled_jsonl, tmp_path, capsys):
    output = tmp_path / "scores.jsonl"
    output.write_text("precious\n")
    args = ["score", "--model", str(tiny_model_dirs["gpt2"]), "--input", str(labelled_jsonl), "--output", str(output)]
    assert main([*args, "--no-progress"]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert output.read_text() == "precious\n"
    assert main([*args, "--no-progress", "--overwrite"]) == 0
    assert output.read_text().startswith('{"id": "m1"')


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scorers", "min-k"], "did you mean min_k"),
        (["--scorers", "reference"], "need a reference model"),
        (["--model", "/nowhere/model"], "was not found"),
        (["--model", "some-org/not-cached-model"], "never downloads"),
        (["--input", "/nowhere/texts.jsonl"], "no such file"),
    ],
)
def test_bad_arguments_fail_with_a_message(tiny_model_dirs, labelled_jsonl, extra, message, capsys):
    args = ["score", "--model", str(tiny_model_dirs["gpt2"]), "--input", str(labelled_jsonl), "--no-progress"]
    assert main([*args, *extra]) == 2
    assert message in capsys.readouterr().err


def test_invalid_utf8_input_names_the_line(tiny_model_dirs, tmp_path, capsys):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "na\xefve"}\n')
    assert main(["score", "--model", str(tiny_model_dirs["gpt2"]), "--input", str(path)]) == 2
    assert "latin1.jsonl:2: invalid UTF-8" in capsys.readouterr().err


def test_reference_scorer_through_the_cli(tiny_model_dirs, labelled_jsonl, tmp_path):
    output = tmp_path / "scores.jsonl"
    target, reference = str(tiny_model_dirs["gpt2"]), str(tiny_model_dirs["llama"])
    args = ["score", "--model", target, "--reference", reference, "--input", str(labelled_jsonl)]
    assert main([*args, "--scorers", "loss", "reference", "--output", str(output), "--no-progress"]) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert isinstance(rows[0]["reference"], float)
    record = json.loads((tmp_path / "scores.jsonl.run.json").read_text())
    assert set(record["models"]) == {"target", "reference"}


def test_list_prints_every_scorer(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("loss", "perplexity", "zlib", "lowercase", "min_k", "min_k_plus_plus", "reference"):
        assert f"\n{name} " in f"\n{out}"
    assert "k=0.2" in out
