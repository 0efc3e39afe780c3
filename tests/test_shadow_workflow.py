"""The shadow-model workflow end to end on the GPT-2-from-scratch recipe (CI size): training resumes after a kill,
scoring writes the documents x models matrix, evaluation runs every attack, and damaged input is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from llm_mia.cli import main
from llm_mia.errors import InputError
from llm_mia.shadow.signals import MEAN_LL, SignalMatrix
from llm_mia.workflows.shadow import ShadowSettings, load_population, train_shadow_models

pytestmark = [pytest.mark.slow, pytest.mark.train]  # trains the shadow models
ARGS = ["--recipe", "gpt2-wikipedia", "--models", "4", "--population", "40", "--z-documents", "12", "--epochs", "2"]


def test_training_resumes_after_a_kill_then_scores_and_evaluates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("LLM_MIA_CACHE", str(tmp_path / "cache"))
    output = tmp_path / "population"
    command = [sys.executable, "-m", "llm_mia", "shadow", "train", "--output", str(output), "--threads", "1", *ARGS]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    manifest = output / "shadow.json"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:  # kill it as soon as the first model is recorded
            if manifest.is_file() and json.loads(manifest.read_text() or "{}").get("model_dirs"):
                break
            if process.poll() is not None:
                pytest.fail(f"shadow train exited with {process.returncode} before a model was recorded")
            time.sleep(0.05)
        process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    done = json.loads(manifest.read_text())["model_dirs"]
    assert 1 <= len(done) < 5, done  # killed part-way
    first, first_dir = next(iter(done.items()))
    stamp = (Path(first_dir) / "model.safetensors").stat().st_mtime_ns

    lines: list[str] = []
    settings = ShadowSettings(models=4, population=40, z_documents=12, epochs=2, threads=1)
    population = train_shadow_models(settings, output, progress=False, echo=lines.append)
    assert f"{5 - len(done)} to train, {len(done)} already trained" in lines[0]
    assert (Path(first_dir) / "model.safetensors").stat().st_mtime_ns == stamp  # not trained again
    assert population.model_dirs[first] == Path(first_dir) and len(population.model_dirs) == 5
    # the inclusion matrix on disk is the one its seed draws: balanced, every model a half
    assert (population.inclusion.sum(axis=1) == 2).all() and set(population.inclusion.sum(axis=0)) == {20}
    assert population.target_members.sum() == 20

    assert main(["shadow", "score", "--output", str(output), "--signals", "zlib", "--no-progress"]) == 0
    matrix = SignalMatrix.load(output / "signals")
    assert matrix.models[-1] == "target" and matrix.signal(MEAN_LL).shape == (40, 5)
    assert {"zlib", "n_tokens", "loss", "min_k_plus_plus"} <= set(matrix.values)
    assert np.allclose(matrix.signal(MEAN_LL), matrix.signal("loss"))  # the loss column is -NLL, higher = member
    # a model scores its own training documents higher, on average, than the others
    trained = matrix.signal(MEAN_LL)[:, :4][population.inclusion].mean()
    assert trained > matrix.signal(MEAN_LL)[:, :4][~population.inclusion].mean()

    capsys.readouterr()
    assert main(["shadow", "evaluate", "--output", str(output), "--k", "2", "4"]) == 0
    printed = capsys.readouterr().out
    for attack in (
        "| loss | - |",
        "| shokri | 4 |",
        "| lira-offline (variance global) | 4 |",
        "| lira-online (variance global) | 4 |",
        "| rmia (a = ",
    ):
        assert attack in printed
    assert "| lira-offline | 2 | 1 OUT model(s): LiRA offline needs at least 2" in printed
    results = json.loads((output / "attacks.json").read_text())["results"]
    online = next(r for r in results if r["attack"] == "lira-online" and r["k"] == 4)
    assert 0 <= online["auroc"] <= 1 and online["n_members"] == 20 and online["n_nonmembers"] == 20

    # other settings in the same directory are refused; a damaged inclusion matrix names its line
    with pytest.raises(InputError, match="other settings"):
        train_shadow_models(ShadowSettings(models=2, population=40, z_documents=12), output, progress=False)
    path = output / "inclusion.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",2"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"inclusion.csv, line 4: expected an id and 5 cells of 0 or 1"):
        load_population(output)


def test_models_trained_in_several_processes_are_the_models_one_process_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes, one model each at a time: the same weights, byte for byte, as training them in turn."""
    from llm_mia.io.identity import sha256_file

    settings = dict(models=2, population=24, z_documents=4, epochs=1, threads=1)
    weights = []
    for processes in (2, 1):
        monkeypatch.setenv("LLM_MIA_CACHE", str(tmp_path / f"cache-{processes}"))
        population = train_shadow_models(
            ShadowSettings(processes=processes, **settings), tmp_path / f"run-{processes}", progress=False
        )
        assert all(
            str(path).startswith(str(tmp_path / f"cache-{processes}")) for path in population.model_dirs.values()
        )
        weights.append({name: sha256_file(path / "model.safetensors") for name, path in population.model_dirs.items()})
    assert weights[0] == weights[1] and len(weights[0]) == 3


def test_a_target_with_another_tokenizer_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dirs
) -> None:
    """Mean token log-likelihoods of models with different tokenizers are not comparable: scoring refuses."""
    from llm_mia.workflows.shadow import score_shadow_models

    monkeypatch.setenv("LLM_MIA_CACHE", str(tmp_path / "cache"))
    settings = ShadowSettings(models=2, population=16, z_documents=4, epochs=1, threads=1)
    output = tmp_path / "population"
    train_shadow_models(settings, output, progress=False)
    manifest = json.loads((output / "shadow.json").read_text())
    manifest["model_dirs"]["target"] = str(tiny_model_dirs["llama"])  # a model of another family
    (output / "shadow.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="do not share a tokenizer"):
        score_shadow_models(output, progress=False, cache=False)
