"""Segmentation overlays: reference and predicted outlines over the input image.

The task says how to draw (``Task.overlay``, plain data) and which masks to outline
(``Task.regions``: named ``(predicted, reference)`` pairs, e.g. BraTS WT/TC/ET):

- ``{"view": "slice", "image": "flair", "settings": ["15", "4", "2"]}``: one panel per
  setting (here all four modalities, FLAIR only, T1ce only), the axial slice (last axis)
  through the middle of the reference's extent (all regions together), the ``image``
  channel in grey;
- ``{"view": "mip", "image": "PET"}``: the maximum-intensity projection of the ``image``
  channel along the second axis (coronal for RAS volumes) and the projections of the masks
  (a voxel of the projection is in a mask when any voxel along the ray is).

Reference outlines are solid, predicted ones dashed, one colour per region; each panel's
label gives the setting and the case's scores under the first metric the task reports
for it. One PNG per case, ``<case>_overlay.png``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from .figures import DPI, PANEL_INCHES, mid_slice, safe_name

__all__ = ["COLOURS", "overlay_panels", "write_overlays"]

COLOURS = ("#00c000", "#ffd700", "#ff2020", "#00bfff", "#ff00ff")  # region i: COLOURS[i]
LABEL_INCHES = 0.45
HEADER_INCHES = 0.45  # a title of up to three lines


def _settings(task, spec: dict[str, Any]) -> list:
    settings = task.settings()
    wanted = spec.get("settings")
    if not wanted:
        return settings[:3]
    by_id = {setting.id: setting for setting in settings}
    unknown = [sid for sid in wanted if sid not in by_id]
    if unknown:
        raise UsageError(f"task {task.name} overlay names unknown setting(s) "
                         f"{', '.join(unknown)}; known: {', '.join(by_id)}")
    return [by_id[sid] for sid in wanted]


def _scores(rows: list[dict], names: list[str]) -> str:
    rows = [row for row in rows if row["target"] in names]
    if not rows:
        return ""
    metric = rows[0]["metric"]
    return f"{metric}: " + ", ".join(f"{row['target']} {row['value']:.2f}" for row in rows
                                     if row["metric"] == metric)


def _project(mask: np.ndarray, view: str, z: int) -> np.ndarray:
    return mask.any(axis=1) if view == "mip" else mask[..., z]


def overlay_panels(task, method, item) -> list[dict[str, Any]]:
    """One panel per chosen setting: ``image`` (2D), ``regions`` {name: (pred, ref)} in 2D
    and ``label``; the arrays as drawn (before the display rotation)."""
    spec = dict(task.overlay)
    view = spec.get("view", "slice")
    if view not in ("slice", "mip"):
        raise UsageError(f"task {task.name} overlay view {view!r}: choose slice or mip")
    channels = task.spec.in_channels
    channel = channels.index(spec["image"]) if spec.get("image") in channels else 0
    panels = []
    for setting in _settings(task, spec):
        inputs = task.inputs(item, setting, handles_missing=method.handles_missing)
        prediction = method.predict(inputs, setting.available)
        regions = task.regions(prediction, item)
        if not panels:  # every setting is drawn on the same slice
            reference = np.logical_or.reduce([ref for _, ref in regions.values()])
            z = mid_slice(reference)
        image = item.image[channel]
        panels.append({
            "image": image.max(axis=1) if view == "mip" else image[..., z],
            "regions": {name: (_project(pred, view, z), _project(ref, view, z))
                        for name, (pred, ref) in regions.items()},
            "label": setting.name + "\n" + _scores(task.score(prediction, item, setting),
                                                   list(regions)),
            "where": "maximum-intensity projection (axis 1)" if view == "mip"
                     else f"axial slice {z}",
        })
    return panels


def _draw(path: Path, title: str, panels: list[dict[str, Any]]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    width = PANEL_INCHES * len(panels)
    height = HEADER_INCHES + LABEL_INCHES + PANEL_INCHES
    figure = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    figure.text(0.5, 1 - 0.5 * HEADER_INCHES / height,
                textwrap.fill(title, width=45 * len(panels), break_long_words=True),
                ha="center", va="center", fontsize=6)
    names = list(panels[0]["regions"])
    for p, panel in enumerate(panels):
        figure.text((p + 0.5) / len(panels), 1 - (HEADER_INCHES + 0.5 * LABEL_INCHES) / height,
                    panel["label"], ha="center", va="center", fontsize=6)
        axes = figure.add_axes([p / len(panels), 0, 1 / len(panels), PANEL_INCHES / height])
        axes.imshow(np.rot90(panel["image"]), cmap="gray", interpolation="nearest")
        for i, (pred, ref) in enumerate(panel["regions"].values()):
            colour = COLOURS[i % len(COLOURS)]
            for mask, style in ((ref, "solid"), (pred, "dashed")):
                if mask.any() and not mask.all():
                    axes.contour(np.rot90(mask.astype(float)), levels=[0.5], colors=[colour],
                                 linestyles=style, linewidths=1)
        axes.set_axis_off()
    handles = [Line2D([], [], color=COLOURS[i % len(COLOURS)], label=name)
               for i, name in enumerate(names)]
    handles += [Line2D([], [], color="black", label="reference"),
                Line2D([], [], color="black", linestyle="dashed", label="prediction")]
    figure.legend(handles=handles, loc="lower right", fontsize=5, framealpha=0.8)
    figure.savefig(path, dpi=DPI, format="png", facecolor="white")


def write_overlays(task, method, out: Path, cases: int | None = 3) -> list[Path]:
    """Predict the first ``cases`` test cases again and write one overlay PNG per case."""
    out.mkdir(parents=True, exist_ok=True)
    test_cases = task.test_cases()
    written = []
    for case in test_cases[:cases] if cases is not None else test_cases:
        item = task.prepare(task.data.read(case))
        panels = overlay_panels(task, method, item)
        path = out / f"{safe_name(item.case_id)}_overlay.png"
        _draw(path, f"{method.name} on {task.name}: case {item.case_id}, "
                    f"{panels[0]['where']}", panels)
        written.append(path)
    return written
