"""Exact rank statistics for canaries: a published canary ranked among its never-published siblings.

Under the null hypothesis (the model was not trained on the canary) the canary and its S siblings are
exchangeable: they were drawn i.i.d. from the same generator and which one was published was chosen at random
afterwards. So the canary's rank among the S + 1 scores is uniform, and

    p = (1 + #{siblings scoring at least as high as the canary}) / (S + 1)

is an exact p-value (P(p <= t) <= t for every t; ties count against the canary, which only makes it larger).
Source: Carlini et al. 2019, "The Secret Sharer" (rank and exposure); Meeus et al. 2024, "Copyright Traps for
Large Language Models" (trap sequences tested against never-published ones).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def rank_p_value(canary: float, siblings: Sequence[float]) -> tuple[int, float]:
    """(rank, p): rank = 1 + number of siblings scoring >= the canary (1 = the canary scores highest; ties
    against it); p = rank / (S + 1). Higher score = more likely trained on.

    >>> rank_p_value(5.0, [1.0, 2.0, 5.0, 7.0])
    (3, 0.6)
    """
    values = np.asarray(siblings, dtype=float)
    if not np.isfinite(canary) or not np.all(np.isfinite(values)):
        raise ValueError("a canary or sibling has no finite score; score them all before ranking")
    rank = 1 + int((values >= canary).sum())
    return rank, rank / (len(values) + 1)


def exposure(rank: int, siblings: int) -> float:
    """Carlini et al.'s exposure, log2(S + 1) - log2(rank): bits by which the canary stands out (0 = it ranks
    last; log2(S + 1) = it ranks first).

    >>> exposure(1, 999)
    9.965784284662087
    """
    return math.log2(siblings + 1) - math.log2(rank)


def fisher_combined(p_values: Sequence[float]) -> float:
    """Fisher's method: P(chi^2 with 2N degrees of freedom >= -2 sum ln p_i). Valid for independent p-values that
    are uniform or (as the rank p-values are) conservative: -2 ln p_i is then stochastically no larger than a
    chi^2 with 2 degrees of freedom.

    Two p-values: X = -2 (ln 0.01 + ln 0.02) = 17.03, and with 4 degrees of freedom P(chi^2 >= X) =
    e^(-X/2) (1 + X/2) = 0.0019.

    >>> round(fisher_combined([0.01, 0.02]), 4)
    0.0019
    """
    from scipy.stats import chi2

    if not p_values:
        raise ValueError("no p-values to combine")
    statistic = -2.0 * float(np.sum(np.log(np.asarray(p_values, dtype=float))))
    return float(chi2.sf(statistic, 2 * len(p_values)))


def smallest_p_value(siblings: int) -> float:
    """The smallest p-value S siblings allow: 1 / (S + 1)."""
    return 1.0 / (siblings + 1)
