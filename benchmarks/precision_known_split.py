"""What a lower precision costs on a known split: one benchmark's AUROCs scored in float32, bfloat16 and mixed.

Runs ``llm_mia.workflows.benchmark.run_benchmark`` once per dtype on the same preset. Training is float32 and
cached, so every dtype scores the same fine-tuned snapshots (the scoring itself is done again each time: about
15 minutes for the default on 2 CPU cores, one thread). Prints, per scorer and epoch, each dtype's AUROC with float32's
95% DeLong interval beside it, whether the lower precision's AUROC lies inside that interval, and the largest
per-document score difference from float32; then each dtype's scoring seconds (meaningful only on a quiet
machine: the CPU, threads and load are printed with them).

    python benchmarks/precision_known_split.py                        # smollm2-wikipedia, full size, 1 thread
    python benchmarks/precision_known_split.py --size ci --dtypes float32 bfloat16
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from llm_mia.backends.precision import cpu_model
from llm_mia.known_split.presets import get_preset
from llm_mia.workflows.benchmark import run_benchmark

SCORERS = ["loss", "zlib", "lowercase", "min_k", "min_k_plus_plus", "reference"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="smollm2-wikipedia")
    parser.add_argument("--size", default="full")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16", "mixed"])
    parser.add_argument("--scorers", nargs="+", default=SCORERS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.dtypes[0] != "float32":
        parser.error("the first dtype is the one compared with: float32")
    config = get_preset(args.name, args.size)
    results = {
        dtype: run_benchmark(
            config, device=args.device, progress=False, threads=args.threads, scorers=args.scorers, dtype=dtype
        )
        for dtype in args.dtypes
    }
    exact = results["float32"]
    print(
        f"{config.name} ({config.size}) on {args.device} [{cpu_model()}], torch threads {args.threads}; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end"
    )
    lower = args.dtypes[1:]
    header = ["scorer", "epoch", "float32 AUROC [95% CI]"] + [f"{d} AUROC (inside?, max abs score diff)" for d in lower]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    outside = 0
    for epoch in config.training.epochs:
        base = exact.epoch(epoch)
        for scorer, scored in base.evaluation.scorers.items():
            low, high = scored.auroc_ci
            cells = [scorer, str(epoch), f"{scored.auroc:.3f} [{low:.3f}, {high:.3f}]"]
            for dtype in lower:
                other = results[dtype].epoch(epoch)
                auroc = other.evaluation.scorers[scorer].auroc
                inside = low <= auroc <= high
                outside += not inside
                difference = np.nanmax(np.abs(other.frame[scorer].to_numpy(float) - base.frame[scorer].to_numpy(float)))
                cells.append(f"{auroc:.3f} ({'yes' if inside else 'NO'}, {difference:.3g})")
            print("| " + " | ".join(cells) + " |")
    print(f"AUROCs outside float32's interval: {outside}")
    for dtype, result in results.items():
        seconds = sum(e.scoring_seconds for e in result.epochs)
        print(f"{dtype} (in effect {result.dtype_in_effect}): scoring and evaluation {seconds:.0f} s")


if __name__ == "__main__":
    main()
