"""Blind baseline: can the member and non-member texts be told apart without the model at all?

Das, Zhang & Tramèr (2024), "Blind Baselines Beat Membership Inference Attacks for Foundation Models": a
bag-of-words classifier that never sees the model reaches AUROC 0.99 on WikiMIA and 0.91 on BookMIA, because
those member and non-member sets were collected at different times and differ in topic and wording. When a
classifier that knows nothing about the model separates the sets, attack numbers on them can measure that
distribution shift instead of membership, however much higher they are.

Method here: TF-IDF word 1-2-grams and character 2-5-grams (within word boundaries), logistic regression
(scikit-learn), scored out of fold: every text gets P(member) from a classifier that did not train on it.
Folds are drawn over *groups* when groups are given (a work, a source: no group sits on both sides of a fold,
so words specific to one work cannot make the sets look different), and do not depend on the labels.

Is the separation more than chance? The whole procedure (vectorise per fold, fit, score out of fold, AUROC)
is repeated under ``n_permutations`` random permutations of the labels (of whole groups when each group has
one label), refitting every time. The permutation p-value, (1 + #{null AUROC >= observed}) / (B + 1), is exact
under the null that labels are exchangeable with respect to the texts. Permuting stops early once 10 null
AUROCs lie on each side of the observed one (Besag & Clifford 1991, "Sequential Monte Carlo p-values"): by
then the full test could not end below 11 / (B + 1), so every decision at a level below 0.1 is the full
test's, at a fraction of the cost when the sets look alike. (A DeLong interval on the pooled out-of-fold scores treats
the fitted classifiers as fixed: it excluded 0.5 in 12/40 = 0.30 [0.17, 0.47] of no-shift sets at a nominal 5%.)

The interval reported is the observed AUROC minus the null distribution's central spread around its median.
Out-of-fold AUROCs of a classifier refitted on small sets sit *below* 0.5 under the null (leaving a text out
makes its class look less like it), which is why the null, not 0.5, is the reference: the null's median is
reported as ``chance_auroc`` and printed beside every interval, which covers it (not 0.5) when the sets do
not differ. Measured on 40 random splits of Wikipedia summaries (2 x 24 texts,
``python benchmarks/blind_chance.py``): the null's median was 0.38; the interval held it in 35/40 splits and
held 0.5 in only 21/40 (read against 0.5 it would have suggested "below chance"); the warning fired in 4/40 =
0.10 [0.03, 0.24] at a nominal 5%. The warning fires whenever the blind classifier separates the sets
(permutation p <= alpha), whatever an attack scores. An AUROC far below what label noise gives, or texts found
in both sets, get their own note: it usually means
the two sets share texts or near-copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from llm_mia.errors import InputError
from llm_mia.io.identity import sha256_text
from llm_mia.stats.metrics import DEFAULT_FPRS, ScorerEvaluation, evaluate_scorer, p_phrase

DEFAULT_PERMUTATIONS = 99
BELOW_CHANCE_LEVEL = 0.01  # stricter than alpha: below chance is not a threat to validity, but worth a look
SEQUENTIAL_STOP = 10  # stop permuting after this many null AUROCs reach the observed one (Besag & Clifford 1991)
METHOD = (
    "tf-idf word 1-2 + char 2-5 grams, logistic regression, out-of-fold over label-independent folds "
    "(of groups when given); significance by refitting under label permutations (Das et al. 2024)"
)


@dataclass(frozen=True, kw_only=True)
class BlindBaselineResult(ScorerEvaluation):
    """Out-of-fold evaluation of the blind (model-free) classifier: the same figures as for an attack
    (:class:`~llm_mia.stats.metrics.ScorerEvaluation`), with a permutation-calibrated AUROC interval, and the
    settings. Higher score = more member-like.

    ``scores``: out-of-fold P(member) per text, members first then non-members, in input order.
    ``permutation_p``: exact permutation p-value of the AUROC (one-sided, "separates better than chance").
    ``lower_p``: the same for "below chance". ``shared_texts``: texts that appear verbatim in both sets.
    ``chance_auroc``: the median AUROC under permuted labels, what this procedure scores when the sets do not
    differ (below 0.5 on small sets): the interval is to be read against it, not against 0.5.
    """

    folds: int
    seed: int
    n_permutations: int
    permutation_p: float
    lower_p: float
    alpha: float
    grouped: bool
    shared_texts: int
    chance_auroc: float = 0.5
    scores: tuple[float, ...] = field(default=(), repr=False)

    def figures(self) -> str:
        """AUROC, interval, chance level and permutation p in one phrase."""
        low, high = self.auroc_ci
        return (
            f"AUROC {self.auroc:.3f} [{low:.3f}, {high:.3f}] against a chance level of {self.chance_auroc:.3f} for "
            f"this out-of-fold procedure, permutation {p_phrase(self.permutation_p)} over "
            f"{self.n_permutations} refits"
        )

    @property
    def separates(self) -> bool:
        """True when the blind classifier tells the sets apart better than chance (permutation p <= alpha)."""
        return self.permutation_p <= self.alpha

    @property
    def below_chance(self) -> bool:
        """True when texts appear in both sets, or the AUROC is far below what label noise gives (permutation
        p <= BELOW_CHANCE_LEVEL in the lower tail): usually shared or duplicated texts."""
        return self.shared_texts > 0 or self.lower_p <= BELOW_CHANCE_LEVEL

    def warning(self, best_attack_auroc: float | None = None) -> str | None:
        """The distribution-shift warning in plain words, or None when the blind classifier gives no cause."""
        high = self.auroc_ci[1]
        figures = self.figures()
        if self.below_chance:
            shared = (
                f"{self.shared_texts} text(s) appear verbatim in both sets"
                if self.shared_texts
                else "no text appears verbatim in both, so look for near-duplicates"
            )
            return (
                f"WARNING: the blind baseline scores far below chance ({figures}). A classifier that never sees "
                f"the model does this when the two sets share texts or near-copies: {shared}. Remove texts "
                f"found on both sides before reading any number here."
            )
        if not self.separates:
            return None
        comparison = ""
        if best_attack_auroc is not None:
            comparison = f" The best attack reaches AUROC {best_attack_auroc:.3f}; " + (
                "even when an attack does better, part of its separation can come from the same shift."
                if best_attack_auroc > high
                else "the blind classifier matches or beats it."
            )
        return (
            f"WARNING: distribution shift. A bag-of-words classifier that never sees the model tells the member "
            f"texts from the non-member texts ({figures}).{comparison} The two sets differ in distribution "
            f"(topic, time, wording, format), so attack numbers on them can measure that difference rather than "
            f"membership. Compare sets drawn from the same distribution (e.g. a random split of one collection) "
            f"before reading these numbers as evidence of training."
        )

    def to_dict(self, best_attack_auroc: float | None = None) -> dict[str, Any]:
        figures = super().to_dict()
        del figures["name"], figures["n_excluded"]  # always "blind baseline" and 0: every text gets a score
        return {
            "method": METHOD,
            **figures,
            "folds": self.folds,
            "grouped_folds": self.grouped,
            "seed": self.seed,
            "n_permutations": self.n_permutations,
            "permutation_p": self.permutation_p,
            "chance_auroc": self.chance_auroc,
            "below_chance_permutation_p": self.lower_p,
            "alpha": self.alpha,
            "separates": self.separates,
            "shared_texts": self.shared_texts,
            "warning": self.warning(best_attack_auroc),
        }


def bag_of_words_vectorizer() -> Any:
    """TF-IDF of word 1-2-grams and character 2-5-grams: the model-free text features (Das et al. 2024), also
    the synthetic control's text classifier (``llm_mia.synthetic.calibrated_test``)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    return make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=100_000),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1, max_features=100_000),
    )


def _sequential_p(extreme: int, runs: int) -> float:
    """Besag & Clifford (1991): h / L once ``extreme`` reached h = SEQUENTIAL_STOP, else (1 + extreme) / (L + 1)."""
    return extreme / runs if extreme >= SEQUENTIAL_STOP else (1 + extreme) / (runs + 1)


def _folds(units: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Label-independent folds over units (groups, or single texts), shuffled with ``seed``: test indices per
    fold. Re-drawn (seed + 1, ...) in the rare case a training part lacks one class."""
    unique = np.unique(units)
    for attempt in range(100):
        order = np.random.default_rng(seed + attempt).permutation(len(unique))
        fold_of_unit = dict(zip(unique[order], np.arange(len(unique)) % folds, strict=True))
        fold = np.array([fold_of_unit[u] for u in units])
        tests = [np.flatnonzero(fold == k) for k in range(folds)]
        if all(len(np.unique(labels[np.setdiff1d(np.arange(len(labels)), t)])) == 2 for t in tests):
            return tests
    raise InputError("could not form folds with both classes in every training part; add texts or groups")


def blind_baseline(
    member_texts: Sequence[str],
    nonmember_texts: Sequence[str],
    *,
    member_groups: Sequence[str] | None = None,
    nonmember_groups: Sequence[str] | None = None,
    folds: int = 5,
    seed: int = 0,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    alpha: float = 0.05,
    fprs: Sequence[float] = DEFAULT_FPRS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
) -> BlindBaselineResult:
    """Cross-validated bag-of-words classifier separating member from non-member texts (no model involved),
    with a permutation test of its AUROC (module docstring).

    ``member_groups`` / ``nonmember_groups``: the group (work, source) of each text; folds then keep groups
    whole, and when no group holds both members and non-members the permutations move whole groups. Needs
    at least ``folds`` units (groups, or texts) in all.

    >>> result = blind_baseline(["a cat sat"] * 5, ["the stock fell"] * 5, folds=5)  # doctest: +SKIP
    >>> result.warning()  # doctest: +SKIP
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    if isinstance(member_texts, str) or isinstance(nonmember_texts, str):
        raise InputError("blind_baseline takes two sequences of texts, not single strings")
    if folds < 2:
        raise InputError(f"folds must be >= 2 for cross-validation, got {folds}")
    if n_permutations < 1:
        raise InputError(f"n_permutations must be >= 1, got {n_permutations}")
    n_members, n_nonmembers = len(member_texts), len(nonmember_texts)
    texts = [*member_texts, *nonmember_texts]
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"text {index} is a {type(text).__name__}, not a string")
    if not any(text.strip() for text in texts):
        raise InputError("every text is empty; the blind baseline needs words to classify")
    labels = np.array([1] * n_members + [0] * n_nonmembers)
    grouped = member_groups is not None and nonmember_groups is not None
    if member_groups is not None and nonmember_groups is not None:  # grouped
        if len(member_groups) != n_members or len(nonmember_groups) != n_nonmembers:
            raise InputError("give one group per text, for members and non-members alike")
        units = np.array([f"g:{g}" for g in [*member_groups, *nonmember_groups]])
    else:
        units = np.array([f"t:{i}" for i in range(len(texts))])
    if min(n_members, n_nonmembers) < 1 or len(np.unique(units)) < folds:
        raise InputError(
            f"the blind baseline needs at least {folds} {'groups' if grouped else 'texts'} for {folds}-fold "
            f"cross-validation and both classes; got {n_members} members and {n_nonmembers} non-members in "
            f"{len(np.unique(units))} {'groups' if grouped else 'texts'}. Add texts or pass fewer folds (minimum 2)"
        )
    tests = _folds(units, labels, folds, seed)
    matrices = []  # per fold: (train index, test index, X_train, X_test); the vectorisers never see labels
    for test in tests:
        train = np.setdiff1d(np.arange(len(texts)), test)
        vectorizer = bag_of_words_vectorizer().fit([texts[i] for i in train])
        matrices.append(
            (
                train,
                test,
                vectorizer.transform([texts[i] for i in train]),
                vectorizer.transform([texts[i] for i in test]),
            )
        )

    def out_of_fold(y: np.ndarray) -> np.ndarray:
        scores = np.zeros(len(y))
        for train, test, x_train, x_test in matrices:
            classifier = LogisticRegression(C=1.0, solver="liblinear", random_state=seed).fit(x_train, y[train])
            scores[test] = classifier.predict_proba(x_test)[:, 1]
        return scores

    scores = out_of_fold(labels)
    observed = float(roc_auc_score(labels, scores))
    # permute whole groups when every group has one label, else single texts
    unit_labels = {u: set(labels[units == u]) for u in np.unique(units)}
    pure = all(len(v) == 1 for v in unit_labels.values())
    rng = np.random.default_rng(seed)
    null: list[float] = []
    for _ in range(n_permutations):
        if pure:
            names = np.array(list(unit_labels))
            shuffled = dict(zip(names, rng.permutation([next(iter(unit_labels[n])) for n in names]), strict=True))
            permuted = np.array([shuffled[u] for u in units])
        else:
            permuted = rng.permutation(labels)
        null.append(roc_auc_score(permuted, out_of_fold(permuted)) if len(np.unique(permuted)) == 2 else 0.5)
        above = sum(value >= observed - 1e-12 for value in null)
        below = sum(value <= observed + 1e-12 for value in null)
        if min(above, below) >= SEQUENTIAL_STOP:
            break  # Besag & Clifford (1991): the observed AUROC sits inside the null on both sides
    permutation_p = _sequential_p(sum(value >= observed - 1e-12 for value in null), len(null))
    lower_p = _sequential_p(sum(value <= observed + 1e-12 for value in null), len(null))
    null_values = np.array(null)
    tail = (1 - confidence) / 2
    centre = float(np.median(null_values))
    low_q, high_q = np.quantile(null_values, [tail, 1 - tail])
    evaluation = evaluate_scorer(
        scores, labels, name="blind baseline", fprs=fprs, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
    )
    figures = {f.name: getattr(evaluation, f.name) for f in fields(ScorerEvaluation)}
    figures["auroc_ci"] = (max(0.0, observed - (high_q - centre)), min(1.0, observed + (centre - low_q)))
    figures["auroc_ci_method"] = f"permutation-calibrated ({len(null)} label permutations, refit each time)"
    member_hashes = {sha256_text(t) for t in member_texts}
    shared = sum(sha256_text(t) in member_hashes for t in nonmember_texts)
    return BlindBaselineResult(
        **figures,
        folds=folds,
        seed=seed,
        n_permutations=len(null),
        permutation_p=float(permutation_p),
        lower_p=float(lower_p),
        alpha=alpha,
        grouped=grouped,
        shared_texts=shared,
        chance_auroc=centre,
        scores=tuple(float(s) for s in scores),
    )
