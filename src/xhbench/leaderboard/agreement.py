"""Do two metrics rank the methods alike? Kendall's tau-b and Spearman's rho (scipy) between
a reference metric's ranking of the leaderboard rows (e.g. SSIM) and each other metric's
ranking of the same rows, per target (e.g. downstream Dice drop or SUVmax error for the
pair T1->T2).

Each metric is oriented so that larger is better (lower-is-better metrics negated) before
the coefficients are computed, so +1 means the same order and -1 the reverse. A row is
one leaderboard row (a method at one config, its seeds pooled) and its value is the row's
mean over cases; rows without a value for either metric are left out of that comparison.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from ..errors import UsageError
from .aggregate import ROW_KEYS, Leaderboard

__all__ = ["MIN_ROWS", "rank_agreement", "render_agreement"]

#: fewer rows than this give no coefficient (NaN): two points always agree or disagree
MIN_ROWS = 3
_COLUMNS = ["target", "reference", "metric", "rows", "kendall_tau", "kendall_p",
            "spearman_rho", "spearman_p"]


def rank_agreement(board: Leaderboard, reference: str,
                   metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One line per target holding ``reference`` and per other metric of that target
    (``metrics``, default all): ``target, reference, metric, rows, kendall_tau, kendall_p,
    spearman_rho, spearman_p``; a board grouped by more (e.g. ``--by setting``) gets one
    line per group and target, the group's keys first.

    Raises:
        UsageError: ``reference`` (or a name in ``metrics``) is no metric of the board.
    """
    from scipy.stats import kendalltau, spearmanr

    known = sorted(set(board.stats["metric"]))
    for name in [reference, *(metrics or ())]:
        if name not in known:
            raise UsageError(f"rank agreement: no metric {name!r} in the {board.task} "
                             f"leaderboard; known: {', '.join(known)}")
    stats = board.stats.copy()
    sign = stats["metric"].map(lambda m: 1.0 if board.higher_is_better.get(m, True) else -1.0)
    stats["score"] = stats["mean"] * sign
    stats["row"] = stats[list(ROW_KEYS)].astype(str).agg("|".join, axis=1)
    keys = list(board.group_by[:-1])  # the grouping keys but the metric, target last
    lines = []
    for values, group in stats.groupby(keys, sort=False):
        wide = group.pivot(index="row", columns="metric", values="score")
        if reference not in wide:
            continue
        others = [m for m in (metrics or wide.columns) if m != reference and m in wide]
        for metric in others:
            both = wide[[reference, metric]].dropna()
            line = {**dict(zip(keys, values)), "reference": reference, "metric": metric,
                    "rows": len(both), "kendall_tau": math.nan, "kendall_p": math.nan,
                    "spearman_rho": math.nan, "spearman_p": math.nan}
            if len(both) >= MIN_ROWS:
                tau = kendalltau(both[reference], both[metric])
                rho = spearmanr(both[reference], both[metric])
                line.update(kendall_tau=float(tau.statistic), kendall_p=float(tau.pvalue),
                            spearman_rho=float(rho.statistic), spearman_p=float(rho.pvalue))
            lines.append(line)
    return pd.DataFrame(lines, columns=[*keys, *_COLUMNS[1:]])


def render_agreement(table: pd.DataFrame) -> str:
    """The agreement lines as a markdown table with a one-line legend."""
    if table.empty:
        return "No target holds the reference metric and another one.\n"
    shown = table.copy()
    for column in ("kendall_tau", "spearman_rho"):
        shown[column] = shown[column].map(lambda v: "n/a" if math.isnan(v) else f"{v:+.3f}")
    for column in ("kendall_p", "spearman_p"):
        shown[column] = shown[column].map(lambda v: "n/a" if math.isnan(v) else f"{v:.3g}")
    legend = (f"\nRank agreement with {table['reference'].iloc[0]} per target: Kendall's "
              "tau-b and Spearman's rho over the leaderboard rows (row means; each metric "
              "oriented so that larger is better: +1 same order, -1 reversed; two-sided p; "
              f"fewer than {MIN_ROWS} rows: n/a).\n\n")
    return legend + shown.to_markdown(index=False, disable_numparse=True) + "\n"
