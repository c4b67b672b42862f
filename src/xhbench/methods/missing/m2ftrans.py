"""M2FTrans: Modality-Masked Fusion Transformer for Incomplete Multi-Modality Brain
Tumor Segmentation (Shi et al., IEEE JBHI 2023).

Built on the mmFormer design (hybrid modality-specific encoders, shared-weight
auxiliary decoder, deep supervision, the same loss and optimiser), with:

- Modality-masked fusion transformer (MMFT): a set of learnable fusion tokens, one
  per bottleneck position, is prepended to the modality tokens (each with position
  and modality embeddings). Self-attention carries a mask that removes every
  missing modality's tokens from the keys, so the fusion tokens (and the available
  modalities' tokens) gather information from the available modalities only. The
  fusion tokens' outputs become the fused bottleneck.
- Spatial-weighted attention (SWA) for the skip connections: per voxel, a score per
  modality from the concatenated masked features; a softmax over the AVAILABLE
  modalities (missing ones get -inf) weights their features, which are summed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ...options import option
from .base import MissingModalityMethod
from .layers import (
    ConvNormAct,
    Transformer,
    UNetDecoder,
    from_tokens,
    mask_modalities,
    resize_tokens,
)
from .mmformer import MMFormerConfig
from .mmformer import HybridEncoder, MMFormerMethod

__all__ = ["M2FTransConfig", "M2FTrans", "M2FTransMethod", "SpatialWeightedFusion"]


class SpatialWeightedFusion(nn.Module):
    """Voxel-wise softmax weights over the available modalities' features."""

    def __init__(self, channels: int, modalities: int):
        super().__init__()
        self.scores = nn.Sequential(ConvNormAct(channels * modalities, channels, kernel=1),
                                    nn.Conv3d(channels, modalities, 1))
        self.out = ConvNormAct(channels, channels)

    def forward(self, features: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        masked = mask_modalities(features, available)  # (B, M, C, ...)
        scores = self.scores(masked.flatten(1, 2))  # (B, M, ...)
        missing = ~available.reshape(*available.shape, *([1] * (scores.ndim - 2)))
        weights = scores.float().masked_fill(missing, float("-inf")).softmax(dim=1)
        return self.out((masked * weights.to(masked.dtype)[:, :, None]).sum(dim=1))


class M2FTrans(nn.Module):
    def __init__(self, modalities: int, num_classes: int, widths: list[int],
                 grid: tuple[int, ...], dim: int, heads: int, mlp_dim: int,
                 intra_depth: int, fusion_depth: int, intra_transformer: bool):
        super().__init__()
        self.grid = tuple(grid)
        n = math.prod(self.grid)
        self.encoders = nn.ModuleList(
            HybridEncoder(widths, grid, dim, intra_depth, heads, mlp_dim, intra_transformer)
            for _ in range(modalities))
        self.fusion_tokens = nn.Parameter(torch.empty(1, n, dim))
        self.fusion_pos = nn.Parameter(torch.empty(1, n, dim))
        self.modality_embedding = nn.Parameter(torch.empty(1, modalities, 1, dim))
        for p in (self.fusion_tokens, self.fusion_pos, self.modality_embedding):
            nn.init.trunc_normal_(p, std=0.02)
        self.fusion = Transformer(dim, fusion_depth, heads, mlp_dim)
        self.from_tokens = ConvNormAct(dim, widths[-1], kernel=1)
        self.skip_fusions = nn.ModuleList(SpatialWeightedFusion(w, modalities) for w in widths[:-1])
        self.decoder = UNetDecoder(widths, widths, num_classes, deep_supervision=True)
        self.sep_decoder = UNetDecoder(widths, widths, num_classes)

    def forward(self, image: torch.Tensor, available: torch.Tensor):
        encoded = [enc(image[:, m:m + 1]) for m, enc in enumerate(self.encoders)]
        skips = [e[0] for e in encoded]
        grid = skips[0][-1].shape[2:]
        tokens = mask_modalities(torch.stack([e[1] for e in encoded], dim=1), available)
        b, m, n, d = tokens.shape
        pos = torch.stack([enc.position(grid) for enc in self.encoders], dim=1)  # (1, M, N, D)
        modality_tokens = (tokens + pos + self.modality_embedding).reshape(b, m * n, d)
        fusion = (resize_tokens(self.fusion_tokens, self.grid, grid)
                  + resize_tokens(self.fusion_pos, self.grid, grid)).expand(b, -1, -1)
        keep = torch.cat([torch.ones(b, n, dtype=torch.bool, device=image.device),
                          available.repeat_interleave(n, dim=1)], dim=1)
        out = self.fusion(torch.cat([fusion, modality_tokens], dim=1), keep=keep)
        bottleneck = self.from_tokens(from_tokens(out[:, :n], grid))
        fused = [swa(torch.stack([s[level] for s in skips], dim=1), available)
                 for level, swa in enumerate(self.skip_fusions)]
        logits, deep = self.decoder([*fused, bottleneck])
        if not self.training:
            return logits
        return {"fuse": logits, "deep": deep, "sep": [self.sep_decoder(s)[0] for s in skips]}


@dataclass
class M2FTransConfig(MMFormerConfig):
    fusion_depth: int = option(1, ge=1)  # layers of the modality-masked fusion transformer
    intra_transformer: bool = True  # keep mmFormer's intra-modal transformers


class M2FTransMethod(MissingModalityMethod):
    name = "m2ftrans"
    citation = "Shi et al., M2FTrans: Modality-Masked Fusion Transformer for Incomplete " \
               "Multi-Modality Brain Tumor Segmentation, IEEE JBHI 2023"
    Config = M2FTransConfig
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        **{name: MMFormerMethod.profiles[name] for name in ("smoke", "default")},
        # Paper / public code (derived from mmFormer's): batch 1, Adam (amsgrad) lr 2e-4,
        # weight decay 1e-4, poly decay, 1000 epochs; mmFormer's widths and token sizes.
        # Crops of 80^3 (RFNet-family data pipeline; bottleneck 5^3). One epoch = one pass
        # over the 199 training cases of split 1 at batch 1 = 199 steps: 1000 epochs =
        # 199,000 steps.
        "paper": {"roi": (80, 80, 80), "channels": 8, "levels": 5, "token_dim": 512,
                  "heads": 8, "mlp_dim": 4096, "batch_size": 1, "lr": 2e-4, "steps": 199_000,
                  "sw_batch_size": 1, "log_every": 500},
    }

    def build_network(self, in_channels: int, out_channels: int) -> nn.Module:
        cfg = self.config
        return M2FTrans(in_channels, out_channels, self.widths(), self.grid(), cfg.token_dim,
                        cfg.heads, cfg.mlp_dim, cfg.intra_depth, cfg.fusion_depth,
                        cfg.intra_transformer)
