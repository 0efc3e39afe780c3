"""Shared preconditions for scorers."""

from __future__ import annotations

from llm_mia.backends.token_stats import TokenStats
from llm_mia.scoring.scorers.registry import ScoreUnavailable


def require_scored(stats: TokenStats, *, what: str = "text") -> TokenStats:
    """Raise ScoreUnavailable unless the extraction succeeded and scored at least one token."""
    if not stats.ok:
        raise ScoreUnavailable(f"{what}: {stats.status}")
    if stats.n_scored == 0:
        raise ScoreUnavailable(f"{what}: no scorable tokens")
    return stats
