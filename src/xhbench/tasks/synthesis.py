"""Shared protocol of the synthesis tasks (kind ``"synthesis"``: the paper's "modality
transfer", whence the task names ``*_transfer``).

A synthesis task evaluates source -> target pairs. Each setting makes one
source modality available; the method predicts every modality of the task, and
each pair whose source is that setting's modality is scored on its target
channel, so one prediction per source serves a whole row of the 4x4 table.

Metric protocol ``paper`` (the paper states only "3D volumes, background
excluded"; the rest is xhbench's documented choice): both volumes are mapped to
[0, 1] by the reference's minimum and maximum inside the foreground, the
prediction is clipped to [0, 1], and background voxels are set to 0 in both.
PSNR (data range 1) and NMSE are computed over foreground voxels; SSIM
(Gaussian window 11, sigma 1.5, data range 1) is computed on the whole volume
and averaged over foreground voxels of the valid interior. Protocol ``brasyn``
follows the BraSyn challenge: each volume normalised by its own 0.5 / 99.5
percentiles inside the foreground and clipped to [0, 1]; SSIM as above.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Mapping

import numpy as np

from .. import metrics
from ..datasets.base import Case, Volume
from ..errors import DataError
from .base import EvalItem, Setting, Task, TaskSpec, parse_pairs

__all__ = ["SynthesisTask"]

PROTOCOLS = ("paper", "brasyn")
METRICS = ("psnr", "nmse", "ssim")


class SynthesisTask(Task):
    """Base of the synthesis tasks: subclasses set ``channels`` and ``normalise``."""

    kind = "synthesis"
    #: Dataset modality key -> display name, in channel order.
    channels: ClassVar[Mapping[str, str]]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.channels.values())

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return parse_pairs(self.config.pairs, self.names, f"task {self.name} option pairs")

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(self.name, self.kind, self.names, self.names,
                        pairs=tuple(map(tuple, self.pairs)))

    def settings(self) -> list[Setting]:
        sources = list(dict.fromkeys(source for source, _ in self.pairs))
        return [Setting(source, f"from {source}",
                        tuple(name == source for name in self.names)) for source in sources]

    @abstractmethod
    def normalise(self, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
        """``(image (C, X, Y, Z) float32 in channel order, foreground (X, Y, Z) bool)``."""

    def _arrays(self, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
        order = [volume.modalities.index(key) for key in self.channels]
        reordered = Volume(volume.case_id, volume.image[order], volume.label, volume.affine,
                           tuple(self.channels))
        image, foreground = self.normalise(reordered)
        if not foreground.any():
            raise DataError("empty foreground", case=volume.case_id)
        return image.astype(np.float32), foreground

    def load_case(self, case: Case) -> dict[str, np.ndarray | None]:
        image, foreground = self._arrays(self.data.read(case))
        return {"image": image, "foreground": foreground, "label": None}

    def prepare(self, volume: Volume) -> EvalItem:
        image, foreground = self._arrays(volume)
        return EvalItem(volume.case_id, image, image, volume.spacing, foreground=foreground)

    def score(self, prediction: np.ndarray, item: EvalItem, setting: Setting) -> list[dict]:
        rows = []
        for source, target in self.pairs:
            if source != setting.id:
                continue
            channel = self.names.index(target)
            values = self.pair_metrics(prediction[channel], item.reference[channel],
                                       item.foreground)
            rows += [{"case": item.case_id, "setting": setting.id,
                      "target": f"{source}->{target}", "metric": metric, "value": value}
                     for metric, value in values.items()]
        return rows

    def pair_metrics(self, prediction: np.ndarray, reference: np.ndarray,
                     foreground: np.ndarray) -> dict[str, float]:
        if self.config.metric_protocol == "brasyn":
            pred, ref = _percentile_unit(prediction, foreground), _percentile_unit(
                reference, foreground)
        else:
            low, high = float(reference[foreground].min()), float(reference[foreground].max())
            scale = max(high - low, 1e-8)
            ref = (reference - low) / scale
            pred = np.clip((prediction - low) / scale, 0.0, 1.0)
        pred = np.where(foreground, pred, 0.0).astype(np.float32)
        ref = np.where(foreground, ref, 0.0).astype(np.float32)
        return {"psnr": metrics.psnr(pred, ref, data_range=1.0, mask=foreground),
                "nmse": metrics.nmse(pred, ref, mask=foreground),
                "ssim": metrics.ssim(pred, ref, data_range=1.0, mask=foreground)}

    def conventions(self) -> dict[str, Any]:
        protocol = self.config.metric_protocol
        mapping = ("[0, 1] by the reference's min and max in the foreground, prediction "
                   "clipped" if protocol == "paper" else
                   "[0, 1] by each volume's own 0.5/99.5 percentiles in the foreground, clipped")
        common = f"3D; protocol {protocol}: volumes mapped to {mapping}; background set to 0."
        return {
            "psnr": f"{common} PSNR over foreground voxels, data range 1.",
            "nmse": f"{common} NMSE = ||pred-ref||^2 / ||ref||^2 over foreground voxels.",
            "ssim": f"{common} {metrics.CONVENTIONS['ssim']} Data range 1; averaged over "
                    "foreground voxels of the valid interior.",
            "normalisation": self.normalisation_note,
        }

    normalisation_note: ClassVar[str] = ""

    def higher_is_better(self) -> dict[str, bool]:
        return {metric: metrics.HIGHER_IS_BETTER[metric] for metric in METRICS}


def _percentile_unit(volume: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    low, high = np.percentile(volume[foreground], [0.5, 99.5])
    return np.clip((volume - low) / max(float(high - low), 1e-8), 0.0, 1.0)


def zscore_in_mask(image: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """Z-score each channel over the foreground; background stays 0."""
    out = np.zeros_like(image, dtype=np.float32)
    for c in range(image.shape[0]):
        values = image[c][foreground]
        out[c][foreground] = (values - values.mean()) / max(float(values.std()), 1e-8)
    return out
