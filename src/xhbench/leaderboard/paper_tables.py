"""Leaderboards shaped like the paper's tables, with its reported numbers beside them.

A task declares its tables as plain data (``Task.tables``); the runner copies them
into every run's summary, so this module reads results only. A table spec::

    {"title": "...",
     "layout": "setting_groups" | "per_setting" | "blocks" | "per_target" | "pairs",
     "metric": "dice" or ["psnr", "nmse", "ssim"], "targets": ["TC", "ET", "WT"],
     "groups": {"All settings": ["1", ..., "15"], "FM": ["15"], ...},  # setting_groups
               # (or [label, settings] pairs, as a run summary stores them: in order)
     "columns": ["1", ..., "15"],                 # per_setting column / blocks block order
     "scale": 100, "std_ddof": 1, "note": "...",
     "reported": {"file": "table03_....csv", "target_column": "region",
                  "targets": {"Tumor core": "TC", ...}, "group_column": "setting",
                  "method_column": "method", "label": "ours + {config} (ID {config_id})",
                  "column_prefix": "", "pair_columns": ["source", "target"],
                  "rename": {"Flair": "FLAIR"},
                  "beside": {"pix2pix2d": "Pix2Pix 2D", ...}}}

Layouts. ``setting_groups`` (Table 3): a run's value per setting is the mean over
cases; a group's cell is the mean and std (``std_ddof``) of those setting means.
``per_setting`` (Table 10): one column per setting, mean and std across cases.
``blocks`` (Table 6): one block of lines per setting (a ``setting`` column), one
column per metric and target, mean and std across cases. ``per_target`` (Table 1):
one column per target and metric, mean and std across cases. ``pairs`` (Tables
2/9): targets ``S->T``; one line per source, one column per target and metric.
Seeds pool as the mean of the run values and of the run stds. Reported rows are
marked and never enter a measured statistic; they are named by ``label`` (a
``str.format_map`` template over the CSV's columns) if given, else by
``method_column``; in the setting layouts ``group_column`` gives their setting.
``file`` may list several files: a later file only adds the cells (method, target,
metric, column) that the earlier ones lack, e.g. Table 1's methods and its T1->T1ce
column without std beside Table 8's cells with std. ``beside`` maps a measured method to
the reported row of the same method: that reported row is printed right after the
method's measured rows; reported rows without a measured counterpart come last. A
missing file, or a column the entry names that its file lacks, is refused with both names.
"""

from __future__ import annotations

import math
from importlib import resources
from string import Formatter
from typing import Any, Mapping

import pandas as pd

from ..errors import UsageError, XhbenchError
from .aggregate import ROW_KEYS, RUN_KEYS, Leaderboard
from .render import data_lines

__all__ = ["LAYOUTS", "paper_table", "paper_table_frame", "reported_rows", "render_paper_table"]

LAYOUTS = ("setting_groups", "per_setting", "blocks", "per_target", "pairs")
_BY_SETTING = ("per_setting", "blocks")
# What a row's name always shows, and what it adds when rows would otherwise look alike.
_NAME_KEYS = ("method", "profile", "origin")
_DISTINGUISHING = {"config_hash": "config {}", "dataset": "{}", "split": "split {}",
                   "split_sha256": "cases {}", "n_cases": "{} cases", "task_version": "task v{}",
                   "xhbench_version": "xhbench {}"}
_HASHES = ("config_hash", "split_sha256")
_CELL = ["target", "column", "metric", "mean", "std"]


def _metrics(spec: Mapping[str, Any]) -> list[str]:
    metric = spec["metric"]
    return [metric] if isinstance(metric, str) else list(metric)


def paper_table(board: Leaderboard, spec: Mapping[str, Any]) -> pd.DataFrame:
    """Measured cells in long form: row label keys, ``seeds`` and ``_CELL`` columns."""
    if spec["layout"] not in LAYOUTS:
        raise UsageError(f"unknown table layout {spec['layout']!r}; known: {', '.join(LAYOUTS)}")
    cases = board.cases[board.cases["metric"].isin(_metrics(spec))
                        & board.cases["target"].isin(spec["targets"])]
    keys = [*RUN_KEYS, "target", "metric"]
    ddof = spec.get("std_ddof", 1)
    if spec["layout"] == "setting_groups":
        per_setting = cases.groupby([*keys, "setting"], dropna=False)["value"].mean()
        per_setting = per_setting.reset_index()
        frames = []
        for label, settings in spec["groups"].items():
            chosen = per_setting[per_setting["setting"].isin([str(s) for s in settings])]
            grouped = chosen.groupby(keys, dropna=False)["value"]
            frames.append(pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=ddof)})
                          .reset_index().assign(column=label))
        per_run = pd.concat(frames, ignore_index=True)
    else:
        by = [*keys, "setting"] if spec["layout"] in _BY_SETTING else keys
        per_case = cases.groupby([*by, "case"], dropna=False)["value"].mean()
        grouped = per_case.groupby(level=by, dropna=False)
        per_run = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=ddof)})
        per_run = per_run.reset_index()
        per_run["column"] = (per_run["setting"] if spec["layout"] in _BY_SETTING
                             else per_run["metric"])
    pooled = per_run.groupby([*ROW_KEYS, "target", "column", "metric"], dropna=False,
                             sort=False)
    out = pd.DataFrame({"mean": pooled["mean"].mean(), "std": pooled["std"].mean(),
                        "seeds": pooled["seed"].agg(lambda s: ",".join(map(str, sorted(s))))})
    return out.reset_index()


def reported_rows(spec: Mapping[str, Any]) -> pd.DataFrame:
    """The paper's numbers for a table, in the cell layout of :func:`paper_table`."""
    info = spec.get("reported")
    if not info:
        return pd.DataFrame(columns=["method", "source", *_CELL])
    files = [info["file"]] if isinstance(info["file"], str) else list(info["file"])
    rows = pd.concat([_reported_file(spec, info, name) for name in files], ignore_index=True)
    rows = rows.drop_duplicates(["method", "target", "column", "metric"], keep="first")
    tables = rows.groupby("method", sort=False)["source"].agg(lambda t: ", ".join(dict.fromkeys(t)))
    rows["source"] = "reported (paper, " + rows["method"].map(tables) + ")"
    return rows.reset_index(drop=True)


def _reported_file(spec: Mapping[str, Any], info: Mapping[str, Any], name: str
                   ) -> pd.DataFrame:
    """One reported CSV's cells; ``source`` holds the paper table's name."""
    table = _read_reported(info, name)
    table["metric"] = table["metric"].str.lower()
    table = table[table["metric"].isin([m.lower() for m in _metrics(spec)])]
    if "pair_columns" in info:
        rename = info.get("rename", {})
        src, dst = info["pair_columns"]
        target = (table[src].map(lambda n: rename.get(n, n)) + "->"
                  + table[dst].map(lambda n: rename.get(n, n)))
        if "dimension" in table:
            table = table.assign(method=table["method"] + " " + table["dimension"])
    else:
        target = table[info["target_column"]].map(info["targets"])
    table = table.assign(target=target)
    table = table[table["target"].isin(spec["targets"])]
    scale = spec.get("scale", 1)
    if spec["layout"] in ("per_target", "pairs"):
        column = table["metric"]
    else:
        column = info.get("column_prefix", "") + table[info["group_column"]].astype(str)
    if "label" in info:
        method = [info["label"].format_map(row) for row in table.to_dict("records")]
    else:
        method = table[info.get("method_column", "method")].tolist()
    return pd.DataFrame({
        "method": method,
        "source": table["table"],
        "target": table["target"], "column": column, "metric": table["metric"],
        "mean": pd.to_numeric(table["value"], errors="coerce") / scale,
        "std": pd.to_numeric(table["std"], errors="coerce") / scale if "std" in table
        else float("nan"),
    })


def _read_reported(info: Mapping[str, Any], name: str) -> pd.DataFrame:
    """The CSV ``name`` of ``xhbench/data/reported``, refused unless it has the columns the
    table's ``reported`` entry reads."""
    source = resources.files("xhbench").joinpath("data", "reported", name)
    if not source.is_file():
        raise XhbenchError(f"reported file {name} not found in xhbench/data/reported")
    table = pd.read_csv(source.open(), dtype=str, keep_default_na=False)
    missing = [c for c in dict.fromkeys(["table", "metric", "value", *_named_columns(info)])
               if c is not None and c not in table]
    if missing:
        raise XhbenchError(f"reported file {name} has no column {', '.join(missing)}")
    return table


def _named_columns(info: Mapping[str, Any]) -> list[str | None]:
    """The columns a ``reported`` entry reads: the pair or target column, the group column,
    and the method column or the fields its ``label`` format names (None where unused)."""
    if "label" in info:
        methods = [field for _, field, _, _ in Formatter().parse(info["label"]) if field]
    else:
        methods = [info.get("method_column", "method")]
    return [*info.get("pair_columns", [info.get("target_column")]), info.get("group_column"),
            *methods]


def paper_table_frame(board: Leaderboard, name: str, *, with_reported: bool = False
                      ) -> tuple[pd.DataFrame, list[str], set[str]]:
    """The table shaped like the paper's table ``name``: ``(table, notes, reported)`` with
    text cells, the lines printed under it and the names of its reported rows."""
    if name not in board.tables:
        raise UsageError(f"task {board.task} has no table {name!r}; "
                         f"known: {', '.join(board.tables) or 'none'}")
    spec = board.tables[name]
    measured = paper_table(board, spec)
    measured["row"] = _row_names(measured, _variants(board))
    frames = [measured[["row", *_CELL]]]
    reported_names: set[str] = set()
    if with_reported:
        reported = reported_rows(spec)
        reported["row"] = reported["method"] + " — " + reported["source"]
        reported_names = set(reported["row"])
        frames = [_beside(measured, reported, (spec.get("reported") or {}).get("beside", {}))]
    cells = pd.concat(frames, ignore_index=True)
    scale = spec.get("scale", 1)
    cells["cell"] = [_cell(m * scale, s * scale, percent=scale == 100)
                     for m, s in zip(cells["mean"], cells["std"])]
    table = _pivot(spec, cells)
    notes = [spec["title"],
             f"Cells: mean ± std ({'x' + format(scale, 'g') + ', ' if scale != 1 else ''}"
             f"std ddof={spec.get('std_ddof', 1)}). {_LAYOUT_NOTES[spec['layout']]}",
             "Rows marked 'reported' are the paper's printed numbers: not measured here, never "
             "pooled with measured rows." if with_reported else
             "Add --with-reported to show the paper's numbers beside these.",
             *data_lines(board),
             *([spec["note"]] if spec.get("note") else [])]
    return table.fillna(""), notes, reported_names


def render_paper_table(board: Leaderboard, name: str, *, with_reported: bool = False) -> str:
    """A markdown table shaped like the paper's table ``name``."""
    table, notes, _ = paper_table_frame(board, name, with_reported=with_reported)
    text = table.to_markdown(index=False, disable_numparse=True)
    return text + "\n\n" + "\n".join(f"- {line}" for line in notes) + "\n"


def _beside(measured: pd.DataFrame, reported: pd.DataFrame,
            beside: Mapping[str, str]) -> pd.DataFrame:
    """Measured and reported cells, each measured method's rows followed by the reported
    row ``beside`` names for it; the other reported rows after all measured ones."""
    parts, placed = [], set()
    for method in dict.fromkeys(measured["method"]):
        parts.append(measured[measured["method"] == method])
        name = beside.get(method)
        if name is not None and name not in placed:
            parts.append(reported[reported["method"] == name])
            placed.add(name)
    parts.append(reported[~reported["method"].isin(placed)])
    return pd.concat([part[["row", *_CELL]] for part in parts], ignore_index=True)


def _variants(board: Leaderboard) -> dict[str, str]:
    """config hash -> the variant its runs recorded (e.g. an ablation's switches)."""
    rows = board.rows
    if "variant" not in rows:
        return {}
    return {h: v for h, v in zip(rows["config_hash"], rows["variant"]) if v}


def _row_names(measured: pd.DataFrame, variants: dict[str, str] | None = None) -> list[str]:
    """``method [profile, origin, seeds s]``; rows that only differ in another row key (an
    ablation's config hash, a split, an xhbench version) also name what tells them apart:
    the variant the method recorded, where it did, and the config hash."""
    rows = measured[[*ROW_KEYS, "seeds"]].drop_duplicates()
    alike = rows.groupby(list(_NAME_KEYS), dropna=False)
    differs = {key: alike[key].transform("nunique") > 1 for key in _DISTINGUISHING}
    names = {}
    for i, row in rows.iterrows():
        extra = [fmt.format(str(row[key])[:8] if key in _HASHES else row[key])
                 for key, fmt in _DISTINGUISHING.items() if differs[key][i]]
        if differs["config_hash"][i] and (variants or {}).get(row["config_hash"]):
            extra.insert(0, variants[row["config_hash"]])
        names[_key(row)] = (f"{row['method']} [{', '.join([row['profile'], row['origin'], *extra])}"
                             f", seeds {row['seeds']}]")
    return [names[_key(row)] for _, row in measured[[*ROW_KEYS, "seeds"]].iterrows()]


def _key(row: pd.Series) -> str:
    return "\x1f".join(map(str, row))  # NaN-safe, unlike a tuple of floats


def _pivot(spec: Mapping[str, Any], cells: pd.DataFrame) -> pd.DataFrame:
    layout, targets = spec["layout"], list(spec["targets"])
    if layout == "per_setting":  # one line per row and target, one column per setting
        columns = list(spec.get("columns", []))
        columns += [c for c in dict.fromkeys(cells["column"]) if c not in columns]
        cells = cells.assign(order=cells["target"].map(targets.index))
        wide = cells.pivot_table(index=["order", "target", "row"], columns="column",
                                 values="cell", aggfunc="first", sort=False)
        wide = wide.sort_index(level="order", sort_remaining=False).droplevel("order")
        return wide.reindex(columns=[c for c in columns if c in wide.columns]).reset_index()
    if layout == "blocks":  # one block of lines per setting, columns (metric, target)
        blocks = list(spec.get("columns", []))
        blocks += [c for c in dict.fromkeys(cells["column"]) if c not in blocks]
        wide = cells.pivot_table(index=["column", "row"], columns=["metric", "target"],
                                 values="cell", aggfunc="first", sort=False)
        order = [(m, t) for m in _metrics(spec) for t in targets if (m, t) in wide.columns]
        wide = wide.reindex(columns=order)
        wide.columns = [f"{m} {t}" for m, t in wide.columns]
        wide = wide.reset_index().rename(columns={"column": "setting"})
        wide["setting"] = pd.Categorical(wide["setting"], categories=blocks)
        wide["row"] = pd.Categorical(wide["row"], categories=list(dict.fromkeys(cells["row"])))
        return wide.sort_values(["setting", "row"], kind="stable")
    if layout == "pairs":  # targets "S->T": one line per row and source
        split = cells["target"].str.split("->", n=1, expand=True)
        cells = cells.assign(source=split[0], target=split[1])
        sources = list(dict.fromkeys(t.split("->")[0] for t in targets))
        names = list(dict.fromkeys(t.split("->")[1] for t in targets))
        wide = cells.pivot_table(index=["row", "source"], columns=["target", "metric"],
                                 values="cell", aggfunc="first", sort=False)
        order = [(t, m) for t in names for m in _metrics(spec) if (t, m) in wide.columns]
        wide = wide.reindex(columns=order)
        wide.columns = [f"->{t} {m}" for t, m in wide.columns]
        wide = wide.reset_index()
        wide["row"] = pd.Categorical(wide["row"], categories=list(dict.fromkeys(cells["row"])))
        wide["source"] = pd.Categorical(wide["source"], categories=sources)
        return wide.sort_values(["row", "source"], kind="stable")
    column_order = list(spec["groups"]) if layout == "setting_groups" else _metrics(spec)
    wide = cells.pivot_table(index="row", columns=["target", "column"], values="cell",
                             aggfunc="first", sort=False)
    wide = wide.reindex(columns=[(t, c) for t in targets for c in column_order
                                 if (t, c) in wide.columns])
    wide.columns = [f"{target} {column}" for target, column in wide.columns]
    return wide.reset_index()


_LAYOUT_NOTES = {
    "setting_groups": "A group's cell is the mean and std over its settings of the "
                      "per-setting means across cases.",
    "per_setting": "One column per setting; std across cases.",
    "blocks": "One block of lines per setting; std across cases.",
    "per_target": "Std across cases.",
    "pairs": "One line per source modality; std across cases.",
}


def _cell(mean: float, std: float, percent: bool = False) -> str:
    if mean is None or math.isnan(mean):
        return ""
    digits = 2 if percent or abs(mean) >= 10 else 4
    if std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
