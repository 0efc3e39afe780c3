"""Training and the end-to-end benchmark on tiny GPT-2 models: the pipeline measures membership, not an artefact.

A tiny GPT-2 trained for many epochs on a handful of documents must separate them from held-out documents of the
same collection (loss AUROC well above 0.5); the same model before any training must not (AUROC near 0.5 over
several seeds), and neither must the reference model trained on disjoint text nor the blind baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llm_mia.cli import main
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.known_split.gpt2 import train_tokenizer
from llm_mia.known_split.presets import BenchmarkConfig, get_preset
from llm_mia.known_split.splits import SplitConfig, build_split
from llm_mia.known_split.training import train_from_scratch
from llm_mia.known_split.training_config import Gpt2Architecture, TrainingConfig
from llm_mia.known_split.training_loop import tokenize_for_training, torch_threads
from llm_mia.scoring.scorers import all_scorers
from llm_mia.workflows.benchmark import calibrated_rates, run_benchmark
from llm_mia.workflows.benchmark_report import write_report

TINY = Gpt2Architecture(n_layer=2, n_embd=64, n_head=2, vocab_size=512, n_positions=128)


def tiny_config(*, epochs: tuple[int, ...], seed: int = 0, members: int = 16) -> BenchmarkConfig:
    return BenchmarkConfig(
        name="tiny",
        size="test",
        description="tiny GPT-2 on Wikipedia summaries",
        split=SplitConfig(
            corpus="wikipedia",
            members=members,
            nonmembers=members,
            calibration=0,
            reference=16,
            tokenizer=64,
            min_words=40,
            max_words=80,
            seed=seed,
        ),
        recipe="from-scratch",
        training=TrainingConfig(
            epochs=epochs, learning_rate=3e-3, batch_size=8, max_length=128, warmup_steps=2, seed=seed
        ),
        architecture=TINY,
        n_bootstrap=200,
    )


# ------------------------------------------------------------------------------------------------ training


@pytest.mark.train
def test_training_is_deterministic_and_cached(tmp_path: Path) -> None:
    documents = [Document(f"d{i}", f"Document number {i} talks about rivers, stones and lamps.") for i in range(6)]
    config = TrainingConfig(epochs=(0, 2), learning_rate=1e-3, batch_size=4, max_length=32, seed=7)
    common = {"tokenizer_texts": [d.text for d in documents], "config": config, "architecture": TINY}
    with torch_threads(1):
        first = train_from_scratch(documents, cache_root=tmp_path / "a", progress=False, **common)
        second = train_from_scratch(documents, cache_root=tmp_path / "b", progress=False, **common)
        reused = train_from_scratch(documents, cache_root=tmp_path / "a", progress=False, **common)
    assert not first.reused and not second.reused and reused.reused
    for epoch in (0, 2):  # bit-identical weights from independent runs
        assert first.record["snapshots"][str(epoch)]["files"] == second.record["snapshots"][str(epoch)]["files"]
    assert first.record["snapshots"]["0"]["files"] != first.record["snapshots"]["2"]["files"]
    record = json.loads((first.directory / "training.json").read_text())
    assert record["training"]["seed"] == 7
    assert [d["id"] for d in record["data"]] == [d.id for d in documents]
    assert len(record["epoch_losses"]) == 2 and record["epoch_losses"][1] < record["epoch_losses"][0]
    # damaged weights are detected instead of silently re-used
    weights = first.snapshots[2] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(LlmMiaError, match="differ from the hashes"):
        train_from_scratch(documents, cache_root=tmp_path / "a", progress=False, **common)


def test_training_sequences_match_scoring_tokenization_and_cover_every_token(tmp_path: Path) -> None:
    tokenizer = train_tokenizer(["a few words to learn a vocabulary from"] * 3, vocab_size=300, directory=tmp_path)
    text = "a few words " * 20
    content = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = tokenize_for_training([text], tokenizer, max_length=16)
    assert all(len(p) <= 16 for p in pieces)
    # GPT-2 style: no BOS; EOS closes the document; the pieces are the document's tokens in order
    assert [t for p in pieces for t in p] == [*content, tokenizer.eos_token_id]


def test_training_config_validates() -> None:
    with pytest.raises(InputError, match="epochs"):
        TrainingConfig(epochs=())
    with pytest.raises(InputError, match="learning_rate"):
        TrainingConfig(learning_rate=0)
    assert TrainingConfig(epochs=(4, 1, 2, 1)).epochs == (1, 2, 4)


# ------------------------------------------------------------------------------------------------ end to end


@pytest.fixture()
def bench_cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.mark.train
def test_trained_model_separates_members_and_untrained_model_does_not(bench_cache: Path, tmp_path: Path) -> None:
    with torch_threads(2):  # a caller with another thread count: the report names the run's own (below)
        result = run_benchmark(tiny_config(epochs=(0, 30)), cache_root=bench_cache, progress=False, threads=1)
        write_report(result, tmp_path / "report")
    untrained, trained = result.epoch(0), result.epoch(30)
    assert trained.evaluation.scorers["loss"].auroc > 0.9
    assert trained.evaluation.scorers["loss"].auroc_ci[0] > 0.7
    assert 0.25 < untrained.evaluation.scorers["loss"].auroc < 0.75
    # the split carries no signal of its own: a classifier that never sees the model, and the reference
    # model (trained the same way on disjoint text), do not separate members from non-members
    assert 0.25 < trained.evaluation.blind.auroc < 0.75
    assert 0.25 < trained.control.scorers["loss"].auroc < 0.75
    # every default scorer is evaluated, the reference scorer included, and the opt-in ones a benchmark adds
    # (ReCaLL only where one prefix text fits in half the context, which this tiny GPT-2's does not)
    defaults = {s.name for s in all_scorers().values() if not s.opt_in}
    assert set(trained.evaluation.scorers) == defaults | {"dc_pdd", "gradnorm"}
    # GradNorm's sign, checked on a model that memorised its members: a smaller gradient = a member
    assert trained.evaluation.scorers["gradnorm"].auroc > 0.6
    report = tmp_path / "report"
    for name in ("results.json", "results.md", "manifest.json", "auroc_by_epoch.png", "auroc_by_epoch.svg"):
        assert (report / name).is_file(), name
    for name in ("scores.jsonl", "scores.jsonl.run.json", "evaluation.json", "roc.png", "roc_loglog.svg"):
        assert (report / "epoch-30" / name).is_file(), name
    saved = json.loads((report / "results.json").read_text())
    assert [e["epoch"] for e in saved["epochs"]] == [0, 30]
    assert saved["epochs"][1]["evaluation"]["scorers"]["loss"]["auroc"] == pytest.approx(
        trained.evaluation.scorers["loss"].auroc
    )
    markdown = (report / "results.md").read_text()
    assert "| loss |" in markdown and "blind baseline" in markdown and "(n=16)" in markdown
    # the reports agree with the run they describe: 1 thread, as the console said, not the caller's 2
    assert result.torch_threads == 1 and "torch threads 1" in markdown
    assert saved["machine"].endswith("torch threads 1")


@pytest.mark.slow
def test_untrained_model_is_near_chance_over_seeds(bench_cache: Path) -> None:
    aurocs = []
    for seed in range(5):
        result = run_benchmark(
            tiny_config(epochs=(0,), seed=seed, members=24), cache_root=bench_cache, progress=False, threads=1
        )
        aurocs.append(result.epoch(0).evaluation.scorers["loss"].auroc)
    # 24 + 24 documents: one AUROC under the null has a standard deviation of about 0.085; the mean of 5, 0.04
    assert abs(np.mean(aurocs) - 0.5) < 0.12, aurocs
    assert all(0.2 < a < 0.8 for a in aurocs), aurocs


@pytest.mark.train
def test_benchmark_split_and_models_are_reused_from_the_cache(bench_cache: Path) -> None:
    config = tiny_config(epochs=(1,), members=8)
    first = run_benchmark(config, cache_root=bench_cache, progress=False, threads=1)
    second = run_benchmark(config, cache_root=bench_cache, progress=False, threads=1)
    assert not first.target.reused and second.target.reused and second.reference.reused
    assert second.split.fingerprint == first.split.fingerprint
    pd.testing.assert_frame_equal(first.epoch(1).frame, second.epoch(1).frame)


@pytest.mark.train
def test_named_scorers_replace_the_set_and_keep_the_control(bench_cache: Path) -> None:
    """--scorers runs only what it names (ReCaLL without a prefix reads pool text outside the split); the control
    still reads the reference model, and a scorer's numbers are those of the full run."""
    config = tiny_config(epochs=(1,), members=8)
    full = run_benchmark(config, cache_root=bench_cache, progress=False, threads=1)
    named = run_benchmark(
        config, cache_root=bench_cache, progress=False, threads=1, scorers=["loss", "neighbourhood:n=2", "dc_pdd"]
    )
    frame = named.epoch(1).frame
    assert {"loss", "neighbourhood[n=2]", "dc_pdd"} <= set(frame.columns) and "min_k" not in frame.columns
    np.testing.assert_array_equal(frame["loss"], full.epoch(1).frame["loss"])
    np.testing.assert_array_equal(frame["dc_pdd"], full.epoch(1).frame["dc_pdd"])
    assert named.epoch(1).control.scorers["loss"].auroc == full.epoch(1).control.scorers["loss"].auroc
    from llm_mia.workflows.benchmark_report import command_line

    assert command_line(named.config, scorers=named.scorers).endswith("--scorers loss neighbourhood:n=2 dc_pdd")
    described = {c["column"]: c for c in named.epoch(1).record["scorers"]}
    assert described["dc_pdd"]["params"]["corpus"].endswith("frequency-corpus.jsonl")


@pytest.mark.train
def test_a_lower_precision_scores_the_same_trained_models_and_says_so(bench_cache: Path, tmp_path: Path) -> None:
    """--dtype scores the cached float32 snapshots in another precision: the same training, scores that differ
    from float32's by rounding only, and a report whose command and settings name the precision."""
    config = tiny_config(epochs=(1,), members=8)
    scorers = ["loss", "min_k"]
    exact = run_benchmark(config, cache_root=bench_cache, progress=False, threads=1, scorers=scorers)
    lower = run_benchmark(config, cache_root=bench_cache, progress=False, threads=1, scorers=scorers, dtype="bfloat16")
    assert lower.target.directory == exact.target.directory and lower.target.reused
    assert lower.epoch(1).models["target"]["dtype"] == "bfloat16" and exact.dtype == "float32"
    difference = np.abs(lower.epoch(1).frame["loss"] - exact.epoch(1).frame["loss"])
    assert 0 < difference.max() < 0.1  # bfloat16 rounds the forward pass; it does not change what is computed
    write_report(lower, tmp_path / "report")
    markdown = (tmp_path / "report" / "results.md").read_text()
    assert "--dtype bfloat16" in markdown and "- scoring precision: bfloat16 (in effect: bfloat16)" in markdown
    assert json.loads((tmp_path / "report" / "results.json").read_text())["command"].startswith(
        "llm-mia benchmark tiny --size test --dtype bfloat16"
    )
    # --defense stays in float32: refused in one line before anything runs
    argv = ["benchmark", "gpt2-wikipedia", "--defense", "none", "--dtype", "bfloat16", "--output-dir",
            str(tmp_path / "refused")]  # fmt: skip
    assert main(argv) == 2 and not (tmp_path / "refused").exists()


@pytest.mark.slow
def test_tokenizer_split_is_disjoint_from_what_is_evaluated(bench_cache: Path) -> None:
    split = build_split(tiny_config(epochs=(1,)).split, cache_root=bench_cache)
    evaluated = {d.id for d in split.evaluation_documents()}
    assert not evaluated & {d.id for d in split.tokenizer}
    assert not evaluated & {d.id for d in split.reference}


def test_calibrated_rates_follow_the_documented_rule() -> None:
    # 20 controls 0..19 at 5% FPR: k = floor(0.05 * 21) - 1 = 0, so the threshold is the largest control (19)
    # and a document is flagged when its score is above it
    rows = [{"id": f"c{i}", "label": None, "status": "ok", "loss": float(i)} for i in range(20)]
    rows += [{"id": f"m{i}", "label": 1, "status": "ok", "loss": s} for i, s in enumerate([20.0, 25.0, 10.0])]
    rows += [{"id": f"n{i}", "label": 0, "status": "ok", "loss": s} for i, s in enumerate([5.0, 19.5, 30.0, 1.0])]
    frame = pd.DataFrame(rows)
    result = calibrated_rates(frame, "loss", calibration_ids={f"c{i}" for i in range(20)}, fpr=0.05)
    assert result["threshold"] == 19.0
    assert (result["members_flagged"], result["n_members"]) == (2, 3)
    assert result["heldout_nonmembers"]["false_positives"] == 2
    assert result["heldout_nonmembers"]["fpr"] == 0.5
    assert calibrated_rates(frame, "loss", calibration_ids={"c0", "c1"}, fpr=0.05) is None  # 2 < 19 controls


def test_presets_exist_in_every_size_and_validate() -> None:
    for name in ("smollm2-wikipedia", "gpt2-wikipedia", "gpt2-python-docs"):
        for size in ("ci", "full"):
            config = get_preset(name, size)
            assert config.split.members >= 8
    with pytest.raises(InputError, match="unknown benchmark"):
        get_preset("nope")
    with pytest.raises(InputError, match="unknown size"):
        get_preset("gpt2-wikipedia", "huge")


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_lists_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-wikipedia" in out and "gpt2-wikipedia" in out and "gpt2-python-docs" in out


def test_cli_refuses_unknown_benchmark_and_existing_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "nope"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
    (tmp_path / "results.json").write_text("{}")
    assert main(["benchmark", "gpt2-wikipedia", "--output-dir", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.train
def test_cli_runs_the_ci_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLM_MIA_CACHE", str(tmp_path / "cache"))
    report = tmp_path / "report"
    code = main(["benchmark", "gpt2-wikipedia", "--output-dir", str(report), "--threads", "1", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "after 8 epochs of training" in out and "blind baseline" in out and "control: loss" in out
    saved = json.loads((report / "results.json").read_text())
    assert saved["command"] == "llm-mia benchmark gpt2-wikipedia --size ci"
    defaults = {s.name for s in all_scorers().values() if not s.opt_in}
    assert set(saved["epochs"][-1]["evaluation"]["scorers"]) == defaults | {"dc_pdd", "gradnorm"}
    assert saved["epochs"][-1]["evaluation"]["scorers"]["loss"]["auroc"] > 0.8
    calibration = saved["epochs"][-1]["calibration"]["loss"]
    assert calibration["n_controls"] == 32 and calibration["heldout_nonmembers"]["n_controls"] == 32
