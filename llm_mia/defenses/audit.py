"""Empirical privacy audit: a lower bound on epsilon from a membership attack's true- and false-positive rates.

If training is (epsilon, delta)-differentially private, every test that tells whether one record was in the
training data satisfies (Kairouz et al. 2015; used for auditing by Jagielski et al. 2020, "Auditing Differentially
Private Machine Learning: How Private is Private SGD?", NeurIPS, and Nasr et al. 2021, "Adversary Instantiation:
Lower Bounds for Differentially Private Machine Learning", IEEE S&P):

    TPR <= e^epsilon * FPR + delta        and        1 - FPR <= e^epsilon * (1 - TPR) + delta,

so epsilon >= max( ln((TPR - delta) / FPR), ln((1 - FPR - delta) / (1 - TPR)) ). The audit takes the rates with
exact (Clopper-Pearson) bounds in the conservative direction, TPR at its lower and FPR at its upper bound, each
one-sided at (1 - confidence) / 2, so the bound holds with at least ``confidence`` jointly.

Threshold: chosen on one random half of the members and of the non-members (the threshold with the largest
point bound there) and applied to the other half, where the rates are counted; choosing it on the counted texts
would bias the bound upwards.

Assumption, stated with every bound: each text's outcome is an independent Bernoulli trial with the attack's
rate. Texts trained in one run are not independent trials (Jagielski et al. train a model per trial); treating
them so is the "one-run" shortcut, made rigorous differently by Steinke, Nasr and Jagielski 2023 ("Privacy
Auditing with One (1) Training Run", NeurIPS). The bound is a sanity check that can only fail one way: a lower
bound above the accountant's epsilon means the training, the accountant or the attack's bookkeeping is broken.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

ASSUMPTION = (
    "each text's outcome treated as an independent trial (one training run; Steinke et al. 2023 give the rigorous "
    "one-run version); threshold chosen on a random half, rates counted on the other half"
)


def epsilon_bound(tpr: float, fpr: float, delta: float) -> float:
    """max(ln((TPR - delta) / FPR), ln((1 - FPR - delta) / (1 - TPR)), 0): the epsilon these rates imply.

    >>> round(epsilon_bound(0.9, 0.1, 0.0), 4)  # ln(0.9 / 0.1) = ln 9
    2.1972
    """
    bounds = [0.0]
    for hit, miss in ((tpr - delta, fpr), (1 - fpr - delta, 1 - tpr)):
        if hit > 0:
            bounds.append(math.inf if miss <= 0 else math.log(hit / miss))
    return max(bounds)


def epsilon_lower_bound(
    true_positives: int, members: int, false_positives: int, nonmembers: int, *, delta: float, confidence: float = 0.95
) -> dict[str, Any]:
    """The epsilon lower bound from counts (see the module docstring), with the rates and their exact bounds."""
    from llm_mia.stats.metrics import clopper_pearson

    tpr_low, _ = clopper_pearson(true_positives, members, confidence=confidence)
    _, fpr_high = clopper_pearson(false_positives, nonmembers, confidence=confidence)
    return {
        "epsilon_lower_bound": epsilon_bound(tpr_low, fpr_high, delta),
        "tpr": true_positives / members if members else math.nan,
        "fpr": false_positives / nonmembers if nonmembers else math.nan,
        "tpr_lower": tpr_low,
        "fpr_upper": fpr_high,
        "members": members,
        "nonmembers": nonmembers,
        "delta": delta,
        "confidence": confidence,
    }


def audit_scores(
    member_scores: ArrayLike,
    nonmember_scores: ArrayLike,
    *,
    delta: float,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Epsilon lower bound for an attack's scores (higher = member): threshold from one random half, counts from
    the other (see the module docstring). Returns the bound, the threshold, counts, rates and the assumption."""
    members = np.asarray(member_scores, dtype=float)
    nonmembers = np.asarray(nonmember_scores, dtype=float)
    rng = np.random.default_rng(seed)
    m_order, n_order = rng.permutation(len(members)), rng.permutation(len(nonmembers))
    m_fit, m_test = members[m_order[: len(members) // 2]], members[m_order[len(members) // 2 :]]
    n_fit, n_test = nonmembers[n_order[: len(nonmembers) // 2]], nonmembers[n_order[len(nonmembers) // 2 :]]
    best, threshold = -1.0, math.inf
    for candidate in np.unique(np.concatenate([m_fit, n_fit])):
        found = epsilon_lower_bound(
            int((m_fit >= candidate).sum()),
            len(m_fit),
            int((n_fit >= candidate).sum()),
            len(n_fit),
            delta=delta,
            confidence=confidence,
        )["epsilon_lower_bound"]
        if found > best:
            best, threshold = found, float(candidate)
    result = epsilon_lower_bound(
        int((m_test >= threshold).sum()),
        len(m_test),
        int((n_test >= threshold).sum()),
        len(n_test),
        delta=delta,
        confidence=confidence,
    )
    return {**result, "threshold": threshold, "assumption": ASSUMPTION}
