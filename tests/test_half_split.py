"""The passage-level half-split test (Maini et al. 2024) on simulated feature matrices with known shifts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from llm_mia.errors import LlmMiaError
from llm_mia.stats.passage_test import (
    MIN_PASSAGES_PER_SET,
    cohens_d,
    combine_p_values,
    half_split,
    negative_control,
    p_value_curve,
    passage_test,
)

ALPHA = 0.05


def _features(rng: np.random.Generator, n: int, shift: float = 0.0, n_features: int = 3) -> np.ndarray:
    """Correlated membership-like features (as loss, zlib and min-k are), shifted up by ``shift`` for members."""
    common = rng.normal(size=(n, 1))
    return shift + 0.7 * common + 0.7 * rng.normal(size=(n, n_features))


def _binomial_band(trials: int, rate: float, tail: float = 0.0005) -> tuple[int, int]:
    """Counts a Binomial(trials, rate) falls outside with probability about 2 * tail."""
    return int(stats.binom.ppf(tail, trials, rate)), int(stats.binom.isf(tail, trials, rate))


def test_a_known_shift_is_detected_with_enough_passages():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        result = passage_test(_features(rng, 200, shift=0.4), _features(rng, 200), seed=seed)
        assert result.p_value < 0.01
        assert np.median(result.effect_sizes) > 0.2
        assert result.auroc > 0.55
        assert all(split.n_test == (100, 100) and split.n_train == (100, 100) for split in result.splits)


def test_p_value_falls_as_passages_are_added():
    rng = np.random.default_rng(3)
    curve = p_value_curve(_features(rng, 400, shift=0.3), _features(rng, 400), seed=0)
    assert curve[0].n_suspect == MIN_PASSAGES_PER_SET and curve[-1].n_suspect == 400
    assert curve[-1].n_control == 400
    assert curve[-1].p_value < 1e-3 < curve[0].p_value
    assert all(point.p_min <= point.p_median <= point.p_max for point in curve)
    # the last point uses every passage with the same seed: it is the main test
    assert curve[-1].p_value == passage_test(*_regenerate(3, 400, 0.3), seed=0).p_value


def _regenerate(seed: int, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return _features(rng, n, shift=shift), _features(rng, n)


def test_without_a_shift_one_split_rejects_at_about_alpha():
    # Under H0 the held-out half is independent of the fitted weights, so each split's Welch test rejects
    # with probability alpha (times the chance that some weight is positive, ~1 with six features).
    repetitions, rejections = 200, 0
    for seed in range(repetitions):
        rng = np.random.default_rng(1000 + seed)
        result = passage_test(
            rng.normal(size=(40, 6)), rng.normal(size=(40, 6)), splits=1, seed=seed, clip_quantile=0.0
        )
        rejections += result.splits[0].p_value <= ALPHA
    low, high = _binomial_band(repetitions, ALPHA)
    assert low <= rejections <= high, f"{rejections}/{repetitions} rejections, expected {low}..{high}"


@pytest.mark.slow
def test_without_a_shift_the_combined_test_rejects_at_most_alpha():
    repetitions, rejections = 200, 0
    for seed in range(repetitions):
        rng = np.random.default_rng(5000 + seed)
        result = passage_test(_features(rng, 30), _features(rng, 30), splits=3, seed=seed)
        rejections += result.p_value <= ALPHA
    _, high = _binomial_band(repetitions, ALPHA)
    assert rejections <= high


def test_a_suspect_set_that_looks_less_like_members_is_not_flagged():
    # non-negative weights: being *different* in the non-member direction is no evidence of training
    rng = np.random.default_rng(7)
    result = passage_test(_features(rng, 200, shift=-0.8), _features(rng, 200), seed=0)
    assert result.p_value == 1.0
    assert all(min(split.weights) >= 0.0 for split in result.splits)


def test_one_feature_split_matches_the_welch_formula():
    # With one feature, any positive weight gives the same t: Welch's t of the clipped raw feature.
    rng = np.random.default_rng(11)
    train_s, train_c = rng.normal(0.5, 1.0, (30, 1)), rng.normal(0.0, 2.0, (40, 1))
    test_s, test_c = rng.normal(0.5, 1.0, (25, 1)), rng.normal(0.0, 2.0, (35, 1))
    split = half_split(train_s, train_c, test_s, test_c, clip_quantile=0.1)
    train = np.r_[train_s[:, 0], train_c[:, 0]]
    low, high = np.percentile(train, 10), np.percentile(train, 90)
    a, b = np.clip(test_s[:, 0], low, high), np.clip(test_c[:, 0], low, high)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert split.weights[0] > 0
    assert split.t_statistic == pytest.approx(t, rel=1e-9)
    assert split.degrees_of_freedom == pytest.approx(df, rel=1e-9)
    assert split.p_value == pytest.approx(stats.t.sf(t, df), rel=1e-9)


def test_weights_and_clipping_come_from_the_training_half_only():
    rng = np.random.default_rng(5)
    train_s, train_c = _features(rng, 50, shift=0.5), _features(rng, 50)
    first = half_split(train_s, train_c, _features(rng, 50, shift=0.5), _features(rng, 50))
    wild_test = _features(rng, 50, shift=0.5) * 100.0
    second = half_split(train_s, train_c, wild_test, _features(rng, 50))
    assert first.weights == second.weights


def test_outliers_are_clipped_before_the_fit():
    rng = np.random.default_rng(9)
    suspect, control = _features(rng, 200, shift=0.4), _features(rng, 200)
    polluted = control.copy()
    polluted[:4] = 1e6  # four absurd control passages (e.g. a table of numbers) in the member direction
    assert passage_test(suspect, polluted, seed=0).p_value < 0.01


def test_negative_control_uses_whole_sources_or_contiguous_halves():
    rng = np.random.default_rng(0)
    control = _features(rng, 40)
    one_big_source = ["big"] * 35 + ["small"] * 5
    assert "first and second half" in negative_control(control, groups=one_big_source, seed=0).note
    assert negative_control(control, seed=0).note.endswith("(one control source)")
    sources = [f"s{i // 10}" for i in range(40)]
    assert "whole sources" in negative_control(control, groups=sources, seed=0).note


def test_contiguous_halves_catch_drift_within_one_control_source():
    # a control source whose second half differs (a later part written differently): random passage halves
    # would mix the two parts and miss it; the contiguous halves compare them, as the main test compares works
    rng = np.random.default_rng(3)
    control = np.vstack([_features(rng, 100), _features(rng, 100, shift=0.8)])
    assert negative_control(control, seed=0).p_value <= ALPHA


def test_same_seed_same_result_other_seed_other_splits():
    rng = np.random.default_rng(8)
    suspect, control = _features(rng, 60, shift=0.2), _features(rng, 60)
    first, again = (json.dumps(passage_test(suspect, control, seed=1).to_dict()) for _ in range(2))
    assert first == again  # (as text: a split without evidence has df = NaN, and NaN != NaN)
    assert (
        passage_test(suspect, control, seed=1).p_values.tolist()
        != passage_test(suspect, control, seed=2).p_values.tolist()
    )


def test_combined_p_value_is_twice_the_median():
    # hand-computed: median of (0.01, 0.02, 0.5) is 0.02
    assert combine_p_values([0.01, 0.02, 0.5]) == pytest.approx(0.04)
    assert combine_p_values([0.4, 0.9]) == 1.0
    # valid under dependence: identical uniform p-values (the worst case) reject at most alpha
    uniform = np.random.default_rng(0).uniform(size=20_000)
    rate = np.mean([combine_p_values([p] * 5) <= ALPHA for p in uniform])
    assert rate <= ALPHA


def test_cohens_d_by_hand():
    # means 2 and 1, both sample variances 1: d = 1
    assert cohens_d([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]) == pytest.approx(1.0)
    # means 3 and 1; variances 4 (n=3) and 1 (n=3): pooled = (2*4 + 2*1)/4 = 2.5
    assert cohens_d([1.0, 3.0, 5.0], [0.0, 1.0, 2.0]) == pytest.approx(2.0 / math.sqrt(2.5))


def test_too_few_passages_name_the_counts_and_the_minimum():
    rng = np.random.default_rng(0)
    with pytest.raises(LlmMiaError, match=r"at least 8 suspect and 8 control passages.*got 5 suspect and 30 control"):
        passage_test(rng.normal(size=(5, 2)), rng.normal(size=(30, 2)))


def test_bad_inputs_are_refused_with_the_fix():
    rng = np.random.default_rng(0)
    suspect, control = rng.normal(size=(20, 2)), rng.normal(size=(20, 3))
    with pytest.raises(LlmMiaError, match="same scorers"):
        passage_test(suspect, control)
    holes = rng.normal(size=(20, 2))
    holes[3, 1] = np.nan
    with pytest.raises(LlmMiaError, match="row 3"):
        passage_test(holes, rng.normal(size=(20, 2)))
    with pytest.raises(LlmMiaError, match="clip_quantile"):
        passage_test(suspect, rng.normal(size=(20, 2)), clip_quantile=0.5)
    with pytest.raises(LlmMiaError, match="feature names"):
        passage_test(suspect, rng.normal(size=(20, 2)), feature_names=["loss"])
