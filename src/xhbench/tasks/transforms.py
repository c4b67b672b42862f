"""MONAI training pipelines that tasks build their samples with.

The deterministic part (read, check, preprocess) is cached once per case by
MONAI's ``CacheDataset``, so the second epoch reads no NIfTI; the random part
(crop, flips, intensity jitter, modality availability) runs per sample.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from monai.data import CacheDataset
from monai.transforms import (
    Compose,
    MapTransform,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    Randomizable,
    SpatialPadd,
)

from ..datasets.base import Case
from .base import Setting

__all__ = ["LoadCased", "RandAvailabilityd", "segmentation_training_dataset"]


class LoadCased(MapTransform):
    """``{"case": Case}`` -> ``{"image": (C, ...) float32, "label": (1, ...) int64}``."""

    def __init__(self, read: Callable[[Case], tuple[np.ndarray, np.ndarray]]):
        super().__init__(keys=("case",))
        self.read = read

    def __call__(self, data):
        case = data["case"]
        image, label = self.read(case)
        return {"case_id": case.case_id, "image": image.astype(np.float32),
                "label": label[None].astype(np.int64)}


class RandAvailabilityd(Randomizable, MapTransform):
    """Draw one availability setting uniformly per sample; zero-fill missing channels.

    The drawn mask is stored under ``"available"`` (bool per channel), so that
    methods that handle missing modalities themselves can use it.
    """

    def __init__(self, settings: Sequence[Setting], zero_fill: bool):
        MapTransform.__init__(self, keys=("image",))
        self.masks = np.array([s.available for s in settings], dtype=bool)
        self.zero_fill = zero_fill
        self._index = 0

    def randomize(self, data=None) -> None:
        self._index = int(self.R.randint(len(self.masks)))

    def __call__(self, data):
        self.randomize()
        out = dict(data)
        available = self.masks[self._index]
        if self.zero_fill:
            out["image"] = out["image"] * available[:, None, None, None].astype(np.float32)
        out["available"] = available.copy()
        return out


def segmentation_training_dataset(
    cases: Sequence[Case],
    *,
    read: Callable[[Case], tuple[np.ndarray, np.ndarray]],
    roi: Sequence[int],
    masks: Sequence[Setting],
    zero_fill: bool,
) -> CacheDataset:
    """Random ``roi`` crops (two thirds centred on tumour), flips, intensity jitter,
    one availability mask per sample."""
    transform = Compose([
        LoadCased(read),
        SpatialPadd(keys=("image", "label"), spatial_size=tuple(roi)),
        RandCropByPosNegLabeld(keys=("image", "label"), label_key="label",
                               spatial_size=tuple(roi), pos=2, neg=1, num_samples=1),
        RandFlipd(keys=("image", "label"), prob=0.5, spatial_axis=0),
        RandFlipd(keys=("image", "label"), prob=0.5, spatial_axis=1),
        RandFlipd(keys=("image", "label"), prob=0.5, spatial_axis=2),
        RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
        RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5),
        RandAvailabilityd(masks, zero_fill=zero_fill),
    ])
    return CacheDataset([{"case": case} for case in cases], transform=transform,
                        progress=False, num_workers=0)
