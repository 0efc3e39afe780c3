"""Every command's workflow result follows one protocol: ``record``, ``summary_lines()``, ``write(destination)``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from llm_mia.workflows.benchmark_defenses import DefenseResult
from llm_mia.workflows.benchmark_report import BenchmarkReport
from llm_mia.workflows.cache import CacheReport
from llm_mia.workflows.calibrate import Calibration, VerdictReport
from llm_mia.workflows.canary import CanaryTest, MadeCanaries, PlantedCanaries
from llm_mia.workflows.check_backend import BackendCheck
from llm_mia.workflows.dataset import DatasetTestReport
from llm_mia.workflows.decop import DecopRun
from llm_mia.workflows.demo import DemoReport, DemoSettings
from llm_mia.workflows.evaluate import EvaluationReport
from llm_mia.workflows.extraction import ExtractionProbeRun, ExtractionTestReport
from llm_mia.workflows.plan import PlannedAnalysis
from llm_mia.workflows.results import WorkflowResult, WritableResult
from llm_mia.workflows.samia import SamiaRun
from llm_mia.workflows.score_job import ScoreJob
from llm_mia.workflows.scorer_list import ScorerListing
from llm_mia.workflows.shadow import ShadowEvaluation
from llm_mia.workflows.synthetic import SyntheticTestReport
from llm_mia.workflows.verify import Verification

WRITABLE = [
    BenchmarkReport, DemoReport, DefenseResult, Calibration, VerdictReport, CanaryTest, DatasetTestReport, DecopRun,
    EvaluationReport, ExtractionProbeRun, ExtractionTestReport, PlannedAnalysis, SamiaRun, ScoreJob,
    ShadowEvaluation, SyntheticTestReport,
]  # fmt: skip
# results whose files the workflow itself writes (or that have none)
READ_ONLY = [BackendCheck, CacheReport, MadeCanaries, PlantedCanaries, ScorerListing, Verification]


@pytest.mark.parametrize("result_type", WRITABLE + READ_ONLY, ids=lambda t: t.__name__)
def test_every_result_type_has_a_record_and_summary_lines(result_type: type) -> None:
    fields = {f.name for f in dataclasses.fields(result_type)}
    assert "record" in fields or isinstance(getattr(result_type, "record", None), property), result_type
    assert callable(result_type.summary_lines)


@pytest.mark.parametrize("result_type", WRITABLE, ids=lambda t: t.__name__)
def test_a_result_with_files_writes_them(result_type: type) -> None:
    assert callable(result_type.write)


def test_a_result_is_a_workflow_result_and_writes_where_it_is_told(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "label": 1, "group": None, "status": "ok", "decop": 0.5, "decop_accuracy": 0.5},
        {"id": "b", "label": 0, "group": None, "status": "ok", "decop": 0.25, "decop_accuracy": 0.25},
        {"id": "c", "label": 0, "group": None, "status": "no paraphrases", "decop": None, "decop_accuracy": None},
    ]
    run = DecopRun(rows=rows, record={"tool": "llm-mia decop"})
    assert isinstance(run, WorkflowResult) and isinstance(run, WritableResult)
    written = run.write(tmp_path / "decop.jsonl")
    assert [p.name for p in written] == ["decop.jsonl", "decop.jsonl.run.json"]
    assert [json.loads(line)["id"] for line in written[0].read_text().splitlines()] == ["a", "b", "c"]
    assert run.summary_lines() == [
        "mean DE-COP probability 0.375 (chance 0.25; compare with control works, not with chance)"
    ]


def test_a_canary_result_writes_its_json_and_says_what_it_found(tmp_path: Path) -> None:
    record = {
        "warning": None, "commitment_checked": False, "secret_sha256": "ab" * 32, "siblings_per_canary": 9,
        "per_canary": [{"canary": "c0", "rank": 1, "p_value": 0.1, "exposure": 3.32}],
        "verdict": "not distinguishable", "assumption": "uniform rank",
    }  # fmt: skip
    result = CanaryTest(record)
    lines = result.summary_lines()
    assert lines[0].startswith("warning: no --commitment given")
    assert "  c0: rank 1 of 10, p = 0.1, exposure 3.3 bits" in lines
    (path,) = result.write(tmp_path / "result.json")
    assert json.loads(path.read_text()) == record


def test_the_demo_refuses_too_few_members_or_epochs_before_anything_runs() -> None:
    with pytest.raises(Exception, match="at least 5"):
        DemoSettings(members=4)
    with pytest.raises(Exception, match="at least 1 epoch"):
        DemoSettings(epochs=0)
    config = DemoSettings(members=6, epochs=1, seed=3).config()
    assert (config.split.members, config.split.calibration, config.split.seed) == (6, 6, 3)
    assert config.training.epochs == (1,)


def test_a_cache_report_says_what_verify_found_and_fails_only_on_damage_it_kept() -> None:
    kept = CacheReport("verify", {"checked": 4, "damaged": ["k1"], "deleted": False})
    assert kept.summary_lines() == ["4 entries checked, 1 damaged"] and not kept.ok
    dropped = CacheReport("verify", {"checked": 4, "damaged": ["k1"], "deleted": True})
    assert dropped.summary_lines() == ["4 entries checked, 1 damaged (deleted)"] and dropped.ok
    assert isinstance(kept, WorkflowResult) and not isinstance(kept, WritableResult)
