"""Verbatim extraction: does the model, given the start of a passage, continue it word for word?

Carlini, Ippolito, Jagielski, Lee, Tramèr and Zhang, "Quantifying Memorization Across Neural Language Models"
(ICLR 2023): a string s = (p, x) of k prefix tokens p and L target tokens x is *discoverably memorized*
(k-extractable) when greedy decoding from p reproduces x exactly; they use k = 50 and L = 50. Nasr et al. 2023
("Scalable Extraction of Training Data from (Production) Language Models") apply the same test to chat models;
Zhang, Das, Kamath and Tramèr 2024 ("Membership inference attacks cannot prove that a model was trained on your
data") single out verbatim extraction of text that could not be produced by chance as evidence that survives
scrutiny. This module holds the pure part: the statistics of one continuation and the rules that turn them
into per-passage flags. No model is called here.

Per passage, with true target tokens x_1..x_L and generated tokens g_1..g_L' (L' <= L: a model may stop at its
end-of-text token), in the target model's tokens:

    match_tokens  M = max{ j : g_i = x_i for every i <= j }                  (0..L; tokens before the first mismatch)
    lcs_tokens    C = max{ n : g[a:a+n] = x[b:b+n] for some a, b }            (0..L; longest common token substring)
    exact         E = [M = L]                                                  (Carlini's k-extractable)
    extracted     [M >= m]                                                     (m = ``min_match``, default L)

Higher is more likely a member, as for every score in llm-mia. C >= M always; C catches a continuation that
reproduces the text after a slip (a changed comma, then 30 tokens verbatim).

**Chance check** (needs no control works): the same prefixes greedily continued by a *reference* model that
cannot have seen the work. Text that any model continues from its prefix (a licence, boilerplate, a list, a
quotation everybody repeats) is "extracted" without training on the work; a passage whose reference
continuation matches at least ``formulaic_tokens`` tokens (default m / 2) is called formulaic, reported apart,
and left out of every claim: of the per-passage evidence and of the work-level test alike (on both sides, by a
rule that reads neither the target model nor the labels, so the test's exchangeability is kept).

**Several samples** (an endpoint that does not honour temperature 0, or ``samples`` > 1 asked for): each
passage's samples are ranked by (M, C) and the best one kept (:func:`best_of`), as Carlini et al.'s and Nasr et
al.'s "any of n generations" rule; the rule and n are stated with every result, and the same rule applies to
the suspect work, the control works and the reference model alike, so the test stays valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from llm_mia.errors import LlmMiaError

DEFAULT_PREFIX_TOKENS = 50  # k, as Carlini et al. 2023
DEFAULT_TARGET_TOKENS = 50  # L, as Carlini et al. 2023
FEATURES = ("match_tokens", "lcs_tokens", "extracted")
BEST_OF_RULE = "of n continuations, the one with the longest exact match (then the longest common substring)"

PASSAGE_ASSUMPTION = (
    "a model that did not see a text continues it word for word from its prefix only when the text is predictable "
    "from that prefix (formulaic: a licence, boilerplate, a list, a quotation everybody repeats); the reference "
    "model, which did not see the work, stands in for such a model, and the passages it also continues are left "
    "out of the claim"
)
PASSAGE_GUARANTEE = (
    "none in numbers for one passage: the rate at which the target continues passages of the control works (unseen "
    "by assumption) verbatim is reported beside it, with an exact interval, as the measured false-extraction rate"
)


def match_length(generated: Sequence[int], target: Sequence[int]) -> int:
    """M: tokens of ``target`` reproduced by ``generated`` before the first mismatch.

    >>> match_length([5, 6, 7, 9], [5, 6, 7, 8]), match_length([1], [2, 1]), match_length([4, 5], [4, 5, 6])
    (3, 0, 2)
    """
    g, x = np.asarray(generated, dtype=np.int64), np.asarray(target, dtype=np.int64)
    n = min(len(g), len(x))
    mismatch = np.flatnonzero(g[:n] != x[:n])
    return int(mismatch[0]) if len(mismatch) else n


def longest_common_substring(generated: Sequence[int], target: Sequence[int]) -> int:
    """C: the length of the longest run of tokens found contiguously in both sequences (dynamic programme over
    the (len g, len x) equality matrix, row by row: run[i][j] = run[i-1][j-1] + 1 where g_i = x_j, else 0).

    >>> longest_common_substring([9, 1, 2, 3, 9], [1, 2, 3, 4]), longest_common_substring([], [1, 2])
    (3, 0)
    """
    g, x = np.asarray(generated, dtype=np.int64), np.asarray(target, dtype=np.int64)
    if len(g) == 0 or len(x) == 0:
        return 0
    equal = g[:, None] == x[None, :]  # (len g, len x)
    run = np.zeros(len(x) + 1, dtype=np.int64)  # run lengths ending at (previous row, column j - 1)
    best = 0
    for row in equal:
        run[1:] = np.where(row, run[:-1] + 1, 0)
        best = max(best, int(run.max()))
    return best


@dataclass(frozen=True)
class MatchStats:
    """One continuation measured against the true target (module docstring)."""

    match_tokens: int
    lcs_tokens: int
    target_tokens: int

    @property
    def exact(self) -> bool:
        return self.match_tokens == self.target_tokens

    def extracted(self, min_match: int) -> bool:
        return self.match_tokens >= min_match

    def to_dict(self) -> dict[str, Any]:
        return {"match_tokens": self.match_tokens, "lcs_tokens": self.lcs_tokens, "exact": self.exact}


def match_stats(generated: Sequence[int], target: Sequence[int]) -> MatchStats:
    """M, C and L of one continuation (module docstring).

    >>> match_stats([3, 4, 0, 6, 7, 8], [3, 4, 5, 6, 7, 8]).to_dict()
    {'match_tokens': 2, 'lcs_tokens': 3, 'exact': False}
    """
    if len(target) == 0:
        raise LlmMiaError("a passage's target continuation is empty: give at least one target token")
    return MatchStats(match_length(generated, target), longest_common_substring(generated, target), len(target))


def best_of(samples: Sequence[Sequence[int]], target: Sequence[int]) -> tuple[int, MatchStats]:
    """The index and statistics of the best of several continuations by ``BEST_OF_RULE`` (first on ties).

    >>> best_of([[1, 9], [1, 2], [7, 1, 2]], [1, 2, 3])
    (1, MatchStats(match_tokens=2, lcs_tokens=2, target_tokens=3))
    """
    if not samples:
        raise LlmMiaError("no continuation to choose from")
    measured = [match_stats(sample, target) for sample in samples]
    index = max(range(len(measured)), key=lambda i: (measured[i].match_tokens, measured[i].lcs_tokens, -i))
    return index, measured[index]


@dataclass(frozen=True)
class ProbeSettings:
    """k, L and the claim's thresholds. ``min_match``: m, the exact-match length that counts as extracted
    (default L: the exact continuation, Carlini's definition). ``formulaic_tokens``: a passage whose reference
    continuation matches at least this many tokens is formulaic (default m // 2, at least 1)."""

    prefix_tokens: int = DEFAULT_PREFIX_TOKENS
    target_tokens: int = DEFAULT_TARGET_TOKENS
    min_match: int | None = None
    formulaic_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.prefix_tokens < 1:
            raise LlmMiaError(
                f"--prefix-tokens {self.prefix_tokens}: the prefix needs at least 1 token (50 as Carlini et al. 2023)"
            )
        if self.target_tokens < 1:
            raise LlmMiaError(
                f"--target-tokens {self.target_tokens}: the target needs at least 1 token (50 as Carlini et al. 2023)"
            )
        m = self.target_tokens if self.min_match is None else self.min_match
        if not 1 <= m <= self.target_tokens:
            raise LlmMiaError(
                f"--min-match {m} is not in 1..{self.target_tokens} (the target length); omit it to count only "
                f"exact continuations"
            )
        f = max(1, m // 2) if self.formulaic_tokens is None else self.formulaic_tokens
        if not 1 <= f <= self.target_tokens:
            raise LlmMiaError(
                f"--formulaic-tokens {f} is not in 1..{self.target_tokens}; omit it for half of --min-match ({m // 2})"
            )
        object.__setattr__(self, "min_match", m)
        object.__setattr__(self, "formulaic_tokens", f)

    @property
    def passage_tokens(self) -> int:
        """k + L: the passage length every passage is cut to (``llm_mia.io.passages``)."""
        return self.prefix_tokens + self.target_tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def features(stats: MatchStats, min_match: int) -> list[float]:
    """The per-passage feature row fed to the work-level test, in ``FEATURES`` order: M, C and [M >= m]."""
    return [float(stats.match_tokens), float(stats.lcs_tokens), float(stats.extracted(min_match))]


def split_prefix(ids: Sequence[int], prefix_tokens: int) -> tuple[list[int], list[int]]:
    """A passage's token ids cut into (the first k: the prompt, the rest: the target).

    >>> split_prefix([1, 2, 3, 4, 5], 2)
    ([1, 2], [3, 4, 5])
    """
    return list(ids[:prefix_tokens]), list(ids[prefix_tokens:])
