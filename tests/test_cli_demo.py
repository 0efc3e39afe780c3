"""`llm-mia demo` on the packaged SmolLM2: a small fine-tune split, every scorer, verdicts, report and summary.

Run at a reduced size (6 members, 1 epoch) to keep CI short; the default size is the same code with more texts, and
the same peak memory (the batch, not the number of texts, sets it): the first run must stay within 2 GiB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_mia.cli import main
from llm_mia.io.identity import cache_dir
from llm_mia.scoring.scorers import all_scorers


@pytest.fixture()
def demo_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache for splits and fine-tuned models that shares the converted SmolLM2 with the real cache."""
    real_models = cache_dir() / "models"
    real_models.mkdir(parents=True, exist_ok=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(real_models, target_is_directory=True)
    monkeypatch.setenv("LLM_MIA_CACHE", str(cache))
    return cache


@pytest.mark.slow
@pytest.mark.train
def test_demo_fine_tunes_scores_and_explains(
    demo_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "demo"
    argv = ["demo", "--members", "6", "--epochs", "1", "--output-dir", str(report), "--threads", "1", "--no-progress"]
    # the first run (split, fine-tune, scoring) in a process of its own, whose peak memory is its own: within 2 GiB
    printed = tmp_path / "printed.txt"
    with printed.open("w") as stdout:
        child = subprocess.Popen([sys.executable, "-m", "llm_mia", *argv], stdout=stdout)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    out = printed.read_text()
    assert child.returncode == 0, out
    assert usage.ru_maxrss * 1024 < 2 * 2**30, f"peak resident memory {usage.ru_maxrss / 2**20:.2f} GiB"
    for heading in ("What happened", "What the numbers say", "What it does not say"):
        assert heading in out
    assert "fine-tuned for 1 epoch on 6 Wikipedia summaries (the members), its top 10 blocks only" in out
    assert "coin flip" in out and "never proof" in out
    assert "SmolLM2 before fine-tuning: loss AUROC" in out
    for name in ("results.md", "results.json", "manifest.json"):
        assert (report / name).is_file(), name
    for name in ("roc.png", "roc_loglog.png", "histograms.png", "evaluation.json", "scores.jsonl"):
        assert (report / "epoch-1" / name).is_file(), name
    saved = json.loads((report / "results.json").read_text())
    command = saved["command"].split()
    assert command[:2] == ["llm-mia", "demo"]
    assert sorted(" ".join(command[2:]).lstrip("-").split(" --")) == ["epochs 1", "members 6"]
    scorers = saved["epochs"][0]["evaluation"]["scorers"]
    assert set(scorers) == {s.name for s in all_scorers().values() if not s.opt_in}  # every default scorer
    # one epoch of fine-tuning moves the member texts' likelihood far more than the others': the reference
    # scorer (fine-tuned vs original SmolLM2) ranks every member above every non-member here
    assert scorers["reference"]["auroc"] >= 0.8
    sizes = saved["split"]["sizes"]
    assert (sizes["member"], sizes["nonmember"], sizes["calibration"]) == (6, 6, 6)
    fine_tuned = list((demo_cache / "bench" / "models").glob("finetune-*"))
    assert len(fine_tuned) == 1 and (fine_tuned[0] / "epoch-1" / "model.safetensors").is_file()
    # a second run re-uses the fine-tuned model and refuses to overwrite the report without --overwrite
    assert main(argv) == 2
    assert main([*argv, "--overwrite"]) == 0
    assert "re-used" in capsys.readouterr().out


def test_demo_rejects_too_few_members(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--members", "3", "--output-dir", str(tmp_path / "d")]) == 2
    assert "at least 5" in capsys.readouterr().err
