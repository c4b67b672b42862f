"""Leaderboards shaped like the paper's tables, with its reported numbers beside them.

A task declares its tables as plain data (``Task.tables``); the runner copies them
into every run's summary, so this module reads results only. A table spec::

    {"title": "...", "layout": "setting_groups" | "per_setting",
     "groups": {"All settings": ["1", ..., "15"], "FM": ["15"], ...},  # setting_groups
     "targets": ["TC", "ET", "WT"], "metric": "dice", "scale": 100, "std_ddof": 1,
     "reported": {"file": "table03_....csv", "target_column": "region",
                  "targets": {"Tumor core": "TC", ...}, "group_column": "setting",
                  "method_column": "method", "column_prefix": ""},
     "note": "..."}

``setting_groups``: a run's value per setting is the mean over cases; a group's
cell is the mean and std (``std_ddof``) of those setting means, as the paper's
Table 3 does. ``per_setting``: one column per setting, mean and std across cases.
Seeds pool as the mean of the run values (and of the run stds). Reported rows are
marked and never enter a measured statistic.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any, Mapping

import pandas as pd

from ..errors import UsageError
from .aggregate import RUN_KEYS, Leaderboard

__all__ = ["paper_table", "reported_rows", "render_paper_table"]

_LABEL_KEYS = ("method", "profile", "config_hash", "origin")


def paper_table(board: Leaderboard, spec: Mapping[str, Any]) -> pd.DataFrame:
    """Measured cells in long form: row label keys, ``target``, ``column``, ``mean``, ``std``."""
    cases = board.cases[(board.cases["metric"] == spec["metric"])
                        & board.cases["target"].isin(spec["targets"])]
    per_setting = (cases.groupby([*RUN_KEYS, "target", "setting"], dropna=False)["value"]
                   .agg(["mean", "std", "count"]).reset_index())
    ddof = spec.get("std_ddof", 1)
    if spec["layout"] == "setting_groups":
        frames = []
        for label, settings in spec["groups"].items():
            chosen = per_setting[per_setting["setting"].isin([str(s) for s in settings])]
            grouped = chosen.groupby([*RUN_KEYS, "target"], dropna=False)["mean"]
            frames.append(pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=ddof)})
                          .reset_index().assign(column=label))
        per_run = pd.concat(frames, ignore_index=True)
    elif spec["layout"] == "per_setting":
        per_case = (cases.groupby([*RUN_KEYS, "target", "setting", "case"])["value"].mean()
                    .groupby(level=[*RUN_KEYS, "target", "setting"]))
        per_run = pd.DataFrame({"mean": per_case.mean(), "std": per_case.std(ddof=ddof)}
                               ).reset_index().rename(columns={"setting": "column"})
    else:
        raise UsageError(f"unknown table layout {spec['layout']!r}")
    pooled = per_run.groupby([*_LABEL_KEYS, "target", "column"], dropna=False, sort=False)
    out = pd.DataFrame({"mean": pooled["mean"].mean(), "std": pooled["std"].mean(),
                        "seeds": pooled["seed"].agg(lambda s: ",".join(map(str, sorted(s))))})
    return out.reset_index()


def reported_rows(spec: Mapping[str, Any]) -> pd.DataFrame:
    """The paper's numbers for a table, in the layout of :func:`paper_table`."""
    info = spec.get("reported")
    if not info:
        return pd.DataFrame(columns=["method", "target", "column", "mean", "std"])
    source = resources.files("xhbench").joinpath("data", "reported", info["file"])
    table = pd.read_csv(source.open(), dtype=str)
    table = table[table["metric"].str.lower() == spec["metric"].lower()]
    targets = info["targets"]
    table = table[table[info["target_column"]].isin(targets)]
    return pd.DataFrame({
        "method": table[info.get("method_column", "method")],
        "target": table[info["target_column"]].map(targets),
        "column": info.get("column_prefix", "") + table[info["group_column"]].astype(str),
        "mean": pd.to_numeric(table["value"]) / spec.get("scale", 1),
        "std": pd.to_numeric(table.get("std"), errors="coerce") / spec.get("scale", 1),
        "source": f"reported (paper, {table['table'].iloc[0]})" if len(table) else "reported",
    }).reset_index(drop=True)


def render_paper_table(board: Leaderboard, name: str, *, with_reported: bool = False) -> str:
    """A markdown table shaped like the paper's ``name`` table."""
    specs = board.tables
    if name not in specs:
        raise UsageError(f"task {board.task} has no table {name!r}; "
                         f"known: {', '.join(specs) or 'none'}")
    spec = specs[name]
    scale = spec.get("scale", 1)
    measured = paper_table(board, spec)
    measured["row"] = measured.apply(
        lambda r: f"{r['method']} [{r['profile']}, {r['origin']}, seeds {r['seeds']}]", axis=1)
    frames = [measured[["row", "target", "column", "mean", "std"]]]
    if with_reported:
        reported = reported_rows(spec)
        reported["row"] = reported["method"] + " — " + reported["source"]
        frames.append(reported[["row", "target", "column", "mean", "std"]])
    cells = pd.concat(frames, ignore_index=True)
    cells["cell"] = [_cell(m * scale, s * scale) for m, s in zip(cells["mean"], cells["std"])]
    columns = _column_order(spec, cells)
    if spec["layout"] == "per_setting":  # wide in settings: one line per row and target
        cells["target"] = pd.Categorical(cells["target"], categories=spec["targets"])
        wide = cells.pivot_table(index=["target", "row"], columns="column", values="cell",
                                 aggfunc="first", sort=False, observed=True)
        wide = wide.sort_index(level="target", sort_remaining=False)
        wide = wide.reindex(columns=[c for c in columns if c in wide.columns])
    else:
        wide = cells.pivot_table(index="row", columns=["target", "column"], values="cell",
                                 aggfunc="first", sort=False)
        wide = wide.reindex(columns=[(t, c) for t in spec["targets"] for c in columns
                                     if (t, c) in wide.columns])
        wide.columns = [f"{target} {column}" for target, column in wide.columns]
    notes = [f"{spec['title']}",
             f"Cells: mean ± std ({'x' + format(scale, 'g') + ', ' if scale != 1 else ''}"
             f"std ddof={spec.get('std_ddof', 1)}). " + _layout_note(spec),
             "Rows marked 'reported' are the paper's printed numbers: not measured here, never "
             "pooled with measured rows." if with_reported else
             "Add --with-reported to show the paper's numbers beside these.",
             *([spec["note"]] if spec.get("note") else [])]
    table = wide.fillna("").reset_index().to_markdown(index=False, disable_numparse=True)
    return table + "\n\n" + "\n".join(f"- {line}" for line in notes) + "\n"


def _column_order(spec: Mapping[str, Any], cells: pd.DataFrame) -> list[str]:
    declared = list(spec["groups"]) if spec["layout"] == "setting_groups" else list(
        spec.get("columns", []))
    return declared + [c for c in dict.fromkeys(cells["column"]) if c not in declared]


def _layout_note(spec: Mapping[str, Any]) -> str:
    if spec["layout"] == "setting_groups":
        return ("A group's cell is the mean and std over its settings of the per-setting means "
                "across cases.")
    return "One column per setting; std across cases."


def _cell(mean: float, std: float) -> str:
    if mean is None or math.isnan(mean):
        return ""
    return f"{mean:.2f}" if std is None or math.isnan(std) else f"{mean:.2f} ± {std:.2f}"
