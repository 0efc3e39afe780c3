"""What an OpenAI-compatible endpoint can honestly serve, found by asking it (a handful of short requests).

Checks, in order:

1. ``GET /models``: the model name must be among the served ones. Some servers (llama-cpp-python's among
   them) answer a request for an unknown name with their default model; this check refuses that up front.
2. **Generation-side log-probs**: ``POST /completions`` on a short probe prefix, one token, temperature 0,
   ``logprobs: 2``: the greedy next token, its log-prob and the runner-up's.
3. **Prompt log-probs** (``echo: true`` with ``logprobs``, the legacy completions API; vLLM and OpenAI's
   legacy models serve it): the prefix followed by that greedy token is sent back with ``echo``; the
   log-prob the server reports for the token *as part of the prompt* must equal the one it reported when it
   generated it (tolerance 0.05 nats; both come from the same logits row). This catches servers whose echo
   values are shifted by one position: llama-cpp-python 0.3.x reads the prompt token at position t from the
   logits row *at* t instead of t - 1 (``Llama._create_completion``, ``all_logprobs[token_offset:]`` zipped
   with ``all_tokens``), so every echoed value is the log-prob of a token repeating itself: -9 to -19 nats
   where the model gives -0.2 to -4.5.
4. **Chat completions** (``POST /chat/completions``, one token, ``logprobs``/``top_logprobs``): whether the
   endpoint answers chat requests, with or without answer log-probs; the generation-based scorers (DE-COP)
   need no more than this.
5. **Forced tokens** (fallback when echo is absent or wrong): the prefix with ``logit_bias`` +100 on the
   runner-up token and temperature 0: the server must generate that token and report its *unbiased* log-prob
   (equal to step 2's runner-up value), which is what llama.cpp does (the bias acts in the sampler, the
   reported value is read from the logits). With a tokenize endpoint (``/extras/tokenize`` and
   ``/extras/detokenize``, as llama-cpp-python serves) every token of a text can then be scored exactly, at
   the cost of one completion (plus a tokenize and a detokenize) request per token instead of one per text.

The mode used: ``echo`` when step 3 passes, else ``forced`` when step 5 passes, else none (no log-prob
scorer can be served; the error says which step failed).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from llm_mia.backends.remote.client import ApiClient, RemoteError

PROBE_PREFIX = "The capital of France is Paris. The capital of Italy is"
ECHO_TOLERANCE = 0.05  # nats: the same logits row read twice; llama.cpp's echo error is several nats


@dataclass
class Capabilities:
    """What the probe found; ``mode`` is how token log-probs are obtained (None: they cannot be)."""

    served_models: list[str] | None = None
    model_version: str | None = None  # the model name the completions response reports
    fingerprint: str = ""  # of the served weights: the probe's greedy token and its log-prob (3 decimals)
    generation_logprobs: bool = False
    echo: str = "not tried"  # "consistent", "inconsistent (...)", "absent (...)"
    forced: str = "not tried"  # "exact", "no (...)"
    tokenize_endpoint: bool = False
    chat: str = "not tried"  # chat completions: "log-probs", "text only" or "no (...)"
    mode: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def arrays(self) -> tuple[str, ...]:
        """The TokenStats arrays this endpoint provides (the scorers' ``needs``)."""
        return ("logprob",) if self.mode else ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "arrays": list(self.arrays)}

    def describe(self) -> str:
        lines = [
            f"chat completions: {self.chat}",
            f"prompt log-probs (echo): {self.echo}",
            f"forced-token log-probs: {self.forced}",
            f"mode: {self.mode or 'none: no log-prob scorer can be served'}",
        ]
        if self.mode == "forced":
            lines.append("cost: one completion request (plus tokenize/detokenize) per token, not per text")
        return "\n".join(lines + self.notes)


def _completion(client: ApiClient, model: str, prompt: str, cache: Any, **extra: Any) -> dict[str, Any]:
    payload = {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0, "seed": 0, **extra}
    return client.post("completions", payload, cache=cache)


def _logprobs(response: dict[str, Any]) -> dict[str, Any]:
    try:
        logprobs = response["choices"][0]["logprobs"]
    except (KeyError, IndexError, TypeError):
        return {}
    return logprobs or {}


def prompt_entries(response: dict[str, Any], text: str) -> tuple[list[str], list[float | None]]:
    """The echoed prompt's (tokens, log-probs), without the one generated token.

    ``usage.prompt_tokens`` says how many entries are the prompt where the server reports it (vLLM counts a
    decoded BOS such as "<s>" into ``text_offset``, so offsets are shifted there); else the entries whose
    ``text_offset`` lies inside the text.
    """
    logprobs = response["choices"][0]["logprobs"]
    tokens, values, offsets = logprobs["tokens"], logprobs["token_logprobs"], logprobs["text_offset"]
    count = (response.get("usage") or {}).get("prompt_tokens")
    if not isinstance(count, int) or not 0 < count <= len(tokens):
        count = sum(offset < len(text) for offset in offsets)
    return list(tokens[:count]), list(values[:count])


def served_models(client: ApiClient) -> list[str] | None:
    """The model ids ``GET /models`` lists, or None when the server has no such endpoint."""
    try:
        listing = client.get("models")
    except RemoteError as error:
        if error.status in (404, 405):
            return None
        raise
    return [
        entry["id"] for entry in listing.get("data", []) if isinstance(entry, dict) and isinstance(entry.get("id"), str)
    ]


def probe(client: ApiClient, model: str, *, cache: Any = None) -> Capabilities:
    """Run the checks of the module docstring against ``model`` at the client's endpoint."""
    found = Capabilities()
    found.served_models = served_models(client)
    if found.served_models is not None and model not in found.served_models:
        raise RemoteError(
            f"model {model!r} is not served at {client.settings.root}; it serves: "
            f"{', '.join(found.served_models) or 'nothing'} (pass one of these as --model api:NAME)"
        )
    found.chat = _probe_chat(client, model, cache)
    try:
        generated = _completion(client, model, PROBE_PREFIX, cache, logprobs=2)
    except RemoteError as error:
        found.notes.append(f"completions endpoint: {error}")
        found.echo = found.forced = "no (the completions endpoint failed)"
        return found
    found.model_version = generated.get("model")
    gen = _logprobs(generated)
    if not gen.get("token_logprobs") or not gen.get("top_logprobs"):
        found.echo = found.forced = "no (the server returns no log-probs for generated tokens)"
        return found
    found.generation_logprobs = True
    token, token_logprob = gen["tokens"][0], gen["token_logprobs"][0]
    seed = f"{found.model_version}\0{token}\0{token_logprob:.3f}"
    found.fingerprint = hashlib.sha256(seed.encode()).hexdigest()[:16]
    ranked = sorted(gen["top_logprobs"][0].items(), key=lambda item: -item[1])
    runner_up = next(((text, value) for text, value in ranked if text != token), None)

    echoed = _completion(client, model, PROBE_PREFIX + token, cache, logprobs=1, echo=True)
    try:
        prompt_tokens, values = prompt_entries(echoed, PROBE_PREFIX + token)
    except (KeyError, TypeError, IndexError):
        prompt_tokens, values = [], []
    # the probe token is the prompt's last; a tokenizer that merges it with the prefix leaves nothing to compare
    last = len(prompt_tokens) - 1
    if last < 1 or prompt_tokens[last] != token:
        found.echo = "absent (no prompt log-probs with echo, or the probe token is not a prompt token of its own)"
    elif values[last] is None:
        found.echo = "absent (null for the prompt token)"
    else:
        difference = abs(values[last] - token_logprob)
        if difference <= ECHO_TOLERANCE:
            found.echo = "consistent"
        else:
            found.echo = (
                f"inconsistent (the prompt token {token!r} is reported at {values[last]:.2f} as part of the prompt "
                f"and at {token_logprob:.2f} when the server generated it: echoed values are wrong)"
            )
    if found.echo == "consistent":
        found.mode = "echo"
        return found

    found.tokenize_endpoint = _has_tokenizer(client, model, cache)
    if runner_up is None:
        found.forced = "no (no runner-up token among the top log-probs)"
    elif not found.tokenize_endpoint:
        found.forced = "no (no /extras/tokenize endpoint to find token ids)"
    else:
        ids = tokenize(client, model, runner_up[0], cache=cache)
        if len(ids) != 1:
            found.forced = f"no (the runner-up token {runner_up[0]!r} does not tokenize to one id)"
        else:
            forced = _completion(client, model, PROBE_PREFIX, cache, logprobs=1, logit_bias={str(ids[0]): 100})
            got = _logprobs(forced)
            if not got.get("tokens") or got["tokens"][0] != runner_up[0]:
                found.forced = "no (logit_bias did not force the token)"
            elif abs(got["token_logprobs"][0] - runner_up[1]) > ECHO_TOLERANCE:
                found.forced = "no (the forced token's log-prob includes the bias)"
            else:
                found.forced = "exact"
                found.mode = "forced"
    return found


def _probe_chat(client: ApiClient, model: str, cache: Any) -> str:
    payload = {
        "model": model,
        "messages": [{"role": "user", "content": PROBE_PREFIX}],
        "max_tokens": 1,
        "temperature": 0,
        "seed": 0,
        "logprobs": True,
        "top_logprobs": 2,
    }
    try:
        response = client.post("chat/completions", payload, cache=cache)
    except RemoteError as error:
        return f"no ({error.reason})"
    try:
        content = response["choices"][0]["logprobs"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    return "log-probs" if content else "text only"


def _has_tokenizer(client: ApiClient, model: str, cache: Any) -> bool:
    try:
        return bool(tokenize(client, model, "a b", cache=cache))
    except RemoteError:
        return False


def _extras(client: ApiClient, name: str) -> str:
    return f"{client.settings.root.removesuffix('/v1')}/extras/{name}"


def tokenize(client: ApiClient, model: str, text: str, *, cache: Any = None, on_request: Any = None) -> list[int]:
    """Token ids of ``text`` from the server's ``/extras/tokenize`` (llama-cpp-python's), without the special
    prefix (BOS) the server puts in front for models that add one: the prefix of an empty text is removed."""

    def ask(value: str) -> list[int]:
        response = client.post(
            _extras(client, "tokenize"),
            {"model": model, "input": value},
            cache=cache,
            on_request=on_request,
            check=lambda r: [int(token) for token in r["tokens"]],
        )
        return [int(token) for token in response["tokens"]]

    ids, prefix = ask(text), ask("")
    return ids[len(prefix) :] if ids[: len(prefix)] == prefix else ids


def detokenize(client: ApiClient, model: str, tokens: list[int], *, cache: Any = None, on_request: Any = None) -> str:
    """Text of ``tokens`` from the server's ``/extras/detokenize``."""
    response = client.post(
        _extras(client, "detokenize"),
        {"model": model, "tokens": tokens},
        cache=cache,
        on_request=on_request,
        check=lambda r: str(r["text"]),
    )
    return str(response["text"])
