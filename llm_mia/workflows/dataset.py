"""The dataset-level workflow (``llm-mia dataset-test``): cut a work and a control set into passages, score
them in one pass per model and text variant, run the dataset-level test with its safeguards, and report.

:func:`run_dataset_test` returns a :class:`DatasetTestReport`; :meth:`DatasetTestReport.write` writes the
report directory. The statistics are in :mod:`llm_mia.dataset_inference`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_mia.blind import BlindBaselineResult, blind_baseline
from llm_mia.dataset_inference import (
    COMBINATION,
    CONTROL_ASSUMPTION,
    DEFAULT_ALPHA,
    DEFAULT_CLIP_QUANTILE,
    DEFAULT_SPLITS,
    MIN_PASSAGES_PER_SET,
    DatasetInferenceResult,
    dataset_inference,
    format_p,
    verdict_sentence,
)
from llm_mia.documents import Document
from llm_mia.errors import LlmMiaError
from llm_mia.identity import sha256_texts
from llm_mia.outputs import write_json, write_text
from llm_mia.passages import DEFAULT_PASSAGE_TOKENS, Passage, Source, check_passage_settings, passages_from_sources
from llm_mia.passages import read_sources as read_work
from llm_mia.records import write_run_record
from llm_mia.score_files import write_rows
from llm_mia.settings import ScoringSettings

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("report.json", "summary.md", "p_value_curve.png", "scores.jsonl", "passages.jsonl")
BLIND_FOLDS = 5


@dataclass(frozen=True)
class DatasetTestSettings:
    """How a work and its controls are cut, scored and tested.

    ``passage_tokens`` / ``passage_stride``: passage length and spacing in target-model tokens. ``alpha``:
    significance level. ``splits``: random half-splits. ``clip_quantile``: each feature clipped to this and
    1 minus this quantile of the training half. ``seed``: of the half-splits and the blind baseline's folds.
    ``scoring``: models, scorers, extraction and cache.
    """

    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    passage_tokens: int = DEFAULT_PASSAGE_TOKENS
    passage_stride: int | None = None
    alpha: float = DEFAULT_ALPHA
    splits: int = DEFAULT_SPLITS
    clip_quantile: float = DEFAULT_CLIP_QUANTILE
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise LlmMiaError(f"alpha {self.alpha} is not in (0, 1); 0.05 is the usual choice")
        if self.splits < 1:
            raise LlmMiaError(f"splits {self.splits} must be >= 1; 10 is a good default")
        if not 0.0 <= self.clip_quantile < 0.5:
            raise LlmMiaError(f"clip quantile {self.clip_quantile} is not in [0, 0.5); 0.025 clips 2.5% per side")
        check_passage_settings(passage_tokens=self.passage_tokens, stride=self.passage_stride)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.scoring.extraction.to_dict(),
            "passage_tokens": self.passage_tokens,
            "passage_stride": self.passage_stride or self.passage_tokens,
            "alpha": self.alpha,
            "splits": self.splits,
            "clip_quantile": self.clip_quantile,
            "seed": self.seed,
        }


def _features(rows: list[dict[str, Any]], columns: list[str]) -> tuple[list[list[float]], list[int], Counter]:
    """Feature rows of passages with every score present; indices kept; why the others were left out."""
    kept, indices, excluded = [], [], Counter()
    for index, row in enumerate(rows):
        values = [row[c] for c in columns]
        if row["status"] == "ok" and all(v is not None and math.isfinite(v) for v in values):
            kept.append(values)
            indices.append(index)
        else:
            excluded[row["status"]] += 1
    return kept, indices, excluded


def _blind(
    suspect: list[Passage],
    control: list[Passage],
    suspect_sources: list[Source],
    control_sources: list[Source],
    seed: int,
) -> tuple[BlindBaselineResult | None, str]:
    """Blind baseline on whole sources when each side has enough of them, else on passages (with why)."""
    if len(suspect_sources) >= BLIND_FOLDS and len(control_sources) >= BLIND_FOLDS:
        texts = ([s.text for s in suspect_sources], [s.text for s in control_sources])
        unit = "whole sources (so no source sits on both sides of a cross-validation fold)"
    else:
        texts = ([p.text for p in suspect], [p.text for p in control])
        unit = (
            f"passages (fewer than {BLIND_FOLDS} sources on a side; words specific to one source can make "
            f"the sets look more different than they are)"
        )
    try:
        return blind_baseline(*texts, folds=BLIND_FOLDS, seed=seed), unit
    except LlmMiaError as error:
        return None, f"not run: {error}"


@dataclass
class DatasetTestReport:
    """Everything a dataset-level test produced: passages, score rows, the test, the blind baseline, records."""

    result: DatasetInferenceResult
    report: dict[str, Any]
    record: dict[str, Any]
    rows: list[dict[str, Any]]
    passage_rows: list[dict[str, Any]]
    is_main: bool = True

    @property
    def verdict(self) -> str:
        return self.result.verdict

    def summary_lines(self) -> list[str]:
        return summary_lines(self.report)

    def write(self, directory: str | Path) -> list[Path]:
        """Write the report directory: report.json, summary.md, p_value_curve.png, scores.jsonl (+ run record)
        and passages.jsonl."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = [write_rows(self.rows, directory / "scores.jsonl")]
        written.append(write_run_record(directory / "scores.jsonl", self.record))
        written.append(write_rows(self.passage_rows, directory / "passages.jsonl"))
        written.append(write_json(directory / "report.json", self.report))
        written.append(write_text(directory / "summary.md", _markdown(self.report)))
        written.append(plot_curve(self.result, directory / "p_value_curve.png"))
        return written


def run_dataset_test(
    suspect: str | Path, control: str | Path, settings: DatasetTestSettings | None = None
) -> DatasetTestReport:
    """The dataset-level test of the work at ``suspect`` against the control texts at ``control``.

    Reads both (any input ``llm_mia.documents.read_documents`` reads), cuts passages with the target model's
    tokenizer, scores suspect and control passages together (one extraction per model and text variant, stats
    cache, multi-process under a launcher), and runs :func:`llm_mia.dataset_inference.dataset_inference` with
    the blind baseline beside it.
    """
    from llm_mia.workflows.score import load_models, score_documents

    settings = settings or DatasetTestSettings()
    scoring = settings.scoring
    suspect_sources, control_sources = read_work(suspect), read_work(control)
    calls = scoring.calls
    models = load_models(scoring.models)
    target = models["target"]
    cut = {"tokenizer": target.tokenizer, "passage_tokens": settings.passage_tokens, "stride": settings.passage_stride}
    suspect_passages = passages_from_sources(suspect_sources, **cut)
    control_passages = passages_from_sources(control_sources, **cut)
    if settings.passage_tokens + len(target.prefix_ids) > target.context_length:
        logger.warning(
            "passages of %d tokens exceed the model's context of %d: each is scored in windows",
            settings.passage_tokens,
            target.context_length,
        )
    # the negative control splits the controls in two, so they need twice the minimum; check before scoring
    for name, found, needed in (
        ("suspect", suspect_passages, MIN_PASSAGES_PER_SET),
        ("control", control_passages, 2 * MIN_PASSAGES_PER_SET),
    ):
        if len(found) < needed:
            raise LlmMiaError(
                f"--{name} gives {len(found)} passage(s) of up to {settings.passage_tokens} tokens; the test needs at "
                f"least {MIN_PASSAGES_PER_SET} suspect and {2 * MIN_PASSAGES_PER_SET} control passages. Add text "
                f"or lower --passage-tokens"
            )
    documents: list[Document] = [
        p.to_document(label=1, group="suspect", prefix="suspect:") for p in suspect_passages
    ] + [p.to_document(label=0, group="control", prefix="control:") for p in control_passages]
    run = score_documents(
        documents, scoring, models=models, source=f"{suspect} + {control}", tool="llm-mia dataset-test"
    )
    rows = run.rows
    columns = [call.column for call in calls]
    suspect_rows, control_rows = rows[: len(suspect_passages)], rows[len(suspect_passages) :]
    suspect_x, suspect_kept, suspect_excluded = _features(suspect_rows, columns)
    control_x, control_kept, control_excluded = _features(control_rows, columns)
    if suspect_excluded or control_excluded:
        logger.warning(
            "left out of the test: %d suspect and %d control passage(s) without every score (see scores.jsonl)",
            sum(suspect_excluded.values()),
            sum(control_excluded.values()),
        )
    result = dataset_inference(
        suspect_x,
        control_x,
        control_groups=[control_passages[i].source for i in control_kept],
        alpha=settings.alpha,
        splits=settings.splits,
        seed=settings.seed,
        clip_quantile=settings.clip_quantile,
        feature_names=columns,
    )
    blind, blind_unit = _blind(
        [suspect_passages[i] for i in suspect_kept],
        [control_passages[i] for i in control_kept],
        suspect_sources,
        control_sources,
        settings.seed,
    )
    record = dict(run.record)
    record["input"] = {
        name: {"path": str(path), "sources": len(sources), "sha256": sha256_texts([s.text for s in sources])}
        for name, path, sources in (("suspect", suspect, suspect_sources), ("control", control, control_sources))
    }
    record["settings"] = settings.to_dict()
    report = {
        **record,
        "verdict": result.verdict,
        "verdict_sentence": verdict_sentence(result),
        "control_assumption": CONTROL_ASSUMPTION,
        "features": columns,
        "passages": {
            "passage_tokens": settings.passage_tokens,
            "suspect": {
                "sources": len(suspect_sources),
                "passages": len(suspect_passages),
                "tested": len(suspect_kept),
                "excluded": dict(suspect_excluded),
            },
            "control": {
                "sources": len(control_sources),
                "passages": len(control_passages),
                "tested": len(control_kept),
                "excluded": dict(control_excluded),
            },
        },
        "result": result.to_dict(),
        "blind_baseline": {
            "unit": blind_unit,
            "result": None if blind is None else blind.to_dict(best_attack_auroc=result.main.auroc),
        },
    }
    kept = {("suspect", i) for i in suspect_kept} | {("control", i) for i in control_kept}
    passage_rows = [
        {"set": name, **passage.record(), "in_test": (name, index) in kept}
        for name, found in (("suspect", suspect_passages), ("control", control_passages))
        for index, passage in enumerate(found)
    ]
    return DatasetTestReport(
        result=result, report=report, record=record, rows=rows, passage_rows=passage_rows, is_main=run.is_main
    )


def plot_curve(result: DatasetInferenceResult, path: Path) -> Path:
    """p-value (log scale) against the number of suspect passages, with the split range and alpha."""
    import matplotlib.ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = result.curve
    x = [p.n_suspect for p in points]
    fig = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    floor = 1e-300  # log axis: a p-value that underflows to 0 is drawn at the floor
    ax.fill_between(
        x,
        [max(p.p_min, floor) for p in points],
        [max(p.p_max, floor) for p in points],
        alpha=0.25,
        label="range over half-splits",
    )
    ax.plot(x, [max(p.p_value, floor) for p in points], marker="o", label="combined p (2 x median)")
    ax.axhline(result.alpha, color="red", linestyle="--", label=f"alpha = {result.alpha:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())  # 20, not 2 x 10^1
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("suspect passages (control passages in proportion)")
    ax.set_ylabel("p-value (one-sided Welch t-test)")
    ax.set_title("Dataset inference: p-value vs number of passages")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    return path


def _spread(values: dict[str, float], fmt: Any = format_p) -> str:
    return f"median {fmt(values['median'])}, range {fmt(values['min'])} to {fmt(values['max'])}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The printed summary (also the top of summary.md)."""
    inference, passages = report["result"], report["passages"]
    main, control = inference["main"], inference["negative_control"]
    d = main["effect_size_cohens_d"]
    lines = [
        f"dataset test: {main['n_suspect']} suspect passages ({passages['suspect']['sources']} sources) vs "
        f"{main['n_control']} control passages ({passages['control']['sources']} sources), "
        f"{passages['passage_tokens']} tokens each, model {report['models']['target']['name']}",
        f"features: {', '.join(report['features'])}",
        f"test: {inference['test']}; {COMBINATION}",
        f"main test:        p = {format_p(main['p_value'])} over {main['splits']} half-splits "
        f"(split p {_spread(main['p_value_spread'])}); Cohen's d {d['median']:.3f} "
        f"[{d['min']:.3f}, {d['max']:.3f}]; AUROC of the combined score {main['auroc_median']:.3f}",
        f"negative control: p = {format_p(control['p_value'])} (control vs control, {control['note']})",
    ]
    blind = report["blind_baseline"]
    if blind["result"] is None:
        lines.append(f"blind baseline:   {blind['unit']}")
    else:
        low, high = blind["result"]["auroc_ci"]
        lines.append(
            f"blind baseline:   AUROC {blind['result']['auroc']:.3f} [{low:.3f}, {high:.3f}] (bag-of-words "
            f"classifier that never sees the model, on {blind['unit']})"
        )
        if blind["result"]["warning"]:
            lines.append(blind["result"]["warning"])
    for name in ("suspect", "control"):
        if passages[name]["excluded"]:
            reasons = "; ".join(f"{count} x {why}" for why, count in passages[name]["excluded"].items())
            lines.append(f"left out of the test ({name}): {reasons}")
    lines.append(f"assumption: {CONTROL_ASSUMPTION}")
    lines.append(f"verdict: {report['verdict_sentence']}")
    return lines


def _markdown(report: dict[str, Any]) -> str:
    inference = report["result"]
    rows = [
        "| passages (suspect) | passages (control) | combined p | median split p | p range |",
        "|---:|---:|---:|---:|---|",
    ]
    for point in inference["p_value_curve"]:
        rows.append(
            f"| {point['n_suspect']} | {point['n_control']} | {format_p(point['p_value'])} | "
            f"{format_p(point['p_median'])} | {format_p(point['p_min'])} to {format_p(point['p_max'])} |"
        )
    weights = inference["main"]["median_weights"]
    weight_rows = ["| feature | median weight (standardised) |", "|---|---:|"]
    weight_rows += [f"| {name} | {value:.4f} |" for name, value in weights.items()]
    return "\n".join(
        [
            "# Dataset-level membership test",
            "",
            f"**Verdict:** {report['verdict_sentence']}",
            "",
            "```",
            *summary_lines(report),
            "```",
            "",
            "## p-value against the number of passages",
            "",
            "![p-value curve](p_value_curve.png)",
            "",
            *rows,
            "",
            "## Weights of the combined score (main test)",
            "",
            *weight_rows,
            "",
            "## Inputs",
            "",
            f"- suspect: `{report['input']['suspect']['path']}` (sha256 {report['input']['suspect']['sha256']})",
            f"- control: `{report['input']['control']['path']}` (sha256 {report['input']['control']['sha256']})",
            "- every passage's file and character offsets: `passages.jsonl`; its scores: `scores.jsonl`",
            "",
        ]
    )
