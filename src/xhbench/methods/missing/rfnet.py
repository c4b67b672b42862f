"""RFNet: Region-aware Fusion Network (Ding, Yu & Yang, ICCV 2021).

- Modality-specific encoders: one residual convolutional encoder per modality
  (four levels, widths 16-32-64-128 in the paper; input 80^3, bottleneck 10^3).
- Region-aware fusion module (RFM) at every decoder scale: a probability-map
  generator predicts K region maps (background, NCR/NET, ED, ET) from the
  decoder's feature and the masked modality features; for each region k the
  modality features are weighted by its map, pooled (normalised by the map's
  mean), and a small MLP gives one sigmoid weight per modality; the region's
  feature is the weighted sum over available modalities; the K region features
  are merged by convolutions. Missing modalities are zeroed and weighted 0.
- Shared fusion decoder: upsample, RFM at that scale, concatenate, convolve.
- Segmentation-based regulariser: one decoder with shared weights applied to each
  modality's own features, each output supervised.
- Deep supervision: the region probability maps of every scale are supervised.
- Training: one random modality subset per sample (the task's mask); loss = fused
  + sum over modalities + sum over scales, each weighted CE + Dice; the fused
  term starts after ``fusion_warmup_steps`` (the code's region_fusion_start_epoch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ...options import option
from .base import MissingConfig, MissingModalityMethod
from .layers import ConvNormAct, ResidualEncoder, UNetDecoder, mask_modalities, up2

__all__ = ["ProbabilityMaps", "RFNet", "RFNetMethod", "RegionAwareFusion"]


class ProbabilityMaps(nn.Module):
    """Region probability-map logits from [decoder feature, masked modality features]."""

    def __init__(self, channels: int, modalities: int, regions: int, decoder_channels: int = 0):
        super().__init__()
        self.embed = nn.Sequential(ConvNormAct(channels * modalities + decoder_channels, channels,
                                               kernel=1),
                                   ConvNormAct(channels, channels))
        self.logits = nn.Conv3d(channels, regions, 1)

    def forward(self, masked: torch.Tensor, decoder: torch.Tensor | None = None) -> torch.Tensor:
        x = masked.flatten(1, 2)
        if decoder is not None:
            x = torch.cat([decoder, x], dim=1)
        return self.logits(self.embed(x))


class RegionAwareFusion(nn.Module):
    """Fuse masked modality features (B, M, C, ...) region by region."""

    def __init__(self, channels: int, modalities: int, regions: int, hidden: int = 128):
        super().__init__()
        self.weights = nn.ModuleList(
            nn.Sequential(nn.Linear(modalities * channels + 1, hidden), nn.LeakyReLU(0.2),
                          nn.Linear(hidden, modalities))
            for _ in range(regions))
        self.merge = nn.Sequential(ConvNormAct(regions * channels, channels, kernel=1),
                                   ConvNormAct(channels, channels),
                                   ConvNormAct(channels, channels, kernel=1))

    def forward(self, masked: torch.Tensor, probs: torch.Tensor,
                available: torch.Tensor) -> torch.Tensor:
        spatial = tuple(range(3, masked.ndim))
        regions = []
        for k, mlp in enumerate(self.weights):
            p = probs[:, k:k + 1]  # (B, 1, ...)
            region = masked * p[:, None]  # (B, M, C, ...)
            p_mean = p.flatten(1).mean(dim=1, keepdim=True) + 1e-7  # (B, 1)
            pooled = region.mean(dim=spatial) / p_mean[:, :, None]  # (B, M, C)
            weight = torch.sigmoid(mlp(torch.cat([pooled.flatten(1), p_mean], dim=1)))  # (B, M)
            weight = torch.where(available, weight, torch.zeros((), dtype=weight.dtype,
                                                                device=weight.device))
            regions.append((region * weight.reshape(*weight.shape, *([1] * (masked.ndim - 2))))
                           .sum(dim=1))
        return self.merge(torch.cat(regions, dim=1))


class RFNet(nn.Module):
    def __init__(self, modalities: int, num_classes: int, widths: list[int], hidden: int):
        super().__init__()
        levels = len(widths)
        self.encoders = nn.ModuleList(ResidualEncoder(widths) for _ in range(modalities))
        self.prm = nn.ModuleList(
            ProbabilityMaps(widths[l], modalities, num_classes,
                            decoder_channels=0 if l == levels - 1 else widths[l])
            for l in range(levels))
        self.rfm = nn.ModuleList(RegionAwareFusion(w, modalities, num_classes, hidden)
                                 for w in widths)
        self.ups = nn.ModuleList(ConvNormAct(widths[l + 1], widths[l]) for l in range(levels - 1))
        self.merges = nn.ModuleList(
            nn.Sequential(ConvNormAct(2 * widths[l], widths[l]),
                          ConvNormAct(widths[l], widths[l], kernel=1))
            for l in range(levels - 1))
        self.head = nn.Conv3d(widths[0], num_classes, 1)
        self.sep_decoder = UNetDecoder(widths, widths, num_classes)

    def forward(self, image: torch.Tensor, available: torch.Tensor):
        per_modality = [enc(image[:, m:m + 1]) for m, enc in enumerate(self.encoders)]
        levels = len(per_modality[0])
        masked = [mask_modalities(torch.stack([f[l] for f in per_modality], dim=1), available)
                  for l in range(levels)]
        prm_logits = [self.prm[-1](masked[-1])]
        x = self.rfm[-1](masked[-1], prm_logits[-1].softmax(dim=1), available)
        for l in reversed(range(levels - 1)):
            up = self.ups[l](up2(x))
            prm_logits.append(self.prm[l](masked[l], up))
            fused = self.rfm[l](masked[l], prm_logits[-1].softmax(dim=1), available)
            x = self.merges[l](torch.cat([up, fused], dim=1))
        logits = self.head(x)
        if not self.training:
            return logits
        return {"fuse": logits, "deep": prm_logits,
                "sep": [self.sep_decoder(f)[0] for f in per_modality]}


@dataclass
class RFNetConfig(MissingConfig):
    fusion_hidden: int = option(128, ge=1)  # width of the MLP giving each region's modality weights


class RFNetMethod(MissingModalityMethod):
    name = "rfnet"
    citation = "Ding, Yu & Yang, RFNet: Region-aware Fusion Network for Incomplete " \
               "Multi-modal Brain Tumor Segmentation, ICCV 2021"
    Config = RFNetConfig
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"roi": (32, 32, 32), "channels": 2, "fusion_hidden": 8, "steps": 2,
                  "batch_size": 2, "sw_overlap": 0.25, "progress": False},
        "default": {"roi": (32, 32, 32), "channels": 8, "fusion_hidden": 16, "steps": 600,
                    "batch_size": 2, "lr": 3e-3, "ce_weighting": "none",
                    "fusion_warmup_steps": 20},
        # Paper / public code: 80^3 crops, batch 1, Adam (amsgrad) lr 2e-4, weight decay
        # 1e-4, poly decay (power 0.9), 1000 epochs, fused loss from epoch 20. One epoch =
        # one pass over the 199 training cases of split 1 at batch 1 = 199 steps:
        # 1000 epochs = 199,000 steps; 20 epochs = 3,980 steps.
        "paper": {"roi": (80, 80, 80), "channels": 16, "levels": 4, "fusion_hidden": 128,
                  "batch_size": 1, "lr": 2e-4, "steps": 199_000, "fusion_warmup_steps": 3_980,
                  "sw_batch_size": 1, "log_every": 500},
    }

    def build_network(self, in_channels: int, out_channels: int) -> nn.Module:
        return RFNet(in_channels, out_channels, self.widths(), self.config.fusion_hidden)
