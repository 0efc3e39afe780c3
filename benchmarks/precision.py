"""What bfloat16 (or float16) moves on WikiMIA, with the packaged SmolLM2: the precision check on a seeded sample.

Runs ``llm_mia.workflows.precision.precision_check`` on ``--size`` texts of a WikiMIA file (labels read, so the
AUROC under each precision is printed with float32's DeLong interval) and prints its table: per scorer the
largest per-text difference, the rank correlation, and the seconds each precision took on this machine (the
CPU and load are printed with them; speed depends on whether the CPU has fast bfloat16 arithmetic).

    python benchmarks/precision.py                          # 48 texts of WikiMIA-32, bfloat16
    python benchmarks/precision.py --size 776 --dtype float16 --threads 2
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from llm_mia.labelled_sets import load_wikimia
from llm_mia.settings import ModelSettings, ScoringSettings
from llm_mia.threads import apply_threads
from llm_mia.workflows.precision import precision_check

WIKIMIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikimia"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(WIKIMIA / "32.jsonl"), help="a WikiMIA file (default: WikiMIA-32)")
    parser.add_argument("--size", type=int, default=48, help="texts in the seeded sample (48)")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16"))
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        apply_threads(args.threads)
    documents = load_wikimia(args.input)
    settings = ScoringSettings(
        models=ModelSettings(model=args.model, dtype=args.dtype, device="cpu"),
        scorers=("loss", "zlib", "min_k:k=0.2", "min_k_plus_plus:k=0.2"),
        cache=False,
    )
    load = os.getloadavg()[0]
    check = precision_check(documents, settings, size=args.size, seed=args.seed, labels=[d.label for d in documents])
    print(f"{args.model} on {Path(args.input).name}; {os.cpu_count()} cores, load average {load:.1f} at the start")
    for line in check.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
