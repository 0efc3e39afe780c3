"""What a scorer's hyperparameter may be: its type and its allowed values, declared once in its registry entry.

The idea is scikit-learn's parameter validation (``Interval``, ``StrOptions``): each scorer declares, beside its
registration, one constraint per keyword-only hyperparameter, and every way a value reaches a scorer (``--scorers``
on any command, a plan, the Python API) is checked against it before any model loads. A constraint parses the text
a user wrote (``"0.5"``, ``"yes"``) into a value of its type and says, in words, what it allows. The type is the
declared one, never ``type(default)``: ``bool("false")`` is True, so a boolean is parsed by its own rule.

>>> Interval(float, 0, 1, closed="right").describe()
'a float in (0, 1]'
>>> Interval(float, 0, 1, closed="right").problem(2.0)
'is out of range'
>>> Boolean().parse("no")
False
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


class Constraint(Protocol):
    """A hyperparameter's type and allowed values. ``kind`` is the Python type its values have."""

    @property
    def kind(self) -> type:
        """The Python type of the values (read-only: the constraints are frozen dataclasses)."""
        ...

    def parse(self, text: str) -> Any:
        """The value ``text`` (as written on a command line or in a spec) stands for; raises ``ValueError`` with
        a phrase such as ``is not an integer`` when it stands for no value of this type."""
        ...

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed, as a phrase to follow it (``is out of range``); None when it is allowed."""
        ...

    def describe(self) -> str:
        """What is allowed, in words, e.g. ``a float in (0, 1]``."""
        ...


def _number_name(kind: type) -> str:
    return "an integer" if kind is int else "a float"


def _is_number(value: Any, kind: type) -> bool:
    """Whether ``value`` is a number of ``kind`` (an int counts as a float; a bool counts as neither)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind is int else isinstance(value, (int, float))


def _parse_number(kind: type, text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"is not {_number_name(kind)}") from None


def _format(number: float) -> str:
    return "inf" if number == math.inf else f"{number:g}"


@dataclass(frozen=True)
class Interval:
    """A number of type ``kind`` (int or float) between ``low`` and ``high`` (None: unbounded on that side);
    ``closed`` says which ends are allowed. NaN is never in an interval."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: Literal["both", "left", "right", "neither"] = "both"

    def __post_init__(self) -> None:
        if self.kind not in (int, float):
            raise TypeError(f"Interval holds int or float values, not {self.kind.__name__}")

    def parse(self, text: str) -> Any:
        return _parse_number(self.kind, text)

    def problem(self, value: Any) -> str | None:
        if not _is_number(value, self.kind):
            return f"is not {_number_name(self.kind)}"
        if math.isnan(value):
            return "is not a number"
        if self.low is not None and (value < self.low or (value == self.low and self.closed in ("right", "neither"))):
            return "is out of range"
        if self.high is not None and (value > self.high or (value == self.high and self.closed in ("left", "neither"))):
            return "is out of range"
        return None

    def describe(self) -> str:
        name = _number_name(self.kind)
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is None and self.high is None:
            return name
        if self.high is None:
            return f"{name} {'>=' if left else '>'} {_format(self.low)}"  # type: ignore[arg-type]
        if self.low is None:
            return f"{name} {'<=' if right else '<'} {_format(self.high)}"
        return f"{name} in {'[' if left else '('}{_format(self.low)}, {_format(self.high)}{']' if right else ')'}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values of type ``kind`` (str, int or float), e.g. a convention's name or a norm."""

    kind: type
    values: Sequence[Any]

    def parse(self, text: str) -> Any:
        if self.kind is str:
            return text
        return _parse_number(self.kind, text)

    def problem(self, value: Any) -> str | None:
        if self.kind is str and not isinstance(value, str):
            return "is not a text"
        if self.kind is not str and not _is_number(value, self.kind):
            return f"is not {_number_name(self.kind)}"
        return None if value in self.values else "is not allowed"

    def describe(self) -> str:
        shown = [str(v) if self.kind is str else _format(v) for v in self.values]
        return f"one of {', '.join(shown)}"


@dataclass(frozen=True)
class Text:
    """Free text (a path, a corpus name, a generator); ``empty``: whether the empty string is allowed."""

    empty: bool = False
    kind: type = str

    def parse(self, text: str) -> str:
        return text

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return "is not a text"
        if not value and not self.empty:
            return "is empty"
        return None

    def describe(self) -> str:
        return "a text" if self.empty else "a non-empty text"


@dataclass(frozen=True)
class Boolean:
    """True or false, written true/false, yes/no or 1/0 (any case); anything else is refused, not read as True."""

    kind: type = bool

    def parse(self, text: str) -> bool:
        try:
            return BOOLEAN_WORDS[text.strip().lower()]
        except KeyError:
            raise ValueError("is not a boolean (write true/false, yes/no or 1/0)") from None

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else "is not a boolean"

    def describe(self) -> str:
        return "a boolean (true/false, yes/no, 1/0)"
