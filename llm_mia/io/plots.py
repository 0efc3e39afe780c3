"""Figures for an evaluation: ROC curves (linear and log-log axes) and member / non-member score histograms.

matplotlib is imported inside each function and drawn on the Agg canvas (no display, no pyplot state), so
importing this module costs nothing and plotting works on headless machines. Every figure is written as PNG
and SVG. Higher score = more likely member; nothing is flipped for display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

FIGURE_FORMATS = ("png", "svg")


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, stem: Path) -> list[Path]:
    paths = []
    for extension in FIGURE_FORMATS:
        path = stem.with_name(f"{stem.name}.{extension}")
        figure.savefig(path, dpi=150)
        paths.append(path)
    return paths


def plot_roc(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    stem: str | Path,
    *,
    log_log: bool = False,
    labels: Mapping[str, str] | None = None,
    dashed: Sequence[str] = (),
    resolution_fpr: float | None = None,
) -> list[Path]:
    """ROC curves, one per name: ``curves[name] = (fpr, tpr)``; writes ``<stem>.png`` and ``<stem>.svg``.

    ``log_log``: both axes logarithmic, to show the low-FPR region where membership claims live (Carlini et
    al. 2022). ``resolution_fpr`` = 1/n_nonmembers, the smallest FPR the data resolve: drawn as a vertical line,
    and the axes start at half of it, where rates of 0 (which a log axis cannot show) are drawn.
    ``labels[name]``: legend text (e.g. with the AUROC); names in ``dashed`` are drawn dashed.
    """
    low = (resolution_fpr or 2e-4) / 2
    figure = _new_figure(6.0, 5.0)
    axes = figure.add_subplot()
    for name, (fpr_values, tpr_values) in curves.items():
        fpr, tpr = np.asarray(fpr_values, dtype=float), np.asarray(tpr_values, dtype=float)
        if log_log:  # a log axis cannot show 0: draw it at the lower edge
            fpr, tpr = np.maximum(fpr, low), np.maximum(tpr, low)
        axes.plot(
            fpr, tpr, label=(labels or {}).get(name, name), linestyle="--" if name in dashed else "-", linewidth=1.4
        )
    if log_log:
        if resolution_fpr is not None:
            axes.axvline(resolution_fpr, color="black", linewidth=0.8, alpha=0.5, label="1/n non-members")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.plot([low, 1], [low, 1], color="grey", linestyle=":", linewidth=1, label="chance")
        axes.set_xlim(low, 1)
        axes.set_ylim(low, 1.05)
        axes.set_title("ROC (log-log): the low-FPR region")
    else:
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.02)
        axes.set_title("ROC")
    axes.set_xlabel("false positive rate (non-members flagged)")
    axes.set_ylabel("true positive rate (members flagged)")
    axes.legend(loc="lower right", fontsize="small")
    axes.grid(True, which="both", alpha=0.3)
    return _save(figure, Path(stem))


def plot_histograms(
    score_sets: Mapping[str, tuple[ArrayLike, ArrayLike]],
    stem: str | Path,
    *,
    bins: int = 30,
    labels: tuple[str, str] = ("members", "non-members"),
) -> list[Path]:
    """One panel per scorer: ``score_sets[name] = (member_scores, nonmember_scores)``, density histograms on
    shared bins, the two sets named by ``labels``. Writes ``<stem>.png`` and ``<stem>.svg``."""
    names = list(score_sets)
    columns = min(3, max(1, len(names)))
    rows = max(1, -(-len(names) // columns))
    figure = _new_figure(4.0 * columns, 3.0 * rows)
    for index, name in enumerate(names):
        members, nonmembers = (np.asarray(s, dtype=float) for s in score_sets[name])
        axes = figure.add_subplot(rows, columns, index + 1)
        edges = np.histogram_bin_edges(np.concatenate([members, nonmembers]), bins=bins)
        axes.hist(nonmembers, bins=edges, density=True, alpha=0.55, label=f"{labels[1]} (n={len(nonmembers)})")
        axes.hist(members, bins=edges, density=True, alpha=0.55, label=f"{labels[0]} (n={len(members)})")
        axes.set_title(name)
        axes.set_xlabel("score (higher = more likely member)")
        axes.set_ylabel("density")
        axes.legend(fontsize="x-small")
    return _save(figure, Path(stem))
