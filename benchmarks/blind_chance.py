"""What the blind baseline scores by chance: random splits of one collection, where the sets cannot differ.

Each run draws 2 x 24 Wikipedia lead summaries at random (one collection, so "members" and "non-members" are
alike by construction) and runs ``llm_mia.stats.blind_baseline.blind_baseline`` (5 folds, up to 99 label
permutations). Printed:
the median of the chance AUROC (the permutation null's median, which out-of-fold refitting puts below 0.5 on
small sets), how often the permutation-calibrated interval holds that chance level and how often it holds 0.5,
how often a DeLong interval on the pooled out-of-fold scores (which treats the fitted classifiers as fixed)
excludes 0.5, and how often the shift warning fires (nominal 5%). Exact (Clopper-Pearson) 95% intervals.

    python benchmarks/blind_chance.py                 # 40 splits, a few minutes on 2 cores
    python benchmarks/blind_chance.py --runs 100
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from llm_mia.io.corpora import wikipedia_summaries
from llm_mia.stats.blind_baseline import blind_baseline
from llm_mia.stats.metrics import auroc_interval, clopper_pearson


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40, help="random splits (40)")
    parser.add_argument("--size", type=int, default=24, help="texts per side (24)")
    args = parser.parse_args(argv)
    texts = list(wikipedia_summaries().values())
    chance, holds_chance, holds_half, naive_excludes, warns = [], 0, 0, 0, 0
    for run in range(args.runs):
        rng = np.random.default_rng(run)
        picked = [texts[i] for i in rng.choice(len(texts), size=2 * args.size, replace=False)]
        result = blind_baseline(picked[: args.size], picked[args.size :], seed=run, n_bootstrap=200)
        low, high = result.auroc_ci
        chance.append(result.chance_auroc)
        holds_chance += low <= result.chance_auroc <= high
        holds_half += low <= 0.5 <= high
        labels = np.r_[np.ones(args.size, int), np.zeros(args.size, int)]
        naive_low, naive_high, _ = auroc_interval(np.asarray(result.scores), labels)
        naive_excludes += not naive_low <= 0.5 <= naive_high
        warns += result.separates
    runs = args.runs

    def rate(count: int) -> str:
        low, high = clopper_pearson(count, runs)
        return f"{count}/{runs} = {count / runs:.3f} [{low:.3f}, {high:.3f}]"

    print(f"random splits of Wikipedia summaries, {args.size} texts a side, {runs} runs")
    print(f"median chance AUROC (permutation null median): {float(np.median(chance)):.2f}")
    print(f"permutation-calibrated interval holds the chance level: {rate(holds_chance)}")
    print(f"permutation-calibrated interval holds 0.5: {rate(holds_half)}")
    print(f"DeLong interval on pooled out-of-fold scores excludes 0.5: {rate(naive_excludes)}")
    print(f"shift warning fires (nominal 0.05): {rate(warns)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
