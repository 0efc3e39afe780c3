"""From documents to score rows: run the extractions the chosen scorers need, once each, then the scorers.

This is the one place that knows which (model, text variant) pairs a scorer set needs, and the one place
that turns extractions into rows: every caller (the score workflow, evaluation, dataset-level tests,
benchmarks, the Ray Data map step) goes through :func:`compute_scores`. Extraction results are computed once
per pair and shared by every scorer that reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from llm_mia.backends.protocol import Model
from llm_mia.backends.token_stats import STATUS_OK, TokenStats

if TYPE_CHECKING:
    from llm_mia.backends.local import LoadedModel
from llm_mia.engine.extract import ExtractionContext, Shard
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.engine.stats_cache import StatsCache
from llm_mia.errors import InputError, InternalError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.io.identity import sha256_text
from llm_mia.io.score_files import META_COLUMNS
from llm_mia.scoring.scorers import VIEWS, ScorerCall, ScoreUnavailable
from llm_mia.scoring.variants import apply_variant

logger = logging.getLogger(__name__)

__all__ = [
    "META_COLUMNS",
    "ScoringContext",
    "ScoringResult",
    "compute_scores",
    "extract_views",
    "needed_views",
    "score_rows",
]


@dataclass
class ScoringContext:
    """What one scoring run carries from call to call instead of keeping it in the process: the engine's
    :class:`~llm_mia.engine.extract.ExtractionContext` (a conditioning prefix encoded once, the budget
    ``--batch-size auto`` chose per model), and per view, what building it wrote, one entry per block of
    documents (the neighbour texts' file), for the run record of the scorers reading it."""

    extraction: ExtractionContext = field(default_factory=ExtractionContext)
    view_records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class ScoringResult:
    """What :func:`compute_scores` returns: everything a run record states about the scoring comes from here.

    ``rows``: one per document, input order (:func:`score_rows`). ``stats``: the extractions by view (a caller may
    reuse one, e.g. a fixed reference model's, for the next call). ``prepared``: per column, what its scorer's
    ``prepare`` built (DC-PDD's frequency table), as its scorer read it. ``scorers``: each call as the run record
    states it (``ScorerCall.describe``), with what was prepared for it and what its views wrote. ``batch_tokens``:
    per model name, the token budget ``--batch-size auto`` chose (empty with a fixed batch size).
    """

    rows: list[dict[str, Any]]
    stats: dict[str, list[TokenStats]]
    prepared: dict[str, Any]
    scorers: list[dict[str, Any]]
    batch_tokens: dict[str, int]


def needed_views(calls: Sequence[ScorerCall]) -> list[str]:
    """The views (model, variant) the scorer calls read, in first-use order, each once."""
    return list(dict.fromkeys(view for call in calls for view in call.scorer.views))


def extract_views(
    documents: Sequence[Document],
    views: Sequence[str],
    *,
    models: Mapping[str, Model],
    settings: ExtractionSettings,
    cache: StatsCache | None = None,
    shard: Shard | None = None,
    observer: Callable[[dict[str, Any]], None] | None = None,
    conditions: Mapping[str, tuple[str, list[str]]] | None = None,
    neighbours: Mapping[str, Mapping[str, Any]] | None = None,
    context: ScoringContext | None = None,
) -> dict[str, list[TokenStats]]:
    """One extraction per view: the view's model over the view's text variant of every document.

    ``conditions``: for each conditioned view (ReCaLL's ``target_recall``), the prefix its texts are read after
    and the texts the prefix is made of; a document that is one of them, contains one or is contained in one is
    refused (scoring a text after itself would measure nothing). ``neighbours``: for each neighbour view, the
    generator's settings (``n``, ``generator``, ``seed``, from the scorer's hyperparameters).

    Each view's model computes it (``Model.token_stats``, ``llm_mia.backends.protocol``): a local model through the
    run's white-box engine, a model behind an API through its endpoint; what a view needs beyond token statistics
    (a backward pass, a prefix, many texts per document) is refused for a model that does not offer its weights.
    ``cache`` and ``shard`` are passed on (resume; multi-process runs).
    ``observer`` receives one dict per model call (and per set of documents taken from the cache): the view,
    the model, the event, the document ids and each one's window index and tokens. ``context``: what the run's
    calls share and report (:class:`ScoringContext`); None: a fresh one, private to this call.
    """
    context = context if context is not None else ScoringContext()
    stats: dict[str, list[TokenStats]] = {}
    for view in views:
        spec = VIEWS[view]
        if spec.model not in models:
            raise LlmMiaError(f"view {view!r} needs a {spec.model} model, and none was given")
        model = models[spec.model]
        texts = [apply_variant(spec.variant, document.text) for document in documents]
        label = f"{spec.model} {Path(model.spec.name).name}, {spec.variant} text"
        logger.info("extracting view %s (%s)", view, label)
        heard = None
        if observer is not None:

            def heard(event: dict[str, Any], view: str = view, model: Any = model) -> None:
                # the view and model first, the documents by id; what the backend told besides (windows, tokens of a
                # local model; an endpoint's request) as it told it
                told = {key: value for key, value in event.items() if key != "documents"}
                local: dict[str, Any] = {key: told.pop(key) for key in ("windows", "tokens") if key in told}
                observer(
                    {
                        **told,
                        "view": view,
                        "variant": VIEWS[view].variant,
                        "model": model.spec.name,
                        "documents": [documents[doc].id for doc in event["documents"]],
                        **local,
                    }
                )

        if spec.gradient:
            if not model.offers.weights:
                raise LlmMiaError(
                    f"gradnorm needs the model's weights for a backward pass; {model.spec.name} serves none here "
                    "(a model behind an API)"
                )
            from llm_mia.engine.gradients import gradient_stats

            logger.info("gradients of view %s (%s), one text at a time", view, label)
            stats[view] = gradient_stats(texts, cast("LoadedModel", model), settings)  # it offers weights: local
            continue
        if spec.neighbours:
            if not model.offers.weights:
                raise LlmMiaError("the neighbourhood scorer reads many texts per document: use a white-box model")
            stats[view], record = _neighbour_view(
                documents, texts, model, settings, cache, (neighbours or {}).get(view), context.extraction
            )
            context.view_records.setdefault(view, []).append(record)
            continue
        prefix = ""
        if spec.conditioned:
            if not model.offers.weights:
                raise LlmMiaError(f"view {view!r} reads texts after a prefix: it needs a white-box model")
            prefix, sources = (conditions or {}).get(view, ("", []))
            if not prefix:
                raise InternalError(f"view {view!r} needs a conditioning prefix; none was planned for it")
            refuse_overlap(documents, sources)
        stats[view] = model.token_stats(
            texts,
            settings,
            engine=context.extraction,
            cache=cache,
            shard=shard,
            description=label,
            observer=heard,
            condition=prefix,
            names=[d.id for d in documents],
        )
    return stats


def _neighbour_view(
    documents: Sequence[Document],
    texts: list[str],
    model: Any,
    settings: ExtractionSettings,
    cache: StatsCache | None,
    params: Mapping[str, Any] | None,
    context: ExtractionContext,
) -> tuple[list[Any], dict[str, Any]]:
    """Per document, the TokenStats of each of its neighbours (a tuple): generated once, seeded, kept on disk, and
    extracted as ordinary texts (batched, cached); and what was written (the neighbours' file)."""
    from llm_mia.scoring.neighbours import generate

    if not params:
        raise InternalError("the neighbour view needs its generator's settings; none were planned for it")
    per_document, path = generate(
        [d.id for d in documents], texts, n=params["n"], generator=params["generator"], seed=params["seed"]
    )
    flat = [text for neighbours in per_document for text in neighbours]
    extracted = model.token_stats(flat, settings, engine=context, cache=cache, description="neighbours") if flat else []
    grouped, start = [], 0
    for neighbours in per_document:
        grouped.append(tuple(extracted[start : start + len(neighbours)]))
        start += len(neighbours)
    return grouped, {"neighbours_file": str(path)}


def neighbour_settings(calls: Sequence[ScorerCall]) -> dict[str, dict[str, Any]]:
    """The neighbour generator's settings per neighbour view (one per view per run)."""
    found: dict[str, dict[str, Any]] = {}
    for call in calls:
        for view in call.scorer.views:
            if VIEWS[view].neighbours:
                wanted = {key: call.params[key] for key in ("n", "generator", "seed")}
                if view in found and found[view] != wanted:
                    raise LlmMiaError("two different neighbour settings in one run; score them in two runs")
                found[view] = wanted
    return found


def _normalized(text: str) -> str:
    return " ".join(text.split())


def refuse_overlap(documents: Sequence[Document], sources: Sequence[str]) -> None:
    """Refuse documents that are a prefix text, contain one, or are contained in one (whitespace normalized)."""
    prefix_texts = [_normalized(t) for t in sources if t.strip()]
    overlapping = [
        d.id
        for d in documents
        if any(p == (n := _normalized(d.text)) or (n and (p in n or n in p)) for p in prefix_texts)
    ]
    if overlapping:
        raise InputError(
            f"{len(overlapping)} document(s) overlap the conditioning prefix texts ({', '.join(overlapping[:5])}"
            + (", ..." if len(overlapping) > 5 else "")
            + "): the prefix must be known non-members disjoint from the texts scored; remove them from one side"
        )


def conditions_of(calls: Sequence[ScorerCall]) -> dict[str, tuple[str, list[str]]]:
    """The conditioning prefix of every conditioned view the calls read (one per view per run)."""
    found: dict[str, tuple[str, list[str]]] = {}
    for call in calls:
        if call.scorer.condition is None:
            continue
        prefix = call.scorer.condition(**call.params)
        for view in call.scorer.views:
            if VIEWS[view].conditioned:
                if view in found and found[view][0] != prefix[0]:
                    raise LlmMiaError(f"two different prefixes for view {view!r} in one run; score them in two runs")
                found[view] = prefix
    return found


def score_rows(
    documents: Sequence[Document],
    calls: Sequence[ScorerCall],
    stats: Mapping[str, list[TokenStats]],
    prepared: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per document: identity, token counts, a status, the text's SHA-256, and every score.

    ``prepared``: per column, what its scorer's ``prepare`` built for this run (``ScorerCall.prepare``).

    A score is None when unavailable. The status is ``ok`` when every score was computed; otherwise it lists,
    per score, why not, so a short or empty document never stops the others from being scored.
    """
    rows = []
    for index, document in enumerate(documents):
        views = {view: per_document[index] for view, per_document in stats.items()}
        target = views.get("target") or next(iter(views.values()))
        scores: dict[str, float | None] = {}
        problems: list[str] = []
        for call in calls:
            try:
                scores[call.column] = call(views, (prepared or {}).get(call.column))
            except ScoreUnavailable as reason:
                scores[call.column] = None
                problems.append(f"{call.column}: {reason}")
        status = target.status if target.status != STATUS_OK else "; ".join(problems) if problems else STATUS_OK
        rows.append(
            {
                "id": document.id,
                "label": document.label,
                "group": document.group,
                "status": status,
                "n_bytes": target.n_bytes,
                "n_tokens": target.n_tokens,
                "n_scored": target.n_scored,
                "n_windows": target.n_windows,
                "text_sha256": sha256_text(document.text),
                **scores,
            }
        )
    return rows


def compute_scores(
    documents: Sequence[Document],
    calls: Sequence[ScorerCall],
    *,
    models: Mapping[str, Model],
    settings: ExtractionSettings,
    cache: StatsCache | None = None,
    shard: Shard | None = None,
    given: Mapping[str, list[TokenStats]] | None = None,
    observer: Callable[[dict[str, Any]], None] | None = None,
    context: ScoringContext | None = None,
) -> ScoringResult:
    """Extract every view the calls need (except those ``given``, already extracted), then score every document.

    Documents are extracted in blocks of ``settings.block_documents`` in input order, each block planned on its
    own (``llm_mia.engine.extract.extract``): a block's batches, and so its documents' bits, are the same whether the
    block runs here, in another process or on a Ray actor (``llm_mia.scoring.ray_engine``).

    ``context``: what this run carries between calls (:class:`ScoringContext`; None: a fresh one). Returns the
    rows, the extractions by view, and what the run record needs (:class:`ScoringResult`): nothing is left
    behind in the process for a later run to read.
    """
    context = context if context is not None else ScoringContext()
    given = dict(given or {})
    prepared: dict[str, Any] = {}
    for call in calls:  # scorers that read more than TokenStats build it first (a missing corpus fails before scoring)
        if call.scorer.prepare is not None:
            prepared[call.column] = call.prepare(models[VIEWS[call.scorer.views[0]].model])
    missing = [view for view in needed_views(calls) if view not in given]
    extracted: dict[str, list[TokenStats]] = {view: [] for view in missing}
    before = {view: len(records) for view, records in context.view_records.items()}
    for start in range(0, len(documents), settings.block_documents):
        block = extract_views(
            documents[start : start + settings.block_documents],
            missing,
            models=models,
            settings=settings,
            cache=cache,
            shard=shard,
            observer=observer,
            conditions=conditions_of(calls),
            neighbours=neighbour_settings(calls),
            context=context,
        )
        for view, per_document in block.items():
            extracted[view].extend(per_document)
    written = {  # view -> what building it wrote in this call, one entry per block
        view: records[before.get(view, 0) :]
        for view, records in context.view_records.items()
        if len(records) > before.get(view, 0)
    }
    stats = {**given, **extracted}
    scorers = []
    for call in calls:
        record = dict(prepared[call.column].describe()) if call.column in prepared else None
        for view in call.scorer.views:
            if view in written and view in extracted:  # a view built in several blocks names every block's file
                found = written[view]
                record = {**(record or {}), **(found[0] if len(found) == 1 else {"blocks": found})}
        scorers.append(call.describe(record))
    return ScoringResult(
        rows=score_rows(documents, calls, stats, prepared),
        stats=stats,
        prepared=prepared,
        scorers=scorers,
        batch_tokens=dict(context.extraction.batch_tokens),
    )
