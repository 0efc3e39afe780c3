"""``--batch-size auto``: the largest batch, in tokens, that fits, found once per (model, device, window) and
remembered.

On a GPU the budget is measured: batches of full-window segments are run, doubling, until one runs out of
memory (or ``MAX_TOKENS`` is reached), and the largest that ran is kept. On a CPU, where running out of memory
ends the process instead of raising, it is estimated from the memory available now and the model's shape: per
token, one layer's activations (hidden states, attention projections, MLP) in the model's dtype, float32
attention scores over the window, and the key/value cache of every layer, against 40% of the available memory
less the output head's chunk budget. Either way the result is stored in ``<cache>/batch-sizes.json`` under the
model's file hash, device, dtype and window, so every later run plans the same batches (and so gives the same
bits); the engine's halving back-off on out-of-memory stays the safety net.

With a token budget B, batches are planned from the length-sorted segments: each batch takes segments while
(segments in it) x (its longest segment) <= B, at least one segment per batch.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

AUTO = "auto"
MAX_TOKENS = 2**16
MEMORY_SHARE = 0.4


def memory_file() -> Path:
    from llm_mia.io.identity import cache_dir

    return cache_dir() / "batch-sizes.json"


def _available_bytes() -> int:
    """Memory available to a new allocation now (Linux MemAvailable; else the total via sysconf)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_cpu_tokens(config: Any, window: int, dtype_bytes: int, available: int, head_bytes: int) -> int:
    """Tokens per batch that fit in ``MEMORY_SHARE`` of ``available`` bytes (module docstring).

    A 30-layer model with hidden size 576, MLP 1536, 9 heads (3 for keys/values), float32, 2048-token window,
    8 GiB available and a 256 MiB head budget:

    >>> from types import SimpleNamespace as C
    >>> config = C(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
    ...            num_key_value_heads=3)
    >>> estimate_cpu_tokens(config, 2048, 4, 8 * 2**30, 256 * 2**20)  # 3,167,538,380 bytes / 152,064 per token
    20830
    """
    # a missing setting reads as 0, which (like None) falls through to the next name or the default
    hidden: int = getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 768)
    mlp: int = getattr(config, "intermediate_size", 0) or getattr(config, "n_inner", 0) or 4 * hidden
    layers: int = getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layer", 12)
    heads: int = getattr(config, "num_attention_heads", 0) or getattr(config, "n_head", 12)
    kv_heads: int = getattr(config, "num_key_value_heads", 0) or heads
    per_token = (
        dtype_bytes * (6 * hidden + 3 * mlp)  # one layer's activations
        + 4 * heads * window  # float32 attention scores
        + dtype_bytes * 2 * layers * hidden * kv_heads // heads  # keys and values of every layer
    )
    budget = int(MEMORY_SHARE * available) - head_bytes
    return max(window, min(MAX_TOKENS, budget // per_token))


def measure_tokens(run: Callable[[int], None], window: int, is_out_of_memory: Callable[[BaseException], bool]) -> int:
    """The largest ``segments x window`` that ``run(segments)`` completes, doubling from one segment until it
    runs out of memory or reaches ``MAX_TOKENS``; at least one segment."""
    segments, fits = 1, 1
    while segments * window <= MAX_TOKENS:
        try:
            run(segments)
        except (RuntimeError, MemoryError) as error:
            if not is_out_of_memory(error):
                raise
            break
        fits = segments
        segments *= 2
    return max(window, fits * window)


def token_budget(
    key: str,
    *,
    device: str,
    window: int,
    config: Any,
    dtype_bytes: int,
    head_bytes: int,
    run: Callable[[int], None],
    is_out_of_memory: Callable[[BaseException], bool],
) -> int:
    """The remembered budget for ``key`` (model files, device, dtype, window), else find it and remember it."""
    path = memory_file()
    try:
        remembered = json.loads(path.read_text())
    except (OSError, ValueError):
        remembered = {}
    if key in remembered:
        return int(remembered[key]["tokens"])
    if device.startswith("cuda"):
        import torch

        tokens, how = measure_tokens(run, window, is_out_of_memory), "measured"
        torch.cuda.empty_cache()
    else:
        available = _available_bytes()
        tokens = estimate_cpu_tokens(config, window, dtype_bytes, available, head_bytes)
        how = f"estimated from {available / 2**30:.1f} GiB available"
    logger.info("batch size auto: %d tokens per batch (%s) for %s", tokens, how, key)
    remembered[key] = {"tokens": tokens, "how": how}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(remembered, indent=1, sort_keys=True))
    os.replace(temporary, path)
    return tokens
