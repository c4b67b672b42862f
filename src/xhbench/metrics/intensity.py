"""Voxel-wise intensity metrics for synthesised volumes: PSNR and NMSE (float64)."""

from __future__ import annotations

import math

import torch

from ._inputs import Array, batch_mask, item_label, per_item, positive, volume_pair

__all__ = ["nmse", "psnr"]


def _sums(
    values: torch.Tensor, mask: torch.Tensor | None, batched: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-item sums of ``values`` ``(B, X, Y, Z)`` and voxel counts, over the mask if any."""
    if mask is None:
        counts = torch.full((values.shape[0],), values[0].numel(), device=values.device)
        return values.sum(dim=(1, 2, 3)), counts
    counts = mask.expand_as(values).sum(dim=(1, 2, 3))
    for index, count in enumerate(counts.tolist()):
        if count == 0:
            raise ValueError(f"mask selects no voxel{item_label(index, batched)}")
    return torch.where(mask, values, 0.0).sum(dim=(1, 2, 3)), counts


def psnr(
    pred: Array, ref: Array, *, data_range: float | None = None, mask: Array | None = None
) -> float | list[float]:
    """Peak signal-to-noise ratio ``10 * log10(data_range**2 / MSE)`` in dB.

    Args:
        pred: predicted volume ``(X, Y, Z)`` or batch ``(B, X, Y, Z)``.
        ref: reference of the same shape.
        data_range: peak-to-peak range. Default: ``ref.max() - ref.min()`` over the mask
            voxels (all voxels without a mask), per batch item.
        mask: binary mask; MSE and the default data range use only its voxels. Shape of
            the volumes, or of one volume shared by a batch.

    Returns:
        PSNR as a float (``inf`` when pred equals ref), or a list with one per batch item.

    Raises:
        ValueError: shape mismatch, NaN/inf values, a non-binary or empty mask, or a data
            range that is not > 0 (a constant reference needs an explicit ``data_range``).
    """
    p, r, batched = volume_pair(pred, ref, torch.float64)
    m = None if mask is None else batch_mask(mask, r, batched)
    squared_error, counts = _sums((p - r).square_(), m, batched)
    mse = squared_error / counts
    if data_range is None:
        high = r if m is None else torch.where(m, r, -math.inf)
        low = r if m is None else torch.where(m, r, math.inf)
        ranges = high.amax(dim=(1, 2, 3)) - low.amin(dim=(1, 2, 3))
        for index, value in enumerate(ranges.tolist()):
            positive(
                f"the default data range max(ref) - min(ref){item_label(index, batched)}", value
            )
    else:
        ranges = torch.full_like(mse, positive("data_range", data_range))
    return per_item(10.0 * torch.log10(ranges.square() / mse), batched)


def nmse(pred: Array, ref: Array, *, mask: Array | None = None) -> float | list[float]:
    """Normalised mean squared error ``||pred - ref||**2 / ||ref||**2``.

    Equals scikit-image ``normalized_root_mse(ref, pred, normalization="euclidean") ** 2``.

    Args:
        pred: predicted volume ``(X, Y, Z)`` or batch ``(B, X, Y, Z)``.
        ref: reference of the same shape.
        mask: binary mask; both norms use only its voxels.

    Returns:
        NMSE as a float, or a list with one per batch item.

    Raises:
        ValueError: shape mismatch, NaN/inf values, a non-binary or empty mask, or a
            reference that is zero on every (masked) voxel.
    """
    p, r, batched = volume_pair(pred, ref, torch.float64)
    m = None if mask is None else batch_mask(mask, r, batched)
    error, _ = _sums((p - r).square_(), m, batched)
    energy, _ = _sums(r.square(), m, batched)
    for index, value in enumerate(energy.tolist()):
        if value == 0:
            raise ValueError(
                f"NMSE is undefined: ref is zero on every voxel{item_label(index, batched)}"
            )
    return per_item(error / energy, batched)
