"""The pre-registration plan: everything a dataset-level analysis will do, fixed before any score is seen.

``plan.json`` holds the question, the analyst, the models (every file with its size and SHA-256), the suspect
work and the control works (every source file's SHA-256, every passage's source, work, offsets and SHA-256:
passages are cut at plan time, so the unit of analysis cannot change later), why the controls are a fair
comparison, the scorers with their hyperparameters, the test and its settings with every seed, the one
primary outcome, and package versions. It is written as canonical JSON (keys sorted, fixed indentation,
UTF-8), so its SHA-256, printed and stored beside it in ``plan.json.sha256`` (``sha256sum -c`` format),
identifies it: any later edit changes the hash, and ``llm-mia evidence run`` refuses it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.half_split import COMBINATION
from llm_mia.identity import sha256_file, sha256_text, source_commit, versions
from llm_mia.outputs import atomic_write
from llm_mia.work_permutation import STATISTIC

PLAN_FORMAT = "llm-mia plan"
PLAN_VERSION = 2  # 2: the statistic (scores or reference gap) and the passage selection are planned
PRIMARY_OUTCOME = (
    "the dataset-level verdict on the suspect work: the work-level permutation test of the suspect work against "
    "the control works at the planned alpha, with its safeguards (llm-mia dataset-test); everything else in the "
    "bundle (the passage-level test, per-passage scores, per-scorer figures) is exploratory"
)
MIN_RATIONALE_WORDS = 5


def canonical_json(data: Any) -> bytes:
    """The one byte form of a JSON document: keys sorted, one-space indentation, UTF-8, a final newline.

    >>> canonical_json({"b": 1, "a": [1, "é"]})
    b'{\\n "a": [\\n  1,\\n  "\\xc3\\xa9"\\n ],\\n "b": 1\\n}\\n'
    """
    return (json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_inventory(path: str | Path) -> list[dict[str, Any]]:
    """Every file at ``path`` (the file itself, or every file under a directory, hidden ones aside) with its
    path relative to ``path``, size and SHA-256."""
    path = Path(path)
    if path.is_file():
        return [{"path": path.name, "size": path.stat().st_size, "sha256": sha256_file(path)}]
    return [
        {"path": file.relative_to(path).as_posix(), "size": file.stat().st_size, "sha256": sha256_file(file)}
        for file in sorted(path.rglob("*"))
        if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts)
    ]


def model_inventory(spec: Any) -> dict[str, Any]:
    """A model's identity from its files alone (no weights are loaded): every file of its directory with size
    and SHA-256, its architecture from ``config.json``, dtype and revision, and, for a converted GGUF, the
    GGUF's own hash (``llm_mia_source.json``)."""
    from llm_mia.models import resolve_model_directory

    directory = resolve_model_directory(spec)
    files = file_inventory(directory)
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    return {
        "name": spec.name,
        "revision": spec.revision,
        "directory": str(directory),
        "dtype": spec.dtype,
        "device": spec.device,
        "architecture": (config.get("architectures") or [config.get("model_type")])[0],
        "files": files,
        "files_sha256": sha256_bytes(canonical_json(files)),
    }


def remote_inventory(spec: Any, api: Any) -> dict[str, Any]:
    """A model behind an API, as a plan can fix it: the endpoint, the model name it reports, the fingerprint of
    the weights it serves (the probe's greedy token and log-prob), how log-probs are read, and the last
    agreement check with white-box scores. Connects and probes (a handful of short requests; no passage is sent).
    """
    from llm_mia.remote.model import agreement_record, connect

    model = connect(spec, api)
    found = model.capabilities
    identity = {
        "name": spec.name,
        "backend": "OpenAI-compatible API",
        "base_url": api.root,
        "key_env": api.key_env,
        "model_version": found.model_version,
        "fingerprint": found.fingerprint,
        "mode": found.mode,
    }
    return {
        **identity,
        "revision": None,
        "capabilities": {"echo": found.echo, "forced": found.forced, "chat": found.chat},
        "agreement_check": agreement_record(api.root, model.name),
        "files": [],
        "files_sha256": sha256_bytes(canonical_json(identity)),
    }


def model_identity(spec: Any, settings: Any) -> dict[str, Any]:
    """:func:`model_inventory` for a local model, :func:`remote_inventory` for one behind an API."""
    from llm_mia.remote.model import is_remote

    if is_remote(spec.name):
        return remote_inventory(spec, settings.scoring.models.api)
    return model_inventory(spec)


def inputs_inventory(inputs: Any) -> dict[str, Any]:
    """Every source and passage of a cut dataset-level input (``llm_mia.workflows.dataset.DatasetInputs``)."""

    def side(path: str, sources: list[Any], passages: list[Any], cut: Any) -> dict[str, Any]:
        return {
            "path": path,
            "files": file_inventory(path),
            "sources": [
                {"name": s.name, "work": s.work_id, "bytes": len(s.text.encode("utf-8")), "sha256": sha256_text(s.text)}
                for s in sources
            ],
            "passages": [{**p.record(), "sha256": sha256_text(p.text)} for p in passages],
            "cutting": cut.to_dict(),
        }

    return {
        "suspect": side(inputs.suspect, inputs.suspect_sources, inputs.suspect_passages, inputs.suspect_cut),
        "control": side(inputs.control, inputs.control_sources, inputs.control_passages, inputs.control_cut),
        "passages_on_both_sides_left_out": inputs.shared,
    }


def settings_record(settings: Any) -> dict[str, Any]:
    """The test settings as the plan holds them (everything ``DatasetTestSettings`` takes, scorers included)."""
    models = settings.scoring.models
    return {
        "model": {
            "dtype": models.dtype,
            "device": models.device,
            "trust_remote_code": models.trust_remote_code,
        },
        "api": None
        if models.api is None
        else {
            "base_url": models.api.root,
            "key_env": models.api.key_env,
            "timeout": models.api.timeout,
            "time_budget": models.api.time_budget,
            "max_retries": models.api.max_retries,
            "requests_per_second": models.api.requests_per_second,
            "tokens_per_minute": models.api.tokens_per_minute,
        },
        "tokenizer": settings.tokenizer,
        "scorers": [call.describe() for call in settings.scoring.calls],
        "batch_size": settings.scoring.extraction.batch_size,
        "window": settings.scoring.extraction.window,
        "stride": settings.scoring.extraction.stride,
        "suspect_works": settings.suspect_works,
        "control_works": settings.control_works,
        "passage_tokens": settings.passage_tokens,
        "passage_stride": settings.passage_stride,
        "alpha": settings.alpha,
        "splits": settings.splits,
        "permutations": settings.permutations,
        "clip_quantile": settings.clip_quantile,
        "seed": settings.seed,
        "statistic": settings.statistic,
        "passage_selection": settings.passage_selection,
        "test": {
            "primary": "work-level permutation test (llm_mia.work_permutation)",
            "statistic": STATISTIC,
            "exploratory": f"passage-level test (llm_mia.half_split): {COMBINATION}",
        },
    }


@dataclass
class Plan:
    """A pre-registration plan: its content and the SHA-256 of its canonical bytes."""

    data: dict[str, Any]

    @property
    def sha256(self) -> str:
        return sha256_bytes(canonical_json(self.data))

    def settings(
        self, *, cache: Any = True, model: str | None = None, reference: str | None = None, progress: bool = True
    ) -> Any:
        """The ``DatasetTestSettings`` the plan fixes. ``cache``: where the stats cache lives and ``progress``:
        whether to show progress (neither changes a number); ``model`` / ``reference``: where the planned models
        are on this machine, when not where their planned names resolve (their files are checked against the
        plan's hashes either way)."""
        from llm_mia.remote.client import ApiSettings
        from llm_mia.settings import ExtractionSettings, ModelSettings, ScoringSettings
        from llm_mia.workflows.dataset import DatasetTestSettings

        planned = self.data["settings"]
        models = self.data["models"]
        api = planned.get("api")
        if planned["model"]["dtype"] != "float32" and "precision_check" not in self.data:
            raise LlmMiaError(
                f"this plan runs the model in {planned['model']['dtype']} without a precision check of what that "
                "costs: plan again with --precision-check N (or in float32)"
            )
        scoring = ScoringSettings(
            models=ModelSettings(
                model=model or models["target"]["name"],
                revision=models["target"]["revision"],
                reference=(reference or models["reference"]["name"]) if "reference" in models else None,
                reference_revision=models["reference"]["revision"] if "reference" in models else None,
                dtype=planned["model"]["dtype"],
                device=planned["model"]["device"],
                trust_remote_code=planned["model"]["trust_remote_code"],
                api=None if api is None else ApiSettings(**api),
            ),
            scorers=tuple(self.scorer_specs()),
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

    def scorer_specs(self) -> list[str]:
        """The scorers as specs (``min_k:k=0.1``) that rebuild exactly the planned calls."""
        specs = []
        for entry in self.data["settings"]["scorers"]:
            params = ";".join(f"{key}={value}" for key, value in entry["params"].items())
            specs.append(f"{entry['scorer']}:{params}" if params else entry["scorer"])
        return specs

    def write(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``plan.json`` (canonical bytes) and ``plan.json.sha256`` beside it."""
        path = Path(path)
        data = canonical_json(self.data)
        atomic_write(path, lambda stream: stream.write(data), mode="wb")
        sidecar = Path(f"{path}.sha256")
        atomic_write(sidecar, lambda stream: stream.write(f"{sha256_bytes(data)}  {path.name}\n"))
        return path, sidecar


def read_plan(path: str | Path) -> Plan:
    """Read a plan and check it: canonical bytes, and the SHA-256 in ``plan.json.sha256`` beside it.

    Refuses, naming both hashes, a plan edited after it was written.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such plan; write one with `llm-mia plan ... --output {path.name}`")
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not a plan ({error})") from None
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise InputError(f"{path}: not a plan written by `llm-mia plan`")
    sidecar = Path(f"{path}.sha256")
    if not sidecar.is_file():
        raise InputError(
            f"{sidecar} is missing: the plan's hash, written beside it by `llm-mia plan`, is what fixes the plan"
        )
    recorded = sidecar.read_text(encoding="utf-8").split()[0] if sidecar.read_text(encoding="utf-8").strip() else ""
    actual = sha256_bytes(raw)
    if recorded != actual:
        raise InputError(
            f"{path} does not match its recorded hash: {sidecar} says {recorded}, the file hashes to {actual}. "
            f"The plan was changed after it was written; a changed plan is a new plan (run `llm-mia plan` again)"
        )
    if canonical_json(data) != raw:
        raise InputError(f"{path} is not in canonical form; it was not written by `llm-mia plan`")
    return Plan(data)


def design_summary(inputs: Any, settings: Any) -> dict[str, Any]:
    """What the planned design can show, known before any score: the works that enter the work-level test, its
    labellings and the smallest p-value they allow, the share of the suspect text tested, and the power measured
    on the known-split recipe nearest to the design (``llm_mia.work_test_power``)."""
    from llm_mia.dataset_inference import work_counts
    from llm_mia.work_permutation import select_passages
    from llm_mia.work_test_power import nearest_power

    suspect_works = [f"suspect:{p.work}" for p in inputs.suspect_passages]
    control_works = [f"control:{p.work}" for p in inputs.control_passages]
    size, k, m, needed = work_counts(suspect_works, control_works, settings.alpha, selection=settings.passage_selection)
    selection = select_passages(
        [*suspect_works, *control_works], sorted(set(suspect_works)), rule=settings.passage_selection
    )
    labellings = math.comb(m + k, k)
    exact = labellings <= settings.permutations + 1
    return {
        "suspect_works": k,
        "control_works": m,
        "control_works_needed": needed,
        "passages_per_work": size,
        "suspect_share_tested": selection.share_of(sorted(set(suspect_works))),
        "labellings": labellings if exact else settings.permutations + 1,
        "smallest_possible_p": 1 / labellings if exact else 1 / (settings.permutations + 1),
        "power_on_a_known_split": nearest_power(m, settings.statistic),
    }


def _check_design(inputs: Any, settings: Any) -> None:
    """The primary outcome is the work-level test: refuse a plan whose controls cannot reach p <= alpha."""
    from llm_mia.dataset_inference import work_counts

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


def _precision_record(inputs: Any, settings: Any, size: int | None) -> dict[str, Any] | None:
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
    from llm_mia.documents import Document
    from llm_mia.workflows.precision import precision_check

    passages = [*inputs.suspect_passages, *inputs.control_passages]
    documents = [Document(id=p.id, text=p.text) for p in passages]
    return precision_check(documents, settings.scoring, size=size, seed=settings.seed).to_dict()


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
    from llm_mia.workflows.dataset import cut_inputs, cutting_tokenizer

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
    from llm_mia.models import ModelSpec
    from llm_mia.remote.model import is_remote

    if is_remote(settings.scoring.models.model) and settings.tokenizer is None:
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
    _check_design(inputs, settings)
    precision = _precision_record(inputs, settings, precision_check)
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
