"""Dataset-level inference: the work-level permutation test, the choice of design, every safeguard firing on the
case it exists for, and verdict-level false-positive rates on the designs that broke the passage-level test."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rates import assert_at_most

from llm_mia.errors import LlmMiaError
from llm_mia.stats.dataset_inference import (
    PASSAGE_LEVEL,
    WORK_LEVEL,
    Safeguard,
    dataset_inference,
    format_check,
    length_check,
    min_control_works,
    size_check,
)
from llm_mia.stats.work_test import work_permutation_test

ALPHA = 0.05


def _works(rng, n_works, passages, *, tau=0.0, shift=0.0, features=3, prefix="w"):
    """Passages of ``n_works`` works: correlated membership-like features, a per-work offset ~ N(0, tau)."""
    sizes = passages if isinstance(passages, list) else [passages] * n_works
    offsets = rng.normal(0, tau, n_works)
    names = [f"{prefix}{i}" for i, size in enumerate(sizes) for _ in range(size)]
    common = rng.normal(size=(sum(sizes), 1))
    x = 0.7 * common + 0.7 * rng.normal(size=(sum(sizes), features)) + np.repeat(offsets, sizes)[:, None] + shift
    return x, names


# ------------------------------------------------------------------------------------- the permutation test


def test_exact_enumeration_and_a_hand_checkable_extreme():
    rng = np.random.default_rng(0)
    control, works = _works(rng, 19, 6, tau=0.2)
    suspect, _ = _works(rng, 1, 6, shift=3.0, prefix="s")
    result = work_permutation_test(np.vstack([suspect, control]), ["book"] * 6 + works, ["book"], seed=0)
    # 20 works: 20 labellings, the suspect far above every control work: p = 1/20
    assert result.exact and result.n_labellings == 20 and result.p_value == pytest.approx(0.05)
    assert result.statistic == max(result.null) and result.work_statistics["book"] == result.statistic
    assert all(w >= 0 for w in result.weights)


def test_random_labellings_when_there_are_too_many_to_enumerate():
    rng = np.random.default_rng(1)
    x, works = _works(rng, 40, 4)
    suspects = [f"w{i}" for i in range(10)]
    result = work_permutation_test(x, works, suspects, permutations=99, splits=3, seed=0)
    assert not result.exact and result.n_labellings == 100
    # the observed labelling first, then 99 random ones: p = (1 + #{random labellings reaching it}) / 100
    reaching = sum(value >= result.statistic - 1e-12 for value in result.null[1:])
    assert result.null[0] == result.statistic and result.p_value == (1 + reaching) / 100


@pytest.mark.parametrize("tau", [0.0, 0.2, 0.5])
@pytest.mark.slow
def test_one_unseen_work_against_many_is_rejected_at_most_at_alpha(tau):
    # the review: between-work offsets of 0.2 and 0.5 SD made the passage-level test say "consistent" in
    # 28/200 and 59/200 runs; here works are the units, so the offset is part of the null
    rejections, reps = 0, 200
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        x, works = _works(rng, 30, list(rng.integers(3, 30, 30)), tau=tau)
        result = work_permutation_test(x, works, ["w0"], splits=4, seed=rep)
        rejections += result.p_value <= ALPHA
    assert_at_most(rejections, reps, 1 / 31, f"one unseen work among 31, between-work SD {tau}")


@pytest.mark.slow
def test_many_suspect_works_against_many_is_rejected_at_most_at_alpha_and_finds_a_real_shift():
    rejections, found, reps = 0, 0, 100
    for rep in range(reps):
        rng = np.random.default_rng(1000 + rep)
        x, works = _works(rng, 30, 4, tau=0.5)
        suspects = [f"w{i}" for i in range(12)]
        rejections += work_permutation_test(x, works, suspects, splits=3, permutations=199, seed=rep).p_value <= ALPHA
        x[np.isin(works, suspects)] += 0.6  # the same works, now trained on
        found += work_permutation_test(x, works, suspects, splits=3, permutations=199, seed=rep).p_value <= ALPHA
    assert_at_most(rejections, reps, ALPHA, "12 unseen works among 42")
    assert found / reps > 0.5, found


@pytest.mark.slow
def test_a_smaller_suspect_work_is_compared_on_as_many_passages():
    # a 4-passage suspect work against 60-passage control works: with every passage of theirs its mean would be
    # noisier than theirs and land in the tails more often; every work enters with 4, as many as the suspect has
    rejections, reps = 0, 300
    for rep in range(reps):
        rng = np.random.default_rng(5000 + rep)
        control, works = _works(rng, 25, 60, tau=0.1)
        suspect, _ = _works(rng, 1, 4, tau=0.1, prefix="s")
        result = work_permutation_test(np.vstack([suspect, control]), ["s"] * 4 + works, ["s"], splits=3, seed=rep)
        rejections += result.p_value <= ALPHA
    assert_at_most(rejections, reps, 1 / 26, "4-passage suspect among 25 works of 60")
    assert result.passages_per_work == 4 and result.validity == "exact"


def test_bad_inputs():
    x = np.ones((6, 2))
    with pytest.raises(LlmMiaError, match="suspect and one control work"):
        work_permutation_test(x, ["a"] * 6, ["a"])
    with pytest.raises(LlmMiaError, match="have no passages"):
        work_permutation_test(x, ["a"] * 3 + ["b"] * 3, ["c"])
    x[0, 0] = np.nan
    with pytest.raises(LlmMiaError, match="missing or non-finite scores"):
        work_permutation_test(x, ["a"] * 3 + ["b"] * 3, ["a"])


# ------------------------------------------------------------------------------------- design and verdict


@pytest.mark.slow
def test_many_control_works_give_the_work_level_design_and_a_verdict():
    rng = np.random.default_rng(4)
    control, works = _works(rng, 30, 10, tau=0.2)
    trained, _ = _works(rng, 1, 40, shift=1.5, prefix="s")
    result = dataset_inference(trained, control, suspect_works=["book"] * 40, control_works=works, seed=0)
    assert result.design == WORK_LEVEL and result.verdict == "consistent"
    sentence = result.sentence()
    assert sentence.startswith(
        "consistent with training on this work (work-level permutation test on the target model's scores, suspect "
        "work against control works, p = 0.032"
    )
    assert "if, untrained, the work would be like the control works" in sentence and "prove" not in sentence
    unseen, _ = _works(rng, 1, 40, prefix="s")
    quiet = dataset_inference(unseen, control, suspect_works=["book"] * 40, control_works=works, seed=0)
    assert quiet.verdict == "not distinguishable"
    assert "work-level SDs above the control works" in quiet.sentence() and "not evidence" in quiet.sentence()
    assert quiet.sentence().startswith("not distinguishable from the control works (")
    json.dumps(result.to_dict(), allow_nan=False)


def test_one_control_source_gives_no_verdict_of_training():
    # the rights holder's usual setting: the book against one later text. Even a strong difference is only
    # "inconclusive": between-work differences cannot be told from training
    rng = np.random.default_rng(5)
    suspect, control = rng.normal(size=(100, 3)) + 0.8, rng.normal(size=(120, 3))
    result = dataset_inference(suspect, control, seed=0)
    assert result.design == PASSAGE_LEVEL and result.passage_test.p_value < 1e-6
    assert result.verdict == "inconclusive" and result.qualifications
    assert "no verdict of training is given" in result.sentence()
    assert min_control_works(ALPHA) == 19
    few = dataset_inference(suspect, control, control_works=[f"c{i % 10}" for i in range(120)], seed=0)
    assert (
        few.design == PASSAGE_LEVEL and ">= 19 needed" not in few.design_reason and "needs >= 19" in few.design_reason
    )


def test_the_negative_control_fires_when_control_works_come_from_two_different_collections():
    # control works of two kinds, given collection by collection (the second shifted): the first half against
    # the second rejects, and the verdict is withheld: a suspect like the second kind would look trained
    rng = np.random.default_rng(6)
    plain, plain_works = _works(rng, 20, 8)
    other, other_works = _works(rng, 20, 8, shift=1.5, prefix="o")
    control, works = np.vstack([plain, other]), plain_works + other_works
    suspect, _ = _works(rng, 1, 8, shift=1.5, prefix="s")
    result = dataset_inference(suspect, control, suspect_works=["book"] * 8, control_works=works, seed=0)
    guard = next(s for s in result.safeguards if s.name == "negative control")
    assert guard.fired and result.verdict == "withheld" and result.sentence().startswith("verdict withheld")


def test_length_format_and_size_checks_fire_on_their_cases():
    assert length_check([128] * 50, [83] * 50).fired and not length_check([64] * 50, [63] * 50).fired
    rng = np.random.default_rng(7)
    control_format = np.c_[rng.normal(4.5, 0.2, 200), rng.normal(0.6, 0.02, 200)]
    control_works = [f"c{i // 10}" for i in range(200)]
    prose = np.c_[rng.normal(4.5, 0.2, 30), rng.normal(0.6, 0.02, 30)]
    code = np.c_[rng.normal(2.5, 0.2, 30), rng.normal(0.35, 0.02, 30)]
    assert not format_check(prose, ["book"] * 30, control_format, control_works).fired
    fired = format_check(code, ["book"] * 30, control_format, control_works)
    assert fired.fired and "robust SDs" in fired.detail
    assert size_check([f"s{i}" for i in range(30)], [f"c{i // 50}" for i in range(500)]).fired
    assert not size_check([f"s{i // 5}" for i in range(30)], [f"c{i // 5}" for i in range(500)]).fired


def test_a_fired_safeguard_from_the_caller_withholds_the_verdict():
    rng = np.random.default_rng(8)
    control, works = _works(rng, 30, 10)
    trained, _ = _works(rng, 1, 40, shift=1.5, prefix="s")
    blind = Safeguard("blind baseline", True, "the suspect text is told from the control works without the model")
    result = dataset_inference(
        trained, control, suspect_works=["b"] * 40, control_works=works, extra_safeguards=[blind], seed=0
    )
    assert result.verdict == "withheld" and "blind baseline" in result.sentence()


def test_too_few_passages_and_bad_settings():
    rng = np.random.default_rng(0)
    with pytest.raises(LlmMiaError, match=r"at least 8 suspect and 16 control passages; got 20 and 12"):
        dataset_inference(rng.normal(size=(20, 2)), rng.normal(size=(12, 2)))
    with pytest.raises(LlmMiaError, match="alpha"):
        dataset_inference(rng.normal(size=(20, 2)), rng.normal(size=(20, 2)), alpha=1.5)


@pytest.mark.slow
def test_several_suspect_works_are_judged_as_a_collection():
    rng = np.random.default_rng(11)
    control, works = _works(rng, 30, 10, tau=0.2)
    trained, names = _works(rng, 5, 10, shift=1.5, prefix="s")
    result = dataset_inference(trained, control, suspect_works=names, control_works=works, seed=0)
    assert result.verdict == "consistent"
    sentence = result.sentence()
    assert sentence.startswith("consistent with training on this collection of 5 works (")
    assert "at most 0.05 per collection" in sentence and "does not say which of the works" in sentence


def test_detectable_statistic_is_the_bar_the_other_labellings_set():
    rng = np.random.default_rng(4)
    control, works = _works(rng, 30, 10, tau=0.2)
    trained, _ = _works(rng, 1, 10, shift=2.0, prefix="s")
    test = work_permutation_test(np.vstack([trained, control]), ["book"] * 10 + works, ["book"], seed=0)
    assert test.p_value == pytest.approx(1 / 31)
    bar = test.detectable(0.05)
    others = sorted(value for name, value in test.work_statistics.items() if name != "book")
    assert bar == pytest.approx(others[-1]) and bar < test.statistic


@pytest.mark.slow
def test_paragraph_effects_do_not_favour_a_small_suspect_work():
    """Every 4 passages share an effect (a paragraph); a small suspect work enters whole, control works of
    30-60 passages with as many of their first passages: no more p <= 0.05 than the design allows (2/41)."""

    def work(rng, n):
        paragraphs = np.repeat(rng.normal(0, 1.0, -(-n // 4)), 4)[:n]
        return 0.7 * rng.normal(size=(n, 1)) + 0.7 * rng.normal(size=(n, 2)) + paragraphs[:, None]

    hits, reps = 0, 300
    for rep in range(reps):
        rng = np.random.default_rng([97, rep])
        sizes = rng.integers(30, 61, 40)
        x = np.vstack([work(rng, 8)] + [work(rng, n) for n in sizes])
        names = ["s"] * 8 + [f"c{i}" for i, n in enumerate(sizes) for _ in range(n)]
        hits += work_permutation_test(x, names, ["s"], seed=rep, splits=4).p_value <= 0.05
    assert_at_most(hits, reps, 2 / 41, "paragraph effects, small suspect")
