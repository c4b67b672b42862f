"""From finished run folders to leaderboard statistics.

Rules (see ``docs/leaderboard.md``): a case's value for one group (by default
``target, metric``) is the mean over its other rows, e.g. over its settings;
a run's statistic is the mean and the population std (ddof=0) of those
per-case values, NaN cases left out and counted in ``n``; the runs of one row
(different seeds; of one seed only the last finished run counts) pool as the
mean of the run means and the mean of the run stds, with ``seed_std`` =
population std of the run means.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from ..errors import UsageError, XhbenchError
from ..results import RunDir, find_runs

__all__ = ["COST_FIELDS", "ROW_KEYS", "SAMPLING_FIELDS", "STD_DDOF", "Leaderboard", "aggregate", "build_leaderboard"]

# A leaderboard row: runs that agree on all of these pool as seeds of one method.
ROW_KEYS = ("method", "profile", "config_hash", "origin", "dataset", "split", "split_sha256",
            "n_cases", "task_version", "xhbench_version")
RUN_KEYS = (*ROW_KEYS, "run_id", "seed")
COST_FIELDS = ("parameters", "peak_memory_mb", "train_steps", "train_samples", "train_seconds",
               "eval_seconds_per_case", "sampling_steps", "sampling_seconds_per_case")
# cost.json's "sampling" entry (iterative samplers), flattened into the two last fields
SAMPLING_FIELDS = {"sampling_steps": "sampling_steps",
                   "sampling_seconds_per_case": "seconds_per_case"}
STD_DDOF = 0
SUMMARY_KEYS = ("run_id", "task_version", "method", "seed", "profile", "config_hash",
                "xhbench_version", "data")
DATA_KEYS = ("origin", "dataset", "split", "split_sha256", "n_cases")


@dataclass(frozen=True)
class Leaderboard:
    """Aggregated results of one task.

    Attributes:
        task: task name.
        rows: one line per row identity (``ROW_KEYS``) with ``seeds``, ``run_ids``, the
            mean over runs of each ``COST_FIELDS`` entry, the ``variant`` the method
            recorded and ``diagnostics`` (each averaged over the runs that recorded it).
        stats: one line per row identity and group (``group_by``) with ``mean``, ``std``,
            ``n`` and ``seed_std``.
        group_by: the grouping keys of ``stats``, ending with ``target, metric``.
        cases: the per-case lines of the runs that count, tagged with ``RUN_KEYS``; the
            input of :func:`aggregate` for other groupings.
        higher_is_better: direction of each metric, from the run summaries.
        conventions: how each metric is computed, from the run summaries.
        skipped_unfinished: run folders left out because they have no summary.
        unfinished_states: how many of those are running, failed, interrupted or of
            unknown state (``RunDir.state``).
        superseded: finished runs left out because a later run has the same row and seed.
        tables: the paper-shaped table specs the task declared (from the newest summary).
    """

    task: str
    rows: pd.DataFrame
    stats: pd.DataFrame
    group_by: tuple[str, ...]
    cases: pd.DataFrame
    higher_is_better: dict[str, bool]
    conventions: dict[str, str]
    skipped_unfinished: int
    superseded: int
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    unfinished_states: dict[str, int] = field(default_factory=dict)

    @property
    def task_versions(self) -> list[int]:
        return sorted(self.rows["task_version"].unique().tolist())


def build_leaderboard(root: str | Path, task: str, *, by: Sequence[str] = (),
                      allow_mixed_versions: bool = False) -> Leaderboard:
    """Aggregate the finished runs of ``task`` under the results root.

    Args:
        root: results root (``<root>/<task>/<method>/<run_id>/``).
        task: task name.
        by: grouping keys kept apart besides ``target, metric``, e.g. ``("setting",)``.
        allow_mixed_versions: show runs of different task versions as separate rows
            instead of refusing.

    Raises:
        UsageError: no finished run, an unknown grouping key, or mixed task versions.
        XhbenchError: a finished run folder that cannot be read, or runs that disagree
            on a metric's direction.
    """
    finished, unfinished = find_runs(Path(root), task)
    if not finished:
        raise UsageError(f"no finished runs of task {task!r} under {root} "
                         f"({len(unfinished)} unfinished)")
    summaries = [_summary(run) for run in finished]
    versions = sorted({s["task_version"] for s in summaries})
    if len(versions) > 1 and not allow_mixed_versions:
        counts = ", ".join(f"version {v}: {sum(s['task_version'] == v for s in summaries)} runs"
                           for v in versions)
        raise UsageError(f"results of task {task!r} mix task versions ({counts}); "
                         "pass --allow-mixed-versions to show them as separate rows")
    latest = _latest_per_seed(finished, summaries)
    infos = [info for _, info in latest]
    cases = _load_cases([run for run, _ in latest], infos)
    group_by = (*by, "target", "metric")
    return Leaderboard(
        task=task,
        rows=_pool_rows(infos),
        stats=aggregate(cases, group_by),
        group_by=group_by,
        cases=cases,
        higher_is_better=_merge_directions(summaries),
        conventions=_merge_conventions(summaries),
        skipped_unfinished=len(unfinished),
        unfinished_states=dict(Counter(run.state for run in unfinished)),
        superseded=len(finished) - len(latest),
        tables={spec["name"]: _task_table(spec) for spec in max(
            summaries, key=lambda s: str(s.get("finished_at", ""))).get("tables") or []},
    )


def _task_table(stored: dict[str, Any]) -> dict[str, Any]:
    """A paper-table spec as the task declared it: the summary stores a ``groups`` mapping
    as ``[label, settings]`` pairs (JSON sorts keys), read back here into the ordered mapping."""
    if isinstance(stored.get("groups"), list):
        return {**stored, "groups": dict(stored["groups"])}
    return stored


def _load_cases(runs: Sequence[RunDir], infos: Sequence[dict[str, Any]]) -> pd.DataFrame:
    frames = []
    for run, info in zip(runs, infos):
        try:
            frame = run.cases()
        except (OSError, ValueError) as exc:
            raise XhbenchError(f"cannot read the per-case table of {run.path}: {exc}") from exc
        frames.append(frame.assign(**{key: info[key] for key in RUN_KEYS}))
    return pd.concat(frames, ignore_index=True)


def aggregate(cases: pd.DataFrame, group_by: Sequence[str] = ("target", "metric")) -> pd.DataFrame:
    """Mean and std across cases per run, then pooled over the runs of each row.

    This is the extension point for task-specific layouts: add a column to
    ``Leaderboard.cases`` (e.g. a setting's number of missing modalities) and group by it.

    Args:
        cases: long table with ``RUN_KEYS``, ``case``, ``value`` and the ``group_by`` columns.
        group_by: keys kept apart; rows of one case and group (e.g. its settings) are
            averaged into that case's value first.

    Returns:
        One line per ``ROW_KEYS`` + ``group_by`` with ``mean``, ``std``, ``n`` (cases with a
        value, smallest over the pooled runs) and ``seed_std`` (NaN for a single run).
    """
    missing = [key for key in group_by if key not in cases.columns]
    if missing:
        raise UsageError(f"cannot group by {', '.join(missing)}: the per-case tables have "
                         f"columns {', '.join(map(str, cases.columns))}")
    run_group = [*RUN_KEYS, *group_by]
    per_case = cases.groupby([*run_group, "case"], sort=False, dropna=False)["value"].mean()
    by_run = per_case.groupby(level=run_group, sort=False, dropna=False)
    per_run = pd.DataFrame({"mean": by_run.mean(), "std": by_run.std(ddof=STD_DDOF),
                            "n": by_run.count()}).reset_index()
    by_row = per_run.groupby([*ROW_KEYS, *group_by], sort=False, dropna=False)
    return pd.DataFrame({
        "mean": by_row["mean"].agg(lambda s: s.mean(skipna=False)),
        "std": by_row["std"].agg(lambda s: s.mean(skipna=False)),
        "n": by_row["n"].min(),
        "seed_std": by_row["mean"].agg(
            lambda s: s.std(ddof=STD_DDOF, skipna=False) if len(s) > 1 else float("nan")),
    }).reset_index()


def _summary(run: RunDir) -> dict[str, Any]:
    try:
        summary = run.summary
    except (OSError, ValueError) as exc:
        raise XhbenchError(f"cannot read the summary of {run.path}: {exc}") from exc
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    missing += [f"data.{key}" for key in DATA_KEYS if key not in summary.get("data", {})]
    if missing:
        raise XhbenchError(f"the summary of {run.path} lacks {', '.join(missing)}")
    return summary


def _run_info(summary: dict[str, Any]) -> dict[str, Any]:
    cost = summary.get("cost") or {}
    sampling = cost.get("sampling") or {}
    cost = {**cost, **{field: sampling[key] for field, key in SAMPLING_FIELDS.items()
                       if key in sampling}}
    return {
        **{key: summary["data"][key] for key in DATA_KEYS},
        **{key: summary[key] for key in ("method", "profile", "task_version", "xhbench_version",
                                         "run_id", "seed")},
        "config_hash": summary["config_hash"][:12],
        **{field: cost.get(field, float("nan")) for field in COST_FIELDS},
        "variant": summary.get("variant") or "",
        "diagnostics": summary.get("diagnostics") or {},
    }


def _latest_per_seed(runs: Sequence[RunDir], summaries: Sequence[dict[str, Any]]
                     ) -> list[tuple[RunDir, dict[str, Any]]]:
    # A rerun of one seed replaces the earlier run rather than counting twice.
    latest: dict[tuple, tuple[RunDir, dict[str, Any]]] = {}
    for run, summary in sorted(zip(runs, summaries),
                               key=lambda pair: (str(pair[1].get("finished_at", "")),
                                                 pair[0].path.name)):
        info = _run_info(summary)
        latest[tuple(info[key] for key in (*ROW_KEYS, "seed"))] = (run, info)
    return list(latest.values())


def _pool_rows(infos: Iterable[dict[str, Any]]) -> pd.DataFrame:
    runs = pd.DataFrame(list(infos))
    pooled = runs.groupby(list(ROW_KEYS), dropna=False).agg(
        seeds=("seed", sorted), run_ids=("run_id", list),
        **{field: (field, "mean") for field in COST_FIELDS},
        variant=("variant", "first"), diagnostics=("diagnostics", _mean_diagnostics))
    return pooled.reset_index()


def _mean_diagnostics(per_run: pd.Series) -> dict[str, float]:
    """Each numeric diagnostic averaged over the runs that recorded it."""
    values: dict[str, list[float]] = {}
    for diagnostics in per_run:
        for name, value in diagnostics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.setdefault(name, []).append(float(value))
    return {name: sum(v) / len(v) for name, v in values.items()}


def _merge_directions(summaries: Iterable[dict[str, Any]]) -> dict[str, bool]:
    merged: dict[str, bool] = {}
    for summary in summaries:
        for metric, higher in (summary.get("higher_is_better") or {}).items():
            if merged.setdefault(metric, higher) != higher:
                raise XhbenchError(f"runs disagree on whether higher {metric} is better "
                                   f"(run {summary['run_id']} says {higher})")
    return merged


def _merge_conventions(summaries: Iterable[dict[str, Any]]) -> dict[str, str]:
    texts: dict[str, dict[str, set[int]]] = {}
    for summary in summaries:
        for metric, text in (summary.get("conventions") or {}).items():
            texts.setdefault(metric, {}).setdefault(text, set()).add(summary["task_version"])
    return {
        metric: next(iter(by_text)) if len(by_text) == 1 else "; ".join(
            f"task v{','.join(map(str, sorted(vs)))}: {text}"
            for text, vs in sorted(by_text.items(), key=lambda item: min(item[1])))
        for metric, by_text in texts.items()
    }
