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
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError
from llm_mia.io.identity import sha256_file, sha256_text
from llm_mia.io.outputs import atomic_write
from llm_mia.stats.passage_test import COMBINATION
from llm_mia.stats.work_test import STATISTIC

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
    from llm_mia.backends.local import resolve_model_directory

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
    from llm_mia.backends.remote.model import agreement_record, connect

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
    from llm_mia.backends.loading import capabilities_of

    if capabilities_of(spec.name).files:
        return model_inventory(spec)
    return remote_inventory(spec, settings.scoring.models.api)


def inputs_inventory(inputs: Any) -> dict[str, Any]:
    """Every source and passage of a cut dataset-level input (``llm_mia.workflows.dataset_inputs.DatasetInputs``)."""

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


def api_record(api: Any) -> dict[str, Any] | None:
    """How a plan fixes the way an endpoint is asked (an ``ApiSettings``, or None for a local model): the keyword
    arguments ``ApiSettings`` is rebuilt from when the plan runs. The key itself is never written, only the
    environment variable that holds it."""
    if api is None:
        return None
    return {
        "base_url": api.root,
        "key_env": api.key_env,
        "timeout": api.timeout,
        "time_budget": api.time_budget,
        "max_retries": api.max_retries,
        "requests_per_second": api.requests_per_second,
        "tokens_per_minute": api.tokens_per_minute,
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
        "api": api_record(models.api),
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
            "primary": "work-level permutation test (llm_mia.stats.work_test)",
            "statistic": STATISTIC,
            "exploratory": f"passage-level test (llm_mia.stats.passage_test): {COMBINATION}",
        },
    }


@dataclass
class Plan:
    """A pre-registration plan: its content and the SHA-256 of its canonical bytes."""

    data: dict[str, Any]

    @property
    def sha256(self) -> str:
        return sha256_bytes(canonical_json(self.data))

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
    on the known-split recipe nearest to the design (``llm_mia.stats.work_test_power``)."""
    from llm_mia.stats.dataset_inference import work_counts
    from llm_mia.stats.work_test import select_passages
    from llm_mia.stats.work_test_power import nearest_power

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
