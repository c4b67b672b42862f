"""Building blocks shared by the missing-modality networks.

Every network here takes ``(image, available)``: ``image`` (B, M, X, Y, Z) with one
channel per modality and ``available`` (B, M) bool. A missing modality's features
are replaced by zeros with :func:`torch.where` before any fusion, so neither its
values nor NaN/inf in them can reach the fused path.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConcatFusion",
    "ConvNormAct",
    "PlainEncoder",
    "ResidualEncoder",
    "Transformer",
    "TransformerLayer",
    "UNetDecoder",
    "from_tokens",
    "mask_modalities",
    "resize_tokens",
    "to_tokens",
    "up2",
]


def mask_modalities(features: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """Zero the missing modalities of ``features`` (B, M, ...) given ``available`` (B, M)."""
    keep = available.reshape(*available.shape, *([1] * (features.ndim - 2)))
    return torch.where(keep, features, torch.zeros((), dtype=features.dtype,
                                                   device=features.device))


def up2(x: torch.Tensor) -> torch.Tensor:
    """Trilinear x2 upsampling (the decoders of RFNet / mmFormer)."""
    return F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False)


class ConvNormAct(nn.Sequential):
    """Conv3d -> InstanceNorm (affine) -> LeakyReLU(0.2): the ``general_conv3d`` unit of
    the RFNet-family networks."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1):
        super().__init__(
            nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2),
            nn.InstanceNorm3d(out_channels, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
        )


class ResidualEncoder(nn.Module):
    """One modality's convolutional encoder: per level an entry convolution (stride 2
    below the first level) and two convolutions added back residually. Returns the
    features of every level, shallow to deep."""

    def __init__(self, channels: Sequence[int], in_channels: int = 1):
        super().__init__()
        self.entries = nn.ModuleList()
        self.bodies = nn.ModuleList()
        previous = in_channels
        for level, width in enumerate(channels):
            self.entries.append(ConvNormAct(previous, width, stride=1 if level == 0 else 2))
            self.bodies.append(nn.Sequential(ConvNormAct(width, width), ConvNormAct(width, width)))
            previous = width

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for entry, body in zip(self.entries, self.bodies):
            x = entry(x)
            x = x + body(x)
            skips.append(x)
        return skips


class PlainEncoder(nn.Module):
    """A U-Net encoder without residuals: two convolutions per level, max-pooling
    between levels (the back-end pipelines of HeMIS, stacked into scales)."""

    def __init__(self, channels: Sequence[int], in_channels: int = 1):
        super().__init__()
        self.levels = nn.ModuleList()
        previous = in_channels
        for width in channels:
            self.levels.append(nn.Sequential(ConvNormAct(previous, width), ConvNormAct(width, width)))
            previous = width

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for level, block in enumerate(self.levels):
            if level:
                x = F.max_pool3d(x, 2)
            x = block(x)
            skips.append(x)
        return skips


class UNetDecoder(nn.Module):
    """A convolutional U-Net decoder over one feature map per level (shallow to deep).

    ``skip_channels[l]`` is the width of the input at level l, ``channels[l]`` the
    decoder's width there. With ``deep_supervision`` it also returns logits from a
    1x1 head at every level below the first (coarse, deepest first).
    """

    def __init__(self, skip_channels: Sequence[int], channels: Sequence[int], num_classes: int,
                 deep_supervision: bool = False):
        super().__init__()
        levels = len(channels)
        self.bottom = ConvNormAct(skip_channels[-1], channels[-1], kernel=1)
        self.ups = nn.ModuleList(ConvNormAct(channels[l + 1], channels[l]) for l in range(levels - 1))
        self.merges = nn.ModuleList(
            nn.Sequential(ConvNormAct(channels[l] + skip_channels[l], channels[l]),
                          ConvNormAct(channels[l], channels[l], kernel=1))
            for l in range(levels - 1))
        self.head = nn.Conv3d(channels[0], num_classes, 1)
        self.deep = (nn.ModuleList(nn.Conv3d(channels[l], num_classes, 1)
                                   for l in range(1, levels)) if deep_supervision else None)

    def features(self, skips: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The full-resolution decoder feature (before the head) and the coarse logits."""
        x = self.bottom(skips[-1])
        coarse = []
        for level in reversed(range(len(self.ups))):
            if self.deep is not None:
                coarse.append(self.deep[level](x))
            x = self.merges[level](torch.cat([self.ups[level](up2(x)), skips[level]], dim=1))
        return x, coarse

    def forward(self, skips: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x, coarse = self.features(skips)
        return self.head(x), coarse


class ConcatFusion(nn.Module):
    """mmFormer's skip fusion: concatenate the (masked) modality features, 1x1 conv to
    one modality's width, then 3x3 and 1x1 convolutions."""

    def __init__(self, channels: int, modalities: int):
        super().__init__()
        self.block = nn.Sequential(ConvNormAct(channels * modalities, channels, kernel=1),
                                   ConvNormAct(channels, channels),
                                   ConvNormAct(channels, channels, kernel=1))

    def forward(self, features: torch.Tensor, available: torch.Tensor | None) -> torch.Tensor:
        """``available`` None: the features are already fused (nothing to mask)."""
        if available is not None:
            features = mask_modalities(features, available)
        return self.block(features.flatten(1, 2))


class TransformerLayer(nn.Module):
    """Pre-norm multi-head self-attention + MLP. ``keep`` (B, S) bool: the tokens that
    may be attended to (keys); the others get zero attention weight."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer width {dim} not divisible by {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, s, 3, self.heads, d // self.heads) \
            .permute(2, 0, 3, 1, 4)
        mask = None if keep is None else keep[:, None, None, :]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(attended.transpose(1, 2).reshape(b, s, d))
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """A stack of :class:`TransformerLayer`; the position embedding is added before
    every layer (as mmFormer's transformer does)."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(TransformerLayer(dim, heads, mlp_dim, dropout)
                                    for _ in range(depth))

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x if pos is None else x + pos, keep)
        return x


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, X, Y, Z) -> (B, X*Y*Z, C)."""
    return x.flatten(2).transpose(1, 2)


def from_tokens(tokens: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """(B, N, C) -> (B, C, *grid)."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)


def resize_tokens(tokens: torch.Tensor, trained: Sequence[int], grid: Sequence[int]) -> torch.Tensor:
    """Learned per-position tokens (1, N, C) on the ``trained`` grid, resampled
    trilinearly to ``grid`` when a window of another size is used."""
    if tuple(trained) == tuple(grid):
        return tokens
    volume = from_tokens(tokens, trained)
    return to_tokens(F.interpolate(volume, size=tuple(grid), mode="trilinear", align_corners=False))
