"""Attacks that calibrate each document against a population of shadow (reference) models.

Every attack has ``fit(shadows)`` on the shadow models' signals (a :class:`~llm_mia.shadow.signals.SignalMatrix`:
documents x models, with the inclusion matrix) and ``score(target)`` on the target model's signals for the same
documents; ``score`` returns one number per document, higher = more likely a member, NaN where the attack cannot
score that document (with a status saying why). The target's own inclusion row is never an input: the attacks
cannot see it. Fits are vectorised over documents (numpy), never a Python loop per document.

The signal (:func:`phi`). A text's probability under a model, p(x) = prod_t p(x_t | x_<t), is astronomically small
(e^-200 for a 60-token text), so LiRA's logit scaling of it, log p - log(1 - p), equals log p to within p: the
total log-likelihood, T x the mean token log-likelihood (T fixed per document). LiRA fits a Gaussian *per
document*, so any per-document affine map of the signal gives the same per-document scores; what it changes is
the *global-variance* option, which pools residuals across documents and so needs a scale comparable between
documents of different lengths. Hence phi here is the logit of the geometric-mean token probability
g = exp(mean token log-likelihood): phi = log g - log(1 - g). Per token, as the pooled variance needs; logit-
scaled, as Carlini et al. scale a classifier's confidence (it stretches g near 1, the memorised texts, towards a
Gaussian). RMIA needs a probability in [0, 1] for its (1 + a)/2 correction, and uses g itself, PrivacyMeter's
signal for language models (``get_signals.get_softmax`` on a PreTrainedModel: exp(-mean token NLL)).

Sources and deviations (each attack's docstring says more):

- LiRA: Carlini, Chien, Nasr, Song, Terzis & Tramer 2022, "Membership Inference Attacks From First Principles"
  (IEEE S&P), reference code ``research/mi_lira_2021`` in tensorflow/privacy (``plot.py``: ``generate_ours``,
  ``generate_ours_offline``) and its library form ``advanced_mia.compute_score_lira``.
- RMIA: Zarifzadeh, Liu, Mittal & Shokri 2024, "Low-Cost High-Power Membership Inference Attacks" (ICML),
  reference code privacytrustlab/ml_privacy_meter (``run_rmia``; ``research/2024_rmia``).
- Shokri, Stronati, Song & Shmatikov 2017, "Membership Inference Attacks Against Machine Learning Models" (IEEE
  S&P): an attack classifier trained on the shadow models' outputs labelled in/out.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from llm_mia.errors import InputError, NotFittedError
from llm_mia.shadow.signals import MEAN_LL, SignalMatrix

OK = "ok"
MIN_SD = 1e-6  # floor on a fitted standard deviation (phi units): identical shadow values would give infinities


def phi(mean_ll: Any) -> np.ndarray:
    """LiRA's logit-scaled confidence of a text: log g - log(1 - g), g = exp(mean token log-likelihood).

    Computed as m - log(-expm1(m)) (stable for m near 0); m is capped at -1e-12 (g < 1).

    >>> float(np.round(phi(np.log(0.5)), 12)), float(np.round(phi(np.log(0.9)), 6))
    (0.0, 2.197225)
    """
    m = np.minimum(np.asarray(mean_ll, dtype=np.float64), -1e-12)
    return m - np.log(-np.expm1(m))


@dataclass(frozen=True)
class AttackScores:
    """One score per document (NaN where the attack could not score it) and a status per document."""

    scores: np.ndarray
    status: tuple[str, ...]

    @property
    def n_scored(self) -> int:
        return int(np.isfinite(self.scores).sum())


def _target_signal(target: Mapping[str, Any], name: str, n: int) -> np.ndarray:
    if name not in target:
        raise InputError(f"the target's signals lack {name!r}; score the target with it")
    values = np.asarray(target[name], dtype=np.float64)
    if values.shape != (n,):
        raise InputError(f"the target's {name!r} holds {values.shape} values for {n} documents")
    return values


def not_fitted(attack: Any) -> NotFittedError:
    """The error for ``score`` on an attack that was never fitted: it names the ``fit`` call that is missing."""
    arguments = ", ".join(list(inspect.signature(type(attack).fit).parameters)[1:])
    return NotFittedError(f"this {type(attack).__name__} is not fitted yet; call fit({arguments}) before score")


def _masked(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``values`` where ``keep``, NaN elsewhere: the entries not kept are never read after this."""
    return np.where(keep, values, np.nan)


def _center(values: np.ndarray, how: str) -> np.ndarray:
    """Per-document center of the non-NaN entries (NaN where a row has none)."""
    with _quiet():
        return np.nanmedian(values, axis=1) if how == "median" else np.nanmean(values, axis=1)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's warnings for all-NaN rows (those rows get NaN and a status of their own)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _per_document_sd(values: np.ndarray) -> np.ndarray:
    """Per-document standard deviation of the non-NaN entries, ddof = 1 (NaN where fewer than 2)."""
    with _quiet():
        return np.nanstd(values, axis=1, ddof=1)


def _pooled_sd(*groups: np.ndarray) -> float:
    """One standard deviation for all documents: the residuals of each group's values about each document's own
    mean in that group, all pooled (sum of squared residuals / sum of (n_i - 1) over the rows with n_i >= 2).
    NaN when no row of any group has two values."""
    squares, dof = 0.0, 0
    for values in groups:
        counts = np.sum(~np.isnan(values), axis=1)
        usable = counts >= 2
        if usable.any():
            rows = values[usable]
            with _quiet():
                squares += float(np.nansum((rows - np.nanmean(rows, axis=1, keepdims=True)) ** 2))
            dof += int(np.sum(counts[usable] - 1))
    return float(np.sqrt(squares / dof)) if dof else float("nan")


def _scores(scores: ArrayLike, status: tuple[str, ...], usable: Any = True) -> AttackScores:
    """The scores of the documents whose status is ok (and ``usable``), NaN for the others."""
    ok = np.array([s == OK for s in status]) & usable
    return AttackScores(np.where(ok, scores, np.nan), status)


def _normal_logpdf(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


@dataclass
class LiraOffline:
    """LiRA, offline (Carlini et al. 2022, sec. IV-C): only OUT models are needed.

    Per document x, a Gaussian N(mu_out(x), s_out(x)^2) fitted to phi of x under the models that did not train on
    it; score = -log Pr[Z >= phi_target(x)], Z ~ that Gaussian: minus the log of the one-sided p-value (higher =
    member; members' phi is shifted up). ``variance``: ``per-example`` (s_out(x) from x's own OUT models,
    ddof 1), ``global`` (one s_out pooled over documents: residuals about each document's mean), or ``auto``
    (per-example when every document has at least 32 OUT models, else global: Carlini et al. report that with
    few shadow models the fixed variance is better). ``center``: ``median`` (the reference code's choice) or
    ``mean``.

    Deviations from the reference code, and why: it scores the two-sided density -log N(phi; mu, s), which also
    flags texts the target finds unusually *hard*; the paper's test, used here, is one-sided. Its per-example
    standard deviation has ddof 0, which with 2-8 models per side shrinks the variance by up to half and
    overstates the evidence; ddof 1 here. Its fixed-variance option takes the raw spread of all OUT values
    (between-document spread included); here the pooled within-document residual spread (as
    ``advanced_mia.compute_score_lira`` does). A document with fewer than 2 OUT models (per-example) or none
    (global) gets NaN and a status; the reference code truncates every document to the smallest count instead.
    """

    variance: str = "auto"
    center: str = "median"
    name: str = "lira-offline"
    mu_: np.ndarray | None = field(default=None, repr=False)
    sd_: np.ndarray | None = field(default=None, repr=False)
    status_: tuple[str, ...] = field(default=(), repr=False)
    variance_used_: str = ""

    def fit(self, shadows: SignalMatrix) -> LiraOffline:
        _check_options(self.variance, self.center)
        out = _masked(phi(shadows.signal(MEAN_LL)), ~shadows.inclusion)  # IN entries are never read again
        n_out = np.sum(~np.isnan(out), axis=1)
        self.variance_used_ = _variance_choice(self.variance, n_out)
        self.mu_ = _center(out, self.center)
        if self.variance_used_ == "per-example":
            sd = _per_document_sd(out)
            need = 2
        else:
            sd = np.full(len(out), _pooled_sd(out))
            need = 1
        self.sd_ = np.maximum(sd, MIN_SD)
        self.status_ = tuple(
            OK if n >= need and np.isfinite(s) else f"{n} OUT model(s): LiRA offline needs at least {max(need, 2)}"
            for n, s in zip(n_out, sd, strict=True)
        )
        return self

    def score(self, target: Mapping[str, Any]) -> AttackScores:
        from scipy.stats import norm

        if self.mu_ is None or self.sd_ is None:
            raise not_fitted(self)
        x = phi(_target_signal(target, MEAN_LL, len(self.mu_)))
        scores = -norm.logsf(x, loc=self.mu_, scale=self.sd_)
        return _scores(scores, self.status_)


@dataclass
class LiraOnline:
    """LiRA, online (Carlini et al. 2022, Algorithm 1): IN and OUT Gaussians per document, likelihood ratio.

    score(x) = log N(phi_target(x); mu_in(x), s_in(x)^2) - log N(phi_target(x); mu_out(x), s_out(x)^2)
    (higher = member). ``variance`` and ``center`` as :class:`LiraOffline`. Global: one standard deviation for
    both Gaussians, pooled over the IN and the OUT residuals (the reference code's fixed-variance option also
    uses one standard deviation for both, taken from the IN values); the log ratio is then linear in phi, with a
    per-document slope (mu_in - mu_out) / s^2; separate global s_in and s_out would make it quadratic in phi, with
    a second variance to estimate from the same few models. Per-example variance needs at least 2 IN and 2 OUT
    models for a document;
    global at least one of each (and some document with two, to pool from). ddof 1, as :class:`LiraOffline`.
    """

    variance: str = "auto"
    center: str = "median"
    name: str = "lira-online"
    mu_in_: np.ndarray | None = field(default=None, repr=False)
    mu_out_: np.ndarray | None = field(default=None, repr=False)
    sd_in_: np.ndarray | None = field(default=None, repr=False)
    sd_out_: np.ndarray | None = field(default=None, repr=False)
    status_: tuple[str, ...] = field(default=(), repr=False)
    variance_used_: str = ""

    def fit(self, shadows: SignalMatrix) -> LiraOnline:
        _check_options(self.variance, self.center)
        values = phi(shadows.signal(MEAN_LL))
        inside, out = _masked(values, shadows.inclusion), _masked(values, ~shadows.inclusion)
        n_in, n_out = np.sum(~np.isnan(inside), axis=1), np.sum(~np.isnan(out), axis=1)
        self.variance_used_ = _variance_choice(self.variance, np.minimum(n_in, n_out))
        self.mu_in_, self.mu_out_ = _center(inside, self.center), _center(out, self.center)
        if self.variance_used_ == "per-example":
            sd_in, sd_out, need = _per_document_sd(inside), _per_document_sd(out), 2
        else:  # one standard deviation, pooled over the IN and the OUT residuals, shared by both Gaussians
            shared = _pooled_sd(inside, out)
            sd_in, sd_out, need = np.full(len(values), shared), np.full(len(values), shared), 1
        self.sd_in_, self.sd_out_ = np.maximum(sd_in, MIN_SD), np.maximum(sd_out, MIN_SD)
        self.status_ = tuple(
            OK
            if a >= need and b >= need and np.isfinite(s) and np.isfinite(t)
            else f"{a} IN and {b} OUT model(s): LiRA online needs at least {need} of each"
            + ("" if need == 2 else ", and some document with 2 of each to fit the variance")
            for a, b, s, t in zip(n_in, n_out, sd_in, sd_out, strict=True)
        )
        return self

    def score(self, target: Mapping[str, Any]) -> AttackScores:
        if self.mu_in_ is None or self.mu_out_ is None or self.sd_in_ is None or self.sd_out_ is None:
            raise not_fitted(self)
        x = phi(_target_signal(target, MEAN_LL, len(self.mu_in_)))
        scores = _normal_logpdf(x, self.mu_in_, self.sd_in_) - _normal_logpdf(x, self.mu_out_, self.sd_out_)
        return _scores(scores, self.status_)


@dataclass
class Rmia:
    """RMIA (Zarifzadeh et al. 2024): a document's likelihood ratio against the reference models, compared
    pairwise with population documents z that the target did not train on.

    Pr(x | theta) = g = exp(mean token log-likelihood of x) (PrivacyMeter's language-model signal, with the next
    token as the label). Offline (the default): Pr(x) = (1 + a)/2 * mean over OUT reference models of Pr(x | ref)
    + (1 - a)/2, the paper's linear approximation of the IN models' mean from the OUT models'. Online: Pr(x) = the
    20%-trimmed mean over all reference models, IN and OUT. ratio(x) = Pr(x | target) / Pr(x), likewise ratio(z)
    for every z; score(x) = the share of z with ratio(x) / ratio(z) > ``gamma`` (default 1, PrivacyMeter's; the
    paper's CIFAR configs use 2 with a vote over 18 augmented queries, which text does not have). The z must be
    documents the target did not train on, scored by every model, and disjoint from the documents evaluated (so no
    self-comparison correction is needed). In linear probability space, as the reference code computes it.

    ``a``: None (the default) tunes it as PrivacyMeter's audit does: each a in 0, 0.1, ..., 1 is tried with shadow
    model 0 as a stand-in target (its inclusion column as labels, the models other than it and its complementary
    pair as references) and the a with the highest AUROC is kept (``a_used_``); with fewer than 4 shadow models
    there is nothing to tune on, and the paper's CIFAR value 0.3 is used. Why tuning matters here: the correction
    was designed for a classifier's true-label probability, often near 1. A language model's geometric-mean token
    probability exp(-loss) is far lower (0.05 to 0.007 at a loss of 3 to 5 nats), so with a = 0.3 the constant
    (1 - a)/2 = 0.35 swamps the reference term and RMIA degenerates towards the uncalibrated loss attack; the
    tuned a is reported (``a_used_``) with every run.
    """

    a: float | None = None
    gamma: float = 1.0
    online: bool = False
    trim: float = 0.2
    name: str = "rmia"
    a_used_: float = float("nan")
    reference_x_: np.ndarray | None = field(default=None, repr=False)
    reference_z_: np.ndarray | None = field(default=None, repr=False)
    status_: tuple[str, ...] = field(default=(), repr=False)

    def _reference(self, g: np.ndarray, inclusion: np.ndarray, a: float) -> np.ndarray:
        from scipy.stats import trim_mean

        if self.online:
            return trim_mean(g, self.trim, axis=1)
        with _quiet():
            mean_out = np.nanmean(_masked(g, ~inclusion), axis=1)
        return (1 + a) / 2 * mean_out + (1 - a) / 2

    def _tune(self, shadows: SignalMatrix, population: SignalMatrix) -> float:
        from llm_mia.stats.metrics import auroc

        if self.a is not None:
            return self.a
        if self.online or shadows.n_models < 4:
            return 0.3
        stand_in, stand_in_z = shadows.column(0), population.column(0)
        labels = shadows.inclusion[:, 0].astype(int)
        references, references_z = (
            shadows.select(range(2, shadows.n_models)),
            population.select(range(2, shadows.n_models)),
        )
        best, best_auroc = 0.3, -1.0
        for a in np.round(np.linspace(0, 1, 11), 1):
            trial = Rmia(a=float(a), gamma=self.gamma, trim=self.trim)._fit(references, references_z, float(a))
            scores = trial.score(stand_in, stand_in_z).scores
            usable = np.isfinite(scores)
            if usable.sum() < 2 or len(set(labels[usable].tolist())) < 2:
                continue
            value = auroc(scores[usable], labels[usable])
            if value > best_auroc:
                best, best_auroc = float(a), value
        return best

    def fit(self, shadows: SignalMatrix, population: SignalMatrix) -> Rmia:
        """``population``: the z documents' signals under the same reference models (all OUT)."""
        if (self.a is not None and not 0 <= self.a <= 1) or self.gamma <= 0 or not 0 <= self.trim < 0.5:
            raise InputError(f"RMIA needs 0 <= a <= 1, gamma > 0 and 0 <= trim < 0.5; got {self.a}, {self.gamma}")
        if population.n_models != shadows.n_models or len(population.ids) < 1:
            raise InputError("RMIA's population documents must be scored by the same reference models, at least one")
        if set(population.ids) & set(shadows.ids):
            raise InputError("RMIA's population documents z must be disjoint from the documents evaluated")
        return self._fit(shadows, population, self._tune(shadows, population))

    def _fit(self, shadows: SignalMatrix, population: SignalMatrix, a: float) -> Rmia:
        self.a_used_ = a
        self.reference_x_ = self._reference(np.exp(shadows.signal(MEAN_LL)), shadows.inclusion, a)
        z_inclusion = np.zeros((len(population.ids), population.n_models), dtype=bool)
        self.reference_z_ = self._reference(np.exp(population.signal(MEAN_LL)), z_inclusion, a)
        n_out = np.sum(~shadows.inclusion, axis=1)
        self.status_ = tuple(
            OK if self.online or n >= 1 else "no OUT reference model: offline RMIA needs one" for n in n_out
        )
        return self

    def score(self, target: Mapping[str, Any], target_population: Mapping[str, Any]) -> AttackScores:
        """``target_population``: the target's signals on the z documents, in the order ``fit`` saw them."""
        if self.reference_x_ is None or self.reference_z_ is None:
            raise not_fitted(self)
        ratio_x = np.exp(_target_signal(target, MEAN_LL, len(self.reference_x_))) / self.reference_x_
        ratio_z = np.exp(_target_signal(target_population, MEAN_LL, len(self.reference_z_))) / self.reference_z_
        ordered = np.sort(ratio_z[np.isfinite(ratio_z)])
        # ratio_x / ratio_z > gamma  <=>  ratio_z < ratio_x / gamma (all ratios positive)
        below = np.searchsorted(ordered, ratio_x / self.gamma, side="left")
        scores = below / len(ordered)
        return _scores(scores, self.status_, np.isfinite(ratio_x))


@dataclass
class Shokri:
    """The shadow-model attack of Shokri et al. 2017: an attack classifier trained on the shadow models' signals
    for every (document, shadow model) pair, labelled IN / OUT by the inclusion matrix, then applied to the
    target's signals; score = its log-odds of IN.

    Features: phi (see module doc), every other signal in the matrix (e.g. zlib, min_k if scored), and
    log(tokens) where the matrix has ``n_tokens`` (so the classifier can condition on length). ``classifier``:
    ``logistic`` (scikit-learn LogisticRegression on standardised features; tensorflow_privacy's default attack)
    or ``boosting`` (HistGradientBoostingClassifier, seeded). Shokri et al. train one attack model per class
    label; a language model has no class label, so there is one. Unlike LiRA and RMIA it does not calibrate per
    document: it learns one decision rule over all documents.
    """

    classifier: str = "logistic"
    seed: int = 0
    name: str = "shokri"
    features_: tuple[str, ...] = ()
    model_: Any = field(default=None, repr=False)

    def _features(self, signals: Mapping[str, np.ndarray]) -> np.ndarray:
        columns = []
        for name in self.features_:
            values = np.asarray(signals[name], dtype=np.float64)
            if name == MEAN_LL:
                values = phi(values)
            elif name == "n_tokens":
                values = np.log(np.maximum(values, 1))
            columns.append(values.reshape(-1))
        return np.column_stack(columns)

    def fit(self, shadows: SignalMatrix) -> Shokri:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.classifier not in ("logistic", "boosting"):
            raise InputError(f"Shokri attack classifier {self.classifier!r}: use logistic or boosting")
        shadows.signal(MEAN_LL)
        self.features_ = (MEAN_LL, *sorted(name for name in shadows.values if name != MEAN_LL))
        features = self._features(shadows.values)
        labels = shadows.inclusion.reshape(-1)
        usable = np.all(np.isfinite(features), axis=1)
        if self.classifier == "logistic":
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        else:
            model = HistGradientBoostingClassifier(random_state=self.seed)
        self.model_ = model.fit(features[usable], labels[usable])
        return self

    def score(self, target: Mapping[str, Any]) -> AttackScores:
        if self.model_ is None:
            raise not_fitted(self)
        n = len(np.asarray(target[MEAN_LL]))
        features = self._features({name: _target_signal(target, name, n) for name in self.features_})
        usable = np.all(np.isfinite(features), axis=1)
        scores = np.full(n, np.nan)
        if usable.any():
            probability = self.model_.predict_proba(features[usable])[:, 1]
            probability = np.clip(probability, 1e-12, 1 - 1e-12)
            scores[usable] = np.log(probability) - np.log1p(-probability)
        status = tuple(OK if u else "a signal is missing (NaN) for this document" for u in usable)
        return AttackScores(scores, status)


@dataclass
class ReferenceOne:
    """One reference model (difficulty calibration; Watson et al. 2022, "On the importance of difficulty
    calibration in membership inference attacks"): the target's mean token log-likelihood minus that of a model
    that did not train on the document, the baseline the population attacks improve on.

    The reference for document x is the first shadow model that is OUT for x: with the paired inclusion design,
    model 0 for half the documents and its complementary model 1 for the other half. Two models trained with
    different seeds differ in their overall level (measured on the GPT-2 benchmark: 0.4 nats/token between
    models 0 and 1), which mixed uncorrected would add a constant to half the scores; so each reference model's
    offset to the target is removed, estimated as the median of LL_target(z) - LL_ref(z) over the population
    documents z that no model trained on: score(x) = LL_target(x) - LL_ref(x) - median_z(LL_target(z) - LL_ref(z)).
    """

    name: str = "reference-one"
    reference_: np.ndarray | None = field(default=None, repr=False)
    columns_: np.ndarray | None = field(default=None, repr=False)
    z_reference_: np.ndarray | None = field(default=None, repr=False)
    status_: tuple[str, ...] = field(default=(), repr=False)

    def fit(self, shadows: SignalMatrix, population: SignalMatrix) -> ReferenceOne:
        values, out = shadows.signal(MEAN_LL), ~shadows.inclusion
        first = np.argmax(out, axis=1)
        has = np.any(out, axis=1)  # (documents,) bool
        self.columns_ = first
        self.reference_ = np.where(has, values[np.arange(len(values)), first], np.nan)
        self.z_reference_ = population.signal(MEAN_LL)
        self.status_ = tuple(OK if h else "no OUT model for this document" for h in has)
        return self

    def score(self, target: Mapping[str, Any], target_population: Mapping[str, Any]) -> AttackScores:
        if self.reference_ is None or self.z_reference_ is None or self.columns_ is None:
            raise not_fitted(self)
        z_target = _target_signal(target_population, MEAN_LL, len(self.z_reference_))
        with _quiet():
            offsets = np.nanmedian(z_target[:, None] - self.z_reference_, axis=0)  # one per reference model
        raw = _target_signal(target, MEAN_LL, len(self.reference_)) - self.reference_
        return AttackScores(raw - offsets[self.columns_], self.status_)


NEEDS_POPULATION = ("rmia", "reference-one")  # fitted with the z documents' signals too
ATTACKS: dict[str, type] = {
    "shokri": Shokri,
    "lira-offline": LiraOffline,
    "lira-online": LiraOnline,
    "rmia": Rmia,
    "reference-one": ReferenceOne,
}
ATTACK_SUMMARIES = {
    "shokri": "attack classifier on the shadow models' signals labelled IN/OUT (Shokri et al. 2017)",
    "lira-offline": "one-sided test against a Gaussian of the OUT models' phi per document (Carlini et al. 2022)",
    "lira-online": "likelihood ratio of IN and OUT Gaussians per document (Carlini et al. 2022)",
    "rmia": "pairwise likelihood ratios against population documents (Zarifzadeh et al. 2024)",
    "reference-one": "target minus one OUT reference model's log-likelihood, offset on z (difficulty calibration)",
}


def _check_options(variance: str, center: str) -> None:
    if variance not in ("auto", "per-example", "global"):
        raise InputError(f"LiRA variance {variance!r}: use auto, per-example or global")
    if center not in ("median", "mean"):
        raise InputError(f"LiRA center {center!r}: use median or mean")


def _variance_choice(variance: str, counts: np.ndarray) -> str:
    """``auto``: per-example when every document has at least 32 models on the side(s) fitted, else global."""
    if variance != "auto":
        return variance
    return "per-example" if len(counts) and int(counts.min()) >= 32 else "global"
