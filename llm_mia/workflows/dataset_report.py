"""What a dataset-level test shows its reader: the figure of the design's test (``work_test.png`` or
``p_value_curve.png``), the per-scorer score distributions an evidence bundle adds, the printed summary and
``summary.md``, all read from the result and the report dictionary :func:`llm_mia.workflows.dataset.score_and_test`
assembles."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NotRequired, TypedDict

from llm_mia.errors import LlmMiaError
from llm_mia.io.passages import CuttingRecord
from llm_mia.stats.dataset_inference import (
    PASSAGE_LEVEL,
    REFERENCE_GAP,
    WORK_LEVEL,
    DatasetInferenceResult,
    InferenceRecord,
    WorkVerdict,
)
from llm_mia.stats.metrics import format_p_value, p_phrase
from llm_mia.stats.passage_test import COMBINATION
from llm_mia.stats.work_test import WHOLE_SUSPECT


class SideSummary(TypedDict):
    """One side (suspect or control) of the test in ``report.json``: works and passages tested, what was left out
    and why, what cutting did."""

    works: int
    passages: int
    scored: int
    tested: int
    excluded: dict[str, int]
    cutting: CuttingRecord


class PassagesSection(TypedDict):
    """``report.json``'s ``passages``: the passage length, texts found on both sides, and each side."""

    passage_tokens: int
    shared_left_out: int
    suspect: SideSummary
    control: SideSummary


class ReferenceAlone(TypedDict):
    """The work-level test on the reference model's own scores (with the gap statistic), reported, not tested."""

    p_value: float
    statistic: float
    meaning: str


class InputSide(TypedDict):
    """One input file of the test, as the run record names it."""

    path: str
    sources: int
    works: int
    work_unit: str
    sha256: str


class DatasetReportBody(TypedDict):
    """What the dataset-level test adds to its run record in ``report.json``."""

    verdict: WorkVerdict
    verdict_sentence: str
    features: list[str]
    passages: PassagesSection
    result: InferenceRecord
    reference_alone: NotRequired[ReferenceAlone]


class DatasetReport(DatasetReportBody):
    """``report.json`` of ``llm-mia dataset-test``: the run record (``llm_mia.io.records.run_record``; its
    ``models`` and ``input`` are read here) and :class:`DatasetReportBody`. The schema :func:`summary_lines` and
    :func:`summary_markdown` read."""

    models: dict[str, dict[str, Any]]
    input: dict[str, InputSide]


def plot_result(result: DatasetInferenceResult, directory: Path) -> Path:
    """The figure of the design's test: work-level, T of every labelling with the observed one marked
    (``work_test.png``); passage-level, p-value against the number of passages (``p_value_curve.png``)."""
    if result.work_test is not None:
        return plot_work_test(result, directory)
    return plot_p_value_curve(result, directory)


def score_figures(rows: list[dict[str, Any]], features: list[str], directory: Path) -> list[Path]:
    """Per-passage score distributions, suspect vs control, one panel per scorer."""
    import numpy as np

    from llm_mia.io import plots

    sets = {}
    for name in features:
        suspect = [r[name] for r in rows if r["label"] == 1 and r["status"] == "ok" and r[name] is not None]
        control = [r[name] for r in rows if r["label"] == 0 and r["status"] == "ok" and r[name] is not None]
        sets[name] = (np.asarray(suspect, dtype=float), np.asarray(control, dtype=float))
    written = plots.plot_histograms(sets, directory / "score_distributions", labels=("suspect work", "control works"))
    return [path for path in written if path.suffix == ".png"]


def _axes() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def plot_work_test(result: DatasetInferenceResult, directory: Path) -> Path:
    """``work_test.png``: T of every labelling of the works, the observed one marked (work-level design)."""
    work = result.work_test
    if work is None:
        raise LlmMiaError("no work-level test in this result (passage-level design)")
    figure, axes = _axes()
    axes.hist(
        work.null,
        bins=min(40, max(5, len(work.null) // 3)),
        color="grey",
        alpha=0.7,
        label=f"{'every' if work.exact else f'{len(work.null)} random'} labelling(s) of the works",
    )
    axes.axvline(work.statistic, color="red", linewidth=2, label=f"suspect work(s): {p_phrase(work.p_value)}")
    axes.set_xlabel("suspect minus control works, standardised work means (work-level SDs)")
    axes.set_ylabel("labellings")
    axes.set_title("Work-level permutation test")
    axes.legend(fontsize=8)
    path = directory / "work_test.png"
    figure.savefig(path, dpi=120)
    return path


def plot_p_value_curve(result: DatasetInferenceResult, directory: Path) -> Path:
    """``p_value_curve.png``: the passage-level p-value against the number of passages (with the work-level
    design, exploratory: it treats passages as independent)."""
    import matplotlib.ticker

    figure, axes = _axes()
    points = result.curve
    x = [p.n_suspect for p in points]
    floor = 1e-300  # log axis: a p-value that underflows to 0 is drawn at the floor
    axes.fill_between(
        x,
        [max(p.p_min, floor) for p in points],
        [max(p.p_max, floor) for p in points],
        alpha=0.25,
        label="range over half-splits",
    )
    axes.plot(x, [max(p.p_value, floor) for p in points], marker="o", label="combined p (2 x median)")
    axes.axhline(result.alpha, color="red", linestyle="--", label=f"alpha = {result.alpha:g}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xlabel("suspect passages (control passages in proportion)")
    axes.set_ylabel("passage-level p-value")
    exploratory = "exploratory: passages as independent" if result.work_test is not None else "no verdict of training"
    axes.set_title(f"Passage-level test ({exploratory})")
    axes.legend(fontsize=8)
    path = directory / "p_value_curve.png"
    figure.savefig(path, dpi=120)
    return path


def summary_lines(report: DatasetReport) -> list[str]:
    """The printed summary (also the top of summary.md)."""
    inference, passages = report["result"], report["passages"]
    suspect, control = passages["suspect"], passages["control"]
    reference = report["models"].get("reference", {}).get("name")
    statistic = (
        f"the target's scores minus the reference model's ({reference})"
        if inference["statistic"] == REFERENCE_GAP
        else "the target model's membership scores"
    )
    lines = [
        f"dataset test: {suspect['works']} suspect work(s), {suspect['tested']} of {suspect['passages']} passages in "
        f"the test vs {control['works']} control work(s), {control['tested']} of {control['passages']} passages; "
        f"{passages['passage_tokens']} tokens per passage on both sides; model {report['models']['target']['name']}",
        f"statistic: {statistic}; features: {', '.join(report['features'])}",
        f"design: {inference['design']} ({inference['design_reason']})",
    ]
    work = inference["work_test"]
    if work is not None:
        entered = (
            f"the suspect work whole ({work['passages_per_work']} passages), each control work with up to as many"
            if work["passage_selection"] == WHOLE_SUSPECT
            else f"every work with its first {work['passages_per_work']} passages"
        )
        lines.append(
            f"work-level test: suspect {work['statistic']:+.2f} work-level SDs above the control works; p = "
            f"{format_p_value(work['p_value'])} over {work['labellings']} labellings "
            f"({'every labelling' if work['exact'] else 'random labellings'}, {work['validity']}; smallest possible "
            f"{format_p_value(work['smallest_possible_p'])}; {entered}; {work['works_left_out']} work(s) with too "
            f"few passages left out)"
        )
    alone = report.get("reference_alone")
    if alone:
        lines.append(
            f"reference model alone: p = {format_p_value(alone['p_value'])} ({alone['meaning'].split(': ')[1]})"
        )
    passage = inference["passage_test"]
    d = passage["effect_size_cohens_d"]
    lines.append(
        f"passage-level test ({passage['role']}): {p_phrase(passage['p_value'])}, "
        f"{COMBINATION.split(' (')[0]}; "
        f"Cohen's d median {d['median']:.2f} (range over half-splits {d['min']:.2f} to {d['max']:.2f})"
    )
    for guard in inference["safeguards"]:
        state = ("FIRED" if guard["withholds"] else "differs (reported)") if guard["fired"] else "ok"
        state = state if guard["ran"] else "-"
        lines.append(f"safeguard {guard['name']}: {state}: {guard['detail']}")
    if passages["shared_left_out"]:
        lines.append(f"{passages['shared_left_out']} passage text(s) found on both sides were left out of both")
    for name in ("suspect", "control"):
        cutting = passages[name]["cutting"]
        if cutting["tokens_unused"]:
            lines.append(
                f"{name}: {cutting['tokens_unused']} of {cutting['tokens']} tokens not in any passage (tails shorter "
                f"than a passage; {cutting['sources_too_short']} source(s) shorter than one passage)"
            )
        if passages[name]["excluded"]:
            reasons = "; ".join(f"{count} x {why}" for why, count in passages[name]["excluded"].items())
            lines.append(f"left out of the test ({name}): {reasons}")
    lines += [f"qualification: {q}" for q in inference["qualifications"]]
    lines.append(f"assumption: {inference['assumption']}")
    lines.append(f"what the checks cannot see: {inference['checks_cannot_see']}")
    lines.append(f"verdict: {report['verdict_sentence']}")
    return lines


def summary_markdown(report: DatasetReport) -> str:
    """``summary.md``: the verdict, the printed summary, the figure, the weights of the combined score, the inputs."""
    inference = report["result"]
    weights_source = inference["work_test"] or inference["passage_test"]
    weight_rows = ["| feature | median weight (standardised) |", "|---|---:|"]
    weight_rows += [f"| {name} | {value:.4f} |" for name, value in weights_source["median_weights"].items()]
    figure = "work_test.png" if inference["design"] == WORK_LEVEL else "p_value_curve.png"
    curve = []
    if inference["design"] == PASSAGE_LEVEL:
        curve = [
            "| passages (suspect) | passages (control) | combined p | median split p |",
            "|---:|---:|---:|---:|",
            *(
                f"| {p['n_suspect']} | {p['n_control']} | {format_p_value(p['p_value'])} | "
                f"{format_p_value(p['p_median'])} |"
                for p in inference["p_value_curve"]
            ),
            "",
        ]
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
            f"![test]({figure})",
            "",
            *curve,
            "## Weights of the combined score",
            "",
            *weight_rows,
            "",
            "## Inputs",
            "",
            f"- suspect: `{report['input']['suspect']['path']}` (sha256 {report['input']['suspect']['sha256']})",
            f"- control: `{report['input']['control']['path']}` (sha256 {report['input']['control']['sha256']})",
            "- every passage's file, work and character offsets: `passages.jsonl`; its scores: `scores.jsonl`",
            "",
        ]
    )
