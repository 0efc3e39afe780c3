"""Metrics on labelled score sets: AUROC with a bootstrap interval, TPR at low FPR, oracle balanced accuracy.

Pure functions over arrays. Convention everywhere: ``labels`` are 1 for members, 0 for non-members, and a
higher score means "more likely a member". Nothing here flips a sign: a scorer whose AUROC is below 0.5 is
reported below 0.5.

The numbers the field reports and what each rests on:

* AUROC = P(S_member > S_nonmember) + 0.5 P(S_member = S_nonmember), the Mann-Whitney U statistic divided by
  n_members * n_nonmembers (Hanley & McNeil 1982). Computed by ``sklearn.metrics.roc_auc_score``; the
  bootstrap uses ``scipy.stats.mannwhitneyu`` (the same number, vectorised over resamples).
* TPR at a target FPR (Carlini et al. 2022, "Membership inference attacks from first principles"): the largest
  true-positive rate over ROC thresholds whose false-positive rate is <= the target. With n non-members the
  achievable FPRs are 0, 1/n, 2/n, ...; when 1/n > target the figure rests on zero false positives and says
  nothing about the FPR asked for. Every figure carries n and that flag.
* Balanced accuracy at the best threshold = max_t (TPR(t) + 1 - FPR(t)) / 2. The threshold is chosen on the
  very data it is scored on, so it is an *oracle* (optimistic) figure, labelled as such.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llm_mia.errors import InputError

DEFAULT_FPRS: tuple[float, ...] = (0.001, 0.01, 0.05)


def _as_arrays(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
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


def auroc(scores: Any, labels: Any) -> float:
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


def bootstrap_auroc_ci(
    scores: Any,
    labels: Any,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval for the AUROC.

    Method: resample (score, label) pairs with replacement within each class (stratified, so every resample
    keeps n_1 members and n_0 non-members), compute AUROC = U / (n_1 n_0) on each resample with
    ``scipy.stats.mannwhitneyu`` and take the (1 - confidence)/2 and (1 + confidence)/2 quantiles (Efron &
    Tibshirani 1993, ch. 13). The resample indices depend only on ``seed``, n_1 and n_0, so two scorers
    evaluated on the same documents with the same seed are resampled identically (paired).
    With perfect separation every resample gives 1.0 and the interval collapses to [1, 1]; it then says
    nothing about how few texts that rests on, so read it with n_1 and n_0.
    """
    from scipy.stats import mannwhitneyu

    if n_bootstrap < 1:
        raise InputError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    scores, labels = _as_arrays(scores, labels)
    members, nonmembers = scores[labels == 1], scores[labels == 0]
    rng = np.random.default_rng(seed)
    member_draws = members[rng.integers(0, len(members), size=(n_bootstrap, len(members)))]  # (B, n_1)
    nonmember_draws = nonmembers[rng.integers(0, len(nonmembers), size=(n_bootstrap, len(nonmembers)))]  # (B, n_0)
    u_statistic = mannwhitneyu(member_draws, nonmember_draws, axis=1, method="asymptotic").statistic  # (B,)
    aurocs = u_statistic / (len(members) * len(nonmembers))
    tail = (1 - confidence) / 2
    low, high = np.quantile(aurocs, [tail, 1 - tail])
    return float(low), float(high)


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
    only flagging nothing keeps the FPR within the target);
    ``tpr_ci``: Clopper-Pearson interval of the TPR over ``n_members`` (the threshold itself is chosen on the
    same data, so this understates the uncertainty); ``resolvable``: False when 1/n_nonmembers > target_fpr,
    i.e. the figure rests on zero false positives and cannot speak about the FPR asked for.
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
    def min_resolvable_fpr(self) -> float:
        """1/n: the smallest nonzero FPR n non-members can measure."""
        return 1.0 / self.n_nonmembers

    def note(self) -> str | None:
        """Plain words when the figure cannot resolve its FPR, else None."""
        if self.resolvable:
            return None
        needed = math.ceil(1 / self.target_fpr)
        return (
            f"TPR@{format_fpr(self.target_fpr)} FPR rests on {self.n_nonmembers} non-members: the smallest FPR "
            f"they resolve is 1/{self.n_nonmembers} = {format_fpr(self.min_resolvable_fpr)}; "
            f"it needs >= {needed} non-members"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_fpr": self.target_fpr,
            "tpr": self.tpr,
            "tpr_ci": list(self.tpr_ci),
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


def tpr_at_fpr(scores: Any, labels: Any, *, target_fpr: float, confidence: float = 0.95) -> TprAtFpr:
    """TPR at the largest ROC threshold whose FPR <= ``target_fpr`` (Carlini et al. 2022).

    Computed from ``sklearn.metrics.roc_curve`` (decision: member when score >= threshold). When no threshold
    reaches a positive FPR within the target (the usual case when 1/n_nonmembers > target), the figure is the
    TPR at FPR 0 and ``resolvable`` is False.

    >>> r = tpr_at_fpr([0.1, 0.2, 0.3, 0.9, 0.8, 0.25], [0, 0, 0, 1, 1, 1], target_fpr=0.4)
    >>> (r.tpr, r.achieved_fpr, r.resolvable)
    (1.0, 0.3333333333333333, True)
    """
    from sklearn.metrics import roc_curve

    if not 0 < target_fpr < 1:
        raise InputError(f"target FPR must lie strictly between 0 and 1, got {target_fpr}")
    scores, labels = _as_arrays(scores, labels)
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    # fpr is non-decreasing; the last index with fpr <= target has the largest tpr among them
    index = int(np.searchsorted(fpr, target_fpr, side="right") - 1)
    n_members, n_nonmembers = int(labels.sum()), int(len(labels) - labels.sum())
    true_positives = round(float(tpr[index]) * n_members)
    return TprAtFpr(
        target_fpr=target_fpr,
        tpr=float(tpr[index]),
        tpr_ci=clopper_pearson(true_positives, n_members, confidence=confidence),
        achieved_fpr=float(fpr[index]),
        threshold=float(thresholds[index]),
        n_members=n_members,
        n_nonmembers=n_nonmembers,
        resolvable=1.0 / n_nonmembers <= target_fpr,
    )


def oracle_balanced_accuracy(scores: Any, labels: Any) -> float:
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "auroc": self.auroc,
            "auroc_ci": list(self.auroc_ci),
            "confidence": self.confidence,
            "tpr_at_fpr": [r.to_dict() for r in self.tpr_at_fpr.values()],
            "oracle_balanced_accuracy": self.oracle_balanced_accuracy,
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            "n_excluded": self.n_excluded,
        }


def evaluate_scorer(
    scores: Any,
    labels: Any,
    *,
    name: str = "score",
    fprs: Sequence[float] = DEFAULT_FPRS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    exclude: Any = None,
) -> ScorerEvaluation:
    """AUROC [bootstrap CI], TPR at each FPR in ``fprs`` with its n and flag, oracle balanced accuracy.

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
    return ScorerEvaluation(
        name=name,
        auroc=auroc(kept_scores, kept_labels),
        auroc_ci=bootstrap_auroc_ci(
            kept_scores, kept_labels, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
        ),
        confidence=confidence,
        tpr_at_fpr={f: tpr_at_fpr(kept_scores, kept_labels, target_fpr=f, confidence=confidence) for f in sorted(fprs)},
        oracle_balanced_accuracy=oracle_balanced_accuracy(kept_scores, kept_labels),
        n_members=int(kept_labels.sum()),
        n_nonmembers=int(len(kept_labels) - kept_labels.sum()),
        n_excluded=n_excluded,
        roc=(tuple(float(x) for x in fpr), tuple(float(x) for x in tpr)),
    )


def labelled_rows(frame: Any) -> tuple[Any, Any]:
    """(labelled rows, their 0/1 labels) of a score table; labels read by the one label rule
    (``llm_mia.documents.parse_label``: 1, 0, 1.0, "true", ...; empty or NaN = unlabelled)."""
    from llm_mia.documents import parse_label

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
    from llm_mia.score_files import pick_score_columns

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
