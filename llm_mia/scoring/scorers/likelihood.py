"""Likelihood scorers: loss, perplexity, zlib ratio, lowercase ratio."""

from __future__ import annotations

import math

from llm_mia.backends.token_stats import TokenStats
from llm_mia.scoring.scorers._checks import require_scored
from llm_mia.scoring.scorers.registry import ScoreUnavailable, register


@register("loss")
def loss(target: TokenStats) -> float:
    """Negative mean token loss: score = -NLL = (1/T) sum_t log p(x_t | x_<t).

    Direction: higher (less surprise) = more likely member. Source: Yeom et al. 2018, "Privacy Risk in
    Machine Learning". Example: token log-probs [-1, -3] give score -2.0.
    """
    return -require_scored(target).nll


@register("perplexity")
def perplexity(target: TokenStats) -> float:
    """Negative perplexity: score = -exp(NLL). Same ranking as ``loss``, on the perplexity scale.

    Direction: higher = more likely member. Example: token log-probs [-1, -3] give -exp(2) = -7.389.
    """
    return -math.exp(require_scored(target).nll)


@register("zlib", length_invariant=False)
def zlib(target: TokenStats) -> float:
    """Loss relative to zlib entropy: score = -NLL / len(zlib.compress(utf8(x))).

    Texts that compress well are easy for any model; dividing by the compressed length discounts that.
    Direction: higher = more likely member. Source: Carlini et al. 2021, "Extracting Training Data from
    Large Language Models". The compressed length is taken on the exact text of the document (the engine
    records it as ``TokenStats.zlib_bytes``). Not length-invariant: a per-token mean divided by a total length
    rises towards 0 as texts get longer (or their tokens wider), so dataset-level tests leave it out.
    Example: NLL 2.0 and 50 compressed bytes give -0.04.
    """
    stats = require_scored(target)
    return -stats.nll / stats.zlib_bytes


@register("lowercase")
def lowercase(target: TokenStats, target_lower: TokenStats) -> float:
    """Lowercase ratio: score = NLL(lower(x)) / NLL(x).

    A member's exact casing is memorised, so lowercasing costs it relatively more. Direction: higher = more
    likely member. Needs a second pass of the target model on the lowercased text. Source: Carlini et al.
    2021. Example: NLL(x) = 2.0, NLL(lower(x)) = 3.0 give 1.5.
    """
    original = require_scored(target).nll
    lowered = require_scored(target_lower, what="lowercased text").nll
    if original == 0.0:
        raise ScoreUnavailable("lowercase: NLL of the text is exactly 0, the ratio is undefined")
    return lowered / original
