"""The evaluation workflow: a labelled score table evaluated scorer by scorer, with the blind baseline beside it.

:func:`evaluate_table` takes a score table (``llm_mia.score`` or a score file) and, for the blind baseline,
the texts by id; :func:`evaluate_documents` scores labelled documents first. The result,
:class:`Evaluation`, prints as a table (:meth:`Evaluation.table_lines`) and writes ``evaluation.json`` and
the ROC / histogram figures (:meth:`Evaluation.write`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.outputs import write_json
from llm_mia.io.records import DIRECTION
from llm_mia.io.score_files import pick_score_columns
from llm_mia.io.tables import text_table
from llm_mia.stats.blind_baseline import DEFAULT_PERMUTATIONS
from llm_mia.stats.metrics import (
    DEFAULT_FPRS,
    MIN_FALSE_POSITIVES,
    ScorerEvaluation,
    SelectionTest,
    evaluate_frame,
    format_fpr,
    format_p_value,
    group_index,
    labelled_rows,
    max_auroc_permutation_test,
)

EVALUATION_FILE = "evaluation.json"
FIGURES = ("roc", "roc_loglog", "histograms")


@dataclass(frozen=True)
class EvaluationSettings:
    """How a labelled table is evaluated.

    ``fprs``: false-positive rates for TPR@FPR. ``n_bootstrap`` resamples (TPR intervals) and ``confidence``
    level of the intervals; ``seed`` of the resampling, permutations and the blind baseline's folds; ``folds``
    of the blind baseline's cross-validation; ``blind``: run the blind baseline (needs the texts);
    ``columns``: score columns to evaluate (None: all); ``blind_permutations``: label permutations calibrating
    the blind baseline; ``selection_permutations``: label permutations of the best-of-several correction;
    ``alpha``: level of the blind baseline's warning.
    """

    fprs: tuple[float, ...] = DEFAULT_FPRS
    n_bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0
    folds: int = 5
    blind: bool = True
    columns: tuple[str, ...] | None = None
    blind_permutations: int = DEFAULT_PERMUTATIONS
    selection_permutations: int = 999
    alpha: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "fprs", tuple(sorted(set(self.fprs))))
        for fpr in self.fprs:
            if not 0 < fpr < 1:
                raise LlmMiaError(f"FPR {fpr}: false-positive rates lie strictly between 0 and 1 (e.g. 0.01 for 1%)")
        if self.n_bootstrap < 1:
            raise LlmMiaError(f"n_bootstrap {self.n_bootstrap}: need at least 1 resample (1000 is usual)")
        if not 0 < self.confidence < 1:
            raise LlmMiaError(f"confidence {self.confidence}: must lie strictly between 0 and 1 (e.g. 0.95)")
        if self.folds < 2:
            raise LlmMiaError(f"folds {self.folds}: cross-validation needs at least 2 folds")
        if self.blind_permutations < 1 or self.selection_permutations < 1:
            raise LlmMiaError("permutation counts must be >= 1 (99 and 999 are the defaults)")
        if not 0 < self.alpha < 1:
            raise LlmMiaError(f"alpha {self.alpha}: must lie strictly between 0 and 1 (e.g. 0.05)")
        if self.columns is not None:
            object.__setattr__(self, "columns", tuple(self.columns))

    def metric_settings(self) -> dict[str, Any]:
        """The keyword arguments of ``llm_mia.stats.metrics.evaluate_frame``."""
        return {
            "fprs": list(self.fprs),
            "n_bootstrap": self.n_bootstrap,
            "confidence": self.confidence,
            "seed": self.seed,
        }


def best_auroc(evaluations: Mapping[str, ScorerEvaluation]) -> float | None:
    """The highest AUROC among the attacks (None when there are none)."""
    return max((e.auroc for e in evaluations.values()), default=None)


@dataclass(frozen=True)
class Evaluation:
    """A labelled score table evaluated: every scorer, the blind baseline beside them, and the warning.

    ``skipped``: scorers that could not be evaluated, with why (e.g. no scored members). ``blind`` is None when
    the baseline did not run, and ``blind_skipped`` says why (no texts given, too few texts, ...). ``frame``:
    the table evaluated (for the histograms).
    """

    scorers: dict[str, ScorerEvaluation]
    skipped: dict[str, str]
    blind: Any  # llm_mia.stats.blind_baseline.BlindBaselineResult | None
    blind_skipped: str | None
    n_rows: int
    n_unlabelled: int
    settings: dict[str, Any]
    frame: Any = field(default=None, repr=False, compare=False)
    selection: SelectionTest | None = None  # the best scorer, corrected for choosing it (two or more scorers)
    n_groups: int | None = None  # groups of the labelled rows, when some group holds several; else None

    def grouping_note(self) -> str | None:
        """What the per-scorer intervals assume when documents share groups, or None when none do."""
        if self.n_groups is None:
            return None
        labelled = self.n_rows - self.n_unlabelled
        return (
            f"the {labelled} labelled documents sit in {self.n_groups} groups: AUROC and TPR intervals count "
            f"documents as independent and are too narrow when documents of a group share its effect"
            + ("" if self.selection is None else f"; the max-T p permuted {self.selection.permuted}")
        )

    @property
    def best_attack_auroc(self) -> float | None:
        return best_auroc(self.scorers)

    def warning(self) -> str | None:
        """The blind baseline's distribution-shift warning against the best attack, or None."""
        return None if self.blind is None else self.blind.warning(self.best_attack_auroc)

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": DIRECTION,
            "n_rows": self.n_rows,
            "n_unlabelled": self.n_unlabelled,
            "settings": self.settings,
            "scorers": {name: e.to_dict() for name, e in self.scorers.items()},
            "skipped_scorers": self.skipped,
            "best_attack_auroc": self.best_attack_auroc,
            "blind_baseline": None if self.blind is None else self.blind.to_dict(self.best_attack_auroc),
            "blind_baseline_skipped": self.blind_skipped,
            "warning": self.warning(),
            "selection": None if self.selection is None else self.selection.to_dict(),
            "notes": {
                "oracle_balanced_accuracy": "threshold chosen on the evaluated data itself: an optimistic figure",
                "tpr_at_fpr": (
                    f"n = non-members the FPR rests on; a TPR@FPR counts as resolved when n x FPR >= "
                    f"{MIN_FALSE_POSITIVES}; its interval is a bootstrap that re-chooses the threshold"
                ),
                "auroc_ci": "per scorer, not corrected for choosing the best of several: see selection",
                "units": self.grouping_note() or "documents: no group holds several labelled documents",
            },
            "n_groups": self.n_groups,
        }

    def table_lines(self) -> list[str]:
        """The printed table: one row per scorer, then the blind baseline row, then the notes."""
        fprs = sorted(set(self.settings["fprs"]))
        level = f"{self.settings['confidence']:.0%}"
        header = [
            "scorer",
            f"AUROC [{level} CI]",
            *(f"TPR@{format_fpr(f)}FPR" for f in fprs),
            "bal.acc (oracle)",
            "members/non",
            "excluded",
        ]

        def row(name: str, result: Any, excluded: str) -> list[str]:
            low, high = result.auroc_ci
            return [
                name,
                f"{result.auroc:.3f} [{low:.3f}, {high:.3f}]",
                *(tpr_cell(r) for r in result.tpr_at_fpr.values()),
                f"{result.oracle_balanced_accuracy:.3f}",
                f"{result.n_members}/{result.n_nonmembers}",
                excluded,
            ]

        body = [row(name, result, str(result.n_excluded)) for name, result in self.scorers.items()]
        if self.blind is not None:
            body.append(row("blind baseline", self.blind, "-"))
        lines = text_table(header, body)
        for name, reason in self.skipped.items():
            lines.append(f"{name}: not evaluated ({reason})")
        if self.blind is None:
            lines.append(f"blind baseline: not run ({self.blind_skipped})")
        else:
            lines.append(
                f"blind baseline: chance level of its out-of-fold AUROC is {self.blind.chance_auroc:.3f} (labels "
                f"permuted), not 0.5: read its interval against that; permutation p = "
                f"{format_p_value(self.blind.permutation_p)}"
            )
        unresolved = [
            r
            for result in [*self.scorers.values(), *([self.blind] if self.blind else [])]
            for r in result.tpr_at_fpr.values()
            if not r.resolvable
        ]
        if unresolved:
            worst = min(unresolved, key=lambda r: r.target_fpr)
            lines.append(
                f"* not resolved: n x FPR < {MIN_FALSE_POSITIVES} false positives, so the threshold rests on the few "
                f"most extreme non-members and the TPR is biased up (TPR@{format_fpr(worst.target_fpr)} FPR needs "
                f">= {worst.needed_nonmembers} non-members)"
            )
        if self.selection is not None:
            lines.append(self.selection.describe())
        if self.grouping_note():
            lines.append(f"note: {self.grouping_note()}")
        lines.append(
            "n = non-members a TPR@FPR rests on; AUROC intervals are per scorer (not corrected for choosing the "
            "best); bal.acc (oracle) uses the best threshold on these same data (optimistic); higher score = more "
            "likely member"
        )
        return lines

    def write(self, directory: str | Path, *, identity: Mapping[str, Any] | None = None) -> list[Path]:
        """Write ``evaluation.json`` (every number, the settings and ``identity``: model, data, run record) and
        the ROC (linear and log-log) and histogram figures (PNG and SVG) into ``directory``."""
        import numpy as np

        from llm_mia.io import plots

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        curves = {name: result.roc for name, result in self.scorers.items()}
        labels = {name: f"{name} (AUROC {result.auroc:.3f})" for name, result in self.scorers.items()}
        if self.blind is not None:
            curves["blind baseline"] = self.blind.roc
            labels["blind baseline"] = f"blind baseline (AUROC {self.blind.auroc:.3f})"
        n_nonmembers = max((r.n_nonmembers for r in self.scorers.values()), default=0)
        if curves:
            plot = partial(plots.plot_roc, curves, labels=labels, dashed=["blind baseline"])
            written += plot(directory / "roc")
            resolution = 1 / n_nonmembers if n_nonmembers else None
            written += plot(directory / "roc_loglog", log_log=True, resolution_fpr=resolution)
        if self.scorers and self.frame is not None:
            labelled, label = labelled_rows(self.frame)
            ok = (labelled["status"] == "ok").to_numpy() if "status" in labelled.columns else True
            score_sets = {}
            for name in self.scorers:
                values = labelled[name].to_numpy(dtype=np.float64, na_value=np.nan)
                keep = np.isfinite(values) & np.asarray(ok)
                score_sets[name] = (values[keep & (label == 1)], values[keep & (label == 0)])
            written += plots.plot_histograms(score_sets, directory / "histograms")
        report = {"tool": "llm-mia evaluate", **(identity or {}), **self.to_dict(), "files": [p.name for p in written]}
        return [write_json(directory / EVALUATION_FILE, report), *written]


def tpr_cell(record: Any) -> str:
    """One TPR@FPR cell: the rate, the non-members it rests on, and * when the FPR is not resolved."""
    return f"{record.tpr:.3f} (n={record.n_nonmembers}){'' if record.resolvable else '*'}"


def _check_texts(texts: Any) -> Mapping[str, str] | None:
    if texts is None or isinstance(texts, Mapping):
        return texts
    raise InputError(
        f"texts must map each document id to its text (a dict such as {{'doc-1': 'text ...'}}), got a "
        f"{type(texts).__name__}; build it with {{d.id: d.text for d in documents}}"
    )


def evaluate_table(
    frame: Any,
    *,
    texts: Mapping[str, str] | None = None,
    settings: EvaluationSettings | None = None,
    blind_skipped: str | None = None,
) -> Evaluation:
    """Evaluate a labelled score table and run the blind baseline beside it.

    ``texts``: document id -> text for the blind baseline (ids of the labelled rows); without it the baseline
    is skipped and ``blind_skipped`` (or a default reason) says why. Unlabelled rows are ignored. Per scorer,
    rows with a non-ok status or a missing score are excluded and counted. A scorer with no usable member or
    non-member is listed in ``skipped`` rather than failing the rest.
    """
    from llm_mia.stats.blind_baseline import blind_baseline

    settings = settings or EvaluationSettings()
    texts = _check_texts(texts)
    labelled, labels = labelled_rows(frame)
    names = pick_score_columns(frame, settings.columns, source="score table")
    metric_settings = settings.metric_settings()
    evaluations: dict[str, ScorerEvaluation] = {}
    skipped: dict[str, str] = {}
    for name in names:
        try:
            evaluations.update(evaluate_frame(labelled, columns=[name], **metric_settings))
        except InputError as error:  # e.g. every member's score is missing: report it, evaluate the others
            skipped[name] = str(error)
    blind = None
    if not settings.blind:
        blind_skipped = blind_skipped or "skipped (blind baseline turned off)"
    elif texts is None:
        blind_skipped = blind_skipped or "no texts given (the blind baseline needs the member and non-member texts)"
    else:
        ids = labelled["id"].astype(str).tolist()
        missing = [i for i in ids if i not in texts]
        if missing:
            raise InputError(
                f"{len(missing)} labelled document id(s) have no text for the blind baseline (first: {missing[0]!r}); "
                f"pass the texts the scores were computed on"
            )
        members = [texts[i] for i, label in zip(ids, labels, strict=True) if label == 1]
        nonmembers = [texts[i] for i, label in zip(ids, labels, strict=True) if label == 0]
        groups = _groups(labelled, labels, settings.folds)
        try:
            blind = blind_baseline(
                members,
                nonmembers,
                member_groups=None if groups is None else [g for g, label in zip(groups, labels, strict=True) if label],
                nonmember_groups=None
                if groups is None
                else [g for g, label in zip(groups, labels, strict=True) if not label],
                folds=settings.folds,
                seed=settings.seed,
                n_permutations=settings.blind_permutations,
                alpha=settings.alpha,
                fprs=settings.fprs,
                n_bootstrap=settings.n_bootstrap,
                confidence=settings.confidence,
            )
        except InputError as error:
            blind_skipped = str(error)
        metric_settings["blind_folds"] = settings.folds
        metric_settings["blind_folds_over"] = "groups" if groups else "texts"
    return Evaluation(
        scorers=evaluations,
        skipped=skipped,
        blind=blind,
        blind_skipped=blind_skipped,
        n_rows=len(frame),
        n_unlabelled=int(len(frame) - len(labelled)),
        settings=metric_settings,
        frame=frame,
        selection=_selection(labelled, labels, list(evaluations), settings),
        n_groups=_group_count(labelled),
    )


def _group_count(labelled: Any) -> int | None:
    """How many groups the labelled rows fall in (a row without a group counts as one), when some group holds
    several rows; None otherwise."""
    if "group" not in labelled.columns or labelled.empty:
        return None
    _, names = group_index(labelled["group"].to_numpy(dtype=object).tolist(), len(labelled))
    return len(names) if len(names) < len(labelled) else None


def _groups(labelled: Any, labels: Any, folds: int) -> list[str] | None:
    """The group of each labelled row, when every row has one and each class spans at least ``folds`` groups
    (then the blind baseline's folds keep groups whole); None otherwise (folds over single texts)."""
    if "group" not in labelled.columns:
        return None
    groups = labelled["group"].tolist()
    if any(g is None or (isinstance(g, float) and math.isnan(g)) or g == "" for g in groups):
        return None
    groups = [str(g) for g in groups]
    for label in (0, 1):
        if len({g for g, y in zip(groups, labels, strict=True) if y == label}) < folds:
            return None
    return groups


def _selection(labelled: Any, labels: Any, names: list[str], settings: EvaluationSettings) -> SelectionTest | None:
    """The max-T correction over the scorers evaluated, on the rows every one of them scored; with a ``group``
    column, the labels of whole groups are permuted (a row without a group is a group of its own)."""
    import numpy as np

    if len(names) < 2:
        return None
    matrix = labelled[names].to_numpy(dtype=np.float64, na_value=np.nan)
    keep = np.isfinite(matrix).all(axis=1)
    if "status" in labelled.columns:
        keep &= (labelled["status"] == "ok").to_numpy()
    if len(set(labels[keep].tolist())) < 2:
        return None
    groups = labelled["group"].to_numpy(dtype=object)[keep].tolist() if "group" in labelled.columns else None
    return max_auroc_permutation_test(
        matrix[keep],
        labels[keep],
        names=names,
        groups=groups,
        n_permutations=settings.selection_permutations,
        seed=settings.seed,
    )


def read_labelled_texts(
    path: str | Path, *, format: str = "auto", columns: Any = None, split: str | None = None
) -> list[Any]:
    """Documents of a text file in the layout asked for (``llm_mia.io.labelled_sets.FORMATS``); labels may be
    missing here (with a score file they come from the scores)."""
    from llm_mia.io.documents import read_documents
    from llm_mia.io.labelled_sets import detect_format, load_mimir, load_wikimia

    form = detect_format(path, columns=columns, split=split) if format == "auto" else format
    if form == "wikimia":
        return load_wikimia(path, split=split)
    if form == "mimir":
        return load_mimir(path, split=split)
    return read_documents(path, columns=columns, split=split)


def texts_from_run_record(record: Mapping[str, Any] | None, **read_options: Any) -> tuple[dict[str, str] | None, str]:
    """The scored texts, found through a run record's input path and used only if their hash still matches.

    Returns (texts by id or None, a note saying where they came from or why not).
    """
    from llm_mia.io.identity import sha256_texts

    source = ((record or {}).get("input") or {}).get("source")
    if not source:
        return None, "no texts: pass --input with the scored texts to run the blind baseline"
    if not Path(source).exists():
        return None, f"the scored input {source} is gone; pass --input with the scored texts"
    try:
        documents = read_labelled_texts(source, **read_options)
    except LlmMiaError as error:
        return None, f"could not re-read the scored input {source} ({error}); pass --input"
    if sha256_texts([d.text for d in documents]) != (record or {})["input"].get("sha256"):
        return None, f"the texts in {source} changed since scoring (hash differs); pass --input with the scored texts"
    return {d.id: d.text for d in documents}, f"texts re-read from {source} (hash matches the run record)"


def evaluate_score_file(
    path: str | Path,
    *,
    texts_from: str | Path | None = None,
    settings: EvaluationSettings | None = None,
    **read_options: Any,
) -> tuple[Evaluation, dict[str, Any]]:
    """Evaluate a labelled score file. The blind baseline's texts come from ``texts_from`` or, failing that,
    from the input named in the file's run record when its hash still matches. Returns the evaluation and the
    identity block for ``evaluation.json`` (score file hash, run record, where the texts came from)."""
    from llm_mia.io.identity import sha256_file
    from llm_mia.io.records import read_run_record
    from llm_mia.io.score_files import read_scores

    settings = settings or EvaluationSettings()
    path = Path(path)
    frame = read_scores(path)
    record = read_run_record(path)
    identity: dict[str, Any] = {
        "scores": {"path": str(path), "sha256": sha256_file(path)},
        "run_record": record,
        "run_record_note": None if record else f"no run record found beside {path}",
    }
    texts: dict[str, str] | None = None
    if not settings.blind:
        note = "skipped (--no-blind)"
    elif texts_from is not None:
        texts = {d.id: d.text for d in read_labelled_texts(texts_from, **read_options)}
        note = f"texts from {texts_from}"
    else:
        texts, note = texts_from_run_record(record, **read_options)
    identity["texts"] = note
    pick_score_columns(frame, settings.columns, source=str(path))  # a wrong --scorers fails before any work
    evaluation = evaluate_table(frame, texts=texts, settings=settings, blind_skipped=None if texts else note)
    return evaluation, identity


def evaluate_documents_file(
    path: str | Path,
    scoring: Any,
    *,
    settings: EvaluationSettings | None = None,
    format: str = "auto",
    columns: Any = None,
    split: str | None = None,
    precision_check: int | None = None,
) -> tuple[Evaluation, dict[str, Any], Any]:
    """Read a labelled set (WikiMIA, MIMIR or generic), score it with ``scoring`` and evaluate it. Returns the
    evaluation, the identity block and the score run (to save the rows). ``precision_check``: first score that
    many documents (a seeded sample) in the scoring dtype and in float32 (``llm_mia.workflows.precision``, with
    the AUROC under each); the check goes into the run record."""
    from llm_mia.io.labelled_sets import load_benchmark
    from llm_mia.workflows.score import score_documents

    settings = settings or EvaluationSettings()
    documents = load_benchmark(path, format=format, columns=columns, split=split)
    check = None
    if precision_check is not None:
        from llm_mia.workflows.precision import precision_check as check_precision

        labels = [d.label for d in documents if d.label is not None]  # all of them: a labelled set
        check = check_precision(documents, scoring, size=precision_check, labels=labels).to_dict()
    run = score_documents(documents, scoring, source=str(path), tool="llm-mia evaluate")
    if check is not None:
        run.record["precision_check"] = check
    run.record["input"]["format"] = format
    texts = {d.id: d.text for d in documents} if settings.blind else None
    evaluation = evaluate_table(
        run.frame, texts=texts, settings=settings, blind_skipped=None if texts else "skipped (--no-blind)"
    )
    identity = {
        "scores": None,
        "run_record": run.record,
        "texts": "the scored input" if settings.blind else "skipped (--no-blind)",
    }
    return evaluation, identity, run


@dataclass
class EvaluationReport:
    """``llm-mia evaluate``: the evaluation of one labelled set. ``identity``: what ``evaluation.json`` says about
    its inputs (score file, run record, where the blind baseline's texts came from); ``score_run``: the rows
    scored here (None when they came from a score file); ``source``: the file read."""

    evaluation: Evaluation
    identity: dict[str, Any]
    source: str
    score_run: Any = None

    @property
    def record(self) -> dict[str, Any]:
        """What ``evaluation.json`` holds, figures aside."""
        return {"tool": "llm-mia evaluate", **self.identity, **self.evaluation.to_dict()}

    def summary_lines(self) -> list[str]:
        """What was read, the models that scored it, any precision check, the table and any warning."""
        from llm_mia.workflows.precision import PrecisionCheck

        evaluation = self.evaluation
        labelled = evaluation.n_rows - evaluation.n_unlabelled
        lines = [
            f"evaluated {labelled} labelled documents from {self.source} ({evaluation.n_unlabelled} unlabelled ignored)"
        ]
        run_record = self.identity.get("run_record") or {}
        for role, model in (run_record.get("models") or {}).items():
            where = (
                f"{model['api']['base_url']}, {model['capabilities']['mode']} mode"
                if "api" in model
                else f"{model.get('architecture')}, {model.get('dtype')}"
            )
            lines.append(f"{role} model: {model.get('name')} ({where})")
        if "precision_check" in run_record:
            lines += ["", *PrecisionCheck.from_dict(run_record["precision_check"]).lines()]
        lines += ["", *evaluation.table_lines()]
        warning = evaluation.warning()
        if warning:
            lines += ["", warning]
        return lines

    def write(self, directory: str | Path) -> list[Path]:
        """``evaluation.json`` and the figures (:meth:`Evaluation.write`)."""
        return self.evaluation.write(directory, identity=self.identity)

    def save_scores(self, path: str | Path) -> list[Path]:
        """The rows scored here and their run record (``--save-scores``); the identity then names the file."""
        if self.score_run is None:
            raise LlmMiaError("no rows were scored here: the evaluation read a score file")
        written = list(self.score_run.write(path))
        self.identity["scores"] = {"path": str(path)}
        return written


def run_evaluation(
    settings: EvaluationSettings,
    *,
    scores: str | Path | None = None,
    texts: str | Path | None = None,
    scoring: Any = None,
    format: str = "auto",
    columns: Any = None,
    split: str | None = None,
    precision_check: int | None = None,
) -> EvaluationReport:
    """``llm-mia evaluate``: a labelled score file ``scores`` evaluated (the blind baseline reading ``texts``, or
    the input its run record names), or else the labelled set ``texts`` scored with ``scoring`` and evaluated
    (:func:`evaluate_score_file`, :func:`evaluate_documents_file`)."""
    read = {"format": format, "columns": columns, "split": split}
    if scores is not None:
        evaluation, identity = evaluate_score_file(scores, texts_from=texts, settings=settings, **read)
        return EvaluationReport(evaluation, identity, source=str(scores))
    if texts is None:
        raise LlmMiaError(
            "nothing to evaluate: pass --scores FILE (a labelled score file) or --input LABELLED (scores with "
            "--model, default the packaged model, then evaluates)"
        )
    evaluation, identity, run = evaluate_documents_file(
        texts, scoring, settings=settings, precision_check=precision_check, **read
    )
    return EvaluationReport(evaluation, identity, source=str(texts), score_run=run)
