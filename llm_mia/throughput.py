"""What a run will cost, said before it starts: tokens, windows, forward passes, and the time they will take.

The time comes from a throughput in model tokens per second (every token a forward pass reads, the context a
window repeats and the padding included), remembered per (model, device, dtype, window, CPU threads) in
``<cache>/throughput.json`` from the last run of that kind; without one, the engine times its first forward
pass (real work, kept) and gives the estimate then. The remembered number only ever feeds this message, never a
result.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

# A run shorter than this leaves too noisy a throughput to remember (start-up costs dominate it).
MIN_SECONDS_TO_REMEMBER = 2.0


def memory_file() -> Path:
    from llm_mia.identity import cache_dir

    return cache_dir() / "throughput.json"


def remembered(key: str) -> float | None:
    """Model tokens per second last measured for ``key``, or None."""
    try:
        value = json.loads(memory_file().read_text())[key]["tokens_per_second"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def remember(key: str, *, tokens: int, seconds: float) -> None:
    """Keep ``tokens / seconds`` for ``key`` (a run of at least ``MIN_SECONDS_TO_REMEMBER``); never fails a run."""
    if seconds < MIN_SECONDS_TO_REMEMBER or tokens <= 0:
        return
    path = memory_file()
    try:
        memory = json.loads(path.read_text())
    except (OSError, ValueError):
        memory = {}
    memory[key] = {"tokens_per_second": round(tokens / seconds, 3)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(memory, indent=1, sort_keys=True))
        os.replace(temporary, path)
    except OSError as error:  # a read-only cache directory costs the next estimate, nothing else
        logger.info("could not remember the throughput in %s: %s", path, error)


def duration(seconds: float) -> str:
    """A rough, readable duration.

    >>> [duration(s) for s in (4, 75, 3600 * 2 + 60 * 7, 86400 * 3)]
    ['under 10 s', 'about 1 min', 'about 2 h 07 min', 'about 72 h 00 min']
    """
    if seconds < 10:
        return "under 10 s"
    if seconds < 60:
        return f"about {seconds:.0f} s"
    if seconds < 3600:
        return f"about {seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {hours} h {minutes:02d} min"
