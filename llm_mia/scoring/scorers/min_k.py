"""Min-K% Prob and Min-K%++: the mean over the least likely k-fraction of tokens."""

from __future__ import annotations

import math

import numpy as np

from llm_mia.backends.token_stats import TokenStats
from llm_mia.scoring.scorers._checks import require_scored
from llm_mia.scoring.scorers.params import Interval
from llm_mia.scoring.scorers.registry import ScoreUnavailable, register


def _mean_of_smallest(values: np.ndarray, k: float) -> float:
    """Mean of the max(1, floor(k*T)) smallest values (floor as in the published code), in float64."""
    if not 0.0 < k <= 1.0:
        raise ScoreUnavailable(f"k must be in (0, 1], got {k}")
    count = max(1, math.floor(k * values.shape[0]))
    smallest = np.partition(values.astype(np.float64), count - 1)[:count]
    return float(np.mean(smallest))


K = Interval(float, 0, 1, closed="right")  # the fraction of tokens averaged: (0, 1]


@register("min_k", constraints={"k": K})
def min_k(target: TokenStats, *, k: float = 0.2) -> float:
    """Min-K% Prob: score = mean of the max(1, floor(k*T)) smallest token log-probs l_t.

    Unseen text tends to contain a few very unlikely tokens; member text has fewer such outliers.
    Direction: higher = more likely member. Hyperparameter: k in (0, 1], default 0.2; k = 1 equals ``loss``.
    Source: Shi et al. 2023, "Detecting Pretraining Data from Large Language Models".
    Example: l = [-1, -5, -2, -4, -3], k = 0.4 -> floor(2.0) = 2 smallest are -5, -4 -> score -4.5.
    """
    return _mean_of_smallest(require_scored(target).logprob, k)


@register("min_k_plus_plus", needs=("logprob", "mu", "sigma"), constraints={"k": K})
def min_k_plus_plus(target: TokenStats, *, k: float = 0.2) -> float:
    """Min-K%++: z_t = (l_t - mu_t) / sigma_t, score = mean of the max(1, floor(k*T)) smallest z_t.

    mu_t and sigma_t are the mean and standard deviation of log p under the model's own next-token
    distribution p_t, so z_t asks whether x_t is a local mode of the distribution (members tend to be).
    Where sigma_t = 0 (all mass on equally likely tokens) z_t is set to 0. Direction: higher = more likely
    member. Hyperparameter: k in (0, 1], default 0.2. Source: Zhang et al. 2024, "Min-K%++: Improved
    Baseline for Detecting Pre-Training Data from Large Language Models".
    Example: l = [-1, -3], mu = [-2, -2], sigma = [1, 2], k = 0.5 -> z = [1, -0.5] -> score -0.5.
    """
    stats = require_scored(target)
    logprob = stats.logprob.astype(np.float64)
    mu = stats.mu.astype(np.float64)
    sigma = stats.sigma.astype(np.float64)
    safe_sigma = np.where(sigma > 0, sigma, 1.0)
    z = np.where(sigma > 0, (logprob - mu) / safe_sigma, 0.0)
    return _mean_of_smallest(z, k)
