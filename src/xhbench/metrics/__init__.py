"""Metrics with fixed, recorded conventions for scoring 3D volumes.

Every function accepts numpy arrays or torch tensors (CPU or CUDA; the work runs on the
tensor's device, numpy input runs on the CPU) of shape ``(X, Y, Z)``, and returns a Python
float. Volume metrics also take a batch ``(B, X, Y, Z)`` and then return a list with one
float per item. :data:`CONVENTIONS` states what each metric computes, for the run record;
:data:`HIGHER_IS_BETTER` gives its direction.

Example:
    >>> from xhbench.metrics import ssim, CONVENTIONS
    >>> score = ssim(pred, ref, data_range=1.0, mask=brain)  # doctest: +SKIP
"""

from __future__ import annotations

from . import autopet  # autoPET FPV/FNV, case metrics and detection rates
from . import pet  # quantitative PET: SUVmax/mean/peak, MTV, TLG and their errors
from .conventions import CONVENTIONS, HIGHER_IS_BETTER
from .intensity import nmse, psnr
from .overlap import (
    BRATS_REGION_LABELS,
    DICE_EMPTY_RULES,
    brats_regions,
    detection_rates,
    dice,
    et_postprocess,
)
from .structural import ssim
from .surface import BRATS_MAX_DISTANCE_MM, SURFACE_EMPTY_RULES, average_surface_distance, hd95

__all__ = [
    "BRATS_MAX_DISTANCE_MM",
    "BRATS_REGION_LABELS",
    "CONVENTIONS",
    "DICE_EMPTY_RULES",
    "HIGHER_IS_BETTER",
    "SURFACE_EMPTY_RULES",
    "autopet",
    "average_surface_distance",
    "brats_regions",
    "detection_rates",
    "dice",
    "et_postprocess",
    "hd95",
    "nmse",
    "pet",
    "psnr",
    "ssim",
]
