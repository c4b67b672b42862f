"""MONAI training pipelines that tasks build their samples with.

The deterministic part (read, check, preprocess, pad, and the voxel indices that
crop centres are drawn from) is cached once per case by MONAI's ``CacheDataset``,
so the second epoch reads no NIfTI and searches no label; the random part (crop,
flips, intensity jitter, modality availability) runs per sample on the cached
arrays without copying them first: no random transform writes into its input.

Sample keys: ``image`` (C, *roi) float32 network input; ``label`` (1, *roi)
int64 class indices (segmentation); ``target`` (C, *roi) all modalities before
any channel was removed (synthesis); ``foreground`` (1, *roi) float32 mask of
the body or brain; ``available`` (C,) bool, the drawn setting.
"""

from __future__ import annotations

import warnings
from typing import Callable, Mapping, Sequence

import numpy as np
from monai.data import CacheDataset
from monai.transforms import (
    Compose,
    DeleteItemsd,
    FgBgToIndicesd,
    MapTransform,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    Randomizable,
    SpatialPadd,
)
from monai.utils import convert_to_dst_type

from ..datasets.base import Case
from ..errors import DataError
from .base import Setting

__all__ = ["CropByPosNegd", "LoadCased", "RandAvailabilityd", "training_dataset",
           "pretraining_dataset"]

Loader = Callable[[Case], Mapping[str, np.ndarray]]


class LoadCased(MapTransform):
    """``{"case": Case}`` -> the arrays of ``load(case)`` with a channel axis on masks."""

    def __init__(self, load: Loader):
        super().__init__(keys=("case",))
        self.load = load

    def __call__(self, data):
        case = data["case"]
        arrays = self.load(case)
        out = {"case_id": case.case_id, "image": arrays["image"].astype(np.float32),
               "foreground": arrays["foreground"][None].astype(np.float32)}
        if arrays.get("label") is not None:
            out["label"] = arrays["label"][None].astype(np.int64)
        return out


class RandAvailabilityd(Randomizable, MapTransform):
    """Draw one availability setting uniformly per sample; zero-fill missing channels.

    The drawn mask is stored under ``"available"`` (bool per channel) so that
    methods handling missing modalities themselves can use it. With
    ``keep_target`` the complete image is kept as ``"target"`` first.
    """

    def __init__(self, settings: Sequence[Setting], zero_fill: bool, keep_target: bool = False):
        MapTransform.__init__(self, keys=("image",))
        self.masks = np.array([s.available for s in settings], dtype=bool)
        self.zero_fill = zero_fill
        self.keep_target = keep_target
        self._index = 0

    def randomize(self, data=None) -> None:
        self._index = int(self.R.randint(len(self.masks)))

    def __call__(self, data):
        self.randomize()
        out = dict(data)
        available = self.masks[self._index]
        if self.keep_target:
            out["target"] = out["image"]
        if self.zero_fill:
            weights = available[:, None, None, None].astype(np.float32)
            out["image"] = out["image"] * convert_to_dst_type(weights, out["image"])[0]
        out["available"] = available.copy()
        return out


class CropByPosNegd(RandCropByPosNegLabeld):
    """MONAI's positive / negative crop, quiet on a case without foreground (a lesion-free
    autoPET study): MONAI then draws background centres only, as the task intends, and
    would warn on every crop of it."""

    def __call__(self, data, lazy=None):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Num foregrounds 0,", category=UserWarning)
            return super().__call__(data, lazy)


def _spatial(roi: Sequence[int], keys: tuple[str, ...], centre_on: str,
             flips: bool = True) -> list:
    """Pad to ``roi`` and list the candidate crop centres (cached), then crop and flip."""
    indices = (f"{centre_on}_fg", f"{centre_on}_bg")
    return [
        SpatialPadd(keys=keys, spatial_size=tuple(roi)),
        FgBgToIndicesd(keys=centre_on, fg_postfix="_fg", bg_postfix="_bg"),
        CropByPosNegd(keys=keys, label_key=centre_on, spatial_size=tuple(roi),
                      pos=2, neg=1, num_samples=1, fg_indices_key=indices[0],
                      bg_indices_key=indices[1]),
        DeleteItemsd(keys=indices),
        *(RandFlipd(keys=keys, prob=0.5, spatial_axis=axis) for axis in range(3) if flips),
    ]


def training_dataset(cases: Sequence[Case], *, load: Loader, roi: Sequence[int],
                     settings: Sequence[Setting], zero_fill: bool,
                     synthesis: bool, intensity_shift: float = 0.1) -> CacheDataset:
    """Random ``roi`` crops (two thirds centred on the tumour, or on the foreground for
    synthesis), flips, intensity jitter (segmentation only: synthesis keeps intensities
    as targets; a +-10 % scale and, unless ``intensity_shift`` is 0, an offset of up to
    +-``intensity_shift``, each with probability 0.5), and one availability setting per
    sample."""
    keys = ("image", "foreground") if synthesis else ("image", "label", "foreground")
    jitter = [] if synthesis else [RandScaleIntensityd(keys="image", factors=0.1, prob=0.5)]
    if jitter and intensity_shift:
        jitter.append(RandShiftIntensityd(keys="image", offsets=intensity_shift, prob=0.5))
    transform = Compose([
        LoadCased(load),
        *_spatial(roi, keys, centre_on="foreground" if synthesis else "label"),
        *jitter,
        RandAvailabilityd(settings, zero_fill=zero_fill, keep_target=synthesis),
    ])
    return _cached(cases, transform)


def _cached(cases: Sequence[Case], transform: Compose) -> CacheDataset:
    """A CacheDataset that lets a case's DataError through unwrapped (MONAI wraps
    transform errors in RuntimeError, which would hide the case and file)."""
    try:
        return CacheDataset([{"case": case} for case in cases], transform=transform,
                            progress=False, num_workers=0, copy_cache=False)
    except RuntimeError as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, DataError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


def pretraining_dataset(cases: Sequence[Case], *, load: Loader,
                        roi: Sequence[int]) -> CacheDataset:
    """Crops of all modalities (centred in the foreground two times in three), unflipped:
    methods add their own views, rotations and masking, and a flip of two axes equals a
    180-degree rotation, which would blur rotation-prediction targets."""
    keys = ("image", "foreground")

    def unlabelled(case: Case) -> Mapping[str, np.ndarray | None]:
        return {**load(case), "label": None}  # pre-training uses no labels

    transform = Compose([LoadCased(unlabelled),
                         *_spatial(roi, keys, centre_on="foreground", flips=False)])
    return _cached(cases, transform)
