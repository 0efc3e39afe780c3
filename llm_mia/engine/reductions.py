"""The engine's per-position reductions of a (rows, V) float32 block of logits to O(1) numbers per row."""

from __future__ import annotations

import torch


def reduce_vocab(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Float32 per-row reductions of (rows, V) logits; consumes ``logits`` in place.

    One exponential per element: with m = max_v logit, e_v = exp(logit_v - m) and S = sum_v e_v,
    log p_v = logit_v - m - log S, mu = (1/S) sum_v e_v log p_v and sigma^2 = (1/S) sum_v e_v (log p_v - mu)^2.
    The variance is two-pass, not E[log p^2] - mu^2, which loses digits to cancellation when log p is nearly
    constant under p (flat distributions).
    """
    target_logit = logits.gather(1, targets[:, None])  # (rows, 1)
    rank = 1 + (logits > target_logit).sum(dim=1)  # (rows,)
    top = logits.amax(dim=1, keepdim=True)  # (rows, 1)
    shifted = logits.sub_(top)  # (rows, V) logit - m <= 0, in place
    weights = shifted.exp()  # (rows, V) e_v, unnormalised probabilities
    total = weights.sum(dim=1, keepdim=True)  # (rows, 1) S >= 1
    log_total = total.log()
    logp = shifted.sub_(log_total)  # (rows, V) log p, in place
    mu = (weights * logp).sum(dim=1) / total[:, 0]  # (rows,)
    centred = logp.sub_(mu[:, None])  # (rows, V) log p - mu, in place
    variance = weights.mul_(centred).mul_(centred).sum(dim=1) / total[:, 0]
    return {
        "logprob": target_logit[:, 0] - top[:, 0] - log_total[:, 0],
        "mu": mu,
        "sigma": variance.clamp_min_(0.0).sqrt_(),
        "rank": rank,
        "top1_logprob": -log_total[:, 0],  # the top token has logit m: log p = -log S
    }
