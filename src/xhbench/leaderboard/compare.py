"""Regression check between two leaderboard documents (``leaderboard --format json``).

Entries match on the row's method, profile and data (origin, dataset, split, split
hash, number of cases) and on the group (e.g. setting), target and metric. Only
the means are compared, in absolute terms.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from tabulate import tabulate

from ..errors import UsageError
from .render import DOCUMENT_FORMAT

__all__ = ["DEFAULT_TOLERANCE", "Change", "Comparison", "compare_leaderboards",
           "format_comparison", "load_leaderboard"]

DEFAULT_TOLERANCE = 1e-6
MISSING = "missing in CURRENT"
MATCH_KEYS = ("method", "profile", "origin", "dataset", "split", "split_sha256", "n_cases")


@dataclass(frozen=True)
class Change:
    """One compared entry that got worse or better.

    Attributes:
        key: the entry's ``MATCH_KEYS`` and group values (e.g. setting, target, metric).
        reference: the reference mean (None: NaN).
        current: the current mean (None: NaN or missing).
        reason: why it counts, e.g. ``"worse"`` or ``"missing in CURRENT"``.
    """

    key: dict[str, Any]
    reference: float | None
    current: float | None
    reason: str

    @property
    def delta(self) -> float | None:
        """``current - reference``, or None where either is missing."""
        if self.reference is None or self.current is None:
            return None
        return self.current - self.reference


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare_leaderboards`.

    Attributes:
        group_by: the grouping keys of both documents.
        tolerance: default absolute tolerance; ``tolerances`` holds per-metric ones.
        regressions: entries of CURRENT worse than REFERENCE (or missing, NaN, fewer cases).
        improvements: entries better by more than the tolerance.
        unchanged: number of entries within tolerance.
        new: keys of entries only in CURRENT (not compared).
    """

    group_by: tuple[str, ...]
    tolerance: float
    tolerances: dict[str, float]
    regressions: list[Change]
    improvements: list[Change]
    unchanged: int
    new: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return not self.regressions


def load_leaderboard(path: str | Path) -> dict[str, Any]:
    """Read a document written by ``xhbench leaderboard --format json``.

    Raises:
        UsageError: the file is missing, not JSON, or not a leaderboard document.
    """
    try:
        document = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != DOCUMENT_FORMAT:
        raise UsageError(f"{path} is not a leaderboard written by "
                         "`xhbench leaderboard --format json`")
    return document


def compare_leaderboards(reference: Mapping[str, Any], current: Mapping[str, Any], *,
                         tolerance: float = DEFAULT_TOLERANCE,
                         tolerances: Mapping[str, float] | None = None,
                         allow_mixed_versions: bool = False,
                         methods: Sequence[str] = ()) -> Comparison:
    """Find the entries of ``current`` that are worse than ``reference``.

    A regression is a mean worse by more than the metric's tolerance in its direction
    (any change beyond it where the direction is unknown), fewer cases with a value,
    a NaN where the reference had a number, or an entry missing from ``current``.

    Args:
        reference: leaderboard document taken as correct.
        current: leaderboard document to check.
        tolerance: absolute tolerance for metrics without their own.
        tolerances: absolute tolerance per metric name.
        allow_mixed_versions: compare documents of different task versions.
        methods: compare only these methods' rows (e.g. one method re-run against a
            published leaderboard); empty: every row.

    Raises:
        UsageError: different tasks or groupings, different task versions (unless
            allowed), a tolerance for a metric neither document has, a method REFERENCE
            has no row of, a malformed document.
    """
    tolerances = dict(tolerances or {})
    if reference.get("task") != current.get("task"):
        raise UsageError(f"REFERENCE is task {reference.get('task')!r}, "
                         f"CURRENT is task {current.get('task')!r}")
    if reference.get("group_by") != current.get("group_by"):
        raise UsageError(f"REFERENCE groups by {reference.get('group_by')}, "
                         f"CURRENT by {current.get('group_by')}")
    if reference.get("task_versions") != current.get("task_versions") and not allow_mixed_versions:
        raise UsageError(f"REFERENCE has task version(s) {reference.get('task_versions')}, "
                         f"CURRENT {current.get('task_versions')}; pass --allow-mixed-versions "
                         "to compare them anyway")
    group_by = tuple(reference["group_by"])
    ref, cur = _entries(reference, "REFERENCE", group_by), _entries(current, "CURRENT", group_by)
    if methods:
        ref, cur = _of_methods(ref, methods), _of_methods(cur, methods)
        absent = sorted(set(methods) - {key[0] for key in ref})
        if absent:
            known = sorted({row.get("method") for row in reference["rows"]})
            raise UsageError(f"REFERENCE has no row of method(s) {', '.join(absent)}; it has "
                             f"{', '.join(known)}")
    known = {key[-1] for key in (*ref, *cur)}
    unknown = sorted(set(tolerances) - known)
    if unknown:
        raise UsageError(f"--tolerance-for names unknown metric(s) {', '.join(unknown)}; "
                         f"the leaderboards have {', '.join(sorted(known))}")
    found: dict[str, list[Change]] = {"regression": [], "improvement": []}
    unchanged = 0
    for key, entry in ref.items():
        verdict = _judge(entry, cur.get(key), tolerances.get(key[-1], tolerance))
        if verdict is None:
            unchanged += 1
            continue
        kind, reason = verdict
        found[kind].append(Change(_key_dict(key, group_by), entry["mean"],
                                  cur[key]["mean"] if key in cur else None, reason))
    return Comparison(group_by, tolerance, tolerances, regressions=found["regression"],
                      improvements=found["improvement"], unchanged=unchanged,
                      new=[_key_dict(key, group_by) for key in cur if key not in ref])


def format_comparison(comparison: Comparison) -> str:
    """A readable report: regressions, improvements, then counts and tolerances."""
    parts = []
    for title, changes in (("Regressions", comparison.regressions),
                           ("Improvements", comparison.improvements)):
        if changes:
            parts.append(f"{title} ({len(changes)}):\n" + _table(changes, comparison.group_by))
    per_metric = "".join(f"; {m}: {t:g}" for m, t in sorted(comparison.tolerances.items()))
    parts.append(f"{comparison.unchanged} unchanged within tolerance ({comparison.tolerance:g} "
                 f"absolute{per_metric}); {len(comparison.new)} new in CURRENT (not compared).")
    parts.append("FAIL: regressions found." if comparison.regressions else "OK: no regressions.")
    return "\n\n".join(parts) + "\n"


def _entries(document: Mapping[str, Any], name: str,
             group_by: tuple[str, ...]) -> dict[tuple, dict[str, Any]]:
    entries: dict[tuple, dict[str, Any]] = {}
    try:
        for row in document["rows"]:
            base = tuple(row[key] for key in MATCH_KEYS)
            for entry in row["metrics"]:
                key = base + tuple(entry[k] for k in group_by)
                if key in entries:
                    raise UsageError(f"{name} has two rows for {_key_dict(key, group_by)} (they "
                                     "differ only in task or xhbench version); compare one "
                                     "version at a time")
                mean = entry["mean"]
                if not (mean is None or isinstance(mean, (int, float))):
                    raise UsageError(f"{name}: mean of {_key_dict(key, group_by)} is not a number")
                nan = isinstance(mean, float) and math.isnan(mean)
                entries[key] = {**entry, "mean": None} if nan else entry
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{name} is a malformed leaderboard document (at {exc!r})") from exc
    return entries


def _of_methods(entries: dict[tuple, dict[str, Any]],
                methods: Sequence[str]) -> dict[tuple, dict[str, Any]]:
    """The entries of ``methods`` (an entry's key starts with its row's method, MATCH_KEYS)."""
    return {key: entry for key, entry in entries.items() if key[0] in methods}


def _judge(ref: Mapping[str, Any], cur: Mapping[str, Any] | None,
           tolerance: float) -> tuple[str, str] | None:
    if cur is None:
        return "regression", MISSING
    before, after = ref["mean"], cur["mean"]
    if before is None or after is None:
        if before is None and after is None:
            return None
        return ("regression", "NaN in CURRENT") if after is None else ("improvement", "was NaN")
    higher = ref.get("higher_is_better")
    if higher is None:
        worse = abs(after - before)
    else:
        worse = before - after if higher else after - before
    reasons = []
    if worse > tolerance:
        reasons.append("changed (direction unknown)" if higher is None else "worse")
    if (cur.get("n") or 0) < (ref.get("n") or 0):
        reasons.append(f"fewer cases with a value ({ref['n']} -> {cur['n']})")
    if reasons:
        return "regression", "; ".join(reasons)
    if -worse > tolerance:
        return "improvement", "better"
    return None


def _key_dict(key: tuple, group_by: tuple[str, ...]) -> dict[str, Any]:
    return dict(zip((*MATCH_KEYS, *group_by), key))


def _table(changes: list[Change], group_by: tuple[str, ...]) -> str:
    lines = [{
        "method": c.key["method"], "profile": c.key["profile"],
        "data": f"{c.key['origin']} {c.key['dataset']} {c.key['split']}@"
                f"{str(c.key['split_sha256'])[:12]} n={c.key['n_cases']}",
        **{k: c.key[k] for k in group_by},
        "reference": _num(c.reference),
        "current": "missing" if c.reason == MISSING else _num(c.current),
        "delta": "" if c.delta is None else f"{c.delta:+.3g}", "why": c.reason,
    } for c in changes]
    return tabulate(lines, headers="keys", disable_numparse=True)


def _num(value: float | None) -> str:
    return "NaN" if value is None else f"{value:.6g}"
