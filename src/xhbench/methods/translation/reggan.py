"""RegGAN (Kong et al., NeurIPS 2021), 2D: a generator trained through a registration
network that absorbs misalignment between the source and the target.

Per pair: CycleGAN's ResNet generator G, an unconditional PatchGAN D, and a registration
network R (a U-Net on the concatenated G(x) and y) that outputs a dense displacement
field, zero at initialisation. The "NC+R" objective of the paper (one direction, with
registration): lambda_adv * LSGAN(D(G(x))) + lambda_corr * ||T(G(x), R(G(x), y)) - y||_1
+ lambda_smooth * ||grad R||^2, with lambdas 1, 20, 10; the correction L1 is taken over
the foreground. G and R step together, then D (real y against a fresh G(x)). Adam lr
1e-4, betas (0.5, 0.999), constant (the released trainer sets no schedule). Only G is
used at inference.

Not reproduced: the paper's experiments add synthetic affine and elastic misalignment
to the training pairs to show robustness to noise; the benchmark's pairs are co-registered
and are used as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...options import option
from ...errors import ConfigError
from .base import SMOKE_SETTINGS, Stage, TranslationConfig, TranslationMethod
from .networks import (
    GANLoss,
    PatchDiscriminator,
    ResnetGenerator,
    conv,
    masked_l1,
    set_requires_grad,
    smoothness,
)

__all__ = ["RegGANConfig", "RegGAN", "RegistrationNet", "warp"]


@dataclass
class RegGANConfig(TranslationConfig):
    lr: float = 1e-4
    decay_start: float = 1.0  # constant lr
    ngf: int = option(64, ge=1)
    ndf: int = option(64, ge=1)
    n_blocks: int = option(9, ge=1)
    n_layers_d: int = option(3, ge=1)
    reg_features: tuple[int, ...] = (32, 64, 64, 64, 64, 64, 64)  # one stride-2 level each after the first
    lambda_adv: float = option(1.0, ge=0)
    lambda_corr: float = option(20.0, ge=0)
    lambda_smooth: float = option(10.0, ge=0)


class RegistrationNet(nn.Module):
    """A U-Net from two images to a displacement field in voxels, one channel per axis.
    The last conv starts at zero, so the field starts as the identity."""

    def __init__(self, dims: int, features: tuple[int, ...]):
        super().__init__()
        Conv = conv(dims)
        self.dims = dims
        self.divisor = 2 ** (len(features) - 1)
        self.down = nn.ModuleList()
        channels = 2
        for level, width in enumerate(features):
            self.down.append(nn.Sequential(
                Conv(channels, width, 3, stride=1 if level == 0 else 2, padding=1),
                nn.LeakyReLU(0.2, True), Conv(width, width, 3, padding=1),
                nn.LeakyReLU(0.2, True)))
            channels = width
        self.up = nn.ModuleList()
        for level in reversed(range(len(features) - 1)):
            self.up.append(nn.Sequential(
                Conv(channels + features[level], features[level], 3, padding=1),
                nn.LeakyReLU(0.2, True), Conv(features[level], features[level], 3, padding=1),
                nn.LeakyReLU(0.2, True)))
            channels = features[level]
        self.flow = Conv(channels, dims, 3, padding=1)
        nn.init.zeros_(self.flow.weight)
        nn.init.zeros_(self.flow.bias)

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        x = torch.cat([moving, fixed], dim=1)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        mode = "bilinear" if self.dims == 2 else "trilinear"
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[2:], mode=mode, align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.flow(x)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Resample ``image`` at ``identity + flow`` (flow in voxels, channel i = spatial axis i);
    bilinear / trilinear, border padding."""
    spatial = image.shape[2:]
    axes = [torch.linspace(-1.0, 1.0, size, device=image.device, dtype=image.dtype)
            for size in spatial]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (dims, *spatial)
    scale = torch.tensor([2.0 / max(size - 1, 1) for size in spatial], device=image.device,
                         dtype=image.dtype).view(1, -1, *([1] * len(spatial)))
    grid = identity[None] + flow * scale  # (N, dims, *spatial), axis order
    grid = grid.flip(1).movedim(1, -1)  # grid_sample wants (x, y[, z]) = reversed axes last
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border",
                         align_corners=True)


class RegGAN(TranslationMethod):
    name = "reggan"
    dims = 2
    citation = ("Kong et al., Breaking the dilemma of medical image-to-image translation, "
                "NeurIPS 2021")
    Config = RegGANConfig
    profiles = {
        "smoke": {"roi": (32, 32, 2), "ngf": 8, "ndf": 8, "n_blocks": 2,
                  "reg_features": (8, 16, 16), "steps": 2, **SMOKE_SETTINGS},
        "default": {"roi": (64, 64, 4), "ngf": 32, "ndf": 32, "n_blocks": 6,
                    "reg_features": (16, 32, 32, 32), "steps": 400},
        # The paper / released NC+R configuration: 256x256 slices, batch 1, Adam 1e-4
        # (0.5, 0.999) without decay, lambdas adv 1, corr 20, smooth 10, 9 residual blocks,
        # 80 epochs. One epoch = one random axial slice of each of the 1,251 BraTS 2023
        # training cases: 80 x 1,251 = 100,080 steps.
        "paper": {"roi": (256, 256, 1), "ngf": 64, "ndf": 64, "n_blocks": 9, "batch_size": 1,
                  "lr": 1e-4, "beta1": 0.5, "decay_start": 1.0, "steps": 100080,
                  "reg_features": (32, 64, 64, 64, 64, 64, 64), "sw_batch_size": 16},
    }

    @property
    def divisor(self) -> int:
        return max(4, 2 ** (len(self.config.reg_features) - 1))

    def _check_sizes(self) -> None:
        if not self.config.reg_features:
            raise ConfigError(f"{self.name}: reg_features needs at least one width")
        super()._check_sizes()

    def build_model(self, source: str, target: str) -> nn.Module:
        cfg = self.config
        model = nn.Module()
        model.generator = ResnetGenerator(2, 1, 1, ngf=cfg.ngf, n_blocks=cfg.n_blocks)
        model.discriminator = PatchDiscriminator(2, 1, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        model.registration = RegistrationNet(2, tuple(cfg.reg_features))
        return model

    def make_optimizers(self, key: str, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        model = self.models[key]
        return {"G": self.adam([model.generator], stage.lr),
                "R": self.adam([model.registration], stage.lr),
                "D": self.adam([model.discriminator], stage.lr_d)}

    def train_step(self, key, source, target, x, y, foreground, optimizers):
        cfg = self.config
        model = self.models[key]
        gan = GANLoss("lsgan")
        # generator and registration network together
        set_requires_grad([model.discriminator], False)
        optimizers["G"].zero_grad(set_to_none=True)
        optimizers["R"].zero_grad(set_to_none=True)
        fake = model.generator(x)
        flow = model.registration(fake, y)
        terms = {"G_gan": cfg.lambda_adv * gan(model.discriminator(fake), True),
                 "corr": cfg.lambda_corr * masked_l1(warp(fake, flow), y, foreground),
                 "smooth": cfg.lambda_smooth * smoothness(flow)}
        self.manual_backward(sum(terms.values()))
        optimizers["R"].step()
        optimizers["G"].step()
        # discriminator: real targets against a fresh translation
        set_requires_grad([model.discriminator], True)
        optimizers["D"].zero_grad(set_to_none=True)
        with torch.no_grad():
            fake = model.generator(x)
        loss_d = cfg.lambda_adv * (gan(model.discriminator(fake), False)
                                   + gan(model.discriminator(y), True))
        self.manual_backward(loss_d)
        optimizers["D"].step()
        return {**terms, "D": loss_d}
