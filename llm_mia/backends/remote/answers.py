"""Answers to multiple-choice prompts from a model behind an API: the log-prob of each answer (DE-COP's letters)
as the next token, behind :meth:`llm_mia.backends.remote.model.RemoteModel.next_token_logprobs`.

Temperature 0, one generated token. Where the probe found that the endpoint reports the unbiased log-prob of a
token forced with ``logit_bias`` (llama.cpp), each letter is forced in turn and its log-prob read exactly: four
requests per prompt (see ``_letter_ids``). Elsewhere one request per prompt and the top log-probs of the answer
token (5 through the completions endpoint, 20 through chat completions: OpenAI's limits): completions when the
endpoint generates with log-probs, else chat (the prompt as the user message after ``system``). A letter's
log-prob is then the log of the summed probability of the returned tokens that read as that letter (" A", "A",
"A."...); letters outside the returned tokens get -inf (their probability is below the smallest returned one;
renormalising over the four letters then overstates the others: the run record counts these rows). An endpoint
that returns no log-probs at all gives the generated letter log-prob 0 and the others -inf, so the DE-COP
probability becomes its accuracy.

Prompts are asked ``--api-concurrency`` at a time, except when letters are forced (a stateful llama.cpp server,
see :mod:`llm_mia.backends.remote.extract`): then one request at a time.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from llm_mia.backends.answer_tokens import answer_token_ids
from llm_mia.backends.remote.capabilities import tokenize
from llm_mia.backends.remote.client import RemoteError, concurrently, has_choice
from llm_mia.backends.remote.extract import Endpoint

TOP_K = 20  # chat completions: OpenAI's largest top_logprobs
COMPLETION_TOP_K = 5  # legacy completions: OpenAI's largest logprobs


def _letter(token: str, letters: Sequence[str]) -> str | None:
    cleaned = token.strip().rstrip(".):")
    return cleaned if cleaned in letters else None


def _row(pairs: list[tuple[str, float]], generated: str, letters: Sequence[str]) -> tuple[list[float], bool]:
    """(log-prob per letter, whether every letter was among the returned tokens)."""
    if not pairs:  # no log-probs: the answer alone
        chosen = _letter(generated, letters)
        return [0.0 if letter == chosen else -math.inf for letter in letters], False
    mass = dict.fromkeys(letters, 0.0)
    for token, value in pairs:
        letter = _letter(token, letters)
        if letter is not None and value is not None:
            mass[letter] += math.exp(value)
    return [math.log(mass[letter]) if mass[letter] > 0 else -math.inf for letter in letters], all(
        mass[letter] > 0 for letter in letters
    )


def _forced_value(response: dict[str, Any]) -> float:
    """A forced letter's log-prob; a null from the server becomes -inf (the letter counts as not returned)."""
    value = response["choices"][0]["logprobs"]["token_logprobs"][0]
    return -math.inf if value is None else float(value)


def _letter_ids(model: Endpoint, letters: Sequence[str], cache: Any) -> list[int] | None:
    """The answer letters' token ids (:func:`llm_mia.backends.answer_tokens.answer_token_ids`) where each letter's
    log-prob can be read exactly by forcing it; else None.

    A completion model may prefer to stop, or start a new line, after "Answer:", and the letters then fall
    outside the few top log-probs an API returns (llama-cpp-python returns none at all for a stop token). Where
    the probe found that the endpoint reports the unbiased log-prob of a token forced with ``logit_bias``
    (``Capabilities.forced == "exact"``, llama.cpp), each letter is forced in turn: four requests per prompt,
    every letter's log-prob exact.
    """
    if model.capabilities.forced != "exact":
        return None
    return answer_token_ids(lambda text: tokenize(model.client, model.name, text, cache=cache), letters)


def answer_logprobs(
    prompts: Sequence[str],
    model: Endpoint,
    letters: Sequence[str],
    *,
    system_prompt: str,
    cache: Any = None,
    observer: Callable[[int, dict[str, Any]], None] | None = None,
) -> tuple[np.ndarray, int]:
    """(prompts x letters) log-probs of each answer letter, and how many rows lacked some letter (module doc)."""
    found = model.capabilities
    use_chat = not found.generation_logprobs
    if use_chat and not found.chat.startswith(("log-probs", "text only")):
        raise RemoteError(f"{model.spec.name} at {model.api.root} answers neither completions nor chat requests")
    forced_ids = _letter_ids(model, letters, cache) if not use_chat else None
    salt = found.fingerprint
    lock = threading.Lock()

    def one(index: int) -> tuple[list[float], bool]:
        prompt = prompts[index]
        heard = None
        if observer is not None:

            def heard(event: dict[str, Any], index: int = index) -> None:
                with lock:
                    observer(index, event)

        common = {"model": model.name, "max_tokens": 1, "temperature": 0, "seed": 0}
        if use_chat:
            payload = {
                **common,
                "messages": [{"role": "system", "content": system_prompt}, {"role": "user", "content": prompt}],
                "logprobs": True,
                "top_logprobs": TOP_K,
            }
            response = model.client.post(
                "chat/completions", payload, cache=cache, on_request=heard, check=has_choice, salt=salt
            )
            choice = response["choices"][0]
            generated = (choice.get("message") or {}).get("content") or ""
            content = ((choice.get("logprobs") or {}).get("content") or [{}])[0]
            pairs = [(entry["token"], entry["logprob"]) for entry in content.get("top_logprobs") or []]
        elif forced_ids:
            values = []
            for token_id in forced_ids:
                payload = {**common, "prompt": prompt, "logprobs": 1, "logit_bias": {str(token_id): 100}}
                response = model.client.post(
                    "completions", payload, cache=cache, on_request=heard, check=_forced_value, salt=salt
                )
                values.append(_forced_value(response))
            return values, True
        else:
            payload = {**common, "prompt": prompt, "logprobs": COMPLETION_TOP_K}
            response = model.client.post(
                "completions", payload, cache=cache, on_request=heard, check=has_choice, salt=salt
            )
            choice = response["choices"][0]
            generated = choice.get("text") or ""
            top = ((choice.get("logprobs") or {}).get("top_logprobs") or [{}])[0] or {}
            pairs = list(top.items())
        return _row(pairs, generated, letters)

    workers = 1 if forced_ids else model.api.concurrency
    answered = concurrently(one, range(len(prompts)), workers)
    rows = [row for row, _ in answered]
    incomplete = sum(not complete for _, complete in answered)
    return np.asarray(rows, dtype=np.float64), incomplete
