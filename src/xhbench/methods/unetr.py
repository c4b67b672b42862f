"""UNETR trained from scratch (Hatamizadeh et al., WACV 2022).

MONAI's ``UNETR``: a 12-layer ViT on 16^3 patches, its 3rd/6th/9th/12th token maps
decoded by a convolutional U-Net decoder. The position embedding is built for one
input size (``img_size`` = the training roi), so inference windows are the training
roi too (``infer_roi`` must be unset or equal). Missing modalities are zero-filled by
the task; the shared recipe of :class:`SupervisedMethod` trains it.

Paper profile: the UNETR paper's network (feature size 16, hidden size 768, MLP 3072,
12 heads, instance norm, residual decoder blocks, conv patch embedding), 96^3 input.
The CPU profiles shrink the transformer (hidden 192, MLP 768, 6 heads; 12 layers are
fixed by MONAI) so that a step takes well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from ..options import option
from .supervised import SupervisedConfig, SupervisedMethod

__all__ = ["UNETRMethod"]


@dataclass
class UNETRConfig(SupervisedConfig):
    feature_size: int = option(16, ge=1)
    hidden_size: int = option(192, ge=1)
    mlp_dim: int = option(768, ge=1)
    num_heads: int = option(6, ge=1)
    proj_type: Literal["conv", "perceptron"] = "conv"
    norm: Literal["instance", "batch"] = "instance"
    res_block: bool = True
    dropout_rate: float = option(0.0, ge=0, le=1)

    def validate(self) -> None:
        """MONAI's ViT splits hidden_size over the attention heads."""
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"option hidden_size={self.hidden_size}: must be "
                              f"a multiple of num_heads={self.num_heads}")


class UNETRMethod(SupervisedMethod):
    name = "unetr"
    citation = "Hatamizadeh et al., UNETR: Transformers for 3D Medical Image Segmentation, WACV 2022"
    Config = UNETRConfig
    roi_multiple = 16  # ViT patch size
    profiles = {
        "smoke": {"roi": (32, 32, 32), "steps": 2, "batch_size": 2, "warmup_steps": 1,
                  "feature_size": 8, "hidden_size": 96, "mlp_dim": 192, "num_heads": 4,
                  "sw_overlap": 0.25, "progress": False},
        # 48^3 windows: 27 tokens instead of 8 at 32^3, and a 48^3 phantom brain fits one.
        "default": {"roi": (48, 48, 48), "steps": 600, "batch_size": 2},
        # UNETR paper (Sec. 4): feature size 16, hidden 768, MLP 3072, 12 heads. This
        # paper (D.2.1, D.2.2): 96^3 crops, lr 2e-4, 1000 epochs; 1000 epochs of 199 cases
        # at batch 1 on each of four GPUs is about 50k steps (199 * 1000 / 4 = 49,750).
        "paper": {"roi": (96, 96, 96), "feature_size": 16, "hidden_size": 768, "mlp_dim": 3072,
                  "num_heads": 12, "norm": "instance", "steps": 50000, "batch_size": 1,
                  "lr": 2e-4, "warmup_steps": 500},
    }

    def build_network(self, in_channels: int, out_channels: int):
        from monai.networks.nets import UNETR

        cfg = self.config
        if cfg.infer_roi is not None and tuple(cfg.infer_roi) != tuple(cfg.roi):
            raise ConfigError(f"{self.name}: infer_roi {tuple(cfg.infer_roi)} must equal roi "
                              f"{tuple(cfg.roi)}: UNETR's position embedding has one input size")
        if cfg.hidden_size % cfg.num_heads:
            raise ConfigError(f"{self.name}: hidden_size {cfg.hidden_size} must be divisible by "
                              f"num_heads {cfg.num_heads}")
        return UNETR(in_channels=in_channels, out_channels=out_channels, img_size=tuple(cfg.roi),
                     feature_size=cfg.feature_size, hidden_size=cfg.hidden_size,
                     mlp_dim=cfg.mlp_dim, num_heads=cfg.num_heads, proj_type=cfg.proj_type,
                     norm_name=cfg.norm, res_block=cfg.res_block, dropout_rate=cfg.dropout_rate)
