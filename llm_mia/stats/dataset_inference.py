"""Dataset-level membership inference: was this work (a book, a site, an article collection) trained on?

Single passages rarely carry a reliable membership signal on large pretrained models; many passages of one
work together do (Maini et al. 2024, "LLM Dataset Inference"). This module turns per-passage membership
scores (one row per passage, one column per scorer, higher = member) into a verdict about the *work*, and
withholds it where a check shows its assumption failing. No model is touched here.

**The unit of inference is the work.** Passages of one work share author, topic and format, so a test over
passages treats any difference between the suspect work and the control text as "training" (measured in
``benchmarks/false_positives.py``: against one control source offset by 0.5 passage standard deviations, the
passage-level test rejected in most runs). So the design depends on the controls:

* **work-level** (the verdict design): the controls are many *separate* works (other books, articles by other
  authors) that the model cannot have seen. The test is :func:`llm_mia.stats.work_test.work_permutation_test`:
  the suspect work(s) ranked among all works by a statistic computed identically for every labelling, so
  between-work variance is in the null. Which passages enter is decided from the works' sizes
  (:func:`llm_mia.stats.work_test.select_passages`): one suspect work whole, control works with up to as many.
  **Statistic and assumption:** with ``statistic="scores"`` the target's membership scores, assuming that had
  the suspect work not been trained on it would be one more work like the control works
  (``CONTROL_ASSUMPTION``); with ``statistic="reference-gap"`` each score minus the same score under a reference
  model that cannot have seen the work, assuming only that the two models react alike to whatever else sets the
  work apart (``GAP_ASSUMPTION``: the design for controls of another era, author or format). **Guarantee:**
  P(verdict "consistent" | the work was not trained on) <= alpha per work (per collection with several suspect
  works), marginal over the draw of works, if the assumption holds: exact when every work enters with as many
  passages, conservative when control works are shorter than the suspect. With one suspect work the smallest p
  is 1 / (m + 1): m >= 19 control works for alpha = 0.05.
* **passage-level** (no verdict of training): a single control source, or too few control works for the
  work-level test to reach alpha. The Maini et al. passage-level test (:mod:`llm_mia.stats.passage_test`) still runs
  and is reported, but between-work differences are not controlled, so a significant result is
  "inconclusive", never "consistent with training".

**Safeguards** in the work-level design, each able to withhold the verdict, each tested on the case it exists
for, all on exactly the passages the test reads:

* *difference from the control works* (:func:`text_checks`; model-free): one suspect work ranked among all works
  by its distance from the *other* works (:mod:`llm_mia.stats.work_difference`); several suspect works: the blind
  baseline (:mod:`llm_mia.stats.blind_baseline`) with folds over whole works. Under the reference-gap statistic
  reported only;
* *format*: a suspect work whose bytes per word or compressibility lies more than ``FORMAT_LIMIT`` robust
  standard deviations (1.4826 MAD) from the control works' median (a heuristic guard, not a test: it stops code
  against prose, or markup against plain text). Reported only under the reference gap;
* *negative control with the main test's structure*: the first half of the control works (in the order
  given) against the second half, by the same permutation test in both directions; it fires (p <= alpha) when
  control works from different collections differ from each other, so that a suspect work resembling one of
  them would be flagged for that. In the passage-level design: the first and second half of the control text
  against each other;
* *same cutting, same lengths*: passages on both sides must have the same token length (the cutter makes
  them equal; :func:`length_check` refuses a median difference above 10%);
* *work sizes*: with several suspect works, works on the two sides must have comparable passage counts
  (median ratio at most ``SIZE_RATIO_LIMIT``).

What no check sees (``CHECKS_CANNOT_SEE``): differences the wording does not show, and whether the controls
were really unseen. A "not distinguishable" result states the effect the test could have detected; it is not
evidence of absence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypedDict

import numpy as np
from numpy.typing import ArrayLike

from llm_mia.errors import InternalError, LlmMiaError
from llm_mia.stats.metrics import format_p_value, p_phrase
from llm_mia.stats.passage_test import (
    DEFAULT_CLIP_QUANTILE,
    DEFAULT_SPLITS,
    MIN_PASSAGES_PER_SET,
    TEST_DESCRIPTION,
    CurvePoint,
    PassageTestRecord,
    PassageTestResult,
    as_feature_matrix,
    negative_control,
    p_value_curve,
    passage_test,
)
from llm_mia.stats.work_test import (
    DEFAULT_PERMUTATIONS,
    WHOLE_SUSPECT,
    WorkTestRecord,
    WorkTestResult,
    select_passages,
    work_permutation_test,
)

DEFAULT_ALPHA = 0.05
FORMAT_LIMIT = 4.0  # robust standard deviations between the suspect work and the control works' median
FORMAT_SCALE_FLOOR = 0.01  # the robust SD is taken as at least 1% of the control works' median
FORMAT_FEATURES = ("bytes per word", "compressed bytes per byte")
LENGTH_TOLERANCE = 0.10  # relative difference of median passage token counts
SIZE_RATIO_LIMIT = 4.0  # ratio of median passages per work, suspect side vs control side (several suspect works)
BLIND_FOLDS = 5  # folds of the set-level blind baseline (several suspect works)

WORK_LEVEL, PASSAGE_LEVEL = "work-level", "passage-level"


class _Fitting(TypedDict):
    """How every test in one run fits its combination of scores: the same half-splits, seed and clipping."""

    splits: int
    seed: int
    clip_quantile: float


class _WorkFitting(_Fitting):
    """The same, with the work-level test's number of random labellings."""

    permutations: int


WorkVerdict = Literal["consistent", "not distinguishable", "inconclusive", "withheld"]

SCORES, REFERENCE_GAP = "scores", "reference-gap"
STATISTICS = (SCORES, REFERENCE_GAP)
CONTROL_ASSUMPTION = (
    "had the suspect work not been trained on, it would be one more work like the control works: the control "
    "works are separate works (other authors' books or articles, not later chapters or paraphrases of the suspect "
    "work) of the same kind (genre, language, format, era) that the model cannot have seen, cut into passages "
    "the same way. If the suspect work differs from all of them in kind, a significant result can reflect that "
    "difference rather than training"
)
GAP_ASSUMPTION = (
    "the reference model did not see the suspect work, and had the target not seen it either, the target's scores "
    "would exceed the reference model's on the suspect work by about as much as they do on the control works: the "
    "two models react alike to whatever else tells the work from the controls (era, author, format). A reference "
    "model older than the target, or trained on the same kind of text without the work, makes this plausible; it "
    "holds as well whenever the suspect work is like the control works"
)
CHECKS_CANNOT_SEE = (
    "the checks compare texts, not what the model knows: a difference that leaves the wording alike (an era whose "
    "texts use the same words, a date or two in a short text, one author's habits) is not seen by them, and the "
    "negative control compares control works with each other only"
)


def assumption(statistic: str) -> str:
    """The assumption a work-level verdict rests on, for the statistic used."""
    return GAP_ASSUMPTION if statistic == REFERENCE_GAP else CONTROL_ASSUMPTION


def min_control_works(alpha: float, suspect_works: int = 1) -> int:
    """The fewest control works with which the work-level test can reach p <= alpha.

    >>> min_control_works(0.05), min_control_works(0.01), min_control_works(0.05, suspect_works=3)
    (19, 99, 3)
    """
    m = 1
    while math.comb(m + suspect_works, suspect_works) < 1 / alpha - 1e-9:
        m += 1
    return m


class SafeguardRecord(TypedDict):
    """One safeguard in ``report.json`` (:class:`Safeguard`)."""

    name: str
    ran: bool
    fired: bool
    withholds: bool
    detail: str


class MainPassageTestRecord(PassageTestRecord):
    """The passage-level test as the dataset report states it: its ``role`` in the design and the ``test`` run."""

    role: str
    test: str


class CurvePointRecord(TypedDict):
    """One point of the p-value curve in ``report.json`` (``llm_mia.stats.passage_test.CurvePoint``)."""

    n_suspect: int
    n_control: int
    p_value: float
    p_median: float
    p_min: float
    p_max: float


class InferenceRecord(TypedDict):
    """The dataset-level test's result in ``report.json`` (:meth:`DatasetInferenceResult.to_dict`): the schema
    the printed summary and ``summary.md`` read."""

    verdict: WorkVerdict
    verdict_sentence: str
    design: str
    design_reason: str
    statistic: str
    alpha: float
    p_value: float
    assumption: str
    guarantee: str
    checks_cannot_see: str
    work_test: WorkTestRecord | None
    passage_test: MainPassageTestRecord
    passage_negative_control: PassageTestRecord | None
    safeguards: list[SafeguardRecord]
    text_checks: dict[str, Any]
    qualifications: list[str]
    power: str
    p_value_curve: list[CurvePointRecord]


@dataclass(frozen=True)
class Safeguard:
    """One check that can withhold a verdict: its name, whether it fired, and what it found in words.

    ``withholds``: a fired check withholds the verdict (False: reported only, because the design does not rest on
    what it checks, e.g. the text checks when the statistic is the gap to a reference model).
    """

    name: str
    fired: bool
    detail: str
    ran: bool = True
    withholds: bool = True

    def to_dict(self) -> SafeguardRecord:
        return {
            "name": self.name,
            "ran": self.ran,
            "fired": self.fired,
            "withholds": self.withholds,
            "detail": self.detail,
        }


def work_counts(
    suspect_works: Sequence[str], control_works: Sequence[str], alpha: float, *, selection: str = WHOLE_SUSPECT
) -> tuple[int, int, int, int]:
    """(c, k, m, needed) for passages labelled by work: the passages per work of the selection rule
    (:func:`~llm_mia.stats.work_test.select_passages`: the suspect's size with one suspect work, else the common
    size), the k suspect and m control works that enter the work-level test, and the control works the test needs
    to reach p <= alpha (``min_control_works``). The work-level design runs when m >= needed.

    >>> work_counts(["book"] * 12, [f"c{i // 10}" for i in range(300)], 0.05)
    (12, 1, 30, 19)
    """
    suspects = set(map(str, suspect_works))
    chosen = select_passages([*suspect_works, *control_works], sorted(suspects), rule=selection)
    k = max(1, sum(name in suspects for name in chosen.counts))
    m = sum(name not in suspects for name in chosen.counts)
    return chosen.passages_per_work, k, m, min_control_works(alpha, k)


def length_check(suspect_tokens: ArrayLike, control_tokens: ArrayLike) -> Safeguard:
    """Passages on the two sides must have the same token length: median counts within ``LENGTH_TOLERANCE``.

    >>> length_check([128] * 10, [83] * 10).fired
    True
    """
    suspect = float(np.median(np.asarray(suspect_tokens, dtype=float)))
    control = float(np.median(np.asarray(control_tokens, dtype=float)))
    difference = abs(suspect - control) / max(suspect, control, 1.0)
    return Safeguard(
        "passage lengths",
        difference > LENGTH_TOLERANCE,
        f"median tokens per passage: suspect {suspect:.0f}, control {control:.0f} "
        f"(difference {difference:.0%}, limit {LENGTH_TOLERANCE:.0%})",
    )


def _work_means(values: np.ndarray, works: Sequence[str]) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = {}
    for index, work in enumerate(works):
        groups.setdefault(str(work), []).append(index)
    return {work: values[indices].mean(axis=0) for work, indices in groups.items()}


def format_check(
    suspect_format: ArrayLike,
    suspect_works: Sequence[str],
    control_format: ArrayLike,
    control_works: Sequence[str],
    *,
    names: Sequence[str] = FORMAT_FEATURES,
) -> Safeguard:
    """Is a suspect work unlike every control work in format? Robust z of its per-work mean of each format
    feature against the control works' per-work means: (x - median) / s with s = 1.4826 MAD (the standard
    deviation when the MAD is 0), at least ``FORMAT_SCALE_FLOOR`` x |median|; fires beyond ``FORMAT_LIMIT``
    (with several suspect works, on the median of theirs).

    >>> same = [[4.0, 0.5]] * 20  # every control work exactly alike
    >>> works = [f"c{i}" for i in range(20)]
    >>> format_check([[1.0, 0.5]], ["s"], same, works).fired, format_check([[4.0, 0.5]], ["s"], same, works).fired
    (True, False)
    """
    control_means = np.array(list(_work_means(np.asarray(control_format, float), control_works).values()))
    suspect_means = np.array(list(_work_means(np.asarray(suspect_format, float), suspect_works).values()))
    if len(control_means) < 3:
        return Safeguard("format", False, "not run: fewer than 3 control works", ran=False)
    centre = np.median(control_means, axis=0)
    scale = 1.4826 * np.median(np.abs(control_means - centre), axis=0)
    # never below 1% of the centre: control works all of one format (or nearly) must not make any difference
    # look infinite, nor make a real one invisible
    scale = np.where(scale > 0, scale, control_means.std(axis=0))
    scale = np.maximum(scale, FORMAT_SCALE_FLOOR * np.abs(centre))
    suspect = np.median(suspect_means, axis=0)
    z = np.where(scale > 0, (suspect - centre) / np.where(scale > 0, scale, 1.0), 0.0)
    worst = int(np.argmax(np.abs(z)))
    fired = bool(abs(z[worst]) > FORMAT_LIMIT)
    words = (
        "the suspect work is laid out unlike every control work (another format: code, markup, lists or tables "
        "against prose); use control works of the same format"
        if fired
        else "the suspect work's format is within the control works' range"
    )
    return Safeguard(
        "format",
        fired,
        f"{words}: {names[worst]} {suspect[worst]:.3g} against the control works' median {centre[worst]:.3g} "
        f"({z[worst]:+.1f} robust SDs; limit {FORMAT_LIMIT:g})",
    )


def format_features(texts: Sequence[str]) -> np.ndarray:
    """(passages, 2): UTF-8 bytes per whitespace-separated word and zlib-compressed bytes per byte, model-free (a
    passage's token count would make the check depend on the tokenizer).

    >>> format_features(["a b", "abc abc abc"]).round(3).tolist()
    [[1.5, 3.667], [3.667, 1.273]]
    """
    import zlib

    rows = []
    for text in texts:
        data = text.encode("utf-8")
        rows.append([len(data) / max(len(text.split()), 1), len(zlib.compress(data)) / max(len(data), 1)])
    return np.array(rows, dtype=float).reshape(len(rows), 2)


def size_check(suspect_works: Sequence[str], control_works: Sequence[str]) -> Safeguard:
    """With several suspect works: works on both sides must have comparable numbers of passages."""
    suspect_sizes = np.unique(np.asarray(suspect_works, dtype=str), return_counts=True)[1]
    control_sizes = np.unique(np.asarray(control_works, dtype=str), return_counts=True)[1]
    if len(suspect_sizes) < 2:
        return Safeguard(
            "work sizes",
            False,
            f"one suspect work of {int(suspect_sizes[0])} passages; every work enters the test with the same "
            f"number of passages",
        )
    ratio = float(np.median(suspect_sizes) / np.median(control_sizes))
    return Safeguard(
        "work sizes",
        not 1 / SIZE_RATIO_LIMIT <= ratio <= SIZE_RATIO_LIMIT,
        f"median passages per work: suspect {np.median(suspect_sizes):g}, control {np.median(control_sizes):g} "
        f"(limit: within a factor {SIZE_RATIO_LIMIT:g})",
    )


def work_negative_control(
    control: np.ndarray,
    control_works: Sequence[str],
    *,
    alpha: float,
    splits: int,
    seed: int,
    clip_quantile: float,
    permutations: int = 199,
) -> Safeguard:
    """Control works against control works, by the main test: the first half of the control works, in the order
    given, as pseudo-suspects against the second half and the other way round (p = 2 x the smaller of the two,
    Bonferroni). Fires when p <= alpha: unseen works then differ from
    other unseen works as much as the test's null allows for, the way control works from two collections
    (sources, periods, sites) do, and a suspect work resembling one of them would be flagged for that.
    (Leaving random single works out instead could never fire: a randomly chosen work's rank is uniform.)"""
    counts: dict[str, int] = {}
    for work in control_works:
        counts[str(work)] = counts.get(str(work), 0) + 1
    names = [name for name in counts if counts[name] >= 2]  # a work needs a training and a test passage
    rows = [i for i, work in enumerate(control_works) if counts[str(work)] >= 2]
    control, control_works = control[rows], [str(control_works[i]) for i in rows]
    half = len(names) // 2
    if half < 1 or math.comb(len(names), half) < 1 / alpha:
        return Safeguard("negative control", False, "not run: too few control works to split in two", ran=False)
    options: _WorkFitting = {
        "splits": splits,
        "permutations": permutations,
        "seed": seed + 7919,
        "clip_quantile": clip_quantile,
    }
    forward = work_permutation_test(control, control_works, names[:half], **options).p_value
    backward = work_permutation_test(control, control_works, names[half:], **options).p_value
    p_value = min(1.0, 2 * min(forward, backward))  # both directions, Bonferroni
    return Safeguard(
        "negative control",
        p_value <= alpha,
        f"the first {half} control works (in the order given) against the other {len(names) - half}, by the same "
        f"test in both directions: {p_phrase(p_value)}",
    )


@dataclass(frozen=True)
class DatasetInferenceResult:
    """The design used, its test, the safeguards, the verdict at ``alpha`` and what it means.

    ``work_test`` is set in the work-level design; ``passage_test`` (with ``curve``) is always computed (in the
    work-level design as exploratory detail). ``qualifications``: sentences that must be read with the verdict.
    ``statistic``: ``scores`` (the target's membership scores) or ``reference-gap`` (each score minus the same
    score under a reference model).
    """

    design: str
    verdict: WorkVerdict
    alpha: float
    work_test: WorkTestResult | None
    passage_test: PassageTestResult
    passage_negative_control: PassageTestResult | None
    curve: tuple[CurvePoint, ...]
    safeguards: tuple[Safeguard, ...]
    qualifications: tuple[str, ...]
    power: str
    design_reason: str
    statistic: str = SCORES
    text_checks: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def p_value(self) -> float:
        """The p-value the verdict rests on (work-level, or passage-level when that is the design)."""
        return self.work_test.p_value if self.work_test is not None else self.passage_test.p_value

    @property
    def withholding(self) -> tuple[Safeguard, ...]:
        """The safeguards that fired and withhold the verdict."""
        return tuple(s for s in self.safeguards if s.fired and s.withholds)

    def sentence(self) -> str:
        return verdict_sentence(self)

    def to_dict(self) -> InferenceRecord:
        return {
            "verdict": self.verdict,
            "verdict_sentence": self.sentence(),
            "design": self.design,
            "design_reason": self.design_reason,
            "statistic": self.statistic,
            "alpha": self.alpha,
            "p_value": self.p_value,
            "assumption": assumption(self.statistic),
            "guarantee": (
                f"P(consistent | not trained on) <= {self.alpha:g} per "
                f"{'work' if self.work_test is None or len(self.work_test.suspect_works) == 1 else 'collection'}, "
                f"if the assumption holds ({'exact' if self.work_test.validity == 'exact' else 'conservative'})"
                if self.work_test is not None
                else "none for training: between-work differences are not controlled"
            ),
            "checks_cannot_see": CHECKS_CANNOT_SEE,
            "work_test": None if self.work_test is None else self.work_test.to_dict(),
            "passage_test": {
                "role": "main test" if self.design == PASSAGE_LEVEL else "exploratory (passages are not the unit)",
                "test": TEST_DESCRIPTION.format(
                    low=100 * self.passage_test.clip_quantile, high=100 * (1 - self.passage_test.clip_quantile)
                ),
                **self.passage_test.to_dict(),
            },
            "passage_negative_control": None
            if self.passage_negative_control is None
            else self.passage_negative_control.to_dict(),
            "safeguards": [s.to_dict() for s in self.safeguards],
            "text_checks": self.text_checks,
            "qualifications": list(self.qualifications),
            "power": self.power,
            "p_value_curve": [
                {
                    "n_suspect": point.n_suspect,
                    "n_control": point.n_control,
                    "p_value": point.p_value,
                    "p_median": point.p_median,
                    "p_min": point.p_min,
                    "p_max": point.p_max,
                }
                for point in self.curve
            ],
        }


def text_checks(
    texts: Sequence[str],
    works: Sequence[str],
    suspect_works: Sequence[str],
    *,
    alpha: float,
    seed: int,
    withhold: bool,
) -> tuple[list[Safeguard], dict[str, Any]]:
    """The model-free checks, on the passages the work-level test reads (``texts``, ``works``): is the suspect
    text more different from the control works than they are from each other, and is it laid out alike?

    One suspect work: :func:`llm_mia.stats.work_difference.work_difference` (its rank among all works by distance from
    the other works); several: the blind baseline (``llm_mia.stats.blind_baseline``) with folds over whole works and a
    permutation test, at the level of the collection. Both: :func:`format_check` on the per-work means of
    :func:`format_features`. ``withhold``: a fired check withholds the verdict (False for the reference-gap
    statistic, which does not assume the texts alike).
    """
    from llm_mia.stats.blind_baseline import DEFAULT_PERMUTATIONS as BLIND_PERMUTATIONS
    from llm_mia.stats.blind_baseline import blind_baseline
    from llm_mia.stats.work_difference import work_difference

    chosen = set(map(str, suspect_works))
    is_suspect = np.array([str(w) in chosen for w in works])
    texts, works = list(texts), [str(w) for w in works]
    guards: list[Safeguard] = []
    details: dict[str, Any] = {}
    reported = (
        "" if withhold else " (reported, not withholding: the reference-gap statistic does not assume the texts alike)"
    )
    if len(chosen) == 1:
        try:
            found = work_difference(texts, works, next(iter(chosen)), seed=seed)
        except LlmMiaError as error:
            guards.append(Safeguard("difference from the control works", False, f"not run: {error}", ran=False))
        else:
            fired = found.fired(alpha)
            advice = (
                ": the test's assumption (the work would be like the control works) does not hold. Use control "
                "works of the work's own kind, or a reference model that cannot have seen the work "
                "(--reference; the statistic is then the gap between the two models)"
                if fired
                else ""
            )
            detail = f"{found.words()}{advice}{reported}"
            guards.append(Safeguard("difference from the control works", fired, detail, withholds=withhold))
            details["difference"] = found.to_dict()
    else:
        try:
            result = blind_baseline(
                [t for t, s in zip(texts, is_suspect, strict=True) if s],
                [t for t, s in zip(texts, is_suspect, strict=True) if not s],
                member_groups=[w for w, s in zip(works, is_suspect, strict=True) if s],
                nonmember_groups=[w for w, s in zip(works, is_suspect, strict=True) if not s],
                folds=BLIND_FOLDS,
                seed=seed,
                alpha=alpha,
                n_permutations=BLIND_PERMUTATIONS,
                n_bootstrap=200,
            )
        except LlmMiaError as error:
            guards.append(Safeguard("blind baseline", False, f"not run: {error}", ran=False))
        else:
            words = (
                "without the model, a bag-of-words classifier tells the suspect works from the control works "
                "(folds over whole works)"
                if result.separates
                else "without the model, a bag-of-words classifier does not tell the suspect works from the control "
                "works better than chance (folds over whole works)"
            )
            guards.append(
                Safeguard(
                    "blind baseline",
                    result.separates,
                    f"{words}: AUROC {result.auroc:.3f}, permutation {p_phrase(result.permutation_p)}{reported}",
                    withholds=withhold,
                )
            )
            details["blind_baseline"] = result.to_dict()
    features = format_features(texts)
    suspect_works_list = [w for w, s in zip(works, is_suspect, strict=True) if s]
    control_works_list = [w for w, s in zip(works, is_suspect, strict=True) if not s]
    guard = format_check(features[is_suspect], suspect_works_list, features[~is_suspect], control_works_list)
    guards.append(replace(guard, detail=guard.detail + (reported if guard.fired else ""), withholds=withhold))
    return guards, details


def dataset_inference(
    suspect: ArrayLike,
    control: ArrayLike,
    *,
    suspect_works: Sequence[str] | None = None,
    control_works: Sequence[str] | None = None,
    suspect_texts: Sequence[str] | None = None,
    control_texts: Sequence[str] | None = None,
    extra_safeguards: Sequence[Safeguard] = (),
    suspect_tokens: ArrayLike | None = None,
    control_tokens: ArrayLike | None = None,
    statistic: str = SCORES,
    passage_selection: str = WHOLE_SUSPECT,
    alpha: float = DEFAULT_ALPHA,
    splits: int = DEFAULT_SPLITS,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    clip_quantile: float = DEFAULT_CLIP_QUANTILE,
    feature_names: Sequence[str] | None = None,
) -> DatasetInferenceResult:
    """The dataset-level test with its safeguards and verdict (module docstring).

    ``suspect`` / ``control``: (passages, features) membership scores (with ``statistic="reference-gap"``: each
    score minus the same score under the reference model). ``suspect_works`` / ``control_works``: the work of each
    passage (default: all suspect passages one work, all control passages one work, which gives the passage-level
    design). ``suspect_texts`` / ``control_texts``: the passages' texts, for the model-free checks
    (:func:`text_checks`, run on exactly the passages the work-level test reads); ``suspect_tokens`` /
    ``control_tokens``: passage token counts, for the length check; ``extra_safeguards``: checks run by the caller.
    ``passage_selection``: which passages of one suspect work and its controls enter the work-level test
    (:func:`llm_mia.stats.work_test.select_passages`).

    >>> rng = np.random.default_rng(0)
    >>> offsets = rng.normal(0, 0.3, 30)
    >>> control = rng.normal(size=(300, 2)) + np.repeat(offsets, 10)[:, None]
    >>> suspect = rng.normal(size=(10, 2)) + 2.0  # the suspect work, trained on
    >>> works = [f"c{i}" for i in range(30) for _ in range(10)]
    >>> result = dataset_inference(suspect, control, suspect_works=["book"] * 10, control_works=works)
    >>> result.design, result.verdict, round(result.p_value, 3)
    ('work-level', 'consistent', 0.032)
    """
    if not 0.0 < alpha < 1.0:
        raise LlmMiaError(f"alpha must be in (0, 1), got {alpha}; 0.05 is the usual choice")
    if statistic not in STATISTICS:
        raise LlmMiaError(f"statistic {statistic!r}: choose one of {', '.join(STATISTICS)}")
    suspect_x, control_x, suspect_works, control_works = _checked_passages(
        suspect, control, suspect_works, control_works, suspect_texts, control_texts
    )
    common: _Fitting = {"splits": splits, "seed": seed, "clip_quantile": clip_quantile}
    passage = passage_test(suspect_x, control_x, feature_names=feature_names, **common)
    curve = tuple(p_value_curve(suspect_x, control_x, **common))
    safeguards: list[Safeguard] = list(extra_safeguards)
    if suspect_tokens is not None and control_tokens is not None:
        safeguards.append(length_check(suspect_tokens, control_tokens))
    counts = work_counts(suspect_works, control_works, alpha, selection=passage_selection)
    _, _, m, needed = counts
    if m >= needed and m >= 2:
        texts = None if suspect_texts is None or control_texts is None else [*suspect_texts, *control_texts]
        design = _work_level(
            suspect_x, control_x, suspect_works, control_works, texts, counts,
            statistic=statistic, passage_selection=passage_selection, alpha=alpha, permutations=permutations,
            feature_names=feature_names, common=common,
        )  # fmt: skip
    else:
        design = _passage_level(
            suspect_x, control_x, control_works, counts, passage, alpha=alpha, feature_names=feature_names,
            common=common,
        )  # fmt: skip
    safeguards += design.safeguards
    return DatasetInferenceResult(
        design=design.name,
        verdict=decide(safeguards, design.p_value, design.name, alpha),
        alpha=alpha,
        work_test=design.work,
        passage_test=passage,
        passage_negative_control=design.passage_control,
        curve=curve,
        safeguards=tuple(safeguards),
        qualifications=design.qualifications,
        power=design.power,
        design_reason=design.reason,
        statistic=statistic,
        text_checks=design.checks,
    )


def _checked_passages(
    suspect: ArrayLike,
    control: ArrayLike,
    suspect_works: Sequence[str] | None,
    control_works: Sequence[str] | None,
    suspect_texts: Sequence[str] | None,
    control_texts: Sequence[str] | None,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """The feature matrices and each passage's work (``suspect:<work>``, ``control:<work>``; one work per side when
    not given), after the checks every design needs: one scorer set, enough passages, one work and (for both
    sides or neither) one text per passage."""
    suspect_x, control_x = as_feature_matrix(suspect, "suspect"), as_feature_matrix(control, "control")
    if suspect_x.shape[1] != control_x.shape[1]:
        raise LlmMiaError("suspect and control must be scored by the same scorers")
    if len(suspect_x) < MIN_PASSAGES_PER_SET or len(control_x) < 2 * MIN_PASSAGES_PER_SET:
        raise LlmMiaError(
            f"a dataset test needs at least {MIN_PASSAGES_PER_SET} suspect and {2 * MIN_PASSAGES_PER_SET} control "
            f"passages; got {len(suspect_x)} and {len(control_x)}. Add text, or cut shorter passages"
        )
    suspect_labels = [f"suspect:{w}" for w in (suspect_works or ["suspect"] * len(suspect_x))]
    control_labels = [f"control:{w}" for w in (control_works or ["control"] * len(control_x))]
    if len(suspect_labels) != len(suspect_x) or len(control_labels) != len(control_x):
        raise LlmMiaError("give one work per passage, for suspect and control passages alike")
    if (suspect_texts is None) != (control_texts is None) or (
        suspect_texts is not None
        and control_texts is not None
        and (len(suspect_texts) != len(suspect_x) or len(control_texts) != len(control_x))
    ):
        raise LlmMiaError("give the text of every passage on both sides, or of none")
    return suspect_x, control_x, suspect_labels, control_labels


@dataclass(frozen=True)
class _Design:
    """What one design contributes to the result: its name and why it was chosen, the p-value the verdict rests
    on and what the test could detect, its own test (the work-level test, or the passage-level negative control),
    the safeguards it ran (after the caller's and the length check), its qualifications and the text checks'
    detail."""

    name: str
    reason: str
    p_value: float
    power: str
    work: WorkTestResult | None
    passage_control: PassageTestResult | None
    safeguards: tuple[Safeguard, ...]
    qualifications: tuple[str, ...]
    checks: dict[str, Any]


def _work_level(
    suspect_x: np.ndarray,
    control_x: np.ndarray,
    suspect_works: list[str],
    control_works: list[str],
    texts: list[str] | None,
    counts: tuple[int, int, int, int],
    *,
    statistic: str,
    passage_selection: str,
    alpha: float,
    permutations: int,
    feature_names: Sequence[str] | None,
    common: _Fitting,
) -> _Design:
    """The work-level design: the permutation test over labellings of the works, the text checks on exactly the
    passages it reads (``texts``: every passage's, suspect first; None: not run), the size check and the
    work-level negative control."""
    _, k, m, needed = counts
    all_works = suspect_works + control_works
    suspect_names = sorted(set(suspect_works))
    work = work_permutation_test(
        np.vstack([suspect_x, control_x]),
        all_works,
        suspect_names,
        permutations=permutations,
        feature_names=feature_names,
        selection=passage_selection,
        **common,
    )
    selection = work.selection
    if selection is None:
        raise InternalError("the work-level test returned no passage selection")
    reason = (
        f"{k} suspect work(s) against {m} control works with at least 2 passages each (>= {needed} needed "
        f"to reach p <= {alpha:g})"
    )
    safeguards: list[Safeguard] = []
    checks: dict[str, Any] = {}
    if texts is not None:
        guards, checks = text_checks(
            [texts[i] for i in selection.indices],
            [all_works[i] for i in selection.indices],
            suspect_names,
            alpha=alpha,
            seed=common["seed"],
            withhold=statistic == SCORES,
        )
        safeguards += guards
    safeguards.append(size_check(suspect_works, control_works))
    safeguards.append(work_negative_control(control_x, control_works, alpha=alpha, **common))
    detectable = work.detectable(alpha)
    power = (
        f"with {m} control works and {work.n_labellings} labellings the smallest possible p is "
        f"{format_p_value(work.smallest_p)}; p <= {alpha:g} needed the suspect work(s) at least "
        f"{detectable:.2f} work-level SDs above the control works on the fitted combination (observed "
        f"{work.statistic:.2f})"
    )
    share = work.suspect_share
    qualification = (
        f"{share:.0%} of the suspect text's passages entered the test "
        + (
            f"(all {selection.passages_per_work} of the suspect work; each control work with as many as it has, "
            f"up to that)"
            if selection.rule == WHOLE_SUSPECT
            else f"(every work with its first {selection.passages_per_work} passages)"
        )
        + (
            "; every work entered with the same number of passages, so the p-value is exact under the assumption"
            if work.validity == "exact"
            else "; control works shorter than the suspect work entered with fewer passages, whose noisier means "
            "make the p-value conservative (never smaller than the exact one would be, measured)"
        )
    )
    return _Design(WORK_LEVEL, reason, work.p_value, power, work, None, tuple(safeguards), (qualification,), checks)


def _passage_level(
    suspect_x: np.ndarray,
    control_x: np.ndarray,
    control_works: list[str],
    counts: tuple[int, int, int, int],
    passage: PassageTestResult,
    *,
    alpha: float,
    feature_names: Sequence[str] | None,
    common: _Fitting,
) -> _Design:
    """The passage-level design, when there are too few control works for the work-level test: the passage test
    gives the p-value but no verdict of training; its negative control compares control passages with each
    other."""
    from scipy.stats import norm

    size, _, m, needed = counts
    reason = (
        f"{m} control work(s) with at least {size} passages: the work-level test needs >= {needed} separate "
        f"control works to reach p <= "
        f"{alpha:g}, so between-work differences cannot be controlled and no verdict of training is given"
    )
    qualification = (
        "between-work differences are not controlled: the suspect and control passages come from different "
        "works, and any difference between the works (author, topic, format) looks like training to a "
        f"passage-level test. Give >= {needed} separate control works of the same kind for a verdict"
    )
    passage_control = negative_control(
        control_x, groups=[str(w) for w in control_works], feature_names=feature_names, **common
    )
    guard = Safeguard(
        "negative control",
        passage_control.p_value <= alpha,
        f"control vs control ({passage_control.note}): {p_phrase(passage_control.p_value)}",
    )
    n_test = (max(2, len(suspect_x) // 2), max(2, len(control_x) // 2))
    d = (norm.isf(alpha / 2) + norm.isf(0.2)) * math.sqrt(1 / n_test[0] + 1 / n_test[1])
    power = (
        f"the passage-level test would have detected, with about 80% power, a difference of {d:.2f} passage "
        f"SDs (Cohen's d) between suspect and control passages (normal approximation, splits combined)"
    )
    return _Design(PASSAGE_LEVEL, reason, passage.p_value, power, None, passage_control, (guard,), (qualification,), {})


def decide(safeguards: Sequence[Safeguard], p_value: float, design: str, alpha: float) -> WorkVerdict:
    """The verdict: withheld when a safeguard that withholds fired; else, at p <= alpha, consistent with training
    in the work-level design and inconclusive in the passage-level one (between-work differences are not
    controlled there); else not distinguishable.

    >>> decide([], 0.01, WORK_LEVEL, 0.05), decide([], 0.01, PASSAGE_LEVEL, 0.05), decide([], 0.2, WORK_LEVEL, 0.05)
    ('consistent', 'inconclusive', 'not distinguishable')
    >>> decide([Safeguard("format", True, "differs")], 0.01, WORK_LEVEL, 0.05)
    'withheld'
    """
    if any(s.fired and s.withholds for s in safeguards):
        return "withheld"
    if p_value <= alpha:
        return "consistent" if design == WORK_LEVEL else "inconclusive"
    return "not distinguishable"


def verdict_sentence(result: DatasetInferenceResult) -> str:
    """The verdict in the project's wording: what was compared, the numbers, and the assumption it rests on."""
    alpha = result.alpha
    compared = (
        "the target model's scores minus a reference model's, suspect work against control works"
        if result.statistic == REFERENCE_GAP
        else "the target model's scores, suspect work against control works"
    )
    if result.verdict == "withheld":
        fired = "; ".join(f"{s.name}: {s.detail}" for s in result.withholding)
        return (
            f"verdict withheld. {fired}. The test's p-value ({p_phrase(result.p_value)}) rests on an assumption "
            f"these inputs do not meet, so it says nothing about training either way"
        )
    if result.design == WORK_LEVEL:
        work = result.work_test
        if work is None:
            raise LlmMiaError("a work-level result without its work-level test")
        if len(work.suspect_works) == 1:
            unit, claim = "work", "the work would be like the control works"
        else:
            unit, claim = "collection", f"the {len(work.suspect_works)} suspect works would be like the control works"
        if result.statistic == REFERENCE_GAP:
            claim = "the two models would react alike to what distinguishes the work from the control works"
        detail = (
            f"work-level permutation test on {compared}, {p_phrase(work.p_value)} over {work.n_labellings} "
            f"labellings with {len(work.control_works)} control works; false-positive rate at most {alpha:g} per "
            f"{unit} if, untrained, {claim}"
        )
        if result.verdict == "consistent" and unit == "work":
            return f"consistent with training on this work ({detail})"
        if result.verdict == "consistent":
            return (
                f"consistent with training on this collection of {len(work.suspect_works)} works ({detail}). The "
                f"test is about the collection as a whole: it does not say which of the works were trained on"
            )
        return (
            f"not distinguishable from the control works ({detail}); {result.power}. This is not evidence that the "
            f"work was not trained on, nor that the control works were unseen"
        )
    detail = (
        f"passage-level {p_phrase(result.passage_test.p_value)}, {result.passage_test.n_suspect} suspect "
        f"vs {result.passage_test.n_control} control passages"
    )
    if result.verdict == "inconclusive":
        return (
            f"inconclusive: the suspect passages score higher than the control passages ({detail}), but with "
            f"{result.design_reason.split(':')[0]} a difference between the works themselves cannot be told "
            f"apart from training, so no verdict of training is given"
        )
    return (
        f"not distinguishable from the control text ({detail}; between-work differences not controlled); "
        f"{result.power}. This is not evidence that the work was not trained on"
    )
