"""CycleGAN (Zhu et al., ICCV 2017), 2D (slice-wise) and 3D.

One model per unordered pair {A, B} serves both directions: ResNet generators G: A->B
and F: B->A, unconditional PatchGAN discriminators D_A and D_B. Objective: LSGAN
adversarial terms + lambda_cyc * (||F(G(a)) - a|| + ||G(F(b)) - b||) + lambda_idt *
lambda_cyc * (||G(b) - b|| + ||F(a) - a||), with lambda_cyc = 10 and lambda_idt = 0.5;
cycle and identity terms (L1) are taken over the foreground. Discriminators see a pool
of the 50 last fakes and their loss is halved. Adam 2e-4, betas (0.5, 0.999), constant
lr then linear decay to 0 over the second half.

Data: as in the paper's comparison the model trains on the task's paired crops, but no
loss term uses the pairing: a and b only meet the networks through the cycle, identity
and adversarial terms, each of which would be the same if b came from another subject.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import nn

from ...options import option
from .base import (
    PIX2PIX_PAPER_TRAINING,
    SMOKE_SETTINGS,
    Stage,
    ResnetGANConfig,
    TwoWayTranslationMethod,
)
from .networks import (
    GANLoss,
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    masked_l1,
    set_requires_grad,
)

__all__ = ["CycleGANConfig", "CycleGAN2D", "CycleGAN3D"]


@dataclass
class CycleGANConfig(ResnetGANConfig):
    lambda_cycle: float = option(10.0, ge=0)
    lambda_identity: float = option(0.5, ge=0)  # times lambda_cycle
    pool_size: int = option(50, ge=0)


class _CycleGAN(TwoWayTranslationMethod):
    citation = ("Zhu et al., Unpaired image-to-image translation using cycle-consistent "
                "adversarial networks, ICCV 2017")
    Config = CycleGANConfig
    divisor = 4

    def __init__(self, config, spec, device):
        self._pools: dict[str, dict[str, ImagePool]] = {}
        super().__init__(config, spec, device)

    def build_model(self, source: str, target: str) -> nn.Module:
        cfg = self.config
        model = nn.Module()
        model.g_ab = ResnetGenerator(self.dims, 1, 1, ngf=cfg.ngf, n_blocks=cfg.n_blocks)
        model.g_ba = ResnetGenerator(self.dims, 1, 1, ngf=cfg.ngf, n_blocks=cfg.n_blocks)
        model.d_a = PatchDiscriminator(self.dims, 1, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        model.d_b = PatchDiscriminator(self.dims, 1, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        return model

    def translate(self, key, source, target, x):
        model = self.models[key]
        a, _ = self._domains(key)
        return model.g_ab(x) if source == a else model.g_ba(x)

    def make_optimizers(self, key: str, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        model = self.models[key]
        seed = sum(map(ord, key))
        self._pools[key] = {"a": ImagePool(self.config.pool_size, random.Random(seed)),
                            "b": ImagePool(self.config.pool_size, random.Random(seed + 1))}
        return {"G": self.adam([model.g_ab, model.g_ba], stage.lr),
                "D": self.adam([model.d_a, model.d_b], stage.lr_d)}

    def step_state(self, key: str) -> dict[str, ImagePool]:
        """The image pools (stored fakes and their random draws)."""
        return {f"pool_{domain}": pool for domain, pool in self._pools[key].items()}

    def train_step(self, key, source, target, x, y, foreground, optimizers):
        cfg = self.config
        model = self.models[key]
        gan = GANLoss("lsgan")
        a_name, _ = self._domains(key)
        real_a, real_b = (x, y) if source == a_name else (y, x)
        # generators (discriminators frozen)
        set_requires_grad([model.d_a, model.d_b], False)
        optimizers["G"].zero_grad(set_to_none=True)
        fake_b = model.g_ab(real_a)
        fake_a = model.g_ba(real_b)
        cycle = (masked_l1(model.g_ba(fake_b), real_a, foreground)
                 + masked_l1(model.g_ab(fake_a), real_b, foreground))
        identity = (masked_l1(model.g_ab(real_b), real_b, foreground)
                    + masked_l1(model.g_ba(real_a), real_a, foreground))
        terms = {"G_gan": gan(model.d_b(fake_b), True) + gan(model.d_a(fake_a), True),
                 "cycle": cfg.lambda_cycle * cycle,
                 "identity": cfg.lambda_cycle * cfg.lambda_identity * identity}
        self.manual_backward(sum(terms.values()))
        optimizers["G"].step()
        # discriminators on real images and pooled fakes
        set_requires_grad([model.d_a, model.d_b], True)
        optimizers["D"].zero_grad(set_to_none=True)
        pools = self._pools[key]
        loss_d = 0.0
        for d, real, fake, pool in ((model.d_b, real_b, fake_b, pools["b"]),
                                    (model.d_a, real_a, fake_a, pools["a"])):
            loss_d = loss_d + 0.5 * (gan(d(real), True) + gan(d(pool.query(fake)), False))
        self.manual_backward(loss_d)
        optimizers["D"].step()
        return {**terms, "D": loss_d}

    def reconstruction_term(self, source, target, x, y, foreground):
        """The cycle-consistency term of the source image, ||F(G(x)) - x|| (foreground)."""
        key = self.model_key(source, target)
        back = self.translate(key, target, source, self.translate(key, source, target, x))
        return masked_l1(back, x, foreground)


class CycleGAN2D(_CycleGAN):
    name = "cyclegan2d"
    dims = 2
    profiles = {
        "smoke": {"roi": (32, 32, 2), "ngf": 8, "ndf": 8, "n_blocks": 2, "steps": 2,
                  **SMOKE_SETTINGS},
        "default": {"roi": (64, 64, 4), "ngf": 32, "ndf": 32, "n_blocks": 6, "steps": 400},
        # The paper: 9 residual blocks at 256x256, LSGAN, lambda_cyc 10, identity 0.5,
        # pool 50 and the published training it shares with pix2pix (250,200 steps, each
        # training both directions of a pair).
        "paper": {"roi": (256, 256, 1), "ngf": 64, "ndf": 64, "n_blocks": 9,
                  **PIX2PIX_PAPER_TRAINING, "sw_batch_size": 16},
    }


class CycleGAN3D(_CycleGAN):
    name = "cyclegan3d"
    dims = 3
    profiles = {
        "smoke": {"roi": (32, 32, 32), "ngf": 4, "ndf": 4, "n_blocks": 1, "steps": 2,
                  **SMOKE_SETTINGS},
        "default": {"roi": (48, 48, 48), "ngf": 8, "ndf": 16, "n_blocks": 4, "steps": 300},
        # The published training and loss weights with 3D layers; 6 residual blocks (the
        # paper's choice below 256 pixels) at a 128^3 crop (the 3D baselines' crop is not
        # published).
        "paper": {"roi": (128, 128, 128), "ngf": 64, "ndf": 64, "n_blocks": 6,
                  **PIX2PIX_PAPER_TRAINING, "sw_batch_size": 1},
    }
