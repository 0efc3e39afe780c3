"""``llm-mia plan``: fix a dataset-level analysis before any score is seen, and rebuild what a plan fixes.

The plan's format, its inventories of models and inputs, and reading it back with its hash checked are
:mod:`llm_mia.evidence.plan`; this module builds a plan (:func:`build_plan`) and turns one back into the
test's settings and cut inputs (:func:`planned_settings`, :func:`planned_inputs`) for ``llm-mia evidence run``
and ``llm-mia verify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_mia.backends.loading import ModelSettings
from llm_mia.backends.local import ModelSpec, precision_in_effect
from llm_mia.backends.remote.client import ApiSettings
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.errors import LlmMiaError
from llm_mia.evidence.plan import (
    MIN_RATIONALE_WORDS,
    PLAN_FORMAT,
    PLAN_VERSION,
    PRIMARY_OUTCOME,
    Plan,
    design_summary,
    inputs_inventory,
    model_identity,
    model_inventory,
    settings_record,
)
from llm_mia.io.documents import Document
from llm_mia.io.identity import source_commit, versions
from llm_mia.scoring.settings import ScoringSettings
from llm_mia.stats.dataset_inference import work_counts
from llm_mia.workflows.dataset import DatasetTestSettings
from llm_mia.workflows.dataset_inputs import DatasetInputs, cut_inputs, cutting_tokenizer
from llm_mia.workflows.precision import precision_check as check_precision


def planned_model_settings(plan: Plan, *, model: str | None = None, reference: str | None = None) -> ModelSettings:
    """The models a plan fixes (dataset-test and extraction plans alike); ``model`` / ``reference``: where the
    planned models are on this machine, when not where their planned names resolve."""
    planned, models = plan.data["settings"], plan.data["models"]
    api = planned.get("api")
    return ModelSettings(
        model=model or models["target"]["name"],
        revision=models["target"]["revision"],
        reference=(reference or models["reference"]["name"]) if "reference" in models else None,
        reference_revision=models["reference"]["revision"] if "reference" in models else None,
        dtype=planned["model"]["dtype"],
        device=planned["model"]["device"],
        trust_remote_code=planned["model"]["trust_remote_code"],
        api=None if api is None else ApiSettings(**api),
    )


def planned_settings(
    plan: Plan, *, cache: Any = True, model: str | None = None, reference: str | None = None, progress: bool = True
) -> DatasetTestSettings:
    """The ``DatasetTestSettings`` ``plan`` fixes. ``cache``: where the stats cache lives and ``progress``:
    whether to show progress (neither changes a number); ``model`` / ``reference``: where the planned models
    are on this machine, when not where their planned names resolve (their files are checked against the
    plan's hashes either way)."""
    planned = plan.data["settings"]
    if planned["model"]["dtype"] != "float32" and "precision_check" not in plan.data:
        raise LlmMiaError(
            f"this plan runs the model in {planned['model']['dtype']} without a precision check of what that "
            "costs: plan again with --precision-check N (or in float32)"
        )
    dtype, device = planned["model"]["dtype"], planned["model"]["device"]
    if precision_in_effect(dtype, device) != dtype:
        raise LlmMiaError(
            f"this plan runs the model in {dtype} precision, which this machine's {device} device would run in "
            "float32 (no native bfloat16), so the plan's precision check would not describe the run: run it on "
            "hardware with native bfloat16 (AMX or AVX-512 BF16, or a GPU of compute capability 8.0 or later), or "
            "plan again in float32"
        )
    scoring = ScoringSettings(
        models=planned_model_settings(plan, model=model, reference=reference),
        scorers=tuple(plan.scorer_specs()),
        extraction=ExtractionSettings(
            batch_size=planned["batch_size"], window=planned["window"], stride=planned["stride"], progress=progress
        ),
        cache=cache,
    )
    return DatasetTestSettings(
        scoring=scoring,
        suspect_works=planned["suspect_works"],
        control_works=planned["control_works"],
        passage_tokens=planned["passage_tokens"],
        passage_stride=planned["passage_stride"],
        alpha=planned["alpha"],
        splits=planned["splits"],
        permutations=planned["permutations"],
        clip_quantile=planned["clip_quantile"],
        seed=planned["seed"],
        tokenizer=planned.get("tokenizer"),
        statistic=planned["statistic"],
        passage_selection=planned["passage_selection"],
    )


def planned_inputs(plan: Plan, settings: Any, paths: dict[str, Path]) -> DatasetInputs:
    """The plan's inputs read and cut again, as at plan time (the tokenizer only; no weights are loaded)."""
    return cut_inputs(paths["suspect"], paths["control"], settings, tokenizer=cutting_tokenizer(settings))


def check_design(inputs: Any, settings: Any) -> None:
    """The primary outcome is the work-level test: refuse a plan whose controls cannot reach p <= alpha."""

    size, k, m, needed = work_counts(
        [p.work for p in inputs.suspect_passages],
        [p.work for p in inputs.control_passages],
        settings.alpha,
        selection=settings.passage_selection,
    )
    if m < needed:
        raise LlmMiaError(
            f"the control set has {m} separate work(s) with at least {size} passages of {settings.passage_tokens} "
            f"tokens; the planned test ({k} suspect work(s), alpha = {settings.alpha:g}) needs at least {needed}, "
            f"or it cannot reach p <= {settings.alpha:g} whatever the model did. Add control works (one file per "
            f"work, or --control-works), or cut shorter passages (--passage-tokens)"
        )


def precision_record(inputs: Any, settings: Any, size: int | None) -> dict[str, Any] | None:
    """The precision check a plan in a dtype other than float32 must carry (``build_plan``), or None in float32."""
    dtype = settings.scoring.models.dtype
    if dtype == "float32":
        if size is not None:
            raise LlmMiaError("--precision-check compares another dtype with float32: the plan is in float32 already")
        return None
    if size is None:
        raise LlmMiaError(
            f"a plan in {dtype} must name what that precision costs: add --precision-check N (N passages, e.g. 64, "
            "scored in both precisions; no labels are read), or plan in float32"
        )
    passages = [*inputs.suspect_passages, *inputs.control_passages]
    documents = [Document(id=p.id, text=p.text) for p in passages]
    return check_precision(documents, settings.scoring, size=size, seed=settings.seed).to_dict()


def build_plan(
    suspect: str | Path,
    control: str | Path,
    settings: Any,
    *,
    question: str,
    analyst: str,
    control_rationale: str,
    precision_check: int | None = None,
) -> Plan:
    """Fix an analysis before any score is seen: hash the models' files, read and cut the inputs (with the
    target model's tokenizer; no model weights are loaded), and record everything (module docstring).

    A dtype other than float32 is refused unless ``precision_check`` names a sample size: a seeded sample of the
    passages (suspect and control mixed, no labels, so no result can be read from it) is then scored in that
    dtype and in float32 (``llm_mia.workflows.precision``), and the largest difference and the rank correlation
    per scorer go into the plan beside the dtype, so the other side sees what the precision cost before the run.

    Refuses an empty question or analyst, a control rationale of fewer than ``MIN_RATIONALE_WORDS`` words,
    inputs that share a text or a passage, too few passages, and fewer control works than the work-level test
    needs to reach p <= alpha: each with the fix.
    """
    if not question.strip():
        raise LlmMiaError("the plan needs the question in words: --question 'Was model M trained on work W?'")
    if not analyst.strip():
        raise LlmMiaError("the plan needs the analyst's name: --analyst 'Name, affiliation'")
    if len(control_rationale.split()) < MIN_RATIONALE_WORDS:
        raise LlmMiaError(
            "the plan needs --control-rationale: in a sentence or more, how the control works were chosen and why "
            "the model cannot have seen them (e.g. 'other novels of the same genre, all first published after the "
            "model's data cutoff of 2024-06'); the test means nothing without it"
        )
    if not settings.scoring.models.offers().tokenizer and settings.tokenizer is None:
        raise LlmMiaError(
            f"--model {settings.scoring.models.model} is behind an API, whose tokenizer is unknown: name the local "
            "model whose tokenizer cuts the passages with --tokenizer (its files are hashed into the plan)"
        )
    specs = settings.scoring.models.specs()
    models = {role: model_identity(spec, settings) for role, spec in specs.items()}
    if settings.tokenizer is not None:
        models["tokenizer"] = model_inventory(ModelSpec(name=settings.tokenizer))
    tokenizer = cutting_tokenizer(settings)
    # absolute paths: `evidence run` finds them from any directory (--suspect / --control point elsewhere)
    suspect, control = Path(suspect).resolve(), Path(control).resolve()
    inputs = cut_inputs(suspect, control, settings, tokenizer=tokenizer, refuse_shared=True)
    check_design(inputs, settings)
    precision = precision_record(inputs, settings, precision_check)
    data = {
        "format": PLAN_FORMAT,
        "version": PLAN_VERSION,
        "question": question.strip(),
        "analyst": analyst.strip(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "control_rationale": control_rationale.strip(),
        "primary_outcome": PRIMARY_OUTCOME,
        "models": models,
        "inputs": inputs_inventory(inputs),
        "settings": settings_record(settings),
        "design": design_summary(inputs, settings),
        **({"precision_check": precision} if precision is not None else {}),
        "llm_mia_commit": source_commit(),
        "versions": versions(),
    }
    return Plan(data)


@dataclass
class PlannedAnalysis:
    """A plan as a command's result (``llm-mia plan``, ``llm-mia canary plan``): ``record`` is the plan's content,
    ``summary_lines()`` what it fixes in words (passages, works, models, the smallest possible p, power, precision)
    and its SHA-256, ``write(path)`` writes ``plan.json`` and ``plan.json.sha256``."""

    plan: Plan

    @property
    def record(self) -> dict[str, Any]:
        return self.plan.data

    @property
    def sha256(self) -> str:
        return self.plan.sha256

    def write(self, path: str | Path) -> list[Path]:
        return list(self.plan.write(path))

    def summary_lines(self) -> list[str]:
        kind = self.plan.data.get("kind")
        lines = (
            _canary_plan_lines(self.plan.data)
            if kind == "canary"
            else _extraction_plan_lines(self.plan.data)
            if kind == "extraction"
            else _dataset_plan_lines(self.plan.data)
        )
        return [*lines, f"plan SHA-256: {self.plan.sha256}"]


def _dataset_plan_lines(data: dict[str, Any]) -> list[str]:
    from llm_mia.stats.work_test_power import power_sentence

    inputs, design = data["inputs"], data["design"]
    models = ", ".join(
        f"{role} {m['name']} "
        + (f"(at {m['base_url']}, fingerprint {m['fingerprint']})" if "base_url" in m else f"({len(m['files'])} files)")
        for role, m in data["models"].items()
    )
    lines = [
        f"planned: {len(inputs['suspect']['passages'])} suspect and {len(inputs['control']['passages'])} control "
        f"passages of {data['settings']['passage_tokens']} tokens; models: {models}",
        f"design: {design['suspect_works']} suspect work(s) against {design['control_works']} control works, "
        f"{design['labellings']} labellings: the smallest possible p is {design['smallest_possible_p']:.3g}, whatever "
        f"the model did; {design['suspect_share_tested']:.0%} of the suspect text's passages enter the test",
        f"power: {power_sentence(design['power_on_a_known_split'])}",
    ]
    if "precision_check" in data:
        check = data["precision_check"]
        moved = ", ".join(
            f"{s['scorer']} up to {s['max_abs_difference']:.3g} (rank correlation {s['spearman']:.4f})"
            for s in check["scorers"]
        )
        lines.append(f"precision: {check['dtype']} against float32 on {check['sampled']} passages moved {moved}")
    return lines


def _extraction_plan_lines(data: dict[str, Any]) -> list[str]:
    inputs, design = data["inputs"], data["design"]
    lines = [
        f"planned extraction analysis: {len(inputs['suspect']['passages'])} suspect and "
        f"{len(inputs['control']['passages'])} control passages of k + L = {data['settings']['passage_tokens']} "
        f"tokens; {design['control_works']} control works; models: "
        + ", ".join(f"{role} {m['name']}" for role, m in data["models"].items())
    ]
    if "reference" not in data["models"]:
        lines.append("no --reference: the chance check will not run, and formulaic text will not be excluded")
    return lines


def _canary_plan_lines(data: dict[str, Any]) -> list[str]:
    secret, settings = data["secret"], data["settings"]
    return [
        f"planned: {secret['canaries']} canaries with {secret['siblings_per_canary']} siblings each, scorer "
        f"{settings['scorer']}, alpha {settings['alpha']:g}; model {data['models']['target']['name']}"
    ]
