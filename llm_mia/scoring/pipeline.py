"""From documents to score rows: run the extractions the chosen scorers need, once each, then the scorers.

This is the one place that knows which (model, text variant) pairs a scorer set needs, and the one place
that turns extractions into rows: every caller (the score workflow, evaluation, dataset-level tests,
benchmarks, the Ray Data map step) goes through :func:`compute_scores`. Extraction results are computed once
per pair and shared by every scorer that reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_mia.backends.local import LoadedModel
from llm_mia.backends.remote.model import RemoteModel
from llm_mia.backends.token_stats import STATUS_OK, TokenStats
from llm_mia.engine.extract import Shard, condition_ids, extract
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.engine.stats_cache import StatsCache
from llm_mia.errors import InputError, InternalError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.io.identity import sha256_text
from llm_mia.io.score_files import META_COLUMNS
from llm_mia.scoring.scorers import VIEWS, ScorerCall, ScoreUnavailable
from llm_mia.scoring.scorers.registry import PREPARED
from llm_mia.scoring.variants import apply_variant

logger = logging.getLogger(__name__)

__all__ = ["META_COLUMNS", "compute_scores", "extract_views", "needed_views", "score_rows"]


def needed_views(calls: Sequence[ScorerCall]) -> list[str]:
    """The views (model, variant) the scorer calls read, in first-use order, each once."""
    return list(dict.fromkeys(view for call in calls for view in call.scorer.views))


def extract_views(
    documents: Sequence[Document],
    views: Sequence[str],
    *,
    models: Mapping[str, LoadedModel | RemoteModel],
    settings: ExtractionSettings,
    cache: StatsCache | None = None,
    shard: Shard | None = None,
    observer: Callable[[dict[str, Any]], None] | None = None,
    conditions: Mapping[str, tuple[str, list[str]]] | None = None,
    neighbours: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, list[TokenStats]]:
    """One extraction per view: the view's model over the view's text variant of every document.

    ``conditions``: for each conditioned view (ReCaLL's ``target_recall``), the prefix its texts are read after
    and the texts the prefix is made of; a document that is one of them, contains one or is contained in one is
    refused (scoring a text after itself would measure nothing). ``neighbours``: for each neighbour view, the
    generator's settings (``n``, ``generator``, ``seed``, from the scorer's hyperparameters).

    ``cache`` and ``shard`` are passed to :func:`llm_mia.engine.extract.extract` (resume; multi-process runs).
    ``observer`` receives one dict per model call (and per set of documents taken from the cache): the view,
    the model, the event, the document ids and each one's window index and tokens.
    """
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

            def heard(event: str, segments: list[tuple[int, int, int]], view: str = view, model: Any = model) -> None:
                observer(
                    {
                        "event": event,
                        "view": view,
                        "variant": VIEWS[view].variant,
                        "model": model.spec.name,
                        "documents": [documents[doc].id for doc, _, _ in segments],
                        "windows": [part for _, part, _ in segments],
                        "tokens": [tokens for _, _, tokens in segments],
                    }
                )

        if spec.gradient:
            if isinstance(model, RemoteModel):
                raise LlmMiaError(
                    f"gradnorm needs the model's weights for a backward pass; {model.spec.name} is behind an API"
                )
            from llm_mia.engine.gradients import gradient_stats

            logger.info("gradients of view %s (%s), one text at a time", view, label)
            stats[view] = gradient_stats(texts, model, settings)
            continue
        if spec.neighbours:
            stats[view] = _neighbour_view(view, documents, texts, model, settings, cache, (neighbours or {}).get(view))
            continue
        condition: tuple[int, ...] = ()
        if spec.conditioned:
            if isinstance(model, RemoteModel):
                raise LlmMiaError(f"view {view!r} reads texts after a prefix: it needs a white-box model")
            prefix, sources = (conditions or {}).get(view, ("", []))
            if not prefix:
                raise InternalError(f"view {view!r} needs a conditioning prefix; none was planned for it")
            refuse_overlap(documents, sources)
            condition = condition_ids(model, prefix)
            label += f", after a {len(condition)}-token prefix"
        if isinstance(model, RemoteModel):
            if shard is not None and shard.count > 1:
                raise LlmMiaError(
                    f"{model.spec.name} is behind an API: run it in one process (every process would send every "
                    "request); the endpoint does the computing"
                )
            stats[view] = _remote_view(documents, texts, view, model, settings, cache, label, observer)
            continue
        stats[view] = extract(
            texts, model, settings, cache=cache, shard=shard, description=label, observer=heard, condition=condition
        )
    return stats


# view -> what building it wrote (the neighbours' file), named in the run records of the scorers reading it
VIEW_RECORDS: dict[str, dict[str, Any]] = {}


def _neighbour_view(
    view: str,
    documents: Sequence[Document],
    texts: list[str],
    model: Any,
    settings: ExtractionSettings,
    cache: StatsCache | None,
    params: Mapping[str, Any] | None,
) -> list[Any]:
    """Per document, the TokenStats of each of its neighbours (a tuple): generated once, seeded, kept on disk, and
    extracted as ordinary texts (batched, cached)."""
    from llm_mia.scoring.neighbours import generate

    if isinstance(model, RemoteModel):
        raise LlmMiaError("the neighbourhood scorer reads many texts per document: use a white-box model")
    if not params:
        raise InternalError("the neighbour view needs its generator's settings; none were planned for it")
    per_document, path = generate(
        [d.id for d in documents], texts, n=params["n"], generator=params["generator"], seed=params["seed"]
    )
    VIEW_RECORDS[view] = {"neighbours_file": str(path)}
    flat = [text for neighbours in per_document for text in neighbours]
    extracted = extract(flat, model, settings, cache=cache, description="neighbours") if flat else []
    grouped, start = [], 0
    for neighbours in per_document:
        grouped.append(tuple(extracted[start : start + len(neighbours)]))
        start += len(neighbours)
    return grouped


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


def _remote_view(
    documents: Sequence[Document],
    texts: list[str],
    view: str,
    model: RemoteModel,
    settings: ExtractionSettings,
    cache: StatsCache | None,
    label: str,
    observer: Callable[[dict[str, Any]], None] | None,
) -> list[TokenStats]:
    """A view served by a model behind an API: its responses kept beside the stats cache (never re-sent)."""
    from llm_mia.backends.remote.extract import remote_extract
    from llm_mia.backends.remote.responses import ResponseCache

    responses = None if cache is None else ResponseCache(cache.path.with_name("responses.sqlite"))
    heard = None
    if observer is not None:

        def heard(index: int, event: dict[str, Any]) -> None:
            observer(
                {
                    **event,
                    "view": view,
                    "variant": VIEWS[view].variant,
                    "model": model.spec.name,
                    "documents": [documents[index].id],
                }
            )

    try:
        return remote_extract(
            texts,
            model,
            cache=responses,
            description=label,
            progress=settings.progress,
            observer=heard,
            names=[d.id for d in documents],
        )
    finally:
        if responses is not None:
            responses.close()


def score_rows(
    documents: Sequence[Document], calls: Sequence[ScorerCall], stats: Mapping[str, list[TokenStats]]
) -> list[dict[str, Any]]:
    """One row per document: identity, token counts, a status, the text's SHA-256, and every score.

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
                scores[call.column] = call(views)
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
    models: Mapping[str, LoadedModel | RemoteModel],
    settings: ExtractionSettings,
    cache: StatsCache | None = None,
    shard: Shard | None = None,
    given: Mapping[str, list[TokenStats]] | None = None,
    observer: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, list[TokenStats]]]:
    """Extract every view the calls need (except those ``given``, already extracted), then score every document.

    Documents are extracted in blocks of ``settings.block_documents`` in input order, each block planned on its
    own (``llm_mia.engine.extract.extract``): a block's batches, and so its documents' bits, are the same whether the
    block runs here, in another process or on a Ray actor (``llm_mia.scoring.ray_engine``).

    Returns the rows and the extractions by view (so a caller can reuse one, e.g. a fixed reference model's,
    for the next call).
    """
    given = dict(given or {})
    for call in calls:  # scorers that read more than TokenStats build it first (a missing corpus fails before scoring)
        if call.scorer.prepare is not None:
            call.prepare(models[VIEWS[call.scorer.views[0]].model])
    missing = [view for view in needed_views(calls) if view not in given]
    extracted: dict[str, list[TokenStats]] = {view: [] for view in missing}
    records: dict[str, list[dict[str, Any]]] = {}
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
        )
        for view, per_document in block.items():
            extracted[view].extend(per_document)
            if view in VIEW_RECORDS:
                records.setdefault(view, []).append(VIEW_RECORDS[view])
    for view, found in records.items():  # a view built in several blocks names every block's file
        VIEW_RECORDS[view] = found[0] if len(found) == 1 else {"blocks": found}
    stats = {**given, **extracted}
    for call in calls:
        for view in call.scorer.views:
            if view in VIEW_RECORDS and view in extracted:
                PREPARED[call.column] = {**PREPARED.get(call.column, {}), **VIEW_RECORDS[view]}
    return score_rows(documents, calls, stats), stats
