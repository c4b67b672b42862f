"""Scoring predictions made outside xhbench (``xhbench evaluate``).

A user with their own pipeline writes one NIfTI file per test case and setting. The
task's :class:`~xhbench.tasks.external_format.ExternalFormat` (its ``external_format``)
says how the files are named and how each is brought into the space the task scores
in. :func:`evaluate_predictions` opens the task as a run does, creates the run folder
as a run does (:func:`~xhbench.harness.runner.new_run_folder`) and scores with
:func:`~xhbench.harness.evaluation.evaluate`, with :class:`PredictionFiles` in place of
a method: it reads the files instead of predicting. The result is a normal run folder
(``config.json``, ``environment.json``, ``cases.csv``, ``skipped.csv``,
``summary.json``), so ``xhbench leaderboard`` shows it as a row of method
``external:<NAME>``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError, UsageError
from ..tasks.external_format import external_format
from . import config as cfg
from ..results import RunDir
from .status import recorded

__all__ = ["EvaluateRequest", "PredictionFiles", "evaluate_predictions", "load_prediction",
           "method_name"]

log = logging.getLogger("xhbench")


# -- loading -----------------------------------------------------------------------------
def load_prediction(path: Path, case_id: str, volume) -> np.ndarray:
    """Read one prediction file and check it lies on the case's grid."""
    import nibabel as nib

    if not path.is_file():
        raise DataError("prediction file missing", case=case_id, path=path)
    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means an unreadable file
        raise DataError(f"cannot read the prediction ({type(exc).__name__}: {exc})",
                        case=case_id, path=path) from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    grid = tuple(volume.image.shape[1:])
    if data.shape != grid:
        raise DataError(f"prediction has shape {data.shape}; the case's images have {grid}",
                        case=case_id, path=path)
    if not np.allclose(image.affine, volume.affine, atol=1e-3):
        worst = float(np.abs(np.asarray(image.affine) - volume.affine).max())
        raise DataError(f"prediction affine differs from the case's images (largest "
                        f"difference {worst:.4g}); write it on the original grid",
                        case=case_id, path=path)
    if not np.isfinite(data).all():
        raise DataError("prediction holds NaN or infinite values", case=case_id, path=path)
    return data


class PredictionFiles:
    """The predictions in a folder, in the task's external format, standing in for a
    method in :func:`~xhbench.harness.evaluation.evaluate`.

    For each prepared test case it re-reads the case's volume (the format needs the
    original grid and intensities) and returns, per setting, the files converted by the
    format. A file that cannot be read, lies on another grid or holds values the format
    rejects is a DataError naming the case and the file.
    """

    handles_missing = True  # the inputs are not used: only the prepared item is

    def __init__(self, task, folder: Path, name: str):
        self.task = task
        self.folder = Path(folder)
        self.name = name
        self.format = external_format(task)
        self._cases = {case.case_id: case for case in task.test_cases()}
        settings = task.settings()
        # nnU-Net's flat layout: a task with one setting may leave out the setting folder
        self.flat = len(settings) == 1 and not (self.folder / str(settings[0].id)).is_dir()

    def files(self, case_id: str, setting) -> dict[str, Path]:
        """Key -> path of the files of one case and setting."""
        files = self.format.files(self.task, case_id, setting)
        prefix = f"{setting.id}/"
        if self.flat:
            files = {key: relative.removeprefix(prefix) for key, relative in files.items()}
        return {key: self.folder / relative for key, relative in files.items()}

    def missing(self, cases: Sequence) -> dict[str, Path]:
        """Case id -> the first expected file that is not there, for each such case."""
        missing: dict[str, Path] = {}
        for case in cases:
            for setting in self.task.settings():
                for path in self.files(case.case_id, setting).values():
                    if case.case_id not in missing and not path.is_file():
                        missing[case.case_id] = path
        return missing

    def unmatched(self, cases: Sequence) -> list[str]:
        """The NIfTI files under the folder that no case and setting expects (relative)."""
        expected = {path for case in cases for setting in self.task.settings()
                    for path in self.files(case.case_id, setting).values()}
        return sorted(str(path.relative_to(self.folder)) for path in self.folder.rglob("*.nii*")
                      if path not in expected)

    def predict_settings(self, inputs, availables) -> list[np.ndarray]:
        item = inputs.item
        volume = self.task.data.read(self._cases[item.case_id])
        return [self._prediction(volume, item, setting) for setting in inputs.settings]

    def _prediction(self, volume, item, setting) -> np.ndarray:
        files = self.files(item.case_id, setting)
        arrays = {key: load_prediction(path, item.case_id, volume) for key, path in files.items()}
        try:
            return self.format.prediction(self.task, arrays, volume, item, setting)
        except ValueError as exc:
            raise DataError(f"prediction: {exc}", case=item.case_id,
                            path=", ".join(str(path) for path in files.values())) from exc


def _listing(names, shown: int = 10) -> str:
    """Up to ``shown`` names, then how many more; ``none`` when empty."""
    names = list(names)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return (", ".join(map(str, names[:shown])) + more) or "none"


# -- the evaluation ----------------------------------------------------------------------
@dataclass
class EvaluateRequest:
    """What ``xhbench evaluate`` was asked for."""

    task: str
    predictions: Path
    out: Path
    name: str | None = None  # shown as method external:<name>; default: the folder's name
    data_root: Path | None = None
    profile: str = "default"
    overrides: Mapping[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
    skip_missing: bool = False
    limit: int | None = None


def method_name(request: EvaluateRequest) -> str:
    """``external:<name>``; the name defaults to the predictions folder's name."""
    name = request.name or Path(request.predictions).resolve().name
    if not name or any(char in name for char in "/\\:") or name.startswith("."):
        raise UsageError(f"--method {name!r}: give a plain name (no '/', '\\', ':' or "
                         "leading '.')")
    return f"external:{name}"


def _task_config(task_cls, profile: str, overrides: Mapping[str, str]):
    values = {}
    for key, value in overrides.items():
        scope, _, name = key.rpartition(".")
        if scope not in ("", "task"):
            raise ConfigError(f"--set {key}: xhbench evaluate takes task options only "
                              "(task.KEY or KEY)")
        values[name] = value
    return cfg.resolve(f"task {task_cls.name}", task_cls.Config, task_cls.profiles, profile,
                       values)


def evaluate_predictions(request: EvaluateRequest, *, progress: bool = True) -> RunDir:
    """Score a folder of external predictions with the task's protocol; return the run.

    Raises:
        UsageError: unknown task or options, or a predictions folder that does not exist.
        DataError: a missing prediction file (unless ``skip_missing``), or a file that
            cannot be read, has the wrong shape, affine or values; the message names the
            case and the file.
    """
    import torch

    from ..plugins import get_plugins
    from .downstream import reference_segmenter
    from .evaluation import evaluate
    from .runner import (new_run_folder, open_task, record_environment, run_config_hash,
                         run_summary)

    task_cls = get_plugins().registry.load("task", request.task)
    task_config = _task_config(task_cls, request.profile, request.overrides)
    if request.limit is not None:
        task_config.max_test_cases = request.limit
    method = method_name(request)
    folder = Path(request.predictions)
    if not folder.is_dir():
        raise UsageError(f"--pred {folder}: not a folder")
    task = open_task(task_cls, task_config, request.data_root, request.cache_dir)
    predictions = PredictionFiles(task, folder, method)
    test_cases = task.test_cases()

    # Every expected file is looked for before anything is written.
    missing = predictions.missing(test_cases)
    if missing and not request.skip_missing:
        case_id, path = next(iter(missing.items()))
        grid = "x".join(map(str, task.data.read(predictions._cases[case_id]).image.shape[1:]))
        raise DataError(
            f"prediction file missing ({len(missing)} of {len(test_cases)} test cases lack "
            f"at least one file; expected {predictions.format.naming}; this case's images "
            f"are {grid}; cases without a file: {_listing(missing)}; files that match no "
            f"case: {_listing(predictions.unmatched(test_cases))}; pass --skip-missing to "
            "score the others)", case=case_id, path=path)

    config = {"task": task.name, "method": method, "profile": request.profile, "seed": 0,
              "data_root": str(request.data_root) if request.data_root else None,
              "limit": request.limit, "task_config": cfg.to_dict(task_config),
              "method_config": {"external": True}}
    run = new_run_folder(request.out, config, predictions=str(folder.resolve()))
    with recorded(run):
        device = torch.device("cpu")
        record_environment(run, device)
        for case_id, path in missing.items():
            log.warning("skipped case %s: prediction file missing: %s", case_id, path)
            run.record_skipped(case_id, path, "prediction file missing")

        segmenter = reference_segmenter(task, device=device, cache_dir=request.cache_dir)
        if segmenter is not None:
            run.write_json("downstream.json", segmenter.identity)
        started = time.perf_counter()
        evaluated = evaluate(task, predictions,
                             [c for c in test_cases if c.case_id not in missing], run,
                             progress=progress, segmenter=segmenter)
        seconds = time.perf_counter() - started
        if not evaluated:
            raise DataError("no test case could be scored (every case lacks a prediction file)",
                            path=folder)

        summary = run_summary(task, run, method=method, seed=0, profile=request.profile,
                              config_hash=run_config_hash(config),
                              device=device, test_cases=test_cases, evaluated=evaluated, cost={},
                              history=None)
        summary["external"] = {"predictions": str(folder.resolve()),
                               "scoring_seconds_per_case": seconds / len(evaluated),
                               **predictions.format.describe(task)}
        run.finish(summary)
    return run
