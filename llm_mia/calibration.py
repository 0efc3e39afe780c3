"""From scores to calibrated verdicts, using known non-members (controls) as the null distribution.

Controls are texts the model cannot have seen: published after its training cutoff, or held out by
construction. Everything here rests on one assumption, stated once: **under the null, a document's score is
exchangeable with the control scores** (the controls are drawn from the same distribution as the documents
would be if they were non-members: same kind of text, same length and format). Check it with the blind
baseline (``llm_mia.blind``) and the length check of ``llm_mia.workflows.calibrate``.

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

Calibration data must be disjoint from the data a verdict is given on: a control scored again as a
"suspect" would be compared against itself. ``fit`` takes the controls; ``p_values`` / ``predict`` /
``verdicts`` take other documents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llm_mia.errors import InputError, NotFittedError
from llm_mia.metrics import clopper_pearson, format_p_value, p_phrase

ADJUSTMENTS = ("none", "bh")
GUARANTEES = ("marginal", "conditional")
MEMBER, NON_MEMBER, INCONCLUSIVE = "member", "non-member", "inconclusive"


def _finite_controls(control_scores: Any) -> np.ndarray:
    controls = np.asarray(control_scores, dtype=np.float64)
    if controls.ndim != 1 or len(controls) == 0:
        raise InputError(f"controls must be a non-empty 1-d sequence of scores; got shape {controls.shape}")
    if not np.all(np.isfinite(controls)):
        bad = int(np.sum(~np.isfinite(controls)))
        raise InputError(f"{bad} control score(s) are NaN or infinite; drop rows without a score first")
    return controls


def empirical_p_values(scores: Any, control_scores: Any) -> np.ndarray:
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


def benjamini_hochberg(p_values: Any) -> np.ndarray:
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

    def to_dict(self) -> dict[str, Any]:
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

    ``verdict``: "member" (consistent with training on this text), "non-member" (not distinguishable from
    unseen text) or "inconclusive" (no score, a text unlike the controls, or p <= alpha only before the
    multiple-testing adjustment). ``p_adjusted`` is None unless an adjustment was asked for.
    """

    id: str
    score: float | None
    p_value: float | None
    p_adjusted: float | None
    verdict: str
    statement: str
    alpha: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "verdict": self.verdict,
            "statement": self.statement,
            "alpha": self.alpha,
            "threshold": self.threshold,
        }


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

    def fit(self, control_scores: Any) -> FprCalibrator:
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

    def p_values(self, scores: Any) -> np.ndarray:
        """p = (1 + #{controls >= s}) / (n + 1) per score (NaN for a missing score)."""
        self._check_fitted()
        return empirical_p_values(scores, self.controls_)

    def predict(self, scores: Any) -> np.ndarray:
        """True where a score is flagged as a member at the target FPR (score > threshold_; NaN -> False)."""
        self._check_fitted()
        scores = np.asarray(scores, dtype=np.float64)
        return np.where(np.isnan(scores), False, scores > self.threshold_)

    def check_fpr(self, heldout_scores: Any) -> FprCheck:
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
        scores: Any,
        *,
        ids: Sequence[str] | None = None,
        reasons: Sequence[str | None] | None = None,
        not_comparable: Sequence[str | None] | None = None,
    ) -> list[DocumentVerdict]:
        """A verdict per document. ``reasons[i]``: why document i has no score; ``not_comparable[i]``: why
        document i is not comparable with the controls (e.g. longer than every control): it is then
        "inconclusive" whatever its score, and left out of the adjustment.

        member: score > threshold_ (or, with ``adjust="bh"``, BH-adjusted p <= fpr). non-member: otherwise.
        inconclusive: no score, not comparable, or (with BH) p <= fpr before the adjustment but not after it.
        """
        self._check_fitted()
        self._validate_settings()
        scores = np.asarray([np.nan if s is None else s for s in scores], dtype=np.float64)
        ids = [str(i) for i in range(len(scores))] if ids is None else [str(i) for i in ids]
        if len(ids) != len(scores):
            raise InputError(f"got {len(ids)} ids for {len(scores)} scores")
        unlike = list(not_comparable) if not_comparable is not None else [None] * len(scores)
        usable = np.array([not math.isnan(s) and u is None for s, u in zip(scores, unlike, strict=True)])
        p = self.p_values(np.where(usable, scores, np.nan))
        adjusted = benjamini_hochberg(p) if self.adjust == "bh" else None
        alpha, n = self.fpr, self.n_controls_
        control = (
            f"false discovery rate <= {alpha:g} across {int(usable.sum())} documents, on {n} controls"
            if adjusted is not None
            else self.guarantee_statement()
        )
        results = []
        for index, (doc_id, score, p_value) in enumerate(zip(ids, scores, p, strict=True)):
            p_adj = None if adjusted is None else float(adjusted[index])
            shown = f"{p_phrase(p_value)}" if not math.isnan(p_value) else ""
            if p_adj is not None and not math.isnan(p_adj):
                shown += f", BH-adjusted {p_phrase(p_adj)}"
            if math.isnan(score):
                reason = reasons[index] if reasons is not None and reasons[index] else "score unavailable"
                verdict, statement = INCONCLUSIVE, f"no verdict: no score ({reason})"
            elif unlike[index] is not None:
                verdict, statement = INCONCLUSIVE, f"no verdict: {unlike[index]}, so its score is not comparable"
            elif (p_adj <= alpha) if p_adj is not None else (score > self.threshold_):
                verdict, statement = MEMBER, f"consistent with training on this text ({shown}; {control})"
            elif p_adj is not None and p_value <= alpha:
                verdict, statement = (
                    INCONCLUSIVE,
                    f"inconclusive: {p_phrase(p_value)} is at most {alpha:g} for this text alone, but "
                    f"not after the Benjamini-Hochberg adjustment across documents (adjusted p = "
                    f"{format_p_value(p_adj)})",
                )
            else:
                verdict, statement = NON_MEMBER, f"not distinguishable from unseen text ({shown})"
            results.append(
                DocumentVerdict(
                    id=doc_id,
                    score=None if math.isnan(score) else float(score),
                    p_value=None if math.isnan(p_value) else float(p_value),
                    p_adjusted=p_adj if p_adj is None or not math.isnan(p_adj) else None,
                    verdict=verdict,
                    statement=statement,
                    alpha=alpha,
                    threshold=self.threshold_,
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
    control_scores: Any, *, holdout: float = 0.5, seed: int = 0
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
    control_scores: Any,
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
