"""Calibrate a scorer on known non-members (controls): a threshold at a target FPR, checked on held-out controls.

examples:
  llm-mia score --input after_cutoff.jsonl --scorers min_k_plus_plus --output controls.jsonl
  llm-mia calibrate --controls controls.jsonl --fpr 0.01 --output calibration.json
  llm-mia calibrate --controls controls.jsonl --scorer loss --fpr 0.05 --holdout 0.3 --seed 1
  llm-mia calibrate --controls labelled_scores.jsonl --controls-from-labels --scorer zlib --fpr 0.01
  llm-mia verdict --calibration calibration.json --scores suspects.jsonl

Controls are texts the model cannot have seen (published after its training cutoff, or held out by
construction), scored with the same model and scorer as the documents you will judge. The controls are split
at random (--holdout, --seed): the threshold is fitted on one part, and the FPR it actually achieves is
measured on the other and reported with an exact (Clopper-Pearson) interval. With n fitted controls the
smallest p-value is 1/(n+1): an FPR of 1% needs at least 99, 0.1% at least 999.

The calibration file holds the fitted controls, the threshold, the held-out check and the run record of the
control scores (model, scorers, settings), so `llm-mia verdict` can refuse scores from another model.
"""

from __future__ import annotations

import argparse

from llm_mia.outputs import check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--controls", required=True, help="score file (.jsonl/.csv) of known non-members")
    parser.add_argument("--scorer", help="score column to calibrate (required when the file has several)")
    parser.add_argument("--fpr", type=float, default=0.01, help="target false-positive rate (default: 0.01)")
    parser.add_argument(
        "--holdout", type=float, default=0.5, help="fraction of controls held out to measure the FPR (default: 0.5)"
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
        holdout=args.holdout,
        seed=args.seed,
        confidence=args.confidence,
        controls_from_labels=args.controls_from_labels,
    )
    calibration = calibrate_score_file(args.controls, settings)
    for line in calibration.summary_lines():
        print(line)
    calibration.write(output)
    print(f"wrote {output}")
    return 0
