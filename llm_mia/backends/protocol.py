"""The one interface every model backend implements, and what a backend can do.

A run never asks which kind of model it holds (a local checkpoint, a model behind an OpenAI-compatible API, later
vLLM or llama.cpp): it asks the model what it offers (:class:`ModelCapabilities`) and calls the :class:`Model`
methods. ``llm_mia.backends.local.LoadedModel`` and ``llm_mia.backends.remote.model.RemoteModel`` implement it;
``llm_mia.backends.loading.open_model`` turns a ``--model`` value into one, and
``llm_mia.backends.loading.capabilities_of`` says what a name offers before anything is loaded.

A local model's numbers come from the white-box engine (``llm_mia.engine``), which sits above the backends: the
caller hands the run's engine to :meth:`Model.token_stats` (``engine``, an :class:`Engine`), and a backend that
computes its numbers elsewhere (an endpoint) ignores it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from llm_mia.backends.token_stats import TokenStats

Observer = Callable[[dict[str, Any]], None]
"""Hears one dict per model call or request: ``event`` (what happened), ``documents`` (indexes into the texts
given), and what the backend knows besides (a local model: each document's ``windows`` and ``tokens``; an
endpoint: the request's hash, the model version the API reports, the time)."""


@dataclass(frozen=True)
class ModelCapabilities:
    """What a model can do for a run, so that callers ask this instead of which backend it is.

    ``token_arrays``: the per-token arrays of ``TokenStats`` it returns (None: all of them, from the full
    next-token distribution; an endpoint returns ``logprob`` only), which decides the scorers it can serve.
    ``weights``: its weights are here to run: a backward pass (GradNorm), texts read after a cached prefix
    (ReCaLL), many texts per document (neighbours), an output defense on its logits, fine-tuning, the batch
    sizes and windows of the white-box engine. ``tokenizer``: it exposes its tokenizer (passages are cut with
    it; without it a run names a local ``--tokenizer``). ``files``: its files are on this machine, hashed into
    plans, bundles and block keys (else its identity is the endpoint's report). ``processes``: the processes of a
    launched run may share its work (an endpoint does the computing: one process sends every request).
    ``endpoint``: it is served behind an API, whose numbers ``llm-mia check-backend`` compares with white-box ones.
    """

    token_arrays: tuple[str, ...] | None
    weights: bool
    tokenizer: bool
    files: bool
    processes: bool
    endpoint: bool


class Engine(Protocol):
    """The white-box engine of one run (``llm_mia.engine.extract.ExtractionContext``): computes a local model's
    token statistics, and keeps what the run's extractions share (a prefix encoded once) and report."""

    def token_stats(
        self,
        texts: Sequence[str],
        model: Any,
        settings: Any,
        *,
        cache: Any = None,
        shard: Any = None,
        description: str = "scoring",
        observer: Observer | None = None,
        condition: str = "",
    ) -> list[TokenStats]: ...


@runtime_checkable
class Model(Protocol):
    """A model a run can score texts with, whatever serves it.

    ``spec``: what was asked for (name, revision, dtype, device). ``device``: where it runs (``remote`` for an
    endpoint). ``tokenizer``: its tokenizer, or None where the backend exposes none. ``tokenizer_id``: what
    identifies its tokenization (a fingerprint of the tokenizer, or of the endpoint and model version): token
    ids are comparable between two models only when these agree.
    """

    spec: Any  # an llm_mia.backends.local.ModelSpec (that module implements this one: it cannot be imported here)
    device: str
    tokenizer: Any

    @property
    def tokenizer_id(self) -> str: ...

    @property
    def offers(self) -> ModelCapabilities:
        """What this model can do (:class:`ModelCapabilities`)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Its identity for run records: name, where it is served or stored, what it offers."""
        ...

    def token_stats(
        self,
        texts: Sequence[str],
        settings: Any,
        *,
        engine: Engine,
        cache: Any = None,
        shard: Any = None,
        description: str = "scoring",
        observer: Observer | None = None,
        condition: str = "",
        names: Sequence[str] | None = None,
    ) -> list[TokenStats]:
        """One ``TokenStats`` per text, in input order, under the extraction ``settings``
        (``llm_mia.engine.extraction_settings.ExtractionSettings``).

        ``engine``: the run's white-box engine, for a backend whose weights are here. ``cache``: the run's stats
        cache (``llm_mia.engine.stats_cache.StatsCache``; an endpoint keeps its responses beside it). ``shard``:
        this process's share of a launched run. ``observer``: hears every model call or request
        (:data:`Observer`). ``condition``: a prefix text every text is read after (needs ``offers.weights``).
        ``names``: the documents' ids, for messages.
        """
        ...
