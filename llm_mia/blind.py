"""Blind baseline: can the member and non-member texts be told apart without the model at all?

Das, Zhang & Tramèr (2024), "Blind Baselines Beat Membership Inference Attacks for Foundation Models": a
bag-of-words classifier that never sees the model reaches AUROC 0.99 on WikiMIA and 0.91 on BookMIA, because
those member and non-member sets were collected at different times and differ in topic and wording. When a
classifier that knows nothing about the model separates the sets as well as an attack does, the attack's
numbers measure that distribution shift, not membership.

Method here: TF-IDF word 1-2-grams and character 2-5-grams (within word boundaries), logistic regression
(scikit-learn), scored out of fold with seeded stratified k-fold cross-validation, so every text gets a score
from a classifier that did not train on it. The pooled out-of-fold scores are evaluated with the same
metrics as the attacks (``llm_mia.metrics``): AUROC with a bootstrap interval, TPR at low FPR with its n.
The bootstrap interval covers resampling of texts, not the variation between cross-validation fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from llm_mia.errors import InputError
from llm_mia.metrics import DEFAULT_FPRS, ScorerEvaluation, evaluate_scorer

# Below this AUROC lower bound, with no attack to compare against, the sets count as indistinguishable.
ABOVE_CHANCE_LOWER_BOUND = 0.6


@dataclass(frozen=True, kw_only=True)
class BlindBaselineResult(ScorerEvaluation):
    """Out-of-fold evaluation of the blind (model-free) classifier: the same figures as for an attack
    (:class:`~llm_mia.metrics.ScorerEvaluation`), plus the cross-validation settings. Higher score = more
    member-like.

    ``scores``: out-of-fold P(member) per text, members first then non-members, in input order.
    """

    folds: int
    seed: int
    scores: tuple[float, ...] = field(default=(), repr=False)

    def shift_detected(self, best_attack_auroc: float | None = None) -> bool:
        """True when the sets differ in distribution enough to undermine the attack numbers.

        With an attack AUROC: the blind AUROC's CI lower bound is above 0.5 (it separates the sets better than
        chance) and the attack's AUROC is not above the blind CI's upper bound (the blind classifier matches or
        beats it). Without one: the blind CI lower bound is above 0.6 (clearly better than chance).
        """
        low, high = self.auroc_ci
        if best_attack_auroc is None:
            return low > ABOVE_CHANCE_LOWER_BOUND
        return low > 0.5 and best_attack_auroc <= high

    def warning(self, best_attack_auroc: float | None = None) -> str | None:
        """The distribution-shift warning in plain words, or None when the blind classifier gives no cause."""
        if not self.shift_detected(best_attack_auroc):
            return None
        low, high = self.auroc_ci
        found = (
            f"A bag-of-words classifier that never sees the model tells the member texts from the non-member "
            f"texts with AUROC {self.auroc:.3f} [{low:.3f}, {high:.3f}]"
        )
        if best_attack_auroc is not None:
            found += f", matching or beating the best attack (AUROC {best_attack_auroc:.3f})"
        return (
            f"WARNING: distribution shift. {found}. The two sets differ in distribution (topic, time, wording), "
            f"so attack numbers on them measure that difference, not membership. Compare sets drawn from the "
            f"same distribution (e.g. a random split of one collection) before reading these numbers as "
            f"evidence of training."
        )

    def to_dict(self, best_attack_auroc: float | None = None) -> dict[str, Any]:
        figures = super().to_dict()
        del figures["name"], figures["n_excluded"]  # always "blind baseline" and 0: every text gets a score
        return {
            "method": "tf-idf word 1-2 + char 2-5 grams, logistic regression, out-of-fold (Das et al. 2024)",
            **figures,
            "folds": self.folds,
            "seed": self.seed,
            "warning": self.warning(best_attack_auroc),
        }


def _classifier(seed: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=100_000),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1, max_features=100_000),
    )
    return make_pipeline(features, LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def blind_baseline(
    member_texts: Sequence[str],
    nonmember_texts: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
    fprs: Sequence[float] = DEFAULT_FPRS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
) -> BlindBaselineResult:
    """Cross-validated bag-of-words classifier separating member from non-member texts (no model involved).

    Each text's score is P(member) from a classifier fitted on the other folds (``StratifiedKFold`` with
    shuffling, ``random_state=seed``). Needs at least ``folds`` texts in each set.

    >>> result = blind_baseline(["a cat sat"] * 5, ["the stock fell"] * 5, folds=5)  # doctest: +SKIP
    >>> result.warning()  # doctest: +SKIP
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    if isinstance(member_texts, str) or isinstance(nonmember_texts, str):
        raise InputError("blind_baseline takes two sequences of texts, not single strings")
    if folds < 2:
        raise InputError(f"folds must be >= 2 for cross-validation, got {folds}")
    n_members, n_nonmembers = len(member_texts), len(nonmember_texts)
    if min(n_members, n_nonmembers) < folds:
        raise InputError(
            f"the blind baseline needs at least {folds} member and {folds} non-member texts for {folds}-fold "
            f"cross-validation; got {n_members} members and {n_nonmembers} non-members. Add texts or pass "
            f"fewer folds (minimum 2)"
        )
    texts = [*member_texts, *nonmember_texts]
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"text {index} is a {type(text).__name__}, not a string")
    if not any(text.strip() for text in texts):
        raise InputError("every text is empty; the blind baseline needs words to classify")
    labels = np.array([1] * n_members + [0] * n_nonmembers)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(_classifier(seed), texts, labels, cv=splitter, method="predict_proba")[:, 1]
    evaluation = evaluate_scorer(
        scores, labels, name="blind baseline", fprs=fprs, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
    )
    figures = {f.name: getattr(evaluation, f.name) for f in fields(ScorerEvaluation)}
    return BlindBaselineResult(**figures, folds=folds, seed=seed, scores=tuple(float(s) for s in scores))
