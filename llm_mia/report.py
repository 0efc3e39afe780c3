"""Evaluation reports shared by `llm-mia evaluate` and the benchmark runner: the printed table, the JSON and the
figures. Library code, so that nothing below the CLI has to import the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from llm_mia.metrics import Evaluation, format_fpr
from llm_mia.results import json_ready


def tpr_cell(record: Any) -> str:
    """One TPR@FPR cell: the rate, the non-members it rests on, and * when 1/n exceeds the FPR."""
    return f"{record.tpr:.3f} (n={record.n_nonmembers}){'' if record.resolvable else '*'}"


def format_table(evaluation: Evaluation) -> list[str]:
    """The printed table: one row per scorer, then the blind baseline row."""
    fprs = sorted(set(evaluation.settings["fprs"]))  # one column per FPR, as in the results, even if given twice
    level = f"{evaluation.settings['confidence']:.0%}"
    header = [
        "scorer",
        f"AUROC [{level} CI]",
        *(f"TPR@{format_fpr(f)}FPR" for f in fprs),
        "bal.acc (oracle)",
        "members/non",
        "excluded",
    ]
    lines = []

    def row(name: str, result: Any, excluded: str) -> list[str]:
        low, high = result.auroc_ci
        return [
            name,
            f"{result.auroc:.3f} [{low:.3f}, {high:.3f}]",
            *(tpr_cell(r) for r in result.tpr_at_fpr.values()),
            f"{result.oracle_balanced_accuracy:.3f}",
            f"{result.n_members}/{result.n_nonmembers}",
            excluded,
        ]

    body = [row(name, result, str(result.n_excluded)) for name, result in evaluation.scorers.items()]
    if evaluation.blind is not None:
        body.append(row("blind baseline", evaluation.blind, "-"))
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for cells in body:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    for name, reason in evaluation.skipped.items():
        lines.append(f"{name}: not evaluated ({reason})")
    if evaluation.blind is None:
        lines.append(f"blind baseline: not run ({evaluation.blind_skipped})")
    unresolved = [
        r
        for result in [*evaluation.scorers.values(), *([evaluation.blind] if evaluation.blind else [])]
        for r in result.tpr_at_fpr.values()
        if not r.resolvable
    ]
    if unresolved:
        worst = min(unresolved, key=lambda r: r.target_fpr)
        lines.append(
            f"* 1/n > FPR: n non-members cannot resolve this FPR, so the figure rests on zero false positives "
            f"(TPR@{format_fpr(worst.target_fpr)} FPR needs >= {math.ceil(1 / worst.target_fpr)} non-members)"
        )
    lines.append(
        "n = non-members a TPR@FPR rests on; bal.acc (oracle) uses the best threshold on these same data "
        "(optimistic); higher score = more likely member"
    )
    return lines


def write_outputs(evaluation: Evaluation, frame: Any, identity: dict[str, Any], directory: Path) -> list[Path]:
    """evaluation.json and the ROC / histogram figures."""
    import numpy as np

    from llm_mia import plots

    directory.mkdir(exist_ok=True)
    written: list[Path] = []
    curves = {name: result.roc for name, result in evaluation.scorers.items()}
    labels = {name: f"{name} (AUROC {result.auroc:.3f})" for name, result in evaluation.scorers.items()}
    if evaluation.blind is not None:
        curves["blind baseline"] = evaluation.blind.roc
        labels["blind baseline"] = f"blind baseline (AUROC {evaluation.blind.auroc:.3f})"
    n_nonmembers = max((r.n_nonmembers for r in evaluation.scorers.values()), default=0)
    if curves:
        common = {"labels": labels, "dashed": ["blind baseline"]}
        written += plots.plot_roc(curves, directory / "roc", **common)
        resolution = 1 / n_nonmembers if n_nonmembers else None
        written += plots.plot_roc(curves, directory / "roc_loglog", log_log=True, resolution_fpr=resolution, **common)
        labelled = frame[frame["label"].notna()]
        ok = (labelled["status"] == "ok") if "status" in labelled.columns else True
        score_sets = {}
        for name in evaluation.scorers:
            values = labelled[name].to_numpy(dtype=np.float64, na_value=np.nan)
            keep = np.isfinite(values) & np.asarray(ok)
            label = labelled["label"].to_numpy()
            score_sets[name] = (values[keep & (label == 1)], values[keep & (label == 0)])
        written += plots.plot_histograms(score_sets, directory / "histograms")
    report = {
        "tool": "llm-mia evaluate",
        **identity,
        **evaluation.to_dict(),
        "files": [p.name for p in written],
    }
    json_path = directory / "evaluation.json"
    json_path.write_text(json.dumps(json_ready(report), indent=2, default=str, allow_nan=False), encoding="utf-8")
    return [json_path, *written]
