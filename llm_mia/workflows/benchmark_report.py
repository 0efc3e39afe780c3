"""The report of a known-split benchmark run: ``results.md`` (tables), ``results.json`` (every number, settings,
hashes, timings), ``manifest.json`` (the split), ``auroc_by_epoch.png/.svg``, and per epoch ``epoch-N/`` with
``scores.jsonl`` (+ run record), ``evaluation.json`` and the ROC / histogram figures.
"""

from __future__ import annotations

import logging
import math
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_mia.io.outputs import check_output_dir
from llm_mia.known_split.presets import PRESETS, BenchmarkConfig
from llm_mia.stats.metrics import format_fpr
from llm_mia.workflows.benchmark import BenchmarkResult, EpochResult, run_benchmark
from llm_mia.workflows.evaluate import tpr_cell

RESULTS_FILE = "results.json"
logger = logging.getLogger(__name__)


def _ci(low_high: Sequence[float]) -> str:
    return f"[{low_high[0]:.3f}, {low_high[1]:.3f}]"


def _calibration_cell(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "too few controls"
    held = entry["heldout_nonmembers"]
    return (
        f"TPR {entry['members_flagged']}/{entry['n_members']} = {entry['tpr']:.2f}; "
        f"FPR {held['false_positives']}/{held['n_controls']} = {held['fpr']:.2f} {_ci(held['fpr_ci'])}"
    )


def command_line(
    config: BenchmarkConfig,
    *,
    scorers: Sequence[str] | None = None,
    defenses: Sequence[str] = (),
    dtype: str = "float32",
) -> str:
    """The command that reproduces ``config`` when it is a preset (with overrides spelled out), with the scorer
    specs or defense settings it ran and the scoring precision when they were given."""
    demo = config.size == "demo"
    command = "llm-mia demo" if demo else f"llm-mia benchmark {config.name} --size {config.size}"
    if dtype != "float32":
        command += f" --dtype {dtype}"
    if scorers:
        command += " --scorers " + " ".join(scorers)
    if defenses:
        command += " --defense " + " ".join(defenses)
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
        blocks = training.trainable_blocks
        trained = "all weights" if blocks is None else f"the top {blocks} blocks and the final norm (the rest frozen)"
        model = f"{config.base_model}, {trained} fine-tuned"
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
        f"- command: `{command_line(config, scorers=result.scorers, dtype=result.dtype)}`",
        f"- data: {split.manifest['corpus_description']}; {sizes['member']} members, {sizes['nonmember']} "
        f"non-members, {sizes['calibration']} calibration, {sizes['reference']} reference, {sizes['tokenizer']} "
        f"tokenizer documents; "
        f"{config.split.min_words}-{config.split.max_words} words; seed {config.split.seed}; split "
        f"fingerprint `{split.fingerprint[:16]}`",
        f"- model: {model}; reference model: {reference}",
        *(
            [f"- scoring precision: {result.dtype} (in effect: {result.dtype_in_effect}); training in float32"]
            if result.dtype != "float32"
            else []
        ),
        f"- training: AdamW, learning rate {training.learning_rate:g} (linear warm-up over {training.warmup_steps} "
        f"steps, then constant), batch {training.batch_size} documents, max {training.max_length} tokens per "
        f"sequence"
        + ("" if training.micro_batch_size is None else f" ({training.micro_batch_size} documents per forward pass)")
        + f", weight decay {training.weight_decay:g}, seed {training.seed}; snapshots after epochs "
        f"{', '.join(map(str, training.epochs))}",
        f"- wall time: {timing('total')} s (split {timing('split')} s, training {timing('training')} s"
        + (" (re-used from cache)" if result.target.reused else "")
        + f", scoring and evaluation {timing('scoring')} s) on {_machine(result)}",
        "",
        "### AUROC by epochs of training (members vs non-members, 95% DeLong-logit interval)",
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
        "not run" if blind is None else f"{blind.auroc:.3f} {_ci(blind.auroc_ci)} (chance {blind.chance_auroc:.2f})"
        for blind in (e.evaluation.blind for e in result.epochs)
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
                + " | ".join(tpr_cell(scored.tpr_at_fpr[f]) for f in fprs)
                + f" | {_calibration_cell(epoch.calibration.get(name))} |"
            )
        if evaluation.blind is not None:
            blind = evaluation.blind
            lines.append(
                f"| blind baseline (chance {blind.chance_auroc:.2f}) | {blind.auroc:.3f} {_ci(blind.auroc_ci)} | "
                + " | ".join(tpr_cell(blind.tpr_at_fpr[f]) for f in fprs)
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


def _machine(result: BenchmarkResult) -> str:
    """The machine and the torch threads the run used (recorded during the run: by the time a report is written,
    the caller's own thread count is back in effect)."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {result.torch_threads}"


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
        "command": command_line(result.config, scorers=result.scorers, dtype=result.dtype),
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
        "machine": _machine(result),
    }


def write_report(result: BenchmarkResult, directory: str | Path) -> list[Path]:
    """Write the report directory (see module docstring); returns the files written."""
    from llm_mia.io.outputs import write_json, write_text
    from llm_mia.io.records import write_run_record
    from llm_mia.io.score_files import write_rows

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for epoch in result.epochs:
        sub = directory / f"epoch-{epoch.epoch}"
        sub.mkdir(exist_ok=True)
        scores = sub / "scores.jsonl"
        written += [write_rows(epoch.frame.to_dict("records"), scores), write_run_record(scores, epoch.record)]
        identity = {
            "benchmark": result.config.name,
            "size": result.config.size,
            "epoch": epoch.epoch,
            "run_record": epoch.record,
        }
        written += epoch.evaluation.write(sub, identity=identity)
    written.append(write_json(directory / "manifest.json", result.split.manifest, indent=1))
    written.append(write_json(directory / RESULTS_FILE, results_dict(result)))
    written.append(write_text(directory / "results.md", "\n".join(markdown_tables(result)) + "\n"))
    if len(result.epochs) > 1:
        written += plot_sweep(result, directory / "auroc_by_epoch")
    return written


def preset_lines() -> list[str]:
    """Every benchmark and its sizes (``llm-mia benchmark`` without a name)."""
    lines = ["benchmarks (llm-mia benchmark NAME --size SIZE):"]
    for name, sizes in PRESETS.items():
        lines.append(f"  {name}:")
        for size, config in sizes.items():
            split = config.split
            lines.append(
                f"    {size:5} {config.description}; {split.members} members / {split.nonmembers} non-members / "
                f"{split.calibration} calibration, epochs {', '.join(map(str, config.training.epochs))}"
            )
    return lines


def epoch_lines(epoch: EpochResult, config: BenchmarkConfig) -> list[str]:
    """What a run prints for one snapshot (a blank line first): the evaluation table, the thresholds calibrated on
    the controls, the control under the reference model and any distribution-shift warning."""
    fpr = format_fpr(config.calibration_fpr)
    lines = ["", f"after {epoch.epoch} epoch{'s' if epoch.epoch != 1 else ''} of training:"]
    lines += [f"  {line}" for line in epoch.evaluation.table_lines()]
    if not any(epoch.calibration.values()):
        lines.append(f"  thresholds at {fpr} FPR: not fitted (too few calibration controls for that FPR)")
    for name, entry in epoch.calibration.items():
        if entry is None:
            continue
        held = entry["heldout_nonmembers"]
        low, high = held["fpr_ci"]
        lines.append(
            f"  {name}: threshold at {fpr} FPR fitted on {entry['n_controls']} calibration controls flags "
            f"{entry['members_flagged']}/{entry['n_members']} members and {held['false_positives']}/"
            f"{held['n_controls']} non-members (FPR {held['fpr']:.3f} [{low:.3f}, {high:.3f}])"
        )
    loss = epoch.control.scorers.get("loss")
    if loss is not None:
        lines.append(
            f"  control: loss under the reference model (never saw the members): AUROC {loss.auroc:.3f} "
            f"[{loss.auroc_ci[0]:.3f}, {loss.auroc_ci[1]:.3f}] (near 0.5 unless the split is biased)"
        )
    warning = epoch.evaluation.warning()
    if warning:
        lines.append(f"  {warning}")
    return lines


@dataclass
class BenchmarkReport:
    """A known-split benchmark run and its report. ``result``: every number; ``record``: what ``results.json``
    holds; ``summary_lines()``: every snapshot's table, calibration and control (:func:`epoch_lines`);
    ``write(directory)``: the report files (:func:`write_report`)."""

    result: BenchmarkResult

    @property
    def record(self) -> dict[str, Any]:
        return results_dict(self.result)

    @property
    def timings(self) -> dict[str, float]:
        return self.result.timings

    def summary_lines(self) -> list[str]:
        return [line for epoch in self.result.epochs for line in epoch_lines(epoch, self.result.config)]

    def write(self, directory: str | Path) -> list[Path]:
        return write_report(self.result, directory)


def benchmark_report(
    config: BenchmarkConfig,
    *,
    device: str = "cpu",
    use_cache: bool = True,
    progress: bool = True,
    threads: int | str | None = None,
    echo: Callable[[str], None] = logger.info,
    scorers: Sequence[str] | None = None,
    dtype: str = "float32",
) -> BenchmarkReport:
    """``llm-mia benchmark NAME``: run the benchmark (:func:`llm_mia.workflows.benchmark.run_benchmark`, every
    default and opt-in scorer unless ``scorers`` replaces them, scored in ``dtype``) and return it with its report,
    not yet written."""
    result = run_benchmark(
        config,
        device=device,
        dtype=dtype,
        use_cache=use_cache,
        progress=progress,
        threads=threads,
        echo=echo,
        extra_scorers=True,
        scorers=scorers,
    )
    return BenchmarkReport(result)


def check_report_dir(directory: str | Path, *, overwrite: bool) -> Path:
    """Refuse to replace an existing report without ``overwrite``; checked before any work starts."""
    return check_output_dir(directory, overwrite=overwrite, owned=[RESULTS_FILE])
