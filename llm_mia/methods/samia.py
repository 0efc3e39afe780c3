"""SaMIA: how much of a text's second half does the model write when sampled from its first half?

Kaneko, Ma, Wata and Okazaki, "Sampling-based Pseudo-Likelihood for Membership Inference Attacks"
(arXiv 2404.11262; reference code github.com/nlp-titech/samia). For a text of W whitespace-separated words, the
prefix is its first floor(r * W) words (r = ``prefix_ratio``, 0.5) and the reference suffix the rest. The model
continues the prefix n times (``samples``, 10) by sampling at temperature 1 with top-k 50; each continuation's
words c are compared with the suffix's words s by ROUGE-1 recall,

    R(c, s) = sum_w min(count_c(w), count_s(w)) / |s|,

and the score is the mean of R over the samples: higher = the model reproduces more of the text = more likely a
member. ``samia_zlib`` multiplies each R by the zlib-compressed length in bytes of the continuation, as the
reference code's ``--zlib`` option does.

Deviations from the reference code, each for a stated reason: continuations are capped at
``max_new_tokens`` (default 2 tokens per suffix word + 8) instead of running to a 1,024-token total, which keeps
the cost bounded and stops long samples from buying recall by sheer length; the prefix is sent exactly as cut
(the reference decodes the whole generation and re-splits it at the nominal length, which assumes the prefix
decodes to itself); each text's samples are drawn from a generator seeded by the run's seed and the text's
SHA-256, so a text's score does not depend on the other texts in the run; a chat-only endpoint receives the
prefix after the instruction ``CHAT_INSTRUCTION`` (SaMIA was defined for completion models).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence

CHAT_INSTRUCTION = "Continue the following text, writing only the continuation:\n\n"


def split_text(text: str, prefix_ratio: float = 0.5) -> tuple[str, list[str]]:
    """(prefix: the first floor(r * W) words joined by spaces, suffix: the remaining words).

    >>> split_text("one two three four five")
    ('one two', ['three', 'four', 'five'])
    """
    words = text.split()
    cut = int(len(words) * prefix_ratio)
    return " ".join(words[:cut]), words[cut:]


def rouge1_recall(candidate: Sequence[str], reference: Sequence[str]) -> float:
    """Unigram overlap (with counts clipped) divided by the reference's length; 0 when either is empty.

    >>> rouge1_recall("the cat sat on the mat".split(), "the cat lay on the rug".split())
    0.6666666666666666
    """
    if not candidate or not reference:
        return 0.0
    overlap = Counter(candidate) & Counter(reference)
    return sum(overlap.values()) / len(reference)


def samia_scores(continuations: Sequence[str], suffix: Sequence[str]) -> tuple[float, float]:
    """(mean ROUGE-1 recall of the continuations against the suffix, the same with each times its zlib length)."""
    recalls = [rouge1_recall(c.split(), suffix) for c in continuations]
    weighted = [
        r * len(zlib.compress(" ".join(c.split()).encode("utf-8"))) for r, c in zip(recalls, continuations, strict=True)
    ]
    return sum(recalls) / len(recalls), sum(weighted) / len(weighted)
