"""Training curves from a run's ``history.csv``.

``history.csv`` has one line per optimisation step, header
``stage,step,lr,loss,<one column per loss term>``. Every numeric column other than
``step`` and ``lr`` is a loss curve; each stage (e.g. pre-training, training) gets a row of
two panels: its losses over the steps (log scale when all are positive) and its learning rate.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import XhbenchError

__all__ = ["HISTORY", "draw_curves", "read_history", "write_curves"]

HISTORY = "history.csv"
CURVES = "training-curves.png"
DPI = 100


def read_history(path: Path) -> pd.DataFrame:
    """The history table; a clear error naming the file when it lacks a needed column."""
    try:
        history = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise XhbenchError(f"cannot read the training history {path}: {exc}") from exc
    missing = [column for column in ("stage", "step", "lr") if column not in history.columns]
    if missing:
        raise XhbenchError(f"the training history {path} lacks the column(s) "
                           f"{', '.join(missing)} (header: {', '.join(history.columns)})")
    return history


def _loss_columns(history: pd.DataFrame) -> list[str]:
    numeric = history.select_dtypes("number").columns
    return [column for column in numeric if column not in ("step", "lr")]


def draw_curves(history: pd.DataFrame, title: str = ""):
    """A matplotlib Figure: one row per stage, losses on the left and learning rate right."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    stages = list(dict.fromkeys(history["stage"].astype(str)))
    losses = _loss_columns(history)
    figure = Figure(figsize=(10, 3 * max(len(stages), 1)), dpi=DPI, facecolor="white",
                    layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(max(len(stages), 1), 2, squeeze=False)
    for (loss_axes, lr_axes), stage in zip(axes, stages):
        rows = history[history["stage"].astype(str) == stage]
        present = [column for column in losses if rows[column].notna().any()]
        for column in present:
            loss_axes.plot(rows["step"], rows[column], label=column, linewidth=1)
        values = rows[present].to_numpy().ravel()
        values = values[~pd.isna(values)]
        if values.size and (values > 0).all():
            loss_axes.set_yscale("log")
        loss_axes.set(title=f"{stage}: loss", xlabel="step")
        loss_axes.legend(fontsize=7)
        lr_axes.plot(rows["step"], rows["lr"], color="black", linewidth=1)
        lr_axes.set(title=f"{stage}: learning rate", xlabel="step")
    if title:
        figure.suptitle(title, fontsize=9)
    return figure


def write_curves(run_dir: Path, out: Path) -> Path | None:
    """Draw ``RUN/history.csv`` to ``OUT/training-curves.png``; ``None`` without a history."""
    path = Path(run_dir) / HISTORY
    if not path.exists():
        return None
    history = read_history(path)
    if history.empty:
        return None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / CURVES
    draw_curves(history, title=Path(run_dir).name).savefig(target, dpi=DPI, format="png")
    return target
