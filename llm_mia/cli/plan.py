"""Pre-register a dataset-level analysis: fix the models, the texts, the passages and the test before any
score is seen.

examples:
  llm-mia plan --suspect my_book.txt --control other_books/ --question "Was model M trained on my book?" \\
      --analyst "A. Expert, Firm LLP" --control-rationale "24 novels of the same genre first published \\
      after the model's data cutoff (2024-06), from the same publisher's catalogue" --output plan.json
  llm-mia evidence run plan.json --output-dir bundle/
  llm-mia verify bundle/
  llm-mia plan --analysis extraction --reference ./older-model --suspect my_book.txt --control other_books/ \\
      --question "Does model M write my book back?" --analyst "A. Expert" --control-rationale "..." --output p.json

The plan (plan.json, canonical JSON) records the question, the analyst and the time; every file of every
model with its SHA-256 and size; every source file and every passage (cut now, with the target model's
tokenizer: the unit of analysis cannot change later) with its SHA-256; why the control works are a fair
comparison (--control-rationale, required); the scorers, the test, alpha, the half-splits and every seed; the
one primary outcome; package versions. Its SHA-256 is printed and written to plan.json.sha256; keep a copy
elsewhere (an e-mail to the other side, a timestamping service) to show later that the plan came first.
No model weights are loaded and nothing is scored.
"""

from __future__ import annotations

import argparse

from llm_mia.cli.common import write_and_summarise
from llm_mia.cli.dataset_test import add_test_arguments, settings_from_args
from llm_mia.errors import LlmMiaError
from llm_mia.io.outputs import check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_test_arguments(parser)
    group = parser.add_argument_group("plan")
    group.add_argument("--question", required=True, help="the question in words")
    group.add_argument("--analyst", required=True, help="who prepares the analysis (name, affiliation)")
    group.add_argument(
        "--control-rationale",
        required=True,
        help="how the control works were chosen and why the model cannot have seen them (a sentence or more)",
    )
    group.add_argument(
        "--precision-check",
        type=int,
        metavar="N",
        help="required with a --dtype other than float32: score N passages (a seeded sample, no labels read) in "
        "both precisions and record what the lower one moves, in the plan",
    )
    group.add_argument("--output", default="plan.json", help="the plan file (default: plan.json)")
    group.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    group.add_argument(
        "--analysis",
        choices=("dataset-test", "extraction"),
        default="dataset-test",
        help="the primary outcome: the dataset-level test (default), or the verbatim-extraction test (extract-test; "
        "its options below, passages of k + L tokens)",
    )
    from llm_mia.cli.extract_test import add_probe_arguments

    add_probe_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.plan import PlannedAnalysis, build_plan

    if not args.control:
        raise LlmMiaError("a plan needs --control: the control works the model cannot have seen")
    if args.analysis == "extraction":
        from llm_mia.cli.extract_test import plan_extraction

        return plan_extraction(args)
    output = check_output_file(args.output, overwrite=args.overwrite, suffixes=(".json",))
    settings = settings_from_args(args)
    plan = build_plan(
        args.suspect,
        args.control,
        settings,
        question=args.question,
        analyst=args.analyst,
        control_rationale=args.control_rationale,
        precision_check=args.precision_check,
    )
    path, sidecar = write_and_summarise(PlannedAnalysis(plan), output)
    print(f"wrote {path} and {sidecar}; keep the hash somewhere the other side can see it was fixed first")
    return 0
