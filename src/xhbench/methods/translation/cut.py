"""CUT and FastCUT (Park et al., ECCV 2020, the paper's [35]): contrastive unpaired
translation, 2D slice-wise.

One model per source -> target pair, one-sided: a ResNet generator G, an unconditional
PatchGAN D on target slices and, per encoder layer used, a two-layer MLP head H_l
(C_l -> 256 -> 256, L2-normalised). PatchNCE: the generator's own encoder embeds the
source x and the translation G(x) at layers ``nce_layers`` (input, both downsampling
convolutions, first and fifth residual block); at ``num_patches`` random locations per
layer, the query (from G(x)) must pick the key at the same location (from x) among the
keys at the other locations of the same slice: cross-entropy over cosine similarities
/ ``nce_t`` (0.07). Objective: LSGAN + lambda_NCE * PatchNCE(x, G(x)), and for CUT also
the identity PatchNCE(y, G(y)) (averaged with the first). FastCUT: lambda_NCE 10, no
identity term, flip-equivariance augmentation. The pairing is never used: y only meets
D and the identity term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...options import option
from .base import (
    PIX2PIX_PAPER_TRAINING,
    SMOKE_SETTINGS,
    Stage,
    ResnetGANConfig,
    TranslationMethod,
)
from .networks import GANLoss, PatchDiscriminator, ResnetGenerator, set_requires_grad

__all__ = ["CUT", "CUTConfig", "patch_nce"]


@dataclass
class CUTConfig(ResnetGANConfig):
    lambda_gan: float = option(1.0, ge=0)
    lambda_nce: float = option(1.0, ge=0)  # 0 switches PatchNCE off
    nce_idt: bool = True  # CUT: also PatchNCE(y, G(y)); FastCUT: off
    flip_equivariance: bool = False  # FastCUT: random horizontal flips of the input
    num_patches: int = option(256, ge=1)
    nce_t: float = option(0.07, gt=0)
    head_channels: int = option(256, ge=1)


def encoder_layers(n_blocks: int) -> tuple[int, ...]:
    """Indices in :class:`ResnetGenerator`'s ``model`` whose outputs PatchNCE uses: the
    padded input, the two downsampling convolutions, the first and the fifth residual
    block (CUT's layers 0, 4, 8, 12, 16; ours has no anti-aliasing layers)."""
    return (0, 4, 7, 10, 10 + min(4, n_blocks - 1))


def patch_nce(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    """PatchNCE over (N, P, C) normalised features: for each patch the positive is the key
    at the same location, the negatives the keys at the other P - 1 locations of the same
    sample; cross-entropy of the similarities / ``temperature``, averaged."""
    key = key.detach()
    n, p, _ = query.shape
    positive = (query * key).sum(-1, keepdim=True)  # (N, P, 1)
    negative = query @ key.transpose(1, 2)  # (N, P, P)
    diagonal = torch.eye(p, dtype=torch.bool, device=query.device)[None]
    negative = negative.masked_fill(diagonal, -10.0)
    logits = torch.cat([positive, negative], dim=2).flatten(0, 1) / temperature
    return F.cross_entropy(logits, torch.zeros(n * p, dtype=torch.long, device=query.device))


class CUT(TranslationMethod):
    name = "cut"
    dims = 2
    divisor = 4
    citation = ("Park et al., Contrastive learning for unpaired image-to-image translation, "
                "ECCV 2020")
    Config = CUTConfig
    profiles = {
        "smoke": {"roi": (32, 32, 2), "ngf": 8, "ndf": 8, "n_blocks": 2, "num_patches": 32,
                  "head_channels": 16, "steps": 2, **SMOKE_SETTINGS},
        "default": {"roi": (64, 64, 4), "ngf": 32, "ndf": 32, "n_blocks": 6,
                    "num_patches": 128, "head_channels": 64, "steps": 400},
        # CUT's published setting: 9 blocks at 256x256, lambda_GAN 1, lambda_NCE 1 with the
        # identity NCE, 256 patches, tau 0.07, LSGAN, Adam 2e-4 (0.5, 0.999), 200 epochs.
        # FastCUT: --set lambda_nce=10 --set nce_idt=false --set flip_equivariance=true.
        "paper": {"roi": (256, 256, 1), "ngf": 64, "ndf": 64, "n_blocks": 9,
                  **PIX2PIX_PAPER_TRAINING, "sw_batch_size": 16},
    }

    @property
    def layers(self) -> tuple[int, ...]:
        return encoder_layers(self.config.n_blocks)

    def build_model(self, source: str, target: str) -> nn.Module:
        cfg = self.config
        model = nn.Module()
        model.generator = ResnetGenerator(2, 1, 1, ngf=cfg.ngf, n_blocks=cfg.n_blocks)
        model.discriminator = PatchDiscriminator(2, 1, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        widths = {0: 1, 4: 2 * cfg.ngf, 7: 4 * cfg.ngf}
        model.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(widths.get(layer, 4 * cfg.ngf), cfg.head_channels),
                          nn.ReLU(), nn.Linear(cfg.head_channels, cfg.head_channels))
            for layer in self.layers)
        return model

    def make_optimizers(self, key: str, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        model = self.models[key]
        return {"G": self.adam([model.generator], stage.lr),
                "D": self.adam([model.discriminator], stage.lr_d),
                "F": self.adam([model.heads], stage.lr)}

    def features(self, model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
        """The generator's encoder activations at :attr:`layers`."""
        wanted, out = set(self.layers), []
        h = x
        for index, layer in enumerate(model.generator.model[: max(self.layers) + 1]):
            h = layer(h)
            if index in wanted:
                out.append(h)
        return out

    def nce(self, model: nn.Module, source: torch.Tensor, translated: torch.Tensor,
            flipped: bool = False) -> torch.Tensor:
        """PatchNCE between the encoder features of ``source`` (keys) and of its translation
        (queries), at the same random locations, averaged over the layers."""
        cfg = self.config
        queries = self.features(model, translated)
        keys = self.features(model, source)
        total = translated.new_zeros(())
        for head, q, k in zip(model.heads, queries, keys):
            if flipped:  # the translation came from a flipped input: flip its features back
                q = torch.flip(q, dims=[3])
            q, k = q.flatten(2).transpose(1, 2), k.flatten(2).transpose(1, 2)  # (N, HW, C)
            ids = torch.randperm(q.shape[1], device=q.device)[: cfg.num_patches]
            total = total + patch_nce(F.normalize(head(q[:, ids]), dim=-1),
                                      F.normalize(head(k[:, ids]), dim=-1), cfg.nce_t)
        return total / len(queries)

    def generator_terms(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G(x) and the weighted generator terms (``NCE`` only when lambda_NCE > 0)."""
        cfg = self.config
        flipped = cfg.flip_equivariance and bool(torch.rand(()) < 0.5)
        fake = model.generator(torch.flip(x, dims=[3]) if flipped else x)
        terms = {"G_gan": cfg.lambda_gan * GANLoss("lsgan")(model.discriminator(fake), True)}
        if cfg.lambda_nce > 0:
            nce = self.nce(model, x, fake, flipped)
            if cfg.nce_idt:
                nce = 0.5 * (nce + self.nce(model, y, model.generator(y)))
            terms["NCE"] = cfg.lambda_nce * nce
        return (torch.flip(fake, dims=[3]) if flipped else fake), terms

    def train_step(self, key, source, target, x, y, foreground, optimizers):
        model = self.models[key]
        gan = GANLoss("lsgan")
        set_requires_grad([model.discriminator], False)
        optimizers["G"].zero_grad(set_to_none=True)
        optimizers["F"].zero_grad(set_to_none=True)
        fake, terms = self.generator_terms(model, x, y)
        self.manual_backward(sum(terms.values()))
        optimizers["G"].step()
        optimizers["F"].step()
        set_requires_grad([model.discriminator], True)
        optimizers["D"].zero_grad(set_to_none=True)
        loss_d = 0.5 * (gan(model.discriminator(fake.detach()), False)
                        + gan(model.discriminator(y), True))
        self.manual_backward(loss_d)
        optimizers["D"].step()
        return {**terms, "D": loss_d}
