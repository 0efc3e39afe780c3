"""Run records: what produced a result file, written beside it as ``<file>.run.json`` and read back.

One function builds every record (:func:`run_record`) and one reads it (:func:`read_run_record`), so score
files from ``llm-mia score``, ``evaluate``, ``dataset-test`` and the benchmarks carry the same fields and
``verdict`` can compare them. A record holds: the tool and its command line (``argv``), the git commit of the
llm-mia source, creation time, platform and package versions, the inputs (source, count, SHA-256 of the
exact texts), the models (directory, architecture, dtype, config hash, tokenizer fingerprint, BOS, context),
the scorers with their hyperparameters, the extraction settings, and how the run executed (processes,
threads, cache hits). Nothing secret is ever written (no environment variables, no keys).
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError
from llm_mia.io.identity import source_commit, versions
from llm_mia.io.outputs import write_json

RUN_RECORD_SUFFIX = ".run.json"
DIRECTION = "higher score = more likely a member"
# What must agree between two score files before scores of one are judged against the other.
MODEL_IDENTITY_KEYS = ("name", "revision", "config_sha256", "tokenizer_id", "dtype")
SETTING_IDENTITY_KEYS = ("window", "stride")


def run_record(
    tool: str,
    *,
    inputs: Mapping[str, Any],
    models: Mapping[str, Mapping[str, Any]] | None = None,
    scorers: Sequence[Mapping[str, Any]] | None = None,
    settings: Mapping[str, Any] | None = None,
    execution: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A run record: the given parts plus time, command line, source commit, platform and versions."""
    return {
        "tool": tool,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "llm_mia_commit": source_commit(),
        "platform": platform.platform(),
        "versions": versions(),
        "input": dict(inputs),
        "models": {role: dict(model) for role, model in (models or {}).items()},
        "scorers": [dict(s) for s in scorers or []],
        "settings": dict(settings or {}),
        "execution": dict(execution or {}),
        "direction": DIRECTION,
        **extra,
    }


def record_path(output: str | Path) -> Path:
    """Where the run record of ``output`` lives: ``<output>.run.json``."""
    return Path(f"{output}{RUN_RECORD_SUFFIX}")


def write_run_record(output: str | Path, record: Mapping[str, Any]) -> Path:
    """Write the record beside ``output`` (atomically)."""
    return write_json(record_path(output), record)


def read_run_record(output: str | Path) -> dict[str, Any] | None:
    """The run record beside ``output``, or None when there is none."""
    path = record_path(output)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: damaged run record ({error}); re-run the command that wrote {output}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a run record")
    return data


def identity_differences(
    first: Mapping[str, Any] | None,
    second: Mapping[str, Any] | None,
    column: str,
    *,
    names: tuple[str, str] = ("controls", "scores"),
) -> list[str]:
    """What differs between two runs that must agree for ``column``'s scores to be compared, in plain words.

    Compares every model's identity (name, revision, config hash, tokenizer, dtype), the scorer behind
    ``column`` with its hyperparameters, and the window and stride; ``names`` label the two runs. Empty when
    either record is missing.
    """
    one, two = names
    if not first or not second:
        return []
    differences = []
    first_models, second_models = first.get("models") or {}, second.get("models") or {}
    for role in sorted(set(first_models) | set(second_models)):
        a, b = first_models.get(role) or {}, second_models.get(role) or {}
        for key in MODEL_IDENTITY_KEYS:
            if a.get(key) != b.get(key):
                differences.append(f"{role} model {key}: {one} {a.get(key)!r}, {two} {b.get(key)!r}")

    def scorer(record: Mapping[str, Any]) -> Any:
        return next((s for s in record.get("scorers") or [] if s.get("column") == column), None)

    if scorer(first) != scorer(second):
        differences.append(f"scorer {column}: {one} {scorer(first)}, {two} {scorer(second)}")
    for key in SETTING_IDENTITY_KEYS:
        a, b = (first.get("settings") or {}).get(key), (second.get("settings") or {}).get(key)
        if a != b:
            differences.append(f"setting {key}: {one} {a!r}, {two} {b!r}")
    return differences
