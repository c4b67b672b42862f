"""``xhbench run --dry-run``: what a run would do, from its plan alone; writes nothing.

The resolved config, the data each role would open (a real folder with the cases of the
training and test splits, each found on disk, or the phantom the cache would hold), the training budget (steps and crops)
and an estimated time, taken from earlier finished runs of the same settings under the
results root (there is no honest estimate without one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..plugins import get_plugins
from ..results import find_runs
from .runner import Plan

__all__ = ["describe"]


def describe(plan: Plan) -> str:
    """The dry run's report of ``plan`` as text."""
    lines = ["Config:", json.dumps(plan.config, indent=2), "", "Data:"]
    lines += [f"  {line}" for line in _data_lines(plan)]
    lines += ["", f"Budget: {_budget(plan.method_config)}",
              f"Estimated time: {_estimate(plan)}",
              "", "Dry run: nothing was written."]
    return "\n".join(lines)


def _data_lines(plan: Plan) -> list[str]:
    request, task_cls = plan.request, plan.task_cls
    registry = get_plugins().registry
    roots = {"main": request.data_root, "pretraining": request.pretrain_data_root}
    lines = []
    for role, name in {"main": task_cls.dataset, **task_cls.extra_datasets}.items():
        if role == "pretraining" and not plan.method_cls.pretrains:
            continue
        source = task_cls.data_source(plan.task_config, role, roots)
        if source is None:
            continue
        if source.root is None:
            params = source.phantom
            lines.append(f"{role}: {name} phantom, {params['size']}^3, seed {params['seed']}, "
                         f"cases per split {params['cases_per_split']} (written into the "
                         "cache on first use)")
            continue
        dataset = registry.load("dataset", name)(source.root)
        if role != "main":
            lines.append(f"{role}: {name} at {source.root}")
            continue
        # a split listed in the split file but missing on disk is a DataError here
        counts = {split: len(dataset.cases(split)) for split in ("train", task_cls.test_split)}
        lines.append(f"{role}: {name} at {source.root}, cases per split {counts}")
    return lines


def _budget(method_config: Any) -> str:
    steps = getattr(method_config, "steps", None)
    if steps is None and hasattr(method_config, "epochs"):
        steps = method_config.epochs * getattr(method_config, "iterations_per_epoch", 1)
    if steps is None:
        return "no optimisation steps (the method does not train by steps)"
    batch = getattr(method_config, "batch_size", None)
    crops = f", {steps * batch} crops (batch {batch})" if isinstance(batch, int) else ""
    return f"{steps} steps{crops}"


def _estimate(plan: Plan) -> str:
    root = Path(plan.request.out)
    if not root.is_dir():
        return f"unknown (no earlier run under {root})"
    finished, _ = find_runs(root, plan.request.task)
    times = []
    for run in finished:
        summary = run.summary
        if summary.get("config_hash") != plan.config_hash or summary.get("method") != \
                plan.request.method:
            continue
        cost = summary.get("cost") or {}
        times.append(cost.get("train_seconds", 0.0) + cost.get("eval_seconds_per_case", 0.0)
                     * summary["data"]["n_cases"])
    if not times:
        return f"unknown (no finished run of these settings under {root})"
    return (f"about {_duration(sum(times) / len(times))} (mean of {len(times)} earlier "
            "run(s) of these settings, training and evaluation)")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
