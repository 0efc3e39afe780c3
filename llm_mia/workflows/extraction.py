"""The verbatim-extraction workflow (``llm-mia extract-test``): probe every passage of a suspect work and of
control works with its first k tokens, measure how much of the next L tokens the model reproduces, and rank the
work among the control works with the dataset-level test's machinery.

1. **Passages** are cut exactly as ``dataset-test`` cuts them (``llm_mia.workflows.dataset_inputs.cut_inputs``: the same
   readers, work units, tokenizer, shared-text rules and minimum counts), at k + L tokens each.
2. **Probes** (``llm_mia.methods``): each passage's first k tokens, as cut from its source, are continued greedily
   by the target model (batched, through the stats cache: a killed run resumes) or sent to a model behind an API
   as text; every continuation is measured against the true L tokens (match length M, longest common substring
   C, exact), and the generated tokens are kept with the numbers.
3. **Chance check**: with ``--reference`` (a model that cannot have seen the work), the same probes under it;
   passages it also continues for at least ``formulaic_tokens`` tokens are formulaic, reported apart and left
   out of every claim.
4. **Work-level test**: the per-passage features (M, C, [M >= m]) of the passages that are not formulaic go into
   ``llm_mia.stats.dataset_inference.dataset_inference``, unchanged: the work-level permutation test over works, with
   its safeguards (difference from the control works, format, lengths, negative control) and its fixed verdict
   wording. Features are not clipped by default (``clip_quantile`` 0): they are bounded by L, and the rare long
   matches are the signal.
5. **Per-passage evidence**: the suspect passages extracted verbatim (M >= m) and not formulaic, with their
   source, offsets and the generated text, and the rate at which the target does the same on the control works
   (exact interval), in fixed words (``llm_mia.methods.extraction.PASSAGE_ASSUMPTION`` / ``PASSAGE_GUARANTEE``).

:func:`run_extraction_test` returns an :class:`ExtractionTestReport` (``write(dir)``, ``summary_lines()``);
:func:`run_extraction_probe` probes texts without controls and gives no verdict (the built-in sample).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from llm_mia.backends.loading import ModelSettings, load_models
from llm_mia.backends.local import LoadedModel, ModelSpec, resolve_model_directory
from llm_mia.backends.remote.responses import response_cache
from llm_mia.engine import stats_cache
from llm_mia.engine.greedy import check_fits, greedy_continuations, sampled_continuations
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.io.identity import sha256_text, sha256_texts
from llm_mia.io.outputs import write_json, write_text
from llm_mia.io.passages import WORK_UNITS, Passage, Source, passages_from_sources, token_boundaries
from llm_mia.io.records import run_record, write_run_record
from llm_mia.io.score_files import write_rows
from llm_mia.methods.continuation_api import API_MODES, ApiProbeSettings, api_continuations, continuation_ids
from llm_mia.methods.extraction import (
    BEST_OF_RULE,
    FEATURES,
    PASSAGE_ASSUMPTION,
    PASSAGE_GUARANTEE,
    ProbeSettings,
    best_of,
    features,
)
from llm_mia.stats.dataset_inference import (
    DEFAULT_ALPHA,
    REFERENCE_GAP,
    SCORES,
    DatasetInferenceResult,
    dataset_inference,
)
from llm_mia.stats.metrics import clopper_pearson, format_p_value
from llm_mia.stats.passage_test import DEFAULT_SPLITS, MIN_PASSAGES_PER_SET
from llm_mia.stats.work_test import DEFAULT_PERMUTATIONS, SELECTION_RULES, WHOLE_SUSPECT
from llm_mia.workflows.dataset import refuse_remote_target
from llm_mia.workflows.dataset_inputs import cut_inputs
from llm_mia.workflows.dataset_report import plot_work_test
from llm_mia.workflows.samia import text_seed

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("report.json", "summary.md", "extraction.jsonl", "passages.jsonl", "work_test.png", "match_lengths.png")
STATISTICS = (SCORES, REFERENCE_GAP)
VARIANT = "greedy continuation of the first k tokens"


@dataclass(frozen=True)
class ExtractionTestSettings:
    """How passages are cut, probed and tested; checked on construction, before any model loads.

    ``models``: the target and (for the chance check) the reference model. ``probe``: k, L, m and the formulaic
    threshold (``llm_mia.methods.extraction.ProbeSettings``). ``samples`` / ``temperature``: 1 and 0 is greedy
    decoding; temperature > 0 draws ``samples`` continuations per passage (seeded per passage) and keeps the best
    (``BEST_OF_RULE``). ``api_mode``: how a model behind an API is asked (``auto``, ``completions``, ``chat``).
    ``statistic``: ``scores`` (the target's match features) or ``reference-gap`` (each minus the reference
    model's). ``clip_quantile``: 0 (match lengths are bounded; see the module docstring). The rest as
    ``llm_mia.workflows.dataset.DatasetTestSettings``. ``cache``: True (the default stats cache and the API
    response cache beside it), False, or a stats-cache path.
    """

    models: ModelSettings = field(default_factory=ModelSettings)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    samples: int = 1
    temperature: float = 0.0
    api_mode: str = "auto"
    suspect_works: str = "one"
    control_works: str = "sources"
    alpha: float = DEFAULT_ALPHA
    splits: int = DEFAULT_SPLITS
    permutations: int = DEFAULT_PERMUTATIONS
    clip_quantile: float = 0.0
    seed: int = 0
    statistic: str = SCORES
    passage_selection: str = WHOLE_SUSPECT
    tokenizer: str | None = None
    batch_size: int = 8
    cache: bool | str | Path = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise LlmMiaError(f"--samples {self.samples}: give at least 1 continuation per passage")
        if self.temperature < 0:
            raise LlmMiaError(f"--temperature {self.temperature} is negative; 0 is greedy decoding")
        if self.temperature == 0 and self.samples > 1:
            raise LlmMiaError(
                f"--samples {self.samples} at temperature 0: greedy decoding gives one continuation; give "
                f"--temperature > 0 to draw several (the best is kept), or --samples 1"
            )
        if self.api_mode not in API_MODES:
            raise LlmMiaError(f"--api-mode {self.api_mode!r}: choose one of {', '.join(API_MODES)}")
        for name, value in (("suspect", self.suspect_works), ("control", self.control_works)):
            if value not in WORK_UNITS:
                raise LlmMiaError(f"--{name}-works {value!r}: choose one of {', '.join(WORK_UNITS)}")
        if not 0.0 < self.alpha < 1.0:
            raise LlmMiaError(f"--alpha {self.alpha} is not in (0, 1); 0.05 is the usual choice")
        if self.splits < 1 or self.permutations < 1:
            raise LlmMiaError("--splits and --permutations must be >= 1 (10 and 999 are good defaults)")
        if not 0.0 <= self.clip_quantile < 0.5:
            raise LlmMiaError(f"--clip-quantile {self.clip_quantile} is not in [0, 0.5); 0 clips nothing")
        if self.statistic not in STATISTICS:
            raise LlmMiaError(f"--statistic {self.statistic!r}: choose one of {', '.join(STATISTICS)}")
        if self.statistic == REFERENCE_GAP and not self.models.reference:
            raise LlmMiaError(
                "--statistic reference-gap subtracts the reference model's match features: name a model that cannot "
                "have seen the work with --reference"
            )
        if self.passage_selection not in SELECTION_RULES:
            raise LlmMiaError(
                f"--passage-selection {self.passage_selection!r}: choose one of {', '.join(SELECTION_RULES)}"
            )
        if self.tokenizer is not None and self.models.offers().tokenizer:
            raise LlmMiaError("--tokenizer is for a target behind an API; a local target cuts with its own tokenizer")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise LlmMiaError(f"--batch-size {self.batch_size!r}: greedy decoding needs a number of prompts >= 1")

    # what ``llm_mia.workflows.dataset_inputs.cut_inputs`` reads: every passage is k + L tokens, no overlap
    @property
    def passage_tokens(self) -> int:
        return self.probe.passage_tokens

    @property
    def passage_stride(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.probe.to_dict(),
            "passage_tokens": self.passage_tokens,
            "decoding": "greedy (argmax of the raw logits)" if self.temperature == 0 else "sampled, best kept",
            "samples": self.samples,
            "temperature": self.temperature,
            "best_of_rule": BEST_OF_RULE if self.samples > 1 else None,
            "api_mode": self.api_mode,
            "suspect_works": self.suspect_works,
            "control_works": self.control_works,
            "alpha": self.alpha,
            "splits": self.splits,
            "permutations": self.permutations,
            "clip_quantile": self.clip_quantile,
            "seed": self.seed,
            "statistic": self.statistic,
            "passage_selection": self.passage_selection,
            "tokenizer": self.tokenizer,
            "batch_size": self.batch_size,
        }


@dataclass(frozen=True)
class Probe:
    """One passage as probed: its first k tokens (and their text) and the true next L tokens (and text)."""

    side: str
    passage: Passage
    prefix_ids: tuple[int, ...]
    target_ids: tuple[int, ...]
    prefix_text: str
    target_text: str


def build_probes(
    passages: Sequence[Passage], sources: Sequence[Source], tokenizer: Any, k: int, side: str
) -> list[Probe]:
    """Each passage's prefix and target, from its source's own tokenization (the one it was cut from)."""
    by_name = {source.name: source for source in sources}
    tokenized: dict[str, tuple[list[int], np.ndarray]] = {}
    probes = []
    for passage in passages:
        source = by_name[passage.source]
        if source.name not in tokenized:
            ids = tokenizer(source.text, add_special_tokens=False, split_special_tokens=True, verbose=False)
            tokenized[source.name] = (list(ids["input_ids"]), token_boundaries(tokenizer, source.text))
        ids, bounds = tokenized[source.name]
        start, end = passage.token_start, passage.token_end
        probes.append(
            Probe(
                side=side,
                passage=passage,
                prefix_ids=tuple(ids[start : start + k]),
                target_ids=tuple(ids[start + k : end]),
                prefix_text=source.text[bounds[start] : bounds[start + k]],
                target_text=source.text[bounds[start + k] : bounds[end]],
            )
        )
    return probes


def _same_tokenizer(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    except AttributeError:
        return False


def passage_seed(seed: int, probe: Probe) -> int:
    """A passage's own sampling seed: from the run's seed and the passage's text (not its place in the run)."""
    return text_seed(seed, probe.prefix_text + probe.target_text)


def continue_probes(
    model: Any,
    probes: Sequence[Probe],
    settings: ExtractionTestSettings,
    *,
    cutting: Any,
    role: str,
    observer: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[list[list[tuple[list[int], str]]], dict[str, Any]]:
    """Per probe, its continuations by ``model`` as (cutting-tokenizer ids, at most L; text), and how they were
    asked. A white-box model with the cutting tokenizer continues the prefix's own token ids; one with another
    tokenizer, and a model behind an API, the prefix's text (``llm_mia.methods.continuation_api``)."""
    L = settings.probe.target_tokens
    seeds = [passage_seed(settings.seed, probe) for probe in probes]

    def log(event: str, indices: list[int], tokens: list[int] | None = None) -> None:
        if observer is not None:
            observer(
                {
                    "event": event,
                    "view": role,
                    "variant": VARIANT,
                    "model": model.spec.name,
                    "documents": [f"{probes[i].side}:{probes[i].passage.id}" for i in indices],
                    "tokens": tokens if tokens is not None else [len(probes[i].prefix_ids) for i in indices],
                }
            )

    if model.offers.endpoint:
        stats_path = _stats_cache_path(settings.cache)
        responses = response_cache(False if stats_path is None else stats_path.with_name("responses.sqlite"))
        requests = [(p.passage.id, p.prefix_text, p.target_text, s) for p, s in zip(probes, seeds, strict=True)]

        def heard(index: int, event: dict[str, Any]) -> None:
            if observer is not None:
                observer({**event, "view": role, "variant": VARIANT, "model": model.spec.name,
                          "documents": [f"{probes[index].side}:{probes[index].passage.id}"]})  # fmt: skip

        try:
            mode, answers = api_continuations(
                model,
                requests,
                target_tokens=L,
                settings=ApiProbeSettings(settings.api_mode, settings.samples, settings.temperature, settings.seed),
                tokenizer=cutting,
                cache=responses,
                observer=heard,
                progress=settings.progress,
            )
        finally:
            if responses is not None:
                responses.close()
        return answers, {"asked_through": mode, "prompt": "the prefix's text"}
    same = _same_tokenizer(model.tokenizer, cutting)
    if same:
        prompts = [list(p.prefix_ids) for p in probes]
    else:
        prompts = [
            model.tokenizer(p.prefix_text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
            for p in probes
        ]

    def as_answer(probe: Probe, ids: Sequence[int]) -> tuple[list[int], str]:
        text = model.tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if same:
            eos = model.tokenizer.eos_token_id
            kept = [int(t) for t in ids if t != eos]
            return kept[:L], text
        return continuation_ids(cutting, probe.prefix_text, text)[:L], text

    label = f"{role} {Path(model.spec.name).name}"
    if settings.temperature == 0:
        cache = _stats_cache(settings.cache)
        try:
            results = greedy_continuations(
                prompts,
                model,
                new_tokens=L,
                batch_size=settings.batch_size,
                cache=cache,
                progress=settings.progress,
                description=f"greedy decoding ({label})",
                observer=lambda event, indices: log(event, indices),
            )
        finally:
            if cache is not None:
                cache.close()
        answers = [[as_answer(p, r.token_ids.tolist())] for p, r in zip(probes, results, strict=True)]
    else:
        log("model call", list(range(len(probes))))
        drawn = sampled_continuations(
            prompts,
            model,
            new_tokens=L,
            samples=settings.samples,
            temperature=settings.temperature,
            seeds=seeds,
            progress=settings.progress,
            description=f"sampling ({label})",
        )
        answers = [[as_answer(p, ids) for ids in samples] for p, samples in zip(probes, drawn, strict=True)]
    return answers, {"asked_through": "white-box", "prompt": "the prefix's token ids" if same else "the prefix's text"}


def _stats_cache_path(cache: bool | str | Path) -> Path | None:
    if cache is False:
        return None
    if cache is True:
        return stats_cache.default_cache_path()  # looked up at the call: a test session points it elsewhere
    return Path(cache)


def _stats_cache(cache: bool | str | Path) -> Any:
    path = _stats_cache_path(cache)
    if path is None:
        return None
    return stats_cache.StatsCache(path)


def probe_rows(
    probes: Sequence[Probe],
    answers: Sequence[Sequence[tuple[list[int], str]]],
    reference: Sequence[Sequence[tuple[list[int], str]]] | None,
    probe_settings: ProbeSettings,
) -> list[dict[str, Any]]:
    """One row per passage: where it is, its texts, every number, and the generated tokens (module docstring)."""
    m, f = probe_settings.min_match, probe_settings.formulaic_tokens
    assert m is not None and f is not None  # ProbeSettings.__post_init__ resolves the defaults
    rows = []
    for index, probe in enumerate(probes):
        chosen, stats = best_of([ids for ids, _ in answers[index]], probe.target_ids)
        ids, text = answers[index][chosen]
        row: dict[str, Any] = {
            "id": f"{probe.side}:{probe.passage.id}" if probe.side in ("suspect", "control") else probe.passage.id,
            "set": probe.side,
            "label": {"suspect": 1, "control": 0}.get(probe.side),
            "group": probe.passage.work,
            "status": "ok",
            **{key: value for key, value in probe.passage.record().items() if key != "id"},
            "passage_sha256": sha256_text(probe.passage.text),
            "prefix_text": probe.prefix_text,
            "target_text": probe.target_text,
            "target_ids": list(probe.target_ids),
            "generated_ids": ids,
            "generated_text": text,
            "chosen_sample": chosen,
            **stats.to_dict(),
            "extracted": stats.extracted(m),
            "formulaic": None,
        }
        if reference is not None:
            ref_index, ref_stats = best_of([r for r, _ in reference[index]], probe.target_ids)
            row.update(
                {
                    "ref_match_tokens": ref_stats.match_tokens,
                    "ref_lcs_tokens": ref_stats.lcs_tokens,
                    "ref_generated_ids": reference[index][ref_index][0],
                    "ref_generated_text": reference[index][ref_index][1],
                    "formulaic": ref_stats.match_tokens >= f,
                }
            )
        row["feature_values"] = features(stats, m)
        if reference is not None:
            row["ref_feature_values"] = features(ref_stats, m)
        rows.append(row)
    return rows


def load_extraction_models(settings: ExtractionTestSettings) -> tuple[dict[str, Any], Any]:
    """The models (target, reference) and the cutting tokenizer; refuses k + L longer than a local window."""
    refuse_remote_target(settings.models, tokenizer=settings.tokenizer)
    models = load_models(settings.models)
    for model in models.values():
        if model.offers.weights:
            check_fits(  # a model that offers weights is a local one
                cast(LoadedModel, model),
                prefix_tokens=settings.probe.prefix_tokens,
                new_tokens=settings.probe.target_tokens,
            )
    return models, cutting_tokenizer(settings, models)


def cutting_tokenizer(settings: ExtractionTestSettings, models: dict[str, Any] | None = None) -> Any:
    """The tokenizer passages are cut and matches counted with: the target's, or ``--tokenizer``'s for a target
    behind an API (its files only)."""
    if settings.tokenizer is None and models is not None:
        return models["target"].tokenizer
    from transformers import AutoTokenizer

    spec = ModelSpec(name=settings.tokenizer) if settings.tokenizer else settings.models.specs()["target"]
    return AutoTokenizer.from_pretrained(
        str(resolve_model_directory(spec)), local_files_only=True, trust_remote_code=settings.models.trust_remote_code
    )


@dataclass
class ExtractionTestReport:
    """Everything an extraction test produced: per-passage rows, the work-level result, the report, the record."""

    result: DatasetInferenceResult
    report: dict[str, Any]
    record: dict[str, Any]
    rows: list[dict[str, Any]]
    passage_rows: list[dict[str, Any]]

    @property
    def verdict(self) -> str:
        return self.result.verdict

    def summary_lines(self) -> list[str]:
        return summary_lines(self.report)

    def write(self, directory: str | Path) -> list[Path]:
        """report.json, summary.md, extraction.jsonl (+ run record: every passage's numbers and generated
        tokens), passages.jsonl, work_test.png (work-level design) and match_lengths.png."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = [write_rows(self.rows, directory / "extraction.jsonl")]
        written.append(write_run_record(directory / "extraction.jsonl", self.record))
        written.append(write_rows(self.passage_rows, directory / "passages.jsonl"))
        written.append(write_json(directory / "report.json", self.report))
        written.append(write_text(directory / "summary.md", _markdown(self.report)))
        if self.result.work_test is not None:
            written.append(plot_work_test(self.result, directory))
        written.append(plot_match_lengths(self.rows, directory, self.report["settings"]["target_tokens"]))
        return written


def run_extraction_test(
    suspect: str | Path, control: str | Path, settings: ExtractionTestSettings | None = None
) -> ExtractionTestReport:
    """The extraction test of the work at ``suspect`` against the control works at ``control`` (module docstring)."""
    settings = settings or ExtractionTestSettings()
    models, cutting = load_extraction_models(settings)
    try:
        inputs = cut_inputs(suspect, control, settings, tokenizer=cutting)
    except InputError as error:
        if "--passage-tokens" not in str(error):
            raise
        raise InputError(
            f"{error} (here the passage length is k + L = {settings.probe.prefix_tokens} + "
            f"{settings.probe.target_tokens}: lower --prefix-tokens or --target-tokens)"
        ) from None
    return probe_and_test(inputs, settings, models=models, cutting=cutting)


def probe_and_test(
    inputs: Any, settings: ExtractionTestSettings, *, models: dict[str, Any], cutting: Any, observer: Any = None
) -> ExtractionTestReport:
    """Probe every passage of ``inputs`` (``llm_mia.workflows.dataset_inputs.DatasetInputs``) under the target (and the
    reference) model, run the work-level test on the passages that are not formulaic, and assemble the report.
    ``observer`` hears of every model call and request (the evidence query log)."""
    k = settings.probe.prefix_tokens
    probes = build_probes(inputs.suspect_passages, inputs.suspect_sources, cutting, k, "suspect")
    probes += build_probes(inputs.control_passages, inputs.control_sources, cutting, k, "control")
    answers, asked = continue_probes(
        models["target"], probes, settings, cutting=cutting, role="target", observer=observer
    )
    reference, ref_asked = None, None
    if "reference" in models:
        reference, ref_asked = continue_probes(
            models["reference"], probes, settings, cutting=cutting, role="reference", observer=observer
        )
    rows = probe_rows(probes, answers, reference, settings.probe)
    keep = [i for i, row in enumerate(rows) if not row["formulaic"]]
    suspect_keep = [i for i in keep if rows[i]["set"] == "suspect"]
    control_keep = [i for i in keep if rows[i]["set"] == "control"]
    if len(suspect_keep) < MIN_PASSAGES_PER_SET or len(control_keep) < 2 * MIN_PASSAGES_PER_SET:
        left = sum(bool(row["formulaic"]) for row in rows)
        raise InputError(
            f"{len(suspect_keep)} suspect and {len(control_keep)} control passages remain for the test "
            f"({left} formulaic passage(s) left out); it needs at least {MIN_PASSAGES_PER_SET} and "
            f"{2 * MIN_PASSAGES_PER_SET}. Add text, or lower --prefix-tokens / --target-tokens"
        )
    gap = settings.statistic == REFERENCE_GAP

    def x(indices: list[int]) -> list[list[float]]:
        if gap:
            return [list(np.subtract(rows[i]["feature_values"], rows[i]["ref_feature_values"])) for i in indices]
        return [rows[i]["feature_values"] for i in indices]

    names = [f"{n} gap" for n in FEATURES] if gap else list(FEATURES)
    result = dataset_inference(
        x(suspect_keep),
        x(control_keep),
        suspect_works=[rows[i]["work"] for i in suspect_keep],
        control_works=[rows[i]["work"] for i in control_keep],
        suspect_texts=[probes[i].passage.text for i in suspect_keep],
        control_texts=[probes[i].passage.text for i in control_keep],
        suspect_tokens=[settings.passage_tokens] * len(suspect_keep),
        control_tokens=[settings.passage_tokens] * len(control_keep),
        statistic=settings.statistic,
        passage_selection=settings.passage_selection,
        alpha=settings.alpha,
        splits=settings.splits,
        permutations=settings.permutations,
        seed=settings.seed,
        clip_quantile=settings.clip_quantile,
        feature_names=names,
    )
    entered = _entered(result, suspect_keep, control_keep)
    for index, row in enumerate(rows):
        row["in_test"] = index in entered
    described = {role: model.describe() for role, model in models.items()}
    described["target"]["probes"] = asked
    if ref_asked is not None:
        described["reference"]["probes"] = ref_asked
    record = run_record(
        "llm-mia extract-test",
        inputs={
            side: {
                "path": str(path),
                "sources": len(sources),
                "works": len({s.work_id for s in sources}),
                "work_unit": unit,
                "sha256": sha256_texts([s.text for s in sources]),
            }
            for side, path, sources, unit in (
                ("suspect", inputs.suspect, inputs.suspect_sources, settings.suspect_works),
                ("control", inputs.control, inputs.control_sources, settings.control_works),
            )
        },
        models=described,
        settings=settings.to_dict(),
        execution={"per_passage_seed": "sha256(seed, passage text): independent of the run"},
    )
    evidence = passage_evidence(rows, settings.probe, has_reference="reference" in models)
    report = {
        **record,
        "verdict": result.verdict,
        "verdict_sentence": result.sentence(),
        "features": names,
        "passages": {
            "passage_tokens": settings.passage_tokens,
            "shared_left_out": inputs.shared,
            **{
                side: {
                    "works": len({r["work"] for r in rows if r["set"] == side}),
                    "passages": sum(r["set"] == side for r in rows),
                    "formulaic": sum(bool(r["formulaic"]) for r in rows if r["set"] == side),
                    "tested": sum(r["in_test"] for r in rows if r["set"] == side),
                    "cutting": cut.to_dict(),
                }
                for side, cut in (("suspect", inputs.suspect_cut), ("control", inputs.control_cut))
            },
        },
        "passage_evidence": evidence,
        "result": result.to_dict(),
    }
    passage_rows = [
        {"set": row["set"], **{k: row[k] for k in ("id", "source", "work", "char_start", "char_end")},
         "token_start": row["token_start"], "token_end": row["token_end"], "text_sha256": row["passage_sha256"],
         "formulaic": row["formulaic"], "in_test": row["in_test"]}
        for row in rows
    ]  # fmt: skip
    for row in passage_rows:
        row["id"] = row["id"].split(":", 1)[1]
    return ExtractionTestReport(result=result, report=report, record=record, rows=rows, passage_rows=passage_rows)


def _entered(result: DatasetInferenceResult, suspect: list[int], control: list[int]) -> set[int]:
    """Row indices of the passages the work-level test read (all kept ones in the passage-level design)."""
    work = result.work_test
    kept = [*suspect, *control]
    if work is None or work.selection is None:
        return set(kept)
    return {kept[i] for i in work.selection.indices}


def passage_evidence(rows: Sequence[dict[str, Any]], probe: ProbeSettings, *, has_reference: bool) -> dict[str, Any]:
    """The per-passage claim (module docstring, step 5): the suspect passages extracted and not formulaic, the
    formulaic ones apart, and the control works' false-extraction rate with its exact interval."""
    m = probe.min_match

    def side(name: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["set"] == name]

    suspect, control = side("suspect"), side("control")
    claimed = [r for r in suspect if r["match_tokens"] >= m and not r["formulaic"]]
    formulaic = [r for r in rows if r["formulaic"]]
    control_kept = [r for r in control if not r["formulaic"]]
    false = [r for r in control_kept if r["match_tokens"] >= m]
    low, high = clopper_pearson(len(false), len(control_kept)) if control_kept else (0.0, 1.0)

    def brief(row: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "source", "work", "char_start", "char_end", "match_tokens", "lcs_tokens", "exact")
        return {k: row[k] for k in keys} | {"ref_match_tokens": row.get("ref_match_tokens")}

    suspect_kept = [r for r in suspect if not r["formulaic"]]
    sentence = (
        f"{len(claimed)} of {len(suspect_kept)} passages of the suspect work were continued verbatim for at least "
        f"{m} of {probe.target_tokens} tokens by the target model"
        + (
            f" and not by the reference model; {len(formulaic)} passage(s) the reference model also continued "
            f"(for at least {probe.formulaic_tokens} tokens) are formulaic and left out"
            if has_reference
            else "; the chance check did not run (no reference model), so formulaic text is not excluded"
        )
        + f". On the control works the target did so for {len(false)} of {len(control_kept)} passages (false-"
        f"extraction rate {len(false) / max(len(control_kept), 1):.3g}, exact 95% interval [{low:.3g}, {high:.3g}])"
    )
    return {
        "min_match": m,
        "formulaic_tokens": probe.formulaic_tokens,
        "chance_check": "ran" if has_reference else "not run: no reference model",
        "extracted": [brief(r) for r in claimed],
        "formulaic": [brief(r) | {"set": r["set"]} for r in formulaic],
        "suspect_passages": len(suspect_kept),
        "control_passages": len(control_kept),
        "control_extracted": len(false),
        "control_rate_interval": [low, high],
        "mean_match_tokens": {
            "suspect": float(np.mean([r["match_tokens"] for r in suspect_kept])) if suspect_kept else None,
            "control": float(np.mean([r["match_tokens"] for r in control_kept])) if control_kept else None,
        },
        "sentence": sentence,
        "assumption": PASSAGE_ASSUMPTION,
        "guarantee": PASSAGE_GUARANTEE,
    }


def plot_match_lengths(rows: Sequence[dict[str, Any]], directory: Path, target_tokens: int) -> Path:
    """``match_lengths.png``: the share of passages with a match of at least j tokens, j = 0..L, for the suspect
    work and the control works under the target model, and under the reference model where it ran."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    j = np.arange(target_tokens + 1)
    curves = [("suspect", "match_tokens", "suspect work, target", "C3", "-"),
              ("control", "match_tokens", "control works, target", "C0", "-"),
              ("suspect", "ref_match_tokens", "suspect work, reference", "C3", ":"),
              ("control", "ref_match_tokens", "control works, reference", "C0", ":")]  # fmt: skip
    for side, key, label, colour, style in curves:
        values = np.array([r[key] for r in rows if r["set"] == side and r.get(key) is not None])
        if len(values):
            axes.step(j, [(values >= t).mean() for t in j], where="post", color=colour, linestyle=style, label=label)
    axes.set_yscale("symlog", linthresh=0.01)
    axes.set_xlabel("exact-match length j (tokens of the true continuation, before the first mismatch)")
    axes.set_ylabel("share of passages with a match >= j")
    axes.set_title("Greedy continuation of each passage's prefix")
    axes.legend(fontsize=8)
    path = directory / "match_lengths.png"
    figure.savefig(path, dpi=120)
    return path


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The printed summary (also the top of summary.md)."""
    settings, passages, evidence, inference = (
        report["settings"], report["passages"], report["passage_evidence"], report["result"]
    )  # fmt: skip
    models = report["models"]
    lines = [
        f"extraction test: prefix k = {settings['prefix_tokens']} tokens, target L = {settings['target_tokens']}, "
        f"extracted = exact match of >= {settings['min_match']} tokens; {settings['decoding']}"
        + (
            f" ({settings['samples']} samples at temperature {settings['temperature']:g})"
            if settings["samples"] > 1
            else ""
        )
        + f"; target {models['target']['name']} ({models['target']['probes']['asked_through']})"
        + (f"; reference {models['reference']['name']}" if "reference" in models else "; no reference model"),
        f"suspect: {passages['suspect']['works']} work(s), {passages['suspect']['passages']} passages "
        f"({passages['suspect']['formulaic']} formulaic, {passages['suspect']['tested']} in the test); control: "
        f"{passages['control']['works']} works, {passages['control']['passages']} passages "
        f"({passages['control']['formulaic']} formulaic, {passages['control']['tested']} in the test)",
        f"per passage: {evidence['sentence']}",
    ]
    for row in evidence["extracted"][:10]:
        lines.append(
            f"  extracted: {row['id']} ({row['source']}, characters {row['char_start']}-{row['char_end']}): "
            f"{row['match_tokens']} tokens matched, longest common run {row['lcs_tokens']}"
            + (f", reference {row['ref_match_tokens']}" if row["ref_match_tokens"] is not None else "")
        )
    if len(evidence["extracted"]) > 10:
        lines.append(f"  ... and {len(evidence['extracted']) - 10} more (report.json, extraction.jsonl)")
    lines.append(f"design: {inference['design']} ({inference['design_reason']})")
    work = inference["work_test"]
    if work is not None:
        lines.append(
            f"work-level test on {', '.join(report['features'])}: suspect {work['statistic']:+.2f} work-level SDs "
            f"above the control works; p = {format_p_value(work['p_value'])} over {work['labellings']} labellings "
            f"(smallest possible {format_p_value(work['smallest_possible_p'])}; {work['validity']})"
        )
    for guard in inference["safeguards"]:
        state = ("FIRED" if guard["withholds"] else "differs (reported)") if guard["fired"] else "ok"
        lines.append(f"safeguard {guard['name']}: {state if guard['ran'] else '-'}: {guard['detail']}")
    lines += [f"qualification: {q}" for q in inference["qualifications"]]
    lines.append(f"assumption (work-level verdict): {inference['assumption']}")
    lines.append(f"guarantee (work-level verdict): {inference['guarantee']}")
    lines.append(f"assumption (per passage): {evidence['assumption']}")
    lines.append(f"guarantee (per passage): {evidence['guarantee']}")
    lines.append(f"verdict: {report['verdict_sentence']}")
    return lines


def _markdown(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            "# Verbatim extraction test",
            "",
            f"**Verdict:** {report['verdict_sentence']}",
            "",
            f"**Per passage:** {report['passage_evidence']['sentence']}",
            "",
            "```",
            *summary_lines(report),
            "```",
            "",
            "![match lengths](match_lengths.png)",
            "",
            *(["![work-level test](work_test.png)", ""] if report["result"]["work_test"] is not None else []),
            "Every passage's prefix, true continuation, generated tokens and numbers: `extraction.jsonl`; where each "
            "passage comes from: `passages.jsonl`.",
            "",
        ]
    )


# ------------------------------------------------------------------ probing without controls (no verdict)


@dataclass
class ExtractionProbeRun:
    """Per-passage probes of texts with no control works: numbers and generated tokens, no verdict."""

    rows: list[dict[str, Any]]
    record: dict[str, Any]
    too_short: list[str]

    def write(self, path: str | Path) -> list[Path]:
        """The rows (``.jsonl`` or ``.csv``) and the run record beside them."""
        return [write_rows(self.rows, path), write_run_record(path, self.record)]

    def table_lines(self) -> list[str]:
        """One line per passage: the match lengths, exactness and the start of the continuation."""
        from llm_mia.io.tables import cell, text_table

        columns = ["id", "match_tokens", "lcs_tokens", "exact"] + (
            ["ref_match_tokens"] if "reference" in self.record["models"] else []
        )
        table = [[cell(row[c]) for c in columns] + [repr(row["generated_text"][:48])] for row in self.rows]
        return text_table(["passage", *columns[1:], "continuation"], table)

    def summary_lines(self) -> list[str]:
        settings = self.record["settings"]
        lines = [
            f"{len(self.rows)} passage(s) of {settings['passage_tokens']} tokens probed: the first "
            f"{settings['prefix_tokens']} continued greedily, compared with the next {settings['target_tokens']}"
        ]
        if self.too_short:
            lines.append(
                f"{len(self.too_short)} text(s) shorter than k + L = {settings['passage_tokens']} tokens give no "
                f"passage: {', '.join(self.too_short[:8])}{' ...' if len(self.too_short) > 8 else ''}"
            )
        lines.append("per-passage numbers only: no verdict (a verdict needs control works: --suspect and --control)")
        lines.append(f"assumption (per passage): {PASSAGE_ASSUMPTION}")
        return lines


def run_extraction_probe(
    documents: Sequence[Document], settings: ExtractionTestSettings | None = None, *, source: str = "input"
) -> ExtractionProbeRun:
    """Cut every document into passages of k + L tokens (``llm_mia.io.passages``), probe each (and under the
    reference model when given), and return the rows; no work-level test, no verdict."""
    settings = settings or ExtractionTestSettings()
    if not documents:
        raise InputError(f"{source}: no documents; nothing to probe")
    models, cutting = load_extraction_models(settings)
    sources = [Source(name=d.id, text=d.text, work=d.group or d.id) for d in documents]
    passages, cut = passages_from_sources(sources, tokenizer=cutting, passage_tokens=settings.passage_tokens)
    if not passages:
        raise InputError(
            f"{source}: every text is shorter than k + L = {settings.probe.prefix_tokens} + "
            f"{settings.probe.target_tokens} = {settings.passage_tokens} tokens, so no passage can be probed; lower "
            f"--prefix-tokens / --target-tokens"
        )
    probes = build_probes(passages, sources, cutting, settings.probe.prefix_tokens, "input")
    answers, asked = continue_probes(models["target"], probes, settings, cutting=cutting, role="target")
    reference = None
    if "reference" in models:
        reference, _ = continue_probes(models["reference"], probes, settings, cutting=cutting, role="reference")
    rows = probe_rows(probes, answers, reference, settings.probe)
    labels = {d.id: d.label for d in documents}
    for row in rows:
        row["label"] = labels.get(row["source"])
        del row["feature_values"]
        row.pop("ref_feature_values", None)
    described = {role: model.describe() for role, model in models.items()}
    described["target"]["probes"] = asked
    record = run_record(
        "llm-mia extract-test",
        inputs={"source": source, "documents": len(documents), "sha256": sha256_texts([d.text for d in documents])},
        models=described,
        settings=settings.to_dict(),
        execution={"cutting": cut.to_dict()},
    )
    return ExtractionProbeRun(rows=rows, record=record, too_short=list(cut.too_short))


def request_estimate_lines(
    settings: ExtractionTestSettings,
    *,
    suspect: str | Path | None = None,
    control: str | Path | None = None,
    documents: Sequence[Document] = (),
    price_per_million_tokens: float | None = None,
) -> list[str]:
    """What an extraction run would send to each model behind an API (requests, tokens, the cost at the price
    given), for a test (``suspect`` and ``control``) or for probes of ``documents``; sends nothing. The passages
    are cut with the cutting tokenizer (its files only; no weights load)."""
    from llm_mia.methods.continuation_api import estimate

    remote = settings.models.remote_names
    if not remote:
        raise LlmMiaError("--dry-run counts what a model behind an API (--model api:NAME) would be sent; none is named")
    refuse_remote_target(settings.models, tokenizer=settings.tokenizer)
    tokenizer = cutting_tokenizer(settings)
    k = settings.probe.prefix_tokens
    if suspect is not None and control is not None:
        inputs = cut_inputs(suspect, control, settings, tokenizer=tokenizer)
        probes = build_probes(inputs.suspect_passages, inputs.suspect_sources, tokenizer, k, "suspect")
        probes += build_probes(inputs.control_passages, inputs.control_sources, tokenizer, k, "control")
    else:
        sources = [Source(name=d.id, text=d.text, work=d.group or d.id) for d in documents]
        passages, _ = passages_from_sources(sources, tokenizer=tokenizer, passage_tokens=settings.passage_tokens)
        probes = build_probes(passages, sources, tokenizer, k, "input")
    prompts = [p.prefix_text for p in probes]
    return [
        line
        for name in remote
        for line in estimate(
            name, prompts, target_tokens=settings.probe.target_tokens, samples=settings.samples
        ).describe(price_per_million_tokens)
    ]
