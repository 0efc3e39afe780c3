"""Extraction tests as evidence: a plan whose primary outcome is the extraction analysis, its bundle and checks.

``llm-mia plan --analysis extraction`` writes the same canonical, hashed ``plan.json`` as a dataset-level plan,
with ``"kind": "extraction"``: the question, the analyst, the control rationale, the target and reference
models' files (or the endpoint's fingerprint), every source and passage (cut now, at k + L tokens, with the
target's tokenizer), k, L, m, the formulaic threshold, the decoding, the test's settings and seed, and the
primary outcome (``PRIMARY_OUTCOME``). It refuses what ``llm-mia plan`` refuses (too few control works for the
test to reach alpha, passages shared by the two sides, text copied across them).

``llm-mia evidence run`` checks every file and passage against the plan before any model is loaded, runs
``llm_mia.workflows.extraction.probe_and_test`` with every model call and request in the hash-chained query log,
and writes: plan.json (+ .sha256), results.json (every number, bound to the plan's hash), extraction.jsonl (per
passage: prefix, true and generated continuation, generated tokens, every number), passages.jsonl,
query-log.jsonl, environment.json, run.json, match_lengths.png, work_test.png, report.html / report.pdf (the
matches highlighted beside the original) and MANIFEST.sha256. ``llm-mia verify`` checks it like any bundle and,
with the model here, continues ``--rescore N`` passages again and compares their generated tokens (greedy
decoding is deterministic: they must be equal, token for token), or with ``--full`` reruns the whole test.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_mia.backends.loading import capabilities_of
from llm_mia.backends.local import ModelSpec
from llm_mia.backends.remote.client import RemoteError
from llm_mia.errors import LlmMiaError, ModelNotFoundError
from llm_mia.evidence.bundle import (
    BundleContent,
    EvidenceBundle,
    RunStart,
    check_input_files,
    check_inputs,
    check_models,
    input_paths,
    write_bundle,
)
from llm_mia.evidence.checks import FAIL, NOT_RUN, PASS, Check, passages_check, read_jsonl
from llm_mia.evidence.plan import (
    MIN_RATIONALE_WORDS,
    PLAN_FORMAT,
    PLAN_VERSION,
    Plan,
    api_record,
    inputs_inventory,
    model_inventory,
    remote_inventory,
)
from llm_mia.evidence.report_extraction import render_extraction_report
from llm_mia.io.identity import source_commit, versions
from llm_mia.io.score_files import write_rows
from llm_mia.methods.extraction import ProbeSettings
from llm_mia.stats.dataset_inference import work_counts
from llm_mia.workflows.dataset import refuse_remote_target
from llm_mia.workflows.dataset_inputs import cut_inputs
from llm_mia.workflows.dataset_report import plot_work_test
from llm_mia.workflows.extraction import (
    ExtractionTestSettings,
    build_probes,
    continue_probes,
    cutting_tokenizer,
    load_extraction_models,
    plot_match_lengths,
    probe_and_test,
)
from llm_mia.workflows.plan import check_design, planned_model_settings

KIND = "extraction"
PRIMARY_OUTCOME = (
    "the work-level verdict of the extraction test: greedy continuations of each passage's first k tokens, the "
    "per-passage match features (exact-match length, longest common run, extracted at >= m tokens) of the passages "
    "the reference model does not also continue, ranked among the control works by the work-level permutation test "
    "at the planned alpha, with its safeguards (llm-mia extract-test); the per-passage extraction evidence and the "
    "control works' false-extraction rate are reported beside it"
)


def is_extraction_plan(plan: Plan) -> bool:
    return plan.data.get("kind") == KIND


def settings_record(settings: Any) -> dict[str, Any]:
    """The extraction settings as the plan holds them (everything ``ExtractionTestSettings`` takes)."""
    models = settings.models
    return {
        **settings.to_dict(),
        "model": {"dtype": models.dtype, "device": models.device, "trust_remote_code": models.trust_remote_code},
        "api": api_record(models.api),
    }


def build_extraction_plan(
    suspect: str | Path, control: str | Path, settings: Any, *, question: str, analyst: str, control_rationale: str
) -> Plan:
    """Fix an extraction analysis before any continuation is generated (module docstring); hashes the models'
    files and cuts the passages with the target's tokenizer, loading no weights."""
    if not question.strip():
        raise LlmMiaError("the plan needs the question in words: --question 'Was model M trained on work W?'")
    if not analyst.strip():
        raise LlmMiaError("the plan needs the analyst's name: --analyst 'Name, affiliation'")
    if len(control_rationale.split()) < MIN_RATIONALE_WORDS:
        raise LlmMiaError(
            "the plan needs --control-rationale: in a sentence or more, how the control works were chosen and why "
            "the model cannot have seen them; the test means nothing without it"
        )
    refuse_remote_target(settings.models, tokenizer=settings.tokenizer)
    models = {
        role: model_inventory(spec) if capabilities_of(spec.name).files else remote_inventory(spec, settings.models.api)
        for role, spec in settings.models.specs().items()
    }
    if settings.tokenizer is not None:
        models["tokenizer"] = model_inventory(ModelSpec(name=settings.tokenizer))
    suspect, control = Path(suspect).resolve(), Path(control).resolve()
    inputs = cut_inputs(suspect, control, settings, tokenizer=cutting_tokenizer(settings), refuse_shared=True)
    check_design(inputs, settings)
    size, k, m, needed = work_counts(
        [f"suspect:{p.work}" for p in inputs.suspect_passages],
        [f"control:{p.work}" for p in inputs.control_passages],
        settings.alpha,
        selection=settings.passage_selection,
    )
    data = {
        "format": PLAN_FORMAT,
        "version": PLAN_VERSION,
        "kind": KIND,
        "question": question.strip(),
        "analyst": analyst.strip(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "control_rationale": control_rationale.strip(),
        "primary_outcome": PRIMARY_OUTCOME,
        "models": models,
        "inputs": inputs_inventory(inputs),
        "settings": settings_record(settings),
        "design": {
            "suspect_works": k,
            "control_works": m,
            "control_works_needed": needed,
            "passages_per_work": size,
            "smallest_possible_p": 1 / (m + 1) if k == 1 else None,
            "formulaic_passages_left_out": "decided by the reference model when the plan runs, on both sides alike",
        },
        "llm_mia_commit": source_commit(),
        "versions": versions(),
    }
    return Plan(data)


def planned_settings(
    plan: Plan, *, cache: Any = True, model: str | None = None, reference: str | None = None, progress: bool = False
) -> Any:
    """The ``ExtractionTestSettings`` an extraction plan fixes; ``model`` / ``reference``: where the planned models
    are on this machine (checked by hash either way)."""
    planned = plan.data["settings"]
    return ExtractionTestSettings(
        models=planned_model_settings(plan, model=model, reference=reference),
        probe=ProbeSettings(
            prefix_tokens=planned["prefix_tokens"],
            target_tokens=planned["target_tokens"],
            min_match=planned["min_match"],
            formulaic_tokens=planned["formulaic_tokens"],
        ),
        samples=planned["samples"],
        temperature=planned["temperature"],
        api_mode=planned["api_mode"],
        suspect_works=planned["suspect_works"],
        control_works=planned["control_works"],
        alpha=planned["alpha"],
        splits=planned["splits"],
        permutations=planned["permutations"],
        clip_quantile=planned["clip_quantile"],
        seed=planned["seed"],
        statistic=planned["statistic"],
        passage_selection=planned["passage_selection"],
        tokenizer=planned["tokenizer"],
        batch_size=planned["batch_size"],
        cache=cache,
        progress=progress,
    )


def planned_inputs(plan: Plan, settings: Any, paths: dict[str, Path]) -> Any:
    """The plan's inputs read and cut again (the tokenizer only; no weights)."""
    return cut_inputs(paths["suspect"], paths["control"], settings, tokenizer=cutting_tokenizer(settings))


def run_extraction_evidence(
    plan: Plan,
    plan_path: Path,
    output: Path,
    *,
    start: RunStart,
    cache: Any = True,
    model: str | None = None,
    reference: str | None = None,
    suspect: str | Path | None = None,
    control: str | Path | None = None,
    pdf: bool = True,
) -> EvidenceBundle:
    """Carry out an extraction plan and write its bundle (module docstring); the caller has checked ``output``.
    ``start``: when the run began."""
    settings = planned_settings(plan, cache=cache, model=model, reference=reference)
    paths = input_paths(plan, suspect=suspect, control=control)
    check_input_files(plan, paths)
    check_models(plan, settings.models, settings.tokenizer)
    inputs = planned_inputs(plan, settings, paths)
    check_inputs(plan, inputs)
    models, cutting = load_extraction_models(settings)

    def analysis(staging: Path, observer: Any) -> BundleContent:
        report = probe_and_test(inputs, settings, models=models, cutting=cutting, observer=observer)
        results = {
            "format": "llm-mia evidence results",
            "kind": KIND,
            "plan_sha256": plan.sha256,
            "primary_outcome": plan.data["primary_outcome"],
            "verdict": report.result.verdict,
            "verdict_sentence": report.result.sentence(),
            "features": report.report["features"],
            "passages": report.report["passages"],
            "passage_evidence": report.report["passage_evidence"],
            "result": report.result.to_dict(),
            "models": {r: {k: v for k, v in e.items() if k != "files"} for r, e in plan.data["models"].items()},
        }
        write_rows(report.rows, staging / "extraction.jsonl")
        write_rows(report.passage_rows, staging / "passages.jsonl")
        caption = (
            "Share of passages with an exact match of at least j tokens: the work and the control works, under the "
            "target and the reference model"
        )
        figures = {caption: plot_match_lengths(report.rows, staging, settings.probe.target_tokens)}
        if report.result.work_test is not None:
            figures["The work's statistic (red) among every labelling of the works (grey)"] = plot_work_test(
                report.result, staging
            )

        def page(digest: str) -> str:
            return render_extraction_report(
                plan=plan.data,
                plan_sha256=plan.sha256,
                results=results,
                rows=report.rows,
                figures={caption: path.read_bytes() for caption, path in figures.items()},
                evidence_sha256=digest,
            )

        return BundleContent(results, page)

    return write_bundle(output, plan, plan_path, analysis, start=start, pdf=pdf)


def extraction_checks(
    bundle: Path,
    plan: Plan,
    results: dict[str, Any],
    *,
    rescore: int,
    full: bool,
    model: str | None,
    inputs: dict[str, str | Path],
    seed: int,
) -> list[Any]:
    """What ``llm-mia verify`` adds for an extraction bundle: extraction.jsonl agrees with results.json; with the
    model and inputs here, their hashes; ``rescore`` passages drawn at random (seeded) continued again, their
    generated tokens equal to the recorded ones; with ``full``, the whole test again (p-value and verdict)."""
    checks = [passages_check(bundle, plan)]
    rows, problem = read_jsonl(bundle / "extraction.jsonl")
    if problem:
        return [*checks, Check("extraction", FAIL, problem)]
    evidence = results.get("passage_evidence") or {}
    claimed = sorted(r["id"] for r in rows if r["set"] == "suspect" and r["extracted"] and not r["formulaic"])
    if claimed != sorted(e["id"] for e in evidence.get("extracted", [])):
        checks.append(
            Check("extraction", FAIL, "extraction.jsonl does not give the extracted passages results.json lists")
        )
    else:
        checks.append(Check("extraction", PASS, f"{len(claimed)} extracted passage(s), as results.json lists"))
    settings = planned_settings(plan, cache=False, model=model)
    try:
        check_models(plan, settings.models, settings.tokenizer)
    except ModelNotFoundError as error:
        return [*checks, Check("model files", NOT_RUN, f"the planned model is not on this machine ({error})")]
    except RemoteError as error:
        return [*checks, Check("model files", NOT_RUN, f"the planned endpoint cannot be asked ({error})")]
    except LlmMiaError as error:
        return [*checks, Check("model files", FAIL, str(error))]
    checks.append(Check("model files", PASS, "the planned models are here with their planned SHA-256"))
    try:
        paths = input_paths(plan, **inputs)
        check_input_files(plan, paths)
    except LlmMiaError as error:
        return [*checks, Check("input files", NOT_RUN if "not there" in str(error) else FAIL, str(error))]
    checks.append(Check("input files", PASS, "every planned input file is here with its planned SHA-256"))
    if rescore <= 0 and not full:
        return checks

    planned = planned_inputs(plan, settings, paths)
    models, cutting = load_extraction_models(settings)
    k = settings.probe.prefix_tokens
    probes = build_probes(planned.suspect_passages, planned.suspect_sources, cutting, k, "suspect")
    probes += build_probes(planned.control_passages, planned.control_sources, cutting, k, "control")
    recorded = {row["id"]: row for row in rows}
    if rescore > 0:
        chosen = sorted(random.Random(seed).sample(range(len(probes)), min(rescore, len(probes))))
        again, _ = continue_probes(
            models["target"], [probes[i] for i in chosen], settings, cutting=cutting, role="target"
        )
        differ = []
        for index, answers in zip(chosen, again, strict=True):
            name = f"{probes[index].side}:{probes[index].passage.id}"
            row = recorded.get(name)
            if row is None or all(ids != row["generated_ids"] for ids, _ in answers):
                differ.append(name)
        checks.append(
            Check(
                "rescore",
                FAIL if differ else PASS,
                f"{len(chosen)} passages drawn at random continued again: "
                + (
                    f"{len(differ)} differ from extraction.jsonl (first: {differ[0]})"
                    if differ
                    else "every generated token as recorded"
                ),
            )
        )
    if full:
        report = probe_and_test(planned, settings, models=models, cutting=cutting)
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
