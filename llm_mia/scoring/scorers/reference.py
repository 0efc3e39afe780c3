"""Reference-model scorer: how much easier the target finds a text than a reference model does."""

from __future__ import annotations

from llm_mia.backends.token_stats import TokenStats
from llm_mia.scoring.scorers._checks import require_scored
from llm_mia.scoring.scorers.registry import register


def nll_per_byte(stats: TokenStats) -> float:
    """Summed NLL over the scored tokens divided by the UTF-8 bytes those tokens cover (nats per byte)."""
    return stats.total_nll / stats.n_bytes_scored


@register("reference")
def reference(target: TokenStats, reference: TokenStats) -> float:
    """Reference difference: score = NLL_ref(x) - NLL_target(x).

    A text the target finds much easier than a reference model (trained on similar data without it) was
    probably in the target's training set. With the same tokenizer both NLLs are per token; with different
    tokenizers, token counts are not comparable, so both are per UTF-8 byte (summed NLL / bytes covered by
    the scored tokens). Direction: higher = more likely member; 0 when the reference is the target itself.
    Source: Carlini et al. 2021 (reference-model ratio); MIMIR (Duan et al. 2024).
    Example: same tokenizer, NLL_ref = 3.0, NLL_target = 2.5 -> 0.5.
    """
    target = require_scored(target)
    reference = require_scored(reference, what="reference model")
    if target.tokenizer_id == reference.tokenizer_id:
        return reference.nll - target.nll
    return nll_per_byte(reference) - nll_per_byte(target)
