"""What every command's workflow returns: a result that says what it found and writes its files.

A command calls one workflow function and gets a :class:`WorkflowResult`; it then writes the result where the
user asked (``write``), prints ``summary_lines()``, and says where the files went. The run record (settings,
inputs, models, versions, outcome) is ``record``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class WorkflowResult(Protocol):
    """A workflow's result. ``record``: what its run record or main file holds; ``summary_lines()``: what it
    found, in words and tables, as the command prints it; ``write(destination)``: its files, into the directory
    or file the command names (each result type says which), returning the paths written."""

    @property
    def record(self) -> Mapping[str, Any]: ...

    def summary_lines(self) -> list[str]: ...

    def write(self, destination: str | Path, /) -> list[Path]: ...
