"""Calibration and per-document verdicts as library calls: ``llm-mia calibrate`` and ``llm-mia verdict``.

:func:`calibrate_score_file` fits a threshold on the scores of known non-members (controls) and returns a
:class:`Calibration`, which writes and reads the calibration file. :func:`judge_score_file` applies a
calibration to another score file and returns a :class:`VerdictReport`. The rules that decide whether a
calibration applies to a score file (same model, scorer and settings; the documents judged are not the
controls) live here, next to the statistics they protect (``llm_mia.stats.verdicts``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.documents import parse_label
from llm_mia.io.identity import sha256_file
from llm_mia.io.outputs import write_json
from llm_mia.io.records import DIRECTION, identity_differences, read_run_record, run_record, write_run_record
from llm_mia.io.score_files import read_scores, score_columns, write_rows
from llm_mia.io.tables import cell, text_table
from llm_mia.stats.metrics import format_p_value
from llm_mia.stats.verdicts import (
    ADJUSTMENTS,
    GUARANTEES,
    INCONCLUSIVE,
    MEMBER,
    NON_MEMBER,
    DocumentVerdict,
    FprCalibrator,
    GroupVerdict,
    bh_floor,
    calibrate,
    group_verdicts,
    split_controls,
)

CALIBRATION_FORMAT = "llm-mia calibration"
CALIBRATION_VERSION = 1


@dataclass(frozen=True)
class CalibrationSettings:
    """How controls become a threshold.

    ``scorer``: the score column to calibrate (required when the file has several: decide before looking at
    verdicts). ``fpr``: target false-positive rate. ``guarantee``: ``marginal`` (FPR <= fpr on average over
    control sets) or ``conditional`` (FPR <= fpr with confidence 1 - ``delta`` for this set of controls; needs
    more controls). ``holdout``: fraction of controls held out to measure the FPR reached (default 0: fit on
    all). ``seed`` of that split. ``confidence`` of the held-out FPR interval. ``controls_from_labels``: use
    only the rows labelled 0; otherwise every row must be a non-member.
    """

    scorer: str | None = None
    fpr: float = 0.01
    guarantee: str = "marginal"
    delta: float = 0.05
    holdout: float = 0.0
    seed: int = 0
    confidence: float = 0.95
    controls_from_labels: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.fpr < 1:
            raise LlmMiaError(f"fpr must lie strictly between 0 and 1, got {self.fpr}; e.g. 0.01 for 1%")
        if self.guarantee not in GUARANTEES:
            raise LlmMiaError(f"guarantee must be one of {', '.join(GUARANTEES)}; got {self.guarantee!r}")
        if not 0 < self.delta < 1:
            raise LlmMiaError(f"delta must lie strictly between 0 and 1, got {self.delta}; e.g. 0.05")
        if not 0 <= self.holdout < 1:
            raise LlmMiaError(f"holdout must lie in [0, 1), got {self.holdout}; 0 fits on every control")
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

    @property
    def record(self) -> dict[str, Any]:
        """What the calibration file holds."""
        return self.data

    def write(self, path: str | Path) -> list[Path]:
        """Write the calibration file (JSON; floats round-trip exactly)."""
        return [write_json(path, self.data)]

    @classmethod
    def read(cls, path: str | Path) -> Calibration:
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
        return cls(scorer=data["scorer"], calibrator=FprCalibrator.from_dict(data), data=data, source=str(path))

    def summary_lines(self) -> list[str]:
        calibrator = self.calibrator
        check = getattr(calibrator, "fpr_check_", None)
        n_fit, fpr = calibrator.n_controls_, calibrator.fpr
        held = f", {check.n_controls} held out" if check is not None else ""
        lines = [
            f"calibrated {self.scorer} at FPR {fpr:g} on {n_fit} controls{held} ({self.n_excluded} of "
            f"{self.n_rows} rows excluded: non-ok status or no score)",
            f"  threshold: member when {self.scorer} > {calibrator.threshold_:.6g} ({calibrator.k_} of the "
            f"{n_fit} controls lie above it)",
            f"  guarantee: {calibrator.guarantee_statement()}",
            f"  p-values rest on {n_fit} controls; the smallest possible is 1/{n_fit + 1} = {1 / (n_fit + 1):.2g}",
        ]
        if check is not None:
            lines.append(f"  {check.describe()}")
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
        controls,
        fpr=settings.fpr,
        guarantee=settings.guarantee,
        delta=settings.delta,
        holdout=settings.holdout,
        seed=settings.seed,
        confidence=settings.confidence,
    )
    if settings.holdout > 0:
        _, _, fit_index, heldout_index = split_controls(controls, holdout=settings.holdout, seed=settings.seed)
    else:
        fit_index, heldout_index = np.arange(len(controls)), np.arange(0)
    used = frame[usable]
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
        # every control text's identity, wherever it may reappear (verdict refuses to judge it)
        "control_text_sha256": used["text_sha256"].astype(str).tolist() if "text_sha256" in used.columns else None,
        "control_lengths": _lengths(used),
        "run_record": read_run_record(path),
    }
    return Calibration(
        scorer=scorer, calibrator=calibrator, data=data, n_rows=n_rows, n_excluded=n_excluded, source=str(path)
    )


# Documents whose lengths differ from the controls' by more than this standardised mean difference (of
# log token counts, or of bytes per token) get every verdict qualified; 0.25 is the usual "substantial
# imbalance" line of matching diagnostics (Stuart 2010, "Matching methods for causal inference").
LENGTH_SMD_LIMIT = 0.25


def _lengths(frame: Any) -> dict[str, list[float]] | None:
    """Token counts and bytes per token of the rows, for the comparability checks (None without the columns)."""
    if not {"n_tokens", "n_bytes"} <= set(frame.columns):
        return None
    tokens = frame["n_tokens"].to_numpy(dtype=np.float64)
    return {
        "n_tokens": tokens.tolist(),
        "bytes_per_token": (frame["n_bytes"].to_numpy(dtype=np.float64) / np.maximum(tokens, 1)).tolist(),
    }


def standardised_difference(first: Any, second: Any) -> float:
    """Standardised mean difference (mean_1 - mean_2) / sqrt((var_1 + var_2) / 2); 0 when both are constant.

    >>> round(standardised_difference([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]), 3)
    -1.0
    """
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    spread = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2) if len(a) > 1 and len(b) > 1 else 0.0
    difference = float(a.mean() - b.mean())
    return (
        0.0
        if spread == 0 and difference == 0
        else difference / spread
        if spread
        else math.copysign(math.inf, difference)
    )


UNITS = ("auto", "groups", "documents")


@dataclass(frozen=True)
class VerdictSettings:
    """``adjust``: multiple-testing adjustment across documents: ``bh`` (Benjamini-Hochberg), ``none``, or
    ``auto`` (the default: ``bh`` when more than one document has a score and the calibration's guarantee is
    marginal, else ``none``). ``units``: what BH counts: ``groups`` (the score file's ``group`` column: Simes
    within each group, BH across groups, then BH within the groups selected; ``llm_mia.stats.verdicts``),
    ``documents``, or ``auto`` (the default: groups when some group holds two or more judged documents).
    ``allow_mismatch``: judge scores whose run record names another model, scorer or settings than the
    controls'."""

    adjust: str = "auto"
    allow_mismatch: bool = False
    units: str = "auto"

    def __post_init__(self) -> None:
        if self.adjust not in (*ADJUSTMENTS, "auto"):
            raise LlmMiaError(f"adjust must be one of auto, {', '.join(ADJUSTMENTS)}; got {self.adjust!r}")
        if self.units not in UNITS:
            raise LlmMiaError(f"units must be one of {', '.join(UNITS)}; got {self.units!r}")


def check_disjoint(calibration: Calibration, scores_path: Path, frame: Any, record: dict[str, Any] | None) -> list[str]:
    """Refuse to judge the controls themselves: the same file, the same scored texts, or any document whose
    text is one of the controls (by SHA-256, wherever it appears). Returns notes on what could not be checked."""
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
    control_hashes = calibration.data.get("control_text_sha256")
    if not control_hashes or "text_sha256" not in frame.columns:
        missing = "the calibration" if not control_hashes else str(scores_path)
        return [
            f"texts not compared by hash ({missing} has no text_sha256): a control among the documents "
            f"would not be recognised; score both with this version of llm-mia"
        ]
    controls = set(control_hashes)
    shared = [
        doc_id
        for doc_id, digest in zip(frame["id"].astype(str), frame["text_sha256"].astype(str), strict=True)
        if digest in controls
    ]
    if shared:
        raise InputError(
            f"{scores_path}: {len(shared)} document(s) are calibration controls (same text, by SHA-256), first "
            f"{shared[0]!r}; a control judged against itself is no test. Remove them from the documents judged"
        )
    return []


def _comparability(calibration: Calibration, frame: Any) -> tuple[list[str | None], list[str]]:
    """Per document, why it is not comparable with the controls (None when it is); and set-level notes.

    A document whose token count or bytes per token lies outside the controls' range is not exchangeable with
    them (a longer text gets a different score for its length alone): its verdict is inconclusive. When the
    documents as a whole differ from the controls by more than ``LENGTH_SMD_LIMIT`` the verdicts are
    qualified in words.
    """
    controls = calibration.data.get("control_lengths")
    documents = _lengths(frame)
    if not controls or documents is None:
        return [None] * len(frame), ["lengths not compared (no n_tokens / n_bytes columns)"]
    reasons: list[str | None] = []
    for tokens, rate in zip(documents["n_tokens"], documents["bytes_per_token"], strict=True):
        low, high = min(controls["n_tokens"]), max(controls["n_tokens"])
        low_rate, high_rate = min(controls["bytes_per_token"]), max(controls["bytes_per_token"])
        if not low <= tokens <= high:
            reasons.append(f"{tokens:.0f} tokens, outside the controls' {low:.0f}-{high:.0f}")
        elif not low_rate <= rate <= high_rate:
            reasons.append(f"{rate:.2f} bytes per token, outside the controls' {low_rate:.2f}-{high_rate:.2f}")
        else:
            reasons.append(None)
    notes = []
    for name, transform in (("n_tokens", np.log), ("bytes_per_token", lambda x: x)):
        difference = standardised_difference(
            transform(np.maximum(documents[name], 1e-9)), transform(np.maximum(controls[name], 1e-9))
        )
        if abs(difference) > LENGTH_SMD_LIMIT:
            what = "log token count" if name == "n_tokens" else "bytes per token"
            notes.append(
                f"the documents differ from the controls in {what} (standardised difference {difference:+.2f}, "
                f"limit {LENGTH_SMD_LIMIT}): scores depend on length and format, so the p-values assume more "
                f"than the controls support; score controls formed like the documents"
            )
    return reasons, notes


@dataclass
class VerdictReport:
    """Per-document verdicts from one calibration: the verdicts, their rows for a file, and what was checked.

    ``units``: what the adjustment counted, ``documents`` or ``groups``; with groups, ``groups`` holds the group
    verdicts. ``n_groups``: groups among the judged documents when some group holds several (None otherwise),
    whatever the unit."""

    calibration: Calibration
    verdicts: list[DocumentVerdict]
    rows: list[dict[str, Any]]
    adjust: str
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scores_source: str = ""
    units: str = "documents"
    groups: list[GroupVerdict] = field(default_factory=list)
    n_groups: int | None = None

    @property
    def counts(self) -> dict[str, int]:
        return {kind: sum(v.verdict == kind for v in self.verdicts) for kind in (MEMBER, NON_MEMBER, INCONCLUSIVE)}

    @property
    def group_counts(self) -> dict[str, int]:
        return {kind: sum(g.verdict == kind for g in self.groups) for kind in (MEMBER, NON_MEMBER, INCONCLUSIVE)}

    @property
    def n_judged(self) -> int:
        """Documents with a score and comparable with the controls."""
        return sum(v.p_value is not None for v in self.verdicts)

    @property
    def grouped(self) -> bool:
        """True when the adjustment was over groups."""
        return self.adjust == "bh" and self.units == "groups"

    @property
    def adjusted_over(self) -> str | None:
        """The unit of the adjustment in words ("40 documents", "12 groups"), None without one."""
        return None if self.adjust == "none" or not self.verdicts else self.verdicts[0].adjusted_over

    def header_lines(self) -> list[str]:
        calibrator = self.calibration.calibrator
        scorer, n_controls = self.calibration.scorer, calibrator.n_controls_
        rule = ""
        if self.grouped:
            rule = (
                f" or, with groups as the unit, when its group passes (Simes within, BH over {self.adjusted_over}) "
                f"and its BH-adjusted p within the group is <= the FPR"
            )
        elif self.adjust == "bh":
            rule = f" or, across documents, when the BH-adjusted p (over {self.adjusted_over}) is <= the FPR"
        lines = [
            f"{scorer} calibrated at FPR {calibrator.fpr:g} on {n_controls} controls: member when {scorer} > "
            f"{calibrator.threshold_:.6g}" + rule,
            f"  p = (1 + #controls >= score) / ({n_controls} + 1); guarantee: {calibrator.guarantee_statement()}",
        ]
        if self.adjust != "none":
            lines.append(f"  correction: {self.verdicts[0].correction}")
        check = getattr(calibrator, "fpr_check_", None)
        if check is not None:
            lines.append(f"  {check.describe()}")
        lines += [f"  mismatch allowed: {difference}" for difference in self.differences]
        lines += [f"  note: {note}" for note in self.notes]
        return lines

    def table_lines(self) -> list[str]:
        adjusted = self.adjust != "none"

        def p_cell(value: float | None) -> str:
            return "-" if value is None else format_p_value(value)

        if self.grouped:
            header = ["id", "group", "score", "p", "p (BH within group)", "group p (Simes)", "verdict"]
            body = [
                [
                    str(r["id"]),
                    "-" if r["group"] is None else str(r["group"]),
                    cell(r["score"]),
                    p_cell(r["p_value"]),
                    p_cell(r["p_adjusted"]),
                    p_cell(r["group_p_value"]),
                    r["verdict"],
                ]
                for r in self.rows
            ]
            return text_table(header, body)
        header = ["id", "score", "p", *(["p (BH)"] if adjusted else []), "verdict"]
        body = [
            [
                str(r["id"]),
                cell(r["score"]),
                p_cell(r["p_value"]),
                *([p_cell(r["p_adjusted"])] if adjusted else []),
                r["verdict"],
            ]
            for r in self.rows
        ]
        return text_table(header, body)

    def group_table_lines(self) -> list[str]:
        """One row per group when groups are the unit (empty otherwise)."""
        if not self.groups:
            return []

        def p_cell(value: float | None) -> str:
            return "-" if value is None else format_p_value(value)

        header = ["group", "documents", "judged", "Simes p", f"p (BH over {self.adjusted_over})", "members", "verdict"]
        body = [
            [
                g.group,
                str(g.n_documents),
                str(g.n_judged),
                p_cell(g.p_value),
                p_cell(g.p_adjusted),
                str(g.n_members),
                g.verdict,
            ]
            for g in self.groups
        ]
        return text_table(header, body)

    def summary_lines(self) -> list[str]:
        counts, total = self.counts, len(self.verdicts)
        calibrator = self.calibration.calibrator
        alpha, n_controls, judged = calibrator.fpr, calibrator.n_controls_, self.n_judged
        lines = []
        if self.grouped:
            groups, n_groups = self.group_counts, len(self.groups)
            selected = groups[MEMBER]
            lines += [
                f"{selected} of {n_groups} groups: consistent with training on some of their documents (false "
                f"discovery rate controlled at {alpha:g} across {self.adjusted_over}: Simes within each group, "
                f"Benjamini-Hochberg across groups; {n_controls} controls)",
                f"{counts[MEMBER]} of {total} documents called members, all within the {selected} group(s) above "
                f"(Benjamini-Hochberg within each at {alpha:g} x {selected}/{n_groups}, Benjamini & Bogomolov "
                f"2014): documents of one group share its effect, so each group is one finding, however many of "
                f"its documents are named",
            ]
            expected = (
                f"if no document was trained on, the chance that any of the {n_groups} groups is called a member is "
                f"at most {alpha:g}; among the groups called members, the expected share of unseen ones is at most "
                f"{alpha:g}"
            )
            control = None
        elif self.adjust == "bh":
            control = f"false discovery rate controlled at {alpha:g} across {judged} documents"
            expected = (
                f"if none of the {judged} documents was trained on, the chance that any is called a member is at "
                f"most {alpha:g}; among those called members, the expected share of unseen ones is at most {alpha:g}"
            )
        else:
            control = calibrator.guarantee_statement()
            expected = (
                f"judged one at a time: if none of the {judged} documents was trained on, about {alpha * judged:.2g} "
                f"would still be called members (use --adjust bh to control this across documents)"
            )
        if control is not None:
            lines.append(
                f"{counts[MEMBER]} of {total} documents: consistent with training on these texts ({control}, "
                f"{n_controls} controls)"
            )
        lines += [
            f"{counts[NON_MEMBER]} of {total}: not distinguishable from the control texts",
            f"{counts[INCONCLUSIVE]} of {total}: inconclusive (no score, unlike the controls in length, or not "
            f"significant after adjustment)",
            f"expected false 'member' verdicts: {expected}",
        ]
        if self.n_groups is not None and not self.grouped:
            lines.append(
                f"note: the {judged} documents sit in {self.n_groups} groups; documents of one group share its effect, "
                + (
                    "so false 'member' verdicts come in clusters of a group's documents"
                    if self.adjust == "none"
                    else "so BH over documents rests on their p-values being positively dependent (PRDS, Benjamini & "
                    "Yekutieli 2001) and counts a group's documents as separate findings; --units groups corrects "
                    "over groups"
                )
            )
        units = len(self.groups) if self.grouped else judged
        floor = bh_floor(n_controls, units, alpha) if self.adjust == "bh" and units else 1
        if floor > 1:
            among = (
                f"{units} groups can call any group a member only if at least {floor} groups are called together "
                f"(each with a Simes p near 1/{n_controls + 1}, its documents above every control)"
                if self.grouped
                else f"{units} documents can call any document a member only if at least {floor} of them score above "
                f"every control"
            )
            lines.append(
                f"warning: with {n_controls} controls no p-value is below 1/{n_controls + 1}, so BH across {among}: "
                f"a few strong members alone cannot be found. Add controls (>= {math.ceil(units / alpha) - 1} for "
                f"single discoveries)"
            )
        lines.append(
            "'not distinguishable' is not evidence the text was unseen: this scorer on this model could not tell, "
            "and the calibration says nothing about how often members exceed the threshold"
        )
        return lines

    def write(self, path: str | Path) -> list[Path]:
        """One row per document (``.jsonl`` or ``.csv``) and the run record beside them."""
        return [write_rows(self.rows, path), write_run_record(path, self.record)]

    @property
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
            settings={
                "scorer": self.calibration.scorer,
                "alpha": calibrator.fpr,
                "adjust": self.adjust,
                "units": self.units,
                "guarantee": calibrator.guarantee,
            },
            guarantee=calibrator.guarantee_statement(),
            correction=self.verdicts[0].correction if self.verdicts else None,
            adjusted_over=self.adjusted_over,
            n_controls=calibrator.n_controls_,
            fpr_check=None if check is None else check.to_dict(),
            counts=self.counts,
            group_counts=self.group_counts if self.grouped else None,
            groups=[g.to_dict() for g in self.groups],
            mismatches_allowed=self.differences,
            notes=self.notes,
        )


def _groups_of(frame: Any, usable: list[bool], units: str, source: Any) -> tuple[list[str | None] | None, int | None]:
    """(the group of each row to correct over, or None to correct over documents; the number of groups among the
    usable rows when some group holds several of them, else None)."""
    from llm_mia.stats.metrics import group_index

    column = frame["group"].to_numpy(dtype=object).tolist() if "group" in frame.columns else None
    n_groups = None
    if column is not None and any(usable):
        kept = [g for g, ok in zip(column, usable, strict=True) if ok]
        _, names = group_index(kept, len(kept))
        n_groups = len(names) if len(names) < len(kept) else None
    if units == "documents":
        return None, n_groups
    if units == "groups":
        if column is None or all(g is None or g == "" or (isinstance(g, float) and math.isnan(g)) for g in column):
            raise InputError(
                f"{source} has no group column (or no row has a group), so --units groups has nothing to correct "
                f"over; score the documents with --group-column, or use --units documents"
            )
        return column, n_groups
    return (column, n_groups) if n_groups is not None else (None, None)


def judge_score_file(
    calibration: Calibration, scores_path: str | Path, settings: VerdictSettings | None = None
) -> VerdictReport:
    """Verdicts for every document of a score file, against ``calibration``'s controls.

    Refuses a score file that is the controls' own file, was scored from the same texts, or contains a
    control's text; and (unless ``allow_mismatch``) one whose run record names another model, scorer or
    settings than the controls'. Documents longer or shorter than every control are inconclusive. With a
    ``group`` column in which some group holds several judged documents, BH counts groups, not documents
    (``settings.units``).
    """
    settings = settings or VerdictSettings()
    scores_path = Path(scores_path)
    scorer = calibration.scorer
    calibrator = calibration.calibrator
    frame = read_scores(scores_path)
    if scorer not in frame.columns:
        raise InputError(
            f"{scores_path} has no {scorer!r} column, the scorer {calibration.source} was calibrated for; "
            f"score the documents with --scorers {scorer}"
        )
    record = read_run_record(scores_path)
    notes = check_disjoint(calibration, scores_path, frame, record)
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
    unlike, length_notes = _comparability(calibration, frame)
    notes += length_notes
    usable = [not math.isnan(v) and u is None for v, u in zip(values, unlike, strict=True)]
    adjust = settings.adjust
    if adjust == "auto":
        adjust = "bh" if sum(usable) > 1 and calibrator.guarantee == "marginal" else "none"
    if settings.units == "groups" and adjust == "none":
        raise InputError(
            "--units groups corrects over groups, but no adjustment is made here (--adjust none, or auto with a "
            "conditional calibration or a single document): pass --adjust bh, or drop --units groups to judge each "
            "document alone"
        )
    groups, n_groups = _groups_of(frame, usable, settings.units, scores_path)
    calibrator.adjust = adjust
    verdicts = calibrator.verdicts(
        values,
        ids=frame["id"].astype(str).tolist(),
        reasons=[None if s == "ok" else f"status: {s}" for s in statuses],
        not_comparable=unlike,
        groups=groups if adjust == "bh" else None,
    )
    labels = frame["label"].tolist() if "label" in frame.columns else [None] * len(frame)
    row_groups = frame["group"].tolist() if "group" in frame.columns else [None] * len(frame)
    rows = []
    for verdict, label, status, group in zip(verdicts, labels, statuses, row_groups, strict=True):
        parsed = parse_label(label, f"{scores_path} document {verdict.id!r}")
        row = {"id": verdict.id, "label": parsed, "status": status, "scorer": scorer, **verdict.to_dict()}
        if verdict.group is None and group is not None and not (isinstance(group, float) and math.isnan(group)):
            row["group"] = str(group)  # recorded even when the correction did not use it
        if adjust == "none":
            for key in ("p_adjusted", "adjusted_over"):
                row.pop(key)
        if groups is None or adjust == "none":
            for key in ("group_p_value", "group_p_adjusted", "group_verdict"):
                row.pop(key)
        rows.append(row)
    return VerdictReport(
        calibration=calibration,
        verdicts=verdicts,
        rows=rows,
        adjust=adjust,
        differences=differences,
        notes=notes,
        scores_source=str(scores_path),
        units="groups" if groups is not None and adjust == "bh" else "documents",
        groups=group_verdicts(verdicts),
        n_groups=n_groups,
    )
