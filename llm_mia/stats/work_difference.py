"""Is the suspect work more *different* from the control works than they are from each other? (No model.)

The work-level test is exact when the suspect work, untrained, would be one more work like the control works.
Controls a model cannot have seen are, in a real case, often of another era, author or format, and a model
reacts to such differences as it reacts to training. This check measures the difference on exactly the passages
the test reads, and ranks the suspect among all works by the same procedure, so that under the test's own
assumption (works exchangeable) its rank is uniform and it fires at most at its level.

Per work w, two views of how far its passages lie from *the other works* (never from itself, so a work that is
merely self-coherent, as every real work is, does not stand out):

* **wording**: TF-IDF of word 1-2-grams and character 2-5-grams (within word boundaries; the blind baseline's
  features, Das et al. 2024), fitted on one document per work so every work weighs the same; each passage's cosine
  similarity to the mean of the *other* works' mean vectors (each work weighted equally); the work's dissimilarity
  is minus the mean over its passages.
* **shared vocabulary**: only the words found in at least a quarter of the works (function words, dates, recurring
  terms of the collection: what the control works have in common, not any one work's topic), sublinear term
  frequencies; a logistic regression tells w's passages from the other works' passages, fitted on half of w's
  passages and half of the other works and scored on the other halves (both ways), each side weighted equally; the
  work's dissimilarity is the AUROC. A work lacking what the others share (another era's dates and names, another
  genre's recurring terms) is separable in this view; a work that differs only in topic is not.

Every work is represented by at most the median work's number of passages (a seeded random subset of a longer one,
spread over all of it): a long suspect would otherwise look different for its length alone (its words would fill
the shared vocabulary, its classifier would have more to learn from). Works shorter than the median are noisier,
which puts them, not a long suspect, in the tails.

The two dissimilarities are put on one scale by a robust z over the works (median, 1.4826 MAD) and summed: D(w).
p = #{works with D >= D(suspect)} / #works, ties counted against the suspect. Every step treats works alike
(no label is used), so p is exactly valid when the works are exchangeable; the check fires when p <= alpha.

Measured on real text (``python benchmarks/difference_check.py``: 30 control works, 40 draws per design, passages
of 32 words, the suspect entering whole and each control work with up to as many passages; exact 95% intervals).
Firing when the works are exchangeable (a verdict withheld for nothing; the level is 1/31 = 0.032): 0/40
[0, 0.09] on Wikipedia articles (collections of four), 4/40 [0.03, 0.24] on Debian changelogs of different
packages. Firing when the suspect differs: another era, 33/40 [0.67, 0.93] (eight WikiMIA event articles from
before 2017 against groups of eight from 2023 on); another sub-genre, 22/40 [0.38, 0.71] (an upstream NEWS or
ChangeLog against Debian changelogs); another format, 33/40 [0.67, 0.93] (a manual page's troff source against
Debian changelogs). What it misses: differences that leave the wording alike, such as one short text whose era
shows in a date or two (one 128-word WikiMIA article before 2017 against single articles from 2023 on: 3/40
[0.02, 0.20]) or a package's changelog entries up to 2012 against other packages' entries from 2023 on (1/40
[0.001, 0.13]: changelogs of every era use the same words). Where the era differs by design, use a reference
model (the reference-gap statistic of ``llm_mia.stats.dataset_inference``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llm_mia.errors import LlmMiaError

MAX_WORKS = 100  # the suspect is ranked among itself and at most this many control works (a random subset)
SHARED_SHARE = 0.25  # the shared vocabulary: words found in at least this share of the works
METHOD = (
    "per work, distance from the other works (never from itself) in two views, each on one robust-z scale, summed: "
    "TF-IDF word 1-2 + char 2-5 grams, cosine to the other works' work-weighted centroid; and a logistic regression "
    "on the vocabulary shared by >= 25% of the works, this work vs the others, AUROC on held-out halves; the suspect "
    "ranked among all works"
)
VIEWS = {
    "wording": "the words and character patterns it uses",
    "shared vocabulary": "the common vocabulary the control works share (function words, dates, recurring terms)",
}


@dataclass(frozen=True)
class WorkDifferenceResult:
    """The suspect's rank among the works by distance from the other works (module docstring).

    ``p_value``: #{works at least as different as the suspect} / ``works_ranked``; ``distance``: D per work (summed
    robust z); ``views``: each view's raw dissimilarity per work; ``view_p``: the suspect's rank p in each view alone
    (reported, not tested).
    """

    p_value: float
    suspect_work: str
    works_ranked: int
    distance: dict[str, float]
    views: dict[str, dict[str, float]]
    view_p: dict[str, float]

    def fired(self, alpha: float) -> bool:
        return self.p_value <= alpha

    @property
    def more_different(self) -> int:
        """Control works at least as different from the others as the suspect work is."""
        return round(self.p_value * self.works_ranked) - 1

    def words(self) -> str:
        """What the check found, in words, numbers after."""
        view = min(self.view_p, key=lambda name: self.view_p[name])
        return (
            f"without the model, the suspect work differs from the control works more than "
            f"{self.works_ranked - 1 - self.more_different} of the {self.works_ranked - 1} control works differ from "
            f"the others (most in {VIEWS[view]}); {self.more_different} control work(s) are at least as different "
            f"(rank p = {self.p_value:.3g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": METHOD,
            "p_value": self.p_value,
            "works_ranked": self.works_ranked,
            "control_works_at_least_as_different": self.more_different,
            "suspect_distance": self.distance[self.suspect_work],
            "view_p": dict(self.view_p),
        }


def robust_z(values: np.ndarray) -> np.ndarray:
    """(x - median) / (1.4826 MAD), the standard deviation when the MAD is 0, zeros when all values are equal.

    >>> robust_z(np.array([1.0, 2.0, 3.0, 10.0])).round(2).tolist()
    [-1.01, -0.34, 0.34, 5.06]
    """
    centre = float(np.median(values))
    scale = 1.4826 * float(np.median(np.abs(values - centre)))
    if scale <= 0:
        scale = float(values.std())
    return (values - centre) / scale if scale > 0 else np.zeros_like(values)


def _work_means(matrix: Any, work_of: np.ndarray, names: list[str]) -> np.ndarray:
    return np.vstack([np.asarray(matrix[np.flatnonzero(work_of == name)].mean(axis=0)).ravel() for name in names])


def _wording(texts: list[str], work_of: np.ndarray, names: list[str]) -> np.ndarray:
    """Minus the mean cosine similarity of each work's passages to the other works' work-weighted centroid."""
    from sklearn.preprocessing import normalize

    from llm_mia.stats.blind_baseline import bag_of_words_vectorizer

    documents = [" ".join(t for t, w in zip(texts, work_of, strict=True) if w == name) for name in names]
    matrix = normalize(bag_of_words_vectorizer().fit(documents).transform(texts))
    means = _work_means(matrix, work_of, names)  # (works, features)
    total = means.sum(axis=0)
    out = np.zeros(len(names))
    for i, name in enumerate(names):
        centroid = (total - means[i]) / (len(names) - 1)
        centroid = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
        out[i] = -float(np.mean(matrix[np.flatnonzero(work_of == name)] @ centroid))
    return out


def _shared_vocabulary(texts: list[str], work_of: np.ndarray, names: list[str], seed: int) -> np.ndarray:
    """Held-out AUROC of "this work vs the others" on the words at least a quarter of the works use."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import normalize

    pattern = r"(?u)\b\w+\b"
    documents = [" ".join(t for t, w in zip(texts, work_of, strict=True) if w == name) for name in names]
    presence = CountVectorizer(token_pattern=pattern, binary=True).fit(documents)
    share = np.asarray(presence.transform(documents).sum(axis=0)).ravel() / len(names)
    vocabulary = presence.get_feature_names_out()[share >= max(SHARED_SHARE, 2 / len(names))]
    if len(vocabulary) == 0:
        return np.full(len(names), 0.5)
    matrix = CountVectorizer(token_pattern=pattern, vocabulary=vocabulary).transform(texts).astype(float)
    matrix.data = 1.0 + np.log(matrix.data)
    matrix = normalize(matrix)
    rng = np.random.default_rng(seed)
    out = np.zeros(len(names))
    for i, name in enumerate(names):
        own = rng.permutation(np.flatnonzero(work_of == name))
        others = rng.permutation([n for n in names if n != name])
        halves = (own[: len(own) // 2], own[len(own) // 2 :]), (others[: len(others) // 2], others[len(others) // 2 :])
        aurocs = []
        for a, b in ((0, 1), (1, 0)):
            own_fit, own_test = halves[0][a], halves[0][b]
            other_fit = np.flatnonzero(np.isin(work_of, halves[1][a]))
            other_test = np.flatnonzero(np.isin(work_of, halves[1][b]))
            if min(len(own_fit), len(own_test), len(other_fit), len(other_test)) == 0:
                continue
            fit = np.r_[own_fit, other_fit]
            y = np.r_[np.ones(len(own_fit)), np.zeros(len(other_fit))]
            weight = np.where(y == 1, 0.5 / len(own_fit), 0.5 / len(other_fit)) * len(fit)
            model = LogisticRegression(C=1.0, solver="liblinear").fit(matrix[fit], y, sample_weight=weight)
            test = np.r_[own_test, other_test]
            truth = np.r_[np.ones(len(own_test)), np.zeros(len(other_test))]
            aurocs.append(roc_auc_score(truth, model.decision_function(matrix[test])))
        out[i] = float(np.mean(aurocs)) if aurocs else 0.5
    return out


def work_difference(
    texts: Sequence[str],
    works: Sequence[str],
    suspect_work: str,
    *,
    seed: int = 0,
    max_works: int = MAX_WORKS,
) -> WorkDifferenceResult:
    """Rank the suspect work among all works by its distance from the other works (module docstring).

    ``texts``: the passages the test reads; ``works``: the work of each; works need at least 2 passages (others are
    left out). Needs at least 3 works.
    """
    works_array = np.array([str(w) for w in works])
    counts = {name: int(np.sum(works_array == name)) for name in dict.fromkeys(works_array.tolist())}
    names = [name for name, count in counts.items() if count >= 2]
    if str(suspect_work) not in names:
        raise LlmMiaError("the difference check needs at least 2 passages of the suspect work")
    controls = [name for name in names if name != str(suspect_work)]
    rng = np.random.default_rng(seed)
    if len(controls) > max_works:
        controls = sorted(rng.choice(controls, size=max_works, replace=False).tolist(), key=names.index)
    names = [str(suspect_work), *controls]
    if len(names) < 3:
        raise LlmMiaError(f"the difference check needs at least 2 control works with 2 passages; got {len(controls)}")
    # every work is represented by at most the median work's number of passages (a random subset of a longer one):
    # a long suspect must not look more different, or less, only for having more text (its vocabulary would
    # dominate the shared one, its classifier would have more to learn from)
    cap = int(np.median([counts[name] for name in names]))
    keep = np.sort(
        np.concatenate(
            [rng.permutation(np.flatnonzero(works_array == name))[: min(counts[name], cap)] for name in names]
        )
    )
    chosen_texts = [texts[i] for i in keep]
    work_of = works_array[keep]
    views = {
        "wording": _wording(chosen_texts, work_of, names),
        "shared vocabulary": _shared_vocabulary(chosen_texts, work_of, names, seed),
    }
    combined = np.sum([robust_z(values) for values in views.values()], axis=0)

    def rank_p(values: np.ndarray) -> float:
        tolerance = 1e-12 * max(1.0, float(np.abs(values).max()))
        return float(np.mean(values >= values[0] - tolerance))

    return WorkDifferenceResult(
        p_value=rank_p(combined),
        suspect_work=str(suspect_work),
        works_ranked=len(names),
        distance=dict(zip(names, combined.tolist(), strict=True)),
        views={view: dict(zip(names, values.tolist(), strict=True)) for view, values in views.items()},
        view_p={view: rank_p(values) for view, values in views.items()},
    )
