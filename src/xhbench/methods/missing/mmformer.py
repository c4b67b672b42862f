"""mmFormer: Multimodal Medical Transformer for Incomplete Multimodal Learning of
Brain Tumor Segmentation (Zhang et al., MICCAI 2022).

- Hybrid modality-specific encoders: a residual convolutional encoder per modality
  (five levels, widths 8-16-32-64-128; input 128^3, bottleneck 8^3) and an
  intra-modal transformer on its bottleneck (1x1 conv to the token width 512,
  learnable position embedding, one pre-norm layer, 8 heads, MLP 4096).
- Modality masking: a missing modality's skip features and bottleneck tokens are
  replaced by zeros.
- Inter-modal transformer: the tokens of all modalities concatenated (each with
  its own position embedding) attend to each other; the output is projected back
  to convolutional width per modality and fused by convolution.
- Convolutional decoder: at each scale the masked modality skips are concatenated
  and fused by convolutions (the code's ``fusion_postnorm``), upsampled and merged;
  deep supervision at every coarser scale.
- Auxiliary regularisers: one convolutional decoder with shared weights decodes
  each modality's own convolutional features, each output supervised.
- Loss: fused + sum over modalities + sum over scales, each weighted CE + Dice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ...options import option
from .base import MissingConfig, MissingModalityMethod
from .layers import (
    ConcatFusion,
    ResidualEncoder,
    Transformer,
    UNetDecoder,
    from_tokens,
    mask_modalities,
    resize_tokens,
    to_tokens,
)

__all__ = ["MMFormerConfig", "HybridEncoder", "MMFormer", "MMFormerMethod"]


class HybridEncoder(nn.Module):
    """A modality's CNN encoder and intra-modal transformer on its bottleneck."""

    def __init__(self, widths: list[int], grid: tuple[int, ...], dim: int, depth: int,
                 heads: int, mlp_dim: int, transformer: bool = True):
        super().__init__()
        self.grid = tuple(grid)
        self.cnn = ResidualEncoder(widths)
        self.to_tokens = nn.Conv3d(widths[-1], dim, 1)
        self.pos = nn.Parameter(torch.empty(1, math.prod(self.grid), dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.transformer = Transformer(dim, depth, heads, mlp_dim) if transformer else None

    def position(self, grid) -> torch.Tensor:
        return resize_tokens(self.pos, self.grid, grid)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        skips = self.cnn(x)
        grid = skips[-1].shape[2:]
        tokens = to_tokens(self.to_tokens(skips[-1]))
        if self.transformer is not None:
            tokens = self.transformer(tokens, self.position(grid))
        return skips, tokens


class MMFormer(nn.Module):
    def __init__(self, modalities: int, num_classes: int, widths: list[int],
                 grid: tuple[int, ...], dim: int, heads: int, mlp_dim: int,
                 intra_depth: int, inter_depth: int):
        super().__init__()
        self.encoders = nn.ModuleList(HybridEncoder(widths, grid, dim, intra_depth, heads, mlp_dim)
                                      for _ in range(modalities))
        self.inter = Transformer(dim, inter_depth, heads, mlp_dim)
        self.from_tokens = nn.Conv3d(dim * modalities, widths[-1] * modalities, 1)
        self.fusions = nn.ModuleList(ConcatFusion(w, modalities) for w in widths)
        self.decoder = UNetDecoder(widths, widths, num_classes, deep_supervision=True)
        self.sep_decoder = UNetDecoder(widths, widths, num_classes)

    def forward(self, image: torch.Tensor, available: torch.Tensor):
        encoded = [enc(image[:, m:m + 1]) for m, enc in enumerate(self.encoders)]
        skips = [e[0] for e in encoded]
        grid = skips[0][-1].shape[2:]
        tokens = mask_modalities(torch.stack([e[1] for e in encoded], dim=1), available)
        b, m, n, d = tokens.shape
        pos = torch.cat([enc.position(grid) for enc in self.encoders], dim=1)
        inter = self.inter(tokens.reshape(b, m * n, d), pos).reshape(b, m, n, d)
        bottleneck = self.from_tokens(torch.cat([from_tokens(inter[:, i], grid) for i in range(m)],
                                                dim=1))
        fused = [fusion(torch.stack([s[level] for s in skips], dim=1), available)
                 for level, fusion in enumerate(self.fusions[:-1])]
        fused.append(self.fusions[-1](bottleneck.unflatten(1, (m, -1)), None))
        logits, deep = self.decoder(fused)
        if not self.training:
            return logits
        return {"fuse": logits, "deep": deep, "sep": [self.sep_decoder(s)[0] for s in skips]}


@dataclass
class MMFormerConfig(MissingConfig):
    levels: int = 5
    channels: int = 4
    token_dim: int = option(32, ge=1)  # transformer width (512 in the paper)
    heads: int = option(4, ge=1)  # (8)
    mlp_dim: int = option(64, ge=1)  # (4096)
    intra_depth: int = option(1, ge=1)
    inter_depth: int = option(1, ge=1)


class MMFormerMethod(MissingModalityMethod):
    name = "mmformer"
    citation = "Zhang et al., mmFormer: Multimodal Medical Transformer for Incomplete " \
               "Multimodal Learning of Brain Tumor Segmentation, MICCAI 2022"
    Config = MMFormerConfig
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"roi": (32, 32, 32), "channels": 2, "token_dim": 16, "heads": 2,
                  "mlp_dim": 32, "steps": 2, "batch_size": 2, "sw_overlap": 0.25,
                  "progress": False},
        "default": {"roi": (32, 32, 32), "channels": 8, "token_dim": 32, "heads": 4,
                    "mlp_dim": 64, "steps": 600, "batch_size": 2, "lr": 3e-3,
                    "ce_weighting": "none"},
        # Paper / public code: 128^3 crops, batch 1, Adam (amsgrad) lr 2e-4, weight decay
        # 1e-4, poly decay, 1000 epochs; widths 8..128, tokens 512 wide, 8 heads, MLP
        # 4096, one intra- and one inter-modal layer. One epoch = one pass over the 199
        # training cases of split 1 at batch 1 = 199 steps: 1000 epochs = 199,000 steps.
        "paper": {"roi": (128, 128, 128), "channels": 8, "levels": 5, "token_dim": 512,
                  "heads": 8, "mlp_dim": 4096, "batch_size": 1, "lr": 2e-4, "steps": 199_000,
                  "sw_batch_size": 1, "log_every": 500},
    }

    def build_network(self, in_channels: int, out_channels: int) -> nn.Module:
        cfg = self.config
        return MMFormer(in_channels, out_channels, self.widths(), self.grid(), cfg.token_dim,
                        cfg.heads, cfg.mlp_dim, cfg.intra_depth, cfg.inter_depth)

