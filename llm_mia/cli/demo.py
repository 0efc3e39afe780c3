"""A first run of the toolkit's main job, on texts whose membership is known: which texts was the model trained on?

examples:
  llm-mia demo                                # report in ./llm-mia-demo/; see the cost below
  llm-mia demo --output-dir /tmp/demo --overwrite
  llm-mia demo --members 48 --epochs 3        # more texts and more repetition: tighter intervals, longer run

What it does, with the packaged SmolLM2-135M and Wikipedia lead summaries (both installed by the set-up):
  1. draws 24 summaries at random as members, 24 as non-members and 24 as calibration controls (seeded;
     duplicates removed first), so members and non-members come from the same collection;
  2. fine-tunes SmolLM2 (all weights) on the members for 2 epochs, as a real fine-tune would;
  3. scores all 72 texts with every scorer (the reference scorer compares with SmolLM2 before fine-tuning);
  4. reports how well each scorer separates members from non-members (AUROC with its interval, TPR at low FPR
     with the n it rests on), the blind baseline (a classifier that never sees the model), a threshold
     calibrated at 5% FPR on the controls, and what SmolLM2 scored before fine-tuning;
  5. prints a summary in plain words and writes the tables and plots to the report directory.

The fine-tuned model is cached, so a second run only scores. Cost, measured with benchmarks/demo_cost.py on a
2-core AMD EPYC at load 3.2-3.5: the first run 566 s and 4.34 GiB of memory at its peak (fine-tuning all weights
in float32 with AdamW needs 16 bytes per weight), a rerun 264 s and 1.81 GiB. The same pipeline at other sizes
and on other models: `llm-mia benchmark`.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from llm_mia.cli.common import add_run_arguments, check_cache_root_writable, print_epoch, run_with_arguments
from llm_mia.errors import LlmMiaError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="llm-mia-demo", help="report directory (default: llm-mia-demo)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report in --output-dir")
    parser.add_argument(
        "--members", type=int, default=24, help="members, and as many non-members and controls (default: 24)"
    )
    parser.add_argument("--epochs", type=int, default=2, help="epochs of fine-tuning (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of training (default: 0)")
    add_run_arguments(parser)


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def summary_lines(result: Any) -> list[str]:
    """The plain-words summary of a demo run: what was done, what the numbers say, and what they do not."""
    from llm_mia.stats.metrics import format_fpr, p_phrase

    config = result.config
    epoch = result.epochs[-1]
    evaluation = epoch.evaluation
    sizes = result.split.manifest["sizes"]
    n_members, n_nonmembers, n_controls = sizes["member"], sizes["nonmember"], sizes["calibration"]
    lines = [
        "What happened",
        f"  SmolLM2-135M was fine-tuned for {epoch.epoch} epoch{'s' if epoch.epoch != 1 else ''} on {n_members} "
        f"Wikipedia summaries (the members). {n_nonmembers} other summaries from the same collection, drawn at "
        f"random, were never shown to it (the non-members); {n_controls} more serve as known-unseen controls.",
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


def run(args: argparse.Namespace) -> int:
    from llm_mia.known_split.presets import get_preset
    from llm_mia.workflows.benchmark_report import check_report_dir

    if args.members < 5:
        raise LlmMiaError(f"--members {args.members}: the blind baseline's 5-fold cross-validation needs at least 5")
    if args.epochs < 1:
        raise LlmMiaError(f"--epochs {args.epochs}: fine-tune for at least 1 epoch")
    output_dir = check_report_dir(Path(args.output_dir), overwrite=args.overwrite)
    check_cache_root_writable()  # the split and the fine-tuned model are cached there
    preset = get_preset("smollm2-wikipedia", "demo")
    config = preset.with_overrides(epochs=(args.epochs,), seed=args.seed, members=args.members)
    config = dataclasses.replace(config, split=dataclasses.replace(config.split, calibration=args.members))
    print(
        f"llm-mia demo: fine-tune SmolLM2-135M on {args.members} Wikipedia summaries, then ask which texts it was "
        f"trained on (about 10 minutes and 4.3 GiB on 2 busy CPU cores; the fine-tuned model is cached for later runs)"
    )
    result = run_with_arguments(config, output_dir, args, extra_scorers=False)
    print_epoch(result.epochs[-1], config)
    print()
    for line in summary_lines(result):
        print(line)
    timings = result.timings
    print()
    print(
        f"done in {timings['total_seconds']:.0f} s (fine-tuning {timings['training_seconds']:.0f} s, scoring "
        f"{timings['scoring_seconds']:.0f} s). Report: {output_dir}/results.md, ROC and histogram plots in "
        f"{output_dir}/epoch-{result.epochs[-1].epoch}/, every number in {output_dir}/results.json"
    )
    return 0
