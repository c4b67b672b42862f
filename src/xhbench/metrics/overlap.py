"""Segmentation metrics: Dice, BraTS regions, ET post-processing, detection rates.

Dice takes an explicit rule for an empty reference, since the anchors disagree on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ._inputs import Array, as_batch, as_binary, common_device, tensor_pair, to_tensor

__all__ = [
    "BRATS_REGION_LABELS",
    "DICE_EMPTY_RULES",
    "brats_regions",
    "detection_rates",
    "dice",
    "et_postprocess",
]

DICE_EMPTY_RULES: dict[str, str] = {
    "one": (
        "BraTS missing-modality family (RFNet, M2FTrans predict.py): "
        "(2|P∩T| + 1e-8) / (|P| + |T| + 1e-8) for every case, so an empty reference with an "
        "empty prediction scores 1 and an empty reference with any predicted voxel scores ~0."
    ),
    "nan": (
        "autoPET official: 2|P∩T| / (|P| + |T|), NaN when the reference is empty "
        "(such cases drop out of the Dice mean)."
    ),
    "zero": (
        "the paper's Table 5: 2|P∩T| / (|P| + |T|), 0 when the reference is empty "
        "(whatever the prediction)."
    ),
}
"""What each value of :func:`dice`'s ``empty`` argument does."""

BRATS_REGION_LABELS: dict[str, dict[str, tuple[int, ...]]] = {
    "brats18": {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)},
    "brats23": {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)},
}
"""Labels that make up the whole tumour, tumour core and enhancing tumour per scheme."""

_DICE_EPS = 1e-8


def _like_input(tensor: torch.Tensor, original: Any) -> Array:
    """``tensor`` as a numpy array unless ``original`` was a torch tensor."""
    return tensor if isinstance(original, torch.Tensor) else tensor.cpu().numpy()


def dice(pred: Array, ref: Array, *, empty: str = "one") -> float | list[float]:
    """Dice coefficient of binary masks, one global value per case.

    Args:
        pred: predicted mask ``(X, Y, Z)`` or batch ``(B, X, Y, Z)``, bool or 0/1.
        ref: reference mask of the same shape.
        empty: rule for an empty reference (see :data:`DICE_EMPTY_RULES`): ``"one"``
            (BraTS missing-modality family, smoothed by 1e-8), ``"nan"`` (autoPET
            official) or ``"zero"`` (the paper's Table 5).

    Returns:
        Dice as a float, or a list with one per batch item.

    Raises:
        ValueError: unknown ``empty``, shape mismatch or non-binary masks.
    """
    if empty not in DICE_EMPTY_RULES:
        raise ValueError(f"empty must be one of {sorted(DICE_EMPTY_RULES)}, got {empty!r}")
    p, r = tensor_pair(pred, ref, common_device(pred, ref))
    p, batched = as_batch("pred", as_binary("pred", p))
    r, _ = as_batch("ref", as_binary("ref", r))
    counts = torch.stack(
        [(p & r).sum(dim=(1, 2, 3)), p.sum(dim=(1, 2, 3)), r.sum(dim=(1, 2, 3))], dim=1
    )
    values = []
    for both, n_pred, n_ref in counts.tolist():
        if empty == "one":
            values.append((2 * both + _DICE_EPS) / (n_pred + n_ref + _DICE_EPS))
        elif n_ref == 0:
            values.append(math.nan if empty == "nan" else 0.0)
        else:
            values.append(2 * both / (n_pred + n_ref))
    return values if batched else values[0]


def brats_regions(label: Array, scheme: str = "brats18") -> dict[str, Array]:
    """Whole tumour, tumour core and enhancing tumour masks of a BraTS label map.

    Args:
        label: integer label map of any shape (labels as in :data:`BRATS_REGION_LABELS`).
        scheme: ``"brats18"`` (ET is label 4) or ``"brats23"`` (ET is label 3).

    Returns:
        ``{"WT": ..., "TC": ..., "ET": ...}`` boolean masks, torch tensors for a tensor
        input and numpy arrays otherwise.

    Raises:
        ValueError: unknown scheme, or a label outside the scheme's labels (e.g. 3 in a
            BraTS 2018 map, which suggests the RFNet-internal 4->3 mapping).
    """
    if scheme not in BRATS_REGION_LABELS:
        raise ValueError(f"scheme must be one of {sorted(BRATS_REGION_LABELS)}, got {scheme!r}")
    regions = BRATS_REGION_LABELS[scheme]
    t = to_tensor("label", label, common_device(label))
    allowed = torch.tensor((0, *regions["WT"]), device=t.device)
    unexpected = torch.unique(t[~torch.isin(t, allowed)])
    if unexpected.numel():
        raise ValueError(
            f"label holds values {unexpected.tolist()[:10]} outside the {scheme} labels "
            f"{allowed.tolist()}"
        )
    return {
        name: _like_input(torch.isin(t, torch.tensor(values, device=t.device)), label)
        for name, values in regions.items()
    }


def et_postprocess(et_mask: Array, min_voxels: int = 500) -> Array:
    """Empty a predicted enhancing-tumour mask with fewer than ``min_voxels`` voxels.

    The BraTS missing-modality family reports Dice of the result as ``ET_postpro``, a
    separate value next to ET; never use it in place of ET.

    Args:
        et_mask: predicted ET mask of one case ``(X, Y, Z)`` or a batch ``(B, X, Y, Z)``
            (each item processed on its own), bool or 0/1.
        min_voxels: smallest ET kept (RFNet / M2FTrans use 500).

    Returns:
        Boolean mask of the same shape (a new array; the input is not modified), a torch
        tensor for a tensor input and a numpy array otherwise.

    Raises:
        ValueError: a non-binary mask, a shape that is not 3D/4D, or a negative
            ``min_voxels``.
    """
    if int(min_voxels) != min_voxels or min_voxels < 0:
        raise ValueError(f"min_voxels must be a non-negative integer, got {min_voxels!r}")
    mask, batched = as_batch("et_mask", to_tensor("et_mask", et_mask, common_device(et_mask)))
    mask = as_binary("et_mask", mask)
    keep = mask.sum(dim=(1, 2, 3)) >= min_voxels
    kept = mask & keep.view(-1, 1, 1, 1)
    return _like_input(kept if batched else kept[0], et_mask)


def _case_flags(name: str, cases: Any) -> list[bool]:
    """One positive flag per case from flags or per-case masks (positive = any voxel)."""
    if isinstance(cases, (np.ndarray, torch.Tensor)):
        t = as_binary(name, to_tensor(name, cases, common_device(cases)))
        if t.ndim == 0:
            raise ValueError(f"{name} must hold one entry per case, got a scalar")
        return t.reshape(t.shape[0], -1).any(dim=1).tolist()
    if not isinstance(cases, Sequence) or isinstance(cases, str):
        raise TypeError(f"{name} must be a sequence of per-case flags or masks")
    return [
        bool(as_binary(f"{name}[{i}]", to_tensor(f"{name}[{i}]", case, common_device(case))).any())
        for i, case in enumerate(cases)
    ]


def detection_rates(
    pred_positive: Sequence[Any] | Array, ref_positive: Sequence[Any] | Array
) -> dict[str, float]:
    """Case-level detection rates; a case is positive if it has any lesion voxel.

    Args:
        pred_positive: per case, a flag (bool or 0/1) or the predicted binary mask.
        ref_positive: per case, a flag or the reference mask, in the same order.

    Returns:
        ``{"TPR", "TNR", "FNR", "FPR"}``: TPR = TP/(TP+FN), FNR = FN/(TP+FN),
        TNR = TN/(TN+FP), FPR = FP/(TN+FP); NaN where the denominator is 0 (no
        reference-positive or no reference-negative case).

    Raises:
        ValueError: different numbers of cases, or a flag or mask that is not binary.
        TypeError: an input that is neither a sequence nor an array.
    """
    pred = _case_flags("pred_positive", pred_positive)
    ref = _case_flags("ref_positive", ref_positive)
    if len(pred) != len(ref):
        raise ValueError(f"pred_positive has {len(pred)} cases but ref_positive has {len(ref)}")
    tp = sum(p and r for p, r in zip(pred, ref, strict=True))
    fn = sum(r and not p for p, r in zip(pred, ref, strict=True))
    tn = sum(not (p or r) for p, r in zip(pred, ref, strict=True))
    fp = sum(p and not r for p, r in zip(pred, ref, strict=True))

    def rate(count: int, total: int) -> float:
        return count / total if total else math.nan

    return {
        "TPR": rate(tp, tp + fn),
        "TNR": rate(tn, tn + fp),
        "FNR": rate(fn, tp + fn),
        "FPR": rate(fp, tn + fp),
    }
