"""Leaderboard output: markdown, csv, latex tables and a JSON document."""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterable

import pandas as pd

from .. import __version__
from ..errors import UsageError, XhbenchError
from .aggregate import COST_FIELDS, ROW_KEYS, STD_DDOF, Leaderboard

__all__ = ["DOCUMENT_FORMAT", "FORMATS", "data_lines", "render", "row_key", "skipped_lines",
           "to_document"]

FORMATS = ("markdown", "csv", "json", "latex")
DOCUMENT_FORMAT = "xhbench-leaderboard/1"
COST_HEADERS = {"parameters": "params", "peak_memory_mb": "peak MB", "train_steps": "steps",
                "train_samples": "crops", "train_seconds": "train s",
                "eval_seconds_per_case": "s/case", "sampling_steps": "sampling steps",
                "sampling_seconds_per_case": "sampling s/case"}
_SAMPLING_HEADERS = {"sampling steps", "sampling s/case"}
COST_FORMATS = {"parameters": "{:,.0f}", "peak_memory_mb": "{:.0f}", "train_steps": "{:,.0f}",
                "train_samples": "{:,.0f}", "train_seconds": "{:.1f}",
                "eval_seconds_per_case": "{:.2f}", "sampling_steps": "{:,.0f}",
                "sampling_seconds_per_case": "{:.2f}"}


def render(board: Leaderboard, fmt: str, *, cost: bool = False) -> str:
    """The leaderboard as text.

    Args:
        board: from :func:`~xhbench.leaderboard.build_leaderboard`.
        fmt: one of ``FORMATS``. markdown and latex are wide tables with "mean ± std" cells
            and a footer on data, versions and statistics; csv is long (one line per row,
            group and metric, numbers in their own columns); json is :func:`to_document`.
        cost: add parameters, peak memory, training steps, crops seen, train seconds and
                seconds per case.
    """
    if fmt == "json":
        return json.dumps(to_document(board, cost=cost), indent=2) + "\n"
    if fmt == "csv":
        return _long(board, cost).to_csv(index=False)
    if fmt == "markdown":
        table = _wide(board, cost, lambda m, s: _pm(m, s, "{} ± {}"), _ARROWS, str)
        footer = "\n".join(f"- {line}" for line in _footer(board))
        return table.to_markdown(index=False) + "\n\n" + footer + "\n"
    if fmt == "latex":
        return _latex(board, cost)
    raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def to_document(board: Leaderboard, *, cost: bool = False) -> dict[str, Any]:
    """A JSON-ready document of the leaderboard (the input of ``xhbench compare``).

    NaN statistics become ``null``.
    """
    versions = board.task_versions
    extras = board.group_by[:-2]
    infos = _row_info(board)
    rows = []
    for key, stats in _ordered_stats(board).groupby(list(ROW_KEYS), sort=False, dropna=False):
        info = infos[row_key(key)]
        entry = {k: _plain(info[k]) for k in ROW_KEYS}
        entry |= {"seeds": [_plain(s) for s in info["seeds"]], "run_ids": list(info["run_ids"])}
        if cost:
            entry["cost"] = {field: _plain(info[field]) for field in COST_FIELDS}
        entry["metrics"] = [
            {**{k: _plain(rec[k]) for k in (*extras, "target", "metric", "mean", "std", "n",
                                             "seed_std")},
             "higher_is_better": board.higher_is_better.get(rec["metric"])}
            for rec in stats.to_dict("records")
        ]
        rows.append(entry)
    return {
        "format": DOCUMENT_FORMAT,
        "task": board.task,
        "task_version": versions[0] if len(versions) == 1 else None,
        "task_versions": versions,
        "generated_by": __version__,
        "group_by": list(board.group_by),
        "statistics": _STATISTICS | {"std_ddof": STD_DDOF},
        "skipped_unfinished": board.skipped_unfinished,
        "unfinished_states": dict(board.unfinished_states),
        "superseded_runs": board.superseded,
        "higher_is_better": board.higher_is_better,
        "conventions": board.conventions,
        "rows": rows,
    }


_ARROWS = {True: " ↑", False: " ↓", None: ""}
_STATISTICS = {
    "case_value": "mean over the case's lines within one group (e.g. over its settings)",
    "mean_std": "mean and std across cases; cases without a value are left out (n counts the rest)",
    "seeds": "runs differing only in seed pool (of one seed, the last finished run counts): "
             "mean of run means, mean of run stds, seed_std = std of run means; "
             "n = smallest n of the runs",
}


def _ordered_stats(board: Leaderboard) -> pd.DataFrame:
    # Rows in leaderboard order; groups within a row in order of first appearance.
    return board.stats.sort_values(list(ROW_KEYS), kind="stable")


def _row_info(board: Leaderboard) -> dict[tuple, dict[str, Any]]:
    return {row_key(rec[k] for k in ROW_KEYS): rec for rec in board.rows.to_dict("records")}


def row_key(values: Iterable[Any]) -> tuple:
    """A row's ``ROW_KEYS`` values as a dict key: a missing one (e.g. no split hash) is None in
    ``Leaderboard.rows`` and NaN in a groupby key; both become None."""
    return tuple(None if v is None or (isinstance(v, float) and math.isnan(v)) else v
                 for v in values)


def _wide(board: Leaderboard, cost: bool, cell: Callable[[float, float], str],
          arrows: dict[bool | None, str], text: Callable[[str], str]) -> pd.DataFrame:
    extras = list(board.group_by[:-2])
    info = _row_info(board)
    lines = []
    for key, stats in _ordered_stats(board).groupby([*ROW_KEYS, *extras], sort=False,
                                                     dropna=False):
        row = info[row_key(key[:len(ROW_KEYS)])]
        line = {
            "method": text(row["method"]), "profile": text(row["profile"]),
            "config": text(row["config_hash"]), "seeds": ",".join(map(str, row["seeds"])), "cases": row["n_cases"],
            "origin": text(row["origin"]), "data": text(_data_label(row)),
            "task v": row["task_version"], "xhbench": text(row["xhbench_version"]),
            **{text(k): text(str(v)) for k, v in zip(extras, key[len(ROW_KEYS):])},
        }
        for rec in stats.to_dict("records"):
            name = f"{rec['target']} {rec['metric']}"
            line[text(name) + arrows[board.higher_is_better.get(rec["metric"])]] = cell(
                rec["mean"], rec["std"])
        if cost:
            line |= {COST_HEADERS[f]: _num(row[f], COST_FORMATS[f]) for f in COST_FIELDS}
        lines.append(line)
    table = pd.DataFrame(lines).fillna("")
    costs = [COST_HEADERS[f] for f in COST_FIELDS] if cost else []
    # the sampling columns only when some row sampled (diffusion methods)
    costs = [c for c in costs if c not in _SAMPLING_HEADERS or (table[c] != "n/a").any()]
    table = table[[c for c in table.columns if c in costs or c not in COST_HEADERS.values()]]
    return table[[c for c in table.columns if c not in costs] + costs]


def _long(board: Leaderboard, cost: bool) -> pd.DataFrame:
    stats = _ordered_stats(board)
    rows = board.rows.assign(seeds=board.rows["seeds"].map(lambda s: ",".join(map(str, s))))
    columns = [*ROW_KEYS, "seeds", *(COST_FIELDS if cost else ())]
    table = stats.merge(rows[columns], on=list(ROW_KEYS), how="left", sort=False)
    table["higher_is_better"] = table["metric"].map(board.higher_is_better)
    order = [*ROW_KEYS, "seeds", *board.group_by, "higher_is_better", "mean", "std", "n",
             "seed_std", *(COST_FIELDS if cost else ())]
    return table[order]


def _latex(board: Leaderboard, cost: bool) -> str:
    arrows = {True: r" $\uparrow$", False: r" $\downarrow$", None: ""}
    table = _wide(board, cost, lambda m, s: _pm(m, s, r"${} \pm {}$"), arrows, _latex_escape)
    try:
        body = table.to_latex(index=False, escape=False)
    except ImportError as exc:  # pandas needs jinja2 for LaTeX
        raise XhbenchError(f"--format latex needs jinja2: {exc}") from exc
    return "".join(f"% {line}\n" for line in _footer(board)) + body


def _footer(board: Leaderboard) -> list[str]:
    rows = board.rows
    versions = ", ".join(map(str, board.task_versions))
    lines = [f"Task {board.task}, version {versions}; runs made with xhbench "
             f"{', '.join(sorted(rows['xhbench_version'].unique()))}; table made with xhbench "
             f"{__version__}."]
    lines += data_lines(board)
    if (rows["origin"] == "phantom").any():
        lines.append("Phantom rows come from synthetic volumes: they check the pipeline and say "
                     "nothing about performance on real data.")
    within = ("" if "setting" in board.group_by
              else " A case's value is the mean over its settings.")
    lines.append(f"Cells: mean ± std across cases (population std, ddof={STD_DDOF}); cases "
                 f"without a value are left out.{within} Several seeds: mean of the run means ± "
                 "mean of the run stds (the std of the run means is seed_std in json and csv).")
    lines += [f"{metric}: {text}" for metric, text in board.conventions.items()]
    lines += skipped_lines(board)
    return lines


def data_lines(board: Leaderboard) -> list[str]:
    """One line per distinct data set, split (label and hash) and case count of the runs."""
    data = board.rows.drop_duplicates(["origin", "dataset", "split", "split_sha256", "n_cases"])
    return [f"Data: {r['origin']} {_data_label(r)}, {r['n_cases']} cases, split sha256 "
            f"{r['split_sha256']}." for r in data.to_dict("records")]


def skipped_lines(board: Leaderboard) -> list[str]:
    """Lines on the runs left out (also printed to stderr by the command)."""
    lines = []
    if board.skipped_unfinished:
        states = ", ".join(f"{count} {state}" for state, count in
                           sorted(board.unfinished_states.items()))
        lines.append(f"Skipped {board.skipped_unfinished} unfinished run(s) (no summary.json)"
                     + (f": {states}" if states else "")
                     + f"; see `xhbench runs list --task {board.task}`.")
    if board.superseded:
        lines.append(f"Left out {board.superseded} earlier run(s) of a seed that was run again "
                     "(the last finished run counts).")
    return lines


def _data_label(row: dict[str, Any]) -> str:
    return f"{row['dataset']} {row['split']}@{str(row['split_sha256'])[:12]}"


def _pm(mean: float, std: float, template: str) -> str:
    return "n/a" if math.isnan(mean) else template.format(_num(mean), _num(std))


def _num(value: float, fmt: str = "{:.4f}") -> str:
    return "n/a" if value is None or math.isnan(value) else fmt.format(value)


def _plain(value: Any) -> Any:
    """numpy scalars to Python, NaN to None."""
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in str(text)).replace("->", r"$\to$")
