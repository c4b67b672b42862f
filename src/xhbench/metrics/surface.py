"""Boundary metrics: 95th-percentile Hausdorff distance and average surface distance.

Both wrap MONAI (``compute_hausdorff_distance(percentile=95)``,
``compute_average_surface_distance(symmetric=True)``) with the voxel spacing in mm, and
add an explicit rule for empty masks, where the literatures disagree and MONAI returns
NaN or inf. :data:`SURFACE_EMPTY_RULES` says what each rule does and where it comes from.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch

from ._inputs import Array, as_batch, as_binary, common_device, positive, tensor_pair

__all__ = ["BRATS_MAX_DISTANCE_MM", "SURFACE_EMPTY_RULES", "average_surface_distance", "hd95"]

BRATS_MAX_DISTANCE_MM = 373.0
"""The distance brats-evaluation 0.0.10 reports in place of an infinite HD95
(``brats_evaluation/metrics_parser.py``: "373 diameter of the cube in SRI space; using the
maximum penalty instead of INF")."""

SURFACE_EMPTY_RULES: dict[str, str] = {
    "brats": (
        "the BraTS challenges' official evaluation (brats-evaluation 0.0.10 on panoptica "
        "2.1.7, config 'gli'): when prediction and reference share no voxel, panoptica's "
        "zero-TP edge case gives HD95 = inf (one mask empty, or both non-empty and "
        "disjoint), which brats_evaluation.metrics_parser replaces by "
        f"{BRATS_MAX_DISTANCE_MM:g} mm; both masks empty gives NaN (panoptica's "
        "'no_instances' result), which drops out of a mean. Otherwise the distance is "
        "computed."
    ),
    "nan": (
        "MONAI's own output made uniform: NaN whenever prediction or reference is empty "
        "(MONAI gives NaN, or inf for the average surface distance); otherwise computed."
    ),
}
"""What each value of the ``empty`` argument of :func:`hd95` and
:func:`average_surface_distance` does."""


def hd95(pred: Array, ref: Array, *, spacing: Sequence[float] = (1.0, 1.0, 1.0),
         empty: str = "brats") -> float | list[float]:
    """95th-percentile symmetric Hausdorff distance in mm (MONAI's definition).

    The larger of the two directed 95th percentiles: of the distances from each surface
    voxel of ``pred`` to the surface of ``ref``, and from ``ref`` to ``pred``. Surfaces
    are the mask voxels removed by a binary erosion with 6-connectivity.

    Args:
        pred: predicted mask ``(X, Y, Z)`` or batch ``(B, X, Y, Z)``, bool or 0/1.
        ref: reference mask of the same shape.
        spacing: voxel size in mm per axis.
        empty: rule for empty masks (:data:`SURFACE_EMPTY_RULES`).

    Returns:
        HD95 as a float, or a list with one per batch item.
    """
    from monai.metrics import compute_hausdorff_distance

    return _surface_metric(pred, ref, spacing, empty,
                           lambda p, r, s: compute_hausdorff_distance(
                               p, r, include_background=True, percentile=95, spacing=s))


def average_surface_distance(pred: Array, ref: Array, *,
                             spacing: Sequence[float] = (1.0, 1.0, 1.0),
                             empty: str = "brats") -> float | list[float]:
    """Symmetric average surface distance in mm (MONAI's definition): the mean over the
    distances of both directions pooled (``compute_average_surface_distance(symmetric=True)``).

    Arguments and return value as :func:`hd95`.
    """
    from monai.metrics import compute_average_surface_distance

    return _surface_metric(pred, ref, spacing, empty,
                           lambda p, r, s: compute_average_surface_distance(
                               p, r, include_background=True, symmetric=True, spacing=s))


def _surface_metric(pred, ref, spacing, empty, compute) -> float | list[float]:
    if empty not in SURFACE_EMPTY_RULES:
        raise ValueError(f"empty must be one of {sorted(SURFACE_EMPTY_RULES)}, got {empty!r}")
    voxel = tuple(positive("spacing", s) for s in spacing)
    p, r = tensor_pair(pred, ref, common_device(pred, ref))
    p, batched = as_batch("pred", as_binary("pred", p))
    r, _ = as_batch("ref", as_binary("ref", r))
    if len(voxel) != 3:
        raise ValueError(f"spacing must give 3 values (one per axis), got {tuple(spacing)}")
    values = []
    for p_item, r_item in zip(p, r):
        rule_value = _empty_value(p_item, r_item, empty)
        if rule_value is not None:
            values.append(rule_value)
            continue
        with warnings.catch_warnings():  # MONAI warns of empty masks: handled above
            warnings.simplefilter("ignore")
            value = compute(p_item[None, None].float(), r_item[None, None].float(), voxel)
        values.append(float(value.reshape(-1)[0]))
    return values if batched else values[0]


def _empty_value(p: torch.Tensor, r: torch.Tensor, empty: str) -> float | None:
    """The value ``empty`` assigns to this pair, or ``None`` when it is computed."""
    has_p, has_r = bool(p.any()), bool(r.any())
    if not has_p and not has_r:
        return math.nan
    if empty == "nan":
        return None if has_p and has_r else math.nan
    return None if bool((p & r).any()) else BRATS_MAX_DISTANCE_MM
