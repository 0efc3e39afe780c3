"""From scores to calibrated verdicts, using known non-members (controls) as the null distribution.

Controls are texts the model cannot have seen: published after its training cutoff, or held out by
construction. Everything here rests on one assumption, stated once: **under the null, a document's score is
exchangeable with the control scores** (the controls are drawn from the same distribution as the documents
would be if they were non-members: same kind of text, same length and format). Check it with the blind
baseline (``llm_mia.stats.blind_baseline``) and the length check of ``llm_mia.workflows.calibrate``.

* Per-document p-value (conformal / permutation p-value, e.g. Vovk et al. 2005; Bates et al. 2023,
  "Testing for outliers with conformal p-values"):

      p(s) = (1 + #{controls >= s}) / (n + 1)

  valid for any score distribution: P(p <= alpha) <= alpha for a fresh non-member. The smallest attainable
  p-value is 1 / (n + 1).
* Threshold at a target FPR alpha, two guarantees (``guarantee``). A threshold t at the (k+1)-th largest of n
  controls flags s > t; for a continuous score its realised FPR on fresh non-members is
  1 - F(t) ~ Beta(k + 1, n - k) over the draw of the controls.

  - ``marginal`` (default): k = floor(alpha (n + 1)) - 1, so the *expected* FPR, (k + 1) / (n + 1), is
    <= alpha; the same as p(s) <= alpha. It holds on average over control sets: for the one set at hand the
    realised FPR exceeds alpha with probability P(Beta(k + 1, n - k) > alpha), which is large for small n
    (0.37 for 100 controls at 1%) and is printed beside every such threshold.
  - ``conditional``: the largest k with P(Beta(k + 1, n - k) > alpha) <= delta, so that with probability at
    least 1 - delta over the controls drawn, *this* threshold's FPR is <= alpha (Vovk 2012, "Conditional
    validity of inductive conformal predictors"; Bates et al. 2023, sec. 3). It needs more controls: at least
    log(delta) / log(1 - alpha) (299 for 1% at delta = 0.05).

  Both are fitted on all the controls; holding some out to measure the FPR (``holdout``) only halves the
  controls at these sizes, so it is optional.
* Across many documents, Benjamini-Hochberg (1995) adjustment (``scipy.stats.false_discovery_control``)
  controls the false discovery rate among the documents flagged; it is the default for more than one
  document. With n controls no p-value goes below 1 / (n + 1), so BH across N documents can flag anything
  only if at least ceil(N / (alpha (n + 1))) documents score above every control: :func:`bh_floor` says so.
* Documents in groups (several documents of one work or source, ``Document.group``): the unit of the correction is
  the group, not the document (:func:`adjust_by_group`). Documents of one work share its effect on the scores
  (style, era, length), so their p-values move together. BH over them stays valid in expectation when that
  dependence is positive (PRDS: Benjamini & Yekutieli 2001, "The control of the false discovery rate in multiple
  testing under dependency", Ann. Statist. 29, Theorem 1.2; one-sided tests of scores with non-negative correlations
  are PRDS, their sec. 3, and so are conformal p-values sharing one control set, Bates et al. 2023), but it counts
  documents: a work with a high effect yields several discoveries at once, which loosen the BH threshold for
  everything else (BH rejects the j-th smallest p at alpha j / N), so more unseen *works* get a document called a
  member than alpha allows (20 works x 10 documents, all of 5 works trained, work effect SD 1: on average 0.13 of
  the works called were unseen, against 0.03 with groups as units; ``tests/test_calibration.py``), and "k documents
  called members" reads as k findings when it is one. So with groups: (1) a p-value per group, Simes's (1986, "An
  improved Bonferroni procedure for multiple tests of significance", Biometrika 73) min_j m p_(j) / j over its m
  documents, for the null "no document of this group was trained on": valid for independent p-values (Simes 1986)
  and for PRDS ones (it rejects exactly when BH over the group rejects anything, and when every null holds the FDR
  is the chance of any rejection, so Benjamini & Yekutieli's theorem applies; Sarkar 1998, "Some probability
  inequalities for ordered MTP2 random variables: a proof of the Simes conjecture", Ann. Statist. 26, for MTP2); (2)
  BH over the groups: groups are called members with false discovery rate <= alpha over groups; (3) within each of
  the R groups selected out of G, BH at level alpha R / G names the documents (Benjamini & Bogomolov 2014,
  "Selective inference on multiple families of hypotheses", JRSS B 76), which keeps the false discovery rate within
  the selected groups, averaged over them, <= alpha. Every selected group has at least one such document (its
  smallest p passes, since Simes's p is its smallest BH-adjusted p). None of this repairs p-values that are invalid
  one by one: a document is compared with the controls as if exchangeable with them, which needs controls drawn from
  works like the documents' own (many control works, not many passages of a few); ``llm-mia dataset-test`` tests
  whole works against control works.

Calibration data must be disjoint from the data a verdict is given on: a control scored again as a
"suspect" would be compared against itself. ``fit`` takes the controls; ``p_values`` / ``predict`` /
``verdicts`` take other documents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

import numpy as np
from numpy.typing import ArrayLike

from llm_mia.errors import InputError, NotFittedError
from llm_mia.stats.metrics import OptionalScores, clopper_pearson, group_index, p_phrase

ADJUSTMENTS = ("none", "bh")
GUARANTEES = ("marginal", "conditional")
MEMBER, NON_MEMBER, INCONCLUSIVE = "member", "non-member", "inconclusive"


def _finite_controls(control_scores: ArrayLike) -> np.ndarray:
    controls = np.asarray(control_scores, dtype=np.float64)
    if controls.ndim != 1 or len(controls) == 0:
        raise InputError(f"controls must be a non-empty 1-d sequence of scores; got shape {controls.shape}")
    if not np.all(np.isfinite(controls)):
        bad = int(np.sum(~np.isfinite(controls)))
        raise InputError(f"{bad} control score(s) are NaN or infinite; drop rows without a score first")
    return controls


def empirical_p_values(scores: ArrayLike, control_scores: ArrayLike) -> np.ndarray:
    """p(s) = (1 + #{controls >= s}) / (n + 1) for each score; NaN stays NaN.

    Higher score = more member-like, so small p = unusually high for a non-member.

    >>> empirical_p_values([5.0, 0.5, -1.0], [0.0, 1.0, 2.0, 3.0]).tolist()
    [0.2, 0.8, 1.0]
    """
    controls = np.sort(_finite_controls(control_scores))
    scores = np.asarray(scores, dtype=np.float64)
    at_or_above = len(controls) - np.searchsorted(controls, scores, side="left")  # #{controls >= s}
    p = (1.0 + at_or_above) / (len(controls) + 1.0)
    return np.where(np.isnan(scores), np.nan, p)


def benjamini_hochberg(p_values: ArrayLike) -> np.ndarray:
    """Benjamini-Hochberg (1995) adjusted p-values (``scipy.stats.false_discovery_control(method="bh")``).

    p_adj(i) = min_{j >= i} min(1, m p_(j) / j) over the sorted p-values; NaN entries are left out of m and
    stay NaN. Flagging p_adj <= q controls the false discovery rate at q (independent or PRDS p-values;
    conformal p-values sharing one control set are PRDS, Bates et al. 2023).
    """
    from scipy.stats import false_discovery_control

    p_values = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full_like(p_values, np.nan)
    present = ~np.isnan(p_values)
    if present.any():
        adjusted[present] = false_discovery_control(p_values[present], method="bh")
    return adjusted


def simes_p_value(p_values: ArrayLike) -> float:
    """Simes (1986) combined p-value of the null "none of these hypotheses is false": min_j m p_(j) / j over the
    sorted p-values (NaN entries left out; NaN when none is left). Valid when the p-values are independent or
    PRDS (Sarkar 1998); equal to the smallest BH-adjusted p-value of the set.

    >>> simes_p_value([0.04, 0.01, 0.03, np.nan])
    0.03
    """
    p_values = np.asarray(p_values, dtype=np.float64)
    present = np.sort(p_values[~np.isnan(p_values)])  # (m,)
    if len(present) == 0:
        return math.nan
    return float(min(1.0, np.min(len(present) * present / np.arange(1, len(present) + 1))))


@dataclass(frozen=True)
class GroupAdjustment:
    """The correction over groups, one entry per document (:func:`adjust_by_group`).

    ``group_p``: Simes p-value of the document's group (NaN when no document of the group has a p-value);
    ``group_adjusted``: that p-value BH-adjusted over the ``n_groups`` groups with one; ``adjusted``: for a
    document of one of the ``n_selected`` groups selected at level q, its BH-adjusted p-value within its group
    times n_groups / n_selected (capped at 1), which is <= q exactly when Benjamini & Bogomolov's (2014)
    second stage calls it; NaN for documents of other groups and for documents without a p-value.
    """

    group_p: np.ndarray
    group_adjusted: np.ndarray
    adjusted: np.ndarray
    n_groups: int
    n_selected: int


def adjust_by_group(p_values: ArrayLike, groups: Sequence[Any], *, q: float) -> GroupAdjustment:
    """Simes within each group, BH over the groups at level ``q``, then BH within each selected group at
    q x n_selected / n_groups (module docstring). A document whose group is None, NaN or "" is a group of its
    own. NaN p-values (no score, not comparable) are left out everywhere.

    >>> adjustment = adjust_by_group([0.001, 0.2, 0.5, 0.6, 0.01], ["a", "a", "b", "b", None], q=0.05)
    >>> adjustment.group_p.tolist(), adjustment.n_selected
    ([0.002, 0.002, 0.6, 0.6, 0.01], 2)
    >>> [round(x, 4) for x in adjustment.adjusted.tolist()]  # within "a": 0.001 x 2 / 1 and 0.2, then x 3 / 2
    [0.003, 0.3, nan, nan, 0.015]
    """
    from scipy.stats import false_discovery_control

    if not 0 < q < 1:
        raise InputError(f"q must lie strictly between 0 and 1, got {q}")
    p_values = np.asarray(p_values, dtype=np.float64)
    index, names = group_index(groups, len(p_values))  # (n,) group of each document
    present = ~np.isnan(p_values)
    simes = np.array([simes_p_value(p_values[index == g]) for g in range(len(names))])  # (G,)
    across = benjamini_hochberg(simes)  # (G,) NaN for groups without a p-value
    selected = np.where(np.isnan(across), False, across <= q)  # (G,)
    n_groups, n_selected = int((~np.isnan(simes)).sum()), int(selected.sum())
    adjusted = np.full(len(p_values), np.nan)
    for g in np.flatnonzero(selected):
        rows = np.flatnonzero((index == g) & present)
        within = false_discovery_control(p_values[rows], method="bh")
        adjusted[rows] = np.minimum(1.0, within * n_groups / n_selected)
    return GroupAdjustment(
        group_p=simes[index],
        group_adjusted=across[index],
        adjusted=adjusted,
        n_groups=n_groups,
        n_selected=n_selected,
    )


def max_false_alarms(n_controls: int, fpr: float) -> int:
    """Marginal rule: k = floor(fpr (n + 1)) - 1, the most controls a score may tie or fall below and still
    get p <= fpr (-1: no threshold reaches ``fpr``)."""
    return math.floor(fpr * (n_controls + 1) + 1e-9) - 1


def exceed_probability(n_controls: int, k: int, fpr: float) -> float:
    """P(realised FPR > fpr) for a threshold at the (k+1)-th largest of n controls: P(Beta(k+1, n-k) > fpr).

    >>> round(exceed_probability(100, 0, 0.01), 3)  # 100 controls, threshold at the largest, target 1%
    0.366
    """
    from scipy.stats import beta

    return float(beta.sf(fpr, k + 1, n_controls - k))


def conditional_false_alarms(n_controls: int, fpr: float, delta: float) -> int:
    """Conditional rule: the largest k with P(Beta(k + 1, n - k) > fpr) <= delta (-1: none).

    >>> conditional_false_alarms(299, 0.01, 0.05), conditional_false_alarms(298, 0.01, 0.05)
    (0, -1)
    """
    best = -1
    for k in range(n_controls):
        if exceed_probability(n_controls, k, fpr) > delta:
            break
        best = k
    return best


def min_controls(fpr: float, *, guarantee: str = "marginal", delta: float = 0.05) -> int:
    """The fewest controls for which a threshold at ``fpr`` exists under ``guarantee``.

    >>> min_controls(0.01), min_controls(0.01, guarantee="conditional")
    (99, 299)
    """
    if guarantee == "marginal":
        return math.ceil(1 / fpr - 1e-9) - 1
    return math.ceil(math.log(delta) / math.log(1 - fpr) - 1e-9)


def bh_floor(n_controls: int, n_documents: int, q: float) -> int:
    """How many documents must score above every control before BH at level q can flag any: with p-values no
    smaller than 1 / (n + 1), the j-th smallest passes only if N / (j (n + 1)) <= q.

    >>> bh_floor(100, 110, 0.05), bh_floor(5000, 110, 0.05)
    (22, 1)
    """
    return max(1, math.ceil(n_documents / (q * (n_controls + 1)) - 1e-9))


class FprCheckRecord(TypedDict):
    """:class:`FprCheck` in JSON."""

    n_controls: int
    false_positives: int
    fpr: float
    fpr_ci: list[float]
    confidence: float


@dataclass(frozen=True)
class FprCheck:
    """The FPR a fitted threshold achieves on held-out controls, with a Clopper-Pearson interval."""

    n_controls: int
    false_positives: int
    fpr: float
    fpr_ci: tuple[float, float]
    confidence: float

    def describe(self) -> str:
        low, high = self.fpr_ci
        return (
            f"held-out FPR {self.fpr:.3g} ({self.false_positives} of {self.n_controls}) "
            f"[{self.confidence:.0%} CI {low:.3g}, {high:.3g}] (Clopper-Pearson)"
        )

    def to_dict(self) -> FprCheckRecord:
        return {
            "n_controls": self.n_controls,
            "false_positives": self.false_positives,
            "fpr": self.fpr,
            "fpr_ci": list(self.fpr_ci),
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class DocumentVerdict:
    """One document's verdict and the numbers that led to it.

    ``verdict``: "member" (consistent with training on this text), "non-member" (not distinguishable from the
    control texts) or "inconclusive" (no score, a text unlike the controls, or p <= alpha only before the
    multiple-testing adjustment). ``p_adjusted`` is None unless an adjustment was asked for: BH over the
    documents, or, with groups, BH within the document's group scaled by n_groups / n_selected (None when its
    group was not selected). ``correction``: what the adjustment was, in words, and ``adjusted_over`` its unit
    ("40 documents", "12 groups"; None without one). ``group`` and, with groups as the unit, the group's Simes
    p-value, its BH-adjusted value over the groups and the group's own verdict.
    """

    id: str
    score: float | None
    p_value: float | None
    p_adjusted: float | None
    verdict: str
    statement: str
    alpha: float
    threshold: float
    group: str | None = None
    group_p_value: float | None = None
    group_p_adjusted: float | None = None
    group_verdict: str | None = None
    correction: str = "none: each document judged alone"
    adjusted_over: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "score": self.score,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "verdict": self.verdict,
            "statement": self.statement,
            "alpha": self.alpha,
            "threshold": self.threshold,
            "correction": self.correction,
            "adjusted_over": self.adjusted_over,
            "group_p_value": self.group_p_value,
            "group_p_adjusted": self.group_p_adjusted,
            "group_verdict": self.group_verdict,
        }


@dataclass(frozen=True)
class GroupVerdict:
    """One group's verdict when groups are the unit of the correction: "member" (consistent with training on
    some of its documents: its Simes p-value passes BH over the groups), "non-member" or "inconclusive" (Simes
    p <= alpha for this group alone but not after the adjustment, or no document with a comparable score).
    ``n_members``: its documents called members (the second stage)."""

    group: str
    n_documents: int
    n_judged: int
    n_members: int
    p_value: float | None
    p_adjusted: float | None
    verdict: str
    statement: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def group_verdicts(verdicts: Sequence[DocumentVerdict]) -> list[GroupVerdict]:
    """The group verdicts behind document verdicts judged with groups as the unit, in first-seen order (a
    document without a group is a group of its own, named by its id); empty when groups were not the unit."""
    units: dict[str, list[DocumentVerdict]] = {}
    for verdict in verdicts:
        if verdict.group_verdict is not None:
            units.setdefault(verdict.group if verdict.group is not None else verdict.id, []).append(verdict)
    results = []
    for name, members in units.items():
        first = members[0]
        assert first.group_verdict is not None  # only documents judged by group are in units
        judged = sum(v.p_value is not None for v in members)
        p, p_adj = first.group_p_value, first.group_p_adjusted
        if p is None or p_adj is None:  # the group's Simes p-value is missing exactly when its adjusted one is
            statement = "no verdict: none of its documents has a score comparable with the controls"
        elif first.group_verdict == MEMBER:
            statement = (
                f"consistent with training on some of its documents (Simes {p_phrase(p)} over its {judged} judged "
                f"documents, BH-adjusted {p_phrase(p_adj)} over {first.adjusted_over})"
            )
        elif first.group_verdict == INCONCLUSIVE:
            statement = (
                f"inconclusive: Simes {p_phrase(p)} over its {judged} judged documents is at most {first.alpha:g} "
                f"for this group alone, but not after BH over {first.adjusted_over} (adjusted "
                f"{p_phrase(p_adj)})"
            )
        else:
            statement = (
                f"not distinguishable from the control texts (Simes {p_phrase(p)} over its {judged} judged documents)"
            )
        results.append(
            GroupVerdict(
                group=name,
                n_documents=len(members),
                n_judged=judged,
                n_members=sum(v.verdict == MEMBER for v in members),
                p_value=p,
                p_adjusted=p_adj,
                verdict=first.group_verdict,
                statement=statement,
            )
        )
    return results


class FprCalibrator:
    """Threshold at a target false-positive rate, p-values and verdicts, fitted on known non-member scores.

    scikit-learn conventions: ``__init__`` stores settings, ``fit(control_scores)`` learns ``controls_``
    (sorted), ``n_controls_``, ``k_`` (controls allowed above the threshold), ``threshold_`` and
    ``exceed_probability_`` and returns self; ``check_fpr(heldout_scores)`` stores ``fpr_check_``. The controls
    given to ``fit``, held-out controls and the documents judged must be disjoint. See the module docstring
    for ``guarantee`` (``marginal`` or ``conditional`` at confidence 1 - ``delta``) and ``adjust``.

    Decision rule: member when score > ``threshold_``; with ``adjust="bh"``, when the BH-adjusted p-value is
    <= ``fpr`` (a false discovery rate).

    >>> calibrator = FprCalibrator(fpr=0.25).fit([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    >>> calibrator.threshold_, calibrator.predict([6.5, 7.5]).tolist()
    (6.0, [True, True])
    """

    def __init__(
        self,
        *,
        fpr: float = 0.01,
        guarantee: str = "marginal",
        delta: float = 0.05,
        confidence: float = 0.95,
        adjust: str = "none",
    ) -> None:
        self.fpr = fpr
        self.guarantee = guarantee
        self.delta = delta
        self.confidence = confidence
        self.adjust = adjust

    def _validate_settings(self) -> None:
        if not 0 < self.fpr < 1:
            raise InputError(f"fpr must lie strictly between 0 and 1, got {self.fpr}; e.g. 0.01 for 1%")
        if self.guarantee not in GUARANTEES:
            raise InputError(f"guarantee must be one of {', '.join(GUARANTEES)}; got {self.guarantee!r}")
        if not 0 < self.delta < 1:
            raise InputError(f"delta must lie strictly between 0 and 1, got {self.delta}; e.g. 0.05")
        if not 0 < self.confidence < 1:
            raise InputError(f"confidence must lie strictly between 0 and 1, got {self.confidence}")
        if self.adjust not in ADJUSTMENTS:
            raise InputError(f"adjust must be one of {', '.join(ADJUSTMENTS)}; got {self.adjust!r}")

    def fit(self, control_scores: ArrayLike) -> FprCalibrator:
        """Learn the threshold from known non-member scores (all finite)."""
        self._validate_settings()
        controls = np.sort(_finite_controls(control_scores))
        n = len(controls)
        if self.guarantee == "marginal":
            k = max_false_alarms(n, self.fpr)
        else:
            k = conditional_false_alarms(n, self.fpr, self.delta)
        if k < 0:
            needed = min_controls(self.fpr, guarantee=self.guarantee, delta=self.delta)
            raise InputError(
                f"{n} controls cannot give a {self.guarantee} FPR of {self.fpr:g}"
                + (f" at {1 - self.delta:.0%} confidence" if self.guarantee == "conditional" else "")
                + f": use at least {needed} controls, or a larger FPR"
                + ("" if self.guarantee == "marginal" else ", or --guarantee marginal")
            )
        self.controls_ = controls
        self.n_controls_ = n
        self.k_ = k
        self.threshold_ = float(controls[n - 1 - k])  # the (k+1)-th largest control
        self.exceed_probability_ = exceed_probability(n, k, self.fpr)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(control_scores) first")

    def guarantee_statement(self) -> str:
        """What the threshold guarantees, in words, with the numbers it rests on."""
        self._check_fitted()
        n, alpha = self.n_controls_, self.fpr
        if self.guarantee == "conditional":
            return (
                f"FPR <= {alpha:g} with {1 - self.delta:.0%} confidence over the {n} controls drawn "
                f"(calibration-conditional)"
            )
        return (
            f"FPR <= {alpha:g} on average over sets of {n} controls (marginal); for this set the FPR exceeds "
            f"{alpha:g} with probability {self.exceed_probability_:.2g}"
        )

    def p_values(self, scores: ArrayLike) -> np.ndarray:
        """p = (1 + #{controls >= s}) / (n + 1) per score (NaN for a missing score)."""
        self._check_fitted()
        return empirical_p_values(scores, self.controls_)

    def predict(self, scores: ArrayLike) -> np.ndarray:
        """True where a score is flagged as a member at the target FPR (score > threshold_; NaN -> False)."""
        self._check_fitted()
        scores = np.asarray(scores, dtype=np.float64)
        return np.where(np.isnan(scores), False, scores > self.threshold_)

    def check_fpr(self, heldout_scores: ArrayLike) -> FprCheck:
        """The FPR the threshold achieves on held-out controls (not the ones it was fitted on)."""
        self._check_fitted()
        heldout = _finite_controls(heldout_scores)
        false_positives = int(np.sum(heldout > self.threshold_))
        self.fpr_check_ = FprCheck(
            n_controls=len(heldout),
            false_positives=false_positives,
            fpr=false_positives / len(heldout),
            fpr_ci=clopper_pearson(false_positives, len(heldout), confidence=self.confidence),
            confidence=self.confidence,
        )
        return self.fpr_check_

    def verdicts(
        self,
        scores: OptionalScores,
        *,
        ids: Sequence[str] | None = None,
        reasons: Sequence[str | None] | None = None,
        not_comparable: Sequence[str | None] | None = None,
        groups: Sequence[str | None] | None = None,
    ) -> list[DocumentVerdict]:
        """A verdict per document. ``reasons[i]``: why document i has no score; ``not_comparable[i]``: why
        document i is not comparable with the controls (e.g. longer than every control): it is then
        "inconclusive" whatever its score, and left out of the adjustment. ``groups[i]``: document i's group
        (work, source; None: a group of its own); with ``adjust="bh"`` the groups become the unit of the
        correction (:func:`adjust_by_group`), and :func:`group_verdicts` reads the group verdicts back.

        member: score > threshold_; with ``adjust="bh"``, BH-adjusted p <= fpr over the documents, or, with
        groups, its group selected (Simes within, BH across groups) and its p passing BH within the group at
        fpr x selected / groups. non-member: otherwise. inconclusive: no score, not comparable, or (with BH)
        p <= fpr before the adjustment but not after it.
        """
        self._check_fitted()
        self._validate_settings()
        scores = np.asarray([np.nan if s is None else s for s in scores], dtype=np.float64)
        ids = [str(i) for i in range(len(scores))] if ids is None else [str(i) for i in ids]
        if len(ids) != len(scores):
            raise InputError(f"got {len(ids)} ids for {len(scores)} scores")
        if groups is not None and (isinstance(groups, str) or len(groups) != len(scores)):
            raise InputError(f"give one group per document (None for none): got {len(groups)} for {len(scores)}")
        unlike = list(not_comparable) if not_comparable is not None else [None] * len(scores)
        usable = np.array([not math.isnan(s) and u is None for s, u in zip(scores, unlike, strict=True)])
        p = self.p_values(np.where(usable, scores, np.nan))
        alpha, n, judged = self.fpr, self.n_controls_, int(usable.sum())
        by_group = None
        if self.adjust == "bh" and groups is not None:
            by_group = adjust_by_group(p, groups, q=alpha)
            adjusted = by_group.adjusted
            over = f"{by_group.n_groups} groups"
            correction = (
                f"Simes within each of {by_group.n_groups} groups, Benjamini-Hochberg across the groups; documents "
                f"by Benjamini-Hochberg within each of the {by_group.n_selected} groups selected, at {alpha:g} x "
                f"{by_group.n_selected}/{by_group.n_groups} (Benjamini & Bogomolov 2014)"
            )
            control = (
                f"false discovery rate <= {alpha:g} across {by_group.n_groups} groups (Simes within each, "
                f"Benjamini-Hochberg across them) and, averaged over the groups selected, within them; on {n} controls"
            )
        elif self.adjust == "bh":
            adjusted, over = benjamini_hochberg(p), f"{judged} documents"
            correction = f"Benjamini-Hochberg across {judged} documents"
            control = f"false discovery rate <= {alpha:g} across {judged} documents, on {n} controls"
        else:
            adjusted, over, correction = None, None, "none: each document judged alone"
            control = self.guarantee_statement()

        def present(value: float) -> float | None:
            return None if value is None or math.isnan(value) else float(value)

        results = []
        for index, (doc_id, score, p_value) in enumerate(zip(ids, scores, p, strict=True)):
            p_adj = None if adjusted is None else present(adjusted[index])
            group = None if groups is None else groups[index]
            group = None if group is None or group == "" or (isinstance(group, float) and math.isnan(group)) else group
            group_p = group_adj = group_verdict = None
            if by_group is not None:
                group_p, group_adj = present(by_group.group_p[index]), present(by_group.group_adjusted[index])
                group_verdict = (
                    MEMBER
                    if group_adj is not None and group_adj <= alpha
                    else INCONCLUSIVE
                    if group_p is None or group_p <= alpha
                    else NON_MEMBER
                )
            shown = f"{p_phrase(p_value)}" if not math.isnan(p_value) else ""
            if p_adj is not None:
                shown += f", BH-adjusted {'within its group ' if by_group is not None else ''}{p_phrase(p_adj)}"
            if by_group is not None and group_p is not None and group_adj is not None:  # both or neither
                name = f"its group {str(group)!r}" if group is not None else "this document (a group of its own)"
                shown += f"; {name}: Simes {p_phrase(group_p)}, BH-adjusted over {over} {p_phrase(group_adj)}"
            if math.isnan(score):
                reason = reasons[index] if reasons is not None and reasons[index] else "score unavailable"
                verdict, statement = INCONCLUSIVE, f"no verdict: no score ({reason})"
            elif unlike[index] is not None:
                verdict, statement = INCONCLUSIVE, f"no verdict: {unlike[index]}, so its score is not comparable"
            elif (p_adj is not None and p_adj <= alpha) if adjusted is not None else (score > self.threshold_):
                verdict, statement = MEMBER, f"consistent with training on this text ({shown}; {control})"
            elif adjusted is not None and p_value <= alpha:
                after = (
                    "the adjustment within its group, which is consistent with training"
                    if group_verdict == MEMBER
                    else "the adjustment over groups"
                    if by_group is not None
                    else "the Benjamini-Hochberg adjustment across documents"
                )
                verdict, statement = (
                    INCONCLUSIVE,
                    f"inconclusive: {p_phrase(p_value)} is at most {alpha:g} for this text alone, but not after "
                    f"{after} ({shown})",
                )
            else:
                verdict, statement = NON_MEMBER, f"not distinguishable from the control texts ({shown})"
            results.append(
                DocumentVerdict(
                    id=doc_id,
                    score=None if math.isnan(score) else float(score),
                    p_value=None if math.isnan(p_value) else float(p_value),
                    p_adjusted=p_adj,
                    verdict=verdict,
                    statement=statement,
                    alpha=alpha,
                    threshold=self.threshold_,
                    group=None if group is None else str(group),
                    group_p_value=group_p,
                    group_p_adjusted=group_adj,
                    group_verdict=group_verdict,
                    correction=correction,
                    adjusted_over=over,
                )
            )
        return results

    def to_dict(self) -> dict[str, Any]:
        """The fitted state as JSON-ready data (floats round-trip exactly through ``json``)."""
        self._check_fitted()
        check = getattr(self, "fpr_check_", None)
        return {
            "fpr": self.fpr,
            "guarantee": self.guarantee,
            "delta": self.delta,
            "confidence": self.confidence,
            "threshold": self.threshold_,
            "k": self.k_,
            "exceed_probability": self.exceed_probability_,
            "guarantee_statement": self.guarantee_statement(),
            "n_controls": self.n_controls_,
            "controls": [float(c) for c in self.controls_],
            "fpr_check": None if check is None else check.to_dict(),
            "rule": "member when score > threshold (the (k+1)-th largest control); "
            "p = (1 + #{controls >= s}) / (n + 1)",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, adjust: str = "none") -> FprCalibrator:
        """Rebuild a fitted calibrator from ``to_dict`` output (re-fitting checks the threshold matches)."""
        try:
            calibrator = cls(
                fpr=float(data["fpr"]),
                guarantee=data.get("guarantee", "marginal"),
                delta=float(data.get("delta", 0.05)),
                confidence=float(data["confidence"]),
                adjust=adjust,
            )
            calibrator.fit(data["controls"])
        except KeyError as error:
            raise InputError(f"calibration data lacks the field {error.args[0]!r}; re-run llm-mia calibrate") from None
        if calibrator.threshold_ != data.get("threshold", calibrator.threshold_):
            raise InputError("calibration threshold does not match its controls; the file was edited or damaged")
        check = data.get("fpr_check")
        if check:
            calibrator.fpr_check_ = FprCheck(
                n_controls=int(check["n_controls"]),
                false_positives=int(check["false_positives"]),
                fpr=float(check["fpr"]),
                fpr_ci=(float(check["fpr_ci"][0]), float(check["fpr_ci"][1])),
                confidence=float(check["confidence"]),
            )
        return calibrator


def split_controls(
    control_scores: ArrayLike, *, holdout: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random split of controls into (fit scores, held-out scores, fit indices, held-out indices)."""
    controls = _finite_controls(control_scores)
    if not 0 < holdout < 1:
        raise InputError(f"holdout must lie strictly between 0 and 1, got {holdout}; e.g. 0.5 for half")
    n_heldout = round(len(controls) * holdout)
    if n_heldout < 1 or n_heldout > len(controls) - 1:
        raise InputError(
            f"cannot hold out {holdout:g} of {len(controls)} controls and keep both parts non-empty; add controls"
        )
    order = np.random.default_rng(seed).permutation(len(controls))
    heldout_index, fit_index = np.sort(order[:n_heldout]), np.sort(order[n_heldout:])
    return controls[fit_index], controls[heldout_index], fit_index, heldout_index


def calibrate(
    control_scores: ArrayLike,
    *,
    fpr: float = 0.01,
    guarantee: str = "marginal",
    delta: float = 0.05,
    holdout: float = 0.0,
    seed: int = 0,
    confidence: float = 0.95,
) -> FprCalibrator:
    """Fit a threshold on the controls; with ``holdout`` > 0, on a seeded part of them, measuring the FPR it
    reaches on the rest (``fpr_check_``). Holding out costs resolution (p-values rest on the fitted part only)
    and at a few hundred controls cannot confirm a 1% target, so the default fits on all of them."""
    calibrator = FprCalibrator(fpr=fpr, guarantee=guarantee, delta=delta, confidence=confidence)
    if holdout == 0:
        return calibrator.fit(control_scores)
    fit_part, heldout_part, _, _ = split_controls(control_scores, holdout=holdout, seed=seed)
    calibrator.fit(fit_part)
    calibrator.check_fpr(heldout_part)
    return calibrator
