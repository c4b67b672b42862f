"""Pix2Pix (Isola et al., CVPR 2017), 2D (slice-wise) and 3D.

One model per source -> target pair: a U-Net generator and a conditional PatchGAN
discriminator that judges (source, image) pairs. Objective: vanilla GAN (binary
cross-entropy on logits) + lambda_L1 * L1, with lambda_L1 = 100; the L1 term is taken
over the foreground only. Each step updates the discriminator (its loss halved, as in
the paper) and then the generator. Adam, lr 2e-4, betas (0.5, 0.999); the lr is
constant for the first half of training and decays linearly to 0 in the second.
Dropout is the paper's noise source in training; inference runs in eval mode (no
dropout) so that predictions are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ...options import option
from .base import (
    PIX2PIX_PAPER_TRAINING,
    SMOKE_SETTINGS,
    Stage,
    TranslationConfig,
    TranslationMethod,
)
from .networks import GANLoss, PatchDiscriminator, UNetGenerator, masked_l1, set_requires_grad

__all__ = ["Pix2PixConfig", "Pix2Pix2D", "Pix2Pix3D"]


@dataclass
class Pix2PixConfig(TranslationConfig):
    ngf: int = option(64, ge=1)
    ndf: int = option(64, ge=1)
    num_downs: int = option(6, ge=1)  # U-Net depth; the paper's 256x256 U-Net has 8 (down to 1x1)
    n_layers_d: int = option(3, ge=1)  # PatchGAN depth (3: 70x70 patches in 2D)
    dropout: bool = True
    lambda_l1: float = option(100.0, ge=0)
    gan_mode: Literal["vanilla", "lsgan"] = "vanilla"


class _Pix2Pix(TranslationMethod):
    citation = ("Isola et al., Image-to-image translation with conditional adversarial "
                "networks, CVPR 2017")
    Config = Pix2PixConfig

    @property
    def divisor(self) -> int:
        return 2 ** self.config.num_downs

    def build_model(self, source: str, target: str) -> nn.Module:
        cfg = self.config
        model = nn.Module()
        model.generator = UNetGenerator(self.dims, 1, 1, num_downs=cfg.num_downs, ngf=cfg.ngf,
                                        dropout=cfg.dropout)
        model.discriminator = PatchDiscriminator(self.dims, 2, ndf=cfg.ndf,
                                                 n_layers=cfg.n_layers_d)
        return model

    def make_optimizers(self, key: str, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        model = self.models[key]
        return {"G": self.adam([model.generator], stage.lr),
                "D": self.adam([model.discriminator], stage.lr_d)}

    def judged(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """What the discriminator sees of ``image`` (real or generated): the (source,
        image) pair."""
        return torch.cat([x, image], dim=1)

    def generator_terms(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        foreground: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted generator terms (their sum is the generator's loss): fool D, and
        L1 to the target over the foreground."""
        adversarial = GANLoss(self.config.gan_mode)(model.discriminator(self.judged(x, fake)),
                                                    True)
        return {"G_gan": adversarial,
                "L1": self.config.lambda_l1 * masked_l1(fake, y, foreground)}

    def train_step(self, key, source, target, x, y, foreground, optimizers):
        model = self.models[key]
        gan = GANLoss(self.config.gan_mode)
        fake = model.generator(x)
        # discriminator: real (x, y) vs fake (x, G(x))
        set_requires_grad([model.discriminator], True)
        optimizers["D"].zero_grad(set_to_none=True)
        loss_d = 0.5 * (gan(model.discriminator(self.judged(x, fake.detach())), False)
                        + gan(model.discriminator(self.judged(x, y)), True))
        self.manual_backward(loss_d)
        optimizers["D"].step()
        set_requires_grad([model.discriminator], False)
        optimizers["G"].zero_grad(set_to_none=True)
        terms = self.generator_terms(model, x, y, foreground, fake)
        self.manual_backward(sum(terms.values()))
        optimizers["G"].step()
        set_requires_grad([model.discriminator], True)
        return {**terms, "D": loss_d}


class Pix2Pix2D(_Pix2Pix):
    name = "pix2pix2d"
    dims = 2
    profiles = {
        "smoke": {"roi": (32, 32, 2), "num_downs": 5, "ngf": 8, "ndf": 8, "steps": 2,
                  **SMOKE_SETTINGS},
        "default": {"roi": (64, 64, 4), "num_downs": 6, "ngf": 32, "ndf": 32, "steps": 400},
        # The paper: 256x256 inputs (BraTS' 240x240 axial slices are zero-padded), U-Net
        # with 8 downsamplings, lambda_L1 100 and its published training (250,200 steps).
        # The task draws one source per step, so with pairs=all each pair model is updated
        # on about a quarter of them (pairs=task, the default, trains the task's pairs only).
        "paper": {"roi": (256, 256, 1), "num_downs": 8, "ngf": 64, "ndf": 64,
                  **PIX2PIX_PAPER_TRAINING, "lambda_l1": 100.0, "sw_batch_size": 16},
    }


class Pix2Pix3D(_Pix2Pix):
    name = "pix2pix3d"
    dims = 3
    profiles = {
        "smoke": {"roi": (32, 32, 32), "num_downs": 5, "ngf": 8, "ndf": 8, "steps": 2,
                  **SMOKE_SETTINGS},
        "default": {"roi": (48, 48, 48), "num_downs": 4, "ngf": 16, "ndf": 16, "steps": 300},
        # pix2pix's published training and loss weights with 3D layers. The 3D crop of the
        # paper's 3D baselines is not published: 128^3 with 7 downsamplings keeps pix2pix's
        # rule of a 1-voxel bottleneck.
        "paper": {"roi": (128, 128, 128), "num_downs": 7, "ngf": 64, "ndf": 64,
                  **PIX2PIX_PAPER_TRAINING, "lambda_l1": 100.0, "sw_batch_size": 1},
    }
