"""Named known-split benchmarks, end to end: split -> train -> score every scorer -> evaluate -> report.

A preset fixes everything that decides the numbers (corpus, split sizes, seed, training recipe, model size),
in two sizes: ``ci`` (a minute or two on 2 CPU cores, for tests) and ``full`` (the published tables in
``benchmarks/RESULTS.md``); the demo (``llm-mia demo``) uses its own ``demo`` size. Splits and trained models are
cached (see :mod:`llm_mia.bench.splits` and :mod:`llm_mia.bench.training`), so a second run only scores.

For every saved epoch of the target model, the benchmark scores the members, the non-members and the
calibration documents with every registered scorer (``reference`` reads the reference model: SmolLM2 before
fine-tuning, or a GPT-2 trained the same way on disjoint text), then reports:

* per scorer: AUROC with a bootstrap CI, TPR at 0.1/1/5% FPR with the n of non-members each rests on, the
  blind baseline beside them (``llm_mia.metrics.evaluate``);
* per scorer, a threshold calibrated at a target FPR on the *calibration* split (known non-members never
  evaluated), with the FPR it actually reaches on the evaluation non-members (Clopper-Pearson interval) and the
  share of members it flags (``llm_mia.calibration.FprCalibrator``);
* a control: the same likelihood scorers under the reference model, which never saw the members. It should sit
  near AUROC 0.5; if it does not, the split itself is biased.

Outputs in the report directory: ``results.json`` (everything), ``results.md`` (tables), ``manifest.json``
(the split), ``auroc_by_epoch.png/.svg``, and per epoch ``epoch-N/`` with ``scores.jsonl`` (+ run record),
``evaluation.json``, ``roc``, ``roc_loglog`` and ``histograms`` figures.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_mia.bench.splits import SplitConfig, SplitResult, build_split
from llm_mia.bench.training import Gpt2Architecture, TrainedModels, TrainingConfig
from llm_mia.documents import Document
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.metrics import DEFAULT_FPRS, Evaluation, format_fpr

logger = logging.getLogger(__name__)

RECIPES = ("fine-tune", "from-scratch")
SIZES = ("ci", "full")
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything that decides a benchmark's numbers.

    ``recipe``: ``fine-tune`` (``base_model`` fine-tuned on the members; the reference model is the base model)
    or ``from-scratch`` (a GPT-2 of ``architecture`` trained on the members; the reference model is a GPT-2
    trained the same way, seed + 1, on the ``reference`` split; both share a BPE trained on the ``tokenizer``
    split, which is disjoint from everything evaluated). ``calibration_fpr``: target FPR of the threshold fitted
    on the calibration split.
    """

    name: str
    size: str
    description: str
    split: SplitConfig
    recipe: str
    training: TrainingConfig
    architecture: Gpt2Architecture | None = None
    base_model: str = "smollm2-135m"
    scoring_batch_size: int = 8
    fprs: tuple[float, ...] = DEFAULT_FPRS
    calibration_fpr: float = 0.05
    n_bootstrap: int = 1000
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise InputError(f"recipe {self.recipe!r} is not one of {', '.join(RECIPES)}")
        if self.recipe == "from-scratch" and (
            self.architecture is None or self.split.reference < 1 or self.split.tokenizer < 1
        ):
            raise InputError(
                "the from-scratch recipe needs an architecture, a reference split and a tokenizer split (both > 0)"
            )

    def with_overrides(
        self,
        *,
        epochs: Sequence[int] | None = None,
        seed: int | None = None,
        members: int | None = None,
        learning_rate: float | None = None,
    ) -> BenchmarkConfig:
        """A copy with some settings changed: snapshot epochs, the seed of split and training, the number of
        members and non-members (both set to ``members``), the learning rate."""
        split, training = self.split, self.training
        if seed is not None:
            split, training = dataclasses.replace(split, seed=seed), dataclasses.replace(training, seed=seed)
        if members is not None:
            split = dataclasses.replace(split, members=members, nonmembers=members)
        if epochs is not None:
            training = dataclasses.replace(training, epochs=tuple(epochs))
        if learning_rate is not None:
            training = dataclasses.replace(training, learning_rate=learning_rate)
        return dataclasses.replace(self, split=split, training=training)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "description": self.description,
            "split": self.split.to_dict(),
            "recipe": self.recipe,
            "training": self.training.to_dict(),
            "architecture": None if self.architecture is None else self.architecture.to_dict(),
            "base_model": self.base_model if self.recipe == "fine-tune" else None,
            "scoring_batch_size": self.scoring_batch_size,
            "fprs": list(self.fprs),
            "calibration_fpr": self.calibration_fpr,
            "n_bootstrap": self.n_bootstrap,
            "confidence": self.confidence,
        }


# ------------------------------------------------------------------------------------------------ presets

_WIKI_WORDS = {"min_words": 40, "max_words": 80}
_DOCS_WORDS = {"min_words": 40, "max_words": 160}
_SMALL_GPT2 = Gpt2Architecture(n_layer=2, n_embd=64, n_head=2, vocab_size=1024, n_positions=256)
_GPT2 = Gpt2Architecture(n_layer=4, n_embd=256, n_head=4, vocab_size=8192, n_positions=256)
_SMOLLM2_DESCRIPTION = "SmolLM2-135M fine-tuned (all weights) on Wikipedia lead summaries; reference: SmolLM2 before"


def _smollm2(size: str, *, members: int, calibration: int, epochs: tuple[int, ...], warmup: int) -> BenchmarkConfig:
    return BenchmarkConfig(
        name="smollm2-wikipedia",
        size=size,
        description=_SMOLLM2_DESCRIPTION,
        split=SplitConfig(
            corpus="wikipedia", members=members, nonmembers=members, calibration=calibration, **_WIKI_WORDS
        ),
        recipe="fine-tune",
        training=TrainingConfig(epochs=epochs, learning_rate=5e-5, batch_size=8, max_length=128, warmup_steps=warmup),
    )


def _gpt2(name: str, corpus: str, size: str, words: dict[str, int]) -> BenchmarkConfig:
    full = size == "full"
    architecture = _GPT2 if full else _SMALL_GPT2
    label = "4 layers, 256 dims, 8k BPE" if full else "2 layers, 64 dims, 1k BPE"
    what = "Wikipedia lead summaries" if corpus == "wikipedia" else "Python 3.11 documentation passages"
    return BenchmarkConfig(
        name=name,
        size=size,
        description=f"GPT-2 trained from scratch on {what} ({label}); reference: the same recipe on disjoint text",
        split=SplitConfig(
            corpus=corpus,
            members=512 if full else 32,
            nonmembers=256 if full else 32,
            calibration=128 if full else 32,
            reference=512 if full else 32,
            tokenizer=2048 if full else 128,
            **words,
        ),
        recipe="from-scratch",
        training=TrainingConfig(
            epochs=(1, 2, 4, 8) if full else (1, 8),
            learning_rate=1e-3 if full else 3e-3,
            batch_size=8,
            max_length=256,
            warmup_steps=32 if full else 4,
        ),
        architecture=architecture,
    )


PRESETS: dict[str, dict[str, BenchmarkConfig]] = {
    "smollm2-wikipedia": {
        "ci": _smollm2("ci", members=8, calibration=0, epochs=(1,), warmup=0),
        "demo": _smollm2("demo", members=24, calibration=24, epochs=(2,), warmup=1),
        "full": _smollm2("full", members=64, calibration=32, epochs=(1, 2, 4), warmup=2),
    },
    "gpt2-wikipedia": {size: _gpt2("gpt2-wikipedia", "wikipedia", size, _WIKI_WORDS) for size in SIZES},
    "gpt2-python-docs": {size: _gpt2("gpt2-python-docs", "python-docs", size, _DOCS_WORDS) for size in SIZES},
}


def get_preset(name: str, size: str = "ci") -> BenchmarkConfig:
    """The preset ``name`` at ``size`` (``ci``, ``full``; ``demo`` for smollm2-wikipedia)."""
    if name not in PRESETS:
        raise InputError(f"unknown benchmark {name!r}; available: {', '.join(PRESETS)}")
    if size not in PRESETS[name]:
        raise InputError(f"benchmark {name!r} has no size {size!r}; available: {', '.join(PRESETS[name])}")
    return PRESETS[name][size]


# ------------------------------------------------------------------------------------------------ results


@dataclass
class EpochResult:
    """One target snapshot evaluated. ``frame``: the score rows (all scored documents); ``evaluation``: members
    vs non-members with the blind baseline; ``calibration``: per scorer, threshold fitted on the calibration
    split and checked on the non-members (None where too few controls); ``control``: likelihood scorers under the
    reference model (should be near chance)."""

    epoch: int
    frame: Any
    evaluation: Evaluation
    calibration: dict[str, dict[str, Any] | None]
    control: Evaluation
    scoring_seconds: float
    models: dict[str, Any]


@dataclass
class BenchmarkResult:
    config: BenchmarkConfig
    split: SplitResult
    target: TrainedModels
    reference: TrainedModels | None
    epochs: list[EpochResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    output_dir: Path | None = None

    def epoch(self, epoch: int) -> EpochResult:
        for result in self.epochs:
            if result.epoch == epoch:
                return result
        raise KeyError(epoch)


# ------------------------------------------------------------------------------------------------ steps


def train_models(
    config: BenchmarkConfig,
    split: SplitResult,
    *,
    device: str = "cpu",
    cache_root: Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> tuple[TrainedModels, TrainedModels | None]:
    """Train (or re-use) the target model and, for from-scratch, the reference model."""
    from llm_mia.bench.training import device_for_training, fine_tune, train_from_scratch

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
        )
        return target, None
    assert config.architecture is not None  # checked in BenchmarkConfig
    tokenizer_texts = [d.text for d in split.tokenizer]
    common = {
        "tokenizer_texts": tokenizer_texts,
        "architecture": config.architecture,
        "device": device,
        "cache_root": cache_root,
        "use_cache": use_cache,
        "progress": progress,
    }
    target = train_from_scratch(split.members, config=config.training, role="target", **common)
    reference_training = dataclasses.replace(config.training, seed=config.training.seed + 1)
    reference = train_from_scratch(split.reference, config=reference_training, role="reference", **common)
    return target, reference


def calibrated_rates(
    frame: Any, column: str, *, calibration_ids: set[str], fpr: float, confidence: float = 0.95
) -> dict[str, Any] | None:
    """Fit a threshold at ``fpr`` on the calibration rows' scores, then measure it on the labelled rows.

    Returns the threshold, the FPR reached on the evaluation non-members (with a Clopper-Pearson interval) and
    the members flagged (TPR, with its interval); None when the calibration split is too small for ``fpr``.
    """
    import numpy as np

    from llm_mia.calibration import FprCalibrator, min_controls
    from llm_mia.metrics import clopper_pearson

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


def score_snapshot(
    documents: Sequence[Document],
    *,
    target: Any,
    reference: Any = None,
    reference_stats: list[Any] | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    """Every registered scorer on ``documents``, one extraction per view.

    The reference model's extraction can be passed in (``reference_stats``) instead of the model, so a fixed
    reference (SmolLM2 before fine-tuning) is run once for all snapshots. Returns the score rows, the control
    rows (the scorers that read only the target, applied to the reference model's extraction: no extra pass)
    and the reference extraction.
    """
    from llm_mia.extract import ExtractionSettings
    from llm_mia.scorers import VIEWS, parse_scorer_specs
    from llm_mia.scoring import extract_views, needed_views, score_rows

    calls = parse_scorer_specs(None, has_reference=True)
    settings = ExtractionSettings(batch_size=batch_size, progress=progress)
    if reference_stats is None:
        if reference is None:
            raise LlmMiaError("score_snapshot needs a reference model or its extraction")
        reference_stats = extract_views(documents, ["reference"], models={"reference": reference}, settings=settings)[
            "reference"
        ]
    target_views = [view for view in needed_views(calls) if VIEWS[view].model == "target"]
    stats = extract_views(documents, target_views, models={"target": target}, settings=settings)
    stats["reference"] = reference_stats
    rows = score_rows(documents, calls, stats)
    control_calls = [call for call in calls if call.scorer.views == ("target",)]
    control_rows = score_rows(documents, control_calls, {"target": reference_stats})
    return rows, control_rows, reference_stats


def run_benchmark(
    config: BenchmarkConfig,
    *,
    output_dir: Path | None = None,
    device: str = "cpu",
    cache_root: Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    threads: int | None = None,
    echo: Callable[[str], None] = logger.info,
) -> BenchmarkResult:
    """Run a benchmark end to end; write the report into ``output_dir`` when given (see module docstring).

    ``device``: where to train and score (``cpu``; ``cuda`` or ``auto`` use a GPU when there is one; the
    determinism guarantee is for CPU). ``use_cache=False`` rebuilds the split and retrains. ``threads``: torch
    CPU threads for training and scoring (None: torch's default). ``echo`` receives one line per step (the CLI
    prints them).
    """
    from llm_mia.bench.training import torch_threads

    with torch_threads(threads):
        return _run(
            config,
            output_dir=output_dir,
            device=device,
            cache_root=cache_root,
            use_cache=use_cache,
            progress=progress,
            echo=echo,
        )


def _run(
    config: BenchmarkConfig,
    *,
    output_dir: Path | None,
    device: str,
    cache_root: Path | None,
    use_cache: bool,
    progress: bool,
    echo: Callable[[str], None],
) -> BenchmarkResult:
    import pandas as pd

    from llm_mia.metrics import evaluate
    from llm_mia.models import ModelSpec, load_model

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
            state = "re-used" if trained.reused else f"trained in {trained.record['wall_seconds']:.0f} s"
            echo(f"{role} model: {trained.directory} ({state})")

    documents = split.evaluation_documents()
    texts = {d.id: d.text for d in documents}
    calibration_ids = {d.id for d in split.calibration}
    base, base_stats = None, None
    if config.recipe == "fine-tune":
        base = load_model(ModelSpec(name=config.base_model, device=device))
    result = BenchmarkResult(config=config, split=split, target=target, reference=reference, timings=timings)
    for epoch in config.training.epochs:
        mark = time.perf_counter()
        target_model = load_model(ModelSpec(name=str(target.snapshots[epoch]), device=device))
        if base is not None:
            reference_model = base
        else:
            assert reference is not None
            reference_model = load_model(ModelSpec(name=str(reference.snapshots[epoch]), device=device))
        echo(f"epoch {epoch}: scoring {len(documents)} documents with every scorer")
        rows, control_rows, reference_stats = score_snapshot(
            documents,
            target=target_model,
            reference=reference_model,
            reference_stats=base_stats,
            batch_size=config.scoring_batch_size,
            progress=progress,
        )
        if base is not None:
            base_stats = reference_stats  # the base model does not change between snapshots
        frame, control_frame = pd.DataFrame(rows), pd.DataFrame(control_rows)
        common = {
            "fprs": config.fprs,
            "n_bootstrap": config.n_bootstrap,
            "confidence": config.confidence,
            "seed": config.split.seed,
        }
        evaluation = evaluate(frame, texts=texts, **common)
        control = evaluate(control_frame, texts=None, **common)
        calibration = {
            name: calibrated_rates(
                frame, name, calibration_ids=calibration_ids, fpr=config.calibration_fpr, confidence=config.confidence
            )
            for name in evaluation.scorers
        }
        result.epochs.append(
            EpochResult(
                epoch=epoch,
                frame=frame,
                evaluation=evaluation,
                calibration=calibration,
                control=control,
                scoring_seconds=time.perf_counter() - mark,
                models={"target": target_model.describe(), "reference": reference_model.describe()},
            )
        )
        del target_model
    timings["scoring_seconds"] = sum(e.scoring_seconds for e in result.epochs)
    timings["total_seconds"] = time.perf_counter() - started
    if output_dir is not None:
        write_report(result, output_dir)
        result.output_dir = output_dir
    return result


# ------------------------------------------------------------------------------------------------ report


def _ci(low_high: Sequence[float]) -> str:
    return f"[{low_high[0]:.3f}, {low_high[1]:.3f}]"


def _tpr_cell(record: Any) -> str:
    flag = "" if record.resolvable else "*"
    return f"{record.tpr:.3f}{flag} (n={record.n_nonmembers})"


def _calibration_cell(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "too few controls"
    held = entry["heldout_nonmembers"]
    return (
        f"TPR {entry['members_flagged']}/{entry['n_members']} = {entry['tpr']:.2f}; "
        f"FPR {held['false_positives']}/{held['n_controls']} = {held['fpr']:.2f} {_ci(held['fpr_ci'])}"
    )


def command_line(config: BenchmarkConfig) -> str:
    """The command that reproduces ``config`` when it is a preset (with overrides spelled out)."""
    demo = config.size == "demo"
    command = "llm-mia demo" if demo else f"llm-mia benchmark {config.name} --size {config.size}"
    preset = PRESETS.get(config.name, {}).get(config.size)
    if preset is None or preset == config:
        return command
    if preset.training.epochs != config.training.epochs:
        command += " --epochs " + " ".join(map(str, config.training.epochs))
    if preset.split.seed != config.split.seed:
        command += f" --seed {config.split.seed}"
    if preset.split.members != config.split.members:
        command += f" --members {config.split.members}"
    if preset.training.learning_rate != config.training.learning_rate:
        command += f" --learning-rate {config.training.learning_rate:g}"
    return command


def markdown_tables(result: BenchmarkResult) -> list[str]:
    """The Markdown report: settings, the AUROC-by-epoch sweep, and every number for each epoch."""
    config, split = result.config, result.split
    sizes = split.manifest["sizes"]

    def timing(step: str) -> str:
        return f"{result.timings.get(f'{step}_seconds', 0):.0f}"

    training = config.training
    if config.recipe == "fine-tune":
        model = f"{config.base_model}, all weights fine-tuned"
        reference = f"{config.base_model} before fine-tuning"
    else:
        arch = config.architecture
        assert arch is not None
        model = (
            f"GPT-2 from scratch, {arch.n_layer} layers, {arch.n_embd} dims, {arch.n_head} heads, "
            f"byte-level BPE of {arch.vocab_size} tokens trained on the {sizes['tokenizer']} tokenizer documents"
        )
        reference = f"the same GPT-2 recipe (seed {training.seed + 1}) on the {sizes['reference']} reference documents"
    lines = [
        f"## {config.name} ({config.size})",
        "",
        f"{config.description}.",
        "",
        f"- command: `{command_line(config)}`",
        f"- data: {split.manifest['corpus_description']}; {sizes['member']} members, {sizes['nonmember']} "
        f"non-members, {sizes['calibration']} calibration, {sizes['reference']} reference, {sizes['tokenizer']} "
        f"tokenizer documents; "
        f"{config.split.min_words}-{config.split.max_words} words; seed {config.split.seed}; split "
        f"fingerprint `{split.fingerprint[:16]}`",
        f"- model: {model}; reference model: {reference}",
        f"- training: AdamW, learning rate {training.learning_rate:g} (linear warm-up over {training.warmup_steps} "
        f"steps, then constant), batch {training.batch_size} documents, max {training.max_length} tokens per "
        f"sequence, weight decay {training.weight_decay:g}, seed {training.seed}; snapshots after epochs "
        f"{', '.join(map(str, training.epochs))}",
        f"- wall time: {timing('total')} s (split {timing('split')} s, training {timing('training')} s"
        + (" (re-used from cache)" if result.target.reused else "")
        + f", scoring and evaluation {timing('scoring')} s) on {_machine()}",
        "",
        "### AUROC by epochs of training (members vs non-members, 95% bootstrap CI)",
        "",
    ]
    header = ["scorer", *(f"{e.epoch} epoch{'s' if e.epoch != 1 else ''}" for e in result.epochs)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    names = list(result.epochs[0].evaluation.scorers) if result.epochs else []
    for name in names:
        cells = []
        for epoch in result.epochs:
            scored = epoch.evaluation.scorers.get(name)
            cells.append("n/a" if scored is None else f"{scored.auroc:.3f} {_ci(scored.auroc_ci)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    blind_cells = [
        "not run"
        if e.evaluation.blind is None
        else f"{e.evaluation.blind.auroc:.3f} {_ci(e.evaluation.blind.auroc_ci)}"
        for e in result.epochs
    ]
    lines.append("| blind baseline (no model) | " + " | ".join(blind_cells) + " |")
    control_cells = [
        f"{e.control.scorers['loss'].auroc:.3f} {_ci(e.control.scorers['loss'].auroc_ci)}"
        if "loss" in e.control.scorers
        else "n/a"
        for e in result.epochs
    ]
    lines.append("| control: loss under the reference model | " + " | ".join(control_cells) + " |")
    for epoch in result.epochs:
        evaluation = epoch.evaluation
        fprs = sorted(config.fprs)
        lines += [
            "",
            f"### After {epoch.epoch} epoch{'s' if epoch.epoch != 1 else ''}",
            "",
            "| scorer | AUROC [95% CI] | "
            + " | ".join(f"TPR@{format_fpr(f)}FPR" for f in fprs)
            + f" | threshold at {format_fpr(config.calibration_fpr)} FPR fitted on {sizes['calibration']} "
            f"calibration docs: members flagged; non-members flagged [95% CI] |",
            "|---|---|" + "---|" * len(fprs) + "---|",
        ]
        for name, scored in evaluation.scorers.items():
            lines.append(
                f"| {name} | {scored.auroc:.3f} {_ci(scored.auroc_ci)} | "
                + " | ".join(_tpr_cell(scored.tpr_at_fpr[f]) for f in fprs)
                + f" | {_calibration_cell(epoch.calibration.get(name))} |"
            )
        if evaluation.blind is not None:
            blind = evaluation.blind
            lines.append(
                f"| blind baseline | {blind.auroc:.3f} {_ci(blind.auroc_ci)} | "
                + " | ".join(_tpr_cell(blind.tpr_at_fpr[f]) for f in fprs)
                + " | - |"
            )
        warning = evaluation.warning()
        if warning:
            lines += ["", warning]
    lines += [
        "",
        "n = non-members a TPR@FPR rests on; * = 1/n is above that FPR, so the figure rests on zero false "
        "positives and cannot resolve it. Higher score = more likely member.",
    ]
    return lines


def _machine() -> str:
    cores = os.cpu_count()
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        threads = None
    return f"{platform.processor() or platform.machine()}, {cores} cores, torch threads {threads}"


def plot_sweep(result: BenchmarkResult, stem: Path) -> list[Path]:
    """AUROC (with CI) against epochs of training, one line per scorer, the blind baseline dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    epochs = [e.epoch for e in result.epochs]
    names = list(result.epochs[0].evaluation.scorers) if result.epochs else []
    for name in names:
        values = [e.evaluation.scorers[name] for e in result.epochs if name in e.evaluation.scorers]
        if len(values) != len(epochs):
            continue
        aurocs = [v.auroc for v in values]
        low = [v.auroc - v.auroc_ci[0] for v in values]
        high = [v.auroc_ci[1] - v.auroc for v in values]
        axes.errorbar(epochs, aurocs, yerr=[low, high], marker="o", capsize=3, linewidth=1.2, label=name)
    blind = [e.evaluation.blind.auroc if e.evaluation.blind else math.nan for e in result.epochs]
    axes.plot(epochs, blind, linestyle="--", color="black", marker="x", label="blind baseline (no model)")
    axes.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="chance")
    axes.set_xlabel("epochs of training on the members")
    axes.set_ylabel("AUROC (members vs non-members)")
    axes.set_xticks(epochs)
    axes.set_ylim(0.3, 1.02)
    axes.set_title(f"{result.config.name} ({result.config.size})")
    axes.legend(fontsize="x-small", loc="lower right")
    axes.grid(True, alpha=0.3)
    paths = []
    for extension in ("png", "svg"):
        path = stem.with_name(f"{stem.name}.{extension}")
        figure.savefig(path, dpi=150)
        paths.append(path)
    return paths


def results_dict(result: BenchmarkResult) -> dict[str, Any]:
    """Everything in ``results.json``: config, split summary, training records, per-epoch numbers, timings."""
    training_records = {}
    for role, trained in (("target", result.target), ("reference", result.reference)):
        if trained is None:
            continue
        record = dict(trained.record)
        record.pop("data", None)  # the manifest has the documents
        training_records[role] = {"directory": str(trained.directory), "reused": trained.reused, "record": record}
    manifest = result.split.manifest
    return {
        "tool": "llm-mia benchmark",
        "command": command_line(result.config),
        "direction": "higher score = more likely a member",
        "config": result.config.to_dict(),
        "split": {
            "fingerprint": result.split.fingerprint,
            "sizes": manifest["sizes"],
            "split_sha256": manifest["split_sha256"],
            "pool": {k: v for k, v in manifest["pool"].items() if k != "removed"},
        },
        "training": training_records,
        "epochs": [
            {
                "epoch": e.epoch,
                "models": e.models,
                "evaluation": e.evaluation.to_dict(),
                "calibration": e.calibration,
                "control_reference_model": {
                    "what": "target-only scorers under the reference model, which never saw the members",
                    "scorers": {name: s.to_dict() for name, s in e.control.scorers.items()},
                },
                "scoring_seconds": round(e.scoring_seconds, 1),
            }
            for e in result.epochs
        ],
        "timings": {k: round(v, 1) for k, v in result.timings.items()},
        "machine": _machine(),
    }


def write_report(result: BenchmarkResult, directory: Path) -> list[Path]:
    """Write the report directory (see module docstring); returns the files written."""
    from llm_mia.report import write_outputs
    from llm_mia.results import json_ready, sha256_documents, write_rows, write_run_record

    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    documents = result.split.evaluation_documents()
    for epoch in result.epochs:
        sub = directory / f"epoch-{epoch.epoch}"
        sub.mkdir(exist_ok=True)
        scores = sub / "scores.jsonl"
        write_rows(epoch.frame.to_dict("records"), scores)
        record = {
            "input": {
                "source": f"benchmark {result.config.name} ({result.config.size}), split "
                f"{result.split.fingerprint[:16]}",
                "documents": len(documents),
                "sha256": sha256_documents([d.text for d in documents]),
            },
            "models": epoch.models,
            "direction": "higher score = more likely a member",
        }
        written += [scores, write_run_record(scores, record)]
        identity = {
            "benchmark": result.config.name,
            "size": result.config.size,
            "epoch": epoch.epoch,
            "run_record": record,
        }
        written += write_outputs(epoch.evaluation, epoch.frame, identity, sub)
    manifest = directory / "manifest.json"
    manifest.write_text(json.dumps(result.split.manifest, indent=1), encoding="utf-8")
    results = directory / RESULTS_FILE
    results.write_text(json.dumps(json_ready(results_dict(result)), indent=2, default=str), encoding="utf-8")
    markdown = directory / "results.md"
    markdown.write_text("\n".join(markdown_tables(result)) + "\n", encoding="utf-8")
    written += [manifest, results, markdown]
    if len(result.epochs) > 1:
        written += plot_sweep(result, directory / "auroc_by_epoch")
    return written


def check_report_dir(directory: Path, *, overwrite: bool) -> Path:
    """Refuse to replace an existing report without ``overwrite``; checked before any work starts."""
    if directory.exists() and not directory.is_dir():
        raise LlmMiaError(f"{directory} is a file; give a directory for the report")
    if (directory / RESULTS_FILE).exists() and not overwrite:
        raise LlmMiaError(
            f"{directory / RESULTS_FILE} exists; pass --overwrite to replace it, or choose another --output-dir"
        )
    if not directory.parent.exists():
        raise LlmMiaError(f"{directory.parent}: parent of the report directory does not exist; create it first")
    return directory
