"""BraTS 2023 MRI modality transfer (paper Tables 1, 2, 8 and 9).

Trains on the BraTS 2023 glioma training set and evaluates on its 219-case
validation set (no segmentation needed). Channels [T1, T1ce, T2, FLAIR] (files
t1n, t1c, t2w, t2f). Each modality is z-scored over the brain (voxels where any
modality is non-zero) as the paper states; background stays 0 and is excluded
from training losses and metrics. Settings: one per source modality; pairs
``all`` (4x4, Tables 2/9) or a list such as ``T1->T2,T2->FLAIR,T1->T1ce``
(Table 1). Metric protocol: see :mod:`xhbench.tasks.synthesis`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..datasets.base import Volume
from .base import TaskConfig
from .external_format import SynthesisFormat
from .synthesis import SynthesisTask, zscore_in_mask

__all__ = ["BraTS23Transfer", "ZScoreSynthesisFormat"]

_NAMES = ("T1", "T1ce", "T2", "FLAIR")
_PRINTED = {"Flair": "FLAIR"}  # the paper's spelling -> ours


@dataclass
class BraTS23TransferConfig(TaskConfig):
    pairs: str = "all"
    metric_protocol: Literal["paper", "brasyn"] = "paper"


# The measured method beside each reported row (Tables 1/8 name methods with their
# dimension; Table 2 without).
_TABLE1_ROWS = {"pix2pix2d": "Pix2Pix 2D", "cyclegan2d": "CycleGAN 2D",
                "nicegan": "NICEGAN 2D", "gcgan": "GcGAN 2D", "cut": "CUT 2D",
                "reggan": "RegGAN 2D", "resvit": "ResViT 2D", "diffusion": "Diffusion 2D",
                "mddiff": "MD-Diff 2D", "cyclegan3d": "CycleGAN 3D", "pix2pix3d": "Pix2Pix 3D",
                "eagan": "EaGAN 3D", "msspade": "MS-SPADE 3D", "ours": "Ours 3D"}
_TABLE2_ROWS = {"swinunetr": "SwinUNETR", "msspade": "MS-SPADE", "ours": "Ours"}


def _pair_table(title: str, pairs: list[str], metrics: list[str], layout: str) -> dict:
    # Table 1's layout: Table 8's cells (with std), then Table 1's for what Table 8 lacks
    # (CUT, GcGAN, Diffusion, MD-Diff; the T1->T1ce column)
    files = ("table02_brats23_all_to_all.csv" if layout == "pairs"
             else ["table08_brats23_transfer_std.csv", "table01_brats23_transfer.csv"])
    return {"title": title, "layout": layout, "metric": metrics, "targets": pairs,
            "scale": 1, "std_ddof": 0,
            "reported": {"file": files, "pair_columns": ("source", "target"),
                         "rename": _PRINTED,
                         "beside": _TABLE2_ROWS if layout == "pairs" else _TABLE1_ROWS}}


class ZScoreSynthesisFormat(SynthesisFormat):
    """External targets z-scored with the reference's mean and std.

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


class BraTS23Transfer(SynthesisTask):
    name = "brats23_transfer"
    version = 1
    dataset = "brats23"
    test_split = "validation"
    channels = {"t1n": "T1", "t1c": "T1ce", "t2w": "T2", "t2f": "FLAIR"}
    Config = BraTS23TransferConfig
    external_format = ZScoreSynthesisFormat
    normalisation_note = "z-score per modality over the brain; background 0"
    profiles = {
        "smoke": {"phantom_size": 32, "phantom_train": 3, "phantom_test": 2},
        "default": {},
        "paper": {},
    }
    tables = {
        "table1": _pair_table("Table 1: T1->T2, T2->FLAIR, T1->T1ce; mean ± std across cases",
                              ["T1->T2", "T2->FLAIR", "T1->T1ce"], ["psnr", "nmse", "ssim"],
                              "per_target"),
        "table2": _pair_table("Tables 2 and 9: all 4x4 transfers; mean ± std across cases",
                              [f"{s}->{t}" for s in _NAMES for t in _NAMES],
                              ["psnr", "nmse", "ssim"], "pairs"),
    }

    def normalise(self, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
        foreground = (volume.image != 0).any(axis=0)
        return zscore_in_mask(volume.image, foreground), foreground
