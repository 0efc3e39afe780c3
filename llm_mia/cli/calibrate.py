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
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.calibration import CALIBRATION_FORMAT, CALIBRATION_VERSION, calibrate, split_controls
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.models import sha256_file
from llm_mia.results import RUN_RECORD_SUFFIX, read_scores, score_columns


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


def pick_scorer(requested: str | None, available: list[str], path: Any) -> str:
    """The score column to use: the one asked for, or the only one."""
    if requested is not None:
        if requested not in available:
            raise InputError(f"{path}: no score column {requested!r}; available: {', '.join(available) or 'none'}")
        return requested
    if len(available) != 1:
        raise InputError(
            f"{path} has {len(available)} score columns ({', '.join(available)}); choose one with --scorer "
            f"(decide which before looking at verdicts)"
        )
    return available[0]


def read_run_record(scores_path: Path) -> dict[str, Any] | None:
    path = Path(f"{scores_path}{RUN_RECORD_SUFFIX}")
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.suffix.lower() != ".json":
        raise LlmMiaError(f"--output {output}: the calibration file must end in .json")
    if output.exists() and not args.overwrite:
        raise LlmMiaError(f"{output} exists; pass --overwrite to replace it, or choose another --output")
    if not output.parent.exists():
        raise LlmMiaError(f"{output.parent}: output directory does not exist; create it first")
    controls_path = Path(args.controls)
    frame = read_scores(controls_path)
    scorer = pick_scorer(args.scorer, score_columns(frame), controls_path)
    n_rows = len(frame)
    if "label" in frame.columns:
        labels = frame["label"]
        if args.controls_from_labels:
            frame = frame[labels == 0]
            if frame.empty:
                raise InputError(f"{controls_path}: --controls-from-labels found no rows labelled 0 (non-member)")
        elif (labels == 1).any():
            raise InputError(
                f"{controls_path}: {int((labels == 1).sum())} row(s) are labelled 1 (member), but controls must be "
                f"known non-members; pass --controls-from-labels to use only the rows labelled 0"
            )
    elif args.controls_from_labels:
        raise InputError(f"{controls_path}: no label column, so --controls-from-labels cannot pick rows")
    values = frame[scorer].to_numpy(dtype=np.float64, na_value=np.nan)
    usable = np.isfinite(values) & (frame["status"] == "ok").to_numpy()
    n_excluded = int(len(values) - usable.sum())
    ids = frame["id"].astype(str).to_numpy()[usable]
    controls = values[usable]
    if len(controls) == 0:
        raise InputError(f"{controls_path}: no control has an ok status and a {scorer} score")
    calibrator = calibrate(controls, fpr=args.fpr, holdout=args.holdout, seed=args.seed, confidence=args.confidence)
    _, _, fit_index, heldout_index = split_controls(controls, holdout=args.holdout, seed=args.seed)
    record = read_run_record(controls_path)
    data = {
        "format": CALIBRATION_FORMAT,
        "version": CALIBRATION_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "scorer": scorer,
        "direction": "higher score = more likely a member",
        **calibrator.to_dict(),
        "holdout": args.holdout,
        "seed": args.seed,
        "controls_source": {
            "path": str(controls_path),
            "sha256": sha256_file(controls_path),
            "rows": n_rows,
            "used": len(controls),
            "excluded": n_excluded,
            "fit_ids": ids[fit_index].tolist(),
            "heldout_ids": ids[heldout_index].tolist(),
        },
        "run_record": record,
    }
    output.write_text(json.dumps(data, indent=2, allow_nan=False), encoding="utf-8")
    n_fit, check = calibrator.n_controls_, calibrator.fpr_check_
    print(
        f"calibrated {scorer} at FPR {args.fpr:g} on {n_fit} controls, {check.n_controls} held out "
        f"({n_excluded} of {len(values)} rows excluded: non-ok status or no score)"
    )
    print(f"  threshold: member when {scorer} > {calibrator.threshold_:.6g}")
    print(f"  p-values rest on {n_fit} controls; the smallest possible is 1/{n_fit + 1} = {1 / (n_fit + 1):.4g}")
    print(f"  {check.describe()}")
    if check.fpr_ci[0] > args.fpr:
        print(
            f"  note: the held-out FPR is above the target beyond its interval; the controls may not be "
            f"exchangeable (e.g. sorted by date before scoring), or {n_fit} is few"
        )
    if record is None:
        print(
            f"  note: no run record beside {controls_path}; verdict cannot check that scores come from the same model"
        )
    print(f"wrote {output}")
    return 0
