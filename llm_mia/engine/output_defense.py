"""What a deployment defended at inference time returns, as the engine's reductions of it.

The defenses and their settings are defined in :mod:`llm_mia.defenses.output`; a loaded model carries one
(``LoadedModel.output_defense``) and the extraction engine calls :func:`reduce_defended` on every block of
logits instead of the plain reductions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from llm_mia.defenses.output import OutputDefense
from llm_mia.engine.reductions import reduce_vocab
from llm_mia.errors import InternalError


def reduce_defended(
    defense: OutputDefense, logits: torch.Tensor, targets: torch.Tensor, seeds: Sequence[int] | None
) -> dict[str, Any]:
    """The engine's reductions (``llm_mia.engine.reductions.reduce_vocab``) of what a deployment defended by
    ``defense`` returns for (rows, V) float32 ``logits``; ``seeds``: one per row (noise only, from
    :func:`llm_mia.defenses.output.row_seeds`)."""
    if defense.kind == "temperature":
        return reduce_vocab(logits.div_(defense.get("t")), targets)
    if defense.kind == "noise":
        return reduce_vocab(logits.add_(defense_noise(defense, logits.shape, seeds, logits.device)), targets)
    logp = torch.log_softmax(logits, dim=-1)
    if defense.kind == "round":
        return _reduce_returned(torch.round(logp, decimals=defense.get("decimals")), targets)
    k = min(defense.get("k"), logp.shape[1])
    kth = logp.topk(k, dim=1).values[:, -1:]  # (rows, 1) the smallest value returned
    return _reduce_returned(logp.masked_fill_(logp < kth, float("-inf")), targets, k=k)


def defense_noise(defense: OutputDefense, shape: torch.Size, seeds: Sequence[int] | None, device: Any) -> torch.Tensor:
    """The noise a ``noise`` defense adds to (rows, V) logits: one seeded draw per row (``seeds`` from
    :func:`llm_mia.defenses.output.row_seeds`)."""
    if seeds is None or len(seeds) != shape[0]:
        raise InternalError("noise defense: one seed per scored row is needed")  # the engine passes them
    scale = defense.get("scale")
    rows = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        if defense.get("distribution") == "gaussian":
            rows.append(torch.randn(shape[1], generator=generator) * scale)
        else:  # Laplace by inverse CDF of one uniform draw per entry: -S sign(u) log(1 - 2|u|), u in (-1/2, 1/2)
            u = torch.rand(shape[1], generator=generator, dtype=torch.float64) - 0.5
            rows.append((-scale * torch.sign(u) * torch.log1p(-2 * u.abs())).float())
    return torch.stack(rows).to(device)


def _reduce_returned(values: torch.Tensor, targets: torch.Tensor, *, k: int | None = None) -> dict[str, Any]:
    """Reductions of returned log-probability values (-inf where none is returned), not renormalised: the token's
    value as returned (or, hidden by top-k, the smallest returned value and rank k + 1); mu and sigma of the
    returned values weighted by their softmax."""
    target = values.gather(1, targets[:, None])[:, 0]
    hidden = torch.isinf(target)
    floor = values.masked_fill(torch.isinf(values), float("inf")).amin(dim=1)
    token = torch.where(hidden, floor, target)
    rank = 1 + (values > target[:, None]).sum(dim=1)
    if k is not None:
        rank = torch.where(hidden, torch.full_like(rank, k + 1), rank)
    weights = torch.softmax(values, dim=1)
    finite = torch.where(torch.isinf(values), torch.zeros_like(values), values)
    mu = (weights * finite).sum(dim=1)
    variance = (weights * (finite - mu[:, None]) ** 2).sum(dim=1)
    return {
        "logprob": token,
        "mu": mu,
        "sigma": variance.clamp_min(0.0).sqrt(),
        "rank": rank,
        "top1_logprob": values.amax(dim=1),
    }
