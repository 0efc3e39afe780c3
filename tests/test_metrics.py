"""Metrics against scikit-learn, brute force and hand-computed values; bootstrap coverage; resolution flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from llm_mia.errors import InputError
from llm_mia.metrics import (
    auroc,
    bootstrap_auroc_ci,
    clopper_pearson,
    evaluate_frame,
    evaluate_scorer,
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
    assert (result.n_members, result.n_nonmembers, result.resolvable) == (5, 5, True)
    # FPR 0.1 < 1/5: only FPR 0 is reachable: t = 0.6 -> TPR 2/5, flagged as unresolvable
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
    labels = np.r_[np.ones(50, int), np.zeros(50, int)]
    scores = rng.normal(size=100) + labels
    result = tpr_at_fpr(scores, labels, target_fpr=0.01)
    assert not result.resolvable
    assert result.min_resolvable_fpr == pytest.approx(0.02)
    assert "1/50" in result.note() and ">= 100 non-members" in result.note()
    assert tpr_at_fpr(scores, labels, target_fpr=0.05).note() is None
    # exactly 1/n = FPR is resolvable
    labels = np.r_[np.ones(10, int), np.zeros(100, int)]
    assert tpr_at_fpr(rng.normal(size=110), labels, target_fpr=0.01).resolvable


def test_tpr_ci_is_clopper_pearson_over_members():
    scores = [0.1, 0.2, 0.3, 0.9, 0.8, 0.05]
    labels = [0, 0, 0, 1, 1, 1]
    result = tpr_at_fpr(scores, labels, target_fpr=0.3)
    assert result.tpr == pytest.approx(2 / 3)
    assert result.tpr_ci == pytest.approx(clopper_pearson(2, 3))


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


def test_bootstrap_is_seeded_and_paired():
    rng = np.random.default_rng(5)
    labels = np.r_[np.ones(40, int), np.zeros(60, int)]
    scores = rng.normal(size=100) + labels
    first = bootstrap_auroc_ci(scores, labels, n_bootstrap=200, seed=7)
    assert first == bootstrap_auroc_ci(scores, labels, n_bootstrap=200, seed=7)
    assert first != bootstrap_auroc_ci(scores, labels, n_bootstrap=200, seed=8)
    # a strictly increasing transform keeps every resample's AUROC, so paired resampling gives the same interval
    assert bootstrap_auroc_ci(np.exp(scores), labels, n_bootstrap=200, seed=7) == pytest.approx(first)
    low, high = first
    assert low < auroc(scores, labels) < high


def test_bootstrap_interval_covers_true_auc_about_95_percent():
    # members ~ N(d, 1), non-members ~ N(0, 1): true AUROC = Phi(d / sqrt(2))
    d, n, reps = 1.0, 80, 100
    true_auc = norm.cdf(d / np.sqrt(2))
    labels = np.r_[np.ones(n, int), np.zeros(n, int)]
    covered = 0
    for rep in range(reps):
        rng = np.random.default_rng(1000 + rep)
        scores = np.r_[rng.normal(d, 1, n), rng.normal(0, 1, n)]
        low, high = bootstrap_auroc_ci(scores, labels, n_bootstrap=300, seed=rep)
        covered += low <= true_auc <= high
    assert 0.87 <= covered / reps <= 0.995


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
