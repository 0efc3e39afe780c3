"""What the command line does when a command fails: one line on the console, the whole story in a log file.

- A problem with the input or settings (an :class:`~llm_mia.errors.LlmMiaError`, whose message already names
  the value and the fix): that line, exit status 2.
- A condition of the machine rather than of llm-mia (a full or read-only disk, a file that cannot be read,
  memory that ran out): one line naming the file and what to try, exit status 2, the traceback in the log.
- Anything else is a bug in llm-mia: one line that says so and where, exit status 70 (``EX_SOFTWARE`` of
  ``sysexits.h``), and the log to attach to the report. An :class:`~llm_mia.errors.InternalError` (an invariant of
  llm-mia's own code that does not hold) is reported so, with its message in place of a type name.

The log (``<cache>/logs/llm-mia-COMMAND-TIME-PID.log``, or the system's temporary directory when the cache
cannot be written) holds the command line, versions, the log records of the run, including urllib3's, which
are kept off the console, and the traceback. It is written only when a command fails. ``--debug`` prints the
traceback on the console too.
"""

from __future__ import annotations

import collections
import logging
import os
import platform
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from llm_mia.errors import InternalError, LlmMiaError
from llm_mia.io.identity import cache_dir, package_version
from llm_mia.io.outputs import database_not_writable, is_destination_error, not_writable

USER_ERROR = 2  # bad input, settings or environment: the message says what to change
INTERNAL_ERROR = 70  # a bug in llm-mia (sysexits.h's EX_SOFTWARE)
INTERRUPTED = 130  # the shell's code for a process ended by Ctrl-C

# Loggers whose records go to the log file only: urllib3 reports every retry and dropped connection as a
# warning with its raw exception, which says nothing the one-line error does not say better.
HIDDEN_LOGGERS = ("urllib3",)


def log_directory() -> Path:
    """Where failure logs go: ``<cache>/logs`` (see :func:`llm_mia.io.identity.cache_dir`)."""
    return cache_dir() / "logs"


class _Buffer(logging.Handler):
    """The last ``capacity`` formatted records, in memory until a failure asks for them."""

    def __init__(self, capacity: int = 5000) -> None:
        super().__init__(logging.DEBUG)
        self.lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self.hidden = 0  # records kept off the console
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted must not end the run
            self.handleError(record)


class RunLog:
    """For one command: collects its log records (urllib3's off the console) and writes them, with the
    traceback, to a log file when the command fails. A context manager; restores every logger it changed."""

    def __init__(self, command: str, argv: Sequence[str]) -> None:
        self.command = command
        self.argv = list(argv)
        self.started = time.strftime("%Y%m%d-%H%M%S")
        self._buffer = _Buffer()
        self._hidden = _Buffer()
        self._saved: list[tuple[logging.Logger, bool, int]] = []

    def __enter__(self) -> RunLog:
        logging.getLogger().addHandler(self._buffer)
        for name in HIDDEN_LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.propagate, logger.level))
            logger.addHandler(self._hidden)
            logger.propagate = False
            logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self._buffer)
        for logger, propagate, level in self._saved:
            logger.removeHandler(self._hidden)
            logger.propagate = propagate
            logger.setLevel(level)
        self._saved.clear()

    @property
    def has_hidden_records(self) -> bool:
        """Whether records were kept off the console (then the log says more than the error line)."""
        return bool(self._hidden.lines)

    def write(self, error: BaseException | None) -> Path | None:
        """Write the log file; returns its path, or None when no directory at all could take it."""
        lines = [
            f"llm-mia {self.command} failed at {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
            f"command: llm-mia {' '.join(self.argv)}",
            f"llm-mia {package_version('llm-mia')}, Python {platform.python_version()}, {platform.platform()}",
            "",
            "log records (the console's, then those kept off it):",
            *self._buffer.lines,
            *self._hidden.lines,
            "",
        ]
        if error is not None:
            lines += ["traceback:", *traceback.format_exception(error)]
        text = "\n".join(line.rstrip("\n") for line in lines) + "\n"
        name = f"llm-mia-{self.command}-{self.started}-{os.getpid()}.log"
        for directory in (log_directory(), Path(tempfile.gettempdir())):
            path = directory / name
            try:
                directory.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as stream:
                    stream.write(text)
                return path
            except OSError:
                continue
        return None


def describe_failure(error: BaseException) -> tuple[str, bool]:
    """The one line for an error that is not an ``LlmMiaError``, and whether it is the user's to fix (a
    condition of the machine) rather than a bug in llm-mia."""
    if isinstance(error, OSError) and error.errno is not None:
        where = error.filename or "path not known"
        if is_destination_error(error):
            return str(not_writable(error, where, what="a file", fix="choose another location")), True
        return (
            f"{error.strerror or error} ({where}); check that the path exists and can be read and written by you",
            True,
        )
    if isinstance(error, sqlite3.OperationalError):  # a database of llm-mia's that is not one of the caches
        unwritable = database_not_writable(
            error, "a database under the cache", what="a database", fix="set LLM_MIA_CACHE to a directory elsewhere"
        )
        if unwritable is not None:
            return str(unwritable), True
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return (
            "out of memory; try a smaller --batch-size (or --batch-size auto), a shorter --window, --dtype "
            "bfloat16, or --device-map auto to spread the model over devices",
            True,
        )
    message = str(error).splitlines()[0] if str(error) else ""
    if isinstance(error, InternalError):  # its message names the invariant: the type name would add nothing
        return f"internal error: {message}" + _where(error), False
    return f"internal error: {type(error).__name__}" + (f": {message}" if message else "") + _where(error), False


def _where(error: BaseException) -> str:
    """`` (at llm_mia/x.py:12)``: the innermost frame in llm-mia's own code, else the innermost frame."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    ours = [frame for frame in frames if f"{os.sep}llm_mia{os.sep}" in frame.filename]
    frame = (ours or frames)[-1]
    filename = frame.filename
    if f"{os.sep}llm_mia{os.sep}" in filename:
        filename = "llm_mia" + filename.rsplit(f"{os.sep}llm_mia", 1)[1]
    return f" (at {filename}:{frame.lineno})"


def fail(error: Exception, *, command: str, run_log: RunLog, debug: bool) -> int:
    """Print the one line for ``error`` (with ``debug`` the traceback too), write the log where it says more than
    that line, and return the exit status."""
    if isinstance(error, LlmMiaError):  # the message is the whole story, unless records were kept off the console
        message, user_error = str(error), True
        log = run_log.write(error) if debug or run_log.has_hidden_records else None
    else:
        (message, user_error), log = describe_failure(error), run_log.write(error)
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    if user_error:
        details = f" (details: {log})" if log is not None else ""
        print(f"llm-mia {command}: error: {message}{details}", file=sys.stderr)
        return USER_ERROR
    where = f"the log at {log}" if log is not None else "the traceback (--debug prints it)"
    print(f"llm-mia {command}: {message}. This is a bug; please report it with {where}", file=sys.stderr)
    return INTERNAL_ERROR
