"""The dataset-level workflow (``llm-mia dataset-test``): cut a suspect work and control works into passages of
one fixed length (:mod:`llm_mia.workflows.dataset_inputs`), score them in one pass per model and text variant, run
the work-level test with its safeguards (``llm_mia.stats.dataset_inference``), and report
(:mod:`llm_mia.workflows.dataset_report`: the figure, the summary).

:func:`run_dataset_test` returns a :class:`DatasetTestReport`; :meth:`DatasetTestReport.write` writes the
report directory.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, cast

import numpy as np

from llm_mia.errors import LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.io.identity import sha256_text, sha256_texts
from llm_mia.io.outputs import write_json, write_text
from llm_mia.io.passages import (
    DEFAULT_PASSAGE_TOKENS,
    WORK_UNITS,
    Cutting,
    Passage,
    check_passage_settings,
)
from llm_mia.io.records import write_run_record
from llm_mia.io.score_files import write_rows
from llm_mia.scoring.settings import ScoringSettings
from llm_mia.stats.dataset_inference import (
    DEFAULT_ALPHA,
    REFERENCE_GAP,
    SCORES,
    DatasetInferenceResult,
    dataset_inference,
)
from llm_mia.stats.passage_test import DEFAULT_CLIP_QUANTILE, DEFAULT_SPLITS
from llm_mia.stats.work_test import DEFAULT_PERMUTATIONS, SELECTION_RULES, WHOLE_SUSPECT
from llm_mia.workflows.dataset_inputs import DatasetInputs, cut_inputs, cutting_tokenizer
from llm_mia.workflows.dataset_report import (
    DatasetReport,
    DatasetReportBody,
    ReferenceAlone,
    SideSummary,
    plot_result,
    summary_lines,
    summary_markdown,
)

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("report.json", "summary.md", "work_test.png", "p_value_curve.png", "scores.jsonl", "passages.jsonl")
STATISTIC_CHOICES = ("auto", SCORES, REFERENCE_GAP)


@dataclass(frozen=True)
class DatasetTestSettings:
    """How a work and its controls are cut, scored and tested.

    ``suspect_works``: what the suspect input is: ``one`` work (default: a book, however many files), several
    works by ``sources`` (each file or document) or by ``group`` column. ``control_works``: the same for the
    controls (default ``sources``: each file or document a separate work; use ``group`` when several
    documents belong to one work, ``one`` when they are all one work). ``passage_tokens`` /
    ``passage_stride``: passage length and spacing in target-model tokens (every passage exactly this
    long). ``alpha``: significance level. ``splits``: half-splits. ``permutations``: random labellings when
    they cannot all be enumerated. ``clip_quantile``: each feature clipped to this and 1 minus this quantile
    of the training half. ``seed``: of splits, labellings and the blind baseline. ``scoring``: models,
    scorers (default: every length-invariant scorer the models allow), extraction and cache. ``tokenizer``: for
    a target behind an API (whose tokenizer is unknown), the local model (alias, directory, GGUF) whose
    tokenizer cuts the passages; passage lengths are then counted in its tokens. ``statistic``: ``scores`` (the
    target's membership scores), ``reference-gap`` (each score minus the same score under the reference model: for
    controls that differ from the work in era, author or format, ``llm_mia.stats.dataset_inference.GAP_ASSUMPTION``) or
    ``auto`` (the gap when a reference model is given, else the scores). ``passage_selection``: which passages of
    one suspect work enter the test (``whole-suspect``: all of them, each control work with up to as many;
    ``common-size``: every work with its first c; ``llm_mia.stats.work_test.select_passages``).
    """

    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    suspect_works: str = "one"
    control_works: str = "sources"
    passage_tokens: int = DEFAULT_PASSAGE_TOKENS
    passage_stride: int | None = None
    alpha: float = DEFAULT_ALPHA
    splits: int = DEFAULT_SPLITS
    permutations: int = DEFAULT_PERMUTATIONS
    clip_quantile: float = DEFAULT_CLIP_QUANTILE
    seed: int = 0
    tokenizer: str | None = None
    statistic: str = "auto"
    passage_selection: str = WHOLE_SUSPECT

    def __post_init__(self) -> None:
        if self.tokenizer is not None and self.scoring.models.offers().tokenizer:
            raise LlmMiaError("--tokenizer is for a target behind an API; a local target cuts with its own tokenizer")
        if not 0.0 < self.alpha < 1.0:
            raise LlmMiaError(f"alpha {self.alpha} is not in (0, 1); 0.05 is the usual choice")
        if self.splits < 1:
            raise LlmMiaError(f"splits {self.splits} must be >= 1; 10 is a good default")
        if self.permutations < 1:
            raise LlmMiaError(f"permutations {self.permutations} must be >= 1; 999 is a good default")
        if not 0.0 <= self.clip_quantile < 0.5:
            raise LlmMiaError(f"clip quantile {self.clip_quantile} is not in [0, 0.5); 0.025 clips 2.5% per side")
        for name, value in (("suspect", self.suspect_works), ("control", self.control_works)):
            if value not in WORK_UNITS:
                raise LlmMiaError(f"{name} works {value!r}: choose one of {', '.join(WORK_UNITS)}")
        check_passage_settings(passage_tokens=self.passage_tokens, stride=self.passage_stride)
        if self.passage_selection not in SELECTION_RULES:
            raise LlmMiaError(
                f"passage selection {self.passage_selection!r}: choose one of {', '.join(SELECTION_RULES)}"
            )
        if self.statistic not in STATISTIC_CHOICES:
            raise LlmMiaError(f"statistic {self.statistic!r}: choose one of {', '.join(STATISTIC_CHOICES)}")
        has_reference = bool(self.scoring.models.reference)
        if self.statistic == REFERENCE_GAP and not has_reference:
            raise LlmMiaError(
                "--statistic reference-gap subtracts a reference model's scores: name one that cannot have seen the "
                "work with --reference (an older model, or one trained on the same kind of text without it)"
            )
        gap = self.statistic == REFERENCE_GAP or (self.statistic == "auto" and has_reference)
        object.__setattr__(self, "statistic", REFERENCE_GAP if gap else SCORES)
        sensitive = [c.column for c in self.scoring.calls if not c.scorer.length_invariant]
        if self.scoring.scorers is None:
            invariant = [c for c in self.scoring.calls if c.scorer.length_invariant]
            if gap:  # the gap subtracts each score's own value under the reference model
                invariant = [c for c in invariant if all(_reads_target(v) for v in c.scorer.views)]
            object.__setattr__(self, "scoring", _with_scorers(self.scoring, tuple(c.column for c in invariant)))
        elif gap and (uses := [c.column for c in self.scoring.calls if not all(map(_reads_target, c.scorer.views))]):
            raise LlmMiaError(
                f"scorer(s) {', '.join(uses)} read the reference model already; with the reference-gap statistic "
                f"every scorer is computed under both models and subtracted, so name target-model scorers only"
            )
        elif sensitive:
            raise LlmMiaError(
                f"scorer(s) {', '.join(sensitive)} change with passage length and byte count alone (e.g. zlib "
                f"divides a per-token mean by a total length), so they would separate works by format, not "
                f"membership; leave them out of dataset tests"
            )

    @property
    def reference_scoring(self) -> ScoringSettings:
        """The same scorers and extraction with the reference model in the target's place (the gap statistic)."""
        from dataclasses import replace

        models = self.scoring.models
        if models.reference is None:
            raise LlmMiaError("the gap statistic needs a reference model: give one (--reference)")
        as_target = replace(
            models,
            model=models.reference,
            revision=models.reference_revision,
            reference=None,
            reference_revision=None,
            output_defense=None,  # the reference is the analyst's own model, never defended
        )
        return replace(self.scoring, models=as_target)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.scoring.extraction.to_dict(),
            "statistic": self.statistic,
            "passage_selection": self.passage_selection,
            "suspect_works": self.suspect_works,
            "control_works": self.control_works,
            "passage_tokens": self.passage_tokens,
            "passage_stride": self.passage_stride or self.passage_tokens,
            "alpha": self.alpha,
            "splits": self.splits,
            "permutations": self.permutations,
            "clip_quantile": self.clip_quantile,
            "seed": self.seed,
        }


def _reads_target(view: str) -> bool:
    from llm_mia.scoring.scorers.registry import VIEWS

    return VIEWS[view].model == "target"


def _with_scorers(scoring: ScoringSettings, scorers: tuple[str, ...]) -> ScoringSettings:
    from dataclasses import replace

    return replace(scoring, scorers=scorers)


class _TestOptions(TypedDict):
    """The settings of the dataset-level test that every test of one run (the main one, the reference model's
    alone) shares."""

    alpha: float
    splits: int
    permutations: int
    seed: int
    clip_quantile: float


def _features(rows: list[dict[str, Any]], columns: list[str]) -> tuple[list[list[float]], list[int], Counter[str]]:
    """Feature rows of passages with every score present; indices kept; why the others were left out."""
    kept: list[list[float]] = []
    indices: list[int] = []
    excluded: Counter[str] = Counter()
    for index, row in enumerate(rows):
        values = [row[c] for c in columns]
        if row["status"] == "ok" and all(v is not None and math.isfinite(v) for v in values):
            kept.append(values)
            indices.append(index)
        else:
            excluded[row["status"]] += 1
    return kept, indices, excluded


@dataclass
class DatasetTestReport:
    """Everything a dataset-level test produced: passages, score rows, the test, the safeguards, records."""

    result: DatasetInferenceResult
    report: DatasetReport
    record: dict[str, Any]
    rows: list[dict[str, Any]]
    passage_rows: list[dict[str, Any]]
    is_main: bool = True

    @property
    def verdict(self) -> str:
        return self.result.verdict

    def summary_lines(self) -> list[str]:
        return summary_lines(self.report)

    def write(self, directory: str | Path) -> list[Path]:
        """Write the report directory: report.json, summary.md, the figure of the design's test, scores.jsonl
        (+ run record) and passages.jsonl."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = [write_rows(self.rows, directory / "scores.jsonl")]
        written.append(write_run_record(directory / "scores.jsonl", self.record))
        written.append(write_rows(self.passage_rows, directory / "passages.jsonl"))
        written.append(write_json(directory / "report.json", self.report))
        written.append(write_text(directory / "summary.md", summary_markdown(self.report)))
        written.append(plot_result(self.result, directory))
        return written


def refuse_remote_target(models: Any, *, tokenizer: str | None = None) -> None:
    """Passages are cut with the target model's tokenizer, which an API does not expose: an ``api:`` target needs
    a local ``tokenizer`` to cut with (``--tokenizer``)."""
    if not models.offers().tokenizer and tokenizer is None:
        raise LlmMiaError(
            f"--model {models.model}: the dataset-level test cuts passages with the target model's tokenizer, which "
            "a model behind an API does not expose: name a local model whose tokenizer cuts them (--tokenizer "
            "smollm2-135m, or the target's own if you have it)"
        )


def run_dataset_test(
    suspect: str | Path,
    control: str | Path,
    settings: DatasetTestSettings | None = None,
    *,
    refuse_copied: bool = True,
) -> DatasetTestReport:
    """The dataset-level test of the work at ``suspect`` against the control works at ``control``:
    :func:`cut_inputs` with the target model's tokenizer, then :func:`score_and_test`. Passages found on both sides
    are left out of both and counted; passages mostly made of text found verbatim on the other side (a quoted
    chapter) are refused as ``llm-mia plan`` refuses them, unless ``refuse_copied`` is False."""
    from llm_mia.backends.loading import load_models

    settings = settings or DatasetTestSettings()
    refuse_remote_target(settings.scoring.models, tokenizer=settings.tokenizer)
    models = load_models(settings.scoring.models)
    inputs = cut_inputs(
        suspect, control, settings, tokenizer=cutting_tokenizer(settings, models), refuse_copied=refuse_copied
    )
    return score_and_test(inputs, settings, models=models)


def score_and_test(
    inputs: DatasetInputs, settings: DatasetTestSettings, *, models: Any, observer: Any = None
) -> DatasetTestReport:
    """Score the passages of ``inputs`` (suspect and control together, one extraction per model and text
    variant, stats cache, multi-process under a launcher; with the reference-gap statistic, the same scorers under
    the reference model too), run :func:`llm_mia.stats.dataset_inference.dataset_inference` with its model-free checks
    on
    the passages' texts, and assemble the report. ``observer`` hears of every model call
    (``llm_mia.scoring.pipeline.extract_views``)."""
    from llm_mia.workflows.score import score_documents

    scoring = settings.scoring
    columns = [call.column for call in scoring.calls]
    suspect, control = inputs.suspect, inputs.control
    suspect_sources, control_sources = inputs.suspect_sources, inputs.control_sources
    suspect_passages, control_passages = inputs.suspect_passages, inputs.control_passages
    documents: list[Document] = [p.to_document(label=1, group=p.work, prefix="suspect:") for p in suspect_passages] + [
        p.to_document(label=0, group=p.work, prefix="control:") for p in control_passages
    ]
    common = {"source": f"{suspect} + {control}", "tool": "llm-mia dataset-test", "observer": observer}
    run = score_documents(documents, scoring, models=models, **common)
    rows = run.rows
    gap = settings.statistic == REFERENCE_GAP
    record = dict(run.record)
    if gap:
        reference_run = score_documents(
            documents, settings.reference_scoring, models={"target": models["reference"]}, **common
        )
        rows = [_with_reference(row, other, columns) for row, other in zip(rows, reference_run.rows, strict=True)]
        record["reference_pass"] = {"models": reference_run.record.get("models"), "scorers": columns}
    feature_columns = [f"{c} gap" for c in columns] if gap else columns
    suspect_rows, control_rows = rows[: len(suspect_passages)], rows[len(suspect_passages) :]
    suspect_x, suspect_kept, suspect_excluded = _features(suspect_rows, feature_columns)
    control_x, control_kept, control_excluded = _features(control_rows, feature_columns)
    if suspect_excluded or control_excluded:
        logger.warning(
            "left out of the test: %d suspect and %d control passage(s) without every score (see scores.jsonl)",
            sum(suspect_excluded.values()),
            sum(control_excluded.values()),
        )
    tested_suspect = [suspect_passages[i] for i in suspect_kept]
    tested_control = [control_passages[i] for i in control_kept]
    test_options: _TestOptions = {
        "alpha": settings.alpha,
        "splits": settings.splits,
        "permutations": settings.permutations,
        "seed": settings.seed,
        "clip_quantile": settings.clip_quantile,
    }
    result = dataset_inference(
        suspect_x,
        control_x,
        suspect_works=[p.work for p in tested_suspect],
        control_works=[p.work for p in tested_control],
        suspect_texts=[p.text for p in tested_suspect],
        control_texts=[p.text for p in tested_control],
        suspect_tokens=[suspect_rows[i]["n_tokens"] for i in suspect_kept],
        control_tokens=[control_rows[i]["n_tokens"] for i in control_kept],
        statistic=settings.statistic,
        passage_selection=settings.passage_selection,
        feature_names=feature_columns,
        **test_options,
    )
    record["input"] = {
        name: {
            "path": str(path),
            "sources": len(sources),
            "works": len({s.work_id for s in sources}),
            "work_unit": unit,
            "sha256": sha256_texts([s.text for s in sources]),
        }
        for name, path, sources, unit in (
            ("suspect", suspect, suspect_sources, settings.suspect_works),
            ("control", control, control_sources, settings.control_works),
        )
    }
    record["settings"] = settings.to_dict()
    entered = _entered(result, len(suspect_kept))
    body: DatasetReportBody = {
        "verdict": result.verdict,
        "verdict_sentence": result.sentence(),
        "features": feature_columns,
        "passages": {
            "passage_tokens": settings.passage_tokens,
            "shared_left_out": inputs.shared,
            "suspect": _side_summary(
                tested_suspect, suspect_passages, suspect_excluded, inputs.suspect_cut, entered[0]
            ),
            "control": _side_summary(
                tested_control, control_passages, control_excluded, inputs.control_cut, entered[1]
            ),
        },
        "result": result.to_dict(),
    }
    report = cast(DatasetReport, {**record, **body})  # the run record's keys, then the test's
    if gap and result.work_test is not None:
        report["reference_alone"] = _reference_alone(
            [suspect_rows[i] for i in suspect_kept],
            [control_rows[i] for i in control_kept],
            [p.work for p in tested_suspect],
            [p.work for p in tested_control],
            columns,
            test_options,
        )
    tested = {("suspect", suspect_kept[i]) for i in entered[0]} | {("control", control_kept[i]) for i in entered[1]}
    scored = {("suspect", i) for i in suspect_kept} | {("control", i) for i in control_kept}
    passage_rows = [
        {
            "set": name,
            **passage.record(),
            "text_sha256": sha256_text(passage.text),
            "scored": (name, index) in scored,
            "in_test": (name, index) in tested,
        }
        for name, found in (("suspect", suspect_passages), ("control", control_passages))
        for index, passage in enumerate(found)
    ]
    return DatasetTestReport(
        result=result, report=report, record=record, rows=rows, passage_rows=passage_rows, is_main=run.is_main
    )


def _with_reference(row: dict[str, Any], other: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """A score row with the reference model's value of every column (``ref:<column>``) and the gap
    (``<column> gap`` = target - reference); a passage without both is left out of the test by its status."""
    merged = dict(row)
    for column in columns:
        value, reference = row.get(column), other.get(column)
        merged[f"ref:{column}"] = reference
        gap = None
        if value is not None and reference is not None and math.isfinite(value) and math.isfinite(reference):
            gap = value - reference
        merged[f"{column} gap"] = gap
    if merged["status"] == "ok" and other.get("status") != "ok":
        merged["status"] = f"reference model: {other.get('status')}"
    return merged


def _entered(result: DatasetInferenceResult, n_suspect: int) -> tuple[list[int], list[int]]:
    """Positions (among the scored suspect and control passages) of the passages the work-level test read; in the
    passage-level design, all of them."""
    work = result.work_test
    if work is None or work.selection is None:
        return list(range(n_suspect)), list(range(result.passage_test.n_control))
    indices = work.selection.indices
    return [i for i in indices if i < n_suspect], [i - n_suspect for i in indices if i >= n_suspect]


def _side_summary(
    tested: list[Passage], passages: list[Passage], excluded: Counter, cut: Cutting, entered: list[int]
) -> SideSummary:
    return {
        "works": len({p.work for p in tested}),
        "passages": len(passages),
        "scored": len(tested),
        "tested": len(entered),
        "excluded": dict(excluded),
        "cutting": cut.to_dict(),
    }


def _reference_alone(
    suspect_rows: list[dict[str, Any]],
    control_rows: list[dict[str, Any]],
    suspect_works: list[str],
    control_works: list[str],
    columns: list[str],
    options: Mapping[str, Any],
) -> ReferenceAlone:
    """The work-level test on the reference model's scores alone (the scored passages): how far the suspect work
    stands out to a model that cannot have seen it. Reported beside the gap statistic, not tested."""
    from llm_mia.stats.work_test import work_permutation_test

    values = np.array([[row[f"ref:{c}"] for c in columns] for row in [*suspect_rows, *control_rows]], dtype=float)
    works = [f"suspect:{w}" for w in suspect_works] + [f"control:{w}" for w in control_works]
    options = {key: options[key] for key in ("splits", "permutations", "seed", "clip_quantile")}
    alone = work_permutation_test(values, works, sorted({f"suspect:{w}" for w in suspect_works}), **options)
    return {
        "p_value": alone.p_value,
        "statistic": alone.statistic,
        "meaning": "the same work-level test on the reference model's own scores: a small p means the suspect work "
        "stands out from the control works to a model that cannot have seen it, and the verdict then rests on the "
        "two models reacting alike to that difference",
    }
