"""The first run (``llm-mia demo``): fine-tune the packaged SmolLM2 on known texts, then find which texts it was
trained on, and say in plain words what the numbers mean.

The demo is the ``smollm2-wikipedia`` benchmark at its ``demo`` size (:mod:`llm_mia.workflows.benchmark`), with
as many calibration controls as members and without the opt-in scorers; :class:`DemoReport` adds the summary.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm_mia.errors import LlmMiaError
from llm_mia.known_split.presets import BenchmarkConfig, get_preset
from llm_mia.stats.metrics import format_fpr, p_phrase
from llm_mia.workflows.benchmark import BenchmarkResult, run_benchmark
from llm_mia.workflows.benchmark_report import BenchmarkReport, epoch_lines

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoSettings:
    """``members``: member texts, and as many non-members and calibration controls; ``epochs``: epochs of
    fine-tuning; ``seed``: of the split and of training. Checked on construction, before anything trains."""

    members: int = 24
    epochs: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.members < 5:
            raise LlmMiaError(
                f"--members {self.members}: the blind baseline's 5-fold cross-validation needs at least 5"
            )
        if self.epochs < 1:
            raise LlmMiaError(f"--epochs {self.epochs}: fine-tune for at least 1 epoch")

    def config(self) -> BenchmarkConfig:
        """The benchmark configuration the demo runs."""
        preset = get_preset("smollm2-wikipedia", "demo")
        config = preset.with_overrides(epochs=(self.epochs,), seed=self.seed, members=self.members)
        return dataclasses.replace(config, split=dataclasses.replace(config.split, calibration=self.members))


@dataclass
class DemoReport(BenchmarkReport):
    """A demo run: a benchmark report (``result``, ``record``, ``timings``, ``write(directory)``) whose
    ``summary_lines()`` give the last snapshot's table, then the plain-words summary."""

    def summary_lines(self) -> list[str]:
        return [*epoch_lines(self.result.epochs[-1], self.result.config), "", *plain_summary_lines(self.result)]


def run_demo(
    settings: DemoSettings,
    *,
    device: str = "auto",
    use_cache: bool = True,
    progress: bool = True,
    threads: int | str | None = None,
    echo: Callable[[str], None] = logger.info,
) -> DemoReport:
    """Split, fine-tune (cached), score with every default scorer and evaluate; nothing is written."""
    result = run_benchmark(
        settings.config(),
        device=device,
        use_cache=use_cache,
        progress=progress,
        threads=threads,
        echo=echo,
        extra_scorers=False,
    )
    return DemoReport(result)


def _which_weights(config: BenchmarkConfig) -> str:
    blocks = config.training.trainable_blocks
    return "" if blocks is None else f", its top {blocks} blocks only (the rest frozen, so that the demo fits in 2 GiB)"


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def plain_summary_lines(result: BenchmarkResult) -> list[str]:
    """The plain-words summary of a demo run: what was done, what the numbers say, and what they do not."""
    config = result.config
    epoch = result.epochs[-1]
    evaluation = epoch.evaluation
    sizes = result.split.manifest["sizes"]
    n_members, n_nonmembers, n_controls = sizes["member"], sizes["nonmember"], sizes["calibration"]
    lines = [
        "What happened",
        f"  SmolLM2-135M was fine-tuned for {epoch.epoch} epoch{'s' if epoch.epoch != 1 else ''} on {n_members} "
        f"Wikipedia summaries (the members){_which_weights(config)}. {n_nonmembers} other summaries from the same "
        f"collection, drawn at random, were never shown to it (the non-members); {n_controls} more serve as "
        "known-unseen controls.",
        "",
        "What the numbers say",
    ]
    if not evaluation.scorers:
        return [*lines, "  no scorer could be evaluated; see the table above for why"]
    loss = evaluation.scorers.get("loss")
    primary = config.primary_scorer

    def describe(name: str, scored: Any) -> str:
        low, high = scored.auroc_ci
        return (
            f"{name}: AUROC {scored.auroc:.2f} [95% CI {low:.2f}, {high:.2f}]: a member text outscores a "
            f"non-member text {_percent(scored.auroc)} of the time (50% = coin flip, 100% = perfect separation)"
        )

    if loss is not None:
        lines.append(f"  - {describe('loss (how well the model predicts the text)', loss)}.")
    if primary in evaluation.scorers and primary != "loss":
        lines.append(
            f"  - {primary}, the scorer declared before the run: {describe(primary, evaluation.scorers[primary])}."
        )
    if evaluation.selection is not None:
        selection = evaluation.selection
        best = selection.best
        lines.append(
            f"  - the best of the {len(selection.scorers)} scorers tried is {best} (AUROC "
            f"{selection.aurocs[best]:.2f}); picking the best of several flatters it, and corrected for that "
            f"choice (a permutation test over all of them, labels of {selection.permuted} permuted) "
            f"{p_phrase(selection.family_p[best])}."
        )
    control = epoch.control.scorers.get("loss")
    if control is not None:
        low, high = control.auroc_ci
        if low <= 0.5 <= high:
            reading = (
                "Before training on the members it could not tell them apart, so the split itself carries no signal."
            )
        else:
            easier = "easier" if low > 0.5 else "harder"
            reading = (
                f"Before fine-tuning it already found these members {easier} to predict than these non-members: "
                "by chance, since the split is random, and likely with this few texts. The loss numbers start from "
                "that imbalance; the reference scorer measures only the change that fine-tuning made."
            )
        lines.append(
            f"  - SmolLM2 before fine-tuning: loss AUROC {control.auroc:.2f} [{low:.2f}, {high:.2f}]. {reading}"
        )
    blind = evaluation.blind
    if blind is not None:
        lines.append(
            f"  - a bag-of-words classifier that never sees the model: AUROC {blind.auroc:.2f} "
            f"[{blind.auroc_ci[0]:.2f}, {blind.auroc_ci[1]:.2f}] (chance level {blind.chance_auroc:.2f} on "
            f"these few texts), permutation {p_phrase(blind.permutation_p)}. "
            + (
                "It separates the sets: the texts differ in distribution, and the attack numbers above may "
                "measure that difference rather than training."
                if blind.separates
                else "It cannot tell the sets apart. That is no proof that they are alike (a subtler difference "
                "can escape a bag of words), but here the split was random, so the separation above comes from "
                "the fine-tuning."
            )
        )
    calibration = epoch.calibration.get(primary)
    if calibration is not None:
        held = calibration["heldout_nonmembers"]
        lines.append(
            f"  - a threshold on the {primary} score, set so that on average about "
            f"{format_fpr(config.calibration_fpr)} of unseen texts would be flagged (fitted on the "
            f"{calibration['n_controls']} controls), flags "
            f"{calibration['members_flagged']} of {calibration['n_members']} members and {held['false_positives']} "
            f"of {held['n_controls']} non-members (measured false-positive rate {held['fpr']:.2f}, 95% CI "
            f"{held['fpr_ci'][0]:.2f}-{held['fpr_ci'][1]:.2f})."
        )
    lines += [
        "",
        "What it does not say",
        f"  - {n_members} + {n_nonmembers} texts give wide intervals. A true-positive rate at 1% false positives "
        f"needs at least 2000 non-members to rest on 20 false positives, at 5% at least 400 (here {n_nonmembers}); "
        "figures resting on fewer are marked * in the table and biased up.",
        "  - Here membership is known because we did the training. For a real model and real texts, a high score "
        "is at most 'consistent with training': it needs controls the model provably never saw (llm-mia "
        "calibrate, llm-mia verdict) or many passages of one work (llm-mia dataset-test), and a blind baseline "
        "beside it. It is never proof.",
        "  - Fine-tuning for a few epochs on a few dozen texts leaves a much stronger trace than pretraining on "
        "a text once among billions: see benchmarks/RESULTS.md for how the signal grows with repetition.",
    ]
    return lines
