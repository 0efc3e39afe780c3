"""Coverage of the TPR@FPR bootstrap interval (``llm_mia.metrics.tpr_at_fpr``) when the non-members allow 10 or
20 false positives (``MIN_FALSE_POSITIVES`` = 20 marks the first as unresolved): how often the interval holds the
true TPR, and on which side it misses.

Binormal scores: non-members N(0, 1), members N(d, 1) with d = z(0.99) - z(1 - t), so the true TPR at 1% FPR is
exactly t; t cycles through 0.1, 0.2, ..., 0.6; as many members as non-members. Each run computes the 95%
interval (1,000 resamples, the threshold re-chosen in each) and records whether it covers t, and on which side it
misses. Exact (Clopper-Pearson) 95% intervals on the coverage.

    python benchmarks/tpr_coverage.py                      # 1,800 runs at 1,000 non-members, 300 at 2,000
    python benchmarks/tpr_coverage.py --runs 600 150
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy.stats import norm

from llm_mia.metrics import clopper_pearson, tpr_at_fpr

TARGET_FPR = 0.01
TRUE_TPRS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def coverage(nonmembers: int, runs: int, seed: int = 0) -> dict[str, float]:
    covered = below = 0
    for run in range(runs):
        rng = np.random.default_rng([seed, nonmembers, run])
        truth = TRUE_TPRS[run % len(TRUE_TPRS)]
        shift = norm.isf(TARGET_FPR) - norm.isf(truth)
        scores = np.r_[rng.normal(shift, 1, nonmembers), rng.normal(0, 1, nonmembers)]
        labels = np.r_[np.ones(nonmembers, int), np.zeros(nonmembers, int)]
        low, high = tpr_at_fpr(scores, labels, target_fpr=TARGET_FPR, seed=run).tpr_ci
        covered += low <= truth <= high
        below += truth < low
    return {"covered": covered, "truth_below": below, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs=2, type=int, default=[1800, 300], help="runs at 1,000 and at 2,000 (1800 300)")
    args = parser.parse_args(argv)
    for nonmembers, runs in zip((1000, 2000), args.runs, strict=True):
        found = coverage(nonmembers, runs)
        low, high = clopper_pearson(found["covered"], runs)
        allowed = round(TARGET_FPR * nonmembers)
        print(
            f"{allowed} false positives allowed ({nonmembers} non-members at 1% FPR): interval covered the true TPR "
            f"in {found['covered']}/{runs} = {found['covered'] / runs:.3f} [{low:.3f}, {high:.3f}]; truth below the "
            f"interval in {found['truth_below']}/{runs} = {found['truth_below'] / runs:.3f} (nominal 0.025)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
