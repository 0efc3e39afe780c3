"""The Python API: the same numbers as the CLI, from a notebook or a script."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_mia.cache import StatsCache
from llm_mia.documents import Document, as_documents
from llm_mia.extract import ExtractionSettings
from llm_mia.models import DEFAULT_MODEL, LoadedModel, ModelSpec, load_model
from llm_mia.scorers import parse_scorer_specs
from llm_mia.scoring import extract_views, needed_views, score_rows


def _as_loaded(model: str | ModelSpec | LoadedModel) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_model(model)


def score(
    texts: Iterable[str | Document | Mapping[str, Any]],
    *,
    model: str | ModelSpec | LoadedModel = DEFAULT_MODEL,
    scorers: Sequence[str] | None = None,
    reference: str | ModelSpec | LoadedModel | None = None,
    batch_size: int = 8,
    window: int | None = None,
    stride: int | None = None,
    progress: bool = True,
    cache: bool | str | Path = False,
    as_frame: bool = True,
) -> Any:
    """Score texts for membership in ``model``'s training data; higher score = more likely a member.

    ``texts``: strings, :class:`Document` objects or dicts with a ``text`` key (and optional ``id``,
    ``label``, ``group``); items without an id get their position as id. ``scorers``: names or specs such
    as ``"min_k:k=0.1,0.2"`` (default: every scorer the given models allow). ``model`` / ``reference``: a
    packaged alias, local directory, ``.gguf`` file, cached Hugging Face id, :class:`ModelSpec`, or an
    already loaded model (to reuse it across calls). ``cache``: True for the default stats cache, or a
    database path; off by default here because a model object changed in memory (e.g. by a defense) would
    not match its files on disk, which is what cache keys are made from.

    Returns a pandas DataFrame (one row per document, columns as ``llm_mia.scoring.META_COLUMNS`` then one
    per score) when pandas is installed and ``as_frame``; otherwise a list of dicts.

    >>> rows = score(["The cat sat on the mat."], scorers=["loss"], as_frame=False)  # doctest: +SKIP
    """
    documents = as_documents(texts)
    calls = parse_scorer_specs(list(scorers) if scorers else None, has_reference=reference is not None)
    models = {"target": _as_loaded(model)}
    if reference is not None:
        models["reference"] = _as_loaded(reference)
    settings = ExtractionSettings(batch_size=batch_size, window=window, stride=stride, progress=progress)
    store = None if cache is False else StatsCache(None if cache is True else Path(cache))
    stats = extract_views(documents, needed_views(calls), models=models, settings=settings, cache=store)
    rows = score_rows(documents, calls, stats)
    if not as_frame:
        return rows
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows)
