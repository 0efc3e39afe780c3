"""Plain-text tables for the terminal: one helper, so every command lines up columns the same way."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, trailing spaces trimmed.

    >>> text_table(["a", "bb"], [["1", "2"], ["333", "4"]])
    ['a    bb', '1    2', '333  4']
    """
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return lines


def cell(value: Any, *, fmt: str = ".4g") -> str:
    """A table cell: '-' for a missing value, floats in format ``fmt`` (default 4 significant digits).

    >>> [cell(None), cell(float("nan")), cell(0.123456), cell(-2.5, fmt=".4f"), cell(3)]
    ['-', '-', '0.1235', '-2.5000', '3']
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt) if isinstance(value, float) else str(value)
