"""The defense benchmark on a tiny known split: one row per setting, the undefended model re-used by inference-time
defenses, DP rows audited against their accountant, and the broken-audit safeguard firing when it should."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from test_known_split_run import tiny_config

from llm_mia.errors import LlmMiaError
from llm_mia.workflows.benchmark_defenses import (
    DefenseResult,
    DefenseRow,
    parse_setting,
    run_defense_benchmark,
    write_defense_report,
)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("defense-bench")
    config = tiny_config(epochs=(2,), members=16)
    config = dataclasses.replace(config, split=dataclasses.replace(config.split, calibration=8))
    specs = ["none", "temperature:t=1", "temperature:t=3", "top_k:k=3", "dp:epsilon=4", "weight_decay:lambda=0.5"]
    found = run_defense_benchmark(config, specs, cache_root=root, progress=False, threads=1, echo=lambda line: None)
    write_defense_report(found, root / "report")
    return found, root


@pytest.mark.train
def test_every_setting_gets_a_row_and_temperature_one_is_no_defense(result) -> None:
    found, _ = result
    rows = {row.setting.spec: row for row in found.rows}
    assert list(rows) == [
        "none",
        "temperature:t=1",
        "temperature:t=3",
        "top_k:k=3",
        "dp:epsilon=4",
        "weight_decay:lambda=0.5",
    ]
    assert rows["temperature:t=1"].attacks == rows["none"].attacks
    assert rows["temperature:t=1"].utility["heldout_perplexity"] == rows["none"].utility["heldout_perplexity"]
    # a hotter deployment generates from a flatter distribution: worse perplexity
    assert rows["temperature:t=3"].utility["heldout_perplexity"] > rows["none"].utility["heldout_perplexity"]
    # top-k changes only what is returned: utility is the undefended model's, and the row says so
    assert rows["top_k:k=3"].utility["heldout_perplexity"] == rows["none"].utility["heldout_perplexity"]
    assert "only what is returned" in rows["top_k:k=3"].utility["note"]
    for row in found.rows:
        for attack in ("loss", "min_k_plus_plus", "reference"):
            entry = row.attacks[attack]
            assert 0 <= entry["auroc"] <= 1 and entry["nonmembers"] == 16


@pytest.mark.train
def test_training_defenses_train_their_own_model_and_dp_is_audited(result) -> None:
    found, _ = result
    rows = {row.setting.spec: row for row in found.rows}
    dp = rows["dp:epsilon=4"]
    assert 3.9 <= dp.privacy["epsilon"] <= 4.0 and dp.privacy["noise_multiplier"] > 0
    assert 0 <= dp.audit["epsilon_lower_bound"] <= dp.privacy["epsilon"]
    assert "independent trial" in dp.audit["assumption"]
    assert rows["none"].privacy is None and rows["weight_decay:lambda=0.5"].privacy is None
    assert not found.failures()


@pytest.mark.train
def test_the_report_files_hold_the_table_json_and_plot(result) -> None:
    _, root = result
    report = root / "report"
    markdown = (report / "defenses.md").read_text()
    assert "| `dp:epsilon=4` |" in markdown and "BROKEN" not in markdown
    assert "--defense none temperature:t=1 temperature:t=3 top_k:k=3 dp:epsilon=4 weight_decay:lambda=0.5" in markdown
    payload = json.loads((report / "defenses.json").read_text())
    assert [row["defense"] for row in payload["rows"]] == ["none", *[r.setting.spec for r in result[0].rows][1:]]
    assert (report / "privacy_utility.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.train
def test_an_audit_above_the_accountant_is_reported_broken(result, tmp_path: Path) -> None:
    found, _ = result
    dp = next(row for row in found.rows if row.privacy)
    broken = DefenseRow(
        setting=dp.setting,
        epoch=dp.epoch,
        attacks=dp.attacks,
        utility=dp.utility,
        privacy=dp.privacy,
        audit={**dp.audit, "epsilon_lower_bound": dp.privacy["epsilon"] + 1.0},
    )
    flagged = DefenseResult(config=found.config, rows=[broken])
    assert flagged.failures() == ["dp:epsilon=4"]
    write_defense_report(flagged, tmp_path)
    assert "**BROKEN:**" in (tmp_path / "defenses.md").read_text()


def test_unknown_and_out_of_range_settings_are_refused_before_training() -> None:
    with pytest.raises(LlmMiaError, match="training-time: dp, weight_decay, dropout, early_stopping; inference-time"):
        parse_setting("blur:x=1")
    with pytest.raises(LlmMiaError, match="temperature > 0"):
        run_defense_benchmark(tiny_config(epochs=(1,)), ["none", "temperature:t=0"], echo=lambda line: None)
