"""The flags several subcommands take, each defined once: its name, type, default and help.

A subcommand adds the ones it needs with :func:`add_flags` (``add_flags(group, "device", "dtype")``), so a flag
parses, defaults and reads the same in every command that has it; ``tests/test_cli_help.py`` checks that on the
real parsers. A flag whose meaning differs between commands is not shared: it gets another name. A renamed flag
keeps its old name as a :class:`DeprecatedAlias` (``action=DeprecatedAlias, dest=NEW``): it still works, and says
so.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llm_mia.backends.local import DTYPES
from llm_mia.engine.threads import AUTO, parse_threads
from llm_mia.errors import LlmMiaError

__all__ = ["SHARED_FLAGS", "DeprecatedAlias", "add_flags", "batch_size", "threads"]


def threads(value: str) -> int | str:
    """``--threads``: a positive integer or ``auto`` (a usage error otherwise, before anything runs)."""
    try:
        parsed = parse_threads(value)
    except LlmMiaError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"--threads {value!r}: ")) from None
    return AUTO if parsed is None else parsed  # None only for None, which argparse never passes


def batch_size(value: str) -> int | str:
    """``--batch-size``: a positive integer or ``auto``."""
    if value == AUTO:
        return value
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give a number of texts or 'auto'") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give at least 1 (or 'auto')")
    return number


# name -> (option strings, keyword arguments of add_argument)
SHARED_FLAGS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "threads": (
        ("--threads",),
        {
            "type": threads,
            "default": AUTO,
            "help": "torch CPU threads (per process where a command runs several): a number, or auto (default: the "
            "cores other work leaves free, measured at the start); on CPU a fixed number gives bit-identical reruns",
        },
    ),
    "device": (
        ("--device",),
        {"default": "auto", "help": "cpu, cuda, cuda:N or auto (default: auto: a GPU when torch sees one, else cpu)"},
    ),
    "dtype": (
        ("--dtype",),
        {
            "choices": DTYPES,
            "default": "float32",
            "help": "model precision (default: float32; log-probabilities and reductions are computed in float32); "
            "mixed: bfloat16 matrix products inside the blocks, float32 for embeddings, residual stream, norms, "
            "attention and head (float32 where bfloat16 is not fast)",
        },
    ),
    "batch_size": (
        ("--batch-size",),
        {
            "type": batch_size,
            "default": 8,
            "help": "texts or windows of a long text per forward pass (default: 8), or auto (scoring only): the "
            "largest batch in tokens that fits, found once per model, device and window and remembered",
        },
    ),
    "no_progress": (
        ("--no-progress",),
        {"action": "store_true", "help": "hide progress bars and cost estimates"},
    ),
    "cache_dir": (
        ("--cache-dir",),
        {"help": "stats cache directory (default: <cache>/stats); a killed run resumes from it with identical results"},
    ),
    "no_cache": (
        ("--no-cache",),
        {
            "action": "store_true",
            "help": "neither read nor write llm-mia's caches (token statistics, API responses, and for known-split "
            "runs the split and the trained models): everything is computed again",
        },
    ),
}


def add_flags(group: argparse.ArgumentParser | argparse._ArgumentGroup, *names: str) -> None:
    """Add the shared flags ``names`` (keys of :data:`SHARED_FLAGS`) to a parser or an argument group."""
    for name in names:
        options, settings = SHARED_FLAGS[name]
        group.add_argument(*options, **settings)


class DeprecatedAlias(argparse.Action):
    """An option kept under an old name: stores like the new one and prints a note naming it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, *_: Any) -> None:
        new = "--" + self.dest.replace("_", "-")
        print(f"note: {self.option_strings[0]} is deprecated here; use {new} (same meaning)", file=sys.stderr)
        setattr(namespace, self.dest, values)
