"""Batched greedy decoding of many prefixes by a white-box model (verbatim extraction's probes).

Each prompt is the model's own special prefix (BOS, where its tokenizer adds one) followed by a passage's first
k tokens, exactly as they were cut from the source (no re-tokenization of decoded text). Greedy decoding takes
the argmax of the raw logits at every step (no temperature, repetition penalty or other processor, whatever the
model's generation config says), with a key-value cache, for ``new_tokens`` steps; a sequence that emits the
model's end-of-text token stops there (its later steps are dropped), as ``generate(do_sample=False)`` does. The
next-token logits are computed for the last position only and reduced in float32, as ``transformers``'
``generate`` computes them (tested: the tokens equal ``generate(do_sample=False)`` token for token).

One forward pass per step per batch of prompts: prompts of equal length are batched together (the extraction
probes all have k tokens), so no padding enters any prompt and a prompt's continuation does not depend on its
batch neighbours beyond float rounding. Batches are planned from the prompts alone, whatever the cache holds.

Every finished batch is committed to the stats cache (``llm_mia.engine.stats_cache``: the same SQLite store,
keyed by the model's files, dtype, device, threads, the greedy settings, the batch's composition and the prompt),
so a killed run resumes at the next batch with the same bits; generated tokens are kept as a ``TokenStats`` whose
``token_ids`` are the generated tokens, ``logprob`` (= ``top1_logprob``) their log-probs, ``mu`` / ``sigma`` the
mean and spread of log p at each step, and ``rank`` 1.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from llm_mia.backends.local import LoadedModel
from llm_mia.backends.token_stats import TokenStats
from llm_mia.engine.stats_cache import entry_key, settings_key
from llm_mia.errors import LlmMiaError

logger = logging.getLogger(__name__)

GREEDY_VERSION = "1"  # bump when the decoding changes its numbers for the same model and prompts


def check_fits(loaded: LoadedModel, *, prefix_tokens: int, new_tokens: int) -> None:
    """Refuse prompts plus continuations longer than the model's window, before any decoding."""
    total = len(loaded.prefix_ids) + prefix_tokens + new_tokens
    if total > loaded.context_length:
        bos = f" + {len(loaded.prefix_ids)} special" if loaded.prefix_ids else ""
        raise LlmMiaError(
            f"k + L = {prefix_tokens} + {new_tokens}{bos} = {total} tokens is longer than the window of "
            f"{loaded.spec.name} ({loaded.context_length} tokens); lower --prefix-tokens or --target-tokens"
        )


def _batches(prompts: Sequence[tuple[int, ...]], batch_size: int) -> list[list[int]]:
    """Indices batched in input order among prompts of equal length (no padding in any batch)."""
    by_length: dict[int, list[int]] = {}
    for index, prompt in enumerate(prompts):
        by_length.setdefault(len(prompt), []).append(index)
    batches = []
    for length in sorted(by_length, reverse=True):
        indices = by_length[length]
        batches += [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    return batches


def _batch_fingerprint(prompts: Sequence[tuple[int, ...]]) -> str:
    digest = hashlib.sha256()
    for prompt in prompts:
        digest.update(json.dumps(prompt).encode())
    return digest.hexdigest()


def _decode_batch(loaded: LoadedModel, prompts: Sequence[tuple[int, ...]], new_tokens: int) -> list[TokenStats]:
    """Greedy steps for one batch of equal-length prompts (module docstring)."""
    import torch

    model = loaded.model
    ids = torch.tensor([list(p) for p in prompts], device=loaded.device)  # (B, T)
    mask = torch.ones_like(ids)
    eos = {int(t) for t in np.atleast_1d(getattr(model.generation_config, "eos_token_id", None) or [])}
    eos |= {loaded.tokenizer.eos_token_id} if loaded.tokenizer.eos_token_id is not None else set()
    steps: list[tuple[Any, ...]] = []
    past = None
    # the key-value cache's keyword: ``cache`` in transformers >= 5.2x, ``past_key_values`` before
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    with torch.inference_mode():
        step_ids = ids
        for _ in range(new_tokens):
            out = model(input_ids=step_ids, attention_mask=mask, use_cache=True, logits_to_keep=1, **{name: past})
            logits = out.logits[:, -1, :].float()  # (B, V)
            logp = torch.log_softmax(logits, dim=-1)  # (B, V)
            chosen = logits.argmax(dim=-1)  # (B,)
            p = logp.exp()
            mu_t = (p * logp).sum(dim=-1)  # (B,)
            sigma_t = ((p * (logp - mu_t[:, None]) ** 2).sum(dim=-1)).clamp(min=0).sqrt()  # (B,)
            steps.append((chosen.cpu(), logp.gather(1, chosen[:, None])[:, 0].cpu(), mu_t.cpu(), sigma_t.cpu()))
            past = getattr(out, name)
            step_ids = chosen[:, None]  # (B, 1)
            mask = torch.cat([mask, torch.ones_like(step_ids)], dim=1)
    tokens = torch.stack([s[0] for s in steps], dim=1).numpy().astype(np.int64)  # (B, L)
    logprob, mu, sigma = (torch.stack([s[i] for s in steps], dim=1).numpy().astype(np.float32) for i in (1, 2, 3))
    results = []
    for row in range(len(prompts)):
        stop = new_tokens
        for position, token in enumerate(tokens[row]):
            if int(token) in eos:
                stop = position + 1  # the end-of-text token is kept; nothing after it
                break
        n = slice(0, stop)
        results.append(
            TokenStats(
                token_ids=tokens[row, n].copy(),
                logprob=logprob[row, n].copy(),
                mu=mu[row, n].copy(),
                sigma=sigma[row, n].copy(),
                rank=np.ones(stop, dtype=np.int64),
                top1_logprob=logprob[row, n].copy(),
                n_bytes=0,
                n_bytes_scored=0,
                zlib_bytes=0,
                n_tokens=stop,
                bos_added=loaded.adds_bos,
                n_windows=1,
                tokenizer_id=loaded.tokenizer_id,
            )
        )
    return results


def greedy_continuations(
    prompts: Sequence[Sequence[int]],
    loaded: LoadedModel,
    *,
    new_tokens: int,
    batch_size: int = 8,
    cache: Any = None,
    progress: bool = True,
    description: str = "greedy decoding",
    observer: Callable[[str, list[int]], None] | None = None,
) -> list[TokenStats]:
    """Greedy continuations of ``prompts`` (content token ids, without the model's BOS, which is put in front
    here) of up to ``new_tokens`` tokens each, in input order (module docstring).

    ``cache``: a :class:`llm_mia.engine.stats_cache.StatsCache` (None: none); ``observer(event, indices)`` hears of
    every batch before the model runs it (``"model call"``) and of the prompts taken from the cache
    (``"from cache"``).
    """
    from tqdm.auto import tqdm

    if new_tokens < 1:
        raise LlmMiaError(f"new_tokens must be >= 1, got {new_tokens}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise LlmMiaError(f"greedy decoding needs a batch size >= 1, got {batch_size!r}")
    full = [tuple(loaded.prefix_ids) + tuple(int(t) for t in p) for p in prompts]
    if any(len(p) == 0 for p in full):
        raise LlmMiaError("an empty prompt (no prefix tokens and no BOS): nothing to continue")
    longest = max((len(p) for p in full), default=0)
    if longest + new_tokens > loaded.context_length:
        raise LlmMiaError(
            f"a prompt of {longest} tokens plus {new_tokens} new ones exceeds the window of {loaded.spec.name} "
            f"({loaded.context_length}); lower --prefix-tokens or --target-tokens"
        )
    batches = _batches(full, batch_size)
    keys: dict[int, str] = {}
    found: dict[int, TokenStats] = {}
    if cache is not None:
        base = settings_key(loaded, window=loaded.context_length, stride=None)
        for batch in batches:
            layout = _batch_fingerprint([full[i] for i in batch])
            for i in batch:
                keys[i] = entry_key(f"{base}|greedy:{GREEDY_VERSION}|new={new_tokens}|{layout}", json.dumps(full[i]))
        stored = cache.get_many(list(keys.values()))
        found = {i: stored[key] for i, key in keys.items() if key in stored}
    todo = [batch for batch in batches if any(i not in found for i in batch)]
    reused = sorted(set(range(len(full))) - {i for batch in todo for i in batch})
    if observer is not None and reused:
        observer("from cache", reused)
    results: dict[int, TokenStats] = {i: found[i] for i in reused}
    with tqdm(total=len(full), unit="prompt", disable=not progress, desc=description, initial=len(reused)) as bar:
        if reused:
            message = f"{description}: resuming, {len(reused)} prompt(s) found in the stats cache"
            if progress:
                bar.write(message, file=sys.stderr)
            logger.info(message)
        for batch in todo:
            if observer is not None:
                observer("model call", list(batch))
            done = dict(zip(batch, _decode_batch(loaded, [full[i] for i in batch], new_tokens), strict=True))
            results.update(done)
            if cache is not None:
                cache.put_many((keys[i], stats) for i, stats in done.items())
            bar.update(len(batch))
    return [results[i] for i in range(len(full))]


def sampled_continuations(
    prompts: Sequence[Sequence[int]],
    loaded: LoadedModel,
    *,
    new_tokens: int,
    samples: int,
    temperature: float,
    seeds: Sequence[int],
    progress: bool = True,
    description: str = "sampling",
) -> list[list[list[int]]]:
    """``samples`` continuations of each prompt (content ids; BOS put in front here) sampled at ``temperature``
    from the full distribution (top-k off, top-p 1), each prompt in its own generator state seeded by its entry of
    ``seeds`` (so a passage's samples do not depend on the others in the run). Not cached: each prompt is one
    ``generate`` call, stopped at end-of-text as greedy decoding is."""
    import torch
    from tqdm.auto import tqdm

    if temperature <= 0:
        raise LlmMiaError(f"sampling needs a temperature > 0, got {temperature}; temperature 0 is greedy decoding")
    tokenizer = loaded.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = tokenizer.eos_token_id
    devices = [loaded.device] if loaded.device.startswith("cuda") else []
    results = []
    for prompt, seed in tqdm(list(zip(prompts, seeds, strict=True)), disable=not progress, desc=description):
        ids = torch.tensor([list(loaded.prefix_ids) + [int(t) for t in prompt]], device=loaded.device)
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            output = loaded.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=temperature,
                top_k=0,
                top_p=1.0,
                max_new_tokens=new_tokens,
                num_return_sequences=samples,
                pad_token_id=pad,
            )
        drawn = []
        for row in output[:, ids.shape[1] :].tolist():
            cut = row.index(eos) + 1 if eos is not None and eos in row else len(row)
            drawn.append(row[:cut])
        results.append(drawn)
    return results
