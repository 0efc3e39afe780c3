"""The one bundle writer every kind of plan goes through (``llm_mia.evidence.bundle.write_bundle``), without a
model: an analysis that fails leaves no bundle that looks complete, and one that succeeds gives the files the
bundle format lists, a manifest that ``sha256sum -c`` would accept and a report that shows the evidence hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from llm_mia.evidence.bundle import MANIFEST, BundleContent, RunStart, evidence_hash, manifest_lines, write_bundle
from llm_mia.evidence.plan import Plan


def _plan(tmp_path: Path) -> tuple[Plan, Path]:
    plan = Plan({"format": "llm-mia plan", "kind": "test", "models": {"target": {"files_sha256": "f" * 64}}})
    path = tmp_path / "plan.json"
    plan.write(path)
    return plan, path


def _analysis(staging: Path, observer):
    observer({"view": "target", "documents": 2})  # one model call, into the query log
    (staging / "rows.jsonl").write_text('{"id": "a"}\n', encoding="utf-8")
    results = {"verdict": "not distinguishable", "verdict_sentence": "not distinguishable from the controls"}
    return BundleContent(results, lambda digest: f"<html><body>{digest}</body></html>\n")


def test_a_failed_analysis_leaves_no_bundle(tmp_path: Path) -> None:
    plan, path = _plan(tmp_path)

    def failing(staging: Path, observer):
        (staging / "rows.jsonl").write_text("half a file", encoding="utf-8")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        write_bundle(tmp_path / "bundle", plan, path, failing, start=RunStart.now(), pdf=False)
    assert not (tmp_path / "bundle").exists()
    assert (tmp_path / "bundle.partial" / "query-log.jsonl").is_file()  # closed, and kept for the rerun to replace


def test_a_bundle_holds_its_files_a_checkable_manifest_and_the_evidence_hash(tmp_path: Path) -> None:
    plan, path = _plan(tmp_path)
    (tmp_path / "bundle.partial").mkdir()
    (tmp_path / "bundle.partial" / "leftover.txt").write_text("from a killed run")  # removed before the run
    bundle = write_bundle(tmp_path / "bundle", plan, path, _analysis, start=RunStart.now(), pdf=False)
    directory = tmp_path / "bundle"
    assert bundle.directory == directory and not (tmp_path / "bundle.partial").exists()
    names = sorted(p.name for p in directory.iterdir())
    assert names == sorted(
        [MANIFEST, "environment.json", "plan.json", "plan.json.sha256", "query-log.jsonl", "report.html",
         "results.json", "rows.jsonl", "run.json"]
    )  # fmt: skip
    assert (directory / "plan.json").read_bytes() == path.read_bytes()
    for line in (directory / MANIFEST).read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest
    data_files = [n for n in names if n not in (MANIFEST, "report.html")]
    assert bundle.evidence_sha256 == evidence_hash(manifest_lines(directory, data_files))
    assert bundle.evidence_sha256 in (directory / "report.html").read_text()
    results = json.loads((directory / "results.json").read_text())
    assert results["verdict"] == bundle.verdict == "not distinguishable"
    run = json.loads((directory / "run.json").read_text())
    assert "execution" not in run and run["plan"] == str(path) and run["query_log"]["lines"] == 1
