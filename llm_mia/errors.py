"""Error types the toolkit raises for problems the user can fix, the one for its own bugs, and the one "unknown
name" message.

Every input or settings problem is an :class:`LlmMiaError`, which is a ``ValueError`` (scikit-learn's
convention: a bad value passed in), so callers may catch either; the command line reports it in one line with
exit status 2. Using a fitted object before ``fit`` raises :class:`NotFittedError`, which is also an
``AttributeError`` (as scikit-learn's is). An invariant of llm-mia's own code that does not hold is an
:class:`InternalError`: not an ``LlmMiaError``, so code that handles bad input never catches a bug as one, and the
command line reports it as a bug (exit status 70, with a log to attach to a report).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LlmMiaError(ValueError):
    """Base class: a problem with the user's input or settings, with a message that says how to fix it."""


class InputError(LlmMiaError):
    """A text input (file, column, line, document) is unusable; the message names where and why."""


class ModelNotFoundError(LlmMiaError):
    """A model could not be resolved offline; the message says what was looked for and how to provide it."""


class OutputError(LlmMiaError):
    """A destination (output file or directory, the stats cache, a log) cannot be written: read-only, full, or
    not permitted; the message names the path, the reason in words and the fix."""


class ModelLoadError(ModelNotFoundError):
    """A model was found but cannot be loaded (a broken config, missing weights, a file that is not GGUF); the
    message names the model, what is wrong with it and what to pass instead."""


class UnknownNameError(InputError, KeyError):
    """An unknown registered name (scorer, model alias, ...); the message lists close matches and all names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ParameterError(InputError):
    """A hyperparameter's value is not allowed (wrong type, out of range, not one of the options); the message
    names the component, the parameter, the value given and what it allows."""


class NotFittedError(LlmMiaError, AttributeError):
    """A calibrator, attack or test was used before ``fit``; the message names the call that is missing."""


class InternalError(RuntimeError):
    """An invariant of llm-mia's own code does not hold: a bug in llm-mia (or in code calling its internals), never
    a problem with the user's input. The message says which invariant; the command line exits with status 70."""


def unknown_name(kind: str, name: str, available: Iterable[str], *, hint: str = "") -> UnknownNameError:
    """The error for an unknown ``name`` of some ``kind``: close matches first, then every valid name.

    >>> str(unknown_name("scorer", "los", ["loss", "zlib"]))
    "unknown scorer 'los'; did you mean loss? available: loss, zlib"
    """
    names = list(available)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    guess = f"; did you mean {', '.join(close)}?" if close else ";"
    return UnknownNameError(f"unknown {kind} {name!r}{guess} available: {', '.join(names)}{hint}")
