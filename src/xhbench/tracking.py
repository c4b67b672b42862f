"""Experiment tracking after a run: a finished run folder logged to MLflow or TensorBoard.

Nothing here runs inside training: ``xhbench run --track NAME`` calls :func:`track` once the
run folder is written, and the folder is the only input (``config.json``, ``history.csv``,
``cases.csv``, ``summary.json``). Both trackers are optional (``pip install 'xhbench[track]'``).

- ``mlflow``: one MLflow run in the experiment ``xhbench/<task>``, named by the run id;
  params = the resolved configuration (``config.json`` flattened to dotted keys); metrics =
  each ``history.csv`` column per step as ``<stage>/<column>`` and the final metrics as
  ``final/<target>/<metric>``; the whole run folder as artifacts. Tracking URI:
  ``$MLFLOW_TRACKING_URI``, else the local file store ``./mlruns`` (which MLflow 3.7 and
  later keep in maintenance mode: xhbench sets ``MLFLOW_ALLOW_FILE_STORE=true`` for it
  unless already set; a database URI such as ``sqlite:///mlflow.db`` needs the full
  ``mlflow`` package).
- ``tensorboard``: an event file under ``RUN/tensorboard/`` with the same scalars (steps of
  ``history.csv``; final metrics at step 0) and the configuration as text.

A final metric is the mean over cases of each case's mean over its settings, as the
leaderboard computes a run's value.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import UsageError
from .results import RunDir

__all__ = ["TRACKERS", "final_metrics", "flat_params", "history_scalars", "require", "track"]

TRACKERS = {"mlflow": "mlflow", "tensorboard": "tensorboard"}  # name -> module it needs
_NAME = re.compile(r"[^A-Za-z0-9_\-. /]")


def require(tracker: str) -> None:
    """Fail before any work when a tracker's package is missing."""
    if tracker not in TRACKERS:
        raise UsageError(f"unknown tracker {tracker!r}; choose {', '.join(TRACKERS)}")
    if importlib.util.find_spec(TRACKERS[tracker]) is None:
        raise UsageError(f"--track {tracker} needs the {TRACKERS[tracker]} package: "
                         "pip install 'xhbench[track]'")


def _name(text: str) -> str:
    """A metric name both trackers accept (``T1->T2`` becomes ``T1-_T2``)."""
    return _NAME.sub("_", text)


def flat_params(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested configuration as ``{"method_config.lr": "0.001", ...}``."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out |= flat_params(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value)
    return out


def history_scalars(run: RunDir) -> Iterator[tuple[str, int, float]]:
    """``(<stage>/<column>, step, value)`` for every number in ``history.csv``."""
    from .curves import HISTORY, read_history

    if not run.file(HISTORY).exists():
        return
    history = read_history(run.file(HISTORY))
    columns = [c for c in history.select_dtypes("number").columns if c != "step"]
    for record in history.to_dict("records"):
        for column in columns:
            value = record[column]
            if value == value:  # not NaN
                yield _name(f"{record['stage']}/{column}"), int(record["step"]), float(value)


def final_metrics(run: RunDir) -> dict[str, float]:
    """``final/<target>/<metric>`` -> mean over cases of each case's mean over settings."""
    if not run.file("cases.csv").exists():
        return {}
    per_case = run.cases().groupby(["target", "metric", "case"], sort=False)["value"].mean()
    means = per_case.groupby(level=["target", "metric"], sort=False).mean()
    return {_name(f"final/{target}/{metric}"): float(value)
            for (target, metric), value in means.items() if value == value}


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def log_mlflow(run: RunDir) -> str:
    """Log the run folder as one MLflow run; returns ``<tracking uri> run <id>``."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:  # MLflow >= 3.7 keeps its file store only on request (maintenance mode)
        uri = Path("mlruns").resolve().as_uri()
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    config = run.read_json("config.json")
    client = MlflowClient(tracking_uri=uri)
    name = f"xhbench/{config.get('task', run.path.parent.parent.name)}"
    experiment = client.get_experiment_by_name(name)
    experiment_id = (experiment.experiment_id if experiment is not None
                     else client.create_experiment(name))
    tags = {"xhbench.run_dir": str(run.path.resolve()), "xhbench.task": str(config.get("task")),
            "xhbench.method": str(config.get("method")), "xhbench.seed": str(config.get("seed"))}
    mlrun = client.create_run(experiment_id, run_name=run.path.name, tags=tags)
    run_id = mlrun.info.run_id
    now = int(time.time() * 1000)
    params = [Param(key, value[:6000]) for key, value in flat_params(config).items()]
    metrics = [Metric(key, value, now, step) for key, step, value in history_scalars(run)]
    metrics += [Metric(key, value, now, 0) for key, value in final_metrics(run).items()]
    for batch in _batches(params, 100):
        client.log_batch(run_id, params=batch)
    for batch in _batches(metrics, 1000):
        client.log_batch(run_id, metrics=batch)
    client.log_artifacts(run_id, str(run.path))
    client.set_terminated(run_id)
    return f"{uri} run {run_id}"


def log_tensorboard(run: RunDir) -> str:
    """Write the scalars to an event file under ``RUN/tensorboard``; returns that folder."""
    from torch.utils.tensorboard import SummaryWriter

    folder = run.file("tensorboard")
    writer = SummaryWriter(log_dir=str(folder))
    try:
        for key, step, value in history_scalars(run):
            writer.add_scalar(key, value, step)
        for key, value in final_metrics(run).items():
            writer.add_scalar(key, value, 0)
        config = json.dumps(run.read_json("config.json"), indent=2, sort_keys=True)
        writer.add_text("config", "```\n" + config + "\n```", 0)
    finally:
        writer.close()
    return str(folder)


def track(run_dir: Path, tracker: str) -> str:
    """Log a finished run folder to ``tracker``; returns where it went."""
    require(tracker)
    run = RunDir(run_dir)
    if not run.file("config.json").exists():
        raise UsageError(f"{run.path} is not a run folder: config.json is missing")
    return {"mlflow": log_mlflow, "tensorboard": log_tensorboard}[tracker](run)
