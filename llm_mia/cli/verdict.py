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
import json
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.calibration import ADJUSTMENTS, CALIBRATION_FORMAT, INCONCLUSIVE, MEMBER, NON_MEMBER, FprCalibrator
from llm_mia.cli.calibrate import read_run_record
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.models import sha256_file
from llm_mia.results import check_output_path, read_scores, write_rows, write_run_record

MODEL_IDENTITY_KEYS = ("name", "revision", "config_sha256", "tokenizer_id", "dtype")


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


def read_calibration(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path}: no such calibration file; write one with `llm-mia calibrate --output {path.name}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a calibration file ({error})") from None
    if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
        raise InputError(f"{path}: not a calibration file written by `llm-mia calibrate`")
    return data


def identity_differences(calibration: dict[str, Any], record: dict[str, Any] | None, scorer: str) -> list[str]:
    """What differs between the controls' run record and the scores' run record, in plain words."""
    control_record = calibration.get("run_record")
    if not control_record or not record:
        return []
    differences = []
    control_models, models = control_record.get("models") or {}, record.get("models") or {}
    for role in sorted(set(control_models) | set(models)):
        theirs, ours = control_models.get(role) or {}, models.get(role) or {}
        for key in MODEL_IDENTITY_KEYS:
            if theirs.get(key) != ours.get(key):
                differences.append(f"{role} model {key}: controls {theirs.get(key)!r}, scores {ours.get(key)!r}")

    def scorer_entry(run: dict[str, Any]) -> Any:
        return next((s for s in run.get("scorers") or [] if s.get("column") == scorer), None)

    if scorer_entry(control_record) != scorer_entry(record):
        differences.append(f"scorer {scorer}: controls {scorer_entry(control_record)}, scores {scorer_entry(record)}")
    for key in ("window", "stride"):
        theirs = (control_record.get("settings") or {}).get(key)
        ours = (record.get("settings") or {}).get(key)
        if theirs != ours:
            differences.append(f"setting {key}: controls {theirs!r}, scores {ours!r}")
    return differences


def check_disjoint(calibration: dict[str, Any], scores_path: Path, record: dict[str, Any] | None) -> None:
    """Refuse to judge the controls themselves: same file, or same scored texts with shared ids."""
    source = calibration.get("controls_source") or {}
    if source.get("sha256") and source["sha256"] == sha256_file(scores_path):
        raise InputError(
            f"{scores_path} is the very file the calibration's controls came from; calibration data must be "
            f"disjoint from the documents judged. Score the documents to judge in a separate file"
        )
    control_input = ((calibration.get("run_record") or {}).get("input") or {}).get("sha256")
    if control_input and control_input == ((record or {}).get("input") or {}).get("sha256"):
        raise InputError(
            f"{scores_path} was scored from the same texts as the calibration controls (input hash "
            f"{control_input[:12]}...); calibration data must be disjoint from the documents judged"
        )


def run(args: argparse.Namespace) -> int:
    output = check_output_path(args.output, overwrite=args.overwrite) if args.output else None
    calibration_path, scores_path = Path(args.calibration), Path(args.scores)
    calibration = read_calibration(calibration_path)
    scorer = calibration["scorer"]
    calibrator = FprCalibrator.from_dict(calibration, adjust=args.adjust)
    frame = read_scores(scores_path)
    if scorer not in frame.columns:
        raise InputError(
            f"{scores_path} has no {scorer!r} column, the scorer {calibration_path} was calibrated for; "
            f"score the documents with --scorers {scorer}"
        )
    record = read_run_record(scores_path)
    check_disjoint(calibration, scores_path, record)
    differences = identity_differences(calibration, record, scorer)
    if differences and not args.allow_mismatch:
        raise LlmMiaError(
            "the scores were not produced like the controls, so the calibration does not apply: "
            + "; ".join(differences)
            + ". Score both with the same model, scorer and settings (or pass --allow-mismatch)"
        )
    values = frame[scorer].to_numpy(dtype=np.float64, na_value=np.nan)
    statuses = frame["status"].astype(str).tolist()
    values = np.where(np.asarray([s == "ok" for s in statuses]), values, np.nan)
    verdicts = calibrator.verdicts(
        values,
        ids=frame["id"].astype(str).tolist(),
        reasons=[None if s == "ok" else f"status: {s}" for s in statuses],
    )
    rows = []
    for verdict, (_, source) in zip(verdicts, frame.iterrows(), strict=True):
        row = verdict.to_dict()
        label = source["label"] if "label" in frame.columns else None
        row = {
            "id": row["id"],
            "label": None if label is None or label != label else int(label),
            "status": source["status"],
            "scorer": scorer,
            **{k: v for k, v in row.items() if k != "id"},
        }
        if args.adjust == "none":
            row.pop("p_adjusted")
        rows.append(row)
    n_controls = calibrator.n_controls_
    check = getattr(calibrator, "fpr_check_", None)
    print(
        f"{scorer} calibrated at FPR {calibrator.fpr:g}: member when {scorer} > {calibrator.threshold_:.6g} "
        f"(p = (1 + #controls >= score) / ({n_controls} + 1) <= {calibrator.fpr:g})"
    )
    if check is not None:
        print(f"  {check.describe()}")
    for difference in differences:
        print(f"  mismatch allowed: {difference}")
    if output is None:
        _print_table(rows, adjusted=args.adjust != "none")
    counts = {kind: sum(v.verdict == kind for v in verdicts) for kind in (MEMBER, NON_MEMBER, INCONCLUSIVE)}
    total = len(verdicts)
    control = "false discovery rate" if args.adjust == "bh" else "FPR"
    print(
        f"{counts[MEMBER]} of {total} documents: consistent with training on these texts "
        f"({control} controlled at {calibrator.fpr:g} on {n_controls} controls)"
    )
    print(f"{counts[NON_MEMBER]} of {total}: not distinguishable from unseen text")
    print(f"{counts[INCONCLUSIVE]} of {total}: inconclusive (no score, or not significant after adjustment)")
    print("'not distinguishable' is not evidence the text was unseen: this scorer on this model could not tell")
    if output is not None:
        write_rows(rows, output)
        write_run_record(
            output,
            {
                "calibration": {"path": str(calibration_path), "sha256": sha256_file(calibration_path)},
                "scores": {"path": str(scores_path), "sha256": sha256_file(scores_path)},
                "scorer": scorer,
                "alpha": calibrator.fpr,
                "adjust": args.adjust,
                "n_controls": n_controls,
                "fpr_check": None if check is None else check.to_dict(),
                "counts": counts,
            },
        )
        print(f"wrote {len(rows)} verdicts to {output} and {output}.run.json")
    return 0


def _print_table(rows: list[dict[str, Any]], *, adjusted: bool) -> None:
    def number(value: Any) -> str:
        return "-" if value is None else f"{value:.4g}"

    header = ["id", "score", "p", *(["p (BH)"] if adjusted else []), "verdict"]
    cells = []
    for r in rows:
        adjusted_cell = [number(r["p_adjusted"])] if adjusted else []
        cells.append([str(r["id"]), number(r["score"]), number(r["p_value"]), *adjusted_cell, r["verdict"]])
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
