"""Run a known-split benchmark end to end: split -> train -> score every scorer -> evaluate. Returns the
numbers; :func:`llm_mia.workflows.benchmark_report.write_report` writes them.

Splits and trained models are cached (see :mod:`llm_mia.known_split.splits` and
:mod:`llm_mia.known_split.training`), so a second run only scores. For every saved epoch of the target model,
the benchmark scores the members, the non-members and the calibration documents with every registered scorer
(``reference`` reads the reference model: SmolLM2 before fine-tuning, or a GPT-2 trained the same way on
disjoint text), then evaluates:

* per scorer: AUROC with its interval, TPR at 0.1/1/5% FPR with the n of non-members each rests on, the
  blind baseline beside them (``llm_mia.workflows.evaluate``);
* per scorer, a threshold calibrated at a target FPR on the *calibration* split (known non-members never
  evaluated), with the FPR it actually reaches on the evaluation non-members (Clopper-Pearson interval) and the
  share of members it flags (``llm_mia.stats.verdicts.FprCalibrator``);
* a control: the same likelihood scorers under the reference model, which never saw the members. It should sit
  near AUROC 0.5; if it does not, the split itself is biased.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypedDict

from llm_mia.errors import LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.known_split.model_cache import TrainedModels
from llm_mia.known_split.presets import BenchmarkConfig
from llm_mia.known_split.splits import BenchmarkSplit, build_split
from llm_mia.stats.verdicts import FprCheckRecord
from llm_mia.workflows.evaluate import Evaluation

logger = logging.getLogger(__name__)


class CalibrationAtFpr(TypedDict):
    """A threshold fitted on the calibration split at ``target_fpr`` and measured on the evaluation set
    (:func:`calibrated_rates`): ``results.json``'s per-scorer calibration entry, read by the report and the demo."""

    target_fpr: float
    n_controls: int
    threshold: float
    heldout_nonmembers: FprCheckRecord
    members_flagged: int
    n_members: int
    tpr: float
    tpr_ci: list[float] | None


@dataclass
class EpochResult:
    """One target snapshot evaluated. ``frame``: the score rows (all scored documents); ``evaluation``: members
    vs non-members with the blind baseline; ``calibration``: per scorer, threshold fitted on the calibration
    split and checked on the non-members (None where too few controls); ``control``: likelihood scorers under the
    reference model (should be near chance)."""

    epoch: int
    frame: Any
    evaluation: Evaluation
    calibration: dict[str, CalibrationAtFpr | None]
    control: Evaluation
    scoring_seconds: float
    models: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict)  # run record of the score rows


@dataclass
class BenchmarkResult:
    config: BenchmarkConfig
    split: BenchmarkSplit
    target: TrainedModels
    reference: TrainedModels | None
    epochs: list[EpochResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    scorers: tuple[str, ...] | None = None  # the scorer specs that replaced the default set, when given
    torch_threads: int | None = None  # the CPU threads the run trained and scored with (reports name these)
    dtype: str = "float32"  # the precision the snapshots were scored in (training is float32)
    dtype_in_effect: str = "float32"  # what ran (mixed falls back to float32 without native bfloat16 products)

    def epoch(self, epoch: int) -> EpochResult:
        for result in self.epochs:
            if result.epoch == epoch:
                return result
        raise KeyError(epoch)


def train_models(
    config: BenchmarkConfig,
    split: BenchmarkSplit,
    *,
    device: str = "cpu",
    cache_root: Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> tuple[TrainedModels, TrainedModels | None]:
    """Train (or re-use) the target model and, for from-scratch, the reference model."""
    from llm_mia.known_split.training import fine_tune, train_from_scratch
    from llm_mia.known_split.training_loop import device_for_training

    device = device_for_training(device)
    if config.recipe == "fine-tune":
        target = fine_tune(
            split.members,
            config=config.training,
            base=config.base_model,
            device=device,
            cache_root=cache_root,
            use_cache=use_cache,
            progress=progress,
            held_out=split.calibration,
        )
        return target, None
    assert config.architecture is not None  # checked in BenchmarkConfig
    tokenizer_texts = [d.text for d in split.tokenizer]
    train = partial(
        train_from_scratch,
        tokenizer_texts=tokenizer_texts,
        architecture=config.architecture,
        device=device,
        cache_root=cache_root,
        use_cache=use_cache,
        progress=progress,
    )
    target = train(split.members, config=config.training, role="target", held_out=split.calibration)
    # the reference model is the attacker's: trained without the target's defense
    reference_training = dataclasses.replace(config.training, seed=config.training.seed + 1, defense=None)
    reference = train(split.reference, config=reference_training, role="reference")
    return target, reference


def calibrated_rates(
    frame: Any, column: str, *, calibration_ids: set[str], fpr: float, confidence: float = 0.95
) -> CalibrationAtFpr | None:
    """Fit a threshold at ``fpr`` on the calibration rows' scores, then measure it on the labelled rows.

    Returns the threshold, the FPR reached on the evaluation non-members (with a Clopper-Pearson interval) and
    the members flagged (TPR, with its interval); None when the calibration split is too small for ``fpr``.
    """
    import numpy as np

    from llm_mia.stats.metrics import clopper_pearson
    from llm_mia.stats.verdicts import FprCalibrator, min_controls

    ok = (frame["status"] == "ok").to_numpy()
    values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    usable = ok & np.isfinite(values)
    is_calibration = frame["id"].astype(str).isin(calibration_ids).to_numpy()
    controls = values[usable & is_calibration]
    if len(controls) < min_controls(fpr):
        return None
    label = frame["label"].to_numpy(dtype=np.float64, na_value=np.nan)
    members, nonmembers = values[usable & (label == 1)], values[usable & (label == 0)]
    calibrator = FprCalibrator(fpr=fpr, confidence=confidence).fit(controls)
    check = calibrator.check_fpr(nonmembers)
    flagged = int(calibrator.predict(members).sum())
    return {
        "target_fpr": fpr,
        "n_controls": len(controls),
        "threshold": calibrator.threshold_,
        "heldout_nonmembers": check.to_dict(),
        "members_flagged": flagged,
        "n_members": len(members),
        "tpr": flagged / len(members) if len(members) else float("nan"),
        "tpr_ci": list(clopper_pearson(flagged, len(members), confidence=confidence)) if len(members) else None,
    }


RECALL_SHOTS = 5


def outside_documents(config: BenchmarkConfig, split: BenchmarkSplit, cache_root: Path | None) -> tuple[Path, Path]:
    """Two files of known non-members that no split drew from the cleaned pool, disjoint from everything scored:
    ReCaLL's prefix (``RECALL_SHOTS`` documents, a seeded choice) and DC-PDD's frequency corpus (all the rest).
    Written once per split under ``<cache>/bench/extras/``."""
    import json

    import numpy as np

    from llm_mia.io.identity import cache_dir
    from llm_mia.known_split.splits import prepare_pool

    directory = (cache_root or cache_dir()) / "bench" / "extras" / split.fingerprint[:16]
    prefix, corpus = directory / "recall-prefix.jsonl", directory / "frequency-corpus.jsonl"
    if prefix.is_file() and corpus.is_file():
        return prefix, corpus
    pool, _ = prepare_pool(config.split)
    used = {d.id for part in split.parts.values() for d in part}
    rest = sorted((d for d in pool if d.id not in used), key=lambda d: d.id)
    if len(rest) <= RECALL_SHOTS:
        raise LlmMiaError(f"only {len(rest)} pool documents lie outside the split: too few for ReCaLL and DC-PDD")
    order = np.random.default_rng(config.split.seed).permutation(len(rest))
    chosen = [rest[i] for i in order]
    directory.mkdir(parents=True, exist_ok=True)
    for path, documents in ((prefix, chosen[:RECALL_SHOTS]), (corpus, chosen[RECALL_SHOTS:])):
        lines = "".join(json.dumps({"id": d.id, "text": d.text}, ensure_ascii=False) + "\n" for d in documents)
        path.write_text(lines, encoding="utf-8")
    return prefix, corpus


def benchmark_calls(
    config: BenchmarkConfig,
    split: BenchmarkSplit,
    cache_root: Path | None,
    *,
    extras: bool,
    scorers: Sequence[str] | None = None,
) -> list[Any]:
    """Every default scorer, and with ``extras`` the opt-in ones (DC-PDD on pool text outside the split, ReCaLL
    after pool texts outside the split, GradNorm), named by their scorer alone.

    ``scorers``: specs (as ``llm-mia score --scorers`` takes them) that replace this set; a ``dc_pdd`` or ``recall``
    whose spec names no ``corpus`` or ``prefix`` reads the same outside documents (the packaged Wikipedia corpus
    would hold the members themselves), and its column keeps the name the spec gives it.
    """
    import dataclasses

    from llm_mia.scoring.scorers import parse_scorer_specs

    if scorers:
        calls = parse_scorer_specs(list(scorers), has_reference=True)
        outside = {"dc_pdd": "corpus", "recall": "prefix"}
        missing = [  # left at the default (DC-PDD's packaged Wikipedia would count the members' own tokens)
            c
            for c in calls
            if c.scorer.name in outside
            and c.params[outside[c.scorer.name]] == c.scorer.defaults[outside[c.scorer.name]]
        ]
        if not missing:
            return calls
        prefix, corpus = outside_documents(config, split, cache_root)
        given = {"corpus": str(corpus), "prefix": str(prefix)}
        return [
            dataclasses.replace(
                c, label=c.column, params={**c.params, outside[c.scorer.name]: given[outside[c.scorer.name]]}
            )
            if c in missing
            else c
            for c in calls
        ]
    calls = parse_scorer_specs(None, has_reference=True)
    if not extras:
        return calls
    prefix, corpus = outside_documents(config, split, cache_root)
    specs = [f"dc_pdd:corpus={corpus}", f"recall:prefix={prefix}", "gradnorm"]
    extra = parse_scorer_specs(specs, has_reference=True)
    return calls + [dataclasses.replace(call, label=call.scorer.name) for call in extra]


def fit_recall_prefix(calls: Sequence[Any], loaded: Any, echo: Callable[[str], None]) -> list[Any]:
    """ReCaLL's prefix cut to the most shots (of those in its file) that take at most half the model's context
    (small models' windows cannot hold five summaries); ReCaLL is dropped, with a line saying so, if none fit."""
    import dataclasses

    from llm_mia.engine.extract import condition_ids

    fitted = []
    for call in calls:
        if call.scorer.name != "recall":
            fitted.append(call)
            continue
        _, texts = call.scorer.condition(**call.params)
        shots = 0
        for m in range(1, len(texts) + 1):
            prefix, _ = call.scorer.condition(**{**call.params, "shots": m})
            if len(condition_ids(loaded, prefix)) > loaded.context_length // 2:
                break
            shots = m
        if shots == 0:
            echo("recall: not run (one prefix text takes more than half the model's context)")
            continue
        echo(f"recall: {shots} prefix text(s) outside the split, within half the {loaded.context_length}-token context")
        fitted.append(dataclasses.replace(call, params={**call.params, "shots": shots}))
    return fitted


def score_snapshot(
    documents: Sequence[Document],
    *,
    target: Any,
    reference: Any = None,
    reference_stats: list[Any] | None = None,
    batch_size: int = 8,
    progress: bool = True,
    calls: Sequence[Any] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any], list[dict[str, Any]]]:
    """Every registered scorer on ``documents``, one extraction per view.

    The reference model's extraction can be passed in (``reference_stats``) instead of the model, so a fixed
    reference (SmolLM2 before fine-tuning) is run once for all snapshots. Returns the score rows, the control
    rows (the scorers that read only the target, applied to the reference model's extraction: no extra pass),
    the reference extraction, and the scorers as the run record states them (with what each one's ``prepare``
    built, e.g. DC-PDD's frequency table: ``llm_mia.scoring.pipeline.ScoringResult.scorers``).
    """
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.scoring.pipeline import compute_scores, extract_views, score_rows
    from llm_mia.scoring.scorers import parse_scorer_specs

    calls = list(calls) if calls is not None else parse_scorer_specs(None, has_reference=True)
    settings = ExtractionSettings(batch_size=batch_size, progress=progress)
    given = {}
    if reference_stats is not None:
        given["reference"] = reference_stats
    elif reference is None:
        raise LlmMiaError("score_snapshot needs a reference model or its extraction")
    models = {"target": target} if reference is None else {"target": target, "reference": reference}
    scored = compute_scores(documents, calls, models=models, settings=settings, given=given)
    rows, stats = scored.rows, scored.stats
    if "reference" not in stats:  # no scorer read the reference model, but the control does
        stats.update(extract_views(documents, ["reference"], models=models, settings=settings))
    control_calls = [call for call in calls if call.scorer.views == ("target",)]
    control_rows = score_rows(documents, control_calls, {"target": stats["reference"]}, scored.prepared)
    return rows, control_rows, stats["reference"], scored.scorers


def base_extraction(
    config: BenchmarkConfig, documents: Sequence[Document], *, dtype: str, device: str, progress: bool
) -> tuple[list[Any], dict[str, Any]]:
    """The fine-tune recipe's base model read once: its extraction of every document (the reference view of every
    snapshot, since the base model does not change) and its description for the records. The model is released
    before any snapshot loads, so that scoring holds one model at a time."""
    from llm_mia.backends.local import ModelSpec, load_model
    from llm_mia.backends.memory import release_freed_memory
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.scoring.pipeline import extract_views

    base = load_model(ModelSpec(name=config.base_model, dtype=dtype, device=device))
    settings = ExtractionSettings(batch_size=config.scoring_batch_size, progress=progress)
    stats = extract_views(documents, ["reference"], models={"reference": base}, settings=settings)["reference"]
    description = base.describe()
    del base
    release_freed_memory()
    return stats, description


def run_threads(threads: int | str | None, echo: Callable[[str], None]) -> int | None:
    """The torch threads a known-split run uses: a number as given, None for torch's own setting, or for ``auto``
    the cores other work leaves free now (``llm_mia.engine.threads``), passed to ``echo`` so the log says which."""
    from llm_mia.engine.threads import AUTO, resolve_threads

    resolved = resolve_threads(threads)
    if threads == AUTO:
        echo(f"torch threads: {resolved} (--threads auto: the cores other work leaves free now)")
    return resolved


def run_benchmark(
    config: BenchmarkConfig,
    *,
    device: str = "cpu",
    cache_root: Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    threads: int | str | None = None,
    echo: Callable[[str], None] = logger.info,
    extra_scorers: bool = True,
    scorers: Sequence[str] | None = None,
    dtype: str = "float32",
) -> BenchmarkResult:
    """Run a benchmark end to end and return every number (see module docstring); nothing is written.

    ``extra_scorers``: also the opt-in scorers DC-PDD, ReCaLL and GradNorm (:func:`benchmark_calls`), reading known
    non-members outside the split (:func:`outside_documents`); the demo leaves them out. ``scorers``: scorer specs
    that replace the whole set (e.g. ``["loss", "neighbourhood:n=10"]``), scored with the cached trained models.

    ``device``: where to train and score (``cpu``; ``cuda`` or ``auto`` use a GPU when there is one; the
    determinism guarantee is for CPU). ``use_cache=False`` rebuilds the split and retrains. ``threads``: torch
    CPU threads for training and scoring (None: torch's default; ``auto``: :func:`run_threads`). ``echo`` receives
    one line per step (the CLI prints them). ``dtype``: the precision the snapshots (and the reference model) are
    scored in (``llm_mia.backends.local.ModelSpec``); training is always float32, so every dtype scores the same
    cached models.
    """
    import torch

    from llm_mia.known_split.training_loop import torch_threads

    with torch_threads(run_threads(threads, echo)):
        result = _run(
            config,
            device=device,
            cache_root=cache_root,
            use_cache=use_cache,
            progress=progress,
            echo=echo,
            extra_scorers=extra_scorers,
            scorers=scorers,
            dtype=dtype,
        )
        # read here, while the run's count is in effect: the report is written after it is restored
        return dataclasses.replace(result, torch_threads=torch.get_num_threads())


def _run(
    config: BenchmarkConfig,
    *,
    device: str,
    cache_root: Path | None,
    use_cache: bool,
    progress: bool,
    echo: Callable[[str], None],
    extra_scorers: bool = True,
    scorers: Sequence[str] | None = None,
    dtype: str = "float32",
) -> BenchmarkResult:
    import pandas as pd

    from llm_mia.backends.local import ModelSpec, load_model, precision_in_effect
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.io.identity import sha256_texts
    from llm_mia.io.records import run_record
    from llm_mia.workflows.evaluate import EvaluationSettings, evaluate_table

    started = time.perf_counter()
    timings: dict[str, float] = {}
    split = build_split(config.split, cache_root=cache_root, use_cache=use_cache)
    timings["split_seconds"] = time.perf_counter() - started
    sizes = split.manifest["sizes"]
    echo(
        f"split: {config.split.corpus}, {sizes['member']} members / {sizes['nonmember']} non-members / "
        f"{sizes['calibration']} calibration / {sizes['reference']} reference / {sizes['tokenizer']} tokenizer "
        f"documents (seed {config.split.seed}, "
        f"pool {split.manifest['pool']['pool_documents']} after cleaning and deduplication)"
    )
    mark = time.perf_counter()
    echo(f"training: {config.recipe}, epochs {', '.join(map(str, config.training.epochs))} (cached runs are re-used)")
    target, reference = train_models(
        config, split, device=device, cache_root=cache_root, use_cache=use_cache, progress=progress
    )
    timings["training_seconds"] = time.perf_counter() - mark
    for role, trained in (("target", target), ("reference", reference)):
        if trained is not None:
            echo(f"{role} model: {trained.directory} ({'re-used' if trained.reused else 'trained'})")

    calls = benchmark_calls(config, split, cache_root if use_cache else None, extras=extra_scorers, scorers=scorers)
    documents = split.evaluation_documents()
    texts = {d.id: d.text for d in documents}
    calibration_ids = {d.id for d in split.calibration}
    base_stats, base_description, base_seconds = None, None, 0.0
    if config.recipe == "fine-tune":  # the base model's pass first, then it leaves: one model in memory at a time
        mark = time.perf_counter()
        echo(f"reference: {config.base_model} before fine-tuning reads the {len(documents)} documents (once)")
        base_stats, base_description = base_extraction(config, documents, dtype=dtype, device=device, progress=progress)
        base_seconds = time.perf_counter() - mark
    in_effect = precision_in_effect(dtype, device) if dtype != "float32" else dtype
    if dtype != "float32":
        echo(f"scoring in {dtype} (in effect: {in_effect}); training is float32")
    result = BenchmarkResult(
        config=config,
        split=split,
        target=target,
        reference=reference,
        timings=timings,
        scorers=tuple(scorers) if scorers else None,
        dtype=dtype,
        dtype_in_effect=in_effect,
    )
    for epoch in config.training.epochs:
        mark = time.perf_counter()
        target_model = load_model(ModelSpec(name=str(target.snapshots[epoch]), dtype=dtype, device=device))
        reference_model = None
        if base_stats is None:
            assert reference is not None
            reference_model = load_model(ModelSpec(name=str(reference.snapshots[epoch]), dtype=dtype, device=device))
        if epoch == config.training.epochs[0]:
            calls = fit_recall_prefix(calls, target_model, echo)
        echo(f"epoch {epoch}: scoring {len(documents)} documents with every scorer")
        rows, control_rows, _, scorer_records = score_snapshot(
            documents,
            target=target_model,
            reference=reference_model,
            reference_stats=base_stats,
            batch_size=config.scoring_batch_size,
            progress=progress,
            calls=calls,
        )
        frame, control_frame = pd.DataFrame(rows), pd.DataFrame(control_rows)
        settings = EvaluationSettings(
            fprs=config.fprs, n_bootstrap=config.n_bootstrap, confidence=config.confidence, seed=config.split.seed
        )
        evaluation = evaluate_table(frame, texts=texts, settings=settings)
        control = evaluate_table(control_frame, settings=dataclasses.replace(settings, blind=False))
        calibration = {
            name: calibrated_rates(
                frame, name, calibration_ids=calibration_ids, fpr=config.calibration_fpr, confidence=config.confidence
            )
            for name in evaluation.scorers
        }
        if reference_model is None:
            assert base_description is not None  # the fine-tune recipe: the base model, described before it left
            reference_described = base_description
        else:
            reference_described = reference_model.describe()
        models = {"target": target_model.describe(), "reference": reference_described}
        record = run_record(
            "llm-mia benchmark",
            inputs={
                "source": f"benchmark {config.name} ({config.size}), split {split.fingerprint[:16]}",
                "documents": len(documents),
                "sha256": sha256_texts([d.text for d in documents]),
            },
            models=models,
            scorers=scorer_records,
            settings=ExtractionSettings(batch_size=config.scoring_batch_size).to_dict(),
            execution={"processes": 1, "device": device, "epoch": epoch},
        )
        result.epochs.append(
            EpochResult(
                epoch=epoch,
                frame=frame,
                evaluation=evaluation,
                calibration=calibration,
                control=control,
                scoring_seconds=time.perf_counter() - mark + (base_seconds if not result.epochs else 0.0),
                models=models,
                record=record,
            )
        )
        del target_model
    timings["scoring_seconds"] = sum(e.scoring_seconds for e in result.epochs)
    timings["total_seconds"] = time.perf_counter() - started
    return result
