"""Sampled continuations from a model behind an API (SaMIA): one request per sample, each with its own seed, behind
:meth:`llm_mia.backends.remote.model.RemoteModel.sample`.

Completions endpoints get the prompt as is; chat-only endpoints get it after the caller's instruction (SaMIA's:
``llm_mia.methods.samia.CHAT_INSTRUCTION``) as the user message. At the caller's temperature (SaMIA: 1) and top-p 1;
top-k is the endpoint's own (the OpenAI API has no top-k; llama-cpp-python's server defaults to 40). Each request
carries ``seed`` = the caller's seed + the sample's index, and is kept in the response cache: a rerun returns the same
samples and sends nothing. The samples of one prompt are asked ``--api-concurrency`` at a time (each depends on its own
seed only).
"""

from __future__ import annotations

from typing import Any

from llm_mia.backends.remote.client import concurrently, has_choice
from llm_mia.backends.remote.extract import Endpoint


def sample_continuations(
    prompt: str,
    model: Endpoint,
    *,
    samples: int,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
    chat_instruction: str = "",
    cache: Any = None,
) -> list[str]:
    """``samples`` continuations of ``prompt`` (new text only); a chat-only endpoint gets ``chat_instruction`` +
    ``prompt`` as the user message."""
    chat = not model.capabilities.generation_logprobs and model.capabilities.chat.startswith(("log-probs", "text"))

    def one(index: int) -> str:
        common = {"model": model.name, "max_tokens": max_new_tokens, "temperature": temperature, "top_p": 1.0}
        common["seed"] = seed + index
        if chat:
            payload = {**common, "messages": [{"role": "user", "content": chat_instruction + prompt}]}
            response = model.client.post(
                "chat/completions", payload, cache=cache, check=has_choice, salt=model.capabilities.fingerprint
            )
            return (response["choices"][0].get("message") or {}).get("content") or ""
        response = model.client.post(
            "completions",
            {**common, "prompt": prompt},
            cache=cache,
            check=has_choice,
            salt=model.capabilities.fingerprint,
        )
        return response["choices"][0].get("text") or ""

    return concurrently(one, range(samples), model.api.concurrency)
