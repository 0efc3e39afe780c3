"""How many torch CPU threads to use: a fixed number, or ``auto`` from the load the machine has right now.

Under contention torch's OpenMP threads spin on cores other processes need: on this project's 2-core machine
the six-scorer suite ran at 1.83x the batch-1 reference workflow when idle, but at 0.49x with two threads when
three other jobs shared the cores, where one thread was several times faster. ``auto`` measures how busy the
cores are (two reads of ``/proc/stat`` a quarter of a second apart, while this process waits; elsewhere the
one-minute load average) and takes the cores left free, at least one: all cores on an idle machine, one on a
saturated one. ``benchmarks/threads.py`` compares it with every fixed choice, idle and loaded.

The thread count changes how CPU matrix products are blocked, so it changes the last bits of a score (the stats
cache keys on it): for bit-identical reruns on CPU give a fixed ``--threads``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final, Literal

from llm_mia.errors import LlmMiaError

AUTO: Final = "auto"
PROBE_SECONDS = 0.25


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies over all CPUs from /proc/stat, or None where there is no such file."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields[:8]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_cores(probe_seconds: float = PROBE_SECONDS) -> float:
    """How many cores other work keeps busy now: measured over ``probe_seconds`` from /proc/stat (this process
    sleeps meanwhile, so it does not count itself), else the one-minute load average."""
    cores = os.cpu_count() or 1
    first = _cpu_times()
    if first is not None:
        time.sleep(probe_seconds)
        second = _cpu_times()
        if second is not None and second[1] > first[1]:
            return cores * (second[0] - first[0]) / (second[1] - first[1])
    if hasattr(os, "getloadavg"):
        return os.getloadavg()[0]
    return 0.0


def auto_threads(cores: int | None = None, busy: float | None = None) -> int:
    """The cores left free by other work, at least one.

    >>> auto_threads(cores=2, busy=0.1), auto_threads(cores=2, busy=3.0), auto_threads(cores=16, busy=4.4)
    (2, 1, 12)
    """
    cores = available_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, round(cores - busy)))


def parse_threads(value: str | int | None) -> int | Literal["auto"] | None:
    """``--threads``: a positive integer, ``auto``, or None (leave torch's own setting)."""
    if value is None:
        return None
    if value == AUTO:
        return AUTO
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise LlmMiaError(f"--threads {value!r}: give a positive integer or 'auto'") from None
    if number < 1:
        raise LlmMiaError(f"--threads {value}: need at least 1 (or 'auto')")
    return number


def resolve_threads(value: int | str | None) -> int | None:
    """The thread count to set: the number given, :func:`auto_threads` for ``auto``, None to leave torch's."""
    value = parse_threads(value)
    if value == AUTO:
        return auto_threads()
    return value


def apply_threads(value: int | str | None) -> int:
    """Set torch's CPU threads as ``value`` says (nothing for None); returns the count in effect."""
    import torch

    threads = resolve_threads(value)
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return torch.get_num_threads()
