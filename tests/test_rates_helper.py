"""The size-test helper refuses what it exists to refuse: a true rate of twice alpha, and accepts alpha itself."""

from __future__ import annotations

import numpy as np
import pytest
from rates import assert_at_most, refusal_count


def test_refusal_count_is_the_binomial_tail_at_one_percent():
    # 200 repetitions at alpha 0.05: 10 expected; P(Bin(200, 0.05) >= 19) = 0.0058, P(>= 18) = 0.012
    assert refusal_count(200, 0.05) == 19


@pytest.mark.slow
def test_a_true_size_of_twice_alpha_is_refused_and_alpha_is_accepted():
    rng = np.random.default_rng(0)
    refused = 0
    for _ in range(200):
        try:
            assert_at_most(int(rng.binomial(400, 0.10)), 400, 0.05)
        except AssertionError:
            refused += 1
    assert refused >= 170  # power 0.925 against 0.10 at 400 repetitions (binomial tail)
    accepted = sum(int(rng.binomial(400, 0.05)) < refusal_count(400, 0.05) for _ in range(500))
    assert accepted >= 490  # a correct test is refused in at most 1% of runs
    with pytest.raises(AssertionError, match=r"refuses a true rate of 0\.1"):
        assert_at_most(30, 200, 0.05, "demo")
