"""``llm-mia evidence run``: carry out a plan exactly, and write a bundle that anyone can verify.

Before any score is computed, every model file, source file and passage is checked against the plan's hashes;
the first difference is refused, naming the file and both hashes. Then the dataset-level test runs as
planned, every model call going into a hash-chained query log, and the bundle is written:

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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.evidence.plan import (
    Plan,
    canonical_json,
    file_inventory,
    inputs_inventory,
    model_inventory,
    read_plan,
    remote_inventory,
)
from llm_mia.evidence.query_log import QueryLog
from llm_mia.identity import sha256_file, source_commit
from llm_mia.outputs import atomic_write, check_writable, json_ready, write_json
from llm_mia.score_files import write_rows

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
    from llm_mia.models import ModelSpec
    from llm_mia.remote.model import is_remote

    for role, spec in models.specs().items():
        planned = plan.data["models"][role]
        if is_remote(spec.name):
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


def planned_inputs(plan: Plan, settings: Any, paths: dict[str, Path]) -> Any:
    """The plan's inputs read and cut again, as at plan time (the tokenizer only; no weights are loaded)."""
    from llm_mia.workflows.dataset import cut_inputs, cutting_tokenizer

    return cut_inputs(paths["suspect"], paths["control"], settings, tokenizer=cutting_tokenizer(settings))


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


def _score_figures(rows: list[dict[str, Any]], features: list[str], directory: Path) -> list[Path]:
    """Per-passage score distributions, suspect vs control, one panel per scorer."""
    import numpy as np

    from llm_mia import plots

    sets = {}
    for name in features:
        suspect = [r[name] for r in rows if r["label"] == 1 and r["status"] == "ok" and r[name] is not None]
        control = [r[name] for r in rows if r["label"] == 0 and r["status"] == "ok" and r[name] is not None]
        sets[name] = (np.asarray(suspect, dtype=float), np.asarray(control, dtype=float))
    written = plots.plot_histograms(sets, directory / "score_distributions", labels=("suspect work", "control works"))
    return [path for path in written if path.suffix == ".png"]


def run_evidence(
    plan_path: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    cache: Any = True,
    model: str | None = None,
    reference: str | None = None,
    suspect: str | Path | None = None,
    control: str | Path | None = None,
    secret: str | Path | None = None,
    pdf: bool = True,
    progress: bool = True,
) -> EvidenceBundle:
    """Check the inputs against the plan, run the planned test and write the bundle (module docstring).

    ``cache``: the stats cache (True: the default one); ``model`` / ``reference``: where the planned models are
    on this machine when their planned names do not resolve there; ``suspect`` / ``control``: where the planned
    inputs are when they moved (every file is checked by hash either way); ``secret``: where a canary plan's
    secret file is, when moved (``llm_mia.evidence.canary`` runs such a plan); ``pdf``: print the report to PDF
    (needs Chromium); ``progress``: show the scoring's cost up front and its progress (changes no number).
    """
    from llm_mia.evidence.browser import print_pdf
    from llm_mia.evidence.canary import is_canary_plan, run_canary_evidence
    from llm_mia.evidence.report_html import render_report
    from llm_mia.workflows.dataset import plot_result, score_and_test
    from llm_mia.workflows.score import load_models

    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    output = Path(output)
    if output.exists() and not overwrite:
        raise LlmMiaError(f"{output} exists; pass --overwrite to replace the bundle, or choose another output")
    if not output.absolute().parent.exists():
        raise LlmMiaError(f"{output.absolute().parent}: the bundle's parent directory does not exist; create it first")
    # written as <output>.partial beside it and renamed at the end: its parent must take files
    check_writable(output.absolute().parent, what=f"the bundle {output}", fix="choose another --output-dir")
    plan_path = Path(plan_path)
    plan = read_plan(plan_path)
    if is_canary_plan(plan):
        return run_canary_evidence(plan, plan_path, output, cache=cache, model=model, secret=secret, pdf=pdf)
    from llm_mia.evidence.extraction import is_extraction_plan, run_extraction_evidence

    if is_extraction_plan(plan):
        return run_extraction_evidence(
            plan, plan_path, output, cache=cache, model=model, reference=reference, suspect=suspect, control=control,
            pdf=pdf,
        )  # fmt: skip
    settings = plan.settings(cache=cache, model=model, reference=reference, progress=progress)
    paths = input_paths(plan, suspect=suspect, control=control)
    check_input_files(plan, paths)
    check_models(plan, settings.scoring.models, settings.tokenizer)
    inputs = planned_inputs(plan, settings, paths)
    check_inputs(plan, inputs)
    models = load_models(settings.scoring.models)

    staging = Path(f"{output}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # a killed run's leftovers: the stats cache keeps its work
    staging.mkdir(parents=True)
    model_hashes = {role: entry["files_sha256"] for role, entry in plan.data["models"].items()}
    log = QueryLog(staging / "query-log.jsonl", anchor=plan.sha256, model_hashes=model_hashes)
    try:
        report = score_and_test(inputs, settings, models=models, observer=log.record)
    finally:
        chain = log.close()
    result = report.result
    shutil.copyfile(plan_path, staging / "plan.json")
    shutil.copyfile(Path(f"{plan_path}.sha256"), staging / "plan.json.sha256")
    results = {
        "format": "llm-mia evidence results",
        "plan_sha256": plan.sha256,
        "primary_outcome": plan.data["primary_outcome"],
        "verdict": result.verdict,
        "verdict_sentence": result.sentence(),
        "features": report.report["features"],
        "passages": report.report["passages"],
        "reference_alone": report.report.get("reference_alone"),
        "result": result.to_dict(),
        "models": {
            role: {k: v for k, v in entry.items() if k != "files"} for role, entry in plan.data["models"].items()
        },
    }
    data = canonical_json(json_ready(json.loads(json.dumps(results, default=str))))
    atomic_write(staging / "results.json", lambda stream: stream.write(data), mode="wb")
    write_rows(report.rows, staging / "scores.jsonl")
    write_rows(report.passage_rows, staging / "passages.jsonl")
    write_json(staging / "environment.json", environment())
    # the work-level design's figure only: the passage-level p-value curve is a separate look at every passage
    # count, and its smallest point, quoted alone, would read as a p-value for the work (it is not)
    figures = [plot_result(result, staging)]
    figures += _score_figures(report.rows, report.report["features"], staging)
    for extra in staging.glob("*.svg"):
        extra.unlink()  # PNG only: the report embeds them
    run = {
        "started": started_at,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "argv": list(sys.argv),
        "plan": str(plan_path),
        "query_log": chain,
        "execution": report.record.get("execution"),
        "differs_between_runs": list(RUN_SPECIFIC_FIELDS),
    }
    write_json(staging / "run.json", run)
    data_files = sorted(p.name for p in staging.iterdir() if p.is_file())
    lines = manifest_lines(staging, data_files)
    digest = evidence_hash(lines)
    captions = {
        "work_test.png": "The suspect work's statistic (red) among every labelling of the works (grey)",
        "p_value_curve.png": "Passage-level p-value against the number of passages used: no verdict of training "
        "rests on it (it treats passages as independent, which passages of one work are not), and each point is "
        "a separate look, so none of them is a p-value to quote",
        "score_distributions.png": "Per-passage scores, suspect work vs control works (higher = more like training)",
    }
    page = render_report(
        plan=plan.data,
        plan_sha256=plan.sha256,
        results=results,
        figures={captions.get(p.name, p.name): p.read_bytes() for p in figures},
        evidence_sha256=digest,
    )
    atomic_write(staging / "report.html", lambda stream: stream.write(page))
    printed = False
    if pdf:
        print_pdf(staging / "report.html", staging / "report.pdf")
        printed = True
    all_files = sorted(p.name for p in staging.iterdir() if p.is_file())
    atomic_write(staging / MANIFEST, lambda stream: stream.write("\n".join(manifest_lines(staging, all_files)) + "\n"))
    if output.exists():
        shutil.rmtree(output)
    staging.rename(output)
    return EvidenceBundle(output, result.verdict, result.sentence(), plan.sha256, digest, printed)
