"""Self-supervised pre-training of a Swin encoder (Tang et al., CVPR 2022), written for xhbench.

Pieces: the two-view augmentation (:func:`random_rotation`, :func:`cutout`), the heads
on the encoder's bottleneck (:class:`SSLHeads`: rotation, contrastive, reconstruction)
and the loss (:func:`ssl_losses`). The reference is Project-MONAI/research-contributions
``SwinUNETR/Pretrain`` (read, not copied); differences are listed in
``docs/methods/baselines.md``.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SSLHeads", "cutout", "random_rotation", "ssl_losses", "two_views"]

ROTATION_DIMS = (3, 4)  # the last two spatial axes of a (B, C, X, Y, Z) batch


def random_rotation(x: torch.Tensor, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each sample of ``(B, C, X, Y, Z)`` by k * 90 degrees (k uniform in 0..3) in
    the plane of the last two spatial axes; return the rotated batch and the k's."""
    if x.shape[ROTATION_DIMS[0]] != x.shape[ROTATION_DIMS[1]]:
        raise ValueError(f"rotation needs equal last two spatial sizes, got {tuple(x.shape[2:])}")
    ks = torch.randint(0, 4, (x.shape[0],), generator=generator)
    rotated = torch.stack([torch.rot90(sample, int(k), dims=(2, 3)) for sample, k in zip(x, ks)])
    return rotated, ks.to(x.device)


def _boxes(shape: tuple[int, int, int], fraction: float, max_box: float,
           generator: torch.Generator | None):
    """Random boxes (slices) whose summed volume first reaches ``fraction`` of ``shape``;
    each edge is 1 voxel to ``max_box`` of its axis."""
    total = fraction * shape[0] * shape[1] * shape[2]
    covered = 0
    while covered < total:
        box = []
        for size in shape:
            edge = int(torch.randint(1, max(int(size * max_box), 1) + 1, (1,), generator=generator))
            start = int(torch.randint(0, size - edge + 1, (1,), generator=generator))
            box.append(slice(start, start + edge))
        covered += (box[0].stop - box[0].start) * (box[1].stop - box[1].start) * \
            (box[2].stop - box[2].start)
        yield tuple(box)


def cutout(x: torch.Tensor, max_fraction: float = 0.3, max_box: float = 0.25,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Tang et al.'s masked-volume inpainting input: per sample, boxes covering a fraction
    drawn uniformly in ``[0, max_fraction]`` of the voxels are filled with Gaussian noise;
    then (probability (B-1)/B) a second such set of boxes is replaced by the co-located
    content of another sample of the batch. Returns a new tensor."""
    out = x.clone()
    batch, shape = x.shape[0], tuple(x.shape[2:])
    for i in range(batch):
        fraction = float(torch.rand((), generator=generator)) * max_fraction
        for box in _boxes(shape, fraction, max_box, generator):
            region = out[(i, slice(None), *box)]
            out[(i, slice(None), *box)] = torch.randn(region.shape, generator=generator).to(region)
        other = int(torch.randint(0, batch, (1,), generator=generator))
        if other != i:
            fraction = float(torch.rand((), generator=generator)) * max_fraction
            for box in _boxes(shape, fraction, max_box, generator):
                out[(i, slice(None), *box)] = x[(other, slice(None), *box)]
    return out


def two_views(x: torch.Tensor, max_fraction: float = 0.3, max_box: float = 0.25,
              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Two independently rotated views of each crop, and their cut-out versions.

    Returns ``inputs`` (2B, C, ...) network input (cut-out views), ``targets`` (2B, C, ...)
    the rotated views without cut-out, ``rotations`` (2B,) the k of each view.
    """
    view1, rot1 = random_rotation(x, generator)
    view2, rot2 = random_rotation(x, generator)
    inputs = torch.cat([cutout(view1, max_fraction, max_box, generator),
                        cutout(view2, max_fraction, max_box, generator)])
    return {"inputs": inputs, "targets": torch.cat([view1, view2]),
            "rotations": torch.cat([rot1, rot2])}


def _norm(kind: Literal["group", "instance"], channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(min(4, channels), channels)
    return nn.InstanceNorm3d(channels)


class SSLHeads(nn.Module):
    """A Swin encoder and Tang et al.'s three heads on its bottleneck ``z`` (``dim`` =
    feature_size * 16 channels at 1/32 of the input size).

    Rotation: ``Linear(dim, 4)`` on bottleneck token 0; contrastive: ``Linear(dim, out)``
    on token 1 (on token 0 when the bottleneck has a single token, i.e. 32^3 crops);
    reconstruction: five stages of 3^3 conv, norm, LeakyReLU, x2 trilinear upsampling
    (channels halving to dim/16), then a 1^3 conv to the input channels.
    """

    def __init__(self, encoder: nn.Module, in_channels: int, dim: int,
                 contrastive_dim: int = 512, norm: Literal["group", "instance"] = "instance"):
        super().__init__()
        self.encoder = encoder
        self.rotation = nn.Linear(dim, 4)
        self.contrastive = nn.Linear(dim, contrastive_dim)
        widths = [dim, dim // 2, dim // 4, dim // 8, dim // 16, dim // 16]
        stages: list[nn.Module] = []
        for c_in, c_out in pairwise(widths):
            stages += [nn.Conv3d(c_in, c_out, 3, padding=1), _norm(norm, c_out),
                       nn.LeakyReLU(), nn.Upsample(scale_factor=2, mode="trilinear",
                                                   align_corners=False)]
        stages.append(nn.Conv3d(widths[-1], in_channels, 1))
        self.reconstruction = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder(x.contiguous(), True)[-1]
        tokens = z.flatten(2).transpose(1, 2)  # (B, N, dim)
        contrastive_token = tokens[:, 1] if tokens.shape[1] > 1 else tokens[:, 0]
        return self.rotation(tokens[:, 0]), self.contrastive(contrastive_token), \
            self.reconstruction(z)


def ssl_losses(heads: SSLHeads, views: dict[str, torch.Tensor], temperature: float = 0.5,
               weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> dict[str, torch.Tensor]:
    """Rotation cross-entropy, NT-Xent between the two views (MONAI ``ContrastiveLoss``)
    and L1 reconstruction of the rotated views without cut-out; ``total`` is their
    weighted sum."""
    from monai.losses import ContrastiveLoss

    rotation, contrastive, reconstruction = heads(views["inputs"])
    half = contrastive.shape[0] // 2
    losses = {
        "rotation": F.cross_entropy(rotation.float(), views["rotations"]),
        "contrastive": ContrastiveLoss(temperature=temperature)(contrastive[:half].float(),
                                                                 contrastive[half:].float()),
        "reconstruction": F.l1_loss(reconstruction.float(), views["targets"].float()),
    }
    losses["total"] = sum(w * losses[k] for w, k in
                          zip(weights, ("rotation", "contrastive", "reconstruction")))
    return losses
