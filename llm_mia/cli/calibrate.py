"""Calibrate a scorer on known non-members (controls): a threshold at a target FPR, checked on held-out controls.

examples:
  llm-mia score --input after_cutoff.jsonl --scorers min_k_plus_plus --output controls.jsonl
  llm-mia calibrate --controls controls.jsonl --fpr 0.01 --output calibration.json
  llm-mia calibrate --controls controls.jsonl --scorer loss --fpr 0.01 --guarantee conditional
  llm-mia calibrate --controls labelled_scores.jsonl --controls-from-labels --scorer zlib --fpr 0.05
  llm-mia verdict --calibration calibration.json --scores suspects.jsonl

Controls are texts the model cannot have seen (published after its training cutoff, or held out by
construction), of the same kind, length and format as the documents you will judge, scored with the same
model and scorer. The threshold is fitted on all of them. Two guarantees:
  marginal     (default) FPR <= the target on average over control sets; for your one set the FPR exceeds
               the target with a probability printed beside the threshold (0.37 for 100 controls at 1%).
               Needs >= 99 controls for 1%, 999 for 0.1%.
  conditional  FPR <= the target with 95% confidence (--delta 0.05) for this very set of controls
               (Vovk 2012); needs >= 299 controls for 1%, 59 for 5%.
--holdout measures the FPR reached on held-out controls instead (a check that halves the controls and
cannot confirm a 1% target at these sizes; off by default).

The calibration file holds the controls, the threshold, the guarantee, every control text's SHA-256 and
length, and the run record of the control scores (model, scorers, settings), so `llm-mia verdict` can refuse
scores from another model, documents that are themselves controls, and texts unlike the controls in length.
"""

from __future__ import annotations

import argparse

from llm_mia.cli.common import write_and_summarise
from llm_mia.io.outputs import check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--controls", required=True, help="score file (.jsonl/.csv) of known non-members")
    parser.add_argument("--scorer", help="score column to calibrate (required when the file has several)")
    parser.add_argument("--fpr", type=float, default=0.01, help="target false-positive rate (default: 0.01)")
    parser.add_argument(
        "--guarantee",
        choices=("marginal", "conditional"),
        default="marginal",
        help="FPR on average over control sets (marginal, default) or with confidence 1 - delta for this set",
    )
    parser.add_argument("--delta", type=float, default=0.05, help="1 - confidence of the conditional guarantee")
    parser.add_argument(
        "--holdout", type=float, default=0.0, help="fraction of controls held out to measure the FPR (default: 0)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fit / held-out split (default: 0)")
    parser.add_argument("--confidence", type=float, default=0.95, help="level of the FPR interval (default: 0.95)")
    parser.add_argument(
        "--controls-from-labels",
        action="store_true",
        help="use only the rows labelled 0 (non-member) as controls; otherwise every row must be a non-member",
    )
    parser.add_argument("--output", default="calibration.json", help="calibration file (default: calibration.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.calibrate import CalibrationSettings, calibrate_score_file

    output = check_output_file(args.output, overwrite=args.overwrite, suffixes=(".json",))
    settings = CalibrationSettings(
        scorer=args.scorer,
        fpr=args.fpr,
        guarantee=args.guarantee,
        delta=args.delta,
        holdout=args.holdout,
        seed=args.seed,
        confidence=args.confidence,
        controls_from_labels=args.controls_from_labels,
    )
    calibration = calibrate_score_file(args.controls, settings)
    write_and_summarise(calibration, output)
    print(f"wrote {output}")
    return 0
