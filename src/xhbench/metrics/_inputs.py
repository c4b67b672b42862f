"""Conversion and validation of metric inputs (numpy arrays, torch tensors, sequences).

Every metric works on torch tensors on the device of its tensor inputs (CPU for numpy
input). Volumes are 3D ``(X, Y, Z)`` or a batch ``(B, X, Y, Z)``; internally they are
always handled as a batch and :func:`per_item` turns the result back into a float (3D
input) or a list of floats (batched input).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

Array = np.ndarray | torch.Tensor
"""What the metrics accept: a numpy array or a torch tensor (CPU or CUDA)."""


def common_device(*values: Any) -> torch.device:
    """The device of the tensors among ``values``; CPU when there are none."""
    devices = {v.device for v in values if isinstance(v, torch.Tensor)}
    if len(devices) > 1:
        raise ValueError(f"inputs are on different devices: {sorted(str(d) for d in devices)}")
    return devices.pop() if devices else torch.device("cpu")


def to_tensor(name: str, value: Any, device: torch.device) -> torch.Tensor:
    """``value`` as a detached tensor on ``device`` (numpy memory is shared when possible)."""
    if isinstance(value, torch.Tensor):
        if value.dtype.is_complex:
            raise ValueError(f"{name} must be real-valued, got dtype {value.dtype}")
        return value.detach().to(device)
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers or booleans, got dtype {array.dtype}")
    if any(stride < 0 for stride in array.strides):
        array = np.ascontiguousarray(array)
    return torch.from_numpy(array).to(device)


def as_batch(name: str, tensor: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``tensor`` with a leading batch axis, and whether the input already had one."""
    if tensor.ndim == 3:
        return tensor.unsqueeze(0), False
    if tensor.ndim == 4:
        return tensor, True
    raise ValueError(
        f"{name} must be a 3D volume (X, Y, Z) or a batch (B, X, Y, Z); "
        f"got shape {tuple(tensor.shape)}"
    )


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise ValueError if a floating-point tensor holds NaN or infinite values."""
    # min and max propagate NaN and reach +-inf: one cheap reduction instead of a mask
    if tensor.is_floating_point() and tensor.numel():
        low, high = torch.aminmax(tensor)
        if not math.isfinite(float(low)) or not math.isfinite(float(high)):
            raise ValueError(f"{name} contains NaN or infinite values")


def as_binary(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as a bool tensor; ValueError unless every value is 0/1 or a bool."""
    if tensor.dtype == torch.bool:
        return tensor
    if not bool(((tensor == 0) | (tensor == 1)).all()):
        raise ValueError(
            f"{name} must be a binary mask (bool or 0/1 values); threshold or select labels first"
        )
    return tensor != 0


def tensor_pair(pred: Any, ref: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``pred`` and ``ref`` as tensors on ``device``; ValueError if their shapes differ."""
    p = to_tensor("pred", pred, device)
    r = to_tensor("ref", ref, device)
    if p.shape != r.shape:
        raise ValueError(
            f"pred and ref must have the same shape; got pred {tuple(p.shape)}, "
            f"ref {tuple(r.shape)}"
        )
    return p, r


def volume_pair(pred: Any, ref: Any, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validated ``(B, X, Y, Z)`` tensors of ``dtype`` and whether the input was batched."""
    p, r = tensor_pair(pred, ref, common_device(pred, ref))
    p, batched = as_batch("pred", p)
    r, _ = as_batch("ref", r)
    if p.numel() == 0:
        raise ValueError(f"pred and ref are empty (shape {tuple(p.shape)})")
    p, r = p.to(dtype), r.to(dtype)
    check_finite("pred", p)
    check_finite("ref", r)
    return p, r, batched


def batch_mask(mask: Any, volumes: torch.Tensor, batched: bool) -> torch.Tensor:
    """``mask`` as a bool ``(B or 1, X, Y, Z)`` tensor matching ``volumes`` ``(B, X, Y, Z)``.

    A batched input takes a mask of the batch's shape, or one spatial mask shared by all
    items.
    """
    m = as_binary("mask", to_tensor("mask", mask, volumes.device))
    spatial = tuple(volumes.shape[1:])
    expected = tuple(volumes.shape) if batched else spatial
    if tuple(m.shape) == spatial:
        return m.unsqueeze(0)
    if tuple(m.shape) == expected:
        return m
    raise ValueError(f"mask has shape {tuple(m.shape)}, but the volumes have shape {expected}")


def positive(name: str, value: Any) -> float:
    """``value`` as a float; ValueError unless it is finite and > 0."""
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def per_item(values: torch.Tensor, batched: bool) -> float | list[float]:
    """A 1D tensor of per-item values as a list of floats, or one float for 3D input."""
    items = [float(v) for v in values.tolist()]
    return items if batched else items[0]


def item_label(index: int, batched: bool) -> str:
    """`` (batch item i)`` for batched input, nothing otherwise (for error messages)."""
    return f" (batch item {index})" if batched else ""
