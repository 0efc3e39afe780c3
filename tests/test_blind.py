"""Blind baseline: separates sets written in different styles, stays at chance on a random split."""

from __future__ import annotations

import numpy as np
import pytest

from llm_mia.blind import blind_baseline
from llm_mia.errors import InputError

NOUNS = ["river", "mountain", "village", "lantern", "harvest", "meadow", "orchard", "shepherd", "cottage", "willow"]
VERBS = ["wandered", "rested", "gathered", "watched", "followed", "crossed", "remembered", "carried"]
ADJECTIVES = ["quiet", "old", "golden", "misty", "gentle", "distant", "narrow", "weathered"]
TECH_NOUNS = [
    "server",
    "cluster",
    "latency",
    "throughput",
    "endpoint",
    "pipeline",
    "container",
    "deployment",
    "cache",
    "query",
]
TECH_VERBS = ["scaled", "deployed", "benchmarked", "refactored", "migrated", "throttled", "indexed", "cached"]
TECH_ADJECTIVES = [
    "distributed",
    "async",
    "stateless",
    "horizontal",
    "sharded",
    "cloud-native",
    "containerized",
    "serverless",
]


def _sentences(rng, nouns, verbs, adjectives, count):
    """Seeded sentences 'The ADJ NOUN VERB the ADJ NOUN near the NOUN.' from the given word lists."""
    texts = []
    for _ in range(count):
        a, b, c = rng.choice(nouns, size=3)
        texts.append(
            f"The {rng.choice(adjectives)} {a} {rng.choice(verbs)} the {rng.choice(adjectives)} {b} near the {c}."
        )
    return texts


def test_different_styles_are_separated_and_the_warning_appears():
    rng = np.random.default_rng(0)
    pastoral = _sentences(rng, NOUNS, VERBS, ADJECTIVES, 40)
    technical = _sentences(rng, TECH_NOUNS, TECH_VERBS, TECH_ADJECTIVES, 40)
    result = blind_baseline(pastoral, technical, folds=5, seed=0, n_bootstrap=200)
    assert result.auroc > 0.95 and result.auroc_ci[0] > 0.9
    assert (result.n_members, result.n_nonmembers, len(result.scores)) == (40, 40, 80)
    for best_attack in (None, 0.7, 0.95):
        warning = result.warning(best_attack)
        assert warning is not None and "distribution shift" in warning and "not membership" in warning
    assert "best attack (AUROC 0.700)" in result.warning(0.7)
    # partly shifted sets: the blind classifier is above chance but an attack far above it is not explained away
    partly = blind_baseline(
        pastoral[:30] + technical[:10], pastoral[30:] + technical[10:], folds=5, seed=0, n_bootstrap=200
    )
    assert 0.6 < partly.auroc < 0.9
    assert partly.warning(0.99) is None
    assert partly.warning(partly.auroc - 0.05) is not None
    assert result.to_dict(0.7)["warning"] == result.warning(0.7)


def test_random_split_of_one_corpus_stays_near_chance_without_warning():
    rng = np.random.default_rng(1)
    corpus = _sentences(rng, NOUNS + TECH_NOUNS, VERBS + TECH_VERBS, ADJECTIVES + TECH_ADJECTIVES, 120)
    order = rng.permutation(len(corpus))
    members, nonmembers = [corpus[i] for i in order[:60]], [corpus[i] for i in order[60:]]
    result = blind_baseline(members, nonmembers, folds=5, seed=0, n_bootstrap=200)
    assert abs(result.auroc - 0.5) < 0.15
    assert result.auroc_ci[0] < 0.5 < result.auroc_ci[1]
    assert result.warning() is None
    assert result.warning(0.55) is None
    assert result.to_dict()["warning"] is None


def test_seeded_and_reports_tpr_with_its_n():
    rng = np.random.default_rng(2)
    a = _sentences(rng, NOUNS, VERBS, ADJECTIVES, 12)
    b = _sentences(rng, TECH_NOUNS, TECH_VERBS, TECH_ADJECTIVES, 12)
    first = blind_baseline(a, b, folds=3, seed=5, n_bootstrap=100)
    assert first.scores == blind_baseline(a, b, folds=3, seed=5, n_bootstrap=100).scores
    assert first.tpr_at_fpr[0.01].n_nonmembers == 12 and not first.tpr_at_fpr[0.01].resolvable


def test_tiny_sets_and_bad_arguments_are_clear_errors():
    with pytest.raises(InputError, match=r"at least 5 member and 5 non-member texts.*got 3 members and 10"):
        blind_baseline(["a b"] * 3, ["c d"] * 10)
    with pytest.raises(InputError, match="folds must be >= 2"):
        blind_baseline(["a b"] * 3, ["c d"] * 3, folds=1)
    with pytest.raises(InputError, match="not single strings"):
        blind_baseline("some text", ["c d"] * 3)
    with pytest.raises(InputError, match="every text is empty"):
        blind_baseline([""] * 3, [" "] * 3, folds=2)


def test_figures_are_the_attack_figures_of_its_out_of_fold_scores():
    # the blind row is read beside the attacks, so it must be computed exactly like them
    from llm_mia.metrics import evaluate_scorer

    rng = np.random.default_rng(3)
    members = _sentences(rng, NOUNS, VERBS, ADJECTIVES, 15)
    nonmembers = _sentences(rng, NOUNS + TECH_NOUNS, VERBS, ADJECTIVES, 15)
    result = blind_baseline(members, nonmembers, folds=3, seed=2, n_bootstrap=100, fprs=(0.1,))
    attack = evaluate_scorer(
        list(result.scores), [1] * 15 + [0] * 15, name="blind baseline", fprs=(0.1,), n_bootstrap=100, seed=2
    )
    assert result.to_dict()["auroc_ci"] == attack.to_dict()["auroc_ci"]
    assert result.tpr_at_fpr == attack.tpr_at_fpr and result.roc == attack.roc
    expected = {key: value for key, value in attack.to_dict().items() if key not in ("name", "n_excluded")}
    assert {key: result.to_dict()[key] for key in expected} == expected
    assert list(result.to_dict())[:1] + list(result.to_dict())[-3:] == ["method", "folds", "seed", "warning"]
