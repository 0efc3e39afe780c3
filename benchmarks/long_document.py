"""Scoring one long text costs time linear in its length: tokens per second at about 10 KB, 100 KB and 1 MB.

Each size is scored as single-document runs through the whole engine (tokenization, windowing with a stride,
batching, cache keys, per-batch commits to a fresh stats cache, reductions, assembly, then the scorers loss,
zlib, min_k and min_k_plus_plus), with the same total amount of text per size: 100 documents of 10 KB, 10 of
100 KB, 1 of 1 MB, each a different slice of one seeded single-line text (so no run reads another's cache
entries). The three sizes alternate within each round; per size the rate is the text's tokens over the summed
seconds, and the ratios to the 10 KB rate are printed. A step quadratic in the length (a text hashed once per
window, say) shows as a ratio falling with size.

    python benchmarks/long_document.py                     # tiny random Llama, window 512, 1 thread, 1 round
    python benchmarks/long_document.py --rounds 3 --window 256

Target: the 100 KB and 1 MB rates within 20% of the 10 KB rate. The model is the test suite's tiny random
Llama (tests/tiny_models.py; 2 layers, hidden size 32), so everything but the forward pass weighs as much as it
ever will: a real model only makes the linear part larger.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import llm_mia
from llm_mia.cache import StatsCache
from llm_mia.documents import Document
from llm_mia.models import ModelSpec, load_model
from llm_mia.scorers import parse_scorer_specs
from llm_mia.scoring import compute_scores
from llm_mia.settings import ExtractionSettings

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="llm-mia-long-document-"))
    loaded = load_model(ModelSpec(name=str(tiny_model(work / "model", args.window)), device="cpu"))
    calls = parse_scorer_specs(SCORERS, has_reference=False)
    settings = ExtractionSettings(window=args.window, batch_size=args.batch_size, progress=False)
    cache = StatsCache(work / "stats.sqlite")
    total = SIZES[-1]
    copies = {size: total // size for size in SIZES}  # the same amount of text per size
    source = one_line_text(len(SIZES) * total * args.rounds + SIZES[0])
    offset = 0

    def score(size: int) -> tuple[int, int, float]:
        nonlocal offset
        text = source[offset : offset + size]
        offset += size
        started = time.perf_counter()
        rows, _ = compute_scores(
            [Document(id=f"d{offset}", text=text)], calls, models={"target": loaded}, settings=settings, cache=cache
        )
        seconds = time.perf_counter() - started
        if rows[0]["status"] != "ok":
            raise RuntimeError(f"a {size:,}-character text scored with status {rows[0]['status']!r}")
        return rows[0]["n_tokens"], rows[0]["n_windows"], seconds

    score(SIZES[0])  # warm-up: first calls allocate and load kernels
    tokens = dict.fromkeys(SIZES, 0)
    seconds = dict.fromkeys(SIZES, 0.0)
    windows = {}
    for round_number in range(args.rounds):
        order = SIZES if round_number % 2 == 0 else SIZES[::-1]  # alternate, so drifting load hits every size
        for size in order:
            for _ in range(copies[size]):
                n, windows[size], s = score(size)
                tokens[size] += n
                seconds[size] += s
    stride = (args.window - len(loaded.prefix_ids)) // 2  # the default: half the window's content
    print(f"llm_mia from {Path(llm_mia.__file__).parent}")
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), torch "
        f"{torch.__version__}; tiny random Llama, window {args.window}, stride {stride}, batch "
        f"{args.batch_size}, a fresh stats cache; scorers {', '.join(SCORERS)}; {args.rounds} round(s)"
    )
    base = tokens[SIZES[0]] / seconds[SIZES[0]]
    print(f"{'text':>10} {'runs':>5} {'tokens/run':>11} {'windows/run':>12} {'seconds':>8} {'tok/s':>8} {'ratio':>6}")
    for size in SIZES:
        rate = tokens[size] / seconds[size]
        runs = copies[size] * args.rounds
        print(
            f"{size / 1000:>8,.0f}KB {runs:>5} {tokens[size] // runs:>11,} {windows[size]:>12,} "
            f"{seconds[size]:>8.1f} {rate:>8,.0f} {rate / base:>6.2f}"
        )
    ratios = [tokens[size] / seconds[size] / base for size in SIZES[1:]]
    verdict = "flat within 20%" if all(0.8 <= r <= 1.2 for r in ratios) else "NOT flat within 20%"
    print(f"rate at 100 KB and 1 MB relative to 10 KB: {ratios[0]:.2f}, {ratios[1]:.2f} ({verdict})")


if __name__ == "__main__":
    main()
