"""Error types the toolkit raises for problems the user can fix."""

from __future__ import annotations


class LlmMiaError(Exception):
    """Base class: a problem with the user's input or settings, with a message that says how to fix it."""


class InputError(LlmMiaError):
    """A text input (file, column, line, document) is unusable; the message names where and why."""


class ModelNotFoundError(LlmMiaError):
    """A model could not be resolved offline; the message says what was looked for and how to provide it."""


class UnknownNameError(LlmMiaError, KeyError):
    """An unknown registered name (scorer, model alias, ...); the message lists close matches and all names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
