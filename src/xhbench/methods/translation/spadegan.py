"""``spadegan``: a 3D SPADE GAN translator, a SPADE generator conditioned on the source
volume at every scale, with target-switchable modulation, trained adversarially.

It borrows MS-SPADE's conditioning (Kim and Park, WACV 2024, the paper's [25]: SPADE
modulation (Park et al., CVPR 2019) computed from the source, with parameters switched
by the target modality, so that one network serves every source -> target pair) for a
GAN, without a latent autoencoder or a diffusion process. The latent diffusion model
itself is ``msspade`` (:mod:`.msspade`); see docs/methods/translation.md.

* generator: a convolutional encoder of the source (``n_down`` stride-2 levels), then a
  decoder of SPADE residual blocks, one per scale, up to full resolution, LeakyReLU,
  3x3x3 conv, tanh. Every normalisation is a parameter-free instance norm followed by
  ``x * (1 + gamma) + beta``, where gamma and beta are convolutions of a shared hidden
  map of the source resized to that scale, and the gamma / beta convolutions are chosen
  by the target modality (the switch);
* discriminators: pix2pixHD / SPADE multi-scale PatchGANs (full and half resolution),
  conditioned on the source and on a one-hot map of the target modality;
* objective: SPADE's hinge GAN loss + lambda_fm * discriminator feature matching (10)
  + lambda_L1 * L1 over the foreground (100, xhbench's choice: a paired translation
  needs a reconstruction term; SPADE's VGG loss has no 3D counterpart).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...options import option
from .base import SMOKE_SETTINGS, Stage, TranslationConfig, TranslationMethod
from .networks import GANLoss, PatchDiscriminator, masked_l1, norm, set_requires_grad

__all__ = ["SPADEGANConfig", "SPADEGAN", "SPADEGenerator"]


@dataclass
class SPADEGANConfig(TranslationConfig):
    ngf: int = option(32, ge=1)
    ndf: int = option(32, ge=1)
    n_down: int = option(3, ge=1)  # encoder downsamplings = SPADE decoder levels
    spade_hidden: int = option(64, ge=1)  # channels of the shared SPADE map of the source
    n_layers_d: int = option(3, ge=1)
    num_d: int = option(2, ge=1)  # discriminators at full, 1/2, ... resolution
    lambda_l1: float = option(100.0, ge=0)
    lambda_fm: float = option(10.0, ge=0)


class SwitchableSPADE(nn.Module):
    """Instance norm modulated by the source: ``norm(x) * (1 + gamma_t) + beta_t``."""

    def __init__(self, channels: int, hidden: int, n_targets: int):
        super().__init__()
        self.norm = norm(3, channels)
        self.shared = nn.Sequential(nn.Conv3d(1, hidden, 3, padding=1), nn.ReLU(True))
        self.gamma = nn.ModuleList(nn.Conv3d(hidden, channels, 3, padding=1)
                                   for _ in range(n_targets))
        self.beta = nn.ModuleList(nn.Conv3d(hidden, channels, 3, padding=1)
                                  for _ in range(n_targets))

    def forward(self, x: torch.Tensor, source: torch.Tensor, target: int) -> torch.Tensor:
        if source.shape[2:] != x.shape[2:]:
            source = F.interpolate(source, size=x.shape[2:], mode="trilinear",
                                   align_corners=False)
        h = self.shared(source)
        return self.norm(x) * (1 + self.gamma[target](h)) + self.beta[target](h)


class SPADEResBlock(nn.Module):
    """SPADE, LeakyReLU, conv, SPADE, LeakyReLU, conv; learned shortcut on a width change."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, n_targets: int):
        super().__init__()
        middle = min(in_channels, out_channels)
        self.spade1 = SwitchableSPADE(in_channels, hidden, n_targets)
        self.conv1 = nn.Conv3d(in_channels, middle, 3, padding=1)
        self.spade2 = SwitchableSPADE(middle, hidden, n_targets)
        self.conv2 = nn.Conv3d(middle, out_channels, 3, padding=1)
        self.learned_shortcut = in_channels != out_channels
        if self.learned_shortcut:
            self.spade_s = SwitchableSPADE(in_channels, hidden, n_targets)
            self.conv_s = nn.Conv3d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor, source: torch.Tensor, target: int) -> torch.Tensor:
        skip = self.conv_s(self.spade_s(x, source, target)) if self.learned_shortcut else x
        h = self.conv1(F.leaky_relu(self.spade1(x, source, target), 0.2))
        h = self.conv2(F.leaky_relu(self.spade2(h, source, target), 0.2))
        return skip + h


class SPADEGenerator(nn.Module):
    """Source encoder + switchable SPADE decoder; ``forward(x, target_index)``."""

    def __init__(self, n_targets: int, *, ngf: int = 32, n_down: int = 3, hidden: int = 64):
        super().__init__()
        self.divisor = 2 ** n_down
        widths = [ngf * min(2 ** i, 8) for i in range(n_down + 1)]
        layers = [nn.Conv3d(1, widths[0], 3, padding=1), norm(3, widths[0]),
                  nn.LeakyReLU(0.2, True)]
        for i in range(n_down):
            layers += [nn.Conv3d(widths[i], widths[i + 1], 4, stride=2, padding=1),
                       norm(3, widths[i + 1]), nn.LeakyReLU(0.2, True)]
        self.encoder = nn.Sequential(*layers)
        self.bottleneck = SPADEResBlock(widths[-1], widths[-1], hidden, n_targets)
        self.decoder = nn.ModuleList(SPADEResBlock(widths[i + 1], widths[i], hidden, n_targets)
                                     for i in reversed(range(n_down)))
        self.out = nn.Conv3d(widths[0], 1, 3, padding=1)

    def forward(self, x: torch.Tensor, target: int) -> torch.Tensor:
        h = self.bottleneck(self.encoder(x), x, target)
        for block in self.decoder:
            h = block(F.interpolate(h, scale_factor=2, mode="nearest"), x, target)
        return torch.tanh(self.out(F.leaky_relu(h, 0.2)))


class MultiScaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs on the input average-pooled 0, 1, ... times."""

    def __init__(self, in_channels: int, *, ndf: int, n_layers: int, num_d: int):
        super().__init__()
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(3, in_channels, ndf=ndf, n_layers=n_layers) for _ in range(num_d))

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        outputs = []
        for index, discriminator in enumerate(self.discriminators):
            if index:
                x = F.avg_pool3d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x, return_features=True))
        return outputs


class SPADEGAN(TranslationMethod):
    name = "spadegan"
    dims = 3
    citation = ("Park et al., Semantic image synthesis with spatially-adaptive normalization "
                "(SPADE), CVPR 2019; switchable conditioning after Kim and Park, WACV 2024")
    Config = SPADEGANConfig
    profiles = {
        "smoke": {"roi": (32, 32, 32), "ngf": 4, "ndf": 4, "n_down": 2, "spade_hidden": 4,
                  "n_layers_d": 2, "steps": 2, **SMOKE_SETTINGS},
        "default": {"roi": (48, 48, 48), "ngf": 8, "ndf": 16, "n_down": 3, "spade_hidden": 16,
                    "steps": 300},
        # SPADE's published GAN settings (the WACV paper trains a diffusion model, whose
        # settings do not apply here): Adam lr 1e-4 (G) / 4e-4 (D), betas (0, 0.9), ngf 64,
        # 128-channel SPADE maps, two 4-layer discriminators, lambda_fm 10; 100 epochs at
        # constant lr + 100 of linear decay. The crop is not published: 128^3. One epoch =
        # one crop of each of the 1,251 BraTS 2023 training cases: 250,200 steps, each
        # updating the model once per target of the drawn source.
        "paper": {"roi": (128, 128, 128), "ngf": 64, "ndf": 64, "n_down": 4,
                  "spade_hidden": 128, "n_layers_d": 4, "num_d": 2, "batch_size": 1,
                  "lr": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9, "steps": 250200,
                  "decay_start": 0.5, "lambda_fm": 10.0, "lambda_l1": 100.0,
                  "sw_batch_size": 1},
    }

    @property
    def divisor(self) -> int:
        return 2 ** self.config.n_down

    @property
    def min_crop(self) -> int:
        return 3 * 2 ** self.config.n_layers_d * 2 ** (self.config.num_d - 1)

    def model_key(self, source: str, target: str) -> str:
        return "switchable"  # one model serves every pair

    def build_model(self, source: str, target: str) -> nn.Module:
        cfg = self.config
        model = nn.Module()
        model.generator = SPADEGenerator(len(self.names), ngf=cfg.ngf, n_down=cfg.n_down,
                                         hidden=cfg.spade_hidden)
        model.discriminator = MultiScaleDiscriminator(2 + len(self.names), ndf=cfg.ndf,
                                                      n_layers=cfg.n_layers_d, num_d=cfg.num_d)
        return model

    def translate(self, key, source, target, x):
        return self.models[key].generator(x, self.names.index(target))

    def make_optimizers(self, key: str, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        model = self.models[key]
        return {"G": self.adam([model.generator], stage.lr),
                "D": self.adam([model.discriminator], stage.lr_d)}

    def _code(self, target: str, like: torch.Tensor) -> torch.Tensor:
        code = torch.zeros(like.shape[0], len(self.names), *like.shape[2:], device=like.device)
        code[:, self.names.index(target)] = 1.0
        return code

    def train_step(self, key, source, target, x, y, foreground, optimizers):
        cfg = self.config
        model = self.models[key]
        gan = GANLoss("hinge")
        code = self._code(target, x)
        fake = model.generator(x, self.names.index(target))
        # generator: hinge adversarial, feature matching, L1 (discriminators frozen)
        set_requires_grad([model.discriminator], False)
        optimizers["G"].zero_grad(set_to_none=True)
        on_fake = model.discriminator(torch.cat([x, fake, code], dim=1))
        with torch.no_grad():
            on_real = model.discriminator(torch.cat([x, y, code], dim=1))
        loss_gan = sum(gan(logits, True, for_discriminator=False)
                       for logits, _ in on_fake) / len(on_fake)
        loss_fm = sum(sum(F.l1_loss(f, r) for f, r in zip(fake_features, real_features))
                      / len(fake_features)
                      for (_, fake_features), (_, real_features) in zip(on_fake, on_real)
                      ) / len(on_fake)
        terms = {"G_gan": loss_gan, "FM": cfg.lambda_fm * loss_fm,
                 "L1": cfg.lambda_l1 * masked_l1(fake, y, foreground)}
        self.manual_backward(sum(terms.values()))
        optimizers["G"].step()
        # discriminators
        set_requires_grad([model.discriminator], True)
        optimizers["D"].zero_grad(set_to_none=True)
        on_fake = model.discriminator(torch.cat([x, fake.detach(), code], dim=1))
        on_real = model.discriminator(torch.cat([x, y, code], dim=1))
        loss_d = sum(gan(f, False) + gan(r, True)
                     for (f, _), (r, _) in zip(on_fake, on_real)) / len(on_fake)
        self.manual_backward(loss_d)
        optimizers["D"].step()
        return {**terms, "D": loss_d}
