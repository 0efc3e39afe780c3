"""Calibration: p-values and thresholds by hand, and simulations of their error-rate guarantees."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import kstest

from llm_mia.calibration import (
    FprCalibrator,
    benjamini_hochberg,
    calibrate,
    empirical_p_values,
    split_controls,
)
from llm_mia.errors import InputError, LlmMiaError


def test_p_values_hand_computed():
    controls = [0.0, 1.0, 1.0, 2.0]
    # s = 1.0: controls >= 1.0 are 1.0, 1.0, 2.0 -> (1 + 3) / 5
    p = empirical_p_values([1.0, 2.5, -4.0, 1.5, np.nan], controls)
    assert p[:4].tolist() == pytest.approx([4 / 5, 1 / 5, 5 / 5, 2 / 5])
    assert np.isnan(p[4])


def test_threshold_rule_equals_p_value_rule():
    rng = np.random.default_rng(0)
    controls = rng.integers(0, 30, size=200).astype(float)  # ties
    scores = rng.integers(0, 32, size=500).astype(float)
    for fpr in (0.01, 0.05, 0.2):
        calibrator = FprCalibrator(fpr=fpr).fit(controls)
        assert np.array_equal(calibrator.predict(scores), calibrator.p_values(scores) <= fpr)


def test_threshold_hand_computed():
    # n = 9 controls, fpr = 0.2: p <= 0.2 needs 1 + #{controls >= s} <= 2, i.e. s above the 2nd largest (8.0)
    calibrator = FprCalibrator(fpr=0.2).fit([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    assert calibrator.threshold_ == 8.0
    assert calibrator.predict([8.0, 8.5, np.nan]).tolist() == [False, True, False]


def test_unfitted_use_and_too_few_controls_are_clear_errors():
    with pytest.raises(LlmMiaError, match="not fitted yet"):
        FprCalibrator().p_values([1.0])
    with pytest.raises(InputError, match=r"50 controls cannot reach FPR 0.01.*at least 99 controls"):
        FprCalibrator(fpr=0.01).fit(np.arange(50.0))
    FprCalibrator(fpr=0.01).fit(np.arange(99.0))  # 1/(99+1) = 0.01 is attainable
    with pytest.raises(InputError, match="fpr must lie strictly between 0 and 1"):
        FprCalibrator(fpr=1.5).fit(np.arange(10.0))
    with pytest.raises(InputError, match="NaN"):
        FprCalibrator().fit([1.0, np.nan])


def test_split_controls_is_disjoint_complete_and_seeded():
    controls = np.arange(101.0)
    fit_part, heldout, fit_index, heldout_index = split_controls(controls, holdout=0.3, seed=4)
    assert len(heldout) == 30 and len(fit_part) == 71
    assert set(fit_index).isdisjoint(heldout_index) and set(fit_index) | set(heldout_index) == set(range(101))
    assert np.array_equal(split_controls(controls, holdout=0.3, seed=4)[1], heldout)
    with pytest.raises(InputError, match="holdout must lie strictly between 0 and 1"):
        split_controls(controls, holdout=1.0)


def test_fpr_threshold_keeps_realised_fpr_within_clopper_pearson_bound():
    # non-members ~ N(0, 1); fit on half of 1000 controls, check on the other half, then draw fresh non-members
    upper_held, two_sided_held, realised = 0, 0, []
    for rep in range(200):
        rng = np.random.default_rng(rep)
        calibrator = calibrate(rng.normal(size=1000), fpr=0.05, holdout=0.5, seed=rep)
        fresh = rng.normal(size=50_000)
        fpr = float(np.mean(fresh > calibrator.threshold_))
        low, high = calibrator.fpr_check_.fpr_ci
        upper_held += fpr <= high
        two_sided_held += low <= fpr <= high
        realised.append(fpr)
    assert upper_held >= 0.95 * 200
    assert two_sided_held >= 0.93 * 200
    # conformal guarantee: expected FPR <= (k + 1) / (n + 1) = 25 / 501 for n = 500 fitted controls
    assert np.mean(realised) <= 25 / 501 + 0.003


def test_two_sided_clopper_pearson_at_one_percent_fpr():
    held = 0
    for rep in range(200):
        rng = np.random.default_rng(10_000 + rep)
        calibrator = calibrate(rng.normal(size=1000), fpr=0.01, holdout=0.5, seed=rep)
        fpr = float(np.mean(rng.normal(size=50_000) > calibrator.threshold_))
        low, high = calibrator.fpr_check_.fpr_ci
        held += low <= fpr <= high
    assert held >= 0.95 * 200


def test_p_values_of_fresh_nonmembers_are_uniform():
    rng = np.random.default_rng(42)
    calibrator = FprCalibrator().fit(rng.standard_t(df=3, size=5000))  # any continuous null works
    p = calibrator.p_values(rng.standard_t(df=3, size=1000))
    assert kstest(p, "uniform").pvalue > 0.01
    # members (shifted up) get small p-values
    assert np.median(calibrator.p_values(rng.standard_t(df=3, size=1000) + 3)) < 0.05


def test_benjamini_hochberg_hand_computed():
    # sorted 0.01 0.03 0.04 0.2 -> m p / j = 0.04 0.06 0.0533 0.2 -> running minimum from the top
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.2, np.nan])
    assert adjusted[:4].tolist() == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])
    assert np.isnan(adjusted[4])


def test_verdicts_wording_and_three_outcomes():
    controls = np.arange(1.0, 100.0)  # 99 controls: p <= 0.02 needs #{controls >= s} <= 1
    calibrator = FprCalibrator(fpr=0.02).fit(controls)
    verdicts = calibrator.verdicts(
        [150.0, 10.0, None], ids=["hit", "typical", "broken"], reasons=[None, None, "empty text"]
    )
    assert [v.verdict for v in verdicts] == ["member", "non-member", "inconclusive"]
    assert verdicts[0].p_value == pytest.approx(1 / 100)
    assert verdicts[0].statement.startswith("consistent with training on this text (p = 0.01")
    assert "FPR controlled at 0.02 on 99 controls" in verdicts[0].statement
    assert verdicts[1].statement.startswith("not distinguishable from unseen text")
    assert "empty text" in verdicts[2].statement and verdicts[2].p_value is None
    assert all("prove" not in v.statement for v in verdicts)


def test_bh_inconclusive_outcome():
    calibrator = FprCalibrator(fpr=0.05, adjust="bh").fit(np.arange(1.0, 1000.0))
    scores = [2000.0] * 3 + [990.0] + list(np.linspace(1, 500, 50))
    verdicts = calibrator.verdicts(scores)
    # p = 0.001 for the three, adjusted 0.001 * 54 / 3 = 0.018 <= 0.05: members
    assert [v.verdict for v in verdicts[:3]] == ["member"] * 3
    assert "false discovery rate controlled at 0.05" in verdicts[0].statement
    # s = 990: p = 11 / 1000 = 0.011 <= 0.05 alone; adjusted 0.011 * 54 / 4 = 0.1485 > 0.05
    assert verdicts[3].verdict == "inconclusive"
    assert verdicts[3].p_value == pytest.approx(0.011) and verdicts[3].p_adjusted == pytest.approx(0.1485)
    assert all(v.verdict == "non-member" for v in verdicts[4:])


def test_round_trip_through_json():
    rng = np.random.default_rng(3)
    calibrator = calibrate(rng.normal(size=400), fpr=0.05, seed=1)
    rebuilt = FprCalibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    scores = rng.normal(size=50)
    assert rebuilt.threshold_ == calibrator.threshold_
    assert np.array_equal(rebuilt.p_values(scores), calibrator.p_values(scores))
    assert rebuilt.fpr_check_ == calibrator.fpr_check_
    data = calibrator.to_dict()
    data["threshold"] += 1
    with pytest.raises(InputError, match="does not match"):
        FprCalibrator.from_dict(data)
