"""How a task reads predictions made outside xhbench (``xhbench evaluate``).

A user with their own pipeline writes one NIfTI file per test case and setting; the
task's :class:`ExternalFormat` names those files and brings each into the space the
task scores in with the task's own preprocessing (the same crop, label mapping or
intensity normalisation as the reference gets). A task chooses its format by its
class attribute ``external_format`` (an instance or a class); without one it gets the
format of its kind (segmentation: :class:`SegmentationFormat`, synthesis:
:class:`SynthesisFormat`). :mod:`xhbench.harness.external` reads the files and scores
them.

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
from typing import Any, ClassVar, Mapping

import numpy as np

from ..errors import UsageError

__all__ = ["SUFFIX", "ExternalFormat", "SegmentationFormat", "SynthesisFormat",
           "external_format"]

SUFFIX = ".nii.gz"


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
                             "xhbench.tasks.external_format)")
        return np.where(foreground, scale * prediction + offset, 0.0).astype(np.float32)

    def describe(self, task) -> dict[str, str]:
        return {"naming": self.naming,
                "conversion": "each predicted target mapped by the affine map that takes the "
                              "reference's raw intensities to its normalised ones inside the "
                              "foreground; background 0"}


BY_KIND: dict[str, type[ExternalFormat]] = {
    "segmentation": SegmentationFormat,
    "synthesis": SynthesisFormat,
}


def external_format(task: Any) -> ExternalFormat:
    """The task's ``external_format`` (an instance, or a class to instantiate), else the
    format of its kind."""
    chosen = getattr(task, "external_format", None) or BY_KIND.get(task.kind)
    if chosen is None:
        raise UsageError(f"task {task.name} does not say how to read external predictions "
                         "(give it an external_format; see xhbench.tasks.external_format)")
    return chosen() if isinstance(chosen, type) else chosen
