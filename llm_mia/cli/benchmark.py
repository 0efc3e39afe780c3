"""Run a known-split benchmark end to end: build the split, train, score with every scorer, evaluate, report.

examples:
  llm-mia benchmark                                           # list the benchmarks and their sizes
  llm-mia benchmark gpt2-wikipedia                            # CI size: minutes on 2 CPU cores (every scorer)
  llm-mia benchmark smollm2-wikipedia --size full --output-dir results/smollm2
  llm-mia benchmark gpt2-python-docs --size full --threads 1  # needs: apt-get install python3.11-doc
  llm-mia benchmark gpt2-wikipedia --epochs 0 1 --seed 3      # epoch 0 = the model before any training
  llm-mia benchmark gpt2-wikipedia --scorers loss neighbourhood:n=10  # other scorers, on the cached models
  llm-mia benchmark smollm2-wikipedia --size full --dtype mixed       # what a lower precision costs in AUROC

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
from pathlib import Path
from typing import Any

from llm_mia.cli.common import add_run_arguments, write_and_summarise
from llm_mia.cli.flags import add_flags
from llm_mia.errors import LlmMiaError
from llm_mia.io.outputs import check_cache_root_writable

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from llm_mia.known_split.presets import PRESETS

    parser.add_argument("name", nargs="?", help=f"benchmark to run: {', '.join(PRESETS)} (none: list them)")
    parser.add_argument("--size", choices=("ci", "full"), default="ci", help="ci (minutes) or full (default: ci)")
    parser.add_argument("--output-dir", help="report directory (default: llm-mia-benchmarks/NAME-SIZE)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report in --output-dir")
    add_run_arguments(parser)
    precision = parser.add_argument_group(
        "scoring precision (training is float32, so every dtype scores the same cached models; the report and "
        "results.json name the dtype)"
    )
    add_flags(precision, "dtype")
    overrides = parser.add_argument_group("changing the preset (the report records the change)")
    overrides.add_argument("--epochs", type=int, nargs="+", metavar="N", help="snapshot epochs, e.g. 0 1 2 4")
    overrides.add_argument("--seed", type=int, help="seed of the split and of training")
    overrides.add_argument("--members", type=int, help="number of members (and of non-members)")
    overrides.add_argument("--learning-rate", type=float, help="peak learning rate")
    overrides.add_argument(
        "--scorers",
        nargs="+",
        metavar="SPEC",
        help="scorers to run instead of every default and opt-in one, e.g. loss neighbourhood:n=10 (dc_pdd and "
        "recall without a corpus/prefix read pool text outside the split)",
    )
    defenses = parser.add_argument_group("defenses (one row per setting, at the last snapshot epoch)")
    defenses.add_argument(
        "--defense",
        nargs="+",
        metavar="SPEC",
        help="measure defense settings instead: none, dp:epsilon=E, dp:noise=S, weight_decay:lambda=L, dropout:p=P, "
        "early_stopping:patience=N (training-time: a cached training run each), temperature:t=T, noise:scale=S, "
        "round:decimals=D, top_k:k=K (inference-time: on the undefended model)",
    )
    defenses.add_argument(
        "--attacks",
        nargs="+",
        metavar="SCORER",
        default=["loss", "min_k_plus_plus", "reference"],
        help="attacks each defense is measured against (default: loss min_k_plus_plus reference)",
    )


def run(args: argparse.Namespace) -> int:
    from llm_mia.known_split.presets import get_preset
    from llm_mia.workflows.benchmark_report import check_report_dir

    if args.name is None:
        from llm_mia.workflows.benchmark_report import preset_lines

        for line in preset_lines():
            print(line)
        return 0
    config = get_preset(args.name, args.size).with_overrides(
        epochs=args.epochs, seed=args.seed, members=args.members, learning_rate=args.learning_rate
    )
    from llm_mia.scoring.scorers import parse_scorer_specs

    if args.defense and args.dtype != "float32":
        raise LlmMiaError("--defense measures defenses in float32: leave out --dtype")
    # names and hyperparameters checked now, not after the split is built and the models trained
    parse_scorer_specs(args.attacks if args.defense else args.scorers, has_reference=True)
    output_dir = Path(args.output_dir or Path("llm-mia-benchmarks") / f"{args.name}-{args.size}")
    if args.output_dir is None:
        output_dir.parent.mkdir(exist_ok=True)
    check_report_dir(output_dir, overwrite=args.overwrite)
    check_cache_root_writable()  # splits and trained models are cached there
    print(f"benchmark {config.name} ({config.size}): {config.description}")
    running = {
        "device": args.device, "use_cache": not args.no_cache, "progress": not args.no_progress,
        "threads": args.threads, "echo": print,
    }  # fmt: skip
    if args.defense:
        return run_defenses(config, output_dir, args, running)
    from llm_mia.workflows.benchmark_report import benchmark_report

    report = benchmark_report(config, scorers=args.scorers, dtype=args.dtype, **running)
    write_and_summarise(report, output_dir)
    timings = report.timings
    print()
    print(
        f"wall time {timings['total_seconds']:.0f} s (training {timings['training_seconds']:.0f} s, scoring "
        f"{timings['scoring_seconds']:.0f} s); report in {output_dir}/ (results.md, results.json, plots)"
    )
    return 0


def run_defenses(config: Any, output_dir: Path, args: argparse.Namespace, running: dict[str, Any]) -> int:
    """``--defense``: one row per setting (llm_mia.workflows.benchmark_defenses), printed and written to the report."""
    from llm_mia.workflows.benchmark_defenses import run_defense_benchmark

    result = run_defense_benchmark(config, args.defense, attacks=args.attacks, **running)
    print()
    write_and_summarise(result, output_dir)
    print(f"report in {output_dir}/ (defenses.md, defenses.json, privacy_utility.png)")
    return 1 if result.failures() else 0
