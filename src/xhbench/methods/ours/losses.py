"""Losses and view helpers of ``ours`` (paper Eqs. 2-6 and 8, Algorithms 1-2).

Tensors are ``(B, C, X, Y, Z)``; rotations are about the z axis (the last spatial
axis), i.e. in the X-Y plane.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "SegmentationLoss",
    "augment",
    "fill_missing",
    "invariance_loss",
    "masked_error",
    "nt_xent",
    "other_subset",
    "rotate_batch",
    "rotate_z",
    "rotation_loss",
    "unrotate_batch",
    "weighted_cross_entropy",
]


# --- geometry -----------------------------------------------------------------------

def rotate_z(x: torch.Tensor, k: int) -> torch.Tensor:
    """Rotate ``(..., X, Y, Z)`` by ``k * 90`` degrees about the z axis (X towards Y)."""
    return torch.rot90(x, int(k) % 4, dims=(-3, -2))


def rotate_batch(x: torch.Tensor, ks: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """Rotate each sample ``x[j]`` by ``ks[j] * 90`` degrees about z."""
    return torch.stack([rotate_z(x[j], int(k)) for j, k in enumerate(ks)])


def unrotate_batch(x: torch.Tensor, ks: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """The inverse of :func:`rotate_batch` (phi^-1 in Eq. 6)."""
    return torch.stack([rotate_z(x[j], -int(k)) for j, k in enumerate(ks)])


# --- pre-training terms --------------------------------------------------------------

def nt_xent(anchor: torch.Tensor, positive: torch.Tensor, temperature: float,
            groups: torch.Tensor | None = None) -> torch.Tensor:
    """NT-Xent (Eq. 2) over ``2N`` codes: ``anchor[n]`` and ``positive[n]`` are a
    positive pair, every other code is a negative.

    With ``groups`` (``(N,)`` ids), codes of the same group other than the positive are
    left out of the denominator (neither positive nor negative). Without it this equals
    MONAI's ``ContrastiveLoss``.
    """
    n = anchor.shape[0]
    codes = F.normalize(torch.cat([anchor, positive]).float(), dim=1)
    logits = codes @ codes.T / temperature
    excluded = torch.eye(2 * n, dtype=torch.bool, device=codes.device)
    if groups is not None:
        g = torch.cat([groups, groups]).to(codes.device)
        excluded = excluded | (g[:, None] == g[None, :])
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(codes.device)
    excluded[torch.arange(2 * n, device=codes.device), targets] = False  # keep the positive
    logits = logits.masked_fill(excluded, float("-inf"))
    return F.cross_entropy(logits, targets)


def rotation_loss(logits: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
    """Eq. 5: cross-entropy of the 4 rotation classes."""
    return F.cross_entropy(logits.float(), ks.to(logits.device).long())


def invariance_loss(views: torch.Tensor,
                    target: Literal["mean", "running", "last"] = "mean",
                    relative: bool = False) -> torch.Tensor:
    """Eq. 3 for ``views`` of shape ``(V, B, C, ...)``: the V representations ``X_h^i'``
    of each of B subjects.

    ``mean``: mean squared distance of each view to the mean over the V views (Eq. 3).
    ``running``: Algorithm 1's memory-saving form: view v is compared with the running
    average ``X_h' := (X_h' + X_h^i')/2`` of the views before it.
    ``last``: mean squared distance of the other views to the last one, detached (a
    teacher: fine-tuning's all-modality view, which the others are pulled towards and
    which is not pulled towards them; with ``relative`` the spread still counts every view).
    ``relative``: divided by the spread of the representation (per element, the variance
    over all V x B maps, averaged over elements), so that an ``X_h'`` that is the same
    for every input no longer minimises it: the views of a subject must agree relative
    to how much the representations of different subjects differ (needs B >= 2).
    Zero for a single view.
    """
    views = views.float()
    if views.shape[0] < 2:
        return views.sum() * 0.0
    if target == "mean":
        distance = ((views - views.mean(dim=0, keepdim=True)) ** 2).mean()
    elif target == "last":
        distance = ((views[:-1] - views[-1:].detach()) ** 2).mean()
    else:
        running, distance = views[0], views.new_zeros(())
        for view in views[1:]:
            distance = distance + ((view - running) ** 2).mean()
            running = (running + view) / 2
        distance = distance / (views.shape[0] - 1)
    if not relative:
        return distance
    spread = views.flatten(0, 1).var(dim=0, unbiased=False).mean()
    return distance / (spread + 1e-8)


def masked_error(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                 power: int = 2) -> torch.Tensor:
    """Mean ``|prediction - target|^power`` over voxels where ``mask`` (broadcast over
    channels) is set: background excluded (paper D.2.1)."""
    weight = mask.to(prediction.device, torch.float32).expand_as(target)
    error = (prediction.float() - target.float()).abs() ** power
    return (error * weight).sum() / weight.sum().clamp_min(1.0)


# --- fine-tuning terms ---------------------------------------------------------------

def weighted_cross_entropy(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with per-sample class weights ``w_c = 1 - (voxels of class c) /
    (voxels)``, averaged over voxels: the weighting of RFNet / M2FTrans
    (``softmax_weighted_loss``), which the paper adopts (D.2.2). That code clamps the
    softmax at 0.005 before the log; here the log-softmax is used unclamped."""
    classes = logits.shape[1]
    onehot = F.one_hot(label[:, 0].long(), classes).movedim(-1, 1).float()
    spatial = tuple(range(2, onehot.ndim))
    fraction = onehot.sum(dim=spatial) / onehot.sum(dim=(1, *spatial)).clamp_min(1.0)[:, None]
    weight = (1.0 - fraction).reshape(*fraction.shape, *([1] * len(spatial)))
    log_p = F.log_softmax(logits.float(), dim=1)
    return -(weight * onehot * log_p).sum(dim=1).mean()


class SegmentationLoss:
    """Soft Dice over all classes, pooled over the batch (MONAI ``DiceLoss`` with
    ``batch=True``, as RFNet's ``dice_loss`` sums over the batch) + weighted CE."""

    def __init__(self):
        from monai.losses import DiceLoss

        self.dice = DiceLoss(to_onehot_y=True, softmax=True, include_background=True,
                             batch=True)

    def __call__(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        label = label.to(logits.device)
        return self.dice(logits.float(), label) + weighted_cross_entropy(logits, label)


# --- inputs and views ----------------------------------------------------------------

def fill_missing(image: torch.Tensor, available: torch.Tensor,
                 how: Literal["zero", "repeat"]) -> torch.Tensor:
    """The network input from ``image`` ``(B, C, ...)`` and ``available`` ``(B, C)``:
    missing channels are replaced, never scaled, so their values cannot leak (not
    even NaN).

    ``zero``: missing channels 0 (the missing-modality literature).
    ``repeat``: missing channels take the mean of the available ones; for a single
    available modality that is the modality repeated into every channel (D.2.1).
    """
    available = available.to(image.device, torch.bool)
    if not available.any(dim=1).all():
        raise ValueError("every sample needs at least one available modality")
    keep = available.reshape(*available.shape, *([1] * (image.ndim - 2)))
    present = torch.where(keep, image, torch.zeros((), dtype=image.dtype, device=image.device))
    if how == "zero":
        return present
    count = available.sum(dim=1).to(image.dtype).reshape(-1, *([1] * (image.ndim - 1)))
    mean = present.sum(dim=1, keepdim=True) / count
    return torch.where(keep, image, mean.expand_as(image))


def other_subset(available: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per sample, a uniformly drawn subset with as many modalities as ``available``
    but different from it (the same subset when no other exists)."""
    out = available.clone().bool()
    channels = available.shape[1]
    for b, row in enumerate(available.bool().tolist()):
        size = sum(row)
        choices = [c for c in itertools.combinations(range(channels), size)
                   if [i in c for i in range(channels)] != row]
        if choices:
            pick = choices[int(torch.randint(len(choices), (1,), generator=generator))]
            out[b] = torch.tensor([i in pick for i in range(channels)])
    return out


def augment(x: torch.Tensor, generator: torch.Generator, *, cutout_fraction: float = 0.3,
            noise_std: float = 0.1, scale: float = 0.1, shift: float = 0.1) -> torch.Tensor:
    """A contrastive view (cf. Tang et al.): random intensity scale and shift per
    sample, Gaussian noise, and cut-out boxes filled with noise covering up to
    ``cutout_fraction`` of the voxels. Random numbers come from ``generator`` (CPU)."""
    batch, _, *spatial = x.shape
    dims = (batch,) + (1,) * (x.ndim - 1)
    s = 1 + scale * (2 * torch.rand(dims, generator=generator) - 1)
    t = shift * (2 * torch.rand(dims, generator=generator) - 1)
    noise = noise_std * torch.randn(x.shape, generator=generator)
    out = x * s.to(x) + t.to(x) + noise.to(x)
    if cutout_fraction <= 0:
        return out
    fill = torch.randn(x.shape, generator=generator).to(x)
    mask = torch.zeros((batch, 1, *spatial), dtype=torch.bool)
    total = float(torch.tensor(spatial).prod())
    for b in range(batch):
        goal = float(torch.rand((), generator=generator)) * cutout_fraction
        for _ in range(16):
            if float(mask[b].sum()) / total >= goal:
                break
            box = []
            for size in spatial:
                width = int(torch.randint(max(size // 8, 1), max(size // 4, 1) + 1, (1,),
                                          generator=generator))
                start = int(torch.randint(0, size - width + 1, (1,), generator=generator))
                box.append(slice(start, start + width))
            mask[(b, slice(None), *box)] = True
    return torch.where(mask.to(x.device), fill, out)
