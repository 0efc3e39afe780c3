"""The empirical epsilon audit: a hand computation, a mechanism of known epsilon, and a DP-trained model."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy.stats import beta

from llm_mia.defenses.audit import audit_scores, epsilon_lower_bound
from llm_mia.defenses.training import parse_training_defense
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.io.documents import Document
from llm_mia.known_split.training_config import TrainingConfig
from llm_mia.known_split.training_loop import train_causal_lm
from llm_mia.scoring.pipeline import compute_scores
from llm_mia.scoring.scorers import parse_scorer_specs


def test_the_bound_matches_a_hand_computation() -> None:
    """45 of 50 members and 5 of 50 non-members flagged, delta 0.01, 95%: Clopper-Pearson one-sided 2.5% bounds
    from the beta quantiles, then the larger of the two DP inequalities."""
    tpr_low = beta.ppf(0.025, 45, 50 - 45 + 1)
    fpr_high = beta.ppf(0.975, 5 + 1, 50 - 5)
    expected = max(math.log((tpr_low - 0.01) / fpr_high), math.log((1 - fpr_high - 0.01) / (1 - tpr_low)))
    got = epsilon_lower_bound(45, 50, 5, 50, delta=0.01, confidence=0.95)
    assert got["tpr_lower"] == pytest.approx(tpr_low, rel=1e-9)
    assert got["fpr_upper"] == pytest.approx(fpr_high, rel=1e-9)
    assert got["epsilon_lower_bound"] == pytest.approx(expected, rel=1e-9)
    assert 0.5 < expected < 2.2  # the point rates alone (0.9 vs 0.1) would claim ln 9 = 2.2
    # an attack no better than chance proves nothing
    assert epsilon_lower_bound(25, 50, 25, 50, delta=0.0)["epsilon_lower_bound"] == 0.0


def test_randomised_response_of_known_epsilon_is_bounded_below_it_and_nearly_reached() -> None:
    """A mechanism that is exactly epsilon-DP (randomised response, epsilon = 1): over 40 repetitions the bound
    never exceeds 1 (validity: at most 5% may, at 95%) and comes close to it on 4,000 + 4,000 trials (power)."""
    epsilon = 1.0
    keep = math.exp(epsilon) / (1 + math.exp(epsilon))
    bounds = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        members = (rng.random(4000) < keep).astype(float)
        nonmembers = (rng.random(4000) < 1 - keep).astype(float)
        bounds.append(audit_scores(members, nonmembers, delta=0.0, seed=seed)["epsilon_lower_bound"])
    assert sum(b > epsilon for b in bounds) <= 2, bounds
    assert np.median(bounds) > 0.85, bounds


@pytest.mark.train
def test_a_dp_trained_model_is_not_audited_above_its_accountant(tiny_loaded) -> None:
    """Train the tiny Llama with DP-SGD (epsilon 2) on 24 texts for 4 epochs at a learning rate that would
    memorise them without DP; the loss attack's lower bound must stay below the accountant's epsilon."""
    source = tiny_loaded["llama"]
    rng = np.random.default_rng(0)
    words = [
        "river",
        "mill",
        "fox",
        "hill",
        "geese",
        "lake",
        "baker",
        "bread",
        "town",
        "rain",
        "roof",
        "harbour",
        "ferry",
        "cart",
        "horse",
        "bay",
    ]
    texts = [" ".join(rng.choice(words, size=12)) for _ in range(48)]
    members, _nonmembers = texts[:24], texts[24:]
    config = TrainingConfig(
        epochs=(4,), learning_rate=1e-2, batch_size=4, defense=parse_training_defense("dp:epsilon=2")
    )
    model, record, saved = copy.deepcopy(source.model), {}, {}
    train_causal_lm(
        model,
        source.tokenizer,
        members,
        config=config,
        on_epoch=lambda e, m, loss: saved.update({e: m}),
        progress=False,
        record=record,
    )
    trained = copy.copy(source)
    trained.model = saved[4]
    documents = [Document(id=str(i), text=t) for i, t in enumerate(texts)]
    rows = compute_scores(
        documents,
        parse_scorer_specs(["loss"], has_reference=False),
        models={"target": trained},
        settings=ExtractionSettings(progress=False),
    ).rows
    scores = np.array([row["loss"] for row in rows])
    audit = audit_scores(scores[:24], scores[24:], delta=record["privacy"]["delta"])
    assert record["privacy"]["epsilon"] <= 2.0
    assert audit["epsilon_lower_bound"] <= record["privacy"]["epsilon"], (audit, record["privacy"])
