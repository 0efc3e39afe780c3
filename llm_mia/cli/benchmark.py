"""Run a known-split benchmark end to end: build the split, train, score with every scorer, evaluate, report.

examples:
  llm-mia benchmark                                           # list the benchmarks and their sizes
  llm-mia benchmark gpt2-wikipedia                            # CI size: about a minute on 2 CPU cores
  llm-mia benchmark smollm2-wikipedia --size full --output-dir results/smollm2
  llm-mia benchmark gpt2-python-docs --size full --threads 1  # needs: apt-get install python3.11-doc
  llm-mia benchmark gpt2-wikipedia --epochs 0 1 --seed 3      # epoch 0 = the model before any training

A benchmark builds its own ground truth: a seeded random split of one real collection (cleaned, exact and
13-gram near-duplicates removed) into members, non-members, calibration controls and, for models trained from
scratch, reference and tokenizer text. It then fine-tunes SmolLM2-135M or trains a GPT-2 from scratch on the
members, saving snapshots after the listed epochs, and scores every snapshot with every registered scorer (the
reference scorer reads SmolLM2 before fine-tuning, or a GPT-2 trained the same way on the reference text).

Per epoch it prints AUROC [95% CI] and TPR at 0.1/1/5% FPR with the n of non-members each rests on, the blind
baseline (a bag-of-words classifier that never sees the model; near 0.5 on a random split), a threshold
calibrated at 5% FPR on the calibration controls with the FPR it reaches on the non-members, and a control: the
same scorers under the reference model, which never saw the members (near 0.5 unless the split is biased).

Splits and trained models are cached in the llm-mia cache (bench/), so a second run only scores. The report
directory gets results.md (tables), results.json (every number, settings, hashes, timings), manifest.json (the
split), auroc_by_epoch.png/.svg and per epoch scores.jsonl, evaluation.json and ROC / histogram figures.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from llm_mia.errors import LlmMiaError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from llm_mia.bench.run import PRESETS

    parser.add_argument("name", nargs="?", help=f"benchmark to run: {', '.join(PRESETS)} (none: list them)")
    parser.add_argument("--size", choices=("ci", "full"), default="ci", help="ci (minutes) or full (default: ci)")
    parser.add_argument("--output-dir", help="report directory (default: llm-mia-benchmarks/NAME-SIZE)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report in --output-dir")
    add_run_arguments(parser)
    overrides = parser.add_argument_group("changing the preset (the report records the change)")
    overrides.add_argument("--epochs", type=int, nargs="+", metavar="N", help="snapshot epochs, e.g. 0 1 2 4")
    overrides.add_argument("--seed", type=int, help="seed of the split and of training")
    overrides.add_argument("--members", type=int, help="number of members (and of non-members)")
    overrides.add_argument("--learning-rate", type=float, help="peak learning rate")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared with ``llm-mia demo``: threads, device, cache, progress."""
    group = parser.add_argument_group("running")
    group.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: torch's choice); on a busy shared machine 1 is often fastest",
    )
    group.add_argument("--device", default="cpu", help="cpu (default, deterministic), cuda or auto")
    group.add_argument("--no-cache", action="store_true", help="rebuild the split and retrain instead of re-using")
    group.add_argument("--no-progress", action="store_true", help="hide progress bars")


def busy_machine_hint(threads: int | None) -> str | None:
    """A hint to pass ``--threads 1`` when other work keeps the cores busy and no thread count was given.

    Under contention, torch's waiting OpenMP threads spin on cores that other processes need: on a busy 2-core
    machine one thread trained SmolLM2 2.5-3x faster than two.
    """
    if threads is not None or not hasattr(os, "getloadavg"):
        return None
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load < 0.75 * cores:
        return None
    return (
        f"note: this machine is busy (load average {load:.1f} on {cores} cores); if this run is slow, "
        f"--threads 1 is often several times faster on a shared machine"
    )


def run_with_arguments(config: Any, output_dir: Path, args: argparse.Namespace) -> Any:
    """Run a benchmark config with the shared running flags (see add_run_arguments), after the busy-machine hint."""
    from llm_mia.bench.run import run_benchmark

    hint = busy_machine_hint(args.threads)
    if hint:
        print(hint)
    return run_benchmark(
        config,
        output_dir=output_dir,
        device=args.device,
        use_cache=not args.no_cache,
        progress=not args.no_progress,
        threads=args.threads,
        echo=print,
    )


def list_presets() -> list[str]:
    from llm_mia.bench.run import PRESETS

    lines = ["benchmarks (llm-mia benchmark NAME --size SIZE):"]
    for name, sizes in PRESETS.items():
        lines.append(f"  {name}:")
        for size, config in sizes.items():
            split = config.split
            lines.append(
                f"    {size:5} {config.description}; {split.members} members / {split.nonmembers} non-members / "
                f"{split.calibration} calibration, epochs {', '.join(map(str, config.training.epochs))}"
            )
    return lines


def print_epoch(epoch: Any, config: Any) -> None:
    """The evaluation table of one snapshot, then calibration, control and any distribution-shift warning."""
    from llm_mia.metrics import format_fpr
    from llm_mia.report import format_table

    print()
    print(f"after {epoch.epoch} epoch{'s' if epoch.epoch != 1 else ''} of training:")
    for line in format_table(epoch.evaluation):
        print(f"  {line}")
    fpr = format_fpr(config.calibration_fpr)
    if not any(epoch.calibration.values()):
        print(f"  thresholds at {fpr} FPR: not fitted (too few calibration controls for that FPR)")
    for name, entry in epoch.calibration.items():
        if entry is None:
            continue
        held = entry["heldout_nonmembers"]
        low, high = held["fpr_ci"]
        print(
            f"  {name}: threshold at {fpr} FPR fitted on {entry['n_controls']} calibration controls flags "
            f"{entry['members_flagged']}/{entry['n_members']} members and {held['false_positives']}/"
            f"{held['n_controls']} non-members (FPR {held['fpr']:.3f} [{low:.3f}, {high:.3f}])"
        )
    loss = epoch.control.scorers.get("loss")
    if loss is not None:
        print(
            f"  control: loss under the reference model (never saw the members): AUROC {loss.auroc:.3f} "
            f"[{loss.auroc_ci[0]:.3f}, {loss.auroc_ci[1]:.3f}] (near 0.5 unless the split is biased)"
        )
    warning = epoch.evaluation.warning()
    if warning:
        print(f"  {warning}")


def run(args: argparse.Namespace) -> int:
    from llm_mia.bench.run import check_report_dir, get_preset

    if args.name is None:
        for line in list_presets():
            print(line)
        return 0
    config = get_preset(args.name, args.size).with_overrides(
        epochs=args.epochs, seed=args.seed, members=args.members, learning_rate=args.learning_rate
    )
    output_dir = Path(args.output_dir or Path("llm-mia-benchmarks") / f"{args.name}-{args.size}")
    if args.output_dir is None:
        output_dir.parent.mkdir(exist_ok=True)
    check_report_dir(output_dir, overwrite=args.overwrite)
    if args.threads is not None and args.threads < 1:
        raise LlmMiaError(f"--threads {args.threads}: need at least 1")
    print(f"benchmark {config.name} ({config.size}): {config.description}")
    result = run_with_arguments(config, output_dir, args)
    for epoch in result.epochs:
        print_epoch(epoch, config)
    timings = result.timings
    print()
    print(
        f"wall time {timings['total_seconds']:.0f} s (training {timings['training_seconds']:.0f} s, scoring "
        f"{timings['scoring_seconds']:.0f} s); report in {output_dir}/ (results.md, results.json, plots)"
    )
    return 0
