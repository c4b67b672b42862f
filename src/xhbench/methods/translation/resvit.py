"""ResViT (Dalmaz et al., IEEE TMI 2022): a residual vision transformer generator, 2D.

Generator: a convolutional encoder (7x7 conv, two stride-2 3x3 convs: ngf, 2ngf, 4ngf
channels at 1/4 resolution), an information bottleneck of nine aggregated residual
transformer (ART) blocks and a decoder (two transposed convs, 7x7 conv, tanh). Every
ART block ends in a residual CNN block; blocks 1 and 6 also hold a transformer branch:
two stride-2 convs (to 1/16 resolution), a 1x1 patch embedding with learned position
embeddings, a transformer encoder whose weights are shared between the two blocks,
two transposed convs back to 1/4 resolution, and a channel-compression block that
merges the branch with the block's input (concatenation, 8ngf -> 4ngf, residual).
Discriminator: the conditional PatchGAN of pix2pix. Objective: LSGAN + lambda_L1 * L1
(lambda 100, foreground only). Training follows the paper's two stages: the network
without transformer branches (Res-CNN) first, then the full ResViT, each with its own
Adam optimisers, lr and linear decay over its second half.

Not reproduced: the transformer is trained from scratch (the paper initialises it with
ImageNet-pre-trained R50+ViT-B/16 weights; xhbench downloads no weights). Because of the
learned position embeddings the generator sees inputs of the training crop size only;
inference uses sliding windows of that size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ...options import option
from ...errors import ConfigError
from .base import SMOKE_SETTINGS, Stage, TranslationConfig
from .networks import PatchDiscriminator, ResnetBlock, norm, reflection_pad
from .pix2pix import _Pix2Pix

__all__ = ["ResViTConfig", "ResViT", "ResViTGenerator"]


@dataclass
class ResViTConfig(TranslationConfig):
    ngf: int = option(64, ge=1)
    ndf: int = option(64, ge=1)
    n_layers_d: int = option(3, ge=1)
    lambda_l1: float = option(100.0, ge=0)
    gan_mode: Literal["vanilla", "lsgan"] = "lsgan"
    n_art: int = 9
    transformer_blocks: tuple[int, ...] = (1, 6)  # ART blocks with the shared transformer
    vit_hidden: int = option(768, ge=1)
    vit_layers: int = option(12, ge=1)
    vit_heads: int = option(12, ge=1)
    vit_mlp: int = option(3072, ge=1)
    vit_dropout: float = option(0.0, ge=0, lt=1)
    cnn_steps: int = option(0, ge=0)  # Res-CNN pre-training stage (transformer branches off)
    cnn_lr: float = option(2e-4, gt=0)
    steps: int = option(400, ge=0)  # 0: the Res-CNN stage alone

    def validate(self) -> None:
        if self.cnn_steps + self.steps < 1:
            raise ConfigError(f"options cnn_steps={self.cnn_steps} and steps={self.steps}: "
                              "at least one training step in all")


class TransformerEncoder(nn.Module):
    """Pre-norm ViT encoder: ``layers`` x (LN, multi-head self-attention, residual; LN,
    GELU MLP, residual), then a final LayerNorm."""

    def __init__(self, hidden: int, layers: int, heads: int, mlp: int, dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            block = nn.Module()
            block.norm1 = nn.LayerNorm(hidden, eps=1e-6)
            block.attention = nn.MultiheadAttention(hidden, heads, dropout=dropout,
                                                    batch_first=True)
            block.norm2 = nn.LayerNorm(hidden, eps=1e-6)
            block.mlp = nn.Sequential(nn.Linear(hidden, mlp), nn.GELU(), nn.Dropout(dropout),
                                      nn.Linear(mlp, hidden), nn.Dropout(dropout))
            self.blocks.append(block)
        self.norm = nn.LayerNorm(hidden, eps=1e-6)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            h = block.norm1(tokens)
            tokens = tokens + block.attention(h, h, h, need_weights=False)[0]
            tokens = tokens + block.mlp(block.norm2(tokens))
        return self.norm(tokens)


class ChannelCompression(nn.Module):
    """Residual block reducing channels: two 3x3 convs, 1x1 conv on the skip path."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            norm(2, out_channels), nn.ReLU(True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            norm(2, out_channels))
        self.skip = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                  norm(2, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.block(x) + self.skip(x))


class ARTBlock(nn.Module):
    """An aggregated residual transformer block on 4ngf-channel features."""

    def __init__(self, ngf: int, *, transformer_branch: bool, tokens: int, hidden: int):
        super().__init__()
        c = ngf * 4
        self.has_branch = transformer_branch
        if transformer_branch:
            self.downsample = nn.Sequential(
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), norm(2, 2 * c), nn.ReLU(True),
                nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1), norm(2, 4 * c), nn.ReLU(True))
            self.embed = nn.Conv2d(4 * c, hidden, kernel_size=1)  # 1x1 patches
            self.position = nn.Parameter(torch.zeros(1, tokens, hidden))
            nn.init.trunc_normal_(self.position, std=0.02)
            self.upsample = nn.Sequential(
                nn.ConvTranspose2d(hidden, 2 * c, 3, stride=2, padding=1, output_padding=1),
                norm(2, 2 * c), nn.ReLU(True),
                nn.ConvTranspose2d(2 * c, c, 3, stride=2, padding=1, output_padding=1),
                norm(2, c), nn.ReLU(True))
            self.compress = ChannelCompression(2 * c, c)
        self.residual = ResnetBlock(2, c)

    def forward(self, x: torch.Tensor, transformer: TransformerEncoder | None) -> torch.Tensor:
        if self.has_branch and transformer is not None:
            h = self.downsample(x)
            n, _, height, width = h.shape
            tokens = self.embed(h).flatten(2).transpose(1, 2)
            if tokens.shape[1] != self.position.shape[1]:
                raise ValueError(f"ResViT: input gives {tokens.shape[1]} tokens, the position "
                                 f"embeddings were built for {self.position.shape[1]}")
            tokens = transformer(tokens + self.position)
            h = tokens.transpose(1, 2).reshape(n, -1, height, width)
            x = self.compress(torch.cat([self.upsample(h), x], dim=1))
        return self.residual(x)


class ResViTGenerator(nn.Module):
    """The ResViT generator for ``size`` (H, W) inputs, both divisible by 16."""

    divisor = 16

    def __init__(self, in_channels: int, out_channels: int, size: tuple[int, int], *,
                 ngf: int = 64, n_art: int = 9, transformer_blocks: tuple[int, ...] = (1, 6),
                 hidden: int = 768, layers: int = 12, heads: int = 12, mlp: int = 3072,
                 dropout: float = 0.0):
        super().__init__()
        tokens = (size[0] // 16) * (size[1] // 16)
        self.encoder = nn.Sequential(
            reflection_pad(2, 3), nn.Conv2d(in_channels, ngf, 7), norm(2, ngf), nn.ReLU(True),
            nn.Conv2d(ngf, 2 * ngf, 3, stride=2, padding=1), norm(2, 2 * ngf), nn.ReLU(True),
            nn.Conv2d(2 * ngf, 4 * ngf, 3, stride=2, padding=1), norm(2, 4 * ngf),
            nn.ReLU(True))
        self.transformer = TransformerEncoder(hidden, layers, heads, mlp, dropout)
        self.art = nn.ModuleList(
            ARTBlock(ngf, transformer_branch=index + 1 in transformer_blocks, tokens=tokens,
                     hidden=hidden) for index in range(n_art))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, stride=2, padding=1, output_padding=1),
            norm(2, 2 * ngf), nn.ReLU(True),
            nn.ConvTranspose2d(2 * ngf, ngf, 3, stride=2, padding=1, output_padding=1),
            norm(2, ngf), nn.ReLU(True),
            reflection_pad(2, 3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh())
        self.use_transformer = True  # False: the Res-CNN of the first training stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder(x)
        transformer = self.transformer if self.use_transformer else None
        for block in self.art:
            x = block(x, transformer)
        return self.decoder(x)


class ResViT(_Pix2Pix):
    name = "resvit"
    dims = 2
    citation = ("Dalmaz et al., ResViT: residual vision transformers for multimodal medical "
                "image synthesis, IEEE TMI 2022")
    Config = ResViTConfig
    profiles = {
        "smoke": {"roi": (32, 32, 2), "ngf": 4, "ndf": 8, "vit_hidden": 16, "vit_layers": 1,
                  "vit_heads": 2, "vit_mlp": 32, "cnn_steps": 1, "steps": 1, **SMOKE_SETTINGS},
        "default": {"roi": (64, 64, 4), "ngf": 16, "ndf": 32, "vit_hidden": 128,
                    "vit_layers": 4, "vit_heads": 4, "vit_mlp": 256, "cnn_steps": 200,
                    "steps": 200},
        # The paper / released one-to-one recipe: 256x256 slices, batch 1, ngf 64, ViT-B/16
        # sizes (768 hidden, 12 layers, 12 heads, MLP 3072), LSGAN + 100 * L1, Adam (0.5,
        # 0.999). Res-CNN: 50 + 50 epochs at lr 2e-4; ResViT: 25 + 25 epochs at lr 1e-3.
        # One epoch = one random axial slice of each of the 1,251 BraTS 2023 training cases:
        # 100 x 1,251 = 125,100 and 50 x 1,251 = 62,550 steps.
        "paper": {"roi": (256, 256, 1), "ngf": 64, "ndf": 64, "vit_hidden": 768,
                  "vit_layers": 12, "vit_heads": 12, "vit_mlp": 3072, "batch_size": 1,
                  "cnn_steps": 125100, "cnn_lr": 2e-4, "steps": 62550, "lr": 1e-3,
                  "beta1": 0.5, "decay_start": 0.5, "lambda_l1": 100.0, "sw_batch_size": 16},
    }

    @property
    def divisor(self) -> int:
        return 16

    def _check_sizes(self) -> None:
        super()._check_sizes()
        cfg = self.config
        if cfg.infer_roi is not None and tuple(cfg.infer_roi[:2]) != tuple(cfg.roi[:2]):
            raise ConfigError(f"{self.name}: infer_roi {tuple(cfg.infer_roi)} must match roi "
                              f"{tuple(cfg.roi)} in H and W (learned position embeddings)")
        if cfg.vit_hidden % cfg.vit_heads:
            raise ConfigError(f"{self.name}: vit_hidden must be divisible by vit_heads")

    def build_model(self, source: str, target: str) -> nn.Module:
        cfg = self.config
        model = nn.Module()
        model.generator = ResViTGenerator(
            1, 1, tuple(cfg.roi[:2]), ngf=cfg.ngf, n_art=cfg.n_art,
            transformer_blocks=tuple(cfg.transformer_blocks), hidden=cfg.vit_hidden,
            layers=cfg.vit_layers, heads=cfg.vit_heads, mlp=cfg.vit_mlp,
            dropout=cfg.vit_dropout)
        model.discriminator = PatchDiscriminator(2, 2, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        return model

    @classmethod
    def stages_of(cls, cfg: Any) -> list[Stage]:
        lr_d = cfg.lr_d if cfg.lr_d is not None else cfg.lr
        return [Stage("res-cnn", cfg.cnn_steps, cfg.cnn_lr, cfg.cnn_lr),
                Stage("resvit", cfg.steps, cfg.lr, lr_d)]

    def on_stage(self, stage: Stage) -> None:
        for model in self.models.values():
            model.generator.use_transformer = stage.name != "res-cnn"

    def fit(self, train_data, workdir, log):
        try:
            return super().fit(train_data, workdir, log)
        finally:
            for model in self.models.values():
                model.generator.use_transformer = True
