"""What every command's workflow returns: a result that says what it found, and writes its files where it has any.

A command calls one workflow function and gets a :class:`WorkflowResult`; it prints ``summary_lines()``. A
:class:`WritableResult` is also written where the user asked (``write``), and the command says where the files
went. ``record`` holds the numbers and what they rest on (settings, inputs, models, versions): what the result's
run record or main file holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class WorkflowResult(Protocol):
    """A workflow's result. ``record``: what its run record or main file holds; ``summary_lines()``: what it
    found, in words and tables, as the command prints it."""

    @property
    def record(self) -> Mapping[str, Any]: ...

    def summary_lines(self) -> list[str]: ...


@runtime_checkable
class WritableResult(WorkflowResult, Protocol):
    """A result with files: ``write(destination)`` writes them into the directory or file the command names (each
    result type says which) and returns the paths written."""

    def write(self, destination: str | Path, /) -> list[Path]: ...
