"""One finished run's scores as the table ``xhbench run`` and ``xhbench evaluate`` print
at the end (one line per target and metric, mean ± std across cases, as the leaderboard
computes them: :func:`~xhbench.leaderboard.aggregate.aggregate` over the run alone)."""

from __future__ import annotations

import math

from ..results import RunDir
from .aggregate import RUN_KEYS, _run_info, _summary, aggregate

__all__ = ["run_table"]


def run_table(run: RunDir) -> str:
    """A markdown table of ``run``'s per-case results: target, metric, direction, mean ±
    std (population std across cases) and n, headed by task, method and data."""
    summary = _summary(run)
    info = _run_info(summary)
    stats = aggregate(run.cases().assign(**{key: info[key] for key in RUN_KEYS}))
    directions = summary.get("higher_is_better") or {}
    arrows = {True: "↑", False: "↓"}
    lines = [f"{summary['task']} · {summary['method']} · seed {summary['seed']} · "
             f"{info['origin']} {info['dataset']} {info['split']}, {info['n_cases']} cases",
             "",
             "| target | metric |   |   mean |   | std    |  n |",
             "|--------|--------|---|-------:|---|--------|---:|"]
    for rec in stats.to_dict("records"):
        mean, std = _num(rec["mean"]), _num(rec["std"])
        lines.append(f"| {rec['target']} | {rec['metric']} | "
                     f"{arrows.get(directions.get(rec['metric']), '')} | {mean} | ± | {std} | "
                     f"{rec['n']} |")
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"
