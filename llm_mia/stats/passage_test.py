"""The passage-level test of Maini et al. 2024 ("LLM Dataset Inference: Did you train on my dataset?",
NeurIPS 2024): suspect passages against control passages, over random half-splits.

It treats passages as independent draws, so it tests "these passages score higher than those", not
"this work was trained on": any difference between the suspect work and the control source (author, topic,
format) passes it. ``llm_mia.stats.dataset_inference`` uses it only where the work-level test
(``llm_mia.stats.work_test``) cannot run (a single control source, or too few control works), and then
never as a verdict of training.

One half-split (:func:`half_split`):

1. Split the suspect passages S and the control passages C (text the model cannot have seen, of the same
   kind) each at random into a training half and a test half.
2. Clip outliers: each feature is clipped to ``[q_lo, q_hi]``, the ``clip_quantile`` and ``1 - clip_quantile``
   quantiles of the *training* half (winsorising), then standardised z = (x - mean) / std with the training
   half's mean and std (``sklearn.preprocessing.StandardScaler``). Nothing about the test half is used.
3. Learn a linear combination on the training half: least squares of the label (suspect = 1, control = 0,
   classes weighted equally) on z with weights constrained to be >= 0 (``sklearn.linear_model.
   LinearRegression(positive=True)``). Every feature is a membership score (higher = member), so a
   non-negative combination is one too: the test can only pass when suspect passages look *more* like
   members, not merely different. The combined score of a passage is s = w . z.
4. On the test half, a one-sided Welch t-test (unequal variances) of H0: mean s(suspect) <= mean s(control)
   against H1: mean s(suspect) > mean s(control) (``scipy.stats.ttest_ind(equal_var=False,
   alternative="greater")``):

       t = (m_S - m_C) / sqrt(v_S / n_S + v_C / n_C),
       df = (v_S/n_S + v_C/n_C)^2 / ((v_S/n_S)^2/(n_S - 1) + (v_C/n_C)^2/(n_C - 1))   (Welch-Satterthwaite)

   and the effect size Cohen's d = (m_S - m_C) / s_pooled, s_pooled^2 = ((n_S-1) v_S + (n_C-1) v_C) /
   (n_S + n_C - 2) (Cohen 1988).

Several random half-splits (:func:`passage_test`) show how much the answer depends on the split. Their
p-values are dependent (same passages), so they are combined by the quantile rule of Meinshausen, Meier &
Bühlmann 2009 ("p-Values for High-Dimensional Regression", JASA 104:1671), with gamma = 1/2:

    p_combined = min(1, 2 * median(p_1, ..., p_K))

which is a valid p-value under any dependence between the splits (conservative by up to a factor 2).

Negative control (:func:`negative_control`): the control passages, in source order, split into two
contiguous halves (the first and second half of the control text, or whole sources when there are several)
and tested against each other the same way, in both directions (Bonferroni: twice the smaller p-value).
Contiguous halves, not random passages, mirror the main test, which also compares two separate bodies of
text.

Minimums: every set entering one test needs at least ``MIN_PASSAGES_PER_SET`` passages (so each half has at
least 4 for the fit and the t-test); the negative control needs twice that many control passages.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypedDict

import numpy as np
from numpy.typing import ArrayLike

from llm_mia.errors import LlmMiaError

MIN_PASSAGES_PER_SET = 8
DEFAULT_SPLITS = 10
DEFAULT_CLIP_QUANTILE = 0.025
DEFAULT_ALPHA = 0.05

TEST_DESCRIPTION = (
    "one-sided Welch t-test (unequal variances, H1: suspect passages score higher) on the held-out half of a "
    "random half-split; the score is a non-negative linear combination of the per-passage membership scores, "
    "fitted on the other half after clipping each feature to its {low:g}-{high:g}% training quantiles and "
    "standardising (Maini et al. 2024, LLM Dataset Inference)"
)
COMBINATION = (
    "p-values of the half-splits combined as min(1, 2 x median) (Meinshausen, Meier & Bühlmann 2009), "
    "valid under dependence between splits"
)


@dataclass(frozen=True)
class HalfSplitResult:
    """One half-split: the t-test on the held-out half, and what was fitted on the training half.

    ``weights`` are the non-negative coefficients of the standardised features (all zero when no feature
    separated the training halves in the member direction; then ``p_value`` is 1). ``auroc`` is the area
    under the ROC curve of the combined score on the test half (suspect = positive).
    """

    p_value: float
    t_statistic: float
    degrees_of_freedom: float
    effect_size: float
    auroc: float
    weights: tuple[float, ...]
    n_train: tuple[int, int]  # (suspect, control)
    n_test: tuple[int, int]  # (suspect, control)


class Spread(TypedDict):
    """Quantiles of a value over the half-splits (``report.json``)."""

    min: float
    q25: float
    median: float
    q75: float
    max: float


class HalfSplitRecord(TypedDict):
    """One half-split in ``report.json`` (:class:`HalfSplitResult`)."""

    p_value: float
    t: float
    df: float
    cohens_d: float
    auroc: float
    weights: list[float]
    n_train: list[int]
    n_test: list[int]


class PassageTestRecord(TypedDict):
    """The passage-level test in ``report.json`` (:meth:`PassageTestResult.to_dict`)."""

    p_value: float
    n_suspect: int
    n_control: int
    splits: int
    p_value_spread: Spread
    effect_size_cohens_d: Spread
    auroc_median: float
    median_weights: dict[str, float]
    note: str
    per_split: list[HalfSplitRecord]


@dataclass(frozen=True)
class PassageTestResult:
    """Several half-splits of one suspect-vs-control test, with their combined p-value (module docstring)."""

    p_value: float
    splits: tuple[HalfSplitResult, ...]
    n_suspect: int
    n_control: int
    feature_names: tuple[str, ...]
    clip_quantile: float
    note: str = ""  # how the sets were formed, for negative controls

    @property
    def p_values(self) -> np.ndarray:
        return np.array([s.p_value for s in self.splits])

    @property
    def effect_sizes(self) -> np.ndarray:
        return np.array([s.effect_size for s in self.splits])

    @property
    def auroc(self) -> float:
        """Median over splits of the combined score's test-half AUROC."""
        return float(np.median([s.auroc for s in self.splits]))

    def spread(self, values: np.ndarray) -> Spread:
        low, q25, median, q75, high = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])
        return {"min": float(low), "q25": float(q25), "median": float(median), "q75": float(q75), "max": float(high)}

    def to_dict(self) -> PassageTestRecord:
        """JSON-ready summary, with every split."""
        weights = np.array([s.weights for s in self.splits])
        return {
            "p_value": self.p_value,
            "n_suspect": self.n_suspect,
            "n_control": self.n_control,
            "splits": len(self.splits),
            "p_value_spread": self.spread(self.p_values),
            "effect_size_cohens_d": self.spread(self.effect_sizes),
            "auroc_median": self.auroc,
            "median_weights": dict(zip(self.feature_names, np.median(weights, axis=0).tolist(), strict=True)),
            "note": self.note,
            "per_split": [
                {
                    "p_value": s.p_value,
                    "t": s.t_statistic,
                    "df": s.degrees_of_freedom,
                    "cohens_d": s.effect_size,
                    "auroc": s.auroc,
                    "weights": list(s.weights),
                    "n_train": list(s.n_train),
                    "n_test": list(s.n_test),
                }
                for s in self.splits
            ],
        }


@dataclass(frozen=True)
class CurvePoint:
    """The test on the first ``n_suspect`` suspect passages (and a proportional number of control passages)."""

    n_suspect: int
    n_control: int
    p_value: float  # combined over splits
    p_median: float
    p_min: float
    p_max: float


def as_feature_matrix(values: ArrayLike, name: str) -> np.ndarray:
    """Features as a float (n, f) matrix; a 1-D input is one feature."""
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise LlmMiaError(f"{name} features must be a (passages, features) matrix, got shape {matrix.shape}")
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        raise LlmMiaError(
            f"{name} features: {bad.size} passage(s) have missing or non-finite scores (first at row {bad[0]}); "
            f"drop those passages first (their score status says why)"
        )
    return matrix


def _check_counts(n_suspect: int, n_control: int, *, control_factor: int = 1) -> None:
    need_control = MIN_PASSAGES_PER_SET * control_factor
    if n_suspect < MIN_PASSAGES_PER_SET or n_control < need_control:
        why = " (the negative control splits the control passages into two sets)" if control_factor > 1 else ""
        raise LlmMiaError(
            f"a dataset test needs at least {MIN_PASSAGES_PER_SET} suspect and {need_control} control passages"
            f"{why}; got {n_suspect} suspect and {n_control} control. Add text, or cut shorter passages "
            f"(--passage-tokens)"
        )


def _check_clip(clip_quantile: float) -> None:
    if not 0.0 <= clip_quantile < 0.5:
        raise LlmMiaError(f"clip_quantile must be in [0, 0.5), got {clip_quantile}; 0.025 clips 2.5% per side")


def combine_p_values(p_values: ArrayLike) -> float:
    """Combine dependent p-values of repeated half-splits: p = min(1, 2 * median(p_k)).

    The quantile aggregation Q(gamma) = min(1, quantile_gamma(p_k / gamma)) with gamma = 1/2 from
    Meinshausen, Meier & Bühlmann 2009 ("p-Values for High-Dimensional Regression"), valid under arbitrary
    dependence: if the median is <= x then at least half the p_k are <= x, and by Markov's inequality that
    has probability <= 2x under H0.

    >>> combine_p_values([0.01, 0.02, 0.5])
    0.04
    """
    values = np.asarray(p_values, dtype=np.float64)
    if values.size == 0:
        raise LlmMiaError("no p-values to combine")
    return float(min(1.0, 2.0 * np.median(values)))


def cohens_d(suspect: ArrayLike, control: ArrayLike) -> float:
    """Cohen's d = (mean_S - mean_C) / s_pooled, s_pooled^2 = ((n_S-1) v_S + (n_C-1) v_C) / (n_S + n_C - 2).

    ``v`` are sample variances (ddof = 1). Source: Cohen 1988, "Statistical Power Analysis for the
    Behavioral Sciences". Returns 0 when both sets are constant and equal, +-inf when constant and unequal.

    >>> cohens_d([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    1.0
    """
    a, b = np.asarray(suspect, dtype=np.float64), np.asarray(control, dtype=np.float64)
    difference = a.mean() - b.mean()
    pooled = ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
    if pooled == 0.0:
        return 0.0 if difference == 0.0 else math.copysign(math.inf, difference)
    return float(difference / math.sqrt(pooled))


def half_split(
    train_suspect: np.ndarray,
    train_control: np.ndarray,
    test_suspect: np.ndarray,
    test_control: np.ndarray,
    *,
    clip_quantile: float = DEFAULT_CLIP_QUANTILE,
) -> HalfSplitResult:
    """One half-split: clip and standardise (fitted on the training half), fit w >= 0, Welch-test the test half.

    Steps 2-4 of the module docstring. Inputs are (n, f) feature matrices, higher = member in every column.
    """
    from scipy.stats import ttest_ind
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    train = np.vstack([train_suspect, train_control])  # (n_train, f)
    low = np.quantile(train, clip_quantile, axis=0)  # (f,)
    high = np.quantile(train, 1.0 - clip_quantile, axis=0)  # (f,)
    scaler = StandardScaler().fit(np.clip(train, low, high))

    def transform(features: np.ndarray) -> np.ndarray:
        return scaler.transform(np.clip(features, low, high))  # (n, f)

    labels = np.r_[np.ones(len(train_suspect)), np.zeros(len(train_control))]  # (n_train,)
    # equal total weight per class, so an unbalanced split does not tilt the fit towards the larger set
    sample_weight = np.where(labels == 1, 0.5 / len(train_suspect), 0.5 / len(train_control))
    regression = LinearRegression(positive=True).fit(transform(train), labels, sample_weight=sample_weight)
    weights = np.asarray(regression.coef_, dtype=np.float64)  # (f,)

    score_suspect = transform(test_suspect) @ weights  # (n_test_suspect,)
    score_control = transform(test_control) @ weights  # (n_test_control,)
    n_train = (len(train_suspect), len(train_control))
    n_test = (len(test_suspect), len(test_control))
    if not np.any(weights > 0) or np.ptp(np.r_[score_suspect, score_control]) == 0:
        # no feature points towards "suspect = member" on the training half, or every test passage scores the
        # same: no evidence, p = 1
        return HalfSplitResult(1.0, 0.0, float("nan"), 0.0, 0.5, tuple(weights.tolist()), n_train, n_test)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # a set whose passages all score the same (e.g. a feature clipped flat) has variance ~0; scipy warns
        # about precision, and the test is still the right one
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        test = ttest_ind(score_suspect, score_control, equal_var=False, alternative="greater")
    if not math.isfinite(test.pvalue):  # both sets constant: the t statistic is undefined; count it as no evidence
        return HalfSplitResult(
            1.0, float(test.statistic), float("nan"), 0.0, 0.5, tuple(weights.tolist()), n_train, n_test
        )
    auroc = roc_auc_score(np.r_[np.ones(n_test[0]), np.zeros(n_test[1])], np.r_[score_suspect, score_control])
    return HalfSplitResult(
        p_value=float(test.pvalue),
        t_statistic=float(test.statistic),
        degrees_of_freedom=float(test.df),
        effect_size=cohens_d(score_suspect, score_control),
        auroc=float(auroc),
        weights=tuple(weights.tolist()),
        n_train=n_train,
        n_test=n_test,
    )


def _halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    return order[: n // 2], order[n // 2 :]


def _feature_names(names: Sequence[str] | None, n_features: int) -> tuple[str, ...]:
    if names is None:
        return tuple(f"feature_{i}" for i in range(n_features))
    if len(names) != n_features:
        raise LlmMiaError(f"{len(names)} feature names for {n_features} feature columns; give one name per column")
    return tuple(names)


def passage_test(
    suspect: ArrayLike,
    control: ArrayLike,
    *,
    splits: int = DEFAULT_SPLITS,
    seed: int = 0,
    clip_quantile: float = DEFAULT_CLIP_QUANTILE,
    feature_names: Sequence[str] | None = None,
) -> PassageTestResult:
    """Test whether suspect passages score higher than control passages, over ``splits`` random half-splits.

    ``suspect``, ``control``: (passages, features) matrices of membership scores (higher = member). Each
    split runs :func:`half_split`; the p-values are combined by :func:`combine_p_values`. The same ``seed``
    gives the same splits.

    >>> rng = np.random.default_rng(0)
    >>> result = passage_test(rng.normal(1.0, 1.0, (60, 2)), rng.normal(0.0, 1.0, (60, 2)), seed=0)
    >>> result.p_value < 0.001
    True
    """
    suspect_matrix, control_matrix = as_feature_matrix(suspect, "suspect"), as_feature_matrix(control, "control")
    if suspect_matrix.shape[1] != control_matrix.shape[1]:
        raise LlmMiaError(
            f"suspect has {suspect_matrix.shape[1]} feature columns and control {control_matrix.shape[1]}; "
            f"score both with the same scorers"
        )
    _check_counts(len(suspect_matrix), len(control_matrix))
    _check_clip(clip_quantile)
    if splits < 1:
        raise LlmMiaError(f"splits must be >= 1, got {splits}; 10 is a good default")
    names = _feature_names(feature_names, suspect_matrix.shape[1])
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(splits):
        train_s, test_s = _halves(len(suspect_matrix), rng)
        train_c, test_c = _halves(len(control_matrix), rng)
        results.append(
            half_split(
                suspect_matrix[train_s],
                control_matrix[train_c],
                suspect_matrix[test_s],
                control_matrix[test_c],
                clip_quantile=clip_quantile,
            )
        )
    return PassageTestResult(
        p_value=combine_p_values([r.p_value for r in results]),
        splits=tuple(results),
        n_suspect=len(suspect_matrix),
        n_control=len(control_matrix),
        feature_names=names,
        clip_quantile=clip_quantile,
    )


def _bisect_by_group(groups: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random whole groups to each side, each next group to the side with fewer passages so far."""
    unique, counts = np.unique(groups, return_counts=True)
    sides: tuple[list[int], list[int]] = ([], [])
    sizes = [0, 0]
    for index in rng.permutation(len(unique)):
        side = 0 if sizes[0] <= sizes[1] else 1
        sides[side].append(int(index))
        sizes[side] += int(counts[index])
    first = np.isin(groups, unique[sides[0]])
    return np.flatnonzero(first), np.flatnonzero(~first)


def negative_control(
    control: ArrayLike,
    *,
    groups: Sequence[str] | None = None,
    splits: int = DEFAULT_SPLITS,
    seed: int = 0,
    clip_quantile: float = DEFAULT_CLIP_QUANTILE,
    feature_names: Sequence[str] | None = None,
) -> PassageTestResult:
    """Control vs control: split the control passages into two pseudo-sets and test them like the main test.

    Each of the ``splits`` repetitions draws a new half-split, and runs :func:`half_split` in both directions
    (either pseudo-set as "suspect"): unseen text that scores higher than other unseen text in either
    direction is what would make the main test give a false positive. The repetition's p-value is
    min(1, 2 x min(p_forward, p_backward)) (Bonferroni over the two directions), and the repetitions are
    combined by :func:`combine_p_values`. The pseudo-sets: with ``groups`` (the source of each passage) naming
    at least two sources small enough that greedy balancing leaves each side >= ``MIN_PASSAGES_PER_SET``
    passages, whole sources drawn at random for each repetition; otherwise the first and the second half of
    the control passages in the order given (source order), two contiguous bodies of text as in the main
    test. ``note`` says which.
    """
    matrix = as_feature_matrix(control, "control")
    _check_counts(MIN_PASSAGES_PER_SET, len(matrix), control_factor=2)
    _check_clip(clip_quantile)
    if splits < 1:
        raise LlmMiaError(f"splits must be >= 1, got {splits}; 10 is a good default")
    names = _feature_names(feature_names, matrix.shape[1])
    labels = None if groups is None else np.asarray([str(g) for g in groups])
    if labels is not None and len(labels) != len(matrix):
        raise LlmMiaError(f"{len(labels)} group labels for {len(matrix)} control passages; give one per passage")
    by_group = False
    if labels is not None:
        _, counts = np.unique(labels, return_counts=True)
        by_group = len(counts) >= 2 and (len(matrix) - counts.max()) >= 2 * MIN_PASSAGES_PER_SET
    if by_group and labels is not None:
        note = f"pseudo-sets of whole sources ({len(np.unique(labels))} control sources)"
    elif labels is not None and len(np.unique(labels)) >= 2:
        note = "pseudo-sets: the first and second half of the control text (sources too few or uneven to split whole)"
    else:
        note = "pseudo-sets: the first and second half of the control text (one control source)"
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(splits):
        if by_group and labels is not None:
            first, second = _bisect_by_group(labels, rng)
        else:
            first, second = np.arange(len(matrix) // 2), np.arange(len(matrix) // 2, len(matrix))
        pseudo_suspect, pseudo_control = matrix[first], matrix[second]
        train_s, test_s = _halves(len(pseudo_suspect), rng)
        train_c, test_c = _halves(len(pseudo_control), rng)
        halves = (pseudo_suspect[train_s], pseudo_control[train_c], pseudo_suspect[test_s], pseudo_control[test_c])
        forward = half_split(*halves, clip_quantile=clip_quantile)
        backward = half_split(halves[1], halves[0], halves[3], halves[2], clip_quantile=clip_quantile)
        best = forward if forward.p_value <= backward.p_value else backward
        results.append(replace(best, p_value=min(1.0, 2.0 * best.p_value)))  # Bonferroni over the two directions
    return PassageTestResult(
        p_value=combine_p_values([r.p_value for r in results]),
        splits=tuple(results),
        n_suspect=int(np.median([r.n_train[0] + r.n_test[0] for r in results])),
        n_control=int(np.median([r.n_train[1] + r.n_test[1] for r in results])),
        feature_names=names,
        clip_quantile=clip_quantile,
        note=note,
    )


def default_curve_sizes(n_suspect: int, *, points: int = 8) -> list[int]:
    """Suspect-passage counts for the p-value curve: geometric from the minimum up to all of them."""
    if n_suspect <= MIN_PASSAGES_PER_SET:
        return [n_suspect]
    grid = np.geomspace(MIN_PASSAGES_PER_SET, n_suspect, num=points)
    return sorted({round(float(x)) for x in grid} | {n_suspect})


def p_value_curve(
    suspect: ArrayLike,
    control: ArrayLike,
    *,
    sizes: Sequence[int] | None = None,
    splits: int = DEFAULT_SPLITS,
    seed: int = 0,
    clip_quantile: float = DEFAULT_CLIP_QUANTILE,
) -> list[CurvePoint]:
    """Combined p-value as a function of the number of suspect passages.

    Passages are put in one seeded random order and the test is run on the first n suspect passages and
    the first round(n x n_control / n_suspect) control passages (at least the minimum), so each point adds
    passages to the previous one. The last default point uses all passages: the main test's result.
    """
    suspect_matrix, control_matrix = as_feature_matrix(suspect, "suspect"), as_feature_matrix(control, "control")
    _check_counts(len(suspect_matrix), len(control_matrix))
    rng = np.random.default_rng(seed)
    order_s, order_c = rng.permutation(len(suspect_matrix)), rng.permutation(len(control_matrix))
    if sizes is None:
        sizes = default_curve_sizes(len(suspect_matrix))
    points = []
    for n in sizes:
        if not MIN_PASSAGES_PER_SET <= n <= len(suspect_matrix):
            raise LlmMiaError(
                f"curve size {n} is not in {MIN_PASSAGES_PER_SET}..{len(suspect_matrix)} (the suspect passages)"
            )
        if n == len(suspect_matrix):  # all passages, in their own order: exactly the main test
            subset_s, subset_c = suspect_matrix, control_matrix
        else:
            proportional = round(n * len(control_matrix) / len(suspect_matrix))
            n_control = min(len(control_matrix), max(MIN_PASSAGES_PER_SET, proportional))
            subset_s = suspect_matrix[np.sort(order_s[:n])]
            subset_c = control_matrix[np.sort(order_c[:n_control])]
        result = passage_test(
            subset_s,
            subset_c,
            splits=splits,
            seed=seed,
            clip_quantile=clip_quantile,
        )
        p_values = result.p_values
        points.append(
            CurvePoint(
                n_suspect=len(subset_s),
                n_control=len(subset_c),
                p_value=result.p_value,
                p_median=float(np.median(p_values)),
                p_min=float(p_values.min()),
                p_max=float(p_values.max()),
            )
        )
    return points
