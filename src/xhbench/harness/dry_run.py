"""``xhbench run --dry-run``: what a run would do, from its plan alone; writes nothing.

The resolved config, the data each role would open (a real folder with the cases of the
training and test splits, each found on disk, or the phantom the cache would hold), the training budget (steps and crops)
and an estimated time, taken from earlier finished runs of the same settings under the
results root (there is no honest estimate without one).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..plugins import get_plugins
from ..training.budget import planned_crops
from .runner import Plan
from .stages import duration, expected_seconds

__all__ = ["describe"]


def describe(plan: Plan) -> str:
    """The dry run's report of ``plan`` as text."""
    lines = ["Config:", json.dumps(plan.config, indent=2), "", "Data:"]
    lines += [f"  {line}" for line in _data_lines(plan)]
    lines += ["", f"Budget: {_budget(plan)}",
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


def _budget(plan: Plan) -> str:
    stages = plan.method_cls.training_plan(plan.method_config)
    if not stages:
        return "no optimisation steps (the method does not train by steps)"
    total = planned_crops(stages)
    return "; ".join(stage.describe() for stage in stages) + (
        f"; {total} crops in all" if len(stages) > 1 else "")


def _estimate(plan: Plan) -> str:
    request = plan.request
    expected = expected_seconds(Path(request.out), request.task, request.method,
                                plan.config_hash)
    if expected is None:
        return f"unknown (no finished run of these settings under {request.out})"
    seconds, runs = expected
    return (f"about {duration(seconds)} (mean of {runs} earlier run(s) of these settings, "
            "training and evaluation)")
