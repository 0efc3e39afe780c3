"""The Python API: the same numbers as the CLI, from a notebook or a script."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_mia.backends.loading import ModelSettings
from llm_mia.backends.local import DEFAULT_MODEL, LoadedModel, ModelSpec, load_model
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.io.documents import Document, as_documents
from llm_mia.scoring.settings import ScoringSettings


def _as_loaded(model: str | ModelSpec | LoadedModel) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_model(model)


def _name(model: str | ModelSpec | LoadedModel) -> str:
    if isinstance(model, LoadedModel):
        return model.spec.name
    return model.name if isinstance(model, ModelSpec) else model


def score(
    texts: str | Iterable[str | Document | Mapping[str, Any]],
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

    ``texts``: one string (scored as one document), or strings, :class:`Document` objects or dicts with a
    ``text`` key (and optional ``id``, ``label``, ``group``); items without an id get their position as id.
    ``scorers``: names or specs such as ``"min_k:k=0.1,0.2"`` (default: every scorer the given models allow).
    ``model`` / ``reference``: a packaged alias, local directory, ``.gguf`` file, cached Hugging Face id,
    :class:`ModelSpec`, or an already loaded model (to reuse it across calls). ``cache``: True for the default
    stats cache, or a database path; off by default here because a model object changed in memory (e.g. by a
    defense) would not match its files on disk, which is what cache keys are made from.

    Returns a pandas DataFrame (one row per document, columns as ``llm_mia.io.score_files.META_COLUMNS`` then
    one per score) when ``as_frame``; otherwise a list of dicts.

    >>> rows = score("The cat sat on the mat.", scorers=["loss"], as_frame=False)  # doctest: +SKIP
    """
    from llm_mia.workflows.score import score_documents

    documents = as_documents([texts] if isinstance(texts, str) else texts)
    settings = ScoringSettings(
        models=ModelSettings(model=_name(model), reference=None if reference is None else _name(reference)),
        scorers=None if scorers is None else tuple(scorers),
        extraction=ExtractionSettings(batch_size=batch_size, window=window, stride=stride, progress=progress),
        cache=cache,
    )  # validates scorer names and settings before any model loads
    models = {"target": _as_loaded(model)}
    if reference is not None:
        models["reference"] = _as_loaded(reference)
    run = score_documents(documents, settings, models=models, tool="llm_mia.score")
    return run.frame if as_frame else run.rows
