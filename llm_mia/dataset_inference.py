"""Dataset-level membership inference: was this work (a book, a site, an article collection) trained on?

Single passages rarely carry a reliable membership signal on large pretrained models; many passages of one
work together do (Maini et al. 2024, "LLM Dataset Inference"). This module turns per-passage membership
scores (one row per passage, one column per scorer, higher = member) into a verdict about the *work*, and
refuses to give one where its assumption cannot hold. No model is touched here.

**The unit of inference is the work.** Passages of one work share author, topic and format, so a test over
passages treats any difference between the suspect work and the control text as "training" (measured: with a
between-work offset of 0.5 passage standard deviations, a passage-level test called one unseen work
"consistent with training" in 59 of 200 runs). So the design depends on the controls:

* **work-level** (the verdict design): the controls are many *separate* works of the same kind as the suspect
  work (other books of the genre, articles by other authors, published after the model's data cutoff). The
  test is :func:`llm_mia.work_permutation.work_permutation_test`: the suspect work(s) ranked among all
  works by a statistic computed identically for every labelling, so between-work variance is in the null.
  **Assumption:** had the suspect work not been trained on, it would be one more work like the control
  works (exchangeable with them). **Guarantee:** P(verdict "consistent" | the work was not trained on) <=
  alpha, per work (marginal over the draw of works). With one suspect work the smallest p is
  1 / (m + 1): m >= 19 control works for alpha = 0.05.
* **passage-level** (no verdict of training): a single control source, or too few control works for the
  work-level test to reach alpha. The Maini et al. passage-level test (:mod:`llm_mia.half_split`) still runs
  and is reported, but between-work differences are not controlled, so a significant result is
  "inconclusive", never "consistent with training".

**Safeguards**, each able to withhold the verdict (and each tested on the case it exists for):

* *negative control with the main test's structure*: the first half of the control works (in the order
  given) against the second half, by the same permutation test in both directions; it fires (p <= alpha) when
  control works from different collections differ from each other, so that a suspect work resembling one of
  them would be flagged for that. In the passage-level design: the first and second half of the control text
  against each other.
* *same cutting, same lengths*: passages on both sides must have the same token length (the cutter makes
  them equal; :func:`length_check` refuses a median difference above 10%);
* *format*: a suspect work whose bytes per token or compressibility lies more than ``FORMAT_LIMIT`` robust
  standard deviations (1.4826 MAD) from the control works' median is not like them (a heuristic guard, not a
  test: it stops code against prose, or markup against plain text);
* *blind baseline* (computed by the workflow, which holds the texts): a model-free classifier that tells the
  suspect text from the control works withholds the verdict (``llm_mia.workflows.dataset``);
* *work sizes*: with several suspect works, works on the two sides must have comparable passage counts
  (median ratio at most ``SIZE_RATIO_LIMIT``).

A "not distinguishable" result states the effect the test could have detected; it is not evidence of absence.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from llm_mia.errors import LlmMiaError
from llm_mia.half_split import (
    DEFAULT_CLIP_QUANTILE,
    DEFAULT_SPLITS,
    MIN_PASSAGES_PER_SET,
    TEST_DESCRIPTION,
    CurvePoint,
    PassageTestResult,
    as_feature_matrix,
    negative_control,
    p_value_curve,
    passage_test,
)
from llm_mia.metrics import format_p_value, p_phrase
from llm_mia.work_permutation import DEFAULT_PERMUTATIONS, WorkTestResult, common_size, work_permutation_test

DEFAULT_ALPHA = 0.05
FORMAT_LIMIT = 4.0  # robust standard deviations between the suspect work and the control works' median
FORMAT_SCALE_FLOOR = 0.01  # the robust SD is taken as at least 1% of the control works' median
LENGTH_TOLERANCE = 0.10  # relative difference of median passage token counts
SIZE_RATIO_LIMIT = 4.0  # ratio of median passages per work, suspect side vs control side (several suspect works)

WORK_LEVEL, PASSAGE_LEVEL = "work-level", "passage-level"
WorkVerdict = Literal["consistent", "not distinguishable", "inconclusive", "withheld"]

CONTROL_ASSUMPTION = (
    "had the suspect work not been trained on, it would be one more work like the control works: the control "
    "works are separate works (other authors' books or articles, not later chapters or paraphrases of the suspect "
    "work) of the same kind (genre, language, format, era) that the model cannot have seen, cut into passages "
    "the same way. If the suspect work differs from all of them in kind, a significant result can reflect that "
    "difference rather than training"
)


def min_control_works(alpha: float, suspect_works: int = 1) -> int:
    """The fewest control works with which the work-level test can reach p <= alpha.

    >>> min_control_works(0.05), min_control_works(0.01), min_control_works(0.05, suspect_works=3)
    (19, 99, 3)
    """
    m = 1
    while math.comb(m + suspect_works, suspect_works) < 1 / alpha - 1e-9:
        m += 1
    return m


@dataclass(frozen=True)
class Safeguard:
    """One check that can withhold a verdict: its name, whether it fired, and what it found."""

    name: str
    fired: bool
    detail: str
    ran: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ran": self.ran, "fired": self.fired, "detail": self.detail}


def work_counts(suspect_works: Sequence[str], control_works: Sequence[str], alpha: float) -> tuple[int, int, int, int]:
    """(c, k, m, needed) for passages labelled by work: the common size c (``common_size``), the k suspect and
    m control works with at least c passages (those that enter the work-level test), and the control works
    the test needs to reach p <= alpha (``min_control_works``). The work-level design runs when m >= needed.

    >>> work_counts(["book"] * 12, [f"c{i // 10}" for i in range(300)], 0.05)
    (10, 1, 30, 19)
    """
    suspect_sizes, control_sizes = Counter(suspect_works), Counter(control_works)
    size = common_size(list(suspect_sizes.values()), list(control_sizes.values()))
    k = max(1, sum(n >= size for n in suspect_sizes.values()))
    m = sum(n >= size for n in control_sizes.values())
    return size, k, m, min_control_works(alpha, k)


def length_check(suspect_tokens: ArrayLike, control_tokens: ArrayLike) -> Safeguard:
    """Passages on the two sides must have the same token length: median counts within ``LENGTH_TOLERANCE``.

    >>> length_check([128] * 10, [83] * 10).fired
    True
    """
    suspect, control = float(np.median(suspect_tokens)), float(np.median(control_tokens))
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
    names: Sequence[str] = ("bytes per token", "compressed bytes per byte"),
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
    return Safeguard(
        "format",
        bool(abs(z[worst]) > FORMAT_LIMIT),
        f"{names[worst]}: suspect {suspect[worst]:.3g}, control works' median {centre[worst]:.3g} "
        f"({z[worst]:+.1f} robust SDs; limit {FORMAT_LIMIT:g})",
    )


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
    options = {"splits": splits, "permutations": permutations, "seed": seed + 7919, "clip_quantile": clip_quantile}
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

    @property
    def p_value(self) -> float:
        """The p-value the verdict rests on (work-level, or passage-level when that is the design)."""
        return self.work_test.p_value if self.work_test is not None else self.passage_test.p_value

    def sentence(self) -> str:
        return verdict_sentence(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "verdict_sentence": self.sentence(),
            "design": self.design,
            "design_reason": self.design_reason,
            "alpha": self.alpha,
            "p_value": self.p_value,
            "assumption": CONTROL_ASSUMPTION,
            "guarantee": (
                f"P(consistent | not trained on) <= {self.alpha:g} per work, if the assumption holds"
                if self.design == WORK_LEVEL
                else "none for training: between-work differences are not controlled"
            ),
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
            "qualifications": list(self.qualifications),
            "power": self.power,
            "p_value_curve": [vars(point) for point in self.curve],
        }


def dataset_inference(
    suspect: ArrayLike,
    control: ArrayLike,
    *,
    suspect_works: Sequence[str] | None = None,
    control_works: Sequence[str] | None = None,
    extra_safeguards: Sequence[Safeguard] = (),
    suspect_format: ArrayLike | None = None,
    control_format: ArrayLike | None = None,
    suspect_tokens: ArrayLike | None = None,
    control_tokens: ArrayLike | None = None,
    alpha: float = DEFAULT_ALPHA,
    splits: int = DEFAULT_SPLITS,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    clip_quantile: float = DEFAULT_CLIP_QUANTILE,
    feature_names: Sequence[str] | None = None,
) -> DatasetInferenceResult:
    """The dataset-level test with its safeguards and verdict (module docstring).

    ``suspect`` / ``control``: (passages, features) membership scores. ``suspect_works`` / ``control_works``:
    the work of each passage (default: all suspect passages one work, all control passages one work, which
    gives the passage-level design). ``suspect_format`` / ``control_format``: (passages, 2) bytes per token and
    compressed bytes per byte, for the format check; ``suspect_tokens`` / ``control_tokens``: passage token
    counts, for the length check; ``extra_safeguards``: checks run by the caller (the blind baseline).

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
    suspect_x, control_x = as_feature_matrix(suspect, "suspect"), as_feature_matrix(control, "control")
    if suspect_x.shape[1] != control_x.shape[1]:
        raise LlmMiaError("suspect and control must be scored by the same scorers")
    if len(suspect_x) < MIN_PASSAGES_PER_SET or len(control_x) < 2 * MIN_PASSAGES_PER_SET:
        raise LlmMiaError(
            f"a dataset test needs at least {MIN_PASSAGES_PER_SET} suspect and {2 * MIN_PASSAGES_PER_SET} control "
            f"passages; got {len(suspect_x)} and {len(control_x)}. Add text, or cut shorter passages"
        )
    suspect_works = [f"suspect:{w}" for w in (suspect_works or ["suspect"] * len(suspect_x))]
    control_works = [f"control:{w}" for w in (control_works or ["control"] * len(control_x))]
    if len(suspect_works) != len(suspect_x) or len(control_works) != len(control_x):
        raise LlmMiaError("give one work per passage, for suspect and control passages alike")
    size, k, m, needed = work_counts(suspect_works, control_works, alpha)
    common = {"splits": splits, "seed": seed, "clip_quantile": clip_quantile}
    passage = passage_test(suspect_x, control_x, feature_names=feature_names, **common)
    curve = tuple(p_value_curve(suspect_x, control_x, **common))
    safeguards: list[Safeguard] = list(extra_safeguards)
    if suspect_tokens is not None and control_tokens is not None:
        safeguards.append(length_check(suspect_tokens, control_tokens))
    qualifications: list[str] = []
    work, passage_control = None, None
    if m >= needed and m >= 2:
        design = WORK_LEVEL
        reason = (
            f"{k} suspect work(s) against {m} control works with at least {size} passages each (>= {needed} needed "
            f"to reach p <= {alpha:g})"
        )
        work = work_permutation_test(
            np.vstack([suspect_x, control_x]),
            suspect_works + control_works,
            sorted(set(suspect_works)),
            permutations=permutations,
            feature_names=feature_names,
            **common,
        )
        if suspect_format is not None and control_format is not None:
            safeguards.append(format_check(suspect_format, suspect_works, control_format, control_works))
        safeguards.append(size_check(suspect_works, control_works))
        safeguards.append(work_negative_control(control_x, control_works, alpha=alpha, **common))
        p_value = work.p_value
        detectable = work.detectable(alpha)
        power = (
            f"with {m} control works and {work.n_labellings} labellings the smallest possible p is "
            f"{format_p_value(work.smallest_p)}; p <= {alpha:g} needed the suspect work(s) at least "
            f"{detectable:.2f} passage SDs above the control works on the fitted combination (observed "
            f"{work.statistic:.2f})"
        )
    else:
        design = PASSAGE_LEVEL
        reason = (
            f"{m} control work(s) with at least {size} passages: the work-level test needs >= {needed} separate "
            f"control works to reach p <= "
            f"{alpha:g}, so between-work differences cannot be controlled and no verdict of training is given"
        )
        qualifications.append(
            "between-work differences are not controlled: the suspect and control passages come from different "
            "works, and any difference between the works (author, topic, format) looks like training to a "
            f"passage-level test. Give >= {needed} separate control works of the same kind for a verdict"
        )
        passage_control = negative_control(
            control_x, groups=[str(w) for w in control_works], feature_names=feature_names, **common
        )
        safeguards.append(
            Safeguard(
                "negative control",
                passage_control.p_value <= alpha,
                f"control vs control ({passage_control.note}): {p_phrase(passage_control.p_value)}",
            )
        )
        p_value = passage.p_value
        n_test = (max(2, len(suspect_x) // 2), max(2, len(control_x) // 2))
        from scipy.stats import norm

        d = (norm.isf(alpha / 2) + norm.isf(0.2)) * math.sqrt(1 / n_test[0] + 1 / n_test[1])
        power = (
            f"the passage-level test would have detected, with about 80% power, a difference of {d:.2f} passage "
            f"SDs (Cohen's d) between suspect and control passages (normal approximation, splits combined)"
        )
    fired = [s for s in safeguards if s.fired]
    if fired:
        verdict: WorkVerdict = "withheld"
    elif p_value <= alpha:
        verdict = "consistent" if design == WORK_LEVEL else "inconclusive"
    else:
        verdict = "not distinguishable"
    return DatasetInferenceResult(
        design=design,
        verdict=verdict,
        alpha=alpha,
        work_test=work,
        passage_test=passage,
        passage_negative_control=passage_control,
        curve=curve,
        safeguards=tuple(safeguards),
        qualifications=tuple(qualifications),
        power=power,
        design_reason=reason,
    )


def verdict_sentence(result: DatasetInferenceResult) -> str:
    """The verdict in the project's wording, with the numbers and the assumption it rests on."""
    alpha = result.alpha
    if result.verdict == "withheld":
        fired = "; ".join(f"{s.name}: {s.detail}" for s in result.safeguards if s.fired)
        return (
            f"verdict withheld: {fired}. The test's assumption (suspect and control texts alike but for training) "
            f"does not hold for these inputs, so its p-value ({p_phrase(result.p_value)}) cannot be read "
            f"as evidence about training"
        )
    if result.design == WORK_LEVEL:
        work = result.work_test
        assert work is not None
        if len(work.suspect_works) == 1:
            unit, claim = "work", "the work would be like the control works"
        else:
            unit, claim = "collection", f"the {len(work.suspect_works)} suspect works would be like the control works"
        detail = (
            f"work-level permutation test, {p_phrase(work.p_value)} over {work.n_labellings} labellings "
            f"with {len(work.control_works)} control works; false-positive rate at most {alpha:g} per {unit} if, "
            f"untrained, {claim}"
        )
        if result.verdict == "consistent" and unit == "work":
            return f"consistent with training on this work ({detail})"
        if result.verdict == "consistent":
            return (
                f"consistent with training on this collection of {len(work.suspect_works)} works ({detail}). The "
                f"test is about the collection as a whole: it does not say which of the works were trained on"
            )
        return (
            f"not distinguishable from unseen text ({detail}); {result.power}. This is not evidence that the work "
            f"was not trained on"
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
        f"not distinguishable from unseen text ({detail}; between-work differences not controlled); "
        f"{result.power}. This is not evidence that the work was not trained on"
    )
