"""The report's pictures (matplotlib, Agg): bar charts with error bars per method and
target, and the per-setting heatmap of a ``per_setting`` paper table (Table 10)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["bar_chart", "heatmap"]

DPI = 100


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, facecolor="white", layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def bar_chart(stats: pd.DataFrame, metric: str, path: Path, *, label: str = "row"):
    """Grouped bars of ``mean`` ± ``std`` for one metric: a group per target, a bar per
    row (``stats[label]``); infinite values (PSNR of an exact copy) are left out. Returns
    the Figure (saved to ``path``)."""
    stats = stats[stats["metric"] == metric].replace([np.inf, -np.inf], np.nan)
    targets = list(dict.fromkeys(stats["target"]))
    rows = list(dict.fromkeys(stats[label]))
    figure = _figure(max(6.0, 1.0 + 0.3 * len(targets) * max(len(rows), 1)),
                     3.5 + 0.15 * len(rows))
    axes = figure.add_subplot()
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(targets))
    for i, row in enumerate(rows):
        cells = stats[stats[label] == row].set_index("target").reindex(targets)
        axes.bar(x + (i - (len(rows) - 1) / 2) * width, cells["mean"], width,
                 yerr=cells["std"], capsize=3, label=row)
    axes.set_xticks(x, targets, rotation=30 if len(targets) > 6 else 0, fontsize=8)
    axes.set(ylabel=f"{metric} (mean ± std across cases)")
    figure.legend(fontsize=7, loc="outside lower center", ncols=min(len(rows), 3))
    figure.savefig(path, dpi=DPI, format="png")
    return figure


def heatmap(cells: pd.DataFrame, columns: list[str], path: Path, *, scale: float = 1.0,
            title: str = ""):
    """A heatmap of ``mean`` (x ``scale``), one line per (``row``, ``target``) and one
    column per entry of ``columns`` (e.g. the 15 modality subsets), annotated with the
    values. Returns the Figure (saved to ``path``)."""
    grid = cells.pivot_table(index=["row", "target"], columns="column", values="mean",
                             aggfunc="first", sort=False)
    grid = grid.reindex(columns=[c for c in columns if c in grid.columns]) * scale
    lines = [f"{target} — {row}" for row, target in grid.index]
    figure = _figure(1.6 + 0.55 * grid.shape[1] + 0.06 * max(map(len, lines), default=0),
                     1.0 + 0.3 * grid.shape[0])
    axes = figure.add_subplot()
    image = axes.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    axes.set_xticks(range(grid.shape[1]), list(grid.columns), fontsize=7)
    axes.set_yticks(range(grid.shape[0]), lines, fontsize=7)
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if not np.isnan(value):
            axes.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=6,
                      color="white" if value < np.nanmean(grid.to_numpy(dtype=float)) else "black")
    figure.colorbar(image, ax=axes, shrink=0.8)
    axes.set_title(textwrap.fill(title, 120), fontsize=8)
    figure.savefig(path, dpi=DPI, format="png")
    return figure
