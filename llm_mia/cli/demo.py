"""A first run of the toolkit's main job, on texts whose membership is known: which texts was the model trained on?

examples:
  llm-mia demo                                # report in ./llm-mia-demo/; see the cost below
  llm-mia demo --output-dir /tmp/demo --overwrite
  llm-mia demo --members 48 --epochs 3        # more texts and more repetition: tighter intervals, longer run

What it does, with the packaged SmolLM2-135M and Wikipedia lead summaries (both installed by the set-up):
  1. draws 24 summaries at random as members, 24 as non-members and 24 as calibration controls (seeded;
     duplicates removed first), so members and non-members come from the same collection;
  2. fine-tunes SmolLM2 on the members for 2 epochs, as a real fine-tune would, training the top 10 of its 30
     blocks (the rest frozen) so that the run fits in 2 GiB;
  3. scores all 72 texts with every scorer (the reference scorer compares with SmolLM2 before fine-tuning);
  4. reports how well each scorer separates members from non-members (AUROC with its interval, TPR at low FPR
     with the n it rests on), the blind baseline (a classifier that never sees the model), a threshold
     calibrated at 5% FPR on the controls, and what SmolLM2 scored before fine-tuning;
  5. prints a summary in plain words and writes the tables and plots to the report directory.

The fine-tuned model is cached, so a second run only scores. Cost, measured with benchmarks/demo_cost.py on a
2-core AMD EPYC (the load being the demo's own two threads): the first run 106-109 s and 1.64-1.69 GiB of memory at
its peak, a rerun 56 s and 1.35-1.46 GiB. How the training recipe was chosen: benchmarks/demo_recipe.py. The same
pipeline at other sizes (SmolLM2 with all weights fine-tuned) and with GPT-2 trained from scratch: `llm-mia benchmark`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llm_mia.cli.common import add_run_arguments, write_and_summarise
from llm_mia.io.outputs import check_cache_root_writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="llm-mia-demo", help="report directory (default: llm-mia-demo)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report in --output-dir")
    parser.add_argument(
        "--members", type=int, default=24, help="members, and as many non-members and controls (default: 24)"
    )
    parser.add_argument("--epochs", type=int, default=2, help="epochs of fine-tuning (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of training (default: 0)")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.benchmark_report import check_report_dir
    from llm_mia.workflows.demo import DemoSettings, run_demo

    settings = DemoSettings(members=args.members, epochs=args.epochs, seed=args.seed)
    output_dir = check_report_dir(Path(args.output_dir), overwrite=args.overwrite)
    check_cache_root_writable()  # the split and the fine-tuned model are cached there
    print(
        f"llm-mia demo: fine-tune SmolLM2-135M on {args.members} Wikipedia summaries, then ask which texts it was "
        f"trained on (about 2 minutes and 1.7 GiB on 2 CPU cores; the fine-tuned model is cached for later runs)"
    )
    report = run_demo(
        settings, device=args.device, use_cache=not args.no_cache, progress=not args.no_progress,
        threads=args.threads, echo=print,
    )  # fmt: skip
    write_and_summarise(report, output_dir)
    timings = report.timings
    print()
    print(
        f"done in {timings['total_seconds']:.0f} s (fine-tuning {timings['training_seconds']:.0f} s, scoring "
        f"{timings['scoring_seconds']:.0f} s). Report: {output_dir}/results.md, ROC and histogram plots in "
        f"{output_dir}/epoch-{report.result.epochs[-1].epoch}/, every number in {output_dir}/results.json"
    )
    return 0
