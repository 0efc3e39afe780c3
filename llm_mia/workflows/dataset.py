"""The dataset-level workflow (``llm-mia dataset-test``): cut a suspect work and control works into passages of
one fixed length, score them in one pass per model and text variant, run the work-level test with its
safeguards (``llm_mia.stats.dataset_inference``), and report.

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
from typing import Any, Protocol, TypedDict

import numpy as np

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.io.identity import sha256_text, sha256_texts
from llm_mia.io.outputs import write_json, write_text
from llm_mia.io.passages import (
    DEFAULT_PASSAGE_TOKENS,
    WORK_UNITS,
    Passage,
    Source,
    check_passage_settings,
    passages_from_sources,
    read_sources,
)
from llm_mia.io.records import write_run_record
from llm_mia.io.score_files import write_rows
from llm_mia.scoring.settings import ScoringSettings
from llm_mia.stats.dataset_inference import (
    DEFAULT_ALPHA,
    PASSAGE_LEVEL,
    REFERENCE_GAP,
    SCORES,
    WORK_LEVEL,
    DatasetInferenceResult,
    dataset_inference,
)
from llm_mia.stats.metrics import format_p_value, p_phrase
from llm_mia.stats.passage_test import COMBINATION, DEFAULT_CLIP_QUANTILE, DEFAULT_SPLITS, MIN_PASSAGES_PER_SET
from llm_mia.stats.work_test import DEFAULT_PERMUTATIONS, SELECTION_RULES, WHOLE_SUSPECT

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("report.json", "summary.md", "work_test.png", "p_value_curve.png", "scores.jsonl", "passages.jsonl")
STATISTIC_CHOICES = ("auto", SCORES, REFERENCE_GAP)
EXAMPLES = 5  # passages named in a refusal; the count says how many more


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
        from llm_mia.backends.remote.model import is_remote

        if self.tokenizer is not None and not is_remote(self.scoring.models.model):
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


def _features(
    rows: list[dict[str, Any]], columns: list[str]
) -> tuple[list[list[float]], list[int], Counter[str]]:
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
    report: dict[str, Any]
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
        written.append(write_text(directory / "summary.md", _markdown(self.report)))
        written.append(plot_result(self.result, directory))
        return written


class PassageCutting(Protocol):
    """What :func:`cut_inputs` reads from a test's settings: how each side is split into works and how long the
    passages are and how far apart. ``DatasetTestSettings`` and the extraction test's settings both provide it."""

    @property
    def suspect_works(self) -> str: ...
    @property
    def control_works(self) -> str: ...
    @property
    def passage_tokens(self) -> int: ...
    @property
    def passage_stride(self) -> int | None: ...


def _check_passages(name: str, found: list[Passage], needed: int, cut: Any, settings: PassageCutting) -> None:
    if len(found) >= needed:
        return
    short = f"; {len(cut.too_short)} of {cut.sources} source(s) are shorter than one passage" if cut.too_short else ""
    raise InputError(
        f"--{name} gives {len(found)} passage(s) of {settings.passage_tokens} tokens{short}; the test needs at "
        f"least {MIN_PASSAGES_PER_SET} suspect and {2 * MIN_PASSAGES_PER_SET} control passages. Add text or lower "
        f"--passage-tokens (every passage on both sides has exactly that many tokens)"
    )


@dataclass
class DatasetInputs:
    """A work and its controls read and cut into passages: what a dataset-level test is run on.

    ``shared``: passage texts found on both sides, left out of both.
    """

    suspect: str
    control: str
    suspect_sources: list[Source]
    control_sources: list[Source]
    suspect_passages: list[Passage]
    control_passages: list[Passage]
    suspect_cut: Any
    control_cut: Any
    shared: int


def cut_inputs(
    suspect: str | Path,
    control: str | Path,
    settings: PassageCutting,
    *,
    tokenizer: Any,
    refuse_shared: bool = False,
    refuse_copied: bool = False,
) -> DatasetInputs:
    """Read both inputs (any input ``llm_mia.io.documents.read_documents`` reads), refuse texts found on both sides,
    cut passages of exactly ``passage_tokens`` tokens with ``tokenizer`` (the target model's), leave out passages
    found on both sides (``refuse_shared``: refuse them instead), refuse any passage mostly made of text found
    verbatim on the other side when ``refuse_copied`` (``llm_mia.stats.overlap``), and check there are enough; no model
    is run."""
    suspect_sources = read_sources(suspect, works=settings.suspect_works, name=Path(suspect).name)
    control_sources = read_sources(control, works=settings.control_works, name=Path(control).name)
    _refuse_overlap(suspect_sources, control_sources)
    options = {"tokenizer": tokenizer, "passage_tokens": settings.passage_tokens, "stride": settings.passage_stride}
    suspect_passages, suspect_cut = passages_from_sources(suspect_sources, **options)
    control_passages, control_cut = passages_from_sources(control_sources, **options)
    # a passage found on both sides (boilerplate, a quotation) would compare a text with itself: left out of both
    shared = {sha256_text(p.text) for p in suspect_passages} & {sha256_text(p.text) for p in control_passages}
    if shared and refuse_shared:
        pairs = [
            (p, next(c for c in control_passages if sha256_text(c.text) == sha256_text(p.text)))
            for p in suspect_passages
            if sha256_text(p.text) in shared
        ]
        shown = "; ".join(f"suspect {s.id!r} = control {c.id!r}" for s, c in pairs[:EXAMPLES])
        more = f"; and {len(pairs) - EXAMPLES} more" if len(pairs) > EXAMPLES else ""
        raise InputError(
            f"{len(shared)} passage(s) appear in both the suspect work and the controls: {shown}{more}. The "
            f"controls must be separate texts the model cannot have seen: remove the shared text (boilerplate, a "
            f"licence, quotations) from one side"
        )
    if refuse_shared or refuse_copied:
        _refuse_copied_text(suspect_passages, control_passages, suspect_sources, control_sources)
    suspect_passages = [p for p in suspect_passages if sha256_text(p.text) not in shared]
    control_passages = [p for p in control_passages if sha256_text(p.text) not in shared]
    _check_passages("suspect", suspect_passages, MIN_PASSAGES_PER_SET, suspect_cut, settings)
    _check_passages("control", control_passages, 2 * MIN_PASSAGES_PER_SET, control_cut, settings)
    return DatasetInputs(
        str(suspect),
        str(control),
        suspect_sources,
        control_sources,
        suspect_passages,
        control_passages,
        suspect_cut,
        control_cut,
        len(shared),
    )


def refuse_remote_target(models: Any, *, tokenizer: str | None = None) -> None:
    """Passages are cut with the target model's tokenizer, which an API does not expose: an ``api:`` target needs
    a local ``tokenizer`` to cut with (``--tokenizer``)."""
    from llm_mia.backends.remote.model import is_remote

    if is_remote(models.model) and tokenizer is None:
        raise LlmMiaError(
            f"--model {models.model}: the dataset-level test cuts passages with the target model's tokenizer, which "
            "a model behind an API does not expose: name a local model whose tokenizer cuts them (--tokenizer "
            "smollm2-135m, or the target's own if you have it)"
        )


def cutting_tokenizer(settings: DatasetTestSettings, models: Any = None) -> Any:
    """The tokenizer passages are cut with: the target's (the loaded model's, when ``models`` are given), or for a
    target behind an API the ``tokenizer`` model's. Only tokenizer files are read; no weights are loaded."""
    if settings.tokenizer is None and models is not None:
        return models["target"].tokenizer
    from transformers import AutoTokenizer

    from llm_mia.backends.local import ModelSpec, resolve_model_directory

    spec = ModelSpec(name=settings.tokenizer) if settings.tokenizer else settings.scoring.models.specs()["target"]
    return AutoTokenizer.from_pretrained(
        str(resolve_model_directory(spec)),
        local_files_only=True,
        trust_remote_code=settings.scoring.models.trust_remote_code,
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
    report = {
        **record,
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
    tested: list[Passage], passages: list[Passage], excluded: Counter, cut: Any, entered: list[int]
) -> dict[str, Any]:
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
) -> dict[str, Any]:
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


def _refuse_overlap(suspect: list[Source], control: list[Source]) -> None:
    """The same text on both sides compares a work with itself: refused, naming the first one."""
    control_hashes = {sha256_text(s.text): s.name for s in control if s.text.strip()}
    shared = [(s.name, control_hashes[sha256_text(s.text)]) for s in suspect if sha256_text(s.text) in control_hashes]
    if shared:
        first = shared[0]
        raise InputError(
            f"{len(shared)} text(s) appear in both the suspect and the control input (first: suspect {first[0]!r} "
            f"= control {first[1]!r}); the controls must be texts the model cannot have seen, distinct from the "
            f"work tested. Remove them from one side"
        )


def _refuse_copied_text(
    suspect: list[Passage], control: list[Passage], suspect_sources: list[Source], control_sources: list[Source]
) -> None:
    """Refuse passages of one side mostly made of text found verbatim on the other (``llm_mia.stats.overlap``)."""
    from types import SimpleNamespace

    from llm_mia.stats.overlap import SHARE, shared_passages

    def texts(sources: list[Source], side: str) -> list[SimpleNamespace]:
        return [SimpleNamespace(id=f"{side} source {s.name}", text=s.text) for s in sources]

    found = shared_passages(
        suspect,
        control,
        suspect_texts=texts(suspect_sources, "suspect"),
        control_texts=texts(control_sources, "control"),
    )
    if found:
        counts = {side: sum(f.side == side for f in found) for side in ("suspect", "control")}
        shown = "; ".join(
            f"{f.side} passage {f.passage!r} ({f.containment:.0%} found in {f.other})" for f in found[:EXAMPLES]
        )
        more = f"; and {len(found) - EXAMPLES} more" if len(found) > EXAMPLES else ""
        sources = sorted({f.other for f in found})
        raise InputError(
            f"{counts['suspect']} suspect and {counts['control']} control passage(s) are at least {SHARE:.0%} text "
            f"found verbatim on the other side: {shown}{more}. They come from {len(sources)} source(s) on the other "
            f"side ({', '.join(sources[:EXAMPLES])}{', ...' if len(sources) > EXAMPLES else ''}). The controls must "
            f"be separate texts the model cannot have seen: remove the shared text (boilerplate, a licence, "
            f"quotations) from one side"
        )


def plot_result(result: DatasetInferenceResult, directory: Path) -> Path:
    """The figure of the design's test: work-level, T of every labelling with the observed one marked
    (``work_test.png``); passage-level, p-value against the number of passages (``p_value_curve.png``)."""
    if result.work_test is not None:
        return plot_work_test(result, directory)
    return plot_p_value_curve(result, directory)


def _axes() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def plot_work_test(result: DatasetInferenceResult, directory: Path) -> Path:
    """``work_test.png``: T of every labelling of the works, the observed one marked (work-level design)."""
    work = result.work_test
    if work is None:
        raise LlmMiaError("no work-level test in this result (passage-level design)")
    figure, axes = _axes()
    axes.hist(
        work.null,
        bins=min(40, max(5, len(work.null) // 3)),
        color="grey",
        alpha=0.7,
        label=f"{'every' if work.exact else f'{len(work.null)} random'} labelling(s) of the works",
    )
    axes.axvline(work.statistic, color="red", linewidth=2, label=f"suspect work(s): {p_phrase(work.p_value)}")
    axes.set_xlabel("suspect minus control works, standardised work means (work-level SDs)")
    axes.set_ylabel("labellings")
    axes.set_title("Work-level permutation test")
    axes.legend(fontsize=8)
    path = directory / "work_test.png"
    figure.savefig(path, dpi=120)
    return path


def plot_p_value_curve(result: DatasetInferenceResult, directory: Path) -> Path:
    """``p_value_curve.png``: the passage-level p-value against the number of passages (with the work-level
    design, exploratory: it treats passages as independent)."""
    import matplotlib.ticker

    figure, axes = _axes()
    points = result.curve
    x = [p.n_suspect for p in points]
    floor = 1e-300  # log axis: a p-value that underflows to 0 is drawn at the floor
    axes.fill_between(
        x,
        [max(p.p_min, floor) for p in points],
        [max(p.p_max, floor) for p in points],
        alpha=0.25,
        label="range over half-splits",
    )
    axes.plot(x, [max(p.p_value, floor) for p in points], marker="o", label="combined p (2 x median)")
    axes.axhline(result.alpha, color="red", linestyle="--", label=f"alpha = {result.alpha:g}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xlabel("suspect passages (control passages in proportion)")
    axes.set_ylabel("passage-level p-value")
    exploratory = "exploratory: passages as independent" if result.work_test is not None else "no verdict of training"
    axes.set_title(f"Passage-level test ({exploratory})")
    axes.legend(fontsize=8)
    path = directory / "p_value_curve.png"
    figure.savefig(path, dpi=120)
    return path


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The printed summary (also the top of summary.md)."""
    inference, passages = report["result"], report["passages"]
    suspect, control = passages["suspect"], passages["control"]
    reference = report["models"].get("reference", {}).get("name")
    statistic = (
        f"the target's scores minus the reference model's ({reference})"
        if inference["statistic"] == REFERENCE_GAP
        else "the target model's membership scores"
    )
    lines = [
        f"dataset test: {suspect['works']} suspect work(s), {suspect['tested']} of {suspect['passages']} passages in "
        f"the test vs {control['works']} control work(s), {control['tested']} of {control['passages']} passages; "
        f"{passages['passage_tokens']} tokens per passage on both sides; model {report['models']['target']['name']}",
        f"statistic: {statistic}; features: {', '.join(report['features'])}",
        f"design: {inference['design']} ({inference['design_reason']})",
    ]
    work = inference["work_test"]
    if work is not None:
        entered = (
            f"the suspect work whole ({work['passages_per_work']} passages), each control work with up to as many"
            if work["passage_selection"] == WHOLE_SUSPECT
            else f"every work with its first {work['passages_per_work']} passages"
        )
        lines.append(
            f"work-level test: suspect {work['statistic']:+.2f} work-level SDs above the control works; p = "
            f"{format_p_value(work['p_value'])} over {work['labellings']} labellings "
            f"({'every labelling' if work['exact'] else 'random labellings'}, {work['validity']}; smallest possible "
            f"{format_p_value(work['smallest_possible_p'])}; {entered}; {work['works_left_out']} work(s) with too "
            f"few passages left out)"
        )
    alone = report.get("reference_alone")
    if alone:
        lines.append(
            f"reference model alone: p = {format_p_value(alone['p_value'])} ({alone['meaning'].split(': ')[1]})"
        )
    passage = inference["passage_test"]
    d = passage["effect_size_cohens_d"]
    lines.append(
        f"passage-level test ({passage['role']}): {p_phrase(passage['p_value'])}, "
        f"{COMBINATION.split(' (')[0]}; "
        f"Cohen's d median {d['median']:.2f} (range over half-splits {d['min']:.2f} to {d['max']:.2f})"
    )
    for guard in inference["safeguards"]:
        state = ("FIRED" if guard["withholds"] else "differs (reported)") if guard["fired"] else "ok"
        state = state if guard["ran"] else "-"
        lines.append(f"safeguard {guard['name']}: {state}: {guard['detail']}")
    if passages["shared_left_out"]:
        lines.append(f"{passages['shared_left_out']} passage text(s) found on both sides were left out of both")
    for name in ("suspect", "control"):
        cutting = passages[name]["cutting"]
        if cutting["tokens_unused"]:
            lines.append(
                f"{name}: {cutting['tokens_unused']} of {cutting['tokens']} tokens not in any passage (tails shorter "
                f"than a passage; {cutting['sources_too_short']} source(s) shorter than one passage)"
            )
        if passages[name]["excluded"]:
            reasons = "; ".join(f"{count} x {why}" for why, count in passages[name]["excluded"].items())
            lines.append(f"left out of the test ({name}): {reasons}")
    lines += [f"qualification: {q}" for q in inference["qualifications"]]
    lines.append(f"assumption: {inference['assumption']}")
    lines.append(f"what the checks cannot see: {inference['checks_cannot_see']}")
    lines.append(f"verdict: {report['verdict_sentence']}")
    return lines


def _markdown(report: dict[str, Any]) -> str:
    inference = report["result"]
    weights_source = inference["work_test"] or inference["passage_test"]
    weight_rows = ["| feature | median weight (standardised) |", "|---|---:|"]
    weight_rows += [f"| {name} | {value:.4f} |" for name, value in weights_source["median_weights"].items()]
    figure = "work_test.png" if inference["design"] == WORK_LEVEL else "p_value_curve.png"
    curve = []
    if inference["design"] == PASSAGE_LEVEL:
        curve = [
            "| passages (suspect) | passages (control) | combined p | median split p |",
            "|---:|---:|---:|---:|",
            *(
                f"| {p['n_suspect']} | {p['n_control']} | {format_p_value(p['p_value'])} | "
                f"{format_p_value(p['p_median'])} |"
                for p in inference["p_value_curve"]
            ),
            "",
        ]
    return "\n".join(
        [
            "# Dataset-level membership test",
            "",
            f"**Verdict:** {report['verdict_sentence']}",
            "",
            "```",
            *summary_lines(report),
            "```",
            "",
            f"![test]({figure})",
            "",
            *curve,
            "## Weights of the combined score",
            "",
            *weight_rows,
            "",
            "## Inputs",
            "",
            f"- suspect: `{report['input']['suspect']['path']}` (sha256 {report['input']['suspect']['sha256']})",
            f"- control: `{report['input']['control']['path']}` (sha256 {report['input']['control']['sha256']})",
            "- every passage's file, work and character offsets: `passages.jsonl`; its scores: `scores.jsonl`",
            "",
        ]
    )
