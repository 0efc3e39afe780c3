"""Calibration and per-document verdicts as library calls: ``llm-mia calibrate`` and ``llm-mia verdict``.

:func:`calibrate_score_file` fits a threshold on the scores of known non-members (controls) and returns a
:class:`Calibration`, which writes and reads the calibration file. :func:`judge_score_file` applies a
calibration to another score file and returns a :class:`VerdictReport`. The rules that decide whether a
calibration applies to a score file (same model, scorer and settings; the documents judged are not the
controls) live here, next to the statistics they protect (``llm_mia.calibration``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.calibration import (
    ADJUSTMENTS,
    INCONCLUSIVE,
    MEMBER,
    NON_MEMBER,
    DocumentVerdict,
    FprCalibrator,
    calibrate,
    split_controls,
)
from llm_mia.documents import parse_label
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.identity import sha256_file
from llm_mia.outputs import write_json
from llm_mia.records import DIRECTION, identity_differences, read_run_record, run_record
from llm_mia.score_files import read_scores, score_columns
from llm_mia.tables import cell, text_table

CALIBRATION_FORMAT = "llm-mia calibration"
CALIBRATION_VERSION = 1


@dataclass(frozen=True)
class CalibrationSettings:
    """How controls become a threshold.

    ``scorer``: the score column to calibrate (required when the file has several: decide before looking at
    verdicts). ``fpr``: target false-positive rate. ``holdout``: fraction of controls held out to measure the
    FPR reached. ``seed`` of that split. ``confidence`` of the held-out FPR interval.
    ``controls_from_labels``: use only the rows labelled 0; otherwise every row must be a non-member.
    """

    scorer: str | None = None
    fpr: float = 0.01
    holdout: float = 0.5
    seed: int = 0
    confidence: float = 0.95
    controls_from_labels: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.fpr < 1:
            raise LlmMiaError(f"fpr must lie strictly between 0 and 1, got {self.fpr}; e.g. 0.01 for 1%")
        if not 0 < self.holdout < 1:
            raise LlmMiaError(f"holdout must lie strictly between 0 and 1, got {self.holdout}; e.g. 0.5 for half")
        if not 0 < self.confidence < 1:
            raise LlmMiaError(f"confidence must lie strictly between 0 and 1, got {self.confidence}")


def pick_scorer(requested: str | None, available: list[str], source: Any) -> str:
    """The score column to use: the one asked for, or the only one."""
    if requested is not None:
        if requested not in available:
            raise InputError(f"{source}: no score column {requested!r}; available: {', '.join(available) or 'none'}")
        return requested
    if len(available) != 1:
        raise InputError(
            f"{source} has {len(available)} score columns ({', '.join(available)}); choose one with --scorer "
            f"(decide which before looking at verdicts)"
        )
    return available[0]


@dataclass
class Calibration:
    """A fitted calibration: the calibrator, the scorer it is for, and everything the calibration file holds."""

    scorer: str
    calibrator: FprCalibrator
    data: dict[str, Any]
    n_rows: int = 0
    n_excluded: int = 0
    source: str = ""

    def write(self, path: str | Path) -> Path:
        """Write the calibration file (JSON; floats round-trip exactly)."""
        return write_json(path, self.data)

    @classmethod
    def read(cls, path: str | Path, *, adjust: str = "none") -> Calibration:
        """Read a calibration file written by :meth:`write`, re-fitting from its controls as a check."""
        path = Path(path)
        if not path.is_file():
            raise InputError(
                f"{path}: no such calibration file; write one with `llm-mia calibrate --output {path.name}`"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{path}: not a calibration file ({error})") from None
        if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
            raise InputError(f"{path}: not a calibration file written by `llm-mia calibrate`")
        return cls(
            scorer=data["scorer"], calibrator=FprCalibrator.from_dict(data, adjust=adjust), data=data, source=str(path)
        )

    def summary_lines(self) -> list[str]:
        calibrator, check = self.calibrator, self.calibrator.fpr_check_
        n_fit, fpr = calibrator.n_controls_, calibrator.fpr
        lines = [
            f"calibrated {self.scorer} at FPR {fpr:g} on {n_fit} controls, {check.n_controls} held out "
            f"({self.n_excluded} of {self.n_rows} rows excluded: non-ok status or no score)",
            f"  threshold: member when {self.scorer} > {calibrator.threshold_:.6g}",
            f"  p-values rest on {n_fit} controls; the smallest possible is 1/{n_fit + 1} = {1 / (n_fit + 1):.4g}",
            f"  {check.describe()}",
        ]
        if check.fpr_ci[0] > fpr:
            lines.append(
                f"  note: the held-out FPR is above the target beyond its interval; the controls may not be "
                f"exchangeable (e.g. sorted by date before scoring), or {n_fit} is few"
            )
        if self.data.get("run_record") is None:
            lines.append(
                f"  note: no run record beside {self.source}; verdict cannot check that scores come from the same model"
            )
        return lines


def calibrate_score_file(path: str | Path, settings: CalibrationSettings | None = None) -> Calibration:
    """Fit a threshold on the controls in score file ``path`` (see :class:`CalibrationSettings`)."""
    settings = settings or CalibrationSettings()
    path = Path(path)
    frame = read_scores(path)
    scorer = pick_scorer(settings.scorer, score_columns(frame), path)
    n_rows = len(frame)
    if "label" in frame.columns:
        labels = np.array([parse_label(v, f"{path} row {i}") for i, v in enumerate(frame["label"])], dtype=object)
        if settings.controls_from_labels:
            frame = frame[labels == 0]
            if frame.empty:
                raise InputError(f"{path}: --controls-from-labels found no rows labelled 0 (non-member)")
        elif (labels == 1).any():
            raise InputError(
                f"{path}: {int((labels == 1).sum())} row(s) are labelled 1 (member), but controls must be "
                f"known non-members; pass --controls-from-labels to use only the rows labelled 0"
            )
    elif settings.controls_from_labels:
        raise InputError(f"{path}: no label column, so --controls-from-labels cannot pick rows")
    values = frame[scorer].to_numpy(dtype=np.float64, na_value=np.nan)
    usable = np.isfinite(values) & (frame["status"] == "ok").to_numpy()
    n_excluded = int(len(values) - usable.sum())
    ids = frame["id"].astype(str).to_numpy()[usable]
    controls = values[usable]
    if len(controls) == 0:
        raise InputError(f"{path}: no control has an ok status and a {scorer} score")
    calibrator = calibrate(
        controls, fpr=settings.fpr, holdout=settings.holdout, seed=settings.seed, confidence=settings.confidence
    )
    _, _, fit_index, heldout_index = split_controls(controls, holdout=settings.holdout, seed=settings.seed)
    data = {
        "format": CALIBRATION_FORMAT,
        "version": CALIBRATION_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "scorer": scorer,
        "direction": DIRECTION,
        **calibrator.to_dict(),
        "holdout": settings.holdout,
        "seed": settings.seed,
        "controls_source": {
            "path": str(path),
            "sha256": sha256_file(path),
            "rows": n_rows,
            "used": len(controls),
            "excluded": n_excluded,
            "fit_ids": ids[fit_index].tolist(),
            "heldout_ids": ids[heldout_index].tolist(),
        },
        "run_record": read_run_record(path),
    }
    return Calibration(
        scorer=scorer, calibrator=calibrator, data=data, n_rows=n_rows, n_excluded=n_excluded, source=str(path)
    )


@dataclass(frozen=True)
class VerdictSettings:
    """``adjust``: multiple-testing adjustment across documents (``none`` or ``bh``). ``allow_mismatch``: judge
    scores whose run record names another model, scorer or settings than the controls'."""

    adjust: str = "none"
    allow_mismatch: bool = False

    def __post_init__(self) -> None:
        if self.adjust not in ADJUSTMENTS:
            raise LlmMiaError(f"adjust must be one of {', '.join(ADJUSTMENTS)}; got {self.adjust!r}")


def check_disjoint(calibration: Calibration, scores_path: Path, record: dict[str, Any] | None) -> None:
    """Refuse to judge the controls themselves: same file, or the same scored texts."""
    source = calibration.data.get("controls_source") or {}
    if source.get("sha256") and source["sha256"] == sha256_file(scores_path):
        raise InputError(
            f"{scores_path} is the very file the calibration's controls came from; calibration data must be "
            f"disjoint from the documents judged. Score the documents to judge in a separate file"
        )
    control_input = ((calibration.data.get("run_record") or {}).get("input") or {}).get("sha256")
    if control_input and control_input == ((record or {}).get("input") or {}).get("sha256"):
        raise InputError(
            f"{scores_path} was scored from the same texts as the calibration controls (input hash "
            f"{control_input[:12]}...); calibration data must be disjoint from the documents judged"
        )


@dataclass
class VerdictReport:
    """Per-document verdicts from one calibration: the verdicts, their rows for a file, and what was checked."""

    calibration: Calibration
    verdicts: list[DocumentVerdict]
    rows: list[dict[str, Any]]
    settings: VerdictSettings
    differences: list[str] = field(default_factory=list)
    scores_source: str = ""

    @property
    def counts(self) -> dict[str, int]:
        return {kind: sum(v.verdict == kind for v in self.verdicts) for kind in (MEMBER, NON_MEMBER, INCONCLUSIVE)}

    def header_lines(self) -> list[str]:
        calibrator = self.calibration.calibrator
        scorer, n_controls = self.calibration.scorer, calibrator.n_controls_
        lines = [
            f"{scorer} calibrated at FPR {calibrator.fpr:g}: member when {scorer} > {calibrator.threshold_:.6g} "
            f"(p = (1 + #controls >= score) / ({n_controls} + 1) <= {calibrator.fpr:g})"
        ]
        check = getattr(calibrator, "fpr_check_", None)
        if check is not None:
            lines.append(f"  {check.describe()}")
        lines += [f"  mismatch allowed: {difference}" for difference in self.differences]
        return lines

    def table_lines(self) -> list[str]:
        adjusted = self.settings.adjust != "none"
        header = ["id", "score", "p", *(["p (BH)"] if adjusted else []), "verdict"]
        body = [
            [
                str(r["id"]),
                cell(r["score"]),
                cell(r["p_value"]),
                *([cell(r["p_adjusted"])] if adjusted else []),
                r["verdict"],
            ]
            for r in self.rows
        ]
        return text_table(header, body)

    def summary_lines(self) -> list[str]:
        counts, total = self.counts, len(self.verdicts)
        calibrator = self.calibration.calibrator
        control = "false discovery rate" if self.settings.adjust == "bh" else "FPR"
        return [
            f"{counts[MEMBER]} of {total} documents: consistent with training on these texts "
            f"({control} controlled at {calibrator.fpr:g} on {calibrator.n_controls_} controls)",
            f"{counts[NON_MEMBER]} of {total}: not distinguishable from unseen text",
            f"{counts[INCONCLUSIVE]} of {total}: inconclusive (no score, or not significant after adjustment)",
            "'not distinguishable' is not evidence the text was unseen: this scorer on this model could not tell",
        ]

    def record(self) -> dict[str, Any]:
        """The run record of the verdict file."""
        calibrator = self.calibration.calibrator
        check = getattr(calibrator, "fpr_check_", None)
        return run_record(
            "llm-mia verdict",
            inputs={
                "calibration": {"path": self.calibration.source, "sha256": sha256_file(self.calibration.source)},
                "scores": {"path": self.scores_source, "sha256": sha256_file(self.scores_source)},
            },
            settings={"scorer": self.calibration.scorer, "alpha": calibrator.fpr, "adjust": self.settings.adjust},
            n_controls=calibrator.n_controls_,
            fpr_check=None if check is None else check.to_dict(),
            counts=self.counts,
            mismatches_allowed=self.differences,
        )


def judge_score_file(
    calibration: Calibration, scores_path: str | Path, settings: VerdictSettings | None = None
) -> VerdictReport:
    """Verdicts for every document of a score file, against ``calibration``'s controls.

    Refuses a score file that is the controls' own file or was scored from the same texts, and (unless
    ``allow_mismatch``) one whose run record names another model, scorer or settings than the controls'.
    """
    settings = settings or VerdictSettings()
    scores_path = Path(scores_path)
    scorer = calibration.scorer
    calibrator = calibration.calibrator
    calibrator.adjust = settings.adjust
    frame = read_scores(scores_path)
    if scorer not in frame.columns:
        raise InputError(
            f"{scores_path} has no {scorer!r} column, the scorer {calibration.source} was calibrated for; "
            f"score the documents with --scorers {scorer}"
        )
    record = read_run_record(scores_path)
    check_disjoint(calibration, scores_path, record)
    differences = identity_differences(calibration.data.get("run_record"), record, scorer)
    if differences and not settings.allow_mismatch:
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
    labels = frame["label"].tolist() if "label" in frame.columns else [None] * len(frame)
    rows = []
    for verdict, label, status in zip(verdicts, labels, statuses, strict=True):
        row = verdict.to_dict()
        parsed = parse_label(label, f"{scores_path} document {verdict.id!r}")
        row = {"id": row["id"], "label": parsed, "status": status, "scorer": scorer, **row}
        if settings.adjust == "none":
            row.pop("p_adjusted")
        rows.append(row)
    return VerdictReport(
        calibration=calibration,
        verdicts=verdicts,
        rows=rows,
        settings=settings,
        differences=differences,
        scores_source=str(scores_path),
    )
