"""Canary tests as evidence: a plan that fixes the secret file and the scorer, a bundle, and its checks.

``llm-mia canary plan`` writes a plan (the same canonical, hashed ``plan.json`` as a dataset-level plan, with
``"kind": "canary"``) that fixes, before any score is seen: the question and the analyst, the secret file's
SHA-256 (the commitment published at planting time, checked now against the file), its number of canaries and
siblings, the target model's files with their SHA-256, the one scorer, alpha, and package versions. The secret
file itself stays out of the plan: the plan can be shown to the other side before the test without revealing
the canaries' siblings.

``llm-mia evidence run`` on such a plan checks the secret file and the model's files against the plan, runs the
canary test (``llm_mia.workflows.canary``) with every model call in the hash-chained query log, and writes:
plan.json (+ .sha256), results.json (every number, bound to the plan's hash), canaries.jsonl (per canary: rank,
p-value, exposure, score), query-log.jsonl, environment.json, run.json, report.html / report.pdf and
MANIFEST.sha256. ``llm-mia verify`` checks it like any bundle and, with the secret file and the model at hand,
re-runs the test and compares every rank.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.evidence.bundle import BundleContent, EvidenceBundle, RunStart, check_models, write_bundle
from llm_mia.evidence.plan import (
    PLAN_FORMAT,
    PLAN_VERSION,
    Plan,
    api_record,
    model_inventory,
    remote_inventory,
)
from llm_mia.io.identity import source_commit, versions

KIND = "canary"
PRIMARY_OUTCOME = (
    "the combined p-value over all canaries of the secret file (Fisher's method over the exact per-canary rank "
    "p-values) at the planned alpha, with the planned scorer (llm-mia canary test); per-canary p-values are "
    "reported beside it"
)


def is_canary_plan(plan: Plan) -> bool:
    return plan.data.get("kind") == KIND


def build_canary_plan(secret: str | Path, settings: Any, *, question: str, analyst: str) -> Plan:
    """Fix a canary test before any score is seen (module docstring). ``settings``: a ``CanaryTestSettings``
    whose ``commitment`` (the published SHA-256, or its JSON file) is required: a plan fixes a committed file.
    Refuses an empty question or analyst, a secret file that does not match its commitment, and a scorer that
    is not registered. Hashes the model's files; loads no weights."""
    from llm_mia.backends.loading import capabilities_of
    from llm_mia.canaries.make import read_secret, sibling_warning

    if not question.strip():
        raise LlmMiaError("the plan needs the question in words: --question 'Was model M trained on my canaries?'")
    if not analyst.strip():
        raise LlmMiaError("the plan needs the analyst's name: --analyst 'Name, affiliation'")
    if settings.commitment is None:
        raise LlmMiaError(
            "the plan needs --commitment: the SHA-256 published (or timestamped) when the canaries were planted, or "
            "the commitment JSON written by `llm-mia canary make`; without it nothing shows the secret file came first"
        )
    secret = Path(secret).resolve()
    record = read_secret(secret, settings.commitment)
    warning = sibling_warning(record["settings"]["siblings"])
    if warning:
        raise LlmMiaError(f"{secret}: {warning}; a plan for such a file could never reach its alpha")
    models = settings.models
    spec = models.specs()["target"]
    target = model_inventory(spec) if capabilities_of(spec.name).files else remote_inventory(spec, models.api)
    data = {
        "format": PLAN_FORMAT,
        "version": PLAN_VERSION,
        "kind": KIND,
        "question": question.strip(),
        "analyst": analyst.strip(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "primary_outcome": PRIMARY_OUTCOME,
        "models": {"target": target},
        "secret": {
            "path": str(secret),
            "sha256": record["sha256"],
            "canaries": len(record["canaries"]),
            "siblings_per_canary": record["settings"]["siblings"],
            "generator": record["settings"]["generator"],
        },
        "settings": {
            "model": {"dtype": models.dtype, "device": models.device, "trust_remote_code": models.trust_remote_code},
            "api": api_record(models.api),
            "scorer": settings.scorer,
            "alpha": settings.alpha,
            "batch_size": settings.batch_size,
            "test": "exact rank test per canary (ties against the canary), Fisher's combination over canaries",
        },
        "llm_mia_commit": source_commit(),
        "versions": versions(),
    }
    return Plan(data)


def planned_test_settings(plan: Plan, *, cache: Any = True, model: str | None = None) -> Any:
    """The ``CanaryTestSettings`` a canary plan fixes (the commitment is the planned SHA-256 of the secret)."""
    from llm_mia.backends.loading import ModelSettings
    from llm_mia.backends.remote.client import ApiSettings
    from llm_mia.workflows.canary import CanaryTestSettings

    planned = plan.data["settings"]
    target = plan.data["models"]["target"]
    api = planned.get("api")
    return CanaryTestSettings(
        models=ModelSettings(
            model=model or target["name"],
            revision=target["revision"],
            dtype=planned["model"]["dtype"],
            device=planned["model"]["device"],
            trust_remote_code=planned["model"]["trust_remote_code"],
            api=None if api is None else ApiSettings(**api),
        ),
        scorer=planned["scorer"],
        alpha=planned["alpha"],
        commitment=plan.data["secret"]["sha256"],
        batch_size=planned["batch_size"],
        cache=cache,
    )


def secret_path(plan: Plan, given: str | Path | None = None) -> Path:
    """Where the planned secret file is here: its planned path, or ``given`` (checked by hash either way)."""
    path = Path(given) if given is not None else Path(plan.data["secret"]["path"])
    if not path.is_file():
        raise InputError(
            f"{path}: the planned secret file is not here; give its location with --secret (it is checked against "
            f"the planned SHA-256 {plan.data['secret']['sha256']})"
        )
    return path


def _results(plan: Plan, outcome: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "secret_sha256",
        "scorer",
        "canaries",
        "siblings_per_canary",
        "smallest_possible_p",
        "alpha",
        "detected",
        "combined_p_value",
        "assumption",
        "guarantee",
    )
    return {
        "format": "llm-mia evidence results",
        "kind": KIND,
        "plan_sha256": plan.sha256,
        "primary_outcome": plan.data["primary_outcome"],
        "verdict": "consistent" if outcome["combined_p_value"] <= outcome["alpha"] else "not distinguishable",
        "verdict_sentence": outcome["verdict"],
        **{key: outcome[key] for key in keep},
        "models": {"target": {k: v for k, v in plan.data["models"]["target"].items() if k != "files"}},
    }


def run_canary_evidence(
    plan: Plan,
    plan_path: Path,
    output: Path,
    *,
    start: RunStart,
    cache: Any = True,
    model: str | None = None,
    secret: str | Path | None = None,
    pdf: bool = True,
) -> EvidenceBundle:
    """Carry out a canary plan and write its bundle (module docstring); the caller has checked ``output``.
    ``start``: when the run began."""
    from llm_mia.canaries.make import read_secret
    from llm_mia.evidence.report_canary import render_canary_report
    from llm_mia.io.score_files import write_rows
    from llm_mia.workflows.canary import run_canary_test

    settings = planned_test_settings(plan, cache=cache, model=model)
    path = secret_path(plan, secret)
    read_secret(path, settings.commitment)  # refuses a changed secret file before any model is touched
    check_models(plan, settings.models)

    def analysis(staging: Path, observer: Any) -> BundleContent:
        outcome = run_canary_test(path, settings, observer=observer)
        results = _results(plan, outcome)
        write_rows(outcome["per_canary"], staging / "canaries.jsonl")

        def page(digest: str) -> str:
            return render_canary_report(
                plan=plan.data,
                plan_sha256=plan.sha256,
                results=results,
                per_canary=outcome["per_canary"],
                evidence_sha256=digest,
            )

        return BundleContent(results, page)

    return write_bundle(output, plan, plan_path, analysis, start=start, pdf=pdf)
