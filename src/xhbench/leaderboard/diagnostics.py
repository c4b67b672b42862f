"""``xhbench leaderboard --diagnostics``: per row, the variant and the diagnostics its
methods recorded (``summary.json["variant"]`` and ``["diagnostics"]``, e.g. ``ours``'
``prior_contribution``), each averaged over the row's runs."""

from __future__ import annotations

import json

import pandas as pd

from ..errors import UsageError
from .aggregate import Leaderboard

__all__ = ["diagnostics_table", "render_diagnostics"]


def diagnostics_table(board: Leaderboard) -> pd.DataFrame:
    """One line per leaderboard row: method, profile, variant, config, seeds, then one
    column per diagnostic any of the rows recorded (empty where a row has none)."""
    lines = []
    for row in board.rows.to_dict("records"):
        lines.append({"method": row["method"], "profile": row["profile"],
                      "variant": row.get("variant", ""), "config": row["config_hash"],
                      "seeds": ",".join(map(str, row["seeds"])),
                      **(row.get("diagnostics") or {})})
    return pd.DataFrame(lines)


def render_diagnostics(board: Leaderboard, fmt: str) -> str:
    table = diagnostics_table(board)
    if fmt == "json":
        records = [{k: v for k, v in rec.items() if not (isinstance(v, float) and pd.isna(v))}
                   for rec in table.to_dict("records")]
        return json.dumps({"task": board.task, "rows": records}, indent=2) + "\n"
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "markdown":
        return table.to_markdown(index=False, floatfmt=".4g", missingval="") + "\n"
    raise UsageError(f"--diagnostics prints markdown, csv or json, not {fmt}")
