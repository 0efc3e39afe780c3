"""The work-level permutation test: does the suspect work score higher than control works do?

The unit of a dataset-level claim is the work (a book, an article, a site), not the passage: passages of one
work share author, topic and format, so a test that treats them as independent draws turns any difference
between two works into "training". Here works are the units and the test is a permutation test over which
works carry the "suspect" label, in the spirit of Maini et al. 2024 ("LLM Dataset Inference") for the
statistic and of Fisher's randomisation test for its validity.

Statistic T(L) of a labelling L (a set of k works called "suspect", the other m works "control"):

0. Which passages enter (:func:`select_passages`, decided from the works' sizes and, with one suspect work, its
   size; never from any score). Works with fewer than 2 passages are left out (a work needs a training and a test
   passage). **One suspect work** enters with *all* its passages, and every control work with its first min(its
   size, the suspect's size): a long book is tested whole, not on its first pages. When every control work has at
   least as many passages as the suspect, all works enter with the same count and the test is exact. When some
   control works are shorter, their means are noisier than the suspect's, which puts them in the tails of the null
   more often than the suspect: the test is then conservative (measured in ``tests/test_work_selection.py`` and
   ``benchmarks/false_positives.py``, with sizes of 3 to 200 passages and works whose first passages score a
   standard deviation lower than the rest: the false-positive rate stayed at or below the exact level). The
   ``"common-size"`` rule gives up the suspect's later passages for exactness whatever the works' structure: every
   work enters with its first c passages, c = the 20th percentile of all works' sizes (labels not used), works with
   fewer are left out. **Several suspect works** always use it. The first passages rather than passages drawn at
   random: when neighbouring passages share a paragraph or a scene, a random draw from a long work averages their
   effects away and a short work cannot, so works would differ in structure; the first c passages of every work are
   alike in structure whenever whole works are exchangeable.
1. Every work's passages are split at random into a training and a test half (half of them and the rest),
   independently of any label, R times (``splits``).
2. Per split, features are clipped at the training passages' ``clip_quantile`` and ``1 - clip_quantile``
   quantiles and standardised with their mean and standard deviation (all works pooled: no label used).
3. Per split, a non-negative linear combination of the standardised features (every feature is a membership
   score, higher = member) is fitted on the training halves: weighted least squares of y = 1 (suspect) /
   0 (control) with weights giving each class half the total and each work an equal share of its class,
   coefficients >= 0 (``scipy.optimize.nnls`` on the normal equations).
4. Each work's test passages' combined scores are averaged (m_w over n_w passages) and the mean is standardised
   by the spread a work's mean has when nothing sets it apart: t_w = (m_w - mean of the m_v) / sqrt(tau^2 +
   sigma^2 / n_w), where sigma^2 is the pooled within-work variance of the test passages and tau^2 the
   between-work variance of the means beyond it (moments over all works, at least 0; no label used).
   T_r = mean over suspect works of t_w - mean over control works of t_w; T = mean of T_r over the R splits:
   how many work-level standard deviations the suspect works sit above the control works. Without the
   standardisation a long suspect work, whose mean is precise, is ranked among short control works whose means
   are noisy and fill the tails of the null: a work of 120 passages trained on (+0.3 SD) against 30 works of 3-8
   was found in 1 of 60 runs, against 27 of 60 standardised (``tests/test_work_selection.py``).

p-value: T of the observed labelling ranked among T of every labelling (k = 1: each of the m + 1 works as
the suspect, exact; k > 1: all C(m + k, k) labellings when there are at most ``permutations`` + 1, else the
observed one and ``permutations`` random ones): p = #{labellings with T >= T_observed} / #labellings, ties
counted against the suspect. Steps 1-4 are the same function of (labels, data) for every labelling, so p is
exactly valid (P(p <= alpha) <= alpha) whenever the works that enter are exchangeable under the null, that is
when the suspect work, had it not been trained on, would be just another work of the same kind as the control
works: between-work differences are in the null by construction. The smallest attainable p is 1 / (m + 1) for
one suspect work: p <= 0.05 needs at least 19 control works.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, TypedDict

import numpy as np

from llm_mia.errors import LlmMiaError
from llm_mia.stats.passage_test import as_feature_matrix

DEFAULT_PERMUTATIONS = 999
STATISTIC = (
    "mean over suspect works of their standardised work means minus the mean over control works, averaged over "
    "half-splits: a work's mean combined score on its test passages over sqrt(between-work variance + within-work "
    "variance / its passage count); the combined score is a non-negative linear combination of the standardised "
    "membership scores fitted on the training halves"
)


@dataclass
class _Split:
    """One half-split's label-free precomputation: per-work sufficient statistics of the standardised features."""

    train_sum: np.ndarray  # (W, f) sum of training features per work
    train_outer: np.ndarray  # (W, f, f) sum of outer products per work
    train_count: np.ndarray  # (W,)
    test_sum: np.ndarray  # (W, f) sum of test features per work
    test_count: np.ndarray  # (W,)
    test_outer: np.ndarray  # (W, f, f) sum of outer products of test features per work


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
    test_outer = np.zeros((n_works, f, f))
    np.add.at(test_outer, work_index[~train], z[~train][:, :, None] * z[~train][:, None, :])
    return _Split(train_sum, train_outer, train_count, test_sum, test_count, test_outer)


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
    """T_r of one split for a labelling (module docstring, step 4)."""
    weights = _fit_weights(split, suspect, works)
    counts = split.test_count[works].astype(float)
    present = counts > 0
    if not np.any(weights > 0) or present.sum() < 2:
        return 0.0
    n = counts[present]
    sums = split.test_sum[works][present] @ weights
    squares = np.einsum("i,wij,j->w", weights, split.test_outer[works][present], weights)
    means = sums / n
    within_df = float(np.sum(n - 1))
    sigma2 = float(np.maximum(squares - n * means**2, 0.0).sum() / within_df) if within_df > 0 else 0.0
    tau2 = max(0.0, float(np.var(means, ddof=1)) - float(np.mean(sigma2 / n)))
    spread = np.sqrt(tau2 + sigma2 / n)
    if not np.all(spread > 0):
        return 0.0
    t = (means - means.mean()) / spread
    labels = suspect[present]
    if not labels.any() or labels.all():
        return 0.0
    return float(t[labels].mean() - t[~labels].mean())


MIN_WORK_PASSAGES = 2  # a work needs a training and a test passage
WHOLE_SUSPECT, COMMON_SIZE = "whole-suspect", "common-size"
SELECTION_RULES = (WHOLE_SUSPECT, COMMON_SIZE)


def common_size(sizes: Sequence[int]) -> int:
    """c for several suspect works: the 20th percentile of all works' passage counts (lower value; labels not
    used), at least 2 (a training and a test passage).

    >>> common_size([500] + [10] * 30), common_size([12] + [40] * 30), common_size([30] + list(range(2, 62, 2)))
    (10, 40, 14)
    """
    return max(MIN_WORK_PASSAGES, int(np.quantile(np.asarray(sizes), 0.2, method="lower")))


@dataclass(frozen=True)
class PassageSelection:
    """Which passages enter the work-level test (module docstring, step 0).

    ``indices``: positions in the input, work by work in order of first appearance, each work's passages in input
    order. ``counts``: passages entering per work (by name); ``sizes``: passages given per work; ``left_out``:
    works with too few passages; ``rule``: ``"whole-suspect"`` (one suspect work) or ``"common-size"``;
    ``equal_sizes``: every work enters with the same count (the test is then exact, not only conservative).
    """

    indices: tuple[int, ...]
    counts: dict[str, int]
    sizes: dict[str, int]
    left_out: tuple[str, ...]
    rule: str
    passages_per_work: int

    @property
    def equal_sizes(self) -> bool:
        return len(set(self.counts.values())) <= 1

    def share_of(self, names: Sequence[str]) -> float:
        """The share of the given works' passages that enter the test."""
        given = sum(self.sizes[n] for n in names)
        return sum(self.counts.get(n, 0) for n in names) / given if given else 0.0


def select_passages(
    works: Sequence[str],
    suspect_works: Sequence[str],
    *,
    rule: str = WHOLE_SUSPECT,
    passages_per_work: int | None = None,
) -> PassageSelection:
    """The passages that enter the work-level test (module docstring, step 0): with one suspect work and ``rule``
    ``"whole-suspect"``, all of its passages and the first min(size, the suspect's size) of every control work;
    otherwise (several suspect works, ``rule="common-size"``, or ``passages_per_work`` given) the first c of every
    work, c = ``passages_per_work`` or :func:`common_size` of all works' sizes; works with fewer than 2 (resp. c)
    passages left out.

    >>> works = ["book"] * 5 + ["a"] * 2 + ["b"] * 9 + ["c"]
    >>> chosen = select_passages(works, ["book"])
    >>> chosen.counts, chosen.left_out, chosen.rule
    ({'book': 5, 'a': 2, 'b': 5}, ('c',), 'whole-suspect')
    """
    names = list(dict.fromkeys(str(w) for w in works))
    positions: dict[str, list[int]] = {name: [] for name in names}
    for index, work in enumerate(works):
        positions[str(work)].append(index)
    sizes = {name: len(positions[name]) for name in names}
    if rule not in SELECTION_RULES:
        raise LlmMiaError(f"passage selection {rule!r}: choose one of {', '.join(SELECTION_RULES)}")
    chosen = set(map(str, suspect_works))
    if len(chosen) == 1 and passages_per_work is None and rule == WHOLE_SUSPECT:
        (suspect,) = chosen
        cap = sizes.get(suspect, 0)
        size = cap
        enough = cap >= MIN_WORK_PASSAGES  # a suspect work too short to split leaves nothing to test
        counts = {n: min(sizes[n], cap) for n in names if enough and sizes[n] >= MIN_WORK_PASSAGES}
    else:
        size = passages_per_work or common_size(list(sizes.values()))
        rule = COMMON_SIZE
        counts = {n: size for n in names if sizes[n] >= size}
    indices = tuple(i for name in names if name in counts for i in positions[name][: counts[name]])
    left_out = tuple(n for n in names if n not in counts)
    return PassageSelection(indices, counts, sizes, left_out, rule, size)


class WorkTestRecord(TypedDict):
    """The work-level test in ``report.json`` (:meth:`WorkTestResult.to_dict`)."""

    test: str
    statistic_definition: str
    p_value: float
    statistic: float
    labellings: int
    exact: bool
    smallest_possible_p: float
    null_median: float
    null_95th_percentile: float
    suspect_works: list[str]
    n_control_works: int
    n_suspect_passages: int
    n_control_passages: int
    median_weights: dict[str, float]
    splits: int
    passage_selection: str | None
    passages_per_work: int
    passages_entered: dict[str, int]
    works_left_out: int
    suspect_share_tested: float
    validity: str
    work_statistics: dict[str, float]


@dataclass(frozen=True)
class WorkTestResult:
    """The work-level permutation test (module docstring).

    ``statistic``: T of the observed labelling; ``null``: T of every labelling ranked (the observed one
    included); ``exact``: every labelling was enumerated; ``work_statistics``: with one suspect work, T with
    each work as the suspect (by work name), for the report; ``weights``: median over splits of the observed
    labelling's coefficients; ``selection``: which passages entered (step 0).
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
    selection: PassageSelection | None = field(default=None, repr=False)
    work_statistics: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def passages_per_work(self) -> int:
        return 0 if self.selection is None else self.selection.passages_per_work

    @property
    def works_left_out(self) -> tuple[str, ...]:
        return () if self.selection is None else self.selection.left_out

    @property
    def validity(self) -> str:
        """``exact`` when every work entered with the same number of passages, else ``conservative``."""
        return "exact" if self.selection is None or self.selection.equal_sizes else "conservative"

    @property
    def suspect_share(self) -> float:
        """The share of the suspect works' passages that entered the test."""
        return 1.0 if self.selection is None else self.selection.share_of(self.suspect_works)

    @property
    def n_labellings(self) -> int:
        return len(self.null)

    @property
    def smallest_p(self) -> float:
        """The smallest p-value the design allows: 1 / #labellings."""
        return 1 / self.n_labellings

    def detectable(self, alpha: float) -> float:
        """The smallest T that would have given p <= alpha with these labellings: the statistic the suspect
        would have needed (in work-level standard deviations above the control works), whatever it scored.

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

    def to_dict(self) -> WorkTestRecord:
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
            "passage_selection": None if self.selection is None else self.selection.rule,
            "passages_per_work": self.passages_per_work,
            "passages_entered": {} if self.selection is None else dict(self.selection.counts),
            "works_left_out": len(self.works_left_out),
            "suspect_share_tested": self.suspect_share,
            "validity": self.validity,
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
    selection: str = WHOLE_SUSPECT,
    passages_per_work: int | None = None,
) -> WorkTestResult:
    """Test whether the works in ``suspect_works`` score higher than the other works (module docstring).

    ``features``: (passages, features) membership scores, higher = member, all finite; ``works``: the work of
    each passage. ``selection``: step 0's rule for one suspect work (``"whole-suspect"``, or ``"common-size"``: exact
    whatever the works' structure, at the cost of the suspect's later passages); ``passages_per_work``: every work
    enters with its first c passages. Needs at least one suspect and one control work.

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
    chosen_passages = select_passages(works, sorted(chosen), rule=selection, passages_per_work=passages_per_work)
    names = [n for n in all_names if n in chosen_passages.counts]
    k = sum(n in chosen for n in names)
    if k == 0 or k == len(names):
        side = "suspect" if k == 0 else "control"
        needed = MIN_WORK_PASSAGES if chosen_passages.rule == WHOLE_SUSPECT else chosen_passages.passages_per_work
        raise LlmMiaError(
            f"no {side} work has the {needed} passages a work needs to enter the test; cut shorter passages "
            f"(--passage-tokens) or add text"
        )
    keep = list(chosen_passages.indices)
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
        selection=chosen_passages,
        work_statistics=per_work,
    )
