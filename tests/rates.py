"""Size tests that can fail: a rate of rejections is accepted as "at most alpha" only when the count is consistent
with that, at a power stated in the assertion message.

An interval's *lower* bound at or below alpha accepts a true rate well above it (with 200 repetitions, a true size of
7-8% passes). Here the count is refused when a one-sided exact binomial test of H0: rate <= alpha rejects at level
``CHECK_LEVEL`` (0.01, so a correct test fails 1 run in 100 at most, and the seeded runs are fixed); the message
gives the power of that refusal against a rate of twice alpha.
"""

from __future__ import annotations

from scipy.stats import binom

from llm_mia.stats.metrics import clopper_pearson

CHECK_LEVEL = 0.01


def refusal_count(reps: int, alpha: float) -> int:
    """The smallest count of rejections the check refuses: P(Bin(reps, alpha) >= count) <= CHECK_LEVEL."""
    count = 0
    while binom.sf(count - 1, reps, alpha) > CHECK_LEVEL:
        count += 1
    return count


def assert_at_most(hits: int, reps: int, alpha: float, what: str = "") -> None:
    """Fail when ``hits`` rejections in ``reps`` are evidence (binomial, level 0.01) of a rate above ``alpha``."""
    limit = refusal_count(reps, alpha)
    power = binom.sf(limit - 1, reps, min(1.0, 2 * alpha))
    low, high = clopper_pearson(hits, reps)
    assert hits < limit, (
        f"{what}: {hits}/{reps} = {hits / reps:.3f} [{low:.3f}, {high:.3f}] rejections exceed a rate of {alpha:.3g} "
        f"(refused from {limit}; this check refuses a true rate of {2 * alpha:.3g} with probability {power:.2f})"
    )
