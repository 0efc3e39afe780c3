"""Metrics on labelled score sets: AUROC with an interval, TPR at low FPR, oracle balanced accuracy, and the
correction for choosing the best of several scorers.

Pure functions over arrays. Convention everywhere: ``labels`` are 1 for members, 0 for non-members, and a
higher score means "more likely a member". Nothing here flips a sign: a scorer whose AUROC is below 0.5 is
reported below 0.5.

The numbers the field reports and what each rests on:

* AUROC = P(S_member > S_nonmember) + 0.5 P(S_member = S_nonmember), the Mann-Whitney U statistic divided by
  n_members * n_nonmembers (Hanley & McNeil 1982), with a DeLong interval on the logit scale (DeLong, DeLong &
  Clarke-Pearson 1988; logit transform as in Pepe 2003, sec. 5.2), which keeps its coverage at small n and
  high AUROC where a percentile bootstrap collapses; under perfect separation, an exact distribution-free
  bound instead (see :func:`auroc_interval`).
* TPR at a target FPR (Carlini et al. 2022, "Membership inference attacks from first principles"): the largest
  true-positive rate over ROC thresholds whose false-positive rate is <= the target. Its interval is a
  bootstrap that re-chooses the threshold in every resample, so the threshold's own uncertainty is in it.
  With n non-members a target FPR allows n x FPR false positives; the figure counts as resolved only when
  that is at least 20 (:data:`MIN_FALSE_POSITIVES`), a convention: with fewer, the threshold sits on a handful
  of the most extreme non-members. Measured (``python benchmarks/tpr_coverage.py``: binormal scores, TPR
  0.1-0.6): at exactly 10 allowed false positives (1% of 1,000) the interval covered the true TPR in
  1701/1800 = 0.945 [0.933, 0.955] of runs, at 20 (1% of 2,000) in 279/300 = 0.930 [0.895, 0.956]; at both,
  the truth fell below the interval about twice as often as above it (89/1800 = 0.049 and 14/300 = 0.047,
  against 0.025): the interval leans high. The simulation does not show 20 to be better than 10.
* Balanced accuracy at the best threshold = max_t (TPR(t) + 1 - FPR(t)) / 2. The threshold is chosen on the
  very data it is scored on, so it is an *oracle* (optimistic) figure, labelled as such.
* Best of several scorers: the largest of K AUROCs is biased up. :func:`max_auroc_permutation_test` gives
  family-wise p-values (Westfall & Young 1993 single-step max-T over label permutations), permuting the
  labels of whole groups (works, sources) when documents carry groups and no group holds both labels; the
  result says which unit was permuted.

The AUROC, TPR and their intervals treat documents as independent. Documents of one work are not (they share
its style, era and length), so with several documents per work those intervals are too narrow; the max-T
p-value over permuted groups is the figure that counts works, not documents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from llm_mia.errors import InputError

DEFAULT_FPRS: tuple[float, ...] = (0.001, 0.01, 0.05)
# scores of documents, one per document, where None (or NaN) marks a document without one
OptionalScores = Sequence[float | None] | np.ndarray
# A TPR@FPR counts as resolved when its FPR allows at least this many false positives among the non-members.
MIN_FALSE_POSITIVES = 20
# p-values below this are printed as "p < 1e-06": their exact size rests on tail assumptions no data check.
P_VALUE_FLOOR = 1e-6


def _as_arrays(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (scores, labels) pair: same length, finite scores, labels 0/1, both classes present."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.ndim != 1 or len(scores) != len(labels):
        raise InputError(
            f"scores and labels must be 1-d and the same length; got shapes {scores.shape} and {labels.shape}"
        )
    if not np.all(np.isfinite(scores)):
        bad = int(np.sum(~np.isfinite(scores)))
        raise InputError(f"{bad} score(s) are NaN or infinite; drop them first (evaluate_scorer does this)")
    values = set(np.unique(labels).tolist())
    if not values <= {0, 1}:
        raise InputError(f"labels must be 0 (non-member) or 1 (member); found {sorted(values)}")
    labels = labels.astype(np.int64)
    n_members, n_nonmembers = int(labels.sum()), int(len(labels) - labels.sum())
    if n_members == 0 or n_nonmembers == 0:
        raise InputError(
            f"need both members and non-members to compute a metric; got {n_members} members and "
            f"{n_nonmembers} non-members"
        )
    return scores, labels


def auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve: P(member score > non-member score), ties counted one half.

    Formula: AUROC = U / (n_1 n_0), U the Mann-Whitney statistic of the member scores (Hanley & McNeil 1982);
    computed with ``sklearn.metrics.roc_auc_score``. 0.5 = chance, 1 = perfect, < 0.5 = the scorer ranks
    non-members higher (no sign is flipped here).

    >>> auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    from sklearn.metrics import roc_auc_score

    scores, labels = _as_arrays(scores, labels)
    return float(roc_auc_score(labels, scores))


def _placements(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: V10_i = P(member i > a non-member), V01_j = P(a member > non-member j),
    ties counted one half; both computed with sorted searches, O(n log n)."""
    sorted_non, sorted_mem = np.sort(nonmembers), np.sort(members)
    below = np.searchsorted(sorted_non, members, side="left")  # non-members strictly below each member
    at_or_below = np.searchsorted(sorted_non, members, side="right")
    v10 = (below + 0.5 * (at_or_below - below)) / len(nonmembers)  # (n_1,)
    above = len(members) - np.searchsorted(sorted_mem, nonmembers, side="right")  # members strictly above
    at_or_above = len(members) - np.searchsorted(sorted_mem, nonmembers, side="left")
    v01 = (above + 0.5 * (at_or_above - above)) / len(members)  # (n_0,)
    return v10, v01


def auroc_interval(scores: ArrayLike, labels: ArrayLike, *, confidence: float = 0.95) -> tuple[float, float, str]:
    """Confidence interval for the AUROC: (low, high, method).

    Usual case: DeLong's variance, var = S10 / n_1 + S01 / n_0 with S10, S01 the sample variances of the
    structural components (DeLong, DeLong & Clarke-Pearson 1988, "Comparing the areas under two or more
    correlated ROC curves"), turned into an interval on the logit scale, logit(A) +- z se / (A (1 - A)), and
    back, so it stays inside (0, 1) and covers at small n and high AUROC (Pepe 2003, "The Statistical
    Evaluation of Medical Tests", sec. 5.2). When DeLong's variance is 0 but separation is not perfect (all
    scores tied), Hanley & McNeil's (1982) variance is used.

    Perfect separation (AUROC 1, or 0): the logit is infinite and any resampling interval collapses to [1, 1].
    Instead an exact, distribution-free bound: with m = min(n_1, n_0), m disjoint (member, non-member) pairs are
    each ordered correctly with probability A independently, so P(perfect separation) <= A^m, and every
    A < ((1 - c)/2)^(1/m) is rejected: the interval is [((1 - c)/2)^(1/m), 1].

    >>> [round(x, 3) for x in auroc_interval([0.1, 0.2, 0.3, 0.9, 0.8, 0.7], [0, 0, 0, 1, 1, 1])[:2]]
    [0.292, 1.0]
    """
    from scipy.stats import norm

    if not 0 < confidence < 1:
        raise InputError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    scores, labels = _as_arrays(scores, labels)
    members, nonmembers = scores[labels == 1], scores[labels == 0]
    n_1, n_0 = len(members), len(nonmembers)
    v10, v01 = _placements(members, nonmembers)
    area = float(v10.mean())
    tail = (1 - confidence) / 2
    if area in (0.0, 1.0):
        bound = tail ** (1 / min(n_1, n_0))
        return (bound, 1.0, "exact bound (perfect separation)") if area == 1.0 else (0.0, 1 - bound, "exact bound")
    variance = (v10.var(ddof=1) if n_1 > 1 else 0.0) / n_1 + (v01.var(ddof=1) if n_0 > 1 else 0.0) / n_0
    method = "DeLong, logit scale"
    if variance <= 0:
        q1, q2 = area / (2 - area), 2 * area**2 / (1 + area)
        variance = (area * (1 - area) + (n_1 - 1) * (q1 - area**2) + (n_0 - 1) * (q2 - area**2)) / (n_1 * n_0)
        method = "Hanley-McNeil, logit scale"
    z = norm.ppf(1 - tail)
    logit = math.log(area / (1 - area))
    half = z * math.sqrt(variance) / (area * (1 - area))
    return 1 / (1 + math.exp(-(logit - half))), 1 / (1 + math.exp(-(logit + half))), method


def clopper_pearson(successes: int, trials: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson 1934) two-sided interval for a binomial proportion successes / trials.

    Bounds: Beta((1-c)/2; k, n-k+1) and Beta((1+c)/2; k+1, n-k), with 0 and 1 at the edges; computed by
    ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``. Coverage is at least ``confidence`` for every
    true proportion (conservative).

    >>> [round(x, 4) for x in clopper_pearson(0, 100)]
    [0.0, 0.0362]
    """
    from scipy.stats import binomtest

    if trials < 1:
        raise InputError(f"a proportion needs at least one trial; got {trials}")
    if not 0 <= successes <= trials:
        raise InputError(f"successes must lie in [0, {trials}], got {successes}")
    interval = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="exact")
    return float(interval.low), float(interval.high)


@dataclass(frozen=True)
class TprAtFpr:
    """TPR at a target FPR, with what it rests on.

    ``tpr``: largest TPR over thresholds whose FPR on the ``n_nonmembers`` non-members is <= ``target_fpr``;
    ``achieved_fpr``: that threshold's FPR; ``threshold``: flag as member when score >= threshold (+inf when
    only flagging nothing keeps the FPR within the target); ``tpr_ci``: percentile bootstrap interval that
    resamples members and non-members and re-chooses the threshold in each resample; ``resolvable``: True when
    the target allows at least ``MIN_FALSE_POSITIVES`` false positives among the non-members
    (n_nonmembers x target_fpr >= 20). Below that the threshold rests on the few most extreme non-members:
    the TPR is biased up and its interval is a rough guide only.
    """

    target_fpr: float
    tpr: float
    tpr_ci: tuple[float, float]
    achieved_fpr: float
    threshold: float
    n_members: int
    n_nonmembers: int
    resolvable: bool

    @property
    def needed_nonmembers(self) -> int:
        """Non-members needed to resolve this FPR: MIN_FALSE_POSITIVES / target_fpr."""
        return math.ceil(MIN_FALSE_POSITIVES / self.target_fpr - 1e-9)

    def note(self) -> str | None:
        """Plain words when the figure cannot resolve its FPR, else None."""
        if self.resolvable:
            return None
        allowed = self.n_nonmembers * self.target_fpr
        return (
            f"TPR@{format_fpr(self.target_fpr)} FPR rests on {self.n_nonmembers} non-members, which allow "
            f"{allowed:.3g} false positive(s); resolving this FPR needs at least {MIN_FALSE_POSITIVES} "
            f"(>= {self.needed_nonmembers} non-members), so the figure is not resolved"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_fpr": self.target_fpr,
            "tpr": self.tpr,
            "tpr_ci": list(self.tpr_ci),
            "tpr_ci_method": "percentile bootstrap, threshold re-chosen in every resample",
            "achieved_fpr": self.achieved_fpr,
            "threshold": self.threshold if math.isfinite(self.threshold) else None,  # None: flags nothing
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            "resolvable": self.resolvable,
            "note": self.note(),
        }


def format_fpr(fpr: float) -> str:
    """0.001 -> '0.1%', 0.05 -> '5%'."""
    return f"{fpr * 100:g}%"


def format_p_value(p: float, *, floor: float = P_VALUE_FLOOR) -> str:
    """p-values for people: 2 significant digits, and "< floor" below the floor, where a number would claim
    more than its tail assumptions carry.

    >>> [format_p_value(p) for p in (0.5, 0.0312, 0.00041, 3.4e-18, 1.0)]
    ['0.5', '0.031', '0.00041', '< 1e-06', '1']
    """
    if p < floor:
        return f"< {floor:.0e}"
    return f"{p:.2g}"


def p_phrase(p: float, *, floor: float = P_VALUE_FLOOR) -> str:
    """ "p = <value>", or "p < <floor>" below the floor (:func:`format_p_value`).

    >>> p_phrase(0.0312), p_phrase(3.4e-18)
    ('p = 0.031', 'p < 1e-06')
    """
    text = format_p_value(p, floor=floor)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _tpr_at_k(members: np.ndarray, nonmembers_sorted: np.ndarray, k: int) -> np.ndarray:
    """TPR of "score > the (k+1)-th largest non-member" per row: the largest TPR with at most k false positives.

    ``members`` (B, n_1), ``nonmembers_sorted`` (B, n_0) ascending; with k >= n_0 every member is flagged.
    """
    n_0 = nonmembers_sorted.shape[1]
    if k >= n_0:
        return np.ones(members.shape[0])
    cut = nonmembers_sorted[:, n_0 - 1 - k]  # (B,) the (k+1)-th largest non-member
    return (members > cut[:, None]).mean(axis=1)  # (B,)


def tpr_at_fpr(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    target_fpr: float,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> TprAtFpr:
    """TPR at the largest ROC threshold whose FPR <= ``target_fpr`` (Carlini et al. 2022), with a bootstrap
    interval that re-chooses the threshold in every resample.

    Point estimate from ``sklearn.metrics.roc_curve`` (decision: member when score >= threshold). Interval:
    members and non-members are resampled with replacement (stratified, seeded), and in each resample the
    threshold is chosen again (at most k = floor(target x n_0) non-members above it) and the TPR measured; the
    (1 - c)/2 and (1 + c)/2 quantiles of those TPRs. ``resolvable``: n_0 x target >= ``MIN_FALSE_POSITIVES``.

    >>> r = tpr_at_fpr([0.1, 0.2, 0.3, 0.9, 0.8, 0.25], [0, 0, 0, 1, 1, 1], target_fpr=0.4)
    >>> (r.tpr, r.achieved_fpr, r.resolvable)
    (1.0, 0.3333333333333333, False)
    """
    from sklearn.metrics import roc_curve

    if not 0 < target_fpr < 1:
        raise InputError(f"target FPR must lie strictly between 0 and 1, got {target_fpr}")
    if n_bootstrap < 1:
        raise InputError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    scores, labels = _as_arrays(scores, labels)
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    # fpr is non-decreasing; the last index with fpr <= target has the largest tpr among them
    index = int(np.searchsorted(fpr, target_fpr, side="right") - 1)
    members, nonmembers = scores[labels == 1], scores[labels == 0]
    n_members, n_nonmembers = len(members), len(nonmembers)
    k = math.floor(target_fpr * n_nonmembers + 1e-9)
    rng = np.random.default_rng(seed)
    member_draws = members[rng.integers(0, n_members, size=(n_bootstrap, n_members))]  # (B, n_1)
    nonmember_draws = np.sort(nonmembers[rng.integers(0, n_nonmembers, size=(n_bootstrap, n_nonmembers))], axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(_tpr_at_k(member_draws, nonmember_draws, k), [tail, 1 - tail])
    return TprAtFpr(
        target_fpr=target_fpr,
        tpr=float(tpr[index]),
        tpr_ci=(float(low), float(high)),
        achieved_fpr=float(fpr[index]),
        threshold=float(thresholds[index]),
        n_members=n_members,
        n_nonmembers=n_nonmembers,
        resolvable=n_nonmembers * target_fpr >= MIN_FALSE_POSITIVES - 1e-9,
    )


def oracle_balanced_accuracy(scores: ArrayLike, labels: ArrayLike) -> float:
    """Balanced accuracy at the best threshold chosen on the same data: max_t (TPR(t) + 1 - FPR(t)) / 2.

    An *oracle* figure: no threshold fixed in advance reaches it on new data. From ``sklearn.metrics.roc_curve``.

    >>> oracle_balanced_accuracy([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    from sklearn.metrics import roc_curve

    scores, labels = _as_arrays(scores, labels)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(np.max((tpr + 1 - fpr) / 2))


@dataclass(frozen=True)
class ScorerEvaluation:
    """Everything the toolkit reports for one scorer on a labelled set.

    ``n_excluded``: rows dropped before computing (non-ok status or a missing/NaN score).
    ``roc``: (fpr, tpr) arrays as lists, for plotting.
    """

    name: str
    auroc: float
    auroc_ci: tuple[float, float]
    confidence: float
    tpr_at_fpr: dict[float, TprAtFpr]
    oracle_balanced_accuracy: float
    n_members: int
    n_nonmembers: int
    n_excluded: int = 0
    roc: tuple[tuple[float, ...], tuple[float, ...]] = field(default=((), ()), repr=False)
    auroc_ci_method: str = "DeLong, logit scale"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "auroc": self.auroc,
            "auroc_ci": list(self.auroc_ci),
            "auroc_ci_method": self.auroc_ci_method,
            "confidence": self.confidence,
            "tpr_at_fpr": [r.to_dict() for r in self.tpr_at_fpr.values()],
            "oracle_balanced_accuracy": self.oracle_balanced_accuracy,
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            "n_excluded": self.n_excluded,
        }


def evaluate_scorer(
    scores: OptionalScores,
    labels: ArrayLike,
    *,
    name: str = "score",
    fprs: Sequence[float] = DEFAULT_FPRS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    exclude: ArrayLike | None = None,
) -> ScorerEvaluation:
    """AUROC [DeLong-logit interval], TPR at each FPR in ``fprs`` with its n, flag and bootstrap interval, oracle
    balanced accuracy.

    Rows whose score is NaN/None, or where the boolean mask ``exclude`` is True (e.g. a non-ok status), are
    dropped first; how many is reported as ``n_excluded``. Labels must be 0/1 for the kept rows.
    """
    from sklearn.metrics import roc_curve

    scores = np.asarray([np.nan if s is None else s for s in scores], dtype=np.float64)
    labels = np.asarray(labels)
    keep = np.isfinite(scores)
    if exclude is not None:
        keep &= ~np.asarray(exclude, dtype=bool)
    n_excluded = int(len(scores) - keep.sum())
    kept_scores, kept_labels = _as_arrays(scores[keep], labels[keep])
    fpr, tpr, _ = roc_curve(kept_labels, kept_scores)
    low, high, method = auroc_interval(kept_scores, kept_labels, confidence=confidence)
    return ScorerEvaluation(
        name=name,
        auroc=auroc(kept_scores, kept_labels),
        auroc_ci=(low, high),
        auroc_ci_method=method,
        confidence=confidence,
        tpr_at_fpr={
            f: tpr_at_fpr(
                kept_scores, kept_labels, target_fpr=f, confidence=confidence, n_bootstrap=n_bootstrap, seed=seed
            )
            for f in sorted(fprs)
        },
        oracle_balanced_accuracy=oracle_balanced_accuracy(kept_scores, kept_labels),
        n_members=int(kept_labels.sum()),
        n_nonmembers=int(len(kept_labels) - kept_labels.sum()),
        n_excluded=n_excluded,
        roc=(tuple(float(x) for x in fpr), tuple(float(x) for x in tpr)),
    )


@dataclass(frozen=True)
class SelectionTest:
    """The best of several scorers, corrected for having chosen it (single-step max-T permutation test).

    ``family_p[name]`` = (1 + #{permutations whose largest AUROC over all scorers >= this scorer's AUROC}) /
    (B + 1): a p-value for "this scorer separates members from non-members" that stays valid when it is the
    best of ``len(scorers)`` tried (Westfall & Young 1993, "Resampling-Based Multiple Testing", single-step
    max-T). ``n_rows``: documents every scorer could score (the test needs the same rows for all).

    ``unit``: what was permuted, ``"groups"`` (the labels of whole groups: works, sources) or ``"documents"``;
    ``n_units``: how many; ``n_member_units``: how many of them are members. ``warning``: why groups were given
    but documents permuted (a group holding both members and non-members), else None.
    """

    scorers: tuple[str, ...]
    aurocs: dict[str, float]
    family_p: dict[str, float]
    n_permutations: int
    n_rows: int
    seed: int
    unit: str = "documents"
    n_units: int = 0
    n_member_units: int = 0
    warning: str | None = None

    @property
    def best(self) -> str:
        return max(self.aurocs, key=self.aurocs.__getitem__)

    @property
    def permuted(self) -> str:
        """The unit permuted, in words: "groups (20)" or "documents (100)"."""
        return f"{self.unit} ({self.n_units or self.n_rows})"

    @property
    def distinct_splits(self) -> int:
        """How many different member / non-member splits of the units exist: C(n_units, n_member_units). No
        permutation p-value goes below 1 / distinct_splits."""
        return math.comb(self.n_units or self.n_rows, self.n_member_units)

    def describe(self) -> str:
        best = self.best
        unit = (
            f"labels of whole groups permuted, {self.n_units} groups holding the {self.n_rows} documents scored by "
            f"every scorer"
            if self.unit == "groups"
            else f"labels of single documents permuted, {self.n_rows} documents scored by every scorer"
        )
        text = (
            f"best of {len(self.scorers)} scorers tried: {best} (AUROC {self.aurocs[best]:.3f}); corrected for "
            f"choosing it, {p_phrase(self.family_p[best])} (max-T over {self.n_permutations} label "
            f"permutations; {unit})"
        )
        if self.n_member_units and self.distinct_splits <= self.n_permutations:
            text += (
                f"; only {self.distinct_splits} distinct splits of {self.n_units} {self.unit} exist, so no p below "
                f"1/{self.distinct_splits}"
            )
        return text + (f". {self.warning}" if self.warning else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "single-step max-T permutation test over label permutations (Westfall & Young 1993)",
            "scorers_tried": list(self.scorers),
            "aurocs": self.aurocs,
            "family_wise_p": self.family_p,
            "best": self.best,
            "n_permutations": self.n_permutations,
            "permuted": self.permuted,
            "permuted_unit": self.unit,
            "n_units": self.n_units or self.n_rows,
            "n_member_units": self.n_member_units,
            "n_rows": self.n_rows,
            "seed": self.seed,
            "warning": self.warning,
        }


def group_index(groups: Sequence[Any], n: int) -> tuple[np.ndarray, list[str]]:
    """(index of each document's group, the group names in first-seen order); a missing group (None, NaN or
    "") is a group of its own."""
    if isinstance(groups, str) or len(groups) != n:
        raise InputError(f"give one group per document: got {len(groups)} groups for {n} documents")
    names: dict[str, int] = {}
    index = np.empty(n, dtype=np.int64)
    for row, group in enumerate(groups):
        missing = group is None or group == "" or (isinstance(group, float) and math.isnan(group))
        key = f"document #{row}" if missing else f"group {group}"
        index[row] = names.setdefault(key, len(names))
    return index, list(names)


def max_auroc_permutation_test(
    score_matrix: ArrayLike,
    labels: ArrayLike,
    *,
    names: Sequence[str],
    groups: Sequence[Any] | None = None,
    n_permutations: int = 999,
    seed: int = 0,
) -> SelectionTest:
    """Family-wise p-values for K scorers on the same documents: does any separate members from non-members?

    ``score_matrix``: (n, K), higher = member in every column, all finite. Labels are permuted
    ``n_permutations`` times (seeded); for each permutation the AUROC of every scorer is recomputed from its
    fixed ranks (AUROC = (sum of member ranks - n_1 (n_1 + 1) / 2) / (n_1 n_0), midranks for ties, n_1 and n_0
    of that permutation) and the largest kept. See :class:`SelectionTest`.

    ``groups``: the group (work, source) of each document; None, NaN or "" makes a document a group of its
    own. The permutation p-value is exact when the units permuted are exchangeable under the null, and
    documents of one work are not: they share the work's effect on the scores (its style, its era, its
    length), so permuting single documents splits every work across both sides and gives a null that is too
    narrow, and a p-value too small (20 works x 5 documents with a work effect of SD 1 and no signal at all:
    p <= 0.05 in about 19% of runs, ``tests/test_metrics.py``). With groups, and every group of one label,
    the labels of whole groups are permuted instead (exact when works, not documents, were assigned to the
    two sides at random), as the blind baseline does (``llm_mia.stats.blind_baseline``). When some group holds both
    labels,
    whole groups cannot move; documents are permuted then and ``warning`` says that the p-value can be too
    small. That fallback is kept rather than refusing because the alternative a user is left with, the
    uncorrected per-scorer interval, assumes independent documents too and ignores the choice of the best.

    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.ones(30), np.zeros(30)]
    >>> test = max_auroc_permutation_test(np.c_[2 * y + rng.normal(size=60), rng.normal(size=60)], y, names=["a", "b"])
    >>> test.best, test.family_p["a"] < 0.01, test.family_p["b"] > 0.05, test.permuted
    ('a', True, True, 'documents (60)')
    """
    from scipy.stats import rankdata

    matrix = np.asarray(score_matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        raise InputError(f"score matrix must be (documents, {len(names)} scorers); got shape {matrix.shape}")
    _, labels = _as_arrays(matrix[:, 0], labels)
    if not np.all(np.isfinite(matrix)):
        raise InputError("the selection test needs every scorer's score on every document; drop incomplete rows")
    if n_permutations < 1:
        raise InputError(f"n_permutations must be >= 1, got {n_permutations}")
    n = len(labels)
    ranks = rankdata(matrix, axis=0)  # (n, K) midranks

    def aurocs(indicator: np.ndarray) -> np.ndarray:  # (P, n) member indicator -> (P, K)
        n_1 = indicator.sum(axis=1, keepdims=True)  # (P, 1): varies when groups of different sizes move
        return (indicator @ ranks - n_1 * (n_1 + 1) / 2) / (n_1 * (n - n_1))

    observed = aurocs(labels[None, :].astype(np.float64))[0]  # (K,)
    rng = np.random.default_rng(seed)
    unit, n_units, n_member_units, warning = "documents", n, int(labels.sum()), None
    index = None
    if groups is not None:
        index, group_names = group_index(groups, n)
        members = np.bincount(index, weights=labels, minlength=len(group_names))  # (G,) members per group
        sizes = np.bincount(index, minlength=len(group_names))  # (G,)
        mixed = [name for name, m, size in zip(group_names, members, sizes, strict=True) if 0 < m < size]
        if mixed:
            warning = (
                f"{len(mixed)} of {len(group_names)} groups hold both members and non-members (first: "
                f"{mixed[0]}), so whole groups cannot be permuted and single documents were: documents of one "
                f"group share its effect, so this p-value can be too small"
            )
            index = None
        elif len(group_names) < n:
            unit, n_units, n_member_units = "groups", len(group_names), int((members > 0).sum())
    if index is not None and unit == "groups":
        group_labels = (np.bincount(index, weights=labels) > 0).astype(np.int64)  # (G,) each group's one label
        draws = np.array([rng.permutation(group_labels) for _ in range(n_permutations)])  # (B, G)
        permuted = draws[:, index].astype(np.float64)  # (B, n): every document takes its group's label
    else:  # singleton groups drawn the same way as documents, so they give the same p-values
        permuted = np.array([rng.permutation(labels) for _ in range(n_permutations)], dtype=np.float64)  # (B, n)
    null_max = aurocs(permuted).max(axis=1)  # (B,)
    family = (1 + (null_max[:, None] >= observed[None, :] - 1e-12).sum(axis=0)) / (n_permutations + 1)
    return SelectionTest(
        scorers=tuple(names),
        aurocs={name: float(a) for name, a in zip(names, observed, strict=True)},
        family_p={name: float(p) for name, p in zip(names, family, strict=True)},
        n_permutations=n_permutations,
        n_rows=n,
        seed=seed,
        unit=unit,
        n_units=n_units,
        n_member_units=n_member_units,
        warning=warning,
    )


def labelled_rows(frame: Any) -> tuple[Any, Any]:
    """(labelled rows, their 0/1 labels) of a score table; labels read by the one label rule
    (``llm_mia.io.documents.parse_label``: 1, 0, 1.0, "true", ...; empty or NaN = unlabelled)."""
    from llm_mia.io.documents import parse_label

    if "label" not in frame.columns:
        raise InputError("score table has no label column; evaluation needs labels (1 = member, 0 = non-member)")
    ids = frame["id"].astype(str).tolist() if "id" in frame.columns else [str(i) for i in range(len(frame))]
    parsed = [parse_label(value, f"document {doc_id!r}") for doc_id, value in zip(ids, frame["label"], strict=True)]
    keep = np.array([label is not None for label in parsed], dtype=bool)
    if not keep.any():
        raise InputError(
            f"none of the {len(frame)} rows has a label; evaluation needs 1 = member / 0 = non-member labels"
        )
    return frame[keep], np.array([label for label in parsed if label is not None], dtype=np.int64)


def _labelled_columns(frame: Any, columns: Sequence[str] | None) -> tuple[Any, list[str], Any, Any]:
    """(labelled rows, score column names, labels, non-ok mask) of a score table, validated."""
    from llm_mia.io.score_files import pick_score_columns

    labelled, labels = labelled_rows(frame)
    names = pick_score_columns(frame, columns, source="score table")
    not_ok = (labelled["status"] != "ok").to_numpy() if "status" in labelled.columns else None
    return labelled, names, labels, not_ok


def evaluate_frame(
    frame: Any,
    *,
    columns: Sequence[str] | None = None,
    fprs: Sequence[float] = DEFAULT_FPRS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, ScorerEvaluation]:
    """Evaluate every score column of a score table (a pandas DataFrame as ``llm_mia.score`` returns).

    Unlabelled rows are ignored. Per scorer, rows with a status other than ``ok`` or a missing score are
    excluded and counted in ``n_excluded``. Every scorer uses the same bootstrap seed, so scorers scored on
    the same rows are resampled identically.
    """
    labelled, names, labels, not_ok = _labelled_columns(frame, columns)
    return {
        name: evaluate_scorer(
            labelled[name].to_numpy(dtype=np.float64, na_value=np.nan),
            labels,
            name=name,
            fprs=fprs,
            n_bootstrap=n_bootstrap,
            confidence=confidence,
            seed=seed,
            exclude=not_ok,
        )
        for name in names
    }
