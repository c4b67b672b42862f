"""NICE-GAN (Chen et al., CVPR 2020, the paper's [7]): "No-Independent-Component-for-
Encoding", unpaired, 2D slice-wise.

One model per unordered pair {A, B}, as CycleGAN: each domain's discriminator D_A
begins with an encoder E_A (the discriminator's own front layers) whose features the
other direction's generator decodes: A -> B is Dec_B(E_A(a)). The generators own no
encoder. Decoupled training: the encoders are updated by the discriminator loss only;
the generator step back-propagates through them but steps the decoders alone.
Objective: LSGAN + lambda_cycle * ||Dec_A(E_B(Dec_B(E_A(a)))) - a|| + lambda_recon *
||Dec_A(E_A(a)) - a|| (and the same for b), lambda 10 both; discriminators with spectral
normalisation. ``shared_encoder=false`` is the paper's ablation: generators with their
own encoders (trained with them), discriminators unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from ...options import option
from .base import (
    PIX2PIX_PAPER_TRAINING,
    SMOKE_SETTINGS,
    Stage,
    TranslationConfig,
    TwoWayTranslationMethod,
)
from .networks import GANLoss, ResnetBlock, masked_l1, norm, set_requires_grad

__all__ = ["NICEGANConfig", "NICEGAN"]


@dataclass
class NICEGANConfig(TranslationConfig):
    ngf: int = option(64, ge=1)
    ndf: int = option(64, ge=1)
    n_blocks: int = option(6, ge=1)  # residual blocks of each decoder (the released n_res)
    lambda_cycle: float = option(10.0, ge=0)
    lambda_recon: float = option(10.0, ge=0)
    shared_encoder: bool = True  # False: the ablation with generator-owned encoders
    lr: float = 1e-4
    beta1: float = 0.5
    weight_decay: float = 1e-4


def encoder(ndf: int, spectral: bool) -> nn.Sequential:
    """NICE-GAN's discriminator front: a reflection-padded 7x7 conv and two stride-2 4x4
    convs (to 4 ndf channels at 1/4 resolution), LeakyReLU 0.2."""
    wrap = spectral_norm if spectral else (lambda layer: layer)
    return nn.Sequential(
        nn.ReflectionPad2d(3), wrap(nn.Conv2d(1, ndf, 7)), nn.LeakyReLU(0.2, True),
        nn.ReflectionPad2d(1), wrap(nn.Conv2d(ndf, 2 * ndf, 4, stride=2)),
        nn.LeakyReLU(0.2, True),
        nn.ReflectionPad2d(1), wrap(nn.Conv2d(2 * ndf, 4 * ndf, 4, stride=2)),
        nn.LeakyReLU(0.2, True))


class Discriminator(nn.Module):
    """Encoder (shared with the generators) + a PatchGAN head: two more stride-2 convs and
    a 1-channel conv, spectral-normalised. ``forward`` returns the patch logits."""

    def __init__(self, ndf: int):
        super().__init__()
        self.encoder = encoder(ndf, spectral=True)
        self.head = nn.Sequential(
            nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(4 * ndf, 8 * ndf, 4, stride=2)),
            nn.LeakyReLU(0.2, True),
            nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(8 * ndf, 8 * ndf, 4, stride=1)),
            nn.LeakyReLU(0.2, True),
            nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(8 * ndf, 1, 4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class Decoder(nn.Module):
    """Residual blocks on the encoder features, two transposed-conv upsamplings, a 7x7
    conv and tanh (the generator: it has no encoder of its own)."""

    def __init__(self, channels: int, ngf: int, n_blocks: int):
        super().__init__()
        layers = [nn.Conv2d(channels, 4 * ngf, 1)] + [ResnetBlock(2, 4 * ngf)
                                                      for _ in range(n_blocks)]
        for width in (4 * ngf, 2 * ngf):
            layers += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1,
                                          output_padding=1), norm(2, width // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 1, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model(features)


class NICEGAN(TwoWayTranslationMethod):
    name = "nicegan"
    dims = 2
    divisor = 4
    citation = ("Chen et al., Reusing discriminators for encoding: towards unsupervised "
                "image-to-image translation (NICE-GAN), CVPR 2020")
    Config = NICEGANConfig
    profiles = {
        "smoke": {"roi": (32, 32, 2), "ngf": 8, "ndf": 8, "n_blocks": 1, "steps": 2,
                  **SMOKE_SETTINGS},
        "default": {"roi": (64, 64, 4), "ngf": 16, "ndf": 16, "n_blocks": 4, "lr": 2e-4,
                    "steps": 400},
        # The released setting: Adam 1e-4 (0.5, 0.999), weight decay 1e-4, lambda_cycle
        # and lambda_recon 10, ngf = ndf = 64, 6 residual blocks; 256x256 slices and the
        # translation rows' 200 epochs (half constant, half linear decay, as released).
        "paper": {"roi": (256, 256, 1), "ngf": 64, "ndf": 64, "n_blocks": 6,
                  **PIX2PIX_PAPER_TRAINING, "lr": 1e-4, "sw_batch_size": 16},
    }

    @property
    def min_crop(self) -> int:
        return 32  # three stride-2 convs and two 4x4 convs

    def build_model(self, source: str, target: str) -> nn.Module:
        cfg = self.config
        model = nn.Module()
        model.d_a, model.d_b = Discriminator(cfg.ndf), Discriminator(cfg.ndf)
        model.dec_a = Decoder(4 * cfg.ndf, cfg.ngf, cfg.n_blocks)
        model.dec_b = Decoder(4 * cfg.ndf, cfg.ngf, cfg.n_blocks)
        if not cfg.shared_encoder:
            model.enc_a, model.enc_b = encoder(cfg.ndf, False), encoder(cfg.ndf, False)
        return model

    def encode(self, model: nn.Module, domain: str, image: torch.Tensor) -> torch.Tensor:
        """The features the generators decode: the domain's discriminator encoder (NICE),
        or the generator's own encoder in the ablation."""
        if self.config.shared_encoder:
            return (model.d_a if domain == "a" else model.d_b).encoder(image)
        return (model.enc_a if domain == "a" else model.enc_b)(image)

    def translate(self, key, source, target, x):
        model = self.models[key]
        a, _ = self._domains(key)
        if source == a:
            return model.dec_b(self.encode(model, "a", x))
        return model.dec_a(self.encode(model, "b", x))

    def make_optimizers(self, key: str, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        model, cfg = self.models[key], self.config
        generators = [model.dec_a, model.dec_b]
        if not cfg.shared_encoder:
            generators += [model.enc_a, model.enc_b]
        betas = (cfg.beta1, cfg.beta2)
        return {"G": torch.optim.Adam([p for m in generators for p in m.parameters()],
                                      lr=stage.lr, betas=betas, weight_decay=cfg.weight_decay),
                "D": torch.optim.Adam([p for m in (model.d_a, model.d_b) for p in m.parameters()],
                                      lr=stage.lr_d, betas=betas, weight_decay=cfg.weight_decay)}

    def generator_terms(self, model: nn.Module, real_a: torch.Tensor, real_b: torch.Tensor,
                        foreground: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Both translations and the weighted generator terms."""
        cfg = self.config
        gan = GANLoss("lsgan")
        code_a, code_b = self.encode(model, "a", real_a), self.encode(model, "b", real_b)
        fake_b, fake_a = model.dec_b(code_a), model.dec_a(code_b)
        terms = {"G_gan": gan(model.d_b(fake_b), True) + gan(model.d_a(fake_a), True)}
        if cfg.lambda_cycle > 0:
            cycle = (masked_l1(model.dec_a(self.encode(model, "b", fake_b)), real_a, foreground)
                     + masked_l1(model.dec_b(self.encode(model, "a", fake_a)), real_b,
                                 foreground))
            terms["cycle"] = cfg.lambda_cycle * cycle
        if cfg.lambda_recon > 0:
            recon = (masked_l1(model.dec_a(code_a), real_a, foreground)
                     + masked_l1(model.dec_b(code_b), real_b, foreground))
            terms["recon"] = cfg.lambda_recon * recon
        return fake_a, fake_b, terms

    def train_step(self, key, source, target, x, y, foreground, optimizers):
        model = self.models[key]
        gan = GANLoss("lsgan")
        a_name, _ = self._domains(key)
        real_a, real_b = (x, y) if source == a_name else (y, x)
        # discriminators (and with them the encoders) first, on detached translations
        with torch.no_grad():
            fake_b = model.dec_b(self.encode(model, "a", real_a))
            fake_a = model.dec_a(self.encode(model, "b", real_b))
        optimizers["D"].zero_grad(set_to_none=True)
        loss_d = (gan(model.d_a(real_a), True) + gan(model.d_a(fake_a), False)
                  + gan(model.d_b(real_b), True) + gan(model.d_b(fake_b), False))
        self.manual_backward(loss_d)
        optimizers["D"].step()
        # generators: gradients reach the shared encoders, but only the decoders step
        set_requires_grad([model.d_a.head, model.d_b.head], False)
        optimizers["G"].zero_grad(set_to_none=True)
        _, _, terms = self.generator_terms(model, real_a, real_b, foreground)
        self.manual_backward(sum(terms.values()))
        optimizers["G"].step()
        set_requires_grad([model.d_a.head, model.d_b.head], True)
        optimizers["D"].zero_grad(set_to_none=True)  # the encoders' G gradients are dropped
        return {**terms, "D": loss_d}

    def reconstruction_term(self, source, target, x, y, foreground):
        """The cycle term of the source image (foreground L1)."""
        key = self.model_key(source, target)
        back = self.translate(key, target, source, self.translate(key, source, target, x))
        return masked_l1(back, x, foreground)
