"""Transfer methods side by side: one figure per test case and scored pair, columns source,
real target, then each method's prediction, from the runs of a results root.

The latest finished run of each method (of the task, with ``checkpoint.pt``) is rebuilt
as :func:`~xhbench.harness.figures.load_run` rebuilds it and predicts the case again
through its own task, exactly as its evaluation did. Display mapping as in the single-run
panels (:mod:`.figures`): real target and every prediction mapped to [0, 1] by the real
target's foreground minimum and maximum (predictions clipped), the source by its own,
background 0; the slice is the axial slice through the middle of the foreground. Each
method's column is labelled with its PSNR and SSIM on that case and pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..results import RunDir, find_runs
from ..tasks.base import parse_pairs
from .figures import (DPI, HEADER_INCHES, LABEL_INCHES, PANEL_INCHES, _unit, load_run,
                      mid_slice, safe_name)

__all__ = ["Panel", "comparison_figure_size", "comparison_panels", "latest_runs",
           "write_comparison"]


@dataclass
class Panel:
    """One column of a comparison figure: a title and an axial slice mapped to [0, 1]."""

    title: str
    image: np.ndarray


def latest_runs(root: Path, task: str, methods: list[str] | None = None) -> dict[str, RunDir]:
    """Method -> its latest finished run of ``task`` under ``root`` that kept its weights
    (run folders start with their start time), in ``methods`` order or by name.

    Raises:
        UsageError: a named method has no such run, or none has.
    """
    runs: dict[str, RunDir] = {}
    for run in find_runs(Path(root), task)[0]:
        if run.file("checkpoint.pt").exists():
            method = run.path.parent.name
            if method not in runs or run.path.name > runs[method].path.name:
                runs[method] = run
    if methods is None:
        if not runs:
            raise UsageError(f"no finished run of {task} with checkpoint.pt under {root}")
        return dict(sorted(runs.items()))
    missing = [name for name in methods if name not in runs]
    if missing:
        raise UsageError(f"no finished run of {task} with checkpoint.pt under {root} for "
                         f"{', '.join(missing)}")
    return {name: runs[name] for name in methods}


def comparison_panels(loaded: dict[str, tuple[Any, Any]], case_index: int,
                      pair: tuple[str, str]) -> tuple[str, int, list[Panel]]:
    """``(case id, slice, panels)`` of one test case and pair: source, real target, then
    one panel per method of ``loaded`` (method -> (task, method) as ``load_run`` gives)."""
    source, target = pair
    panels: list[Panel] = []
    for name, (task, method) in loaded.items():
        case = task.test_cases()[case_index]
        item = task.prepare(task.data.read(case))
        foreground = item.foreground
        s, t = task.names.index(source), task.names.index(target)
        truth = item.reference[t]
        if not panels:
            case_id, z = item.case_id, mid_slice(foreground)
            source_image = item.reference[s]
            panels += [Panel(f"source {source}",
                             _unit(source_image, source_image, foreground)[..., z]),
                       Panel(f"real {target}", _unit(truth, truth, foreground)[..., z])]
        elif item.case_id != case_id:
            raise UsageError(f"{name}: its run's test case {case_index + 1} is "
                             f"{item.case_id}, not {case_id}: the runs use other data")
        setting = next(setting for setting in task.settings() if setting.id == source)
        inputs = task.inputs(item, setting, handles_missing=method.handles_missing)
        generated = method.predict(inputs, setting.available)[t]
        values = task.pair_metrics(generated, truth, foreground)
        panels.append(Panel(f"{name}\nPSNR {values['psnr']:.2f}, SSIM {values['ssim']:.3f}",
                            _unit(generated, truth, foreground)[..., z]))
    return case_id, z, panels


def comparison_figure_size(methods: int) -> tuple[int, int]:
    """(width, height) in pixels of a comparison figure of ``methods`` methods."""
    return (round(DPI * PANEL_INCHES * (2 + methods)),
            round(DPI * (HEADER_INCHES + 2 * LABEL_INCHES + PANEL_INCHES)))


def _draw(path: Path, title: str, panels: list[Panel]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = len(panels)
    width, height = (size / DPI for size in comparison_figure_size(columns - 2))
    figure = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    figure.text(0.5, 1 - 0.5 * HEADER_INCHES / height, title, ha="center", va="center",
                fontsize=8)
    label_top = 1 - HEADER_INCHES / height
    for c, panel in enumerate(panels):
        figure.text((c + 0.5) / columns, label_top - LABEL_INCHES / height, panel.title,
                    ha="center", va="center", fontsize=7)
        axes = figure.add_axes([c / columns, 0, 1 / columns, PANEL_INCHES / height])
        axes.imshow(np.rot90(panel.image), cmap="gray", vmin=0.0, vmax=1.0,
                    interpolation="nearest")
        axes.set_axis_off()
    figure.savefig(path, dpi=DPI, format="png", facecolor="white")


def write_comparison(root: Path, task: str, out: Path, *, methods: list[str] | None = None,
                     pairs: str | None = None, cases: int | None = 3,
                     data_root: Path | None = None, cache_dir: Path | None = None,
                     device: str | None = None) -> list[Path]:
    """One PNG per test case (the first ``cases``) and pair, ``<case>_<source>-to-<target>.png``
    in ``out``. Pairs: ``pairs`` (``"T1->T2,T2->FLAIR"``), default those every run's task
    scores.

    Raises:
        UsageError: no runs, a named method without a run, a pair a run does not score,
            a task that is not a transfer task.
    """
    runs = latest_runs(root, task, methods)
    loaded = {name: load_run(run.path, data_root=data_root, cache_dir=cache_dir,
                             device=device) for name, run in runs.items()}
    scored = [set(run_task.pairs) for run_task, _ in loaded.values()]
    first_task = next(iter(loaded.values()))[0]
    if first_task.kind != "synthesis":
        raise UsageError(f"figures --results compares transfer runs; {task} is a "
                         f"{first_task.kind} task (draw its runs with --run)")
    if pairs is None:
        drawn = [pair for pair in first_task.pairs if all(pair in s for s in scored)]
    else:
        drawn = parse_pairs(pairs, first_task.names, "--pairs")
    for pair in drawn:
        for name, scores in zip(loaded, scored):
            if pair not in scores:
                raise UsageError(f"{name}: its run of {task} does not score "
                                 f"{pair[0]}->{pair[1]}")
    out.mkdir(parents=True, exist_ok=True)
    count = len(first_task.test_cases())
    written = []
    for index in range(min(count, cases) if cases is not None else count):
        for source, target in drawn:
            case_id, z, panels = comparison_panels(loaded, index, (source, target))
            path = out / f"{safe_name(case_id)}_{safe_name(source)}-to-{safe_name(target)}.png"
            _draw(path, f"{task}: case {case_id}, {source} -> {target}, axial slice {z}",
                  panels)
            written.append(path)
    return written
