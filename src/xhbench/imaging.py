"""Intensity helpers shared by tasks and methods: fixed windows and the CT body mask.

They sit below both layers (tasks normalise with them, methods read a task's windows back),
so neither has to import the other.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .errors import ConfigError

__all__ = ["body_mask", "from_window", "to_window"]


def to_window(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` clipped to ``[low, high]`` and mapped linearly to [0, 1] (float32)."""
    if not high > low:
        raise ConfigError(f"window [{low}, {high}] is empty")
    return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)


def from_window(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Window units ([0, 1]) back to the modality's own (HU, SUV): the inverse of
    :func:`to_window` inside the window."""
    return low + values * (high - low)


def body_mask(ct_hu: np.ndarray, threshold_hu: float = -500.0) -> np.ndarray:
    """The body in a CT (HU): above ``threshold_hu``, holes filled per axial slice (axis 2),
    largest 3D connected component (face connectivity)."""
    mask = ct_hu > threshold_hu
    for z in range(mask.shape[2]):
        mask[:, :, z] = ndimage.binary_fill_holes(mask[:, :, z])
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == int(sizes.argmax())
    return mask
