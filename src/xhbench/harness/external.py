"""Scoring predictions made outside xhbench (``xhbench evaluate``).

A user with their own pipeline writes one NIfTI file per test case and setting;
this module reads them, brings each into the space the task scores in with the
task's own preprocessing (the same crop, label mapping or intensity
normalisation as the reference gets), scores it with ``task.score`` and writes a
normal run folder (``config.json``, ``environment.json``, ``cases.csv``,
``skipped.csv``, ``summary.json``), so ``xhbench leaderboard`` shows it as a row
of method ``external:<NAME>``.

How a task's predictions are named and converted is an :class:`ExternalFormat`.
A task chooses its own by a class attribute ``external_format`` (an instance or
a class); otherwise :func:`external_format` picks the built-in one for the task
(``brats18_missing``: :class:`BraTS18Format`, ``brats23_transfer``:
:class:`ZScoreSynthesisFormat`) or for its kind (segmentation:
:class:`SegmentationFormat`, synthesis: :class:`SynthesisFormat`).

File naming (relative to ``--pred``; ``<setting>`` is the setting id that
``xhbench list tasks`` and the per-case tables use):

- segmentation: ``<setting>/<case_id>.nii.gz``: label values in the data set's own
  convention (brats18: 0, 1, 2, 4) on the case's original image grid (same shape and
  affine as its images);
- synthesis: ``<setting>/<case_id>_<TARGET>.nii.gz``, one file per target scored under
  that setting (the setting is the source modality, e.g. ``T1/<case>_T2.nii.gz``), in
  the original intensity space on the original grid.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from ..errors import ConfigError, DataError, UsageError
from . import config as cfg
from .store import RunDir

__all__ = ["BraTS18Format", "EvaluateRequest", "ExternalFormat", "SegmentationFormat",
           "SynthesisFormat", "WindowSynthesisFormat", "ZScoreSynthesisFormat",
           "evaluate_predictions",
           "external_format", "load_prediction", "method_name"]

log = logging.getLogger("xhbench")

SUFFIX = ".nii.gz"


# -- formats -----------------------------------------------------------------------------
class ExternalFormat(ABC):
    """How a task's external predictions are named and turned into what ``task.score`` takes.

    Subclass and set it as the task's ``external_format`` class attribute to change either.
    """

    #: One line on the naming, shown in errors and recorded in the summary.
    naming: ClassVar[str] = ""

    @abstractmethod
    def files(self, task, case_id: str, setting) -> dict[str, str]:
        """The files of one case and setting: key -> path relative to the folder."""

    @abstractmethod
    def prediction(self, task, arrays: Mapping[str, np.ndarray], volume, item,
                   setting) -> np.ndarray:
        """The prediction ``task.score`` expects, from the loaded files (``files`` keys).

        Args:
            arrays: the files' data on the case's original grid (already checked against it).
            volume: the case as loaded by the data set (original grid and intensities).
            item: ``task.prepare(volume)``: the reference the prediction is scored against.
        """

    def describe(self, task) -> dict[str, str]:
        """What the summary records about the conversion."""
        return {"naming": self.naming}


class SegmentationFormat(ExternalFormat):
    """``<setting>/<case_id>.nii.gz`` with label values as the data set writes them.

    Label value ``label_values[i]`` becomes class index ``i`` (the data set's
    ``label_values``, e.g. brats18 (0, 1, 2, 4) -> 0..3); :meth:`to_task_grid` then brings
    the class map onto the grid of ``item.reference`` (default: the grid is unchanged).
    """

    naming = ("<setting>/<case_id>.nii.gz: label values in the data set's own convention, "
              "on the case's original image grid")

    def files(self, task, case_id: str, setting) -> dict[str, str]:
        return {"label": f"{setting.id}/{case_id}{SUFFIX}"}

    def label_values(self, task) -> tuple[int, ...]:
        values = getattr(task.data, "label_values", None)
        if not values:
            raise UsageError(f"task {task.name}: its data set declares no label values, so "
                             "external label maps cannot be read (give the task an "
                             "external_format)")
        return tuple(values)

    def prediction(self, task, arrays, volume, item, setting) -> np.ndarray:
        labels = arrays["label"]
        if not np.array_equal(labels, np.round(labels)):
            raise ValueError("label map holds non-integer values")
        labels = labels.astype(np.int64)
        allowed = self.label_values(task)
        unexpected = sorted(set(np.unique(labels).tolist()) - set(allowed))
        if unexpected:
            raise ValueError(f"unexpected label values {unexpected}; allowed {list(allowed)}")
        classes = np.searchsorted(np.asarray(allowed), labels).astype(np.int64)
        classes = self.to_task_grid(task, classes, volume, item)
        if classes.shape != item.reference.shape:
            raise ValueError(f"prediction maps to shape {classes.shape}, the task scores "
                             f"{item.reference.shape}")
        return classes

    def to_task_grid(self, task, classes: np.ndarray, volume, item) -> np.ndarray:
        """The class map on the grid the task scores on (override when the task crops)."""
        return classes


class BraTS18Format(SegmentationFormat):
    """brats18_missing: crop with the bounding box that ``preprocess`` uses.

    ``preprocess`` crops every case to the bounding box of voxels where any modality is
    non-zero; the same box is applied to the prediction. The box is recomputed here and
    checked against the task's own crop of the reference (the cropped ground truth must
    equal ``item.reference``), so a change in ``preprocess`` cannot go unnoticed.
    """

    naming = ("<setting>/<case_id>.nii.gz: labels 0, 1, 2, 4 (BraTS convention) on the "
              "original 240x240x155 grid (same shape and affine as the case's images)")

    def to_task_grid(self, task, classes, volume, item) -> np.ndarray:
        brain = (volume.image != 0).any(axis=0)
        box = tuple(slice(idx.min(), idx.max() + 1) for idx in np.nonzero(brain))
        if volume.label is not None and not np.array_equal(volume.label[box], item.reference):
            raise DataError("internal: the crop of the prediction does not match the task's "
                            "preprocessing (report this as a bug)", case=volume.case_id)
        return classes[box]

    def describe(self, task) -> dict[str, str]:
        return {"naming": self.naming,
                "conversion": "label values 0, 1, 2, 4 -> class indices 0-3; cropped to the "
                              "bounding box of non-zero voxels of the four modalities, as the "
                              "reference is"}


class SynthesisFormat(ExternalFormat):
    """``<setting>/<case_id>_<TARGET>.nii.gz`` in the original intensity space.

    Each file is the target modality predicted from the setting's source. It is brought
    into the task's normalised space by :meth:`normalise_target`; channels not scored
    under the setting stay zero (``task.score`` does not read them). The default works
    for any task whose normalisation is affine per channel inside the foreground
    (z-score, min-max, fixed scaling): the map is recovered from the reference's raw and
    normalised values, checked to be exact, and applied to the prediction; background
    voxels are set to 0. Tasks with other normalisations must override it.
    """

    naming = ("<setting>/<case_id>_<TARGET>.nii.gz (setting = source modality): the target "
              "modality in its original intensity space, on the case's original grid")

    def targets(self, task, setting) -> list[str]:
        return list(dict.fromkeys(target for source, target in task.pairs
                                  if source == setting.id))

    def files(self, task, case_id: str, setting) -> dict[str, str]:
        return {target: f"{setting.id}/{case_id}_{target}{SUFFIX}"
                for target in self.targets(task, setting)}

    def prediction(self, task, arrays, volume, item, setting) -> np.ndarray:
        out = np.zeros_like(item.reference, dtype=np.float32)
        keys = list(task.channels)
        for target, array in arrays.items():
            channel = task.names.index(target)
            raw = volume.image[volume.modalities.index(keys[channel])]
            out[channel] = self.normalise_target(task, array.astype(np.float32), raw,
                                                 item.reference[channel], item.foreground,
                                                 key=keys[channel])
        return out

    def normalise_target(self, task, prediction: np.ndarray, raw_reference: np.ndarray,
                         reference: np.ndarray, foreground: np.ndarray, *,
                         key: str) -> np.ndarray:
        """The prediction mapped as the reference was (``raw_reference`` -> ``reference``).

        ``key`` is the target's data-set modality key (e.g. ``t2w``)."""
        x = raw_reference[foreground].astype(np.float64)
        y = reference[foreground].astype(np.float64)
        design = np.stack([x, np.ones_like(x)], axis=1)
        (scale, offset), *_ = np.linalg.lstsq(design, y, rcond=None)
        error = float(np.abs(scale * x + offset - y).max()) if x.size else 0.0
        if error > 1e-4 * max(float(np.abs(y).max()), 1.0):
            raise UsageError(f"task {task.name}: its intensity normalisation is not affine per "
                             "channel, so xhbench cannot apply it to external predictions; "
                             "the task needs an external_format (see "
                             "xhbench.harness.external)")
        return np.where(foreground, scale * prediction + offset, 0.0).astype(np.float32)

    def describe(self, task) -> dict[str, str]:
        return {"naming": self.naming,
                "conversion": "each predicted target mapped by the affine map that takes the "
                              "reference's raw intensities to its normalised ones inside the "
                              "foreground; background 0"}


class ZScoreSynthesisFormat(SynthesisFormat):
    """brats23_transfer: z-score the prediction with the reference's mean and std.

    The task z-scores each modality over the brain (voxels where any modality is
    non-zero). A prediction of the target modality is z-scored with the mean and std of
    the *reference* target over that same brain mask, i.e. exactly the map the reference
    went through, so a global intensity error stays visible to PSNR and NMSE.
    """

    def normalise_target(self, task, prediction, raw_reference, reference, foreground, *, key):
        values = raw_reference[foreground].astype(np.float64)
        mean, std = values.mean(), max(float(values.std()), 1e-8)
        return np.where(foreground, (prediction - mean) / std, 0.0).astype(np.float32)

    def describe(self, task) -> dict[str, str]:
        return {"naming": self.naming,
                "conversion": "each predicted target z-scored with the mean and std of the "
                              "reference target over the brain mask (the reference's own "
                              "normalisation); background 0"}


class WindowSynthesisFormat(SynthesisFormat):
    """PET/CT transfer tasks (``task.windows()``): the target's own fixed window.

    A window ``(low, high)`` (CT in HU, SUV) is applied to the prediction as to the
    reference: clipped to the window and mapped to [0, 1]. A ``"percentile"`` window
    (non-quantitative NAC-PET) uses the reference's percentile in the foreground.
    """

    def normalise_target(self, task, prediction, raw_reference, reference, foreground, *, key):
        from ..tasks.autopet_transfer import to_window

        window = task.windows()[key]
        if window == "percentile":
            high = float(np.percentile(raw_reference[foreground], task.config.nac_percentile))
            window = (0.0, max(high, 1e-6))
        return np.where(foreground, to_window(prediction, *window), 0.0).astype(np.float32)

    def describe(self, task) -> dict[str, str]:
        return {"naming": self.naming,
                "conversion": "each predicted target clipped to its modality's window and "
                              "mapped to [0, 1] as the reference is (percentile windows from "
                              "the reference); background 0"}


#: Built-in formats by task name; others by task kind.
BY_TASK: dict[str, type[ExternalFormat]] = {
    "brats18_missing": BraTS18Format,
    "brats23_transfer": ZScoreSynthesisFormat,
    "autopet_transfer": WindowSynthesisFormat,
    "hnscc_nsclc_transfer": WindowSynthesisFormat,
}
BY_KIND: dict[str, type[ExternalFormat]] = {
    "segmentation": SegmentationFormat,
    "synthesis": SynthesisFormat,
}


def external_format(task) -> ExternalFormat:
    """The task's ``external_format`` attribute, else the built-in format for it."""
    chosen = getattr(task, "external_format", None)
    if chosen is None:
        chosen = BY_TASK.get(task.name) or BY_KIND.get(task.kind)
    if chosen is None:
        raise UsageError(f"task {task.name} does not say how to read external predictions "
                         "(give it an external_format; see xhbench.harness.external)")
    return chosen() if isinstance(chosen, type) else chosen


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
    from tqdm.auto import tqdm

    from ..plugins import get_plugins
    from .environment import environment
    from .runner import open_task, run_summary

    task_cls = get_plugins().registry.get("task", request.task).load()
    task_config = _task_config(task_cls, request.profile, request.overrides)
    if request.limit is not None:
        task_config.max_test_cases = request.limit
    method = method_name(request)
    folder = Path(request.predictions)
    if not folder.is_dir():
        raise UsageError(f"--pred {folder}: not a folder")
    task = open_task(task_cls, task_config, request.data_root, request.cache_dir)
    fmt = external_format(task)
    settings = task.settings()
    test_cases = task.test_cases()

    # Every expected file is looked for before anything is written.
    missing: dict[str, Path] = {}
    for case in test_cases:
        for setting in settings:
            for relative in fmt.files(task, case.case_id, setting).values():
                if case.case_id not in missing and not (folder / relative).is_file():
                    missing[case.case_id] = folder / relative
    if missing and not request.skip_missing:
        case_id, path = next(iter(missing.items()))
        raise DataError(f"prediction file missing ({len(missing)} of {len(test_cases)} test "
                        f"cases lack at least one file; expected {fmt.naming}; pass "
                        "--skip-missing to score the others)", case=case_id, path=path)

    config = {"task": task.name, "method": method, "profile": request.profile, "seed": 0,
              "data_root": str(request.data_root) if request.data_root else None,
              "limit": request.limit, "task_config": cfg.to_dict(task_config),
              "method_config": {"external": True}}
    config_hash = cfg.config_hash({k: config[k] for k in config
                                   if k not in ("data_root", "seed")})
    run = RunDir.create(Path(request.out), task.name, method.replace(":", "-"), 0, config_hash)
    run.write_json("config.json", {**config, "config_hash": config_hash,
                                   "predictions": str(folder.resolve())})
    device = torch.device("cpu")
    run.write_json("environment.json", environment(device))

    evaluated = []
    started = time.perf_counter()
    for case in tqdm(test_cases, desc=f"evaluate {method}", unit="case", disable=not progress):
        if case.case_id in missing:
            path = missing[case.case_id]
            log.warning("skipped case %s: prediction file missing: %s", case.case_id, path)
            run.record_skipped(case.case_id, path, "prediction file missing")
            continue
        volume = task.data.read(case)
        item = task.prepare(volume)
        rows = []
        for setting in settings:
            files = fmt.files(task, case.case_id, setting)
            arrays = {key: load_prediction(folder / relative, case.case_id, volume)
                      for key, relative in files.items()}
            try:
                prediction = fmt.prediction(task, arrays, volume, item, setting)
            except ValueError as exc:
                raise DataError(f"prediction: {exc}", case=case.case_id,
                                path=", ".join(str(folder / r) for r in files.values())
                                ) from exc
            rows.extend(task.score(prediction, item, setting))
        run.record_case(case.case_id, rows)
        evaluated.append(case.case_id)
    seconds = time.perf_counter() - started
    if not evaluated:
        raise DataError("no test case could be scored (every case lacks a prediction file)",
                        path=folder)

    summary = run_summary(task, run, method=method, seed=0, profile=request.profile,
                          config_hash=config_hash, device=device, test_cases=test_cases,
                          evaluated=evaluated, cost={}, history=None)
    summary["external"] = {"predictions": str(folder.resolve()),
                           "scoring_seconds_per_case": seconds / len(evaluated),
                           **fmt.describe(task)}
    run.finish(summary)
    return run
