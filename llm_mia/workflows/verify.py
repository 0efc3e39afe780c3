"""``llm-mia verify BUNDLE``: check an evidence bundle independently; every check passes or names what changed.

Checks, in order: every file against ``MANIFEST.sha256`` (and no file missing from it or added to the
bundle); the plan against its recorded hash, and results.json bound to that hash; the query log's hash chain
from the plan's hash to the head recorded in run.json; the report against the evidence hash of the data files
and the verdict in results.json; every passage against the plan. When the planned model files are on this
machine: they still match the plan, and ``rescore`` passages drawn at random (seeded) score as in
``scores.jsonl`` within ``TOLERANCE``; with ``full``, the whole test is run again and its p-value and verdict
compared. A check that cannot run (the model is not here) is reported as not run, never as passed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError, LlmMiaError, ModelNotFoundError
from llm_mia.evidence.bundle import (
    MANIFEST,
    REPORT_FILES,
    check_input_files,
    check_models,
    evidence_hash,
    input_paths,
    manifest_lines,
)
from llm_mia.evidence.checks import FAIL, NOT_RUN, PASS, Check, passages_check, read_jsonl
from llm_mia.evidence.plan import Plan, read_plan
from llm_mia.evidence.query_log import walk
from llm_mia.evidence.report_page import shows_text
from llm_mia.io.identity import sha256_file, sha256_text
from llm_mia.workflows.extraction_evidence import extraction_checks
from llm_mia.workflows.plan import planned_inputs, planned_settings

# Re-scored passages run in other batches than the originals: equal up to float rounding (the engine's batch
# independence is tested to 1e-4; observed differences are below 1e-6).
TOLERANCE = 1e-4


@dataclass
class Verification:
    """Every check made on a bundle; ``ok`` when none failed."""

    bundle: Path
    checks: list[Check]

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(check.outcome != FAIL for check in self.checks)

    @property
    def complete(self) -> bool:
        """Every check ran (none reported as not run)."""
        return all(check.outcome != NOT_RUN for check in self.checks)

    @property
    def record(self) -> dict[str, Any]:
        """The bundle and every check's outcome."""
        return {
            "bundle": str(self.bundle),
            "checks": [{"name": c.name, "outcome": c.outcome, "detail": c.detail} for c in self.checks],
        }

    @property
    def exit_status(self) -> int:
        """``llm-mia verify``'s exit status: 0 every check ran and passed, 1 one failed, 3 some could not run."""
        return 1 if not self.ok else 3 if not self.complete else 0

    def summary_lines(self) -> list[str]:
        """One line per check (pass, FAIL or not run), then the conclusion."""
        lines = [check.line() for check in self.checks]
        if not self.ok:
            return [*lines, "NOT VERIFIED: at least one check failed"]
        if not self.complete:
            return [
                *lines,
                "not fully verified: no check failed, but some could not run here (see above); give --model / "
                "--suspect / --control, or --rescore 0 to check the bundle's files alone",
            ]
        return [*lines, "verified: every check passed"]


def _manifest(bundle: Path) -> tuple[Check, dict[str, str]]:
    path = bundle / MANIFEST
    if not path.is_file():
        return Check("manifest", FAIL, f"{MANIFEST} is missing"), {}
    listed: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if not name or len(digest) != 64:
            return Check("manifest", FAIL, f"{MANIFEST}:{number} is not a sha256sum line"), {}
        listed[name] = digest
    present = {p.name for p in bundle.iterdir() if p.is_file() and p.name != MANIFEST}
    for name in sorted(set(listed) | present):
        if name not in listed:
            return Check("manifest", FAIL, f"{name} is in the bundle but not in {MANIFEST}: a file was added"), listed
        if name not in present:
            return Check("manifest", FAIL, f"{name} is listed in {MANIFEST} but missing"), listed
        actual = sha256_file(bundle / name)
        if actual != listed[name]:
            return (
                Check(
                    "manifest", FAIL, f"{name} changed: {MANIFEST} records {listed[name]}, the file hashes to {actual}"
                ),
                listed,
            )
    return Check("manifest", PASS, f"all {len(listed)} files match {MANIFEST}"), listed


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def verify_bundle(
    bundle: str | Path,
    *,
    rescore: int = 20,
    full: bool = False,
    model: str | None = None,
    inputs: dict[str, str | Path] | None = None,
    seed: int = 0,
    secret: str | Path | None = None,
) -> Verification:
    """Run every check (module docstring) and return them all; never raises for a failed check.

    ``model``: where the planned target model is on this machine; ``inputs``: where the planned ``suspect`` /
    ``control`` inputs are, when not at their planned paths; ``secret``: where a canary plan's secret file is,
    when not at its planned path (all checked by hash). A canary bundle (``llm_mia.workflows.canary_evidence``) gets the
    same file, plan, query-log and report checks, then its own (canaries, model files, secret file, re-run).
    """
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise LlmMiaError(f"{bundle}: no such bundle directory")
    checks: list[Check] = []
    manifest_check, _ = _manifest(bundle)
    checks.append(manifest_check)

    try:
        plan = read_plan(bundle / "plan.json")
        checks.append(Check("plan", PASS, f"plan.json matches its recorded SHA-256 {plan.sha256}"))
    except LlmMiaError as error:
        checks.append(Check("plan", FAIL, str(error)))
        return Verification(bundle, checks)
    results = _read_json(bundle / "results.json")
    run = _read_json(bundle / "run.json") or {}
    if results is None:
        checks.append(Check("results", FAIL, "results.json is missing or not JSON"))
        return Verification(bundle, checks)
    if results.get("plan_sha256") != plan.sha256:
        checks.append(
            Check("results", FAIL, f"results.json names plan {results.get('plan_sha256')}, the plan is {plan.sha256}")
        )
    else:
        checks.append(Check("results", PASS, "results.json is bound to the plan's SHA-256"))

    lines, head, problem = walk(bundle / "query-log.jsonl", anchor=plan.sha256)
    recorded = run.get("query_log") or {}
    if problem:
        checks.append(Check("query log", FAIL, f"query-log.jsonl: {problem}"))
    elif (lines, head) != (recorded.get("lines"), recorded.get("head")):
        checks.append(
            Check(
                "query log",
                FAIL,
                f"query-log.jsonl has {lines} lines ending in {head[:16]}..., run.json records "
                f"{recorded.get('lines')} ending in {str(recorded.get('head'))[:16]}...: lines were removed or added",
            )
        )
    else:
        checks.append(Check("query log", PASS, f"{lines} model calls, hash chain intact from the plan's hash"))

    data_files = [p.name for p in bundle.iterdir() if p.is_file() and p.name not in (MANIFEST, *REPORT_FILES)]
    digest = evidence_hash(manifest_lines(bundle, data_files))
    report = (bundle / "report.html").read_text(encoding="utf-8") if (bundle / "report.html").is_file() else ""
    if digest not in report:
        checks.append(Check("report", FAIL, f"report.html does not show the evidence hash {digest} of the data files"))
    elif not shows_text(report, results.get("verdict_sentence", "")):
        checks.append(Check("report", FAIL, "report.html does not state the verdict in results.json"))
    else:
        checks.append(Check("report", PASS, f"report.html shows the evidence hash {digest[:16]}... and the verdict"))

    if plan.data.get("kind") == "canary":
        return Verification(
            bundle, checks + _canary_checks(bundle, plan, results, full=full, model=model, secret=secret)
        )
    if plan.data.get("kind") == "extraction":
        extraction = extraction_checks(
            bundle, plan, results, rescore=rescore, full=full, model=model, inputs=inputs or {}, seed=seed
        )
        return Verification(bundle, checks + extraction)
    checks.append(passages_check(bundle, plan))
    checks += _model_checks(
        bundle, plan, results, rescore=rescore, full=full, model=model, inputs=inputs or {}, seed=seed
    )
    return Verification(bundle, checks)


def _model_checks(
    bundle: Path,
    plan: Any,
    results: dict[str, Any],
    *,
    rescore: int,
    full: bool,
    model: str | None,
    inputs: dict[str, str | Path],
    seed: int,
) -> list[Check]:
    from llm_mia.backends.remote.client import RemoteError

    settings = planned_settings(plan, cache=False, model=model)
    try:
        check_models(plan, settings.scoring.models, settings.tokenizer)
    except ModelNotFoundError as error:
        return [Check("model files", NOT_RUN, f"the planned model is not on this machine ({error})")]
    except RemoteError as error:
        return [Check("model files", NOT_RUN, f"the planned endpoint cannot be asked ({error})")]
    except LlmMiaError as error:
        return [Check("model files", FAIL, str(error))]
    remote = "base_url" in plan.data["models"]["target"]
    checks = [
        Check(
            "model files",
            PASS,
            "the endpoint reports the planned model and serves weights with the planned fingerprint; the tokenizer's "
            "files have their planned SHA-256"
            if remote
            else "every planned model file is here with its planned SHA-256",
        )
    ]
    try:
        paths = input_paths(plan, **inputs)
    except LlmMiaError as error:
        return [*checks, Check("input files", NOT_RUN, f"the planned inputs are not on this machine ({error})")]
    try:
        check_input_files(plan, paths)
    except LlmMiaError as error:
        return [*checks, Check("input files", FAIL, str(error))]
    checks.append(Check("input files", PASS, "every planned input file is here with its planned SHA-256"))
    if rescore <= 0 and not full:
        return checks
    from llm_mia.backends.loading import load_models
    from llm_mia.workflows.dataset import score_and_test
    from llm_mia.workflows.score import score_documents

    scored, problem = read_jsonl(bundle / "scores.jsonl")
    if problem:
        return [*checks, Check("rescore", FAIL, problem)]
    rows = {row.get("id"): row for row in scored}
    planned = planned_inputs(plan, settings, paths)
    models = load_models(settings.scoring.models)
    if rescore > 0:
        documents = [p.to_document(label=1, prefix="suspect:") for p in planned.suspect_passages]
        documents += [p.to_document(label=0, prefix="control:") for p in planned.control_passages]
        sample = sorted(random.Random(seed).sample(range(len(documents)), min(rescore, len(documents))))
        chosen = [documents[i] for i in sample]
        again = score_documents(chosen, settings.scoring, models=models, tool="llm-mia verify").rows
        columns = [call.column for call in settings.scoring.calls]
        worst, where = 0.0, ""
        for row in again:
            recorded = rows.get(row["id"])
            if recorded is None or sha256_text(next(d.text for d in chosen if d.id == row["id"])) != recorded.get(
                "text_sha256"
            ):
                return [*checks, Check("rescore", FAIL, f"passage {row['id']} is not in scores.jsonl as planned")]
            for column in columns:
                a, b = row[column], recorded.get(column)
                if b is not None and not isinstance(b, (int, float)):
                    return [*checks, Check("rescore", FAIL, f"scores.jsonl: {row['id']} {column} is {b!r}")]
                if (a is None) != (b is None):
                    return [*checks, Check("rescore", FAIL, f"{row['id']} {column}: now {a}, recorded {b}")]
                if a is not None and abs(a - b) > worst:
                    worst, where = abs(a - b), f"{row['id']} {column}"
        outcome = PASS if worst <= TOLERANCE else FAIL
        checks.append(
            Check(
                "rescore",
                outcome,
                f"{len(again)} passages drawn at random re-scored: largest difference {worst:.2g}"
                + (f" ({where})" if where else "")
                + f", tolerance {TOLERANCE:g}",
            )
        )
    if full:
        report = score_and_test(planned, settings, models=models)
        planned_p = results["result"]["p_value"]
        same = report.result.verdict == results["verdict"] and abs(report.result.p_value - planned_p) <= 1e-9
        checks.append(
            Check(
                "full re-run",
                PASS if same else FAIL,
                f"verdict {report.result.verdict!r}, p = {report.result.p_value:.6g} (bundle: {results['verdict']!r}, "
                f"p = {planned_p:.6g})",
            )
        )
    return checks


def _canary_checks(
    bundle: Path, plan: Plan, results: dict[str, Any], *, full: bool, model: str | None, secret: str | Path | None
) -> list[Any]:
    """The checks ``llm-mia verify`` adds for a canary bundle: canaries.jsonl agrees with results.json; with
    the model here, its files match the plan; with the secret file here, it matches the plan; with ``full``,
    the whole test is run again and every rank and the combined p-value compared."""
    from llm_mia.backends.remote.client import RemoteError
    from llm_mia.canaries.make import read_secret
    from llm_mia.canaries.ranks import fisher_combined
    from llm_mia.workflows.canary_evidence import planned_test_settings, secret_path

    rows, problem = read_jsonl(bundle / "canaries.jsonl")
    if problem:
        return [Check("canaries", FAIL, problem)]
    combined = fisher_combined([row["p_value"] for row in rows]) if rows else None
    if len(rows) != plan.data["secret"]["canaries"] or combined != results.get("combined_p_value"):
        checks = [
            Check(
                "canaries",
                FAIL,
                f"canaries.jsonl ({len(rows)} rows) does not give results.json's combined "
                f"p-value {results.get('combined_p_value')}",
            )
        ]
    else:
        checks = [Check("canaries", PASS, f"{len(rows)} canaries; their p-values give the combined p {combined:.2g}")]
    settings = planned_test_settings(plan, cache=False, model=model)
    try:
        check_models(plan, settings.models)
    except ModelNotFoundError as error:
        return [*checks, Check("model files", NOT_RUN, f"the planned model is not on this machine ({error})")]
    except RemoteError as error:
        return [*checks, Check("model files", NOT_RUN, f"the planned endpoint cannot be asked ({error})")]
    except LlmMiaError as error:
        return [*checks, Check("model files", FAIL, str(error))]
    checks.append(Check("model files", PASS, "the planned model is here with its planned SHA-256"))
    try:
        path = secret_path(plan, secret)
    except InputError as error:
        return [*checks, Check("secret file", NOT_RUN, str(error))]
    try:
        read_secret(path, plan.data["secret"]["sha256"])
    except InputError as error:
        return [*checks, Check("secret file", FAIL, str(error))]
    checks.append(Check("secret file", PASS, f"{path} has the planned SHA-256"))
    if full:
        from llm_mia.workflows.canary import run_canary_test

        again = run_canary_test(path, settings)
        ranks = [r["rank"] for r in again["per_canary"]] == [r["rank"] for r in rows]
        same = ranks and again["combined_p_value"] == results["combined_p_value"]
        checks.append(
            Check(
                "full re-run",
                PASS if same else FAIL,
                f"ranks {'identical' if ranks else 'DIFFER'}; combined p = {again['combined_p_value']:.6g} "
                f"(bundle: {results['combined_p_value']:.6g})",
            )
        )
    return checks
