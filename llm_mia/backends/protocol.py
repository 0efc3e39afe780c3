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

import numpy as np

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


@dataclass(frozen=True)
class NextTokenLogprobs:
    """What :meth:`Model.next_token_logprobs` returns. ``values``: (prompts x answers) log p(answer | prompt) as
    the next token, float64; -inf where the backend could not see an answer (an endpoint returns only its top few
    tokens). ``incomplete``: prompts for which some answer was not seen. ``answer_tokens``: the token id read for
    each answer, where the backend reads token ids (a local model), else None."""

    values: np.ndarray
    incomplete: int = 0
    answer_tokens: list[int] | None = None


class Engine(Protocol):
    """The white-box engine of one run (``llm_mia.engine.extract.ExtractionContext``): computes a local model's
    token statistics, next-token log-probs and samples, and keeps what the run's extractions share (a prefix
    encoded once) and report."""

    def next_token_logprobs(
        self, texts: Sequence[str], model: Any, candidates: Sequence[int], *, batch_size: int = 8
    ) -> np.ndarray: ...

    def sample(
        self, prompt: str, model: Any, *, samples: int, max_new_tokens: int, seed: int, temperature: float = 1.0
    ) -> list[str]: ...

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

    def next_token_logprobs(
        self,
        prompts: Sequence[str],
        answers: Sequence[str],
        *,
        engine: Engine,
        system_prompt: str = "",
        cache: Any = None,
        batch_size: int = 8,
    ) -> NextTokenLogprobs:
        """log p(answer | prompt) for each answer written as the next token after each whole prompt (DE-COP's
        letters after ``Answer:``): :class:`NextTokenLogprobs`.

        A local model reads each answer's one token (``llm_mia.backends.answer_tokens``) from the full
        distribution, in batches of ``batch_size``; an endpoint answers at temperature 0, from its top log-probs or
        by forcing each answer where it reports a forced token's exact log-prob (``llm_mia.backends.remote.answers``),
        a chat endpoint with ``system_prompt`` as the system message. ``cache``: a response cache
        (``llm_mia.backends.remote.responses.ResponseCache``) where an endpoint keeps what it answered; a local
        model has none to keep.
        """
        ...

    def sample(
        self,
        prompt: str,
        *,
        samples: int,
        max_new_tokens: int,
        seed: int,
        engine: Engine,
        temperature: float = 1.0,
        chat_instruction: str = "",
        cache: Any = None,
    ) -> list[str]:
        """``samples`` continuations of ``prompt`` (new text only) at ``temperature``, reproducible from ``seed``
        and independent of any other prompt. A local model samples with top-k 50 in a generator state of its own
        (``llm_mia.engine.generation``); an endpoint gets one request per sample with seed ``seed + i`` and its own
        top-k, and a chat-only endpoint gets ``chat_instruction + prompt`` as the user message
        (``llm_mia.backends.remote.sampling``). ``cache``: as for :meth:`next_token_logprobs`.
        """
        ...
