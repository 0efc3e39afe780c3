"""Blind baseline: separates sets written in different styles whatever an attack scores, stays quiet on random
splits at its nominal rate, keeps groups whole, and explains below-chance AUROCs."""

from __future__ import annotations

import numpy as np
import pytest
from rates import assert_at_most

from llm_mia.errors import InputError
from llm_mia.stats.blind_baseline import blind_baseline
from llm_mia.stats.metrics import clopper_pearson

NOUNS = ["river", "mountain", "village", "lantern", "harvest", "meadow", "orchard", "shepherd", "cottage", "willow"]
VERBS = ["wandered", "rested", "gathered", "watched", "followed", "crossed", "remembered", "carried"]
ADJECTIVES = ["quiet", "old", "golden", "misty", "gentle", "distant", "narrow", "weathered"]
TECH_NOUNS = ["server", "cluster", "latency", "throughput", "endpoint", "pipeline", "container", "deployment"]
TECH_VERBS = ["scaled", "deployed", "benchmarked", "refactored", "migrated", "throttled", "indexed", "cached"]
TECH_ADJECTIVES = ["distributed", "async", "stateless", "horizontal", "sharded", "containerized", "serverless"]


def _sentences(rng, nouns, verbs, adjectives, count):
    """Seeded sentences 'The ADJ NOUN VERB the ADJ NOUN near the NOUN.' from the given word lists."""
    texts = []
    for _ in range(count):
        a, b, c = rng.choice(nouns, size=3)
        texts.append(
            f"The {rng.choice(adjectives)} {a} {rng.choice(verbs)} the {rng.choice(adjectives)} {b} near the {c}."
        )
    return texts


@pytest.mark.slow
def test_different_styles_are_separated_and_the_warning_appears_whatever_an_attack_scores():
    rng = np.random.default_rng(0)
    pastoral = _sentences(rng, NOUNS, VERBS, ADJECTIVES, 40)
    technical = _sentences(rng, TECH_NOUNS, TECH_VERBS, TECH_ADJECTIVES, 40)
    result = blind_baseline(pastoral, technical, folds=5, seed=0, n_bootstrap=200)
    assert result.auroc > 0.95 and result.auroc_ci[0] > 0.5 and result.separates
    assert result.permutation_p == pytest.approx(1 / 100) and result.n_permutations == 99
    assert (result.n_members, result.n_nonmembers, len(result.scores)) == (40, 40, 80)
    for best_attack in (None, 0.7, 0.9999):  # an attack that beats it does not silence the warning
        warning = result.warning(best_attack)
        assert warning is not None and "distribution shift" in warning and "rather than membership" in warning
    assert "matches or beats it" in result.warning(0.9999)
    # partly shifted sets: still a warning, even beside a far better attack (the review's 5/5 silent cases)
    partly = blind_baseline(
        pastoral[:30] + technical[:10], pastoral[30:] + technical[10:], folds=5, seed=0, n_bootstrap=200
    )
    assert 0.6 < partly.auroc < 0.95 and partly.auroc_ci[1] < 0.99
    assert "part of its separation can come from the same shift" in partly.warning(0.99)
    assert result.to_dict(0.7)["warning"] == result.warning(0.7)


@pytest.mark.slow
def test_random_splits_rarely_warn():
    rng = np.random.default_rng(1)
    corpus = _sentences(rng, NOUNS + TECH_NOUNS, VERBS + TECH_VERBS, ADJECTIVES + TECH_ADJECTIVES, 400)
    warnings, covers_chance, reps = 0, 0, 40
    for rep in range(reps):
        order = np.random.default_rng(rep).permutation(len(corpus))[:60]
        result = blind_baseline(
            [corpus[i] for i in order[:30]], [corpus[i] for i in order[30:]], seed=rep, n_bootstrap=20
        )
        warnings += result.warning() is not None
        low, high = result.auroc_ci
        covers_chance += low <= result.chance_auroc <= high
        assert f"chance level of {result.chance_auroc:.3f}" in result.figures()
    # nominal 5% for the shift warning plus the below-chance note at 1%
    assert_at_most(warnings, reps, 0.06, "blind-baseline warnings on random splits")
    # out of fold, chance sits below 0.5 on small sets; the interval is calibrated against it, not 0.5
    assert clopper_pearson(covers_chance, reps)[1] >= 0.95, covers_chance


@pytest.mark.slow
def test_groups_stay_whole_and_permute_together():
    rng = np.random.default_rng(4)
    # each "work" has a vocabulary of its own; members and non-members are different works of one genre
    works = [_sentences(rng, rng.choice(NOUNS + TECH_NOUNS, 4), VERBS, ADJECTIVES, 6) for _ in range(16)]
    members = [t for w in works[:8] for t in w]
    nonmembers = [t for w in works[8:] for t in w]
    groups_m = [f"w{i}" for i in range(8) for _ in range(6)]
    groups_n = [f"w{i}" for i in range(8, 16) for _ in range(6)]
    by_text = blind_baseline(members, nonmembers, seed=0, n_bootstrap=20)
    by_work = blind_baseline(
        members, nonmembers, member_groups=groups_m, nonmember_groups=groups_n, seed=0, n_bootstrap=20
    )
    assert by_work.grouped and not by_text.grouped
    # folds of single texts put each work on both sides and learn its words; whole works cannot be learned
    assert by_text.auroc > by_work.auroc
    with pytest.raises(InputError, match="one group per text"):
        blind_baseline(members, nonmembers, member_groups=groups_m[:-1], nonmember_groups=groups_n)


@pytest.mark.slow
def test_shared_texts_explain_an_auroc_below_chance():
    rng = np.random.default_rng(5)
    corpus = _sentences(rng, NOUNS + TECH_NOUNS, VERBS + TECH_VERBS, ADJECTIVES, 80)
    result = blind_baseline(corpus[:40], corpus[20:60], seed=0, n_bootstrap=20)  # 20 texts on both sides
    assert result.shared_texts == 20 and result.below_chance and result.auroc < 0.5
    assert "20 text(s) appear verbatim in both sets" in result.warning()


@pytest.mark.slow
def test_seeded_and_reports_tpr_with_its_n():
    rng = np.random.default_rng(2)
    a = _sentences(rng, NOUNS, VERBS, ADJECTIVES, 12)
    b = _sentences(rng, TECH_NOUNS, TECH_VERBS, TECH_ADJECTIVES, 12)
    first = blind_baseline(a, b, folds=3, seed=5, n_bootstrap=100)
    again = blind_baseline(a, b, folds=3, seed=5, n_bootstrap=100)
    assert first.scores == again.scores and first.permutation_p == again.permutation_p
    assert first.tpr_at_fpr[0.01].n_nonmembers == 12 and not first.tpr_at_fpr[0.01].resolvable


def test_tiny_sets_and_bad_arguments_are_clear_errors():
    with pytest.raises(InputError, match=r"at least 5 texts for 5-fold.*got 3 members and 1 non-members"):
        blind_baseline(["a b"] * 3, ["c d"])
    with pytest.raises(InputError, match="folds must be >= 2"):
        blind_baseline(["a b"] * 3, ["c d"] * 3, folds=1)
    with pytest.raises(InputError, match="not single strings"):
        blind_baseline("some text", ["c d"] * 3)
    with pytest.raises(InputError, match="every text is empty"):
        blind_baseline([""] * 3, [" "] * 3, folds=2)


def test_figures_are_the_attack_figures_of_its_out_of_fold_scores():
    # the blind row is read beside the attacks, so it must be computed exactly like them (but its interval,
    # which is calibrated by refitting under permuted labels)
    from llm_mia.stats.metrics import evaluate_scorer

    rng = np.random.default_rng(3)
    members = _sentences(rng, NOUNS, VERBS, ADJECTIVES, 15)
    nonmembers = _sentences(rng, NOUNS + TECH_NOUNS, VERBS, ADJECTIVES, 15)
    result = blind_baseline(members, nonmembers, folds=3, seed=2, n_bootstrap=100, fprs=(0.1,))
    attack = evaluate_scorer(
        list(result.scores), [1] * 15 + [0] * 15, name="blind baseline", fprs=(0.1,), n_bootstrap=100, seed=2
    )
    assert result.auroc == attack.auroc and result.tpr_at_fpr == attack.tpr_at_fpr and result.roc == attack.roc
    assert result.to_dict()["auroc_ci_method"].startswith("permutation-calibrated")
    assert list(result.to_dict())[:1] + list(result.to_dict())[-1:] == ["method", "warning"]
