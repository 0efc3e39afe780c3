"""Giving memory that a finished step freed back to the operating system (:func:`release_freed_memory`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def release_freed_memory() -> bool:
    """Collect garbage, then ask the C library to hand the freed heap back to the operating system
    (glibc's ``malloc_trim(0)``); returns whether it could (False where the C library has no ``malloc_trim``:
    musl, macOS, Windows).

    Why: glibc raises its mmap threshold as large blocks are freed (up to 32 MiB by default), so the many 1-4 MB
    tensors of a training run or a GGUF conversion end up on the heap, and freeing them leaves the process's
    resident size where it was: the step after (scoring, in ``llm-mia demo``) would start from the training run's
    high-water mark instead of from what is still in use. It changes no value, only where freed memory goes.
    """
    gc.collect()
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    trim(0)
    return True
