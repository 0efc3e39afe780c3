"""The work-level permutation test: does the suspect work score higher than control works do?

The unit of a dataset-level claim is the work (a book, an article, a site), not the passage: passages of one
work share author, topic and format, so a test that treats them as independent draws turns any difference
between two works into "training". Here works are the units and the test is a permutation test over which
works carry the "suspect" label, in the spirit of Maini et al. 2024 ("LLM Dataset Inference") for the
statistic and of Fisher's randomisation test for its validity.

Statistic T(L) of a labelling L (a set of k works called "suspect", the other m works "control"):

0. Every work enters with the same number of passages, c: the suspect work's count or, when that is more
   than most control works have, the 20th percentile of the control works' counts (with several suspect
   works, the 20th percentile of theirs; at least 2). Every work enters with its *first* c passages (in the
   order given); works with fewer than c passages are left out and counted. Works of different sizes are not
   exchangeable (a small work's mean is noisier, so it lands in the tails more often). Neither are c passages
   drawn at random from a long work and the c passages of a short one when neighbouring passages share a
   paragraph or a scene: the random draw spreads over many of them and averages their effects away, the
   short work cannot. With every 4 passages sharing an effect of 1 SD, a suspect work of 8 passages among 40
   control works of 30-60 got p <= 0.05 in 35/300 = 0.117 runs with random draws, 61/1000 = 0.061 with a
   window of 8 consecutive passages from a random start, and 51/1000 = 0.051 [0.038, 0.067] with the first 8
   (nominal 2/41 = 0.049): the first c passages of every work are alike in structure whenever whole works
   are exchangeable.
1. Every work's passages are split at random into a training and a test half (c // 2 and the rest),
   independently of any label, R times (``splits``).
2. Per split, features are clipped at the training passages' ``clip_quantile`` and ``1 - clip_quantile``
   quantiles and standardised with their mean and standard deviation (all works pooled: no label used).
3. Per split, a non-negative linear combination of the standardised features (every feature is a membership
   score, higher = member) is fitted on the training halves: weighted least squares of y = 1 (suspect) /
   0 (control) with weights giving each class half the total and each work an equal share of its class,
   coefficients >= 0 (``scipy.optimize.nnls`` on the normal equations).
4. The combined score of the test passages is put in units of its standard deviation over all test
   passages; each work's test passages are averaged; T_r = mean over suspect works of their means - mean
   over control works of theirs. T = mean of T_r over the R splits: how many passage standard deviations the
   suspect works sit above the control works.

p-value: T of the observed labelling ranked among T of every labelling (k = 1: each of the m + 1 works as
the suspect, exact; k > 1: all C(m + k, k) labellings when there are at most ``permutations`` + 1, else the
observed one and ``permutations`` random ones): p = #{labellings with T >= T_observed} / #labellings, ties
counted against the suspect. Because every step is the same function of (labels, data) for every
labelling, p is exactly valid (P(p <= alpha) <= alpha) whenever the works are exchangeable under the null,
that is when the suspect work, had it not been trained on, would be just another work of the same kind as the
control works: between-work differences are in the null by construction. The smallest attainable p is
1 / (m + 1) for one suspect work: p <= 0.05 needs at least 19 control works.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from llm_mia.errors import LlmMiaError
from llm_mia.half_split import as_feature_matrix

DEFAULT_PERMUTATIONS = 999
STATISTIC = (
    "mean over suspect works of their test passages' combined score minus the mean over control works, in "
    "passage standard deviations, averaged over half-splits; the combined score is a non-negative linear "
    "combination of the standardised membership scores fitted on the training halves"
)


@dataclass
class _Split:
    """One half-split's label-free precomputation: per-work sufficient statistics of the standardised features."""

    train_sum: np.ndarray  # (W, f) sum of training features per work
    train_outer: np.ndarray  # (W, f, f) sum of outer products per work
    train_count: np.ndarray  # (W,)
    test_sum: np.ndarray  # (W, f) sum of test features per work
    test_count: np.ndarray  # (W,)
    test_cov: np.ndarray  # (f, f) covariance of all test passages' features


def _prepare(
    features: np.ndarray, work_index: np.ndarray, n_works: int, rng: np.random.Generator, clip_quantile: float
) -> _Split:
    n, f = features.shape
    train = np.zeros(n, dtype=bool)
    for work in range(n_works):
        members = rng.permutation(np.flatnonzero(work_index == work))
        train[members[: len(members) // 2]] = True
    low = np.quantile(features[train], clip_quantile, axis=0)
    high = np.quantile(features[train], 1 - clip_quantile, axis=0)
    clipped = np.clip(features, low, high)
    mean, std = clipped[train].mean(axis=0), clipped[train].std(axis=0)
    z = (clipped - mean) / np.where(std > 0, std, 1.0)  # (n, f)
    train_count = np.bincount(work_index[train], minlength=n_works)
    train_sum = np.zeros((n_works, f))
    np.add.at(train_sum, work_index[train], z[train])
    train_outer = np.zeros((n_works, f, f))
    np.add.at(train_outer, work_index[train], z[train][:, :, None] * z[train][:, None, :])
    test_count = np.bincount(work_index[~train], minlength=n_works)
    test_sum = np.zeros((n_works, f))
    np.add.at(test_sum, work_index[~train], z[~train])
    test_cov = np.cov(z[~train].T).reshape(f, f) if (~train).sum() > 1 else np.zeros((f, f))
    return _Split(train_sum, train_outer, train_count, test_sum, test_count, test_cov)


def _fit_weights(split: _Split, suspect: np.ndarray, works: np.ndarray) -> np.ndarray:
    """Non-negative weighted least-squares coefficients for labelling ``suspect`` (bool per work, over ``works``)."""
    from scipy.optimize import nnls

    has_train = split.train_count[works] > 0
    chosen, others = works[suspect & has_train], works[~suspect & has_train]
    f = split.train_sum.shape[1]
    if len(chosen) == 0 or len(others) == 0:
        return np.zeros(f)
    omega = np.zeros(split.train_count.shape[0])  # weight of each passage of a work
    omega[chosen] = 0.5 / (len(chosen) * split.train_count[chosen])
    omega[others] = 0.5 / (len(others) * split.train_count[others])
    mean = (omega[:, None] * split.train_sum).sum(axis=0)  # weighted mean of x (weights sum to 1)
    gram = np.einsum("w,wij->ij", omega, split.train_outer) - np.outer(mean, mean)
    cross = (omega[chosen, None] * split.train_sum[chosen]).sum(axis=0) - 0.5 * mean
    try:
        factor = np.linalg.cholesky(gram + 1e-10 * np.eye(f))
    except np.linalg.LinAlgError:
        return np.zeros(f)
    weights, _ = nnls(factor.T, np.linalg.solve(factor, cross))
    return weights


def _statistic(split: _Split, suspect: np.ndarray, works: np.ndarray) -> float:
    """T_r of one split for a labelling (see module docstring)."""
    weights = _fit_weights(split, suspect, works)
    spread = float(np.sqrt(max(weights @ split.test_cov @ weights, 0.0)))
    if not np.any(weights > 0) or spread == 0:
        return 0.0
    counts = split.test_count[works]
    present = counts > 0
    means = np.where(present, (split.test_sum[works] @ weights) / np.maximum(counts, 1), np.nan) / spread
    chosen, others = means[suspect & present], means[~suspect & present]
    if len(chosen) == 0 or len(others) == 0:
        return 0.0
    return float(chosen.mean() - others.mean())


def common_size(suspect_sizes: Sequence[int], control_sizes: Sequence[int]) -> int:
    """c of step 0: the 20th percentile of the suspect works' passage counts (the count, for one suspect work)
    or of the control works', whichever is smaller; at least 2 (a training and a test passage).

    >>> common_size([500], [10] * 30), common_size([12], [40] * 30), common_size([30], list(range(2, 62, 2)))
    (10, 12, 12)
    """

    def low(sizes: Sequence[int]) -> int:
        return int(np.quantile(np.asarray(sizes), 0.2, method="lower"))

    return max(2, min(low(suspect_sizes), low(control_sizes)))


@dataclass(frozen=True)
class WorkTestResult:
    """The work-level permutation test (module docstring).

    ``statistic``: T of the observed labelling; ``null``: T of every labelling ranked (the observed one
    included); ``exact``: every labelling was enumerated; ``work_statistics``: with one suspect work, T with
    each work as the suspect (by work name), for the report; ``weights``: median over splits of the observed
    labelling's coefficients.
    """

    p_value: float
    statistic: float
    null: tuple[float, ...] = field(repr=False)
    exact: bool
    suspect_works: tuple[str, ...]
    control_works: tuple[str, ...]
    n_suspect_passages: int
    n_control_passages: int
    feature_names: tuple[str, ...]
    weights: tuple[float, ...]
    splits: int
    passages_per_work: int = 0
    works_left_out: tuple[str, ...] = ()
    work_statistics: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def n_labellings(self) -> int:
        return len(self.null)

    @property
    def smallest_p(self) -> float:
        """The smallest p-value the design allows: 1 / #labellings."""
        return 1 / self.n_labellings

    def detectable(self, alpha: float) -> float:
        """The smallest T that would have given p <= alpha with these labellings: the statistic the suspect
        would have needed (in passage standard deviations above the control works), whatever it scored.

        >>> null = (3.0, 0.6, 0.2, -0.1) + (-1.0,) * 16
        >>> result = WorkTestResult(0.05, 3.0, null, True, ("s",), (), 1, 1, (), (), 1)
        >>> result.detectable(0.05), result.detectable(0.10)
        (0.6, 0.2)
        """
        null = np.asarray(self.null)
        # the other labellings: the null without the observed one (one entry equal to the statistic)
        others = np.sort(np.delete(null, int(np.argmin(np.abs(null - self.statistic)))))[::-1]
        allowed = math.floor(alpha * self.n_labellings + 1e-9)  # labellings with T >= T_obs, itself included
        if allowed < 1:
            return math.inf
        # p <= alpha when at most allowed - 1 other labellings reach T: T above the allowed-th largest of them
        return float(others[allowed - 1]) if allowed - 1 < len(others) else -math.inf

    def to_dict(self) -> dict[str, Any]:
        null = np.asarray(self.null)
        return {
            "test": "work-level permutation test",
            "statistic_definition": STATISTIC,
            "p_value": self.p_value,
            "statistic": self.statistic,
            "labellings": self.n_labellings,
            "exact": self.exact,
            "smallest_possible_p": self.smallest_p,
            "null_median": float(np.median(null)),
            "null_95th_percentile": float(np.quantile(null, 0.95)),
            "suspect_works": list(self.suspect_works),
            "n_control_works": len(self.control_works),
            "n_suspect_passages": self.n_suspect_passages,
            "n_control_passages": self.n_control_passages,
            "median_weights": dict(zip(self.feature_names, self.weights, strict=True)),
            "splits": self.splits,
            "passages_per_work": self.passages_per_work,
            "works_left_out": len(self.works_left_out),
            "work_statistics": self.work_statistics,
        }


def work_permutation_test(
    features: Any,
    works: Sequence[str],
    suspect_works: Sequence[str],
    *,
    splits: int = 10,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    clip_quantile: float = 0.025,
    feature_names: Sequence[str] | None = None,
    passages_per_work: int | None = None,
) -> WorkTestResult:
    """Test whether the works in ``suspect_works`` score higher than the other works (module docstring).

    ``features``: (passages, features) membership scores, higher = member, all finite; ``works``: the work of
    each passage. ``passages_per_work``: c of step 0 (None: chosen as described there). Needs at least one
    suspect and one control work.

    >>> rng = np.random.default_rng(0)
    >>> works = [f"w{i}" for i in range(20) for _ in range(6)]
    >>> x = rng.normal(size=(120, 2)) + np.repeat(rng.normal(0, 0.3, 20), 6)[:, None]
    >>> x[:6] += 1.5  # the first work was trained on
    >>> result = work_permutation_test(x, works, ["w0"], seed=0)
    >>> result.p_value, result.exact, result.n_labellings
    (0.05, True, 20)
    """
    matrix = as_feature_matrix(features, "passage")
    if len(matrix) != len(works):
        raise LlmMiaError(f"{len(works)} works for {len(matrix)} passages; give the work of every passage")
    all_names = list(dict.fromkeys(str(w) for w in works))
    chosen = set(map(str, suspect_works))
    unknown = chosen - set(all_names)
    if unknown:
        raise LlmMiaError(f"suspect work(s) {sorted(unknown)[:3]} have no passages")
    k = len(chosen)
    if k == 0 or k == len(all_names):
        raise LlmMiaError(f"need at least one suspect and one control work; got {k} of {len(all_names)}")
    if splits < 1 or permutations < 1:
        raise LlmMiaError("splits and permutations must be >= 1")
    rng = np.random.default_rng(seed)
    sizes = dict.fromkeys(all_names, 0)
    for work in works:
        sizes[str(work)] += 1
    size = passages_per_work or common_size(
        [sizes[n] for n in all_names if n in chosen], [sizes[n] for n in all_names if n not in chosen]
    )
    left_out = tuple(n for n in all_names if sizes[n] < size)
    names = [n for n in all_names if n not in left_out]
    k = sum(n in chosen for n in names)
    if k == 0 or k == len(names):
        side = "suspect" if k == 0 else "control"
        raise LlmMiaError(
            f"no {side} work has {size} passages, the number every work enters with; cut shorter passages"
        )
    positions: dict[str, list[int]] = {}
    for i, work in enumerate(works):
        positions.setdefault(str(work), []).append(i)
    keep = []  # the first c passages of every kept work (no label involved)
    for name in names:
        keep.extend(positions[name][:size])
    matrix = matrix[keep]
    index = {name: i for i, name in enumerate(names)}
    work_index = np.array([index[str(works[i])] for i in keep])
    observed = np.array([name in chosen for name in names])
    total = len(names)
    prepared = [_prepare(matrix, work_index, total, rng, clip_quantile) for _ in range(splits)]
    all_works = np.arange(total)

    def statistic(labelling: np.ndarray) -> float:
        return float(np.mean([_statistic(s, labelling, all_works) for s in prepared]))

    if math.comb(total, k) <= permutations + 1:
        labellings = [np.isin(all_works, list(c)) for c in combinations(range(total), k)]
        exact = True
    else:
        labellings = [observed] + [np.isin(all_works, rng.choice(total, k, replace=False)) for _ in range(permutations)]
        exact = False
    values = np.array([statistic(labelling) for labelling in labellings])
    observed_value = statistic(observed)
    tolerance = 1e-12 * max(1.0, float(np.abs(values).max()))
    if exact:
        p_value = float(np.mean(values >= observed_value - tolerance))
    else:
        p_value = float((1 + np.sum(values[1:] >= observed_value - tolerance)) / (permutations + 1))
    weights = np.median([_fit_weights(s, observed, all_works) for s in prepared], axis=0)
    per_work = {}
    if k == 1 and exact:
        per_work = {names[int(np.flatnonzero(lab)[0])]: float(v) for lab, v in zip(labellings, values, strict=True)}
    feature_names = (
        tuple(feature_names) if feature_names is not None else tuple(f"f{i}" for i in range(matrix.shape[1]))
    )
    return WorkTestResult(
        p_value=p_value,
        statistic=observed_value,
        null=tuple(float(v) for v in values),
        exact=exact,
        suspect_works=tuple(n for n in names if n in chosen),
        control_works=tuple(n for n in names if n not in chosen),
        n_suspect_passages=int(np.isin(work_index, np.flatnonzero(observed)).sum()),
        n_control_passages=int((~np.isin(work_index, np.flatnonzero(observed))).sum()),
        feature_names=feature_names,
        weights=tuple(float(w) for w in weights),
        splits=splits,
        passages_per_work=size,
        works_left_out=left_out,
        work_statistics=per_work,
    )
