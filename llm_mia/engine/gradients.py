"""Per-document gradient norms, for GradNorm: the gradient of a document's mean token loss with respect to every
parameter of the model, reduced to its L1, L2 and L-infinity norms.

One document at a time (a batch of one): the norm needs the document's own gradient, and holding per-document
gradients for a batch (``torch.func.vmap`` over ``grad``) costs one copy of the parameters per document (540 MB
each on SmolLM2-135M), so the memory a batch would take grows with it for no gain on CPU. A document longer than
the window is read in the engine's windows; each window's summed token loss is back-propagated with weight
1 / (tokens scored), so the gradient is that of the mean over the whole document. Log-softmax in float32;
norms accumulated in float64 over parameter tensors. Not kept in the stats cache (a gradient is recomputed when
asked for). The model's parameters get ``requires_grad`` for the pass and are restored after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from llm_mia.backends.local import LoadedModel
from llm_mia.backends.token_stats import TextFacts, TokenStats, zlib_length
from llm_mia.engine.extract import tokenize_texts, window_segments
from llm_mia.engine.extraction_settings import ExtractionSettings

STATUS_EMPTY = "empty text"
STATUS_TOO_SHORT = "no scorable tokens"


def gradient_stats(texts: Sequence[str], loaded: LoadedModel, settings: ExtractionSettings) -> list[TokenStats]:
    """One TokenStats per text with its token log-probs and ``gradient_norms`` (L1, L2, L-inf), in input order."""
    window = settings.window or loaded.context_length
    model = loaded.model
    parameters = [p for p in model.parameters()]
    previous = [p.requires_grad for p in parameters]
    results = []
    try:
        for p in parameters:
            p.requires_grad_(True)
        for text in texts:
            results.append(_one(text, loaded, window, settings.stride, parameters))
    finally:
        model.zero_grad(set_to_none=True)
        for p, flag in zip(parameters, previous, strict=True):
            p.requires_grad_(flag)
    return results


def _one(text: str, loaded: LoadedModel, window: int, stride: int | None, parameters: list) -> TokenStats:
    n_bytes = len(text.encode("utf-8"))
    common: TextFacts = {
        "n_bytes": n_bytes,
        "zlib_bytes": zlib_length(text),
        "bos_added": loaded.adds_bos,
        "tokenizer_id": loaded.tokenizer_id,
    }
    if not text.strip():
        return TokenStats.empty(status=STATUS_EMPTY, n_tokens=0, **common)
    (tokens,) = tokenize_texts([text], loaded)
    if len(tokens.content_ids) + len(loaded.prefix_ids) < 2:
        return TokenStats.empty(status=STATUS_TOO_SHORT, n_tokens=len(tokens.content_ids), **common)
    segments = window_segments(0, tokens, loaded, window, stride)
    scored = sum(len(s.input_ids) - s.score_from for s in segments)
    loaded.model.zero_grad(set_to_none=True)
    logprobs, ids = [], []
    with torch.enable_grad():
        for segment in segments:
            input_ids = torch.tensor([segment.input_ids], device=loaded.device)
            logits = loaded.model(input_ids=input_ids).logits[0].float()
            targets = input_ids[0, segment.score_from :]
            predicted = torch.log_softmax(logits[segment.score_from - 1 : -1], dim=-1)
            values = predicted.gather(1, targets[:, None])[:, 0]
            (-values.sum() / scored).backward()
            logprobs.append(values.detach().cpu().numpy())
            ids.append(targets.cpu().numpy())
    grads = [p.grad for p in parameters if p.grad is not None]
    norm_1 = float(sum(float(g.abs().sum(dtype=torch.float64)) for g in grads))
    norm_2 = float(np.sqrt(sum(float(g.pow(2).sum(dtype=torch.float64)) for g in grads)))
    norm_inf = float(max(float(g.abs().max()) for g in grads))
    logprob = np.concatenate(logprobs).astype(np.float32)
    nan = np.full_like(logprob, np.nan)
    stats = TokenStats(
        token_ids=np.concatenate(ids).astype(np.int64),
        logprob=logprob,
        mu=nan,
        sigma=nan.copy(),
        rank=np.full(len(logprob), -1, dtype=np.int64),
        top1_logprob=nan.copy(),
        n_bytes_scored=n_bytes if loaded.adds_bos else n_bytes - tokens.first_token_bytes,
        n_tokens=len(tokens.content_ids),
        n_windows=len(segments),
        **common,
    )
    return replace(stats, gradient_norms=(norm_1, norm_2, norm_inf))
