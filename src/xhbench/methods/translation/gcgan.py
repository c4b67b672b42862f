"""GcGAN (Fu et al., CVPR 2019, the paper's [13]): geometry-consistent one-sided
unpaired translation, 2D slice-wise.

One model per source -> target pair: one ResNet generator G shared by the original and
the transformed domain, and two unconditional PatchGANs, D on target slices and D_gc on
transformed target slices (the released ``gc_gan_share`` model). With f a rotation by
90 degrees (``geometry`` ``rot``) or a vertical flip (``vf``), the geometry-consistency
loss ties G(f(x)) to f(G(x)) in both directions: ||G(x) - f^-1(G(f(x)))|| + ||G(f(x)) -
f(G(x))||, each side against a detached copy of the other, weighted lambda_AB *
lambda_gc (10 x 2). Objective: LSGAN on both discriminators (lambda_G 1) + geometry
consistency + identity lambda_AB * ``identity`` (G(y) ~ y and G(f(y)) ~ f(y)).
Discriminators see pools of the 50 last fakes, their loss halved. The pairing is never
used: y only meets D, D_gc and the identity term.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ...options import option
from ...errors import ConfigError
from .base import (
    PIX2PIX_PAPER_TRAINING,
    SMOKE_SETTINGS,
    Stage,
    ResnetGANConfig,
    TranslationMethod,
)
from .networks import (
    GANLoss,
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    masked_l1,
    set_requires_grad,
)

__all__ = ["GcGANConfig", "GcGAN", "transform"]


@dataclass
class GcGANConfig(ResnetGANConfig):
    geometry: Literal["rot", "vf"] = "rot"
    lambda_g: float = option(1.0, ge=0)
    lambda_ab: float = option(10.0, ge=0)
    lambda_gc: float = option(2.0, ge=0)  # times lambda_AB; 0 switches geometry consistency off
    identity: float = 0.3  # times lambda_AB (the released script's 0.3)
    pool_size: int = option(50, ge=0)


def transform(images: torch.Tensor, geometry: str, inverse: bool = False) -> torch.Tensor:
    """GcGAN's f on (N, C, H, W): ``rot`` turns by 90 degrees (clockwise; the inverse
    turns back), ``vf`` flips the rows (its own inverse)."""
    if geometry == "vf":
        return torch.flip(images, dims=[2])
    return torch.rot90(images, k=1 if inverse else -1, dims=(2, 3))


class GcGAN(TranslationMethod):
    name = "gcgan"
    dims = 2
    divisor = 4
    citation = ("Fu et al., Geometry-consistent generative adversarial networks for one-sided "
                "unsupervised domain mapping, CVPR 2019")
    Config = GcGANConfig
    profiles = {
        "smoke": {"roi": (32, 32, 2), "ngf": 8, "ndf": 8, "n_blocks": 2, "steps": 2,
                  **SMOKE_SETTINGS},
        "default": {"roi": (64, 64, 4), "ngf": 32, "ndf": 32, "n_blocks": 6, "steps": 400},
        # The released setting: rotation, lambda_AB 10, lambda_gc 2, identity 0.3, LSGAN,
        # pool 50, Adam 2e-4 (0.5, 0.999), 100 + 100 epochs; 9 blocks at 256x256.
        "paper": {"roi": (256, 256, 1), "ngf": 64, "ndf": 64, "n_blocks": 9,
                  **PIX2PIX_PAPER_TRAINING, "sw_batch_size": 16},
    }

    def __init__(self, config, spec, device):
        if config.geometry == "rot" and config.roi[0] != config.roi[1]:
            raise ConfigError(f"gcgan: roi {tuple(config.roi)}: rotation needs square slices")
        self._pools: dict[str, dict[str, ImagePool]] = {}
        super().__init__(config, spec, device)

    def build_model(self, source: str, target: str) -> nn.Module:
        cfg = self.config
        model = nn.Module()
        model.generator = ResnetGenerator(2, 1, 1, ngf=cfg.ngf, n_blocks=cfg.n_blocks)
        model.discriminator = PatchDiscriminator(2, 1, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        model.discriminator_gc = PatchDiscriminator(2, 1, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        return model

    def make_optimizers(self, key: str, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        model = self.models[key]
        seed = sum(map(ord, key))
        self._pools[key] = {"fake": ImagePool(self.config.pool_size, random.Random(seed)),
                            "fake_gc": ImagePool(self.config.pool_size, random.Random(seed + 1))}
        return {"G": self.adam([model.generator], stage.lr),
                "D": self.adam([model.discriminator, model.discriminator_gc], stage.lr_d)}

    def step_state(self, key: str) -> dict[str, ImagePool]:
        return {f"pool_{name}": pool for name, pool in self._pools[key].items()}

    def generator_terms(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        foreground: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """G(x), G(f(x)) and the weighted generator terms (``geometry`` only when
        lambda_gc > 0; ``identity`` only when identity > 0)."""
        cfg = self.config
        gan = GANLoss("lsgan")

        def f(images, inverse=False):
            return transform(images, cfg.geometry, inverse)

        fake, fake_gc = model.generator(x), model.generator(f(x))
        terms = {"G_gan": cfg.lambda_g * (gan(model.discriminator(fake), True)
                                          + gan(model.discriminator_gc(fake_gc), True))}
        fg_gc = f(foreground)
        if cfg.lambda_gc > 0:
            geometry = (masked_l1(fake, f(fake_gc.detach(), True), foreground)
                        + masked_l1(fake_gc, f(fake.detach()), fg_gc))
            terms["geometry"] = cfg.lambda_ab * cfg.lambda_gc * geometry
        if cfg.identity > 0:
            identity = (masked_l1(model.generator(y), y, foreground)
                        + masked_l1(model.generator(f(y)), f(y), fg_gc))
            terms["identity"] = cfg.lambda_ab * cfg.identity * identity
        return fake, fake_gc, terms

    def train_step(self, key, source, target, x, y, foreground, optimizers):
        cfg = self.config
        model = self.models[key]
        gan = GANLoss("lsgan")
        set_requires_grad([model.discriminator, model.discriminator_gc], False)
        optimizers["G"].zero_grad(set_to_none=True)
        fake, fake_gc, terms = self.generator_terms(model, x, y, foreground)
        self.manual_backward(sum(terms.values()))
        optimizers["G"].step()
        set_requires_grad([model.discriminator, model.discriminator_gc], True)
        optimizers["D"].zero_grad(set_to_none=True)
        pools = self._pools[key]
        loss_d = 0.0
        for d, real, fake_now, pool in (
                (model.discriminator, y, fake, pools["fake"]),
                (model.discriminator_gc, transform(y, cfg.geometry), fake_gc, pools["fake_gc"])):
            loss_d = loss_d + 0.5 * (gan(d(real), True) + gan(d(pool.query(fake_now)), False))
        self.manual_backward(loss_d)
        optimizers["D"].step()
        return {**terms, "D": loss_d}
