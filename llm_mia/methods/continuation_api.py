"""Extraction probes through an OpenAI-compatible API: endpoints that return only text.

A model behind an API (``--model api:NAME``) is sent each passage's prefix *as text* (the characters its k
cutting tokens cover; its tokenizer is unknown) and its reply, also text, is turned into tokens of the cutting
tokenizer in context (:func:`continuation_ids`), so that matches are counted in the same tokens as for a
white-box model.

- **completions** (``--api-mode completions``, or ``auto`` when the endpoint serves them): the prefix is the
  prompt, and the completion is its continuation, compared as returned.
- **chat** (``--api-mode chat``, or ``auto`` for a chat-only endpoint): the user message is ``CHAT_INSTRUCTION``
  followed by the prefix; the reply is compared after these stated normalisations: a reply that starts by
  repeating the prefix has the repetition removed, and its leading whitespace is replaced by the target's own
  (a chat reply does not start with the space that separates it from the prefix). Nasr et al. 2023 found chat
  models need more than this to regurgitate (their divergence attack); the instruction measures what a plain
  request gets, and says so.

Sampling: temperature 0 (``temperature`` 0, one request per passage) where the endpoint honours it. Where it
does not (some hosted reasoning models accept only temperature 1), give ``temperature`` > 0 and ``samples`` n:
n requests per passage, each seeded (the run's seed, the passage's SHA-256 and the sample's index), and the best
continuation kept by ``llm_mia.methods.extraction.BEST_OF_RULE``, for the suspect and control works alike.
Each reply is capped at ``api_max_tokens(L)`` = ceil(1.5 L) of the endpoint's tokens (its tokens are not the
cutting tokenizer's; the continuation is then cut to L cutting tokens). Every request goes through the client's
retries, rate limits and response cache (a rerun sends nothing twice) and, with an observer, into the
hash-chained query log with the endpoint, the request's SHA-256 and the model name the server reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llm_mia.backends.remote.client import RemoteError, concurrently, has_choice
from llm_mia.errors import LlmMiaError

CHAT_INSTRUCTION = (
    "Continue the following text exactly as it is written in its original source, word for word. Reply with the "
    "continuation only, without repeating the text and without any comment:\n\n"
)
API_MODES = ("auto", "completions", "chat")


def api_max_tokens(target_tokens: int) -> int:
    """Tokens asked of the endpoint per reply: ceil(1.5 L) (module docstring).

    >>> api_max_tokens(50)
    75
    """
    return math.ceil(1.5 * target_tokens)


def continuation_ids(tokenizer: Any, prefix_text: str, generated_text: str) -> list[int]:
    """The generated text as tokens of ``tokenizer``, tokenized after the prefix (as the source was): every token
    of ``prefix_text + generated_text`` that ends after the prefix. A token that straddles the boundary (the reply
    glued to the prefix's last word) is counted as generated, and so never matches the target's first token.

    >>> class Words:  # a stand-in tokenizer: one token per character, ids = code points
    ...     def __call__(self, text, **_):
    ...         return {"input_ids": [ord(c) for c in text], "offset_mapping": [(i, i + 1) for i in range(len(text))]}
    >>> continuation_ids(Words(), "ab", "cd")
    [99, 100]
    """
    if not generated_text:
        return []
    encoded = tokenizer(
        prefix_text + generated_text,
        add_special_tokens=False,
        split_special_tokens=True,
        return_offsets_mapping=True,
    )
    boundary = len(prefix_text)
    return [
        int(i) for i, (_, end) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True) if end > boundary
    ]


def normalise_chat_reply(reply: str, prefix_text: str, target_text: str) -> str:
    """A chat reply as compared (module docstring): a repeated prefix removed, the target's leading whitespace.

    >>> normalise_chat_reply("The cat sat on", "The cat", " sat on the mat")
    ' sat on'
    >>> normalise_chat_reply("  sat on", "The cat", " sat on the mat")
    ' sat on'
    """
    text = reply
    if prefix_text.strip() and text.lstrip().startswith(prefix_text.strip()):
        text = text.lstrip()[len(prefix_text.strip()) :]
    lead = target_text[: len(target_text) - len(target_text.lstrip())]
    return lead + text.lstrip()


def completions_served(capabilities: Any) -> bool:
    """Whether the probe found a working completions endpoint (``llm_mia.backends.remote.capabilities``)."""
    return capabilities.model_version is not None or not any(
        note.startswith("completions endpoint:") for note in capabilities.notes
    )


def chat_served(capabilities: Any) -> bool:
    return str(capabilities.chat).startswith(("log-probs", "text"))


def resolve_api_mode(model: Any, requested: str) -> str:
    """``completions`` or ``chat`` for this endpoint, as ``requested`` (``auto``: completions where served);
    refuses a mode the endpoint does not serve, naming the other."""
    if requested not in API_MODES:
        raise LlmMiaError(f"--api-mode {requested!r}: choose one of {', '.join(API_MODES)}")
    found = model.capabilities
    completions, chat = completions_served(found), chat_served(found)
    if requested == "completions" and not completions:
        raise LlmMiaError(
            f"{model.spec.name} at {model.api.root} has no working completions endpoint (the probe's request "
            f"failed); use --api-mode chat: the prefix is then sent after a stated instruction "
            f"({CHAT_INSTRUCTION.strip()[:60]}...)"
        )
    if requested == "chat" and not chat:
        raise LlmMiaError(
            f"{model.spec.name} at {model.api.root} does not answer chat requests ({found.chat}); use "
            f"--api-mode completions"
        )
    if requested == "auto":
        if completions:
            return "completions"
        if chat:
            return "chat"
        raise LlmMiaError(
            f"{model.spec.name} at {model.api.root} answers neither completions nor chat requests ({found.chat}); "
            f"check --api-base and the model name"
        )
    return requested


@dataclass(frozen=True)
class ApiProbeSettings:
    """How the probes are asked of an endpoint (module docstring)."""

    mode: str = "auto"
    samples: int = 1
    temperature: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in API_MODES:
            raise LlmMiaError(f"--api-mode {self.mode!r}: choose one of {', '.join(API_MODES)}")


def api_continuations(
    model: Any,
    prompts: Sequence[tuple[str, str, str, int]],
    *,
    target_tokens: int,
    settings: ApiProbeSettings,
    tokenizer: Any,
    cache: Any = None,
    observer: Callable[[int, dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> tuple[str, list[list[tuple[list[int], str]]]]:
    """The mode used, and per prompt (``(id, prefix_text, target_text, seed)``) its ``samples`` continuations as
    (cutting-tokenizer ids cut to L, the compared text). ``observer(index, event)`` hears of every request."""
    from tqdm.auto import tqdm

    mode = resolve_api_mode(model, settings.mode)
    budget = api_max_tokens(target_tokens)

    def one(index: int, sample: int) -> tuple[list[int], str]:
        _, prefix_text, target_text, seed = prompts[index]
        payload: dict[str, Any] = {
            "model": model.name,
            "max_tokens": budget,
            "temperature": settings.temperature,
            "seed": seed + sample,
        }
        if settings.temperature > 0:
            payload["top_p"] = 1.0

        def heard(event: dict[str, Any]) -> None:
            if observer is not None:
                observer(index, event)

        try:
            if mode == "chat":
                payload["messages"] = [{"role": "user", "content": CHAT_INSTRUCTION + prefix_text}]
                response = model.client.post(
                    "chat/completions",
                    payload,
                    cache=cache,
                    check=has_choice,
                    salt=model.capabilities.fingerprint,
                    on_request=heard,
                )
                reply = (response["choices"][0].get("message") or {}).get("content") or ""
                text = normalise_chat_reply(reply, prefix_text, target_text)
            else:
                payload["prompt"] = prefix_text
                response = model.client.post(
                    "completions",
                    payload,
                    cache=cache,
                    check=has_choice,
                    salt=model.capabilities.fingerprint,
                    on_request=heard,
                )
                text = response["choices"][0].get("text") or ""
        except RemoteError as error:
            hint = (
                "; if the endpoint does not allow temperature 0, give --temperature 1 --samples N (the best of N "
                "continuations is kept, by a stated rule)"
                if settings.temperature == 0 and "HTTP 400" in str(error)
                else ""
            )
            raise LlmMiaError(f"passage {prompts[index][0]!r}: {error}{hint} (replies received are kept)") from None
        return continuation_ids(tokenizer, prefix_text, text)[:target_tokens], text

    jobs = [(i, s) for i in range(len(prompts)) for s in range(settings.samples)]
    with tqdm(total=len(jobs), unit="request", disable=not progress, desc=f"{model.spec.name} ({mode})") as bar:
        answers = concurrently(lambda job: one(*job), jobs, model.api.concurrency, done=lambda: bar.update(1))
    grouped: list[list[tuple[list[int], str]]] = [[] for _ in prompts]
    for (index, _), answer in zip(jobs, answers, strict=True):
        grouped[index].append(answer)
    return mode, grouped


@dataclass(frozen=True)
class ApiEstimate:
    """What a run will send to one endpoint, counted before anything is sent (``--dry-run``)."""

    model: str
    passages: int
    samples: int
    requests: int
    prompt_tokens: int
    max_completion_tokens: int

    def describe(self, price_per_million: float | None = None) -> list[str]:
        cost = (
            f", costing at most about {(self.prompt_tokens + self.max_completion_tokens) * price_per_million / 1e6:.3g}"
            f" at that price (prompt and completion tokens alike)"
            if price_per_million is not None
            else ""
        )
        return [
            f"{self.model}: {self.passages} passages x {self.samples} sample(s) = {self.requests:,} requests, about "
            f"{self.prompt_tokens:,} prompt tokens (estimated as bytes / 4; the chat instruction included) and at "
            f"most {self.max_completion_tokens:,} completion tokens{cost}",
            "  plus the probe at connect time (a few requests of a dozen tokens); nothing has been sent",
        ]


def estimate(model_name: str, prefix_texts: Sequence[str], *, target_tokens: int, samples: int) -> ApiEstimate:
    """Requests and tokens for ``prefix_texts`` (chat mode's instruction counted in, the larger of the two)."""
    per_prompt = [math.ceil(len((CHAT_INSTRUCTION + text).encode("utf-8")) / 4) for text in prefix_texts]
    requests = len(prefix_texts) * samples
    return ApiEstimate(
        model=model_name,
        passages=len(prefix_texts),
        samples=samples,
        requests=requests,
        prompt_tokens=sum(per_prompt) * samples,
        max_completion_tokens=requests * api_max_tokens(target_tokens),
    )
