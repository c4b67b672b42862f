"""Paired comparison of leaderboard rows against one method (``--against METHOD``).

For each other row and each group (``target, metric``; with ``--by setting`` also the
setting) the per-case difference ``row - METHOD`` is formed over the cases both have
(matched by case id). A case's value is the leaderboard's case value: the mean over
its lines in the group (its settings), then the mean over the row's runs (seeds).
Cases without a value in either row are left out; ``n`` counts the pairs.

- mean difference with a percentile bootstrap confidence interval (resampling cases
  with replacement; ``resamples`` draws from ``numpy.random.default_rng(seed)``, the
  same seed for every comparison, so results do not depend on the order of rows);
- two-sided Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``, zero differences
  dropped as in Wilcoxon's original method; all differences zero gives p = 1);
- Holm's step-down correction over the rows compared, separately per group;
- verdict: ``better`` / ``worse`` (than METHOD, respecting the metric's direction) when
  the Holm-corrected p is below ``alpha`` and the mean difference is not zero, else
  ``n.s.``; ``differs`` when the metric's direction is unknown; ``n too small`` below
  :data:`MIN_PAIRS` pairs, where no two-sided Wilcoxon p can fall below 0.05 (its
  smallest exact value with 5 pairs is 2/32) and the bootstrap interval of a handful of
  cases (one: a single point) says nothing.

Only rows of the same data origin and data set as a row of METHOD are compared; when
METHOD has several such rows, the one with the compared row's profile is used. Rows
scored on different cases (split hash or case ids differ) are refused, naming both.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import UsageError
from .aggregate import ROW_KEYS, RUN_KEYS, Leaderboard
from .render import row_key

__all__ = ["PAIRED_FORMAT", "PairedComparison", "attach_paired", "bootstrap_ci", "case_values",
           "holm", "paired_comparison", "paired_document", "paired_test", "render_paired",
           "wilcoxon_p"]

PAIRED_FORMAT = "xhbench-paired/1"
MATCH_KEYS = ("origin", "dataset")
#: Fewer pairs than this give no usable interval or test (see the module docstring).
MIN_PAIRS = 6


@dataclass(frozen=True)
class PairedComparison:
    """The result of :func:`paired_comparison`.

    Attributes:
        table: one line per compared row and group: the compared row's ``ROW_KEYS``, the
            group keys, ``higher_is_better``, ``n``, ``mean_diff``, ``ci_low``, ``ci_high``,
            ``p``, ``p_holm``, ``verdict``, and ``label`` (the method, with profile and config
            when one method has several rows).
        references: the METHOD rows used (``ROW_KEYS`` each).
        left_out: lines on rows that could not be compared.
    """

    task: str
    against: str
    group_by: tuple[str, ...]
    table: pd.DataFrame
    references: list[dict[str, Any]]
    resamples: int
    seed: int
    alpha: float
    confidence: float
    left_out: list[str] = field(default_factory=list)


# -- statistics ---------------------------------------------------------------------------
def bootstrap_ci(diff: Sequence[float], *, resamples: int = 10_000, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diff`` (NaN, NaN when empty)."""
    diff = np.asarray(diff, dtype=np.float64)
    if diff.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // diff.size)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        means[start:stop] = diff[rng.integers(0, diff.size, size=(stop - start, diff.size))
                                 ].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def wilcoxon_p(diff: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value; 1 when every difference is zero, NaN when empty."""
    from scipy.stats import wilcoxon

    diff = np.asarray(diff, dtype=np.float64)
    if diff.size == 0:
        return float("nan")
    if not np.any(diff != 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)
    return min(p, 1.0)


def paired_test(diff: Sequence[float], *, resamples: int = 10_000, seed: int = 0,
                confidence: float = 0.95) -> dict[str, float]:
    """``n``, ``mean_diff``, ``ci_low``, ``ci_high`` and ``p`` of paired differences."""
    diff = np.asarray(diff, dtype=np.float64)
    low, high = bootstrap_ci(diff, resamples=resamples, seed=seed, confidence=confidence)
    return {"n": int(diff.size), "mean_diff": float(diff.mean()) if diff.size else float("nan"),
            "ci_low": low, "ci_high": high, "p": wilcoxon_p(diff)}


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values; NaN entries stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    running = 0.0
    for rank, index in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def _verdict(mean_diff: float, p_holm: float, higher_is_better: bool | None,
             alpha: float) -> str:
    if math.isnan(p_holm) or p_holm >= alpha or mean_diff == 0 or math.isnan(mean_diff):
        return "n.s."
    if higher_is_better is None:
        return "differs"
    return "better" if (mean_diff > 0) == higher_is_better else "worse"


# -- from a leaderboard -------------------------------------------------------------------
def case_values(board: Leaderboard) -> pd.DataFrame:
    """One value per row, group and case: mean over the case's lines in a run, then over runs."""
    group = list(board.group_by)
    per_run = (board.cases.groupby([*RUN_KEYS, *group, "case"], sort=False, dropna=False)
               ["value"].mean().reset_index())
    return (per_run.groupby([*ROW_KEYS, *group, "case"], sort=False, dropna=False)["value"]
            .mean().reset_index())


def paired_comparison(board: Leaderboard, against: str, *, resamples: int = 10_000,
                      seed: int = 0, alpha: float = 0.05,
                      confidence: float = 0.95) -> PairedComparison:
    """Compare every other row of ``board`` with the rows of method ``against``.

    Raises:
        UsageError: ``against`` has no row, or several rows that fit one compared row
            equally well (same origin, data set and profile).
    """
    rows = board.rows.to_dict("records")
    refs = [row for row in rows if row["method"] == against]
    if not refs:
        methods = ", ".join(sorted({row["method"] for row in rows}))
        raise UsageError(f"--against {against}: no finished run of that method for task "
                         f"{board.task} (methods: {methods})")
    values = case_values(board)
    by_row = {row_key(key): frame for key, frame in values.groupby(list(ROW_KEYS), sort=False,
                                                                    dropna=False)}
    group = list(board.group_by)
    others = [row for row in rows if row["method"] != against]
    counts = pd.Series([row["method"] for row in others]).value_counts()
    lines, left_out, used = [], [], {}
    for row in others:
        ref = _reference_for(row, refs, against)
        label = row["method"]
        if counts.get(label, 0) > 1:
            label = f"{label} ({row['profile']}, {str(row['config_hash'])[:8]}, {row['origin']})"
        if ref is None:
            left_out.append(f"{label}: no {against} row on {row['origin']} {row['dataset']} data")
            continue
        ref_key = tuple(ref[k] for k in ROW_KEYS)
        used[ref_key] = {k: _plain(ref[k]) for k in ROW_KEYS}
        mine = by_row.get(row_key(row[k] for k in ROW_KEYS))
        theirs = by_row.get(row_key(ref_key))
        if mine is None or theirs is None:
            left_out.append(f"{label}: no per-case values")
            continue
        _require_same_cases(label, row, set(mine["case"]), against, ref, set(theirs["case"]))
        merged = mine.merge(theirs[[*group, "case", "value"]], on=[*group, "case"],
                            suffixes=("", "_ref"))
        matched = {key: frame for key, frame in merged.groupby(group, sort=False)}
        for key in mine[group].drop_duplicates().itertuples(index=False, name=None):
            selected = matched.get(key)
            diff = (np.empty(0) if selected is None else
                    (selected["value"] - selected["value_ref"]).to_numpy(dtype=np.float64))
            diff = diff[~np.isnan(diff)]
            keys = dict(zip(group, key))
            lines.append({**{k: row[k] for k in ROW_KEYS}, "label": label, **keys,
                          "higher_is_better": board.higher_is_better.get(keys["metric"]),
                          **paired_test(diff, resamples=resamples, seed=seed,
                                        confidence=confidence)})
    columns = [*ROW_KEYS, "label", *group, "higher_is_better", "n", "mean_diff", "ci_low",
               "ci_high", "p", "p_holm", "verdict"]
    table = pd.DataFrame(lines, columns=[c for c in columns if c not in ("p_holm", "verdict")])
    table["p_holm"] = np.nan
    if len(table):
        for _, index in table.groupby(group, sort=False, dropna=False).groups.items():
            table.loc[index, "p_holm"] = holm(table.loc[index, "p"].to_numpy(dtype=float))
    table["verdict"] = [
        "n too small" if rec["n"] < MIN_PAIRS else
        _verdict(rec["mean_diff"], rec["p_holm"], rec["higher_is_better"], alpha)
        for rec in table.to_dict("records")]
    return PairedComparison(board.task, against, board.group_by, table[columns],
                            list(used.values()), resamples, seed, alpha, confidence, left_out)


def _require_same_cases(label: str, row: dict, cases: set, against: str, ref: dict,
                        ref_cases: set) -> None:
    """Refuse to pair rows scored on different cases (a case id may name different
    volumes in two splits, e.g. phantoms of different sizes)."""
    same_split = row_key([row["split_sha256"]]) == row_key([ref["split_sha256"]])
    if same_split and cases == ref_cases:
        return
    only = sorted(cases ^ ref_cases)
    detail = (f"; case ids in one only: {', '.join(map(str, only[:5]))}"
              + (f" and {len(only) - 5} more" if len(only) > 5 else "") if only else "")
    raise UsageError(
        f"--against {against}: the {label} row and the {against} row were scored on different "
        f"cases ({label}: {_split_label(row)}, {len(cases)} cases; {against}: "
        f"{_split_label(ref)}, {len(ref_cases)} cases{detail}); compare runs of the same "
        "data and split (e.g. one --results folder per phantom size)")


def _split_label(row: dict) -> str:
    return f"{row['dataset']} {row['split']}@{str(row['split_sha256'])[:12]}"


def _reference_for(row: dict, refs: list[dict], against: str) -> dict | None:
    candidates = [ref for ref in refs if all(ref[k] == row[k] for k in MATCH_KEYS)]
    if len(candidates) > 1:
        candidates = [ref for ref in candidates if ref["profile"] == row["profile"]]
    if len(candidates) > 1:
        found = "; ".join(f"profile {r['profile']}, config {str(r['config_hash'])[:8]}, "
                          f"{r['n_cases']} cases" for r in candidates)
        raise UsageError(f"--against {against}: several rows of {against} fit the "
                         f"{row['method']} row ({found}); keep one of them in the results "
                         "folder (or use a separate --results folder)")
    return candidates[0] if candidates else None


# -- output ------------------------------------------------------------------------------
def paired_document(comparison: PairedComparison) -> dict[str, Any]:
    """A JSON-ready document (NaN as ``null``)."""
    keys = list(comparison.group_by)
    return {
        "format": PAIRED_FORMAT,
        "task": comparison.task,
        "against": comparison.against,
        "references": comparison.references,
        "group_by": list(comparison.group_by),
        "difference": f"row - {comparison.against}, per case (matched by case id)",
        "case_value": "mean over the case's lines in the group (e.g. its settings), then "
                      "over the row's runs (seeds); only cases with a value in both rows",
        "bootstrap": {"resamples": comparison.resamples, "seed": comparison.seed,
                      "confidence": comparison.confidence, "interval": "percentile",
                      "statistic": "mean difference"},
        "test": "Wilcoxon signed-rank, two-sided (scipy.stats.wilcoxon, zero_method='wilcox'; "
                "all-zero differences: p = 1)",
        "correction": "Holm, across the rows compared, per " + ", ".join(keys),
        "alpha": comparison.alpha,
        "comparisons": [
            {**{k: _plain(rec[k]) for k in ROW_KEYS}, "label": rec["label"],
             **{k: _plain(rec[k]) for k in keys},
             "higher_is_better": _plain(rec["higher_is_better"]), "n": _plain(rec["n"]),
             "mean_diff": _plain(rec["mean_diff"]),
             "ci": [_plain(rec["ci_low"]), _plain(rec["ci_high"])],
             "p": _plain(rec["p"]), "p_holm": _plain(rec["p_holm"]), "verdict": rec["verdict"]}
            for rec in comparison.table.to_dict("records")],
        "left_out": list(comparison.left_out),
    }


def render_paired(comparison: PairedComparison, fmt: str = "markdown") -> str:
    """The comparison as a markdown section (table and notes) or as JSON."""
    if fmt == "json":
        return json.dumps(paired_document(comparison), indent=2) + "\n"
    if fmt != "markdown":
        raise UsageError("the paired comparison (--against) prints as markdown or json")
    extras = [c for c in comparison.group_by[:-2]]
    pct = f"{comparison.confidence * 100:g}%"
    lines = []
    for rec in comparison.table.to_dict("records"):
        arrow = {True: " ↑", False: " ↓"}.get(rec["higher_is_better"], "")
        lines.append({"method": rec["label"], **{k: str(rec[k]) for k in extras},
                      "target": rec["target"], "metric": f"{rec['metric']}{arrow}",
                      "n": rec["n"], "mean diff": _num(rec["mean_diff"], "{:+.4f}"),
                      f"{pct} CI": "n/a" if math.isnan(rec["ci_low"]) else
                      f"[{rec['ci_low']:+.4f}, {rec['ci_high']:+.4f}]",
                      "p": _num(rec["p"], "{:.3g}"), "p_holm": _num(rec["p_holm"], "{:.3g}"),
                      "verdict": rec["verdict"]})
    header = f"## Paired comparison against {comparison.against}\n\n"
    if lines:
        frame = pd.DataFrame(lines)
        numeric = {"n", "mean diff", f"{pct} CI", "p", "p_holm"}
        body = frame.to_markdown(index=False, disable_numparse=True, colalign=[
            "right" if column in numeric else "left" for column in frame.columns]) + "\n"
    else:
        body = "No row to compare.\n"
    notes = [
        f"Difference = row − {comparison.against}, per case, over the cases both rows have "
        "(matched by case id); a case's value is its mean over settings (and over seeds).",
        f"{pct} CI: percentile bootstrap of the mean difference, {comparison.resamples:,} "
        f"resamples of cases, seed {comparison.seed}.",
        "p: Wilcoxon signed-rank, two-sided (zero differences dropped; all zero: p = 1); "
        "p_holm: Holm-corrected across the methods compared, per "
        + ", ".join(comparison.group_by) + ".",
        f"verdict: better/worse than {comparison.against} in the metric's direction (↑ higher "
        f"is better, ↓ lower) when p_holm < {comparison.alpha:g}; else n.s.",
    ]
    notes += [f"Reference row: {r['method']} ({r['profile']}, config {r['config_hash']}, "
              f"{r['origin']} {r['dataset']} {r['split']}, {r['n_cases']} cases)."
              for r in comparison.references]
    if (comparison.table["n"] < MIN_PAIRS).any():
        notes.append(f"n too small: fewer than {MIN_PAIRS} paired cases; no two-sided "
                     "Wilcoxon p can fall below 0.05 and the interval of so few cases (one: "
                     "a single point) means nothing. Evaluate on more cases.")
    notes += [f"Not compared: {line}." for line in comparison.left_out]
    return header + body + "\n" + "\n".join(f"- {line}" for line in notes) + "\n"


def attach_paired(output: str, fmt: str, comparison: PairedComparison | None) -> str:
    """Leaderboard output with the paired comparison added: a markdown section after the
    table, or a ``"paired"`` key in the JSON document."""
    if comparison is None:
        return output
    if fmt == "json":
        document = json.loads(output)
        document["paired"] = paired_document(comparison)
        return json.dumps(document, indent=2) + "\n"
    if fmt != "markdown":
        raise UsageError("--against prints as markdown or json")
    return output + "\n" + render_paired(comparison, "markdown")


def _num(value: float, fmt: str) -> str:
    return "n/a" if value is None or math.isnan(value) else fmt.format(value)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value
