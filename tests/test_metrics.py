"""Metrics against scikit-learn, brute force and hand-computed values; interval coverage; resolution flags; the
best-of-several correction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rates import assert_at_most, refusal_count
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from llm_mia.errors import InputError
from llm_mia.stats.metrics import (
    MIN_FALSE_POSITIVES,
    auroc,
    auroc_interval,
    clopper_pearson,
    evaluate_frame,
    evaluate_scorer,
    format_p_value,
    max_auroc_permutation_test,
    oracle_balanced_accuracy,
    tpr_at_fpr,
)


def _brute_force_roc_points(scores, labels):
    """(fpr, tpr) for the rule "member when score >= t", t over every score and +inf, by counting."""
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    points = []
    for t in [np.inf, *sorted(set(scores.tolist()))]:
        flagged = scores >= t
        points.append((flagged[labels == 0].mean(), flagged[labels == 1].mean()))
    return points


def test_auroc_hand_computed_with_ties():
    # member 2 vs non-members 1, 2: 1 + 0.5; member 3 vs 1, 2: 1 + 1 -> 3.5 / 4
    assert auroc([1.0, 2.0, 2.0, 3.0], [0, 0, 1, 1]) == pytest.approx(0.875)


def test_auroc_matches_sklearn_on_random_arrays():
    rng = np.random.default_rng(1)
    for _ in range(5):
        scores = rng.integers(0, 6, size=40).astype(float)  # many ties
        labels = rng.integers(0, 2, size=40)
        assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


def test_auroc_is_not_flipped_below_chance():
    assert auroc([3.0, 2.0, 1.0, 0.0], [0, 0, 1, 1]) == 0.0


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 0.2], [1, 1], "both members and non-members"),
        ([0.1, 0.2], [0, 2], "labels must be 0"),
        ([0.1, 0.2, 0.3], [0, 1], "same length"),
        ([0.1, float("nan")], [0, 1], "NaN"),
    ],
)
def test_bad_inputs_raise_clear_errors(scores, labels, message):
    with pytest.raises(InputError, match=message):
        auroc(scores, labels)


def test_tpr_at_fpr_hand_computed():
    # non-members 0.1 0.2 0.3 0.4 0.5 | members 0.45 0.6 0.7 0.35 0.05
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.45, 0.6, 0.7, 0.35, 0.05]
    labels = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    # FPR <= 0.2 allows one non-member above threshold: t = 0.45 flags 0.5 (FP) and 0.45, 0.6, 0.7 -> TPR 3/5
    result = tpr_at_fpr(scores, labels, target_fpr=0.2)
    assert (result.tpr, result.achieved_fpr, result.threshold) == (0.6, 0.2, 0.45)
    # 5 non-members x 0.2 = 1 false positive allowed, fewer than 10: not resolved
    assert (result.n_members, result.n_nonmembers, result.resolvable) == (5, 5, False)
    # FPR 0.1 < 1/5: only FPR 0 is reachable: t = 0.6 -> TPR 2/5
    strict = tpr_at_fpr(scores, labels, target_fpr=0.1)
    assert (strict.tpr, strict.achieved_fpr, strict.resolvable) == (0.4, 0.0, False)


def test_tpr_at_fpr_matches_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(5):
        labels = np.r_[np.ones(30, int), np.zeros(70, int)]
        scores = rng.integers(0, 25, size=100).astype(float) + labels * 3
        for target in (0.01, 0.05, 0.2):
            expected = max(tpr for fpr, tpr in _brute_force_roc_points(scores, labels) if fpr <= target)
            assert tpr_at_fpr(scores, labels, target_fpr=target).tpr == pytest.approx(expected)


def test_resolution_flag_and_note():
    rng = np.random.default_rng(3)
    labels = np.r_[np.ones(50, int), np.zeros(200, int)]
    scores = rng.normal(size=250) + labels
    result = tpr_at_fpr(scores, labels, target_fpr=0.01, n_bootstrap=50)
    assert not result.resolvable and result.needed_nonmembers == 2000
    assert "200 non-members, which allow 2 false positive(s)" in result.note()
    assert ">= 2000 non-members" in result.note()
    assert not tpr_at_fpr(scores, labels, target_fpr=0.05, n_bootstrap=50).resolvable  # 10 allowed
    # exactly n x FPR = 20 is resolved
    assert tpr_at_fpr(scores, labels, target_fpr=0.1, n_bootstrap=50).note() is None
    assert MIN_FALSE_POSITIVES == 20


def test_tpr_interval_rechooses_the_threshold_and_covers():
    # members ~ N(d, 1), non-members ~ N(0, 1): true TPR at FPR f = Phi(d - z_{1-f})
    d, target, reps, covered = 1.5, 0.05, 120, 0
    truth = norm.sf(norm.isf(target) - d)
    labels = np.r_[np.ones(100, int), np.zeros(200, int)]
    for rep in range(reps):
        rng = np.random.default_rng(2000 + rep)
        scores = np.r_[rng.normal(d, 1, 100), rng.normal(0, 1, 200)]
        low, high = tpr_at_fpr(scores, labels, target_fpr=target, n_bootstrap=300, seed=rep).tpr_ci
        covered += low <= truth <= high
    # measured 0.93-0.96 over settings; the Clopper-Pearson interval that ignored the threshold covered 40-83%
    assert 0.88 <= covered / reps <= 0.995
    same = tpr_at_fpr(scores, labels, target_fpr=target, n_bootstrap=300, seed=reps - 1)
    assert same.tpr_ci == (low, high)  # seeded


def test_clopper_pearson_closed_forms():
    # k = 0: upper = 1 - (alpha/2)^(1/n); k = n: lower = (alpha/2)^(1/n)
    assert clopper_pearson(0, 20) == pytest.approx((0.0, 1 - 0.025 ** (1 / 20)))
    assert clopper_pearson(20, 20) == pytest.approx((0.025 ** (1 / 20), 1.0))
    with pytest.raises(InputError, match="at least one trial"):
        clopper_pearson(0, 0)


def test_oracle_balanced_accuracy_matches_brute_force():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, size=60)
    labels[:2] = [0, 1]
    scores = rng.integers(0, 10, size=60).astype(float) + labels
    expected = max((tpr + 1 - fpr) / 2 for fpr, tpr in _brute_force_roc_points(scores, labels))
    assert oracle_balanced_accuracy(scores, labels) == pytest.approx(expected)
    assert oracle_balanced_accuracy([0.0, 1.0, 2.0, 3.0], [0, 0, 1, 1]) == 1.0


def test_delong_variance_matches_a_brute_force_computation():
    rng = np.random.default_rng(5)
    members, nonmembers = rng.integers(0, 8, 13).astype(float) + 1, rng.integers(0, 8, 17).astype(float)
    psi = (members[:, None] > nonmembers[None, :]) + 0.5 * (members[:, None] == nonmembers[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    area = psi.mean()
    variance = v10.var(ddof=1) / 13 + v01.var(ddof=1) / 17
    half = norm.ppf(0.975) * np.sqrt(variance) / (area * (1 - area))
    logit = np.log(area / (1 - area))
    expected = (1 / (1 + np.exp(-(logit - half))), 1 / (1 + np.exp(-(logit + half))))
    low, high, method = auroc_interval(np.r_[members, nonmembers], np.r_[np.ones(13), np.zeros(17)])
    assert (low, high) == pytest.approx(expected) and method == "DeLong, logit scale"
    # a strictly increasing transform changes no placement, so the interval is the same
    assert auroc_interval(np.exp(np.r_[members, nonmembers]), np.r_[np.ones(13), np.zeros(17)])[:2] == (low, high)


@pytest.mark.parametrize(("area", "n"), [(0.75, 24), (0.97, 24), (0.9, 80)])
def test_auroc_interval_covers_at_small_n_and_high_auroc(area, n):
    # members ~ N(d, 1), non-members ~ N(0, 1): true AUROC = Phi(d / sqrt(2)); the percentile bootstrap it
    # replaces covered 0.873 at AUROC 0.97 with 24 + 24 texts and collapsed to [1, 1] under perfect separation
    d = np.sqrt(2) * norm.ppf(area)
    labels = np.r_[np.ones(n, int), np.zeros(n, int)]
    covered, reps = 0, 300
    for rep in range(reps):
        rng = np.random.default_rng(1000 + rep)
        low, high, _ = auroc_interval(np.r_[rng.normal(d, 1, n), rng.normal(0, 1, n)], labels)
        covered += low <= area <= high
    assert 0.925 <= covered / reps <= 0.995, covered / reps


def test_perfect_separation_gets_an_exact_bound_not_a_point():
    labels = np.r_[np.ones(24, int), np.zeros(24, int)]
    scores = np.r_[np.arange(24) + 100.0, np.arange(24)]
    low, high, method = auroc_interval(scores, labels)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 24)) and method.startswith("exact")
    assert 0.85 < low < 0.86  # 24 + 24 texts cannot show an AUROC above about 0.86 with 95% confidence
    # the bound is valid: with AUROC just at it, perfect separation happens at most 2.5% of the time
    d = np.sqrt(2) * norm.ppf(low)
    rng = np.random.default_rng(0)
    perfect = np.mean([rng.normal(d, 1, 24).min() > rng.normal(0, 1, 24).max() for _ in range(4000)])
    assert perfect <= 0.025
    assert auroc_interval(-scores, labels)[:2] == pytest.approx((0.0, 1 - low))


def test_best_of_several_scorers_is_corrected():
    # six correlated scorers, no signal: the uncorrected best interval excludes chance far more than 2.5% of the
    # time (benchmarks/false_positives.py --parts simulation counts it); the max-T p-value rejects at about 5%
    rejections, uncorrected, reps = 0, 0, 200
    labels = np.r_[np.ones(40, int), np.zeros(40, int)]
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        common = rng.normal(size=(80, 1))
        matrix = 0.7 * common + 0.7 * rng.normal(size=(80, 6))
        test = max_auroc_permutation_test(matrix, labels, names=list("abcdef"), n_permutations=199, seed=rep)
        rejections += test.family_p[test.best] <= 0.05
        uncorrected += auroc_interval(matrix[:, "abcdef".index(test.best)], labels)[0] > 0.5
    assert_at_most(rejections, reps, 0.05, "max-T corrected best of 6 scorers, no signal")
    assert uncorrected > rejections


def _grouped_no_signal(rng, n_groups=20, per_group=5, scorers=4):
    """Scores of ``n_groups`` works x ``per_group`` documents, half the works members, no membership signal:
    every scorer = the work's offset (SD 1, shared by its documents) + a part shared by the scorers + noise."""
    index = np.repeat(np.arange(n_groups), per_group)  # (n,)
    offset = rng.normal(size=n_groups)[index, None]  # (n, 1)
    matrix = offset + 0.7 * rng.normal(size=(len(index), 1)) + 0.7 * rng.normal(size=(len(index), scorers))
    return matrix, (index < n_groups // 2).astype(int), [f"w{g}" for g in index]


def test_max_t_permutes_whole_groups_when_documents_share_a_group_effect():
    # 20 works x 5 documents, work offset SD 1, no signal: permuting single documents splits every work across
    # both sides, so the null is too narrow (72/400 = 0.18 rejections at 5% here); permuting whole works is exact
    # (26/400 = 0.065 here, within the check). 400 runs x 99 permutations ((1 + #) / 100 is an exact p-value for
    # any number of permutations): the check refuses a true rate of 0.10 with probability 0.93.
    alpha, reps = 0.05, 400
    by_document = by_group = 0
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        matrix, labels, groups = _grouped_no_signal(rng)
        plain = max_auroc_permutation_test(matrix, labels, names=list("abcd"), n_permutations=99, seed=rep)
        grouped = max_auroc_permutation_test(
            matrix, labels, names=list("abcd"), groups=groups, n_permutations=99, seed=rep
        )
        by_document += plain.family_p[plain.best] <= alpha
        by_group += grouped.family_p[grouped.best] <= alpha
    assert (plain.permuted, grouped.permuted) == ("documents (100)", "groups (20)")
    assert by_document >= refusal_count(reps, alpha), f"documents permuted: {by_document}/{reps}"
    assert_at_most(by_group, reps, alpha, "max-T permuting whole groups, no signal")


def test_grouped_max_t_matches_a_slow_reference_and_reduces_to_documents():
    rng = np.random.default_rng(7)
    sizes = [1, 2, 3, 4, 5, 6, 3, 2]  # unequal groups: n_1 changes from one permutation to the next
    index = np.repeat(np.arange(len(sizes)), sizes)
    labels = (index % 2 == 0).astype(int)
    matrix = rng.normal(size=(len(index), 3)) + rng.normal(size=len(sizes))[index, None]
    test = max_auroc_permutation_test(matrix, labels, names=list("abc"), groups=index.tolist(), n_permutations=50)
    reference = np.random.default_rng(0)  # the same draws, read slowly: group labels permuted, AUROCs by sklearn
    group_labels = np.array([labels[index == g][0] for g in range(len(sizes))])
    null_max = []
    for _ in range(50):
        permuted = reference.permutation(group_labels)[index]
        null_max.append(max(roc_auc_score(permuted, matrix[:, k]) for k in range(3)))
    for k, name in enumerate("abc"):
        observed = roc_auc_score(labels, matrix[:, k])
        assert test.aurocs[name] == pytest.approx(observed)
        assert test.family_p[name] == pytest.approx((1 + sum(m >= observed - 1e-12 for m in null_max)) / 51)
    assert test.to_dict()["permuted"] == "groups (8)" and test.n_member_units == 4
    # 70 distinct splits of 8 groups, more than the 50 permutations: the floor is not what limits p here
    assert test.distinct_splits == 70 and "distinct splits" not in test.describe()
    # every document its own group (or no group at all): exactly the document-level test
    singletons = [f"d{i}" for i in range(len(index))]
    singletons = max_auroc_permutation_test(matrix, labels, names=list("abc"), groups=singletons)
    plain = max_auroc_permutation_test(matrix, labels, names=list("abc"))
    assert singletons.family_p == plain.family_p and singletons.permuted == plain.permuted == "documents (26)"
    missing = max_auroc_permutation_test(matrix, labels, names=list("abc"), groups=[None] * len(index))
    assert missing.family_p == plain.family_p


def test_max_t_with_a_group_on_both_sides_permutes_documents_and_says_so():
    rng = np.random.default_rng(1)
    matrix, labels, groups = _grouped_no_signal(rng, n_groups=6)
    groups[0] = "w5"  # a member document filed under a non-member work
    test = max_auroc_permutation_test(matrix, labels, names=list("abcd"), groups=groups, n_permutations=20)
    assert test.unit == "documents" and test.warning.startswith("1 of 6 groups hold both members and non-members")
    assert "this p-value can be too small" in test.describe() and test.to_dict()["warning"] == test.warning
    few = max_auroc_permutation_test(matrix[6:], labels[6:], names=list("abcd"), groups=groups[6:], n_permutations=99)
    assert few.permuted == "groups (5)" and "only 10 distinct splits of 5 groups exist, so no p below 1/10" in (
        few.describe()
    )
    with pytest.raises(InputError, match="one group per document"):
        max_auroc_permutation_test(matrix, labels, names=list("abcd"), groups=groups[:-1])


def test_p_values_are_printed_no_finer_than_their_assumptions():
    assert format_p_value(3.41e-18) == "< 1e-06" and format_p_value(0.0123) == "0.012"


def test_evaluate_scorer_excludes_missing_and_masked_rows():
    scores = [0.1, 0.9, None, float("nan"), 0.2, 0.8, 0.7]
    labels = [0, 1, 1, 0, 0, 1, 0]
    exclude = [False, False, False, False, False, False, True]
    result = evaluate_scorer(scores, labels, name="loss", n_bootstrap=50, exclude=exclude)
    assert result.n_excluded == 3
    assert (result.n_members, result.n_nonmembers) == (2, 2)
    assert result.auroc == 1.0
    assert set(result.tpr_at_fpr) == {0.001, 0.01, 0.05}
    assert result.to_dict()["tpr_at_fpr"][0]["note"].startswith("TPR@0.1% FPR rests on 2 non-members")
    assert result.to_dict()["auroc_ci_method"].startswith("exact bound")


def test_evaluate_frame_ignores_unlabelled_and_excludes_bad_status():
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e", "f"],
            "label": [1, 0, 1, 0, None, 1],
            "status": ["ok", "ok", "ok", "ok", "ok", "empty text"],
            "n_bytes": [10] * 6,
            "loss": [-1.0, -3.0, -2.0, -2.5, -0.1, np.nan],
            "zlib": [0.3, 0.1, 0.05, 0.2, 0.9, 0.4],
        }
    )
    results = evaluate_frame(frame, n_bootstrap=50)
    assert list(results) == ["loss", "zlib"]
    assert results["loss"].auroc == 1.0 and results["loss"].n_excluded == 1
    assert results["zlib"].auroc == pytest.approx(roc_auc_score([1, 0, 1, 0], [0.3, 0.1, 0.05, 0.2]))
    assert results["zlib"].n_excluded == 1  # the non-ok row, although its zlib value is present
    assert max(r.auroc for r in results.values()) == 1.0
    with pytest.raises(InputError, match="no score column 'min_k'; available: loss, zlib"):
        evaluate_frame(frame, columns=["min_k"])
    from llm_mia.workflows.evaluate import EvaluationSettings, best_auroc, evaluate_table

    # the full evaluation gives each scorer the very same figures
    evaluation = evaluate_table(frame, settings=EvaluationSettings(n_bootstrap=50))
    assert evaluation.scorers == results and best_auroc(evaluation.scorers) == 1.0


@pytest.mark.slow
def test_evaluate_runs_the_blind_baseline_and_skips_unusable_scorers():
    from llm_mia.workflows.evaluate import EvaluationSettings, evaluate_table

    def evaluate(frame, texts=None, **options):
        return evaluate_table(frame, texts=texts, settings=EvaluationSettings(**options))

    rng = np.random.default_rng(6)
    ids = [f"d{i}" for i in range(40)]
    labels = [int(i < 20) for i in range(40)]
    frame = pd.DataFrame(
        {
            "id": ids,
            "label": labels,
            "status": ["ok"] * 40,
            "loss": rng.normal(size=40) + np.array(labels),
            "recall": [np.nan] * 20 + list(rng.normal(size=20)),  # no member has this score
        }
    )
    styles = {1: "a calm river story ", 0: "a server log entry "}
    texts = {i: styles[label] + i for i, label in zip(ids, labels, strict=True)}
    result = evaluate(frame, texts=texts, n_bootstrap=100, folds=4)
    assert list(result.scorers) == ["loss"]
    assert "0 members" in result.skipped["recall"]
    assert result.blind is not None and result.blind.folds == 4 and result.blind.auroc > 0.9
    assert result.warning() == result.blind.warning(result.scorers["loss"].auroc) is not None
    assert result.to_dict()["blind_baseline"]["warning"] == result.warning()
    no_texts = evaluate(frame, n_bootstrap=100)
    assert no_texts.blind is None and "no texts given" in no_texts.blind_skipped and no_texts.warning() is None
    with pytest.raises(InputError, match=r"1 labelled document id\(s\) have no text.*'d0'"):
        evaluate(frame, texts={i: t for i, t in texts.items() if i != "d0"}, n_bootstrap=10)
