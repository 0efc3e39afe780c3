"""Per-document verdicts and p-values from a calibration (`llm-mia calibrate`) and a score file.

examples:
  llm-mia verdict --calibration calibration.json --scores suspects.jsonl
  llm-mia verdict --calibration calibration.json --scores suspects.jsonl --adjust bh --output verdicts.csv

For each document: p = (1 + #{controls >= score}) / (n + 1) against the n calibration controls, and
  member        "consistent with training on this text" : p <= alpha (alpha = the calibrated FPR),
  non-member    "not distinguishable from unseen text"  : p > alpha,
  inconclusive  no score, or (with --adjust bh) p <= alpha alone but not after the Benjamini-Hochberg
                adjustment across the documents.
A member verdict holds the FPR at alpha for one document judged alone; when judging many, --adjust bh
controls the false discovery rate among those flagged. A non-member verdict is not evidence that the model
never saw the text: this scorer on this model could not tell. A verdict is evidence with a stated error
rate, not certainty.

The scores must come from the same model, scorer and settings as the controls (checked against both run
records) and must not include the controls themselves.
"""

from __future__ import annotations

import argparse

from llm_mia.calibration import ADJUSTMENTS
from llm_mia.score_files import check_score_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calibration", required=True, help="calibration file written by `llm-mia calibrate`")
    parser.add_argument("--scores", required=True, help="score file (.jsonl/.csv) of the documents to judge")
    parser.add_argument(
        "--adjust",
        choices=ADJUSTMENTS,
        default="none",
        help="multiple-testing adjustment across documents: none (default) or bh (Benjamini-Hochberg)",
    )
    parser.add_argument("--output", help="write one row per document to this .jsonl or .csv file")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="judge scores even when their run record names another model, scorer or settings than the controls'",
    )


def run(args: argparse.Namespace) -> int:
    from llm_mia.records import write_run_record
    from llm_mia.score_files import write_rows
    from llm_mia.workflows.calibrate import Calibration, VerdictSettings, judge_score_file

    output = check_score_output(args.output, overwrite=args.overwrite) if args.output else None
    settings = VerdictSettings(adjust=args.adjust, allow_mismatch=args.allow_mismatch)
    calibration = Calibration.read(args.calibration, adjust=args.adjust)
    report = judge_score_file(calibration, args.scores, settings)
    for line in report.header_lines():
        print(line)
    if output is None:
        for line in report.table_lines():
            print(line)
    for line in report.summary_lines():
        print(line)
    if output is not None:
        write_rows(report.rows, output)
        write_run_record(output, report.record())
        print(f"wrote {len(report.rows)} verdicts to {output} and {output}.run.json")
    return 0
