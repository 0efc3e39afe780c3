"""How the synthetic control's runs are combined: the level and power of each candidate combination of R split
p-values (``llm_mia.synthetic.calibration``), on two kinds of input.

gaussian      R split z-statistics, equicorrelated normal (correlation rho between any two splits), p_r = 1 - Phi(z_r
              + mu): mu = 0 is the null, mu > 0 a membership shift seen by every split. ``--draws`` draws per cell.
calibration   the calibrated test itself (``calibrated_test``, R runs) on the tests' vocabulary construction: 60 pairs
              of 16-word texts that text alone partly tells apart (real texts draw 30% of their words from a second
              vocabulary, synthetic ones 50%), three membership scores per text, pure noise (null) or with the real
              side shifted up by ``--shift`` standard deviations (membership that text does not show). Every
              combination is computed from the same runs' p-values; the mean correlation between two splits' z
              (from their p-values) is printed under the null.

Combinations: the publication's 1 - prod_r(1 - p_r); Bonferroni min(1, R min_r p_r) (the one used); the Cauchy
combination (Liu and Xie 2020); Simes min_r R p_(r) / r; twice the median; one pre-registered split (the first).
A rate is the share of draws with combined p <= alpha, with an exact 95% interval in the calibration part.

    python benchmarks/synthetic_combination.py --part gaussian                       # about 1 minute
    python benchmarks/synthetic_combination.py --part calibration --null-reps 300 --power-reps 100
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import norm

from llm_mia.metrics import clopper_pearson
from llm_mia.synthetic.calibration import calibrated_test, minimum_p

A_WORDS = [f"alpha{i}" for i in range(50)]
B_WORDS = [f"beta{i}" for i in range(50)]


def combinations(p: np.ndarray) -> dict[str, np.ndarray]:
    """Every candidate combination of the rows of ``p`` (draws x R split p-values)."""
    r = p.shape[1]
    ordered = np.sort(p, axis=1)
    cotangent = 1.0 / np.tan(np.pi * np.clip(p, 1e-300, 1.0))
    return {
        "1 - prod(1 - p) (published)": 1.0 - np.prod(1.0 - p, axis=1),
        "Bonferroni R min p (used)": np.array([minimum_p(row) for row in p]),
        "Cauchy": 0.5 - np.arctan(cotangent.mean(axis=1)) / np.pi,
        "Simes": np.min(r * ordered / np.arange(1, r + 1), axis=1),
        "2 x median": np.minimum(1.0, 2.0 * np.median(p, axis=1)),
        "one split": p[:, 0],
    }


def gaussian(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    rhos = (0.0, 0.3, 0.5, 0.7, 0.9, 1.0)
    for mu in (0.0, 1.0, 2.0):
        print(
            f"\n{'null' if mu == 0 else f'shift mu = {mu:g}'}: rate of combined p <= {args.alpha:g} "
            f"({args.draws:,} draws of {args.runs} equicorrelated splits)\n"
        )
        rows = {}
        for rho in rhos:
            common = rng.standard_normal((args.draws, 1))
            z = np.sqrt(rho) * common + np.sqrt(1.0 - rho) * rng.standard_normal((args.draws, args.runs))
            for name, combined in combinations(norm.sf(z + mu)).items():
                rows.setdefault(name, []).append(float(np.mean(combined <= args.alpha)))
        print("| combination | " + " | ".join(f"rho {rho:g}" for rho in rhos) + " |")
        print("|---|" + "---|" * len(rhos))
        for name, rates in rows.items():
            print(f"| {name} | " + " | ".join(f"{rate:.4f}" for rate in rates) + " |")


def vocabulary_pairs(
    rng: np.random.Generator, n: int, shift: float
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """The tests' construction (``tests/test_synthetic_control.py``): the real side's scores shifted by ``shift``."""

    def text(share_b: float) -> str:
        return " ".join((B_WORDS if rng.random() < share_b else A_WORDS)[rng.integers(50)] for _ in range(16))

    real = [text(0.3) for _ in range(n)]
    synthetic = [text(0.5) for _ in range(n)]
    return real, synthetic, rng.normal(size=(n, 3)) + shift, rng.normal(size=(n, 3))


def calibration(args: argparse.Namespace) -> None:
    for name, shift, reps in (("null", 0.0, args.null_reps), (f"shift {args.shift:g} sd", args.shift, args.power_reps)):
        rng = np.random.default_rng(args.seed)
        started = time.perf_counter()
        p = np.array(
            [
                [
                    run.p_value
                    for run in calibrated_test(*vocabulary_pairs(rng, args.pairs, shift), runs=args.runs, seed=rep).runs
                ]
                for rep in range(reps)
            ]
        )
        print(
            f"\n{name}: {reps} tests of {args.pairs} pairs, {args.runs} runs each "
            f"({time.perf_counter() - started:.0f} s); rate of combined p <= {args.alpha:g} [exact 95% interval]\n"
        )
        if shift == 0.0:
            # exchangeable splits: Var(sum_r z_r) = R var(z) (1 + (R - 1) rho)
            z = norm.isf(np.clip(p, 1e-12, 1 - 1e-12))
            rho = (np.var(z.sum(axis=1)) / (args.runs * np.var(z)) - 1.0) / (args.runs - 1)
            print(
                f"correlation between two splits' z: {rho:.2f}; share of runs at p = 1/2 (no score weight): "
                f"{np.mean(p == 0.5):.2f}; single-run rate p <= alpha: {np.mean(p <= args.alpha):.4f}\n"
            )
        print("| combination | rate | 95% interval |")
        print("|---|---|---|")
        for label, combined in combinations(p).items():
            hits = int(np.sum(combined <= args.alpha))
            low, high = clopper_pearson(hits, reps)
            print(f"| {label} | {hits}/{reps} = {hits / reps:.3f} | [{low:.3f}, {high:.3f}] |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["gaussian", "calibration"], default="gaussian")
    parser.add_argument("--runs", type=int, default=10, help="splits combined (R; the test's default 10)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--draws", type=int, default=400_000, help="gaussian: draws per cell")
    parser.add_argument("--null-reps", type=int, default=300, help="calibration: tests under the null")
    parser.add_argument("--power-reps", type=int, default=100, help="calibration: tests with a membership shift")
    parser.add_argument("--pairs", type=int, default=60, help="calibration: pairs per test")
    parser.add_argument("--shift", type=float, default=0.4, help="calibration: membership shift, in sd")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    gaussian(args) if args.part == "gaussian" else calibration(args)


if __name__ == "__main__":
    main()
