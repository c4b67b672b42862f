"""SwinUNETR trained from scratch (Hatamizadeh et al., BrainLes 2021).

MONAI's ``SwinUNETR``; missing modalities are zero-filled by the task. At the
CPU profiles GroupNorm replaces InstanceNorm, whose 1x1x1 bottleneck at 32^3
crops cannot be normalised; the paper profile uses the published InstanceNorm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..options import option
from .supervised import SupervisedConfig, SupervisedMethod

__all__ = ["SwinUNETRMethod"]


@dataclass
class SwinUNETRConfig(SupervisedConfig):
    feature_size: int = option(12, ge=12, multiple_of=12)  # MONAI: a multiple of 12
    norm: Literal["group", "instance"] = "group"
    dropout_path_rate: float = option(0.0, ge=0, lt=1)
    use_checkpoint: bool = False
    window_size: int = option(7, ge=1)  # Swin attention window (MONAI's default)


class SwinUNETRMethod(SupervisedMethod):
    name = "swinunetr"
    citation = "Hatamizadeh et al., Swin UNETR, BrainLes 2021"
    Config = SwinUNETRConfig
    roi_multiple = 32
    profiles = {
        "smoke": {"roi": (32, 32, 32), "steps": 2, "batch_size": 2, "warmup_steps": 1,
                  "sw_overlap": 0.25, "progress": False},
        # default: window 4 tiles the 16^3 / 8^3 token grids of a 32^3 crop exactly (7 pads
        # them to 21^3 / 14^3, ~3.5x the time); the same backbone as ours' default
        "default": {"roi": (32, 32, 32), "steps": 600,
                    "batch_size": 2, "window_size": 4},
        # Paper D.2.2: lr 2e-4, 1000 epochs; 96^3 crops (D.2.1). 1000 epochs of 199 cases
        # at batch 1 on each of four GPUs is about 50k steps.
        "paper": {"roi": (96, 96, 96), "feature_size": 48, "norm": "instance", "steps": 50000,
                  "batch_size": 1, "lr": 2e-4, "warmup_steps": 500, "use_checkpoint": True},
    }

    def build_network(self, in_channels: int, out_channels: int):
        from monai.networks.nets import SwinUNETR

        norm = ("group", {"num_groups": 4}) if self.config.norm == "group" else "instance"
        return SwinUNETR(in_channels=in_channels, out_channels=out_channels,
                         feature_size=self.config.feature_size, norm_name=norm,
                         drop_rate=0.0, dropout_path_rate=self.config.dropout_path_rate,
                         use_checkpoint=self.config.use_checkpoint,
                         window_size=self.config.window_size)
