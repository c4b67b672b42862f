"""Choosing what a leaderboard shows: ``--columns`` (targets, metrics and groups; the name
``diagnostics`` adds :mod:`~xhbench.leaderboard.diagnostics`' table) and ``--format html``."""

from __future__ import annotations

import dataclasses
import html
import math
from typing import Sequence

import pandas as pd

from ..errors import UsageError
from .aggregate import Leaderboard
from .render import _ARROWS, _footer, _pm, _wide

__all__ = ["DIAGNOSTICS", "render_html", "select_columns"]

#: The ``--columns`` name of the summary's ``diagnostics`` entries.
DIAGNOSTICS = "diagnostics"


def select_columns(board: Leaderboard, columns: Sequence[str]) -> Leaderboard:
    """``board`` with only the groups whose target, metric or any grouping value (e.g. a
    setting) is one of ``columns`` (``diagnostics`` is not a group and selects none)."""
    wanted = [c for c in columns if c != DIAGNOSTICS]
    if not wanted:
        return board
    keys = list(board.group_by)
    stats = board.stats
    keep = stats[keys].astype(str).isin(wanted).any(axis=1)
    if not keep.any():
        known = sorted({str(v) for key in keys for v in stats[key].unique()})
        raise UsageError(f"--columns {','.join(wanted)}: no such target, metric or group; "
                         f"known: {', '.join(known)}")
    return dataclasses.replace(board, stats=stats[keep])


def render_html(board: Leaderboard, *, cost: bool = False,
                diagnostics: pd.DataFrame | None = None) -> str:
    """A standalone HTML page: the wide table (pandas Styler) and the footer's notes."""
    table = _wide(board, cost, lambda m, s: _pm(m, s, "{} ± {}"), _ARROWS, html.escape)
    styled = (table.style.hide(axis="index")
              .set_caption(f"xhbench leaderboard: {html.escape(board.task)}")
              .set_table_attributes('class="leaderboard"'))
    parts = [styled.to_html()]
    if diagnostics is not None and not diagnostics.empty:
        parts.append(diagnostics.style.hide(axis="index").format(_fmt, na_rep="")
                     .set_caption("diagnostics (mean over the row's runs)").to_html())
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in _footer(board))
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>xhbench leaderboard: {html.escape(board.task)}</title>"
            "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:2px 6px}caption{font-weight:bold}</style></head><body>\n"
            + "\n".join(parts) + f"\n<ul>{notes}</ul>\n</body></html>\n")


def _fmt(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)
