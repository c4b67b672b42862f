"""Figures of a run: training curves for every run (:mod:`xhbench.curves`), segmentation
overlays (:mod:`.overlays`) and, for a transfer run, sample panels as the paper's Fig. 3:
source, generated image, ground truth and their absolute difference on a mid slice.

Curves are read from ``history.csv``. The predictions are made again from the run folder:
the method is rebuilt through the registry from ``checkpoint.pt``
(``{"method", "config", "spec", "state"}``), the task from ``config.json`` on the same data
(``data_root``, or the cached phantom its config names), and every test case is prepared
and predicted exactly as the evaluation does.

Transfer panels: one PNG per case and source setting, ``<case>_from-<source>.png``: one row
per scored pair of that source (``source -> target``), four columns. Intensities are shown as the
``paper`` metric protocol scores them: the target and the generated image mapped to
[0, 1] by the ground truth's minimum and maximum in the foreground (generated image
clipped), the source by its own, background set to 0; the difference is
``|generated - ground truth|`` in that space, shown from 0 to ``DIFF_MAX``. (The same
mapping is used for every transfer task.) The slice is
the axial slice (last axis) through the middle of the foreground's extent. Each row's
label gives the case's PSNR and SSIM for that pair under the run's metric protocol.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from . import config as cfg
from ..results import RunDir

__all__ = ["DIFF_MAX", "DPI", "HEADER_INCHES", "LABEL_INCHES", "PANEL_INCHES", "figure_size",
           "load_run", "mid_slice", "safe_name", "write_figures", "write_transfer_figures"]

PANEL_INCHES = 2.0  # each image panel is PANEL_INCHES square
LABEL_INCHES = 0.25  # a row's label (pair and metrics) above its panels
HEADER_INCHES = 0.5  # title and column titles
DPI = 100  # so a figure is 4 * 200 = 800 pixels wide and 50 + 225 * rows high
DIFF_MAX = 0.5
COLUMNS = ("source", "generated", "ground truth", f"|difference| (0-{DIFF_MAX:g})")


def load_run(run_dir: Path, *, data_root: Path | None = None, cache_dir: Path | None = None,
             device: str | None = None) -> tuple[Any, Any]:
    """The run's task (on its data) and its trained method, rebuilt from the run folder.

    Raises:
        UsageError: no ``config.json`` or ``checkpoint.pt``.
    """
    import torch

    from ..plugins import get_plugins
    from ..tasks.base import TaskSpec
    from .environment import pick_device
    from .runner import open_task

    run = RunDir(run_dir)
    for name in ("config.json", "checkpoint.pt"):
        if not run.file(name).exists():
            raise UsageError(f"{run.path} is not a run folder with a trained method: "
                             f"{name} is missing")
    config = run.read_json("config.json")
    registry = get_plugins().registry
    task_cls = registry.load("task", config["task"])
    task_config = cfg.resolve(f"task {config['task']}", task_cls.Config, {}, "default",
                              config["task_config"])
    root = data_root if data_root is not None else config.get("data_root")
    task = open_task(task_cls, task_config, Path(root) if root else None, cache_dir)

    torch_device = pick_device(device)
    checkpoint = torch.load(run.file("checkpoint.pt"), map_location=torch_device,
                            weights_only=False)
    method_cls = registry.load("method", checkpoint["method"])
    method_config = cfg.resolve(f"method {checkpoint['method']}", method_cls.Config, {},
                                "default", checkpoint["config"])
    spec = TaskSpec(**{key: tuple(value) if isinstance(value, list) else value
                       for key, value in checkpoint["spec"].items()})
    method = method_cls(method_config, spec, torch_device)
    method.load_state_dict(checkpoint["state"])
    return task, method


def figure_size(rows: int) -> tuple[int, int]:
    """(width, height) in pixels of a figure with ``rows`` pairs."""
    return (round(DPI * PANEL_INCHES * len(COLUMNS)),
            round(DPI * (HEADER_INCHES + rows * (LABEL_INCHES + PANEL_INCHES))))


def mid_slice(foreground: np.ndarray) -> int:
    """The axial index through the middle of the foreground's extent (last axis)."""
    present = np.flatnonzero(foreground.any(axis=(0, 1)))
    if present.size == 0:
        return foreground.shape[-1] // 2
    return int((present[0] + present[-1]) // 2)


def _unit(volume: np.ndarray, reference: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    low, high = float(reference[foreground].min()), float(reference[foreground].max())
    mapped = np.clip((volume - low) / max(high - low, 1e-8), 0.0, 1.0)
    return np.where(foreground, mapped, 0.0)


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def _draw(path: Path, title: str, rows: list[dict[str, Any]]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = PANEL_INCHES * len(COLUMNS)
    row_inches = LABEL_INCHES + PANEL_INCHES
    height = HEADER_INCHES + row_inches * len(rows)
    figure = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    figure.text(0.5, 1 - 0.3 * HEADER_INCHES / height, title, ha="center", va="center",
                fontsize=8)
    for c, column in enumerate(COLUMNS):
        figure.text((c + 0.5) / len(COLUMNS), 1 - 0.75 * HEADER_INCHES / height, column,
                    ha="center", va="center", fontsize=7)
    for r, row in enumerate(rows):
        top = 1 - (HEADER_INCHES + r * row_inches) / height
        figure.text(0.01, top - 0.5 * LABEL_INCHES / height, row["label"], ha="left",
                    va="center", fontsize=7)
        panels = (row["source"], row["generated"], row["truth"], row["difference"])
        for c, panel in enumerate(panels):
            difference = c == len(COLUMNS) - 1
            axes = figure.add_axes([c / len(COLUMNS), top - row_inches / height,
                                    1 / len(COLUMNS), PANEL_INCHES / height])
            axes.imshow(np.rot90(panel), cmap="inferno" if difference else "gray",
                        vmin=0.0, vmax=DIFF_MAX if difference else 1.0,
                        interpolation="nearest")
            axes.set_axis_off()
    figure.savefig(path, dpi=DPI, format="png", facecolor="white")


def write_figures(run_dir: Path, out: Path | None = None, *, cases: int | None = 3,
                  data_root: Path | None = None, cache_dir: Path | None = None,
                  device: str | None = None) -> list[Path]:
    """Training curves (when the run has ``history.csv``), then the first ``cases`` test
    cases predicted again: overlays for a segmentation task, transfer panels otherwise.

    Returns:
        The PNG paths: the curves first, then in case (and setting) order.
    """
    from ..curves import write_curves
    from .overlays import write_overlays

    out = Path(out) if out is not None else Path(run_dir) / "figures"
    curves = write_curves(Path(run_dir), out)
    task, method = load_run(Path(run_dir), data_root=data_root, cache_dir=cache_dir,
                            device=device)
    draw = write_overlays if task.kind == "segmentation" else write_transfer_figures
    return [*([curves] if curves else []), *draw(task, method, out, cases)]


def write_transfer_figures(task, method, out: Path, cases: int | None = 3) -> list[Path]:
    """One PNG per test case and source setting, a row per scored pair."""
    out.mkdir(parents=True, exist_ok=True)
    test_cases = task.test_cases()
    written = []
    for case in test_cases[:cases] if cases is not None else test_cases:
        item = task.prepare(task.data.read(case))
        foreground = item.foreground
        z = mid_slice(foreground)
        for setting in task.settings():
            pairs = [(s, t) for s, t in task.pairs if s == setting.id]
            if not pairs:
                continue
            inputs = task.inputs(item, setting, handles_missing=method.handles_missing)
            prediction = method.predict(inputs, setting.available)
            rows = []
            for source, target in pairs:
                s, t = task.names.index(source), task.names.index(target)
                truth, generated = item.reference[t], prediction[t]
                values = task.pair_metrics(generated, truth, foreground)
                truth_unit = _unit(truth, truth, foreground)
                generated_unit = _unit(generated, truth, foreground)
                rows.append({
                    "label": f"{source} -> {target}: PSNR {values['psnr']:.2f}, "
                             f"SSIM {values['ssim']:.3f}",
                    "source": _unit(item.reference[s], item.reference[s], foreground)[..., z],
                    "generated": generated_unit[..., z],
                    "truth": truth_unit[..., z],
                    "difference": np.abs(generated_unit - truth_unit)[..., z],
                })
            path = out / f"{safe_name(item.case_id)}_from-{safe_name(setting.id)}.png"
            _draw(path, f"{method.name} on {task.name}: case {item.case_id}, axial slice {z}, "
                        f"from {setting.id}", rows)
            written.append(path)
    return written
