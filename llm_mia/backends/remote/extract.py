"""Token log-probs from a model behind an API: texts in, one TokenStats per text out, as the white-box engine.

Two modes (chosen by the probe, :mod:`llm_mia.backends.remote.capabilities`):

- ``echo``: one ``POST /completions`` per text with ``echo: true``, ``logprobs: 1``, ``max_tokens: 1`` and
  temperature 0 (``max_tokens: 0`` means "no limit" on some servers, so one token is generated and dropped:
  tokens whose ``text_offset`` lies at or beyond the end of the text are not the text's). The first token has
  no log-prob (nothing predicts it, as with a white-box tokenizer that adds no BOS) and is left unscored.
- ``forced``: the text's token ids from the server's tokenizer; for each token t >= 1, the prefix x_<t
  (detokenized, and checked to re-tokenize to exactly x_<t) is completed by one token with ``logit_bias``
  +100 on x_t at temperature 0, and the server's log-prob of the generated token is log p(x_t | x_<t)
  (unbiased: llama.cpp applies the bias in its sampler and reports the logits' value). A token whose prefix
  does not re-tokenize to itself is left unscored and counted (``Endpoint.unscored_tokens``), never
  replaced by a guess. Cost: one completion plus a tokenize and a detokenize request per token.

Concurrency (``--api-concurrency``): echo mode sends up to that many texts' requests at once (each answer depends
on its own request only). Forced mode always sends one request at a time: the servers that need it (llama.cpp)
keep a prompt cache, and a prefix's numbers depend on what was evaluated just before it (measured: 2e-4
nats/token, float32 weights), so interleaving texts would make a text's scores depend on its neighbours.

What an API does not return is not invented: the full next-token distribution (so ``mu``, ``sigma``, ``rank``
and ``top1_logprob`` are NaN / -1, and scorers that need them are refused before any request), and in echo
mode the token ids (-1). A text must fit the endpoint's context window; one that does not gets an error naming
it (split long texts into passages first).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from llm_mia.backends.remote.capabilities import detokenize, prompt_entries, tokenize
from llm_mia.backends.remote.client import RemoteError, concurrently
from llm_mia.backends.token_stats import TokenStats, zlib_length
from llm_mia.errors import InputError

logger = logging.getLogger(__name__)

STATUS_EMPTY = "empty or whitespace-only text"
STATUS_TOO_SHORT = "no scorable tokens (one token: nothing predicts it)"
FORCE_BIAS = 100


class Endpoint(Protocol):
    """What this module reads of a model behind an API (``llm_mia.backends.remote.model.Endpoint``, which calls
    it: that module cannot be imported here)."""

    spec: Any
    api: Any
    client: Any
    capabilities: Any
    unscored_tokens: int

    @property
    def name(self) -> str: ...

    @property
    def tokenizer_id(self) -> str: ...


def _stats(
    model: Endpoint, text: str, logprobs: list[float], ids: list[int] | None, unscored_bytes: int, n: int
) -> TokenStats:
    count = len(logprobs)
    nan = np.full(count, np.nan, dtype=np.float32)
    return TokenStats(
        token_ids=np.asarray(ids if ids is not None else [-1] * count, dtype=np.int64),
        logprob=np.asarray(logprobs, dtype=np.float32),
        mu=nan,
        sigma=nan.copy(),
        rank=np.full(count, -1, dtype=np.int64),
        top1_logprob=nan.copy(),
        n_bytes=len(text.encode("utf-8")),
        n_bytes_scored=len(text.encode("utf-8")) - unscored_bytes,
        zlib_bytes=zlib_length(text),
        n_tokens=n,
        bos_added=False,
        n_windows=1,
        tokenizer_id=model.tokenizer_id,
    )


def _empty(model: Endpoint, text: str, status: str, n_tokens: int = 0) -> TokenStats:
    return TokenStats.empty(
        status=status,
        n_bytes=len(text.encode("utf-8")),
        zlib_bytes=zlib_length(text),
        n_tokens=n_tokens,
        bos_added=False,
        tokenizer_id=model.tokenizer_id,
    )


def _echo(model: Endpoint, text: str, cache: Any, heard: Callable[[dict[str, Any]], None] | None) -> TokenStats:
    payload = {
        "model": model.name,
        "prompt": text,
        "max_tokens": 1,
        "echo": True,
        "logprobs": 1,
        "temperature": 0,
        "seed": 0,
    }
    response = model.client.post(
        "completions",
        payload,
        cache=cache,
        on_request=heard,
        check=lambda r: prompt_entries(r, text),
        salt=model.capabilities.fingerprint,
    )
    tokens, values = prompt_entries(response, text)
    if len(tokens) < 2:
        return _empty(model, text, STATUS_TOO_SHORT, len(tokens))
    # a first entry that is not the start of the text is the server's BOS: every text token is then scored
    bos = not text.startswith(tokens[0])
    scored = [value for value in values[1:] if value is not None]
    if len(scored) < len(values) - 1:
        raise RemoteError(f"{model.api.root}: echo returned no log-prob for a prompt token past the first")
    unscored_bytes = 0 if bos else len(tokens[0].encode("utf-8"))
    stats = _stats(model, text, scored, None, unscored_bytes, len(tokens) - bos)
    return replace(stats, bos_added=bos)


def _forced_value(response: dict[str, Any]) -> float:
    """The log-prob of the forced token (ValueError when the server gave none: the response is then not kept)."""
    value = response["choices"][0]["logprobs"]["token_logprobs"][0]
    if value is None:
        raise ValueError("no log-prob for the forced token")
    return float(value)


def _forced(model: Endpoint, text: str, cache: Any, heard: Callable[[dict[str, Any]], None] | None) -> TokenStats:
    client, name = model.client, model.name
    ids = tokenize(client, name, text, cache=cache, on_request=heard)
    if len(ids) < 2:
        return _empty(model, text, STATUS_TOO_SHORT, len(ids))
    logprobs, scored_ids = [], []
    unscored_bytes = len(detokenize(client, name, ids[:1], cache=cache, on_request=heard).encode("utf-8"))
    for t in range(1, len(ids)):
        prefix = detokenize(client, name, ids[:t], cache=cache, on_request=heard)
        if tokenize(client, name, prefix, cache=cache, on_request=heard) != ids[:t]:
            model.unscored_tokens += 1
            after = detokenize(client, name, ids[: t + 1], cache=cache, on_request=heard)
            unscored_bytes += len(after.encode("utf-8")) - len(prefix.encode("utf-8"))
            continue
        payload = {
            "model": name,
            "prompt": prefix,
            "max_tokens": 1,
            "logprobs": 1,
            "temperature": 0,
            "seed": 0,
            "logit_bias": {str(ids[t]): FORCE_BIAS},
        }
        response = client.post(
            "completions",
            payload,
            cache=cache,
            on_request=heard,
            check=_forced_value,
            salt=model.capabilities.fingerprint,
        )
        logprobs.append(_forced_value(response))
        scored_ids.append(ids[t])
    return _stats(model, text, logprobs, scored_ids, unscored_bytes, len(ids))


def remote_extract(
    texts: Sequence[str],
    model: Endpoint,
    *,
    cache: Any = None,
    description: str = "",
    progress: bool = True,
    observer: Callable[[int, dict[str, Any]], None] | None = None,
    names: Sequence[str] | None = None,
) -> list[TokenStats]:
    """One TokenStats per text from ``model``'s endpoint (see module docstring for the two modes).

    ``cache``: a :class:`~llm_mia.backends.remote.responses.ResponseCache` (a rerun sends nothing twice). ``observer``
    hears ``(text index, event)`` for every request, with the event from :meth:`ApiClient.post`. ``names``: the
    documents' ids, for error messages.
    """
    mode = model.capabilities.mode
    if mode is None:
        raise RemoteError(
            f"{model.spec.name} at {model.api.root} returns no usable token log-probs:\n{model.capabilities.describe()}"
        )
    run = _echo if mode == "echo" else _forced
    workers = model.api.concurrency if mode == "echo" else 1
    if model.api.concurrency > 1 and mode != "echo":
        logger.info("forced-token scoring sends one request at a time (--api-concurrency applies to echo mode)")
    lock = threading.Lock()  # the observer (query log, caller's callbacks) hears one event at a time

    def one(index: int) -> TokenStats:
        text = texts[index]
        if not text.strip():
            return _empty(model, text, STATUS_EMPTY)
        heard = None
        if observer is not None:

            def heard(event: dict[str, Any], index: int = index) -> None:
                with lock:
                    observer(index, event)

        try:
            return run(model, text, cache, heard)
        except RemoteError as error:
            where = f"document {names[index]!r}" if names is not None else f"text {index}"
            fit = (  # a request the server refused as such: most often a text too long for its context
                "texts behind an API must fit the endpoint's context window: cut long texts into passages first; "
                if error.status is not None and 400 <= error.status < 500
                else ""
            )
            raise InputError(
                f"{where}: {error} ({fit}the responses received so far are kept, so a rerun resumes)"
            ) from None

    with tqdm(total=len(texts), desc=description or model.spec.name, unit="text", disable=not progress) as bar:
        return concurrently(one, range(len(texts)), workers, done=bar.update)
