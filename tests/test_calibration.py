"""Calibration: p-values and thresholds by hand, and simulations of their error-rate guarantees."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rates import assert_at_most, refusal_count
from scipy.stats import kstest, norm

from llm_mia.errors import InputError, NotFittedError
from llm_mia.stats.metrics import clopper_pearson
from llm_mia.stats.verdicts import (
    MEMBER,
    FprCalibrator,
    adjust_by_group,
    benjamini_hochberg,
    bh_floor,
    calibrate,
    conditional_false_alarms,
    empirical_p_values,
    exceed_probability,
    group_verdicts,
    simes_p_value,
    split_controls,
)


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
    with pytest.raises(NotFittedError, match="not fitted yet"):
        FprCalibrator().p_values([1.0])
    with pytest.raises(InputError, match=r"50 controls cannot give a marginal FPR of 0.01.*at least 99 controls"):
        FprCalibrator(fpr=0.01).fit(np.arange(50.0))
    FprCalibrator(fpr=0.01).fit(np.arange(99.0))  # 1/(99+1) = 0.01 is attainable
    with pytest.raises(InputError, match=r"at 95% confidence: use at least 299 controls"):
        FprCalibrator(fpr=0.01, guarantee="conditional").fit(np.arange(298.0))
    FprCalibrator(fpr=0.01, guarantee="conditional").fit(np.arange(299.0))
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
    # the marginal guarantee says what it holds over, and how likely this set's FPR is above the target
    assert "FPR <= 0.02 on average over sets of 99 controls (marginal)" in verdicts[0].statement
    assert f"exceeds 0.02 with probability {exceed_probability(99, 1, 0.02):.2g}" in verdicts[0].statement
    assert verdicts[1].statement.startswith("not distinguishable from the control texts")
    assert "empty text" in verdicts[2].statement and verdicts[2].p_value is None
    assert all("prove" not in v.statement for v in verdicts)


def test_bh_inconclusive_outcome():
    calibrator = FprCalibrator(fpr=0.05, adjust="bh").fit(np.arange(1.0, 1000.0))
    scores = [2000.0] * 3 + [990.0] + list(np.linspace(1, 500, 50))
    verdicts = calibrator.verdicts(scores)
    # p = 0.001 for the three, adjusted 0.001 * 54 / 3 = 0.018 <= 0.05: members
    assert [v.verdict for v in verdicts[:3]] == ["member"] * 3
    assert "false discovery rate <= 0.05 across 54 documents, on 999 controls" in verdicts[0].statement
    # s = 990: p = 11 / 1000 = 0.011 <= 0.05 alone; adjusted 0.011 * 54 / 4 = 0.1485 > 0.05
    assert verdicts[3].verdict == "inconclusive"
    assert verdicts[3].p_value == pytest.approx(0.011) and verdicts[3].p_adjusted == pytest.approx(0.1485)
    assert all(v.verdict == "non-member" for v in verdicts[4:])


def test_round_trip_through_json():
    rng = np.random.default_rng(3)
    calibrator = calibrate(rng.normal(size=400), fpr=0.05, holdout=0.5, seed=1)
    rebuilt = FprCalibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    scores = rng.normal(size=50)
    assert rebuilt.threshold_ == calibrator.threshold_
    assert np.array_equal(rebuilt.p_values(scores), calibrator.p_values(scores))
    assert rebuilt.fpr_check_ == calibrator.fpr_check_
    data = calibrator.to_dict()
    data["threshold"] += 1
    with pytest.raises(InputError, match="does not match"):
        FprCalibrator.from_dict(data)


def test_marginal_threshold_exceeds_its_fpr_for_one_control_set_as_often_as_it_says():
    # 100 controls at 1%: the review measured P(realised FPR > 1%) = 0.37; the calibrator says so itself
    exceeded, reps = 0, 400
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        calibrator = FprCalibrator(fpr=0.01).fit(rng.normal(size=100))
        exceeded += norm.sf(calibrator.threshold_) > 0.01  # the exact FPR for N(0, 1) non-members
    said = FprCalibrator(fpr=0.01).fit(np.arange(100.0)).exceed_probability_
    assert said == pytest.approx(0.99**100, rel=1e-6)
    low, high = clopper_pearson(exceeded, reps, confidence=0.999)
    assert low <= said <= high


def test_conditional_threshold_holds_its_fpr_for_the_set_at_hand():
    # the largest k with P(Beta(k + 1, n - k) > alpha) <= delta: the realised FPR exceeds alpha in <= delta of sets
    assert conditional_false_alarms(1000, 0.01, 0.05) == 4
    exceeded, reps = 0, 400
    for rep in range(reps):
        rng = np.random.default_rng(50_000 + rep)
        calibrator = FprCalibrator(fpr=0.01, guarantee="conditional").fit(rng.normal(size=1000))
        exceeded += norm.sf(calibrator.threshold_) > 0.01
    assert_at_most(exceeded, reps, 0.05, "conditional threshold exceeding its FPR")
    assert "with 95% confidence over the 1000 controls drawn" in calibrator.guarantee_statement()


def test_not_comparable_documents_are_inconclusive_and_left_out_of_bh():
    calibrator = FprCalibrator(fpr=0.05, adjust="bh").fit(np.arange(1.0, 1000.0))
    verdicts = calibrator.verdicts([2000.0, 2000.0, 5.0], not_comparable=[None, "900 tokens, outside 40-120", None])
    assert [v.verdict for v in verdicts] == ["member", "inconclusive", "non-member"]
    assert "900 tokens" in verdicts[1].statement and verdicts[1].p_value is None
    assert verdicts[0].p_adjusted == pytest.approx(0.001 * 2)  # two documents enter the adjustment


def test_bh_floor_says_when_a_discovery_is_impossible():
    # the review: 100 controls, 110 documents, 10 strong members: BH flagged none in 2,000 runs, silently
    assert bh_floor(100, 110, 0.05) == 22
    calibrator = FprCalibrator(fpr=0.05, adjust="bh").fit(np.arange(100.0))
    verdicts = calibrator.verdicts([1000.0] * 10 + list(np.linspace(0, 90, 100)))
    assert not any(v.verdict == "member" for v in verdicts)  # as the floor says: 10 < 22
    assert sum(v.verdict == "member" for v in calibrator.verdicts([1000.0] * 22 + [5.0] * 88)) == 22


def test_bh_keeps_false_member_verdicts_among_unseen_documents_rare():
    # 100 unseen documents judged one at a time: about 5 "member" verdicts at 5%; with BH the chance of any is <= 5%
    any_bh, any_alone, reps = 0, 0, 300
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        controls, documents = rng.normal(size=2000), rng.normal(size=100)
        any_alone += any(v.verdict == "member" for v in FprCalibrator(fpr=0.05).fit(controls).verdicts(documents))
        bh = FprCalibrator(fpr=0.05, adjust="bh").fit(controls).verdicts(documents)
        any_bh += any(v.verdict == "member" for v in bh)
    assert any_alone / reps > 0.9
    assert_at_most(any_bh, reps, 0.05, "any false member among 100 unseen documents with BH")


def test_simes_is_the_smallest_bh_adjusted_p_and_groups_adjust_by_hand():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.uniform(size=int(rng.integers(1, 12))) ** 2
        assert simes_p_value(p) == pytest.approx(benjamini_hochberg(p).min())
    # groups a (0.001, 0.2), b (0.5, 0.6), c (0.01), d (no p): Simes 0.002, 0.6, 0.01; BH over the 3 groups with a
    # p-value: 0.006, 0.6, 0.015, so a and c are selected (R = 2 of G = 3); within a, BH then x 3 / 2
    adjustment = adjust_by_group([0.001, 0.2, 0.5, 0.6, 0.01, np.nan], list("aabbcd"), q=0.05)
    assert (adjustment.n_groups, adjustment.n_selected) == (3, 2)
    assert adjustment.group_adjusted[[0, 2, 4]].tolist() == pytest.approx([0.006, 0.6, 0.015])
    assert adjustment.adjusted[[0, 1, 4]].tolist() == pytest.approx([0.003, 0.3, 0.015])
    assert np.isnan(adjustment.adjusted[[2, 3, 5]]).all() and np.isnan(adjustment.group_p[5])


def test_groups_of_one_document_give_the_document_level_verdicts():
    for rep in range(30):
        rng = np.random.default_rng(rep)
        calibrator = FprCalibrator(fpr=0.1, adjust="bh").fit(rng.normal(size=300))
        scores = rng.normal(size=40) + 2.5 * (rng.uniform(size=40) < 0.3)
        plain = calibrator.verdicts(scores)
        grouped = calibrator.verdicts(scores, groups=[f"g{i}" for i in range(40)])
        assert [v.verdict for v in grouped] == [v.verdict for v in plain]
        assert [v.group_verdict for v in grouped] == [v.verdict for v in plain]
        assert {v.adjusted_over for v in grouped} == {"40 groups"} and plain[0].adjusted_over == "40 documents"


def test_grouped_verdicts_say_their_unit():
    calibrator = FprCalibrator(fpr=0.05, adjust="bh").fit(np.arange(1.0, 1000.0))
    # work A: two documents above every control and one typical; work B: one at p = 0.016 and two typical;
    # C: one document with no group; D: one document without a score
    scores = [2000.0, 2000.0, 10.0, 985.0, 20.0, 30.0, 400.0, None]
    groups = ["A", "A", "A", "B", "B", "B", None, "D"]
    verdicts = calibrator.verdicts(scores, ids=[f"d{i}" for i in range(8)], groups=groups)
    assert [v.verdict for v in verdicts] == ["member", "member", "non-member", "inconclusive"] + ["non-member"] * 3 + [
        "inconclusive"
    ]
    first = verdicts[0]
    assert first.adjusted_over == "3 groups" and "Benjamini & Bogomolov 2014" in first.correction
    assert "its group 'A': Simes p = 0.0015" in first.statement  # 3 x 0.001 / 2
    assert "false discovery rate <= 0.05 across 3 groups (Simes within each" in first.statement
    # p = 0.016 alone; Simes over B = 3 x 0.016 = 0.048 <= 0.05 alone, but BH over the 3 groups: 0.048 x 3 / 2
    assert verdicts[3].statement.startswith("inconclusive: p = 0.016 is at most 0.05 for this text alone, but not")
    assert "adjustment over groups" in verdicts[3].statement and verdicts[3].p_adjusted is None
    works = {g.group: g for g in group_verdicts(verdicts)}
    assert list(works) == ["A", "B", "d6", "D"]
    assert (works["A"].verdict, works["A"].n_members, works["A"].n_judged) == ("member", 2, 3)
    assert works["B"].verdict == "inconclusive" and "not after BH over 3 groups" in works["B"].statement
    assert works["d6"].verdict == "non-member" and works["D"].verdict == "inconclusive"
    assert works["D"].p_value is None and "none of its documents" in works["D"].statement
    assert group_verdicts(calibrator.verdicts(scores)) == []  # documents as the unit: no group verdicts


def _works(rng, *, works=20, per_work=10, trained_works=0, trained_per_work=10, shift=4.0):
    """Scores of works x documents with a work effect of SD 1, and 2,000 controls from 400 other works: the
    first ``trained_per_work`` documents of the first ``trained_works`` works are shifted up by ``shift``."""
    index = np.repeat(np.arange(works), per_work)  # (n,)
    trained = (index < trained_works) & (np.tile(np.arange(per_work), works) < trained_per_work)  # (n,)
    scores = rng.normal(size=works)[index] + rng.normal(size=len(index)) + shift * trained
    controls = (rng.normal(size=(400, 1)) + rng.normal(size=(400, 5))).ravel()  # (2000,)
    return scores, index, trained, controls


def _called_works(verdicts, index, works):
    called = np.zeros(works, dtype=bool)
    np.logical_or.at(called, index, [v.verdict == MEMBER for v in verdicts])
    return called


@pytest.mark.slow
def test_groups_as_units_keep_false_discoveries_of_works_within_alpha():
    # 20 works x 10 documents, work effect SD 1, all 10 documents of 5 works trained (+4 SD): BH over the 200
    # documents counts each trained work 10 times, which loosens its threshold, and unseen works with a high effect
    # get a document called a member: on average 0.13 of the works with a member were unseen (53/400 draws below).
    # Simes within works and BH across them: 0.03 (7/400 draws). A false discovery proportion is no count, so each
    # run contributes a Bernoulli(FDP) draw: the draws are Binomial(runs, FDR) exactly, and the check refuses a true
    # FDR of 0.10 with probability 0.93 (400 runs).
    alpha, reps = 0.05, 400
    by_document = by_group = 0
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        scores, index, _, controls = _works(rng, trained_works=5)
        calibrator = FprCalibrator(fpr=alpha, adjust="bh").fit(controls)
        unseen = np.arange(20) >= 5
        for verdicts, counter in (
            (calibrator.verdicts(scores), "document"),
            (calibrator.verdicts(scores, groups=[f"w{g}" for g in index]), "group"),
        ):
            called = _called_works(verdicts, index, 20)
            hit = rng.uniform() < (called & unseen).sum() / max(1, called.sum())
            by_document += hit and counter == "document"
            by_group += hit and counter == "group"
    assert by_document >= refusal_count(reps, alpha), f"BH over documents: {by_document}/{reps}"
    assert_at_most(by_group, reps, alpha, "unseen works among the works called, groups as units")


@pytest.mark.slow
def test_groups_as_units_hold_alpha_when_nothing_was_trained_and_within_selected_works():
    # no work trained: the chance that any work is called is <= alpha (the FDR when every null is true): 6/400;
    # 3 of 10 documents of 5 works trained: the false discovery rate within the works selected, averaged over them
    # (Benjamini & Bogomolov 2014; an unseen work selected counts 1), <= alpha: mean 0.048, 14/400 draws. 400 runs
    # each, Bernoulli draws as above; the check refuses a true rate of 0.10 with probability 0.93.
    alpha, reps = 0.05, 400
    any_called = within = 0
    for rep in range(reps):
        rng = np.random.default_rng(10_000 + rep)
        scores, index, _, controls = _works(rng)
        calibrator = FprCalibrator(fpr=alpha, adjust="bh").fit(controls)
        any_called += _called_works(calibrator.verdicts(scores, groups=index.tolist()), index, 20).any()
        scores, index, trained, controls = _works(rng, trained_works=5, trained_per_work=3)
        verdicts = FprCalibrator(fpr=alpha, adjust="bh").fit(controls).verdicts(scores, groups=index.tolist())
        member = np.array([v.verdict == MEMBER for v in verdicts])
        selected = np.unique(index[[v.group_verdict == MEMBER for v in verdicts]])
        shares = [(member & ~trained & (index == g)).sum() / (member & (index == g)).sum() for g in selected]
        within += rng.uniform() < (np.mean(shares) if shares else 0.0)
    assert_at_most(any_called, reps, alpha, "any work called, nothing trained, groups as units")
    assert_at_most(within, reps, alpha, "false discoveries within the works selected, averaged over them")
