"""Canary detection against repetitions and length, on a known-split recipe: plant, train, test.

Groups of N word canaries (S siblings each) are made per (length, repetitions): repetitions 0 is a group made
but never planted (its p-values should be uniform). Every planted copy joins the recipe's members as a training
document of its own, the recipe trains once on members and copies for ``epochs`` epochs (one training run hosts
every group, so a canary planted R times is seen R x epochs times), and each group is tested with
:func:`llm_mia.workflows.canary.run_canary_test` on the trained model. Per group: the median p-value, the share
of canaries at p <= alpha (with its exact interval) and Fisher's combined p-value.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from llm_mia.io.documents import Document


class _CanaryGroup(TypedDict):
    """Canaries of one length planted with one number of copies, and the secret file that lists them."""

    length: int
    repetitions: int
    secret: Path


def run_canary_benchmark(
    recipe: str,
    directory: Path,
    *,
    size: str = "ci",
    repetitions: Sequence[int] = (0, 1, 4, 16, 64),
    lengths: Sequence[int] = (16, 32),
    count: int = 5,
    siblings: int = 99,
    epochs: int = 1,
    seed: int = 0,
    alpha: float = 0.05,
    threads: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Make, plant, train and test (see the module docstring); secrets and the result go to ``directory``."""
    from llm_mia.backends.loading import ModelSettings
    from llm_mia.canaries.make import CanarySettings, make_canaries, write_secret
    from llm_mia.known_split.presets import get_preset
    from llm_mia.known_split.splits import build_split
    from llm_mia.known_split.training import fine_tune, train_from_scratch
    from llm_mia.known_split.training_loop import torch_threads
    from llm_mia.stats.metrics import clopper_pearson
    from llm_mia.workflows.canary import CanaryTestSettings, run_canary_test

    config = get_preset(recipe, size)
    training = dataclasses.replace(config.training, epochs=(epochs,))
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    groups: list[_CanaryGroup] = []
    for length in lengths:
        for repeat in repetitions:
            secret = directory / f"secret-L{length}-R{repeat}.json"
            if not secret.exists():
                group_seed = seed * 100_003 + length * 101 + repeat
                settings = CanarySettings(count=count, siblings=siblings, length=length, seed=group_seed)
                write_secret(make_canaries(settings), secret)
            groups.append({"length": length, "repetitions": repeat, "secret": secret})
    copies = []
    for group in groups:
        record = json.loads(group["secret"].read_text(encoding="utf-8"))
        for canary in record["canaries"]:
            for r in range(group["repetitions"]):
                copies.append(Document(id=f"L{group['length']}-{canary['id']}-copy-{r}", text=canary["text"]))
    with torch_threads(threads):
        split = build_split(config.split)
        corpus = [*split.members, *copies]
        if config.recipe == "fine-tune":
            trained = fine_tune(corpus, config=training, base=config.base_model, progress=progress)
        else:
            assert config.architecture is not None
            trained = train_from_scratch(
                corpus,
                tokenizer_texts=[d.text for d in split.tokenizer],
                config=training,
                architecture=config.architecture,
                role="canary-target",
                progress=progress,
            )
        trained_seconds = time.perf_counter() - started
        model = ModelSettings(model=str(trained.snapshots[epochs]), device="cpu")
        rows = []
        for group in groups:
            result = run_canary_test(group["secret"], CanaryTestSettings(models=model, alpha=alpha))
            p_values = np.array([row["p_value"] for row in result["per_canary"]])
            detected = int((p_values <= alpha).sum())
            low, high = clopper_pearson(detected, len(p_values))
            rows.append(
                {
                    "length": group["length"],
                    "repetitions": group["repetitions"],
                    "canaries": len(p_values),
                    "siblings": siblings,
                    "median_p": float(np.median(p_values)),
                    "detected": detected,
                    "detected_share": detected / len(p_values),
                    "detected_ci": [low, high],
                    "combined_p": result["combined_p_value"],
                    "p_values": p_values.tolist(),
                }
            )
    return {
        "recipe": recipe,
        "size": size,
        "epochs": epochs,
        "members": len(split.members),
        "planted_copies": len(copies),
        "training": {"directory": str(trained.directory), "reused": trained.reused, "seconds": trained_seconds},
        "alpha": alpha,
        "rows": rows,
        "wall_seconds": time.perf_counter() - started,
    }


def table_lines(result: dict[str, Any]) -> list[str]:
    """The result as a Markdown table, one row per (length, repetitions)."""
    lines = [
        "| length (tokens) | repetitions | canaries | median p | detected at p <= 0.05 [95% CI] | combined p |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        low, high = row["detected_ci"]
        planted = row["repetitions"] if row["repetitions"] else "0 (never planted)"
        lines.append(
            f"| {row['length']} | {planted} | {row['canaries']} | {row['median_p']:.2g} | "
            f"{row['detected']}/{row['canaries']} [{low:.2f}, {high:.2f}] | {row['combined_p']:.2g} |"
        )
    return lines


def plot_detection(result: dict[str, Any], path: Path) -> None:
    """Median p-value and share detected against repetitions, one line per length (log x; 0 drawn at 0.5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for length in sorted({row["length"] for row in result["rows"]}):
        rows = [row for row in result["rows"] if row["length"] == length]
        xs = [row["repetitions"] or 0.5 for row in rows]
        left.plot(xs, [row["median_p"] for row in rows], marker="o", label=f"{length} tokens")
        right.plot(xs, [row["detected_share"] for row in rows], marker="o", label=f"{length} tokens")
    for axis, label in ((left, "median p-value"), (right, "share detected at p <= 0.05")):
        axis.set_xscale("log")
        axis.set_xlabel("repetitions in the training corpus (0.5 = never planted)")
        axis.set_ylabel(label)
        axis.legend(fontsize=8)
    left.set_yscale("log")
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)
