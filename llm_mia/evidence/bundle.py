"""The evidence bundle: its files, its manifest and evidence hash, and the checks of a run's inputs against the plan.

``llm-mia evidence run`` (:mod:`llm_mia.workflows.evidence`) checks every model file, source file and passage
against the plan's hashes before any score is computed, refusing the first difference with the file and both
hashes (:func:`check_models`, :func:`check_input_files`, :func:`check_inputs`); then runs the test as planned,
every model call going into a hash-chained query log, and writes the bundle:

    plan.json, plan.json.sha256   the plan, byte for byte
    results.json                  every number, bound to the plan's hash (no timestamps: two runs of one plan
                                  give identical files)
    passages.jsonl, scores.jsonl  every passage (source, work, offsets, SHA-256) and its scores
    query-log.jsonl               every model call, hash-chained (``llm_mia.evidence.query_log``)
    environment.json              Python, every installed package's version, CPU / GPU, OS
    run.json                      when and how it ran (``RUN_SPECIFIC_FIELDS``: all that may differ between runs)
    *.png                         the figures
    report.html, report.pdf       the report (``llm_mia.evidence.report_html``), printed by headless Chromium
    MANIFEST.sha256               ``sha256sum -c`` lines for every other file

The bundle is assembled in ``<bundle>.partial`` and renamed into place at the end, so a killed run leaves no
bundle that looks complete; run it again and it resumes from the stats cache with the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError
from llm_mia.evidence.browser import print_pdf
from llm_mia.evidence.plan import (
    Plan,
    canonical_json,
    file_inventory,
    inputs_inventory,
    model_inventory,
    remote_inventory,
)
from llm_mia.evidence.query_log import QueryLog
from llm_mia.io.identity import sha256_file, source_commit
from llm_mia.io.outputs import atomic_write, json_ready, write_json

MANIFEST = "MANIFEST.sha256"
REPORT_FILES = ("report.html", "report.pdf")
# What may differ between two runs of one plan: when and how each ran, and the hashes that cover those fields.
# Everything else (results.json, scores.jsonl, passages.jsonl, the figures, the query log's entries) is identical.
RUN_SPECIFIC_FIELDS = (
    "run.json: started, finished, seconds, argv, execution (threads, stats-cache use), query_log.head",
    "query-log.jsonl: time, and prev (which hashes the line before, time included), on every line; in a run "
    "resumed from the stats cache, results computed before the interruption are logged as 'from cache'",
    "report.html, report.pdf: the evidence hash (it covers run.json and query-log.jsonl) and the PDF's print date",
    "MANIFEST.sha256: the lines of the files above",
)


@dataclass(frozen=True)
class RunStart:
    """When a run of a plan began: ``at``, the UTC time ``run.json`` records, and ``clock``, the
    ``time.perf_counter()`` reading its duration is measured from."""

    at: str
    clock: float

    @classmethod
    def now(cls) -> RunStart:
        return cls(datetime.now(UTC).isoformat(timespec="seconds"), time.perf_counter())


def run_facts(
    start: RunStart, plan_path: Any, chain: Any, *, execution: Any = None, with_execution: bool = False
) -> dict[str, Any]:
    """What ``run.json`` holds: when and how this run of a plan ran (every field is in ``RUN_SPECIFIC_FIELDS``).
    ``chain``: the query log's head; ``execution`` is written when ``with_execution``."""
    facts = {
        "started": start.at,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - start.clock, 1),
        "argv": list(sys.argv),
        "plan": str(plan_path),
        "query_log": chain,
    }
    if with_execution:
        facts["execution"] = execution
    facts["differs_between_runs"] = list(RUN_SPECIFIC_FIELDS)
    return facts


def _differences(planned: list[dict[str, Any]], found: list[dict[str, Any]], key: str, what: str) -> str | None:
    """The first difference between two inventories (by ``key``), in words naming both hashes."""
    planned_by, found_by = {p[key]: p for p in planned}, {f[key]: f for f in found}
    for name, entry in planned_by.items():
        other = found_by.get(name)
        if other is None:
            return f"{what} {name!r} is in the plan but missing now"
        if other["sha256"] != entry["sha256"]:
            return f"{what} {name!r} changed since the plan: planned SHA-256 {entry['sha256']}, now {other['sha256']}"
        for field in ("char_start", "char_end", "token_start", "token_end", "work"):
            if field in entry and entry[field] != other.get(field):
                then, now = entry[field], other.get(field)
                return f"{what} {name!r} changed since the plan: {field} {then!r} then, {now!r} now"
    extra = [name for name in found_by if name not in planned_by]
    if extra:
        return f"{what} {extra[0]!r} is new: it is not in the plan ({len(extra)} such)"
    return None


def check_models(plan: Plan, models: Any, tokenizer: str | None = None) -> None:
    """Every planned model file, and no other, with the planned SHA-256 (and the tokenizer's, where the plan
    names one); a model behind an API must report the planned name and serve weights with the planned
    fingerprint. ``models``: the ``ModelSettings`` to check. Refuses the first difference."""
    from llm_mia.backends.loading import capabilities_of
    from llm_mia.backends.local import ModelSpec

    for role, spec in models.specs().items():
        planned = plan.data["models"][role]
        if not capabilities_of(spec.name).files:
            found = remote_inventory(spec, models.api)
            for key, what in (
                ("model_version", "reports the model"),
                ("fingerprint", "serves weights with fingerprint"),
            ):
                if found[key] != planned[key]:
                    raise InputError(
                        f"{role} model {spec.name} at {found['base_url']} now {what} {found[key]!r}, the plan "
                        f"{planned[key]!r}: the endpoint does not serve the model planned"
                    )
            continue
        found = model_inventory(spec)
        problem = _differences(planned["files"], found["files"], "path", f"{role} model file")
        if problem:
            raise InputError(f"{problem} (in {found['directory']}); the model is not the one planned")
    if "tokenizer" in plan.data["models"]:
        if tokenizer is None:
            raise InputError("the plan names a tokenizer of its own: give it too, to check its files")
        found = model_inventory(ModelSpec(name=tokenizer))
        problem = _differences(plan.data["models"]["tokenizer"]["files"], found["files"], "path", "tokenizer file")
        if problem:
            raise InputError(f"{problem} (in {found['directory']}); the tokenizer is not the one planned")


def input_paths(plan: Plan, *, suspect: str | Path | None = None, control: str | Path | None = None) -> dict[str, Path]:
    """Where the planned inputs are on this machine: the planned paths, or ``suspect`` / ``control`` when they
    were moved (same file or directory name: a work read whole is named after it)."""
    paths = {}
    for side, given in (("suspect", suspect), ("control", control)):
        planned = Path(plan.data["inputs"][side]["path"])
        path = Path(given) if given is not None else planned
        if not path.exists():
            raise InputError(
                f"the {side} input {path} is not there; restore it, or say where it is now with --{side} PATH"
            )
        if path.resolve().name != planned.name:
            raise InputError(
                f"--{side} {path} is named {path.resolve().name!r}, the plan's {side} input {planned.name!r}: give "
                f"the same file or directory under its planned name (a work read whole is named after it)"
            )
        paths[side] = path
    return paths


def check_input_files(plan: Plan, paths: dict[str, Path]) -> None:
    """Every planned input file, and no other, with the planned SHA-256; refuses the first difference."""
    for side, path in paths.items():
        planned = plan.data["inputs"][side]
        problem = _differences(planned["files"], file_inventory(path), "path", f"{side} source file")
        if problem:
            raise InputError(f"{problem} (in {path}); the inputs are not the ones planned")


def check_inputs(plan: Plan, inputs: Any) -> None:
    """Every planned source and passage, and no other, unchanged; refuses the first difference."""
    found = inputs_inventory(inputs)
    for side in ("suspect", "control"):
        planned = plan.data["inputs"][side]
        for key, what, entries in (("name", "source", "sources"), ("id", "passage", "passages")):
            problem = _differences(planned[entries], found[side][entries], key, f"{side} {what}")
            if problem:
                raise InputError(f"{problem}; the inputs are not the ones planned (in {planned['path']})")


def environment() -> dict[str, Any]:
    """The machine and software the run used: Python, OS, CPU, GPU, every installed package."""
    import importlib.metadata
    import os

    import torch

    packages = sorted(
        {f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions() if d.metadata["Name"]}
    )
    return {
        "python": sys.version,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else [],
        "llm_mia_commit": source_commit(),
        "packages": packages,
    }


def manifest_lines(directory: Path, names: list[str]) -> list[str]:
    """``sha256sum`` lines ("<hash>  <name>") for the named files, sorted by name."""
    return [f"{sha256_file(directory / name)}  {name}" for name in sorted(names)]


def evidence_hash(lines: list[str]) -> str:
    """The SHA-256 of the data files' manifest lines: what the report prints and ``verify`` re-derives."""
    return hashlib.sha256(("\n".join(lines) + "\n").encode("utf-8")).hexdigest()


@dataclass
class EvidenceBundle:
    """A written bundle: where it is, its verdict, and the hashes that identify it."""

    directory: Path
    verdict: str
    verdict_sentence: str
    plan_sha256: str
    evidence_sha256: str
    pdf: bool


@dataclass(frozen=True)
class BundleContent:
    """What one kind of analysis contributes to its bundle, once it has run in the staging directory (where it
    wrote its own data files and figures): ``results`` (written as results.json; its ``verdict`` and
    ``verdict_sentence`` are the bundle's), ``page`` (the report's HTML, given the evidence hash), and
    ``execution`` (threads and stats-cache use), written to run.json when ``records_execution``."""

    results: dict[str, Any]
    page: Callable[[str], str]
    execution: Any = None
    records_execution: bool = False


def write_bundle(
    output: Path,
    plan: Plan,
    plan_path: Path,
    analysis: Callable[[Path, Callable[..., Any]], BundleContent],
    *,
    start: RunStart,
    pdf: bool,
) -> EvidenceBundle:
    """Run ``analysis(staging, observer)`` and assemble its bundle (module docstring), for every kind of plan.

    The bundle is built in ``<output>.partial`` (a killed run's leftovers there are removed first) and renamed
    to ``output`` at the end. ``observer`` records every model call in the hash-chained query log, anchored on
    the plan's hash. After the analysis: the plan and its hash file, results.json, environment.json and
    run.json are written, the evidence hash is taken over every data file, the report is rendered with it
    (and printed to PDF when ``pdf``), and MANIFEST.sha256 lists every file. The caller has checked ``output``.
    """
    staging = Path(f"{output}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # a killed run's leftovers: the stats cache keeps its work
    staging.mkdir(parents=True)
    model_hashes = {role: entry["files_sha256"] for role, entry in plan.data["models"].items()}
    log = QueryLog(staging / "query-log.jsonl", anchor=plan.sha256, model_hashes=model_hashes)
    try:
        content = analysis(staging, log.record)
    finally:
        chain = log.close()
    shutil.copyfile(plan_path, staging / "plan.json")
    shutil.copyfile(Path(f"{plan_path}.sha256"), staging / "plan.json.sha256")
    data = canonical_json(json_ready(json.loads(json.dumps(content.results, default=str))))
    atomic_write(staging / "results.json", lambda stream: stream.write(data), mode="wb")
    write_json(staging / "environment.json", environment())
    run = run_facts(start, plan_path, chain, execution=content.execution, with_execution=content.records_execution)
    write_json(staging / "run.json", run)
    digest = evidence_hash(manifest_lines(staging, sorted(p.name for p in staging.iterdir() if p.is_file())))
    page = content.page(digest)
    atomic_write(staging / "report.html", lambda stream: stream.write(page))
    if pdf:
        print_pdf(staging / "report.html", staging / "report.pdf")
    names = sorted(p.name for p in staging.iterdir() if p.is_file())
    atomic_write(staging / MANIFEST, lambda stream: stream.write("\n".join(manifest_lines(staging, names)) + "\n"))
    if output.exists():
        shutil.rmtree(output)
    staging.rename(output)
    results = content.results
    return EvidenceBundle(output, results["verdict"], results["verdict_sentence"], plan.sha256, digest, pdf)
