"""Post-hoc calibration of a synthetic held-out set (Zhao, Maini, Boenisch and Dziedzic, ICML 2025, "Unlocking
Post-hoc Dataset Inference with Synthetic Data", arXiv 2506.15271; reference code sprintml/PostHocDatasetInference,
``linear_di.py``).

Input: pairs (real suffix x_i of a passage of the suspect work, synthetic suffix y_i the generator wrote after the
same prefix), and for every text the suspect model's membership scores (higher = more like training data). Real
and generated text differ in ways that have nothing to do with membership (generated text is typically more
probable under any language model), so comparing their membership scores directly detects generation, not
training. The calibration separates the two: per run,

1. the pairs are shuffled and split in halves, a training half and a test half (pairs stay whole);
2. a **text classifier** that never sees the suspect model learns "real (1) vs synthetic (0)" from the training
   half's texts; its probability of "real" is p_text;
3. two logistic heads are fitted on the training half with weights constrained to (0, 1) (w = sigmoid(v), the
   bias free; Adam, learning rate 0.01, 200 full-batch epochs): h_text on [p_text], h_comb on [p_text, membership
   scores]. Non-negative weights can only use a membership score in the direction "more like training data ->
   real": a score that is higher for the *synthetic* text (lower perplexity) gets a weight near 0 and cannot
   help, which is what keeps the generator's artefacts from passing for membership;
4. on the test half, per pair: d_text_i = h_text(x_i) - h_text(y_i), d_comb_i = h_comb(x_i) - h_comb(y_i); the
   membership evidence is what the model's scores add: H0: E[d_comb - d_text] <= 0, one-sided t-test;

and the runs are combined as published: p = 1 - prod_r (1 - p_r), which is at least every p_r (so valid,
conservative, whatever the runs' dependence).

Deviations from the publication, each for a stated reason:

* **Text classifier**: TF-IDF word 1-2-grams and character 2-5-grams with logistic regression (the toolkit's
  blind-baseline features, Das et al. 2024) instead of a 2-layer GPT-2 trained from scratch for 20 epochs per
  run: the same role (a model-free real-vs-synthetic classifier) at a cost a CPU can pay ten times per test.
* **p_text on the training half** comes from 5-fold cross-fitting, not from the classifier applied to the texts
  it was trained on: an in-sample p_text is near-perfect and the heads would learn from an overfit input.
* **Score preprocessing** uses the training half only, pooled over real and synthetic: each score is clipped to
  its 10th-90th percentile range and standardised by the real texts' mean and standard deviation. The reference
  code replaces outliers by the mean separately within the real and within the synthetic array, over all pairs:
  that uses the labels of the test half and can itself separate the two sets.
* **The t-test is paired** (``scipy.stats.ttest_rel`` on d_comb - d_text, one-sided) where the reference code
  uses Student's independent two-sample test of d_text against d_comb: both differences are computed on the
  same test pairs and are strongly correlated, so the independent test's p-values pile up near 1/2 under the
  null (valid, but far from uniform and much less powerful). The paired test's null distribution is measured
  uniform in the tests (KS over repetitions).
* **Membership scores**: the toolkit's length-invariant scorers (the default is in ``llm_mia.workflows
  .synthetic``) instead of the reference set (Min-K% losses at k = 0.2, 0.3, 0.4 and perplexity ratios under
  NL-Augmenter perturbations, not available offline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llm_mia.errors import InputError

HEAD_EPOCHS = 200
HEAD_LEARNING_RATE = 0.01
CLIP_QUANTILES = (0.10, 0.90)
CROSS_FIT_FOLDS = 5
MIN_PAIRS = 40


@dataclass(frozen=True)
class CalibrationRun:
    """One random split: its p-value, the heads' mean differences on the test half, the text classifier's AUROC."""

    p_value: float
    mean_d_text: float
    mean_d_comb: float
    text_auroc: float
    weights: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "p_value": self.p_value,
            "mean_d_text": self.mean_d_text,
            "mean_d_comb": self.mean_d_comb,
            "text_auroc": self.text_auroc,
            "combined_head_weights": self.weights,
        }


@dataclass(frozen=True)
class CalibrationResult:
    """The combined p-value over runs and every run."""

    p_value: float
    runs: list[CalibrationRun] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    pairs: int = 0

    @property
    def text_auroc(self) -> float:
        """The model-free classifier's mean AUROC, real vs synthetic, on the test halves."""
        return float(np.mean([run.text_auroc for run in self.runs]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "p_value": self.p_value,
            "combination": "1 - prod_r (1 - p_r) over runs (Zhao et al. 2025)",
            "pairs": self.pairs,
            "features": self.features,
            "text_classifier_auroc": self.text_auroc,
            "runs": [run.to_dict() for run in self.runs],
        }


def _text_probabilities(train_texts: list[str], train_y: np.ndarray, test_texts: list[str], seed: int) -> Any:
    """(cross-fitted p_text on the training texts, p_text on the test texts) of a TF-IDF logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from llm_mia.stats.blind_baseline import bag_of_words_vectorizer

    def fit(texts: list[str], labels: np.ndarray) -> Any:
        vectorizer = bag_of_words_vectorizer()
        matrix = vectorizer.fit_transform(texts)
        classifier = LogisticRegression(max_iter=2000, C=1.0).fit(matrix, labels)
        return lambda other: classifier.predict_proba(vectorizer.transform(other))[:, 1]

    inside = np.zeros(len(train_texts))
    folds = StratifiedKFold(n_splits=CROSS_FIT_FOLDS, shuffle=True, random_state=seed)
    for fit_index, predict_index in folds.split(np.zeros(len(train_y)), train_y):
        predict = fit([train_texts[i] for i in fit_index], train_y[fit_index])
        inside[predict_index] = predict([train_texts[i] for i in predict_index])
    return inside, fit(train_texts, train_y)(test_texts)


def _fit_head(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """Logistic regression with weights sigmoid(v) in (0, 1) and a free bias (the publication's constraint)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    v = torch.zeros(x.shape[1], dtype=torch.float64)
    v.add_(torch.randn(x.shape[1], generator=generator, dtype=torch.float64) * 0.01)
    v.requires_grad_(True)
    bias = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    inputs = torch.as_tensor(x, dtype=torch.float64)
    targets = torch.as_tensor(y, dtype=torch.float64)
    optimizer = torch.optim.Adam([v, bias], lr=HEAD_LEARNING_RATE)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(HEAD_EPOCHS):
        optimizer.zero_grad()
        loss_fn(inputs @ torch.sigmoid(v) + bias, targets).backward()
        optimizer.step()
    return torch.sigmoid(v).detach().numpy(), float(bias.detach())


def _apply_head(head: tuple[np.ndarray, float], x: np.ndarray) -> np.ndarray:
    weights, bias = head
    return 1.0 / (1.0 + np.exp(-(x @ weights + bias)))


def _prepare_scores(train_real: np.ndarray, train_syn: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Clip every score to the training half's 10th-90th percentiles (pooled), then standardise by the training
    half's real texts (module docstring)."""
    pooled = np.vstack([train_real, train_syn])
    low, high = np.quantile(pooled, CLIP_QUANTILES[0], axis=0), np.quantile(pooled, CLIP_QUANTILES[1], axis=0)
    clipped_real = np.clip(train_real, low, high)
    mean, sd = clipped_real.mean(axis=0), clipped_real.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(np.clip(a, low, high) - mean) / sd for a in (train_real, train_syn, *others)]


def calibration_run(
    real_texts: Sequence[str],
    synthetic_texts: Sequence[str],
    real_scores: np.ndarray,
    synthetic_scores: np.ndarray,
    *,
    seed: int,
) -> CalibrationRun:
    """One random half-split of the pairs (module docstring, steps 1-4)."""
    from scipy.stats import ttest_rel
    from sklearn.metrics import roc_auc_score

    n = len(real_texts)
    order = np.random.default_rng(seed).permutation(n)
    train, test = order[: n // 2], order[n // 2 :]
    train_texts = [real_texts[i] for i in train] + [synthetic_texts[i] for i in train]
    train_y = np.r_[np.ones(len(train)), np.zeros(len(train))]
    test_texts = [real_texts[i] for i in test] + [synthetic_texts[i] for i in test]
    p_train, p_test = _text_probabilities(train_texts, train_y, test_texts, seed)
    scores = _prepare_scores(real_scores[train], synthetic_scores[train], real_scores[test], synthetic_scores[test])
    train_scores = np.vstack(scores[:2])
    test_scores = np.vstack(scores[2:])
    text_head = _fit_head(p_train[:, None], train_y, seed)
    comb_head = _fit_head(np.column_stack([p_train, train_scores]), train_y, seed)
    t = len(test)
    h_text = _apply_head(text_head, p_test[:, None])
    h_comb = _apply_head(comb_head, np.column_stack([p_test, test_scores]))
    d_text = h_text[:t] - h_text[t:]
    d_comb = h_comb[:t] - h_comb[t:]
    difference = d_comb - d_text
    if np.allclose(difference, difference[0]):
        p = 0.5 if difference[0] == 0 else (0.0 if difference[0] > 0 else 1.0)
    else:
        p = float(ttest_rel(d_comb, d_text, alternative="greater").pvalue)
    auroc = float(roc_auc_score(np.r_[np.ones(t), np.zeros(t)], p_test))
    return CalibrationRun(p, float(d_text.mean()), float(d_comb.mean()), auroc, [float(w) for w in comb_head[0]])


def calibrated_test(
    real_texts: Sequence[str],
    synthetic_texts: Sequence[str],
    real_scores: np.ndarray,
    synthetic_scores: np.ndarray,
    *,
    features: Sequence[str] = (),
    runs: int = 10,
    seed: int = 0,
) -> CalibrationResult:
    """The calibrated test over ``runs`` random splits, combined (module docstring). Scores: one row per text,
    one column per membership score (higher = more like training data); row i of each side is pair i.

    Refuses fewer than ``MIN_PAIRS`` pairs (each half must train a classifier and carry a t-test), unequal sides
    and scores that are not finite.
    """
    real_scores = np.asarray(real_scores, dtype=float)
    synthetic_scores = np.asarray(synthetic_scores, dtype=float)
    if len(real_texts) != len(synthetic_texts) or real_scores.shape != synthetic_scores.shape:
        raise InputError("the real and synthetic sides must be the same pairs (same count, same score columns)")
    if len(real_texts) < MIN_PAIRS:
        raise InputError(
            f"{len(real_texts)} real/synthetic pairs; the calibrated test needs at least {MIN_PAIRS} (half of them "
            "train the classifiers, half carry the t-test)"
        )
    if real_scores.ndim != 2 or not (np.isfinite(real_scores).all() and np.isfinite(synthetic_scores).all()):
        raise InputError("membership scores must be a finite (texts x scores) array on both sides")
    done = [
        calibration_run(real_texts, synthetic_texts, real_scores, synthetic_scores, seed=seed + r) for r in range(runs)
    ]
    combined = 1.0 - float(np.prod([1.0 - run.p_value for run in done]))
    return CalibrationResult(combined, done, list(features), len(real_texts))
