"""Per-document verdicts and p-values from a calibration (`llm-mia calibrate`) and a score file.

examples:
  llm-mia verdict --calibration calibration.json --scores suspects.jsonl
  llm-mia verdict --calibration calibration.json --scores suspects.jsonl --adjust none --output verdicts.csv
  llm-mia verdict --calibration calibration.json --scores chapters.jsonl --units documents

For each document: p = (1 + #{controls >= score}) / (n + 1) against the n calibration controls, and
  member        "consistent with training on this text": score above the calibrated threshold, or, across
                several documents (Benjamini-Hochberg, the default there), BH-adjusted p <= alpha (with
                groups: its group called a member and its p passing BH within the group);
  non-member    "not distinguishable from the control texts";
  inconclusive  no score; a text longer, shorter or denser (bytes per token) than every control, whose score
                is not comparable with theirs; or (with BH) p <= alpha alone but not after the adjustment.
Judged one at a time, alpha x N of N unseen documents would be called members; across several documents BH
(the default) keeps the expected share of unseen documents among those called members at alpha instead, and
the output says when too few controls make a discovery impossible. When documents share a group (the score
file's group column: the work or source each came from) and some group holds several of them, BH counts
groups, not documents (--units auto, the default): documents of one work share its effect, so they are one
finding, and BH over them would let unseen works in. Each group gets a Simes p-value from its documents, BH
runs across groups, and within the groups called members BH names the documents (at alpha x selected/groups,
Benjamini & Bogomolov 2014); the output prints a row per group and says which unit every correction is over.
--units documents corrects over documents instead (valid under positive dependence, PRDS, and then stated).
The guarantee of the threshold (marginal: on average over control sets; conditional: with stated confidence
for this set) is printed with it. A non-member verdict is not evidence that the model never saw the text: this
scorer on this model could not tell. A verdict is evidence with a stated error rate, not certainty.

The scores must come from the same model, scorer and settings as the controls (checked against both run
records) and must not include any control text (checked by SHA-256, whatever the ids or files).
"""

from __future__ import annotations

import argparse

from llm_mia.io.score_files import check_score_output
from llm_mia.stats.verdicts import ADJUSTMENTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calibration", required=True, help="calibration file written by `llm-mia calibrate`")
    parser.add_argument("--scores", required=True, help="score file (.jsonl/.csv) of the documents to judge")
    parser.add_argument(
        "--adjust",
        choices=("auto", *ADJUSTMENTS),
        default="auto",
        help="multiple-testing adjustment across documents: auto (default: bh, Benjamini-Hochberg, for more than "
        "one document under a marginal calibration), bh or none (each document judged alone)",
    )
    parser.add_argument(
        "--units",
        choices=("auto", "groups", "documents"),
        default="auto",
        help="what BH counts: auto (default: groups when the score file's group column puts several judged "
        "documents in one group), groups (Simes within each group, BH across groups, then within the groups "
        "called members), or documents",
    )
    parser.add_argument("--output", help="write one row per document to this .jsonl or .csv file")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="judge scores even when their run record names another model, scorer or settings than the controls'",
    )


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.calibrate import Calibration, VerdictSettings, judge_score_file

    output = check_score_output(args.output, overwrite=args.overwrite) if args.output else None
    settings = VerdictSettings(adjust=args.adjust, allow_mismatch=args.allow_mismatch, units=args.units)
    calibration = Calibration.read(args.calibration)
    report = judge_score_file(calibration, args.scores, settings)
    for line in report.header_lines():
        print(line)
    if output is None:
        for line in report.table_lines():
            print(line)
    for line in report.group_table_lines():
        print(line)
    for line in report.summary_lines():
        print(line)
    if output is not None:
        report.write(output)
        print(f"wrote {len(report.rows)} verdicts to {output} and {output}.run.json")
    return 0
