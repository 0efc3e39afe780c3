"""``llm-mia evidence run``: carry out a plan exactly, and write a bundle that anyone can verify.

Before any score is computed, every model file, source file and passage is checked against the plan's hashes;
the first difference is refused, naming the file and both hashes. Then the dataset-level test runs as planned
(:func:`llm_mia.workflows.dataset.score_and_test`), every model call going into a hash-chained query log, and
the bundle is written as :mod:`llm_mia.evidence.bundle` describes (the files, the manifest, the evidence hash).
A canary plan runs the canary test instead (:mod:`llm_mia.workflows.canary_evidence`), an extraction plan
the extraction test (:mod:`llm_mia.workflows.extraction_evidence`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_mia.backends.loading import load_models
from llm_mia.errors import LlmMiaError
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
from llm_mia.evidence.plan import read_plan
from llm_mia.evidence.report_html import render_report
from llm_mia.io.outputs import check_writable
from llm_mia.io.score_files import write_rows
from llm_mia.workflows.canary_evidence import is_canary_plan, run_canary_evidence
from llm_mia.workflows.dataset import score_and_test
from llm_mia.workflows.dataset_report import plot_result, score_figures
from llm_mia.workflows.extraction_evidence import is_extraction_plan, run_extraction_evidence
from llm_mia.workflows.plan import planned_inputs, planned_settings

CAPTIONS = {  # what the report says under each figure of a dataset-level bundle
    "work_test.png": "The suspect work's statistic (red) among every labelling of the works (grey)",
    "p_value_curve.png": "Passage-level p-value against the number of passages used: no verdict of training "
    "rests on it (it treats passages as independent, which passages of one work are not), and each point is "
    "a separate look, so none of them is a p-value to quote",
    "score_distributions.png": "Per-passage scores, suspect work vs control works (higher = more like training)",
}


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
    secret file is, when moved (``llm_mia.workflows.canary_evidence`` runs such a plan); ``pdf``: print the report to
    PDF
    (needs Chromium); ``progress``: show the scoring's cost up front and its progress (changes no number).
    """
    start = RunStart.now()
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
        return run_canary_evidence(
            plan, plan_path, output, start=start, cache=cache, model=model, secret=secret, pdf=pdf
        )
    if is_extraction_plan(plan):
        return run_extraction_evidence(
            plan, plan_path, output, start=start, cache=cache, model=model, reference=reference, suspect=suspect,
            control=control, pdf=pdf,
        )  # fmt: skip
    settings = planned_settings(plan, cache=cache, model=model, reference=reference, progress=progress)
    paths = input_paths(plan, suspect=suspect, control=control)
    check_input_files(plan, paths)
    check_models(plan, settings.scoring.models, settings.tokenizer)
    inputs = planned_inputs(plan, settings, paths)
    check_inputs(plan, inputs)
    models = load_models(settings.scoring.models)

    def analysis(staging: Path, observer: Any) -> BundleContent:
        report = score_and_test(inputs, settings, models=models, observer=observer)
        result = report.result
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
        write_rows(report.rows, staging / "scores.jsonl")
        write_rows(report.passage_rows, staging / "passages.jsonl")
        # the work-level design's figure only: the passage-level p-value curve is a separate look at every passage
        # count, and its smallest point, quoted alone, would read as a p-value for the work (it is not)
        figures = [plot_result(result, staging)]
        figures += score_figures(report.rows, report.report["features"], staging)
        for extra in staging.glob("*.svg"):
            extra.unlink()  # PNG only: the report embeds them

        def page(digest: str) -> str:
            return render_report(
                plan=plan.data,
                plan_sha256=plan.sha256,
                results=results,
                figures={CAPTIONS.get(p.name, p.name): p.read_bytes() for p in figures},
                evidence_sha256=digest,
            )

        return BundleContent(results, page, execution=report.record.get("execution"), records_execution=True)

    return write_bundle(output, plan, plan_path, analysis, start=start, pdf=pdf)
