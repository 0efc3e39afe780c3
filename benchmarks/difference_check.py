"""How often the model-free difference check fires, on real text: at about its level when the suspect work is
exchangeable with the control works, and as often as possible when it differs from them in era, sub-genre or
format (``llm_mia.stats.work_difference``, designs in ``llm_mia.io.real_works``).

Each draw: one suspect work and 30 control works (each work at most its first 1,500 words), cut into passages of
``--words`` words; the suspect enters whole and every control work with up to as many passages as the suspect
has (the work-level test's rule); the check ranks the suspect among the 31 works. A fire is p <= 0.05 (with 31
works: the suspect more different from the others than every control work is, p = 1/31). Exact (Clopper-Pearson)
95% intervals.

    python benchmarks/difference_check.py                       # 40 draws per design, about 15 minutes on 2 cores
    python benchmarks/difference_check.py --draws 10 --designs sub-genre format

Needs a Debian system's /usr/share/doc and /usr/share/man (changelogs, manual pages), the Wikipedia summaries
(the set-up installs them) and WikiMIA in ../shared/data/wikimia.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.io.real_works import DESIGNS, EXCHANGEABLE, draw_works, word_passages
from llm_mia.stats.metrics import clopper_pearson
from llm_mia.stats.work_difference import work_difference

ALPHA = 0.05


def run_design(design: str, draws: int, words: int, controls: int, seed: int) -> dict[str, Any]:
    fired, views, started = 0, {"wording": 0, "shared vocabulary": 0}, time.perf_counter()
    for draw in range(draws):
        rng = np.random.default_rng([seed, draw, DESIGNS.index(design)])
        works = draw_works(design, rng, controls=controls)
        suspect = [p for text in works.suspect[1] for p in word_passages(text, words)]
        texts, names = list(suspect), ["suspect"] * len(suspect)
        for i, (_, control) in enumerate(works.controls):
            passages = [p for text in control for p in word_passages(text, words)][: len(suspect)]
            texts += passages
            names += [f"control {i}"] * len(passages)
        result = work_difference(texts, names, "suspect", seed=draw)
        fired += result.fired(ALPHA)
        for view, p in result.view_p.items():
            views[view] += p <= ALPHA
    low, high = clopper_pearson(fired, draws)
    return {
        "design": design,
        "kind": "level (exchangeable)" if design in EXCHANGEABLE else "detection",
        "fired": fired,
        "draws": draws,
        "rate": fired / draws,
        "ci": [low, high],
        "view_alone": views,
        "seconds": round(time.perf_counter() - started),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS))
    parser.add_argument("--draws", type=int, default=40, help="draws per design (40)")
    parser.add_argument("--words", type=int, default=32, help="words per passage (32)")
    parser.add_argument("--controls", type=int, default=30, help="control works per draw (30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'design':<26} {'kind':<22} {'fired':>11} {'rate':>6}  95% interval    seconds")
    for design in args.designs:
        row = run_design(design, args.draws, args.words, args.controls, args.seed)
        rows.append(row)
        low, high = row["ci"]
        print(
            f"{design:<26} {row['kind']:<22} {row['fired']:>4}/{row['draws']:<6} {row['rate']:>6.3f}  "
            f"[{low:.3f}, {high:.3f}]  {row['seconds']:>5}   (views alone: {row['view_alone']})",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
