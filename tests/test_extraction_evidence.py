"""An extraction analysis as evidence: planned, run and verified end to end on a tiny model that memorised the
work, with the report showing the verbatim matches and verify re-generating passages token for token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_extraction import random_work, train
from tiny_models import make_tiny_model

from llm_mia.cli import main


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("extraction-evidence")
    base = make_tiny_model(root / "base", "llama", max_positions=128, vocab_size=400)
    work = [random_work(seed, words=6) for seed in range(1, 11)]
    suspect = root / "suspect.jsonl"
    suspect.write_text("".join(json.dumps({"id": f"part{i}", "text": t}) + "\n" for i, t in enumerate(work)))
    control = root / "control.jsonl"
    control.write_text(
        "".join(json.dumps({"id": f"c{s}", "text": random_work(500 + s, words=12)}) + "\n" for s in range(24))
    )
    return {"target": train(base, work, root / "target"), "reference": base, "suspect": suspect, "control": control}


@pytest.mark.train
def test_an_extraction_analysis_is_planned_run_and_verified(case, tmp_path: Path, capsys) -> None:
    plan = tmp_path / "plan.json"
    argv = ["plan", "--analysis", "extraction", "--model", str(case["target"]), "--reference", str(case["reference"]),
            "--device", "cpu", "--suspect", str(case["suspect"]), "--control", str(case["control"]),
            "--prefix-tokens", "8", "--target-tokens", "12", "--splits", "3", "--question", "Was it trained on?",
            "--analyst", "A. Tester", "--control-rationale", "24 works drawn by the same generator, never trained on",
            "--output", str(plan)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    data = json.loads(plan.read_text())
    assert data["kind"] == "extraction" and data["settings"]["prefix_tokens"] == 8
    assert "greedy continuations" in data["primary_outcome"] and data["design"]["control_works"] >= 19
    bundle = tmp_path / "bundle"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["evidence", "run", str(plan), "--output", str(bundle), "--no-pdf", *cache]) == 0
    out = capsys.readouterr().out
    assert "consistent with training on this work" in out
    results = json.loads((bundle / "results.json").read_text())
    assert results["kind"] == "extraction" and len(results["passage_evidence"]["extracted"]) >= 8
    report = (bundle / "report.html").read_text()
    assert "<mark>" in report and "Consistent with training on this work" in report
    log = [json.loads(line) for line in (bundle / "query-log.jsonl").read_text().splitlines()]
    assert {e["view"] for e in log} == {"target", "reference"} and all(e["model_sha256"] for e in log)
    assert main(["verify", str(bundle), "--rescore", "5", "--full"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "every generated token as recorded" in out and "full re-run" in out
    rows = (bundle / "extraction.jsonl").read_text().splitlines()
    first = json.loads(rows[0])
    first["generated_ids"] = first["generated_ids"][::-1]
    (bundle / "extraction.jsonl").write_text("\n".join([json.dumps(first), *rows[1:]]) + "\n")
    assert main(["verify", str(bundle), "--rescore", "0"]) == 1
    assert "extraction.jsonl changed" in capsys.readouterr().out


def test_an_extraction_plan_refuses_dataset_test_options(case, tmp_path: Path, capsys) -> None:
    argv = ["plan", "--analysis", "extraction", "--model", str(case["target"]), "--suspect", str(case["suspect"]),
            "--control", str(case["control"]), "--passage-tokens", "64", "--question", "q?", "--analyst", "a",
            "--control-rationale", "five words of rationale here", "--output", str(tmp_path / "p.json")]  # fmt: skip
    assert main(argv) == 2
    assert "give --prefix-tokens and --target-tokens" in capsys.readouterr().err
