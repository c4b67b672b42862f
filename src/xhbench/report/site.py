"""``xhbench report``: a static HTML site of a results folder (open ``index.html``).

Layout of the site::

    index.html                              tasks, with run counts
    static/style.css, static/sort.js        the page style and the table sorter
    <task>/index.html                       paper tables, heatmaps, bars, provenance, runs
    <task>/bars-<metric>.png, heatmap-<table>.png
    <task>/runs/<method>/<run_id>/index.html  config, environment, cost, curves, figures,
                                            per-case table, log tail
    <task>/runs/<method>/<run_id>/*.png     training curves and the run's figures

Pages are Jinja2 templates shipped with the package (``report/templates``). Everything is
read from the run folders and :mod:`xhbench.leaderboard`; nothing is predicted again
(``xhbench figures`` draws the overlays into ``RUN/figures``, which the report copies).
"""

from __future__ import annotations

import json
import math
import shutil
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from .. import __version__
from ..curves import CURVES, write_curves
from ..errors import UsageError
from ..leaderboard import build_leaderboard
from ..leaderboard.paper_tables import paper_table, paper_table_frame
from ..results import RunDir, find_runs
from .charts import bar_chart, heatmap

__all__ = ["build_site"]

LOG_LINES = 40
PROVENANCE = ("method", "profile", "config_hash", "origin", "dataset", "split", "split_sha256",
              "n_cases", "seeds", "task_version", "xhbench_version")


def _environment():
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(loader=PackageLoader("xhbench.report", "templates"),
                       autoescape=select_autoescape(["html"]), trim_blocks=True,
                       lstrip_blocks=True)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _table(frame: pd.DataFrame, *, links: Mapping[int, str] | None = None,
           reported: Iterable[str] = (), key: str | None = None) -> dict[str, Any]:
    """A template table: ``columns`` and ``rows`` of ``cells`` ``{text, href}``; row ``i``'s
    first cell links to ``links[i]``; rows whose ``key`` column is in ``reported`` are
    marked."""
    reported = set(reported)
    rows = []
    for i, record in enumerate(frame.to_dict("records")):
        cells = [{"text": _text(value)} for value in record.values()]
        if links and i in links:
            cells[0]["href"] = links[i]
        rows.append({"cells": cells, "reported": key is not None and record[key] in reported})
    return {"columns": [str(c) for c in frame.columns], "rows": rows}


def _flat(data: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(data, Mapping):
        out: dict[str, str] = {}
        for key, value in data.items():
            out |= _flat(value, f"{prefix}{key}.")
        return out
    return {prefix.rstrip("."): _text(data)}


def _read(run: RunDir, name: str) -> dict[str, Any]:
    try:
        return run.read_json(name) if run.file(name).exists() else {}
    except (OSError, ValueError):
        return {}


def _status(run: RunDir) -> tuple[str, str]:
    """``(state, error)`` as the results store reads ``status.json`` (running, failed,
    interrupted, finished; ``unknown`` for a folder without one)."""
    status = run.status
    return str(status["state"]), _text(status.get("error"))


def _run_means(run: RunDir) -> dict[str, float]:
    """``"target metric"`` -> mean over cases of each case's mean over its settings."""
    if not run.file("cases.csv").exists():
        return {}
    cases = run.cases()
    per_case = cases.groupby(["target", "metric", "case"], sort=False)["value"].mean()
    means = per_case.groupby(level=["target", "metric"], sort=False).mean()
    return {f"{target} {metric}": value for (target, metric), value in means.items()}


def _row_label(frame: pd.DataFrame) -> pd.Series:
    """``method [profile, origin]``, plus the config hash where two configs share that."""
    label = frame["method"] + " [" + frame["profile"] + ", " + frame["origin"] + "]"
    configs = frame.assign(label=label).groupby("label")["config_hash"].nunique()
    alike = label.map(configs) > 1
    return label.where(~alike, label.str[:-1] + ", config " + frame["config_hash"].str[:8] + "]")


class _Site:
    def __init__(self, results: Path, out: Path):
        self.results, self.out = results, out
        self.env = _environment()

    def write(self, template: str, page: Path, **context: Any) -> None:
        page.parent.mkdir(parents=True, exist_ok=True)
        depth = len(page.relative_to(self.out).parts) - 1
        html = self.env.get_template(template).render(
            root="../" * depth, version=__version__, results=str(self.results), **context)
        page.write_text(html, encoding="utf-8")

    def run_page(self, task: str, run: RunDir) -> str:
        """Write one run's page; returns its path relative to the task folder."""
        method = run.path.parent.name
        folder = self.out / task / "runs" / method / run.path.name
        folder.mkdir(parents=True, exist_ok=True)
        figures = []
        for picture in sorted((run.path / "figures").glob("*.png")):
            shutil.copy2(picture, folder / picture.name)
            if picture.name != CURVES:
                figures.append(picture.name)
        curves = write_curves(run.path, folder)
        if curves is None and (folder / CURVES).exists():
            curves = folder / CURVES
        cases = None
        if run.file("cases.csv").exists():
            wide = run.cases().pivot_table(index=["case", "setting"], columns=["target", "metric"],
                                           values="value", aggfunc="first", sort=False)
            wide.columns = [f"{target} {metric}" for target, metric in wide.columns]
            cases = _table(wide.reset_index())
        log = run.file("log.txt")
        summary = _read(run, "summary.json")
        status, error = _status(run)
        self.write("run.html", folder / "index.html", task=task, method=method,
                   run_id=run.path.name, folder=str(run.path), status=status, error=error,
                   curves=curves.name if curves else None, figures=figures,
                   summary={k: _text(v) for k, v in summary.items()
                            if k not in ("tables", "conventions", "cost", "data")}
                   | _flat(summary.get("data", {}), "data."),
                   cost=_flat(_read(run, "cost.json")), config=_flat(_read(run, "config.json")),
                   environment=_flat(_read(run, "environment.json")), cases=cases,
                   log="\n".join(log.read_text(errors="replace").splitlines()[-LOG_LINES:])
                   if log.exists() else "")
        return f"runs/{method}/{run.path.name}/index.html"

    def task_page(self, task: str, finished: list[RunDir], unfinished: list[RunDir]) -> dict:
        folder = self.out / task
        links = {run.path: self.run_page(task, run) for run in [*finished, *unfinished]}
        context: dict[str, Any] = {"tables": [], "heatmaps": [], "bars": [], "provenance": None}
        board = None
        if finished:
            try:
                board = build_leaderboard(self.results, task, allow_mixed_versions=True)
            except UsageError as exc:
                context["message"] = f"No leaderboard: {exc}"
        if board is not None:
            context |= self._board_parts(board, folder)
        runs = []
        for run in [*finished, *unfinished]:
            summary = _read(run, "summary.json")
            config = _read(run, "config.json")
            cost = summary.get("cost") or _read(run, "cost.json")
            runs.append({"run": run.path.name, "method": run.path.parent.name,
                         "status": _status(run)[0].split(" (")[0],
                         "seed": config.get("seed"), "profile": config.get("profile"),
                         "origin": (summary.get("data") or {}).get("origin"),
                         "finished at": summary.get("finished_at"),
                         "train s": cost.get("train_seconds"), **_run_means(run)})
        frame = pd.DataFrame(runs)
        counts = (f"{len(finished)} finished and {len(unfinished)} unfinished run folder(s)"
                  + (f"; {board.superseded} finished run(s) of a seed run again are not in "
                     "the tables" if board is not None and board.superseded else "") + ".")
        self.write("task.html", folder / "index.html", task=task, counts=counts,
                   runs=_table(frame, links={i: links[run.path] for i, run in
                                             enumerate([*finished, *unfinished])}),
                   **context)
        return {"task": task, "finished": len(finished), "unfinished": len(unfinished),
                "methods": ", ".join(sorted({run.path.parent.name for run in finished}))}

    def _board_parts(self, board, folder: Path) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        tables, heatmaps = [], []
        for name, spec in board.tables.items():
            frame, notes, reported = paper_table_frame(board, name, with_reported=True)
            tables.append({"name": name, "title": spec.get("title", name), "notes": notes,
                           "table": _table(frame, reported=reported, key="row")})
            if spec["layout"] == "per_setting":
                cells = paper_table(board, spec)
                cells["row"] = _row_label(cells)
                path = folder / f"heatmap-{name}.png"
                heatmap(cells, [str(c) for c in spec.get("columns", [])], path,
                        scale=spec.get("scale", 1), title=spec.get("title", name))
                heatmaps.append({"src": path.name, "alt": f"{spec.get('title', name)}: "
                                 "mean per measured row, target and setting"})
        stats = board.stats.assign(row=_row_label(board.stats))
        bars = []
        for metric in dict.fromkeys(stats["metric"]):
            path = folder / f"bars-{_safe(metric)}.png"
            bar_chart(stats, metric, path)
            bars.append({"src": path.name, "alt": f"{metric}: mean ± std across cases per "
                         "measured row and target"})
        rows = board.rows.assign(seeds=board.rows["seeds"].map(
            lambda seeds: ",".join(map(str, seeds))))
        return {"tables": tables, "heatmaps": heatmaps, "bars": bars,
                "provenance": _table(rows[list(PROVENANCE)])}


def _safe(text: str) -> str:
    return "".join(char if char.isalnum() or char in "._-" else "_" for char in text)


def build_site(results: Path, out: Path) -> Path:
    """Write the site of every task under ``results`` into ``out``; returns index.html.

    Raises:
        UsageError: ``results`` is not a folder or holds no run folder.
    """
    results, out = Path(results), Path(out)
    if not results.is_dir():
        raise UsageError(f"results folder {results} does not exist")
    finished, unfinished = find_runs(results)
    by_task: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for run in finished:
        by_task[run.path.parent.parent.name][0].append(run)
    for run in unfinished:
        by_task[run.path.parent.parent.name][1].append(run)
    if not by_task:
        raise UsageError(f"no run folders under {results} (expected <task>/<method>/<run>/)")
    site = _Site(results, out)
    static = out / "static"
    static.mkdir(parents=True, exist_ok=True)
    for name in ("style.css", "sort.js"):
        source = resources.files("xhbench.report").joinpath("static", name)
        (static / name).write_bytes(source.read_bytes())
    overview = [site.task_page(task, *by_task[task]) for task in sorted(by_task)]
    frame = pd.DataFrame(overview)
    site.write("index.html", out / "index.html", tasks=sorted(by_task),
               overview=_table(frame, links={i: f"{row['task']}/index.html"
                                             for i, row in enumerate(overview)}))
    return out / "index.html"
