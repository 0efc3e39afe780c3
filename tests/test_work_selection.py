"""Which passages enter the work-level test is decided without labels (or, with one suspect work, from its size
only), so the test keeps its level; and a long suspect work is tested whole, which is where a rights holder's
power comes from."""

from __future__ import annotations

import numpy as np
import pytest
from rates import assert_at_most

from llm_mia.stats.metrics import clopper_pearson
from llm_mia.stats.work_test import COMMON_SIZE, select_passages, work_permutation_test

ALPHA = 0.05


def _works(rng, sizes, *, tau=0.3, front=0.0, front_passages=0, shift=None):
    """Passages of works of the given sizes: correlated features, a per-work offset ~ N(0, tau); the first
    ``front_passages`` of every work moved by ``front`` SD (front matter scoring unlike the body); ``shift``: an
    extra offset per work (training)."""
    offsets = rng.normal(0, tau, len(sizes)) + (0 if shift is None else np.asarray(shift))
    rows, names = [], []
    for i, size in enumerate(sizes):
        x = 0.7 * rng.normal(size=(size, 1)) + 0.7 * rng.normal(size=(size, 3)) + offsets[i]
        x[:front_passages] += front
        rows.append(x)
        names += [f"w{i}"] * size
    return np.vstack(rows), names


def test_selection_uses_sizes_only_and_reports_the_share_tested():
    works = ["book"] * 365 + [f"c{i // 2}" for i in range(60)]  # a long book against 30 two-passage articles
    chosen = select_passages(works, ["book"])
    assert chosen.counts["book"] == 365 and chosen.share_of(["book"]) == 1.0 and not chosen.equal_sizes
    common = select_passages(works, ["book"], rule=COMMON_SIZE)
    assert common.passages_per_work == 2 and common.share_of(["book"]) == 2 / 365 and common.equal_sizes
    # several suspect works: c from all works' sizes, whatever the labels
    several = [select_passages(works, labels).passages_per_work for labels in (["c0", "c1"], ["book", "c2"])]
    assert several == [2, 2]


@pytest.mark.slow
def test_a_short_high_scoring_work_among_long_ones_keeps_the_exact_level():
    """One work of 4 passages scoring high among 30 of 40, the suspect drawn uniformly: the exact level is 1/31. The
    earlier rule fixed the passage count from the observed suspect and left the short work out whenever a long
    work was the suspect, which gave about 2/31 (56/1000 = 0.056 measured)."""
    reps, hits = 600, 0
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        x, works = _works(rng, [4] + [40] * 30, shift=[2.0] + [0.0] * 30)
        suspect = f"w{rng.integers(31)}"
        hits += work_permutation_test(x, works, [suspect], splits=2, seed=rep).p_value <= ALPHA
    low, high = clopper_pearson(hits, reps)
    assert low <= 1 / 31 <= high, (hits, reps)
    assert_at_most(hits, reps, 1 / 31, "short high-scoring work")


@pytest.mark.slow
def test_a_long_suspect_against_shorter_controls_is_conservative_even_with_front_matter():
    """Sizes from 3 to 200 passages, the first 5 passages of every work a standard deviation lower (front matter),
    the suspect drawn at random: its later passages have no counterpart in short control works, and the rate stays
    at or below the exact 1/31."""
    reps, hits = 400, 0
    for rep in range(reps):
        rng = np.random.default_rng(10_000 + rep)
        x, works = _works(rng, list(rng.integers(3, 200, 31)), front=-1.0, front_passages=5)
        hits += work_permutation_test(x, works, [f"w{rng.integers(31)}"], splits=2, seed=rep).p_value <= ALPHA
    assert_at_most(hits, reps, 1 / 31, "whole suspect, sizes 3-200, front matter")


@pytest.mark.slow
def test_testing_the_whole_suspect_finds_what_its_first_passages_miss():
    """A book of 120 passages trained on (+0.3 SD) against 30 articles of 3 to 8 passages: the common size gives
    every work 3 passages and misses it; the whole book is found in most runs."""
    reps, whole, common = 60, 0, 0
    for rep in range(reps):
        rng = np.random.default_rng(20_000 + rep)
        sizes = [120, *rng.integers(3, 9, 30)]
        x, works = _works(rng, sizes, tau=0.15, shift=[0.3] + [0.0] * 30)
        whole += work_permutation_test(x, works, ["w0"], splits=2, seed=rep).p_value <= ALPHA
        common += work_permutation_test(x, works, ["w0"], splits=2, seed=rep, selection=COMMON_SIZE).p_value <= ALPHA
    print(f"found: whole {whole}/{reps}, common size {common}/{reps}")
    assert whole >= 2 * common + 10, (whole, common)
