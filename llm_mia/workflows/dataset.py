"""The dataset-level workflow (``llm-mia dataset-test``): cut a suspect work and control works into passages of
one fixed length, score them in one pass per model and text variant, run the work-level test with its
safeguards (``llm_mia.dataset_inference``), and report.

:func:`run_dataset_test` returns a :class:`DatasetTestReport`; :meth:`DatasetTestReport.write` writes the
report directory.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.blind import DEFAULT_PERMUTATIONS as BLIND_PERMUTATIONS
from llm_mia.blind import blind_baseline
from llm_mia.dataset_inference import (
    CONTROL_ASSUMPTION,
    DEFAULT_ALPHA,
    PASSAGE_LEVEL,
    WORK_LEVEL,
    DatasetInferenceResult,
    Safeguard,
    dataset_inference,
    min_control_works,
)
from llm_mia.documents import Document
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.half_split import COMBINATION, DEFAULT_CLIP_QUANTILE, DEFAULT_SPLITS, MIN_PASSAGES_PER_SET
from llm_mia.identity import sha256_text, sha256_texts
from llm_mia.metrics import format_p_value, p_phrase
from llm_mia.outputs import write_json, write_text
from llm_mia.passages import (
    DEFAULT_PASSAGE_TOKENS,
    WORK_UNITS,
    Passage,
    Source,
    check_passage_settings,
    passages_from_sources,
    read_sources,
)
from llm_mia.records import write_run_record
from llm_mia.score_files import write_rows
from llm_mia.settings import ScoringSettings
from llm_mia.work_permutation import DEFAULT_PERMUTATIONS

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("report.json", "summary.md", "work_test.png", "p_value_curve.png", "scores.jsonl", "passages.jsonl")
BLIND_FOLDS = 5
MAX_BLIND_WORKS = 100  # the one-work blind check compares the suspect with at most this many control works


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
    tokenizer cuts the passages; passage lengths are then counted in its tokens.
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

    def __post_init__(self) -> None:
        from llm_mia.remote.model import is_remote

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
        sensitive = [c.column for c in self.scoring.calls if not c.scorer.length_invariant]
        if self.scoring.scorers is None:
            invariant = [c for c in self.scoring.calls if c.scorer.length_invariant]
            object.__setattr__(self, "scoring", _with_scorers(self.scoring, tuple(c.column for c in invariant)))
        elif sensitive:
            raise LlmMiaError(
                f"scorer(s) {', '.join(sensitive)} change with passage length and byte count alone (e.g. zlib "
                f"divides a per-token mean by a total length), so they would separate works by format, not "
                f"membership; leave them out of dataset tests"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.scoring.extraction.to_dict(),
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


def _with_scorers(scoring: ScoringSettings, scorers: tuple[str, ...]) -> ScoringSettings:
    from dataclasses import replace

    return replace(scoring, scorers=scorers)


def _features(rows: list[dict[str, Any]], columns: list[str]) -> tuple[list[list[float]], list[int], Counter]:
    """Feature rows of passages with every score present; indices kept; why the others were left out."""
    kept, indices, excluded = [], [], Counter()
    for index, row in enumerate(rows):
        values = [row[c] for c in columns]
        if row["status"] == "ok" and all(v is not None and math.isfinite(v) for v in values):
            kept.append(values)
            indices.append(index)
        else:
            excluded[row["status"]] += 1
    return kept, indices, excluded


def _format_features(passages: list[Passage], rows: list[dict[str, Any]]) -> np.ndarray:
    """(passages, 2): bytes per token and compressed bytes per byte (zlib), model-free format descriptors."""
    return np.array(
        [
            [
                row["n_bytes"] / max(row["n_tokens"], 1),
                len(zlib.compress(p.text.encode("utf-8"))) / max(row["n_bytes"], 1),
            ]
            for p, row in zip(passages, rows, strict=True)
        ]
    )


def work_distinctiveness(
    texts: list[str], works: list[str], suspect_work: str, *, seed: int, max_works: int = MAX_BLIND_WORKS
) -> tuple[float, float, int]:
    """The blind check for one suspect work: is it more distinguishable from the other works, without the model,
    than control works are from each other?

    TF-IDF word 1-2-grams over all passages (no labels); for each work (the suspect and up to ``max_works``
    control works), a random half of its passages gives a centroid and the other half is scored against it,
    with every other work's held-out passages: the AUROC of "this work's passages are closer to its centroid".
    Returns (rank p-value of the suspect among the works, its AUROC, works ranked); the same procedure for
    every work, so under exchangeability the rank is uniform.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    names = [w for w in dict.fromkeys(works) if sum(x == w for x in works) >= 2]
    controls = [w for w in names if w != suspect_work]
    if suspect_work not in names or len(names) < 2:
        raise LlmMiaError("work distinctiveness needs the suspect work and a control work with two or more passages")
    if len(controls) > max_works:
        controls = list(rng.choice(controls, size=max_works, replace=False))
    chosen = [suspect_work, *controls]
    index = [i for i, w in enumerate(works) if w in set(chosen)]
    matrix = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=50_000).fit_transform(
        [texts[i] for i in index]
    )
    work_of = np.array([works[i] for i in index])
    held_out = np.zeros(len(index), dtype=bool)
    centroids = []
    for work in chosen:
        members = rng.permutation(np.flatnonzero(work_of == work))
        held_out[members[len(members) // 2 :]] = True
        centroid = np.asarray(matrix[members[: len(members) // 2]].mean(axis=0)).ravel()
        centroids.append(centroid / max(np.linalg.norm(centroid), 1e-12))
    similarity = matrix[held_out] @ np.array(centroids).T  # (held-out passages, works)
    owner = work_of[held_out]
    aurocs = np.array([roc_auc_score(owner == work, similarity[:, j]) for j, work in enumerate(chosen)])
    return float(np.mean(aurocs >= aurocs[0] - 1e-12)), float(aurocs[0]), len(chosen)


def blind_safeguard(
    suspect: list[Passage], control: list[Passage], *, design_works: int, alpha: float, seed: int
) -> tuple[Safeguard, dict[str, Any]]:
    """The blind baseline as a safeguard: several suspect works: a bag-of-words classifier with folds over whole
    works and a permutation test; one suspect work: :func:`work_distinctiveness`."""
    suspect_works = {p.work for p in suspect}
    if len(suspect_works) >= 2:
        try:
            result = blind_baseline(
                [p.text for p in suspect],
                [p.text for p in control],
                member_groups=[p.work for p in suspect],
                nonmember_groups=[p.work for p in control],
                folds=BLIND_FOLDS,
                seed=seed,
                alpha=alpha,
                n_permutations=BLIND_PERMUTATIONS,
                n_bootstrap=200,
            )
        except LlmMiaError as error:
            return Safeguard("blind baseline", False, f"not run: {error}", ran=False), {}
        detail = (
            f"bag-of-words classifier (folds over whole works) tells suspect from control works with AUROC "
            f"{result.auroc:.3f}, permutation {p_phrase(result.permutation_p)}"
        )
        return Safeguard("blind baseline", result.separates, detail), result.to_dict()
    work = next(iter(suspect_works))
    # a work is ranked on a held-out half of its passages against a centroid of the other half: two at least
    rankable = sum(count >= 2 for count in Counter(p.work for p in control).values())
    needed = min_control_works(alpha)
    if design_works < needed or rankable < needed or len(suspect) < 2:
        return Safeguard(
            "blind baseline",
            False,
            f"not run: {rankable} control work(s) with two or more passages, {needed} needed to rank the suspect "
            "work without the model (lower --passage-tokens for more passages per work)",
            ran=False,
        ), {}
    texts = [p.text for p in suspect] + [p.text for p in control]
    works = [p.work for p in suspect] + [p.work for p in control]
    p_value, auroc, ranked = work_distinctiveness(texts, works, work, seed=seed)
    at_least = round(p_value * ranked) - 1
    detail = (
        f"without the model (bag-of-words centroids), {at_least} of {ranked - 1} control works are at least as "
        f"distinguishable from the other works as the suspect work is (its AUROC {auroc:.3f}; rank p = "
        f"{format_p_value(p_value)})"
    )
    return (
        Safeguard("blind baseline", p_value <= alpha, detail),
        {"method": "work distinctiveness rank", "p_value": p_value, "auroc": auroc, "works_ranked": ranked},
    )


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


def _check_passages(name: str, found: list[Passage], needed: int, cut: Any, settings: DatasetTestSettings) -> None:
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
    settings: DatasetTestSettings,
    *,
    tokenizer: Any,
    refuse_shared: bool = False,
) -> DatasetInputs:
    """Read both inputs (any input ``llm_mia.documents.read_documents`` reads), refuse texts found on both sides,
    cut passages of exactly ``passage_tokens`` tokens with ``tokenizer`` (the target model's), leave out passages
    found on both sides (``refuse_shared``: refuse them, and any passage mostly made of text found verbatim on the
    other side, ``llm_mia.overlap``), and check there are enough; no model is run."""
    suspect_sources = read_sources(suspect, works=settings.suspect_works, name=Path(suspect).name)
    control_sources = read_sources(control, works=settings.control_works, name=Path(control).name)
    _refuse_overlap(suspect_sources, control_sources)
    options = {"tokenizer": tokenizer, "passage_tokens": settings.passage_tokens, "stride": settings.passage_stride}
    suspect_passages, suspect_cut = passages_from_sources(suspect_sources, **options)
    control_passages, control_cut = passages_from_sources(control_sources, **options)
    # a passage found on both sides (boilerplate, a quotation) would compare a text with itself: left out of both
    shared = {sha256_text(p.text) for p in suspect_passages} & {sha256_text(p.text) for p in control_passages}
    if shared and refuse_shared:
        first_suspect = next(p for p in suspect_passages if sha256_text(p.text) in shared)
        first_control = next(p for p in control_passages if sha256_text(p.text) == sha256_text(first_suspect.text))
        raise InputError(
            f"{len(shared)} passage(s) appear in both the suspect work and the controls (first: suspect "
            f"{first_suspect.id!r} = control {first_control.id!r}, SHA-256 {sha256_text(first_suspect.text)}); "
            f"the controls must be separate texts the model cannot have seen. Remove the shared text (boilerplate, "
            f"a licence, quotations) from one side"
        )
    if refuse_shared:
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
    from llm_mia.remote.model import is_remote

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

    from llm_mia.models import ModelSpec, resolve_model_directory

    spec = ModelSpec(name=settings.tokenizer) if settings.tokenizer else settings.scoring.models.specs()["target"]
    return AutoTokenizer.from_pretrained(
        str(resolve_model_directory(spec)),
        local_files_only=True,
        trust_remote_code=settings.scoring.models.trust_remote_code,
    )


def run_dataset_test(
    suspect: str | Path, control: str | Path, settings: DatasetTestSettings | None = None
) -> DatasetTestReport:
    """The dataset-level test of the work at ``suspect`` against the control works at ``control``:
    :func:`cut_inputs` with the target model's tokenizer, then :func:`score_and_test`."""
    from llm_mia.workflows.score import load_models

    settings = settings or DatasetTestSettings()
    refuse_remote_target(settings.scoring.models, tokenizer=settings.tokenizer)
    models = load_models(settings.scoring.models)
    inputs = cut_inputs(suspect, control, settings, tokenizer=cutting_tokenizer(settings, models))
    return score_and_test(inputs, settings, models=models)


def score_and_test(
    inputs: DatasetInputs, settings: DatasetTestSettings, *, models: Any, observer: Any = None
) -> DatasetTestReport:
    """Score the passages of ``inputs`` (suspect and control together, one extraction per model and text
    variant, stats cache, multi-process under a launcher), run the blind check and
    :func:`llm_mia.dataset_inference.dataset_inference`, and assemble the report. ``observer`` hears of every
    model call (``llm_mia.scoring.extract_views``)."""
    from llm_mia.workflows.score import score_documents

    scoring = settings.scoring
    calls = scoring.calls
    suspect, control = inputs.suspect, inputs.control
    suspect_sources, control_sources = inputs.suspect_sources, inputs.control_sources
    suspect_passages, control_passages = inputs.suspect_passages, inputs.control_passages
    suspect_cut, control_cut = inputs.suspect_cut, inputs.control_cut
    documents: list[Document] = [p.to_document(label=1, group=p.work, prefix="suspect:") for p in suspect_passages] + [
        p.to_document(label=0, group=p.work, prefix="control:") for p in control_passages
    ]
    run = score_documents(
        documents,
        scoring,
        models=models,
        source=f"{suspect} + {control}",
        tool="llm-mia dataset-test",
        observer=observer,
    )
    rows = run.rows
    columns = [call.column for call in calls]
    suspect_rows, control_rows = rows[: len(suspect_passages)], rows[len(suspect_passages) :]
    suspect_x, suspect_kept, suspect_excluded = _features(suspect_rows, columns)
    control_x, control_kept, control_excluded = _features(control_rows, columns)
    if suspect_excluded or control_excluded:
        logger.warning(
            "left out of the test: %d suspect and %d control passage(s) without every score (see scores.jsonl)",
            sum(suspect_excluded.values()),
            sum(control_excluded.values()),
        )
    tested_suspect = [suspect_passages[i] for i in suspect_kept]
    tested_control = [control_passages[i] for i in control_kept]
    n_control_works = len({p.work for p in tested_control})
    blind, blind_detail = blind_safeguard(
        tested_suspect, tested_control, design_works=n_control_works, alpha=settings.alpha, seed=settings.seed
    )
    result = dataset_inference(
        suspect_x,
        control_x,
        suspect_works=[p.work for p in tested_suspect],
        control_works=[p.work for p in tested_control],
        extra_safeguards=[blind],
        suspect_format=_format_features(tested_suspect, [suspect_rows[i] for i in suspect_kept]),
        control_format=_format_features(tested_control, [control_rows[i] for i in control_kept]),
        suspect_tokens=[suspect_rows[i]["n_tokens"] for i in suspect_kept],
        control_tokens=[control_rows[i]["n_tokens"] for i in control_kept],
        alpha=settings.alpha,
        splits=settings.splits,
        permutations=settings.permutations,
        seed=settings.seed,
        clip_quantile=settings.clip_quantile,
        feature_names=columns,
    )
    record = dict(run.record)
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
    report = {
        **record,
        "verdict": result.verdict,
        "verdict_sentence": result.sentence(),
        "features": columns,
        "passages": {
            "passage_tokens": settings.passage_tokens,
            "shared_left_out": inputs.shared,
            "suspect": {
                "works": len({p.work for p in tested_suspect}),
                "passages": len(suspect_passages),
                "tested": len(suspect_kept),
                "excluded": dict(suspect_excluded),
                "cutting": suspect_cut.to_dict(),
            },
            "control": {
                "works": n_control_works,
                "passages": len(control_passages),
                "tested": len(control_kept),
                "excluded": dict(control_excluded),
                "cutting": control_cut.to_dict(),
            },
        },
        "result": result.to_dict(),
        "blind_baseline": blind_detail,
    }
    kept = {("suspect", i) for i in suspect_kept} | {("control", i) for i in control_kept}
    passage_rows = [
        {"set": name, **passage.record(), "text_sha256": sha256_text(passage.text), "in_test": (name, index) in kept}
        for name, found in (("suspect", suspect_passages), ("control", control_passages))
        for index, passage in enumerate(found)
    ]
    return DatasetTestReport(
        result=result, report=report, record=record, rows=rows, passage_rows=passage_rows, is_main=run.is_main
    )


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
    """Refuse passages of one side mostly made of text found verbatim on the other (``llm_mia.overlap``)."""
    from types import SimpleNamespace

    from llm_mia.overlap import SHARE, shared_passages

    def texts(sources: list[Source], side: str) -> list[SimpleNamespace]:
        return [SimpleNamespace(id=f"{side} source {s.name}", text=s.text) for s in sources]

    found = shared_passages(
        suspect,
        control,
        suspect_texts=texts(suspect_sources, "suspect"),
        control_texts=texts(control_sources, "control"),
    )
    if found:
        first = found[0]
        counts = {side: sum(f.side == side for f in found) for side in ("suspect", "control")}
        raise InputError(
            f"{counts['suspect']} suspect and {counts['control']} control passage(s) are at least {SHARE:.0%} text "
            f"found verbatim on the other side (first: {first.side} passage {first.passage!r}, "
            f"{first.containment:.0%} of it found in {first.other}); the controls must be separate texts the "
            f"model cannot have seen. Remove the shared text (boilerplate, a licence, quotations) from one side"
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
    axes.set_xlabel("suspect minus control works, combined score (passage SDs)")
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
    lines = [
        f"dataset test: {suspect['works']} suspect work(s), {suspect['tested']} passages vs {control['works']} control "
        f"work(s), {control['tested']} passages; {passages['passage_tokens']} tokens per passage on both sides; "
        f"model {report['models']['target']['name']}",
        f"features: {', '.join(report['features'])}",
        f"design: {inference['design']} ({inference['design_reason']})",
    ]
    work = inference["work_test"]
    if work is not None:
        lines.append(
            f"work-level test: suspect {work['statistic']:+.2f} passage SDs against the control works; p = "
            f"{format_p_value(work['p_value'])} over {work['labellings']} labellings "
            f"({'exact' if work['exact'] else 'random'}; smallest possible "
            f"{format_p_value(work['smallest_possible_p'])}; {work['passages_per_work']} passages per work, "
            f"{work['works_left_out']} work(s) with fewer left out)"
        )
    passage = inference["passage_test"]
    d = passage["effect_size_cohens_d"]
    lines.append(
        f"passage-level test ({passage['role']}): {p_phrase(passage['p_value'])}, "
        f"{COMBINATION.split(' (')[0]}; "
        f"Cohen's d median {d['median']:.2f} (range over half-splits {d['min']:.2f} to {d['max']:.2f})"
    )
    for guard in inference["safeguards"]:
        state = "FIRED" if guard["fired"] else ("ok" if guard["ran"] else "-")
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
    lines.append(f"assumption: {CONTROL_ASSUMPTION}")
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
