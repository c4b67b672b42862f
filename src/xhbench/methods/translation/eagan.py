"""Ea-GANs (Yu et al., IEEE TMI 2019, the paper's [50]): edge-aware 3D conditional GANs,
paired.

pix2pix in 3D (U-Net generator, conditional PatchGAN, least-squares GAN loss, L1) plus
edge maps. As in the authors' code (``sobelLayer`` of the Ea-GANs repository), the edge map
squashes the 3D Sobel gradient magnitude |S(v)| = sqrt(Sx(v)^2 + Sy(v)^2 + Sz(v)^2) into
[-1, 1): E(v) = 2 tanh(|S(v)| / 4) - 1, so that flat regions are -1, strong edges saturate
at 1, and the edge term has the scale of the L1 term:

* ``gea`` (gEa-GAN): the generator also minimises lambda_edge * ||E(G(x)) - E(y)||_1;
* ``dea`` (dEa-GAN): in addition the discriminator judges [x, image, E(image)], so the
  edges enter the adversarial game too.

Loss weights lambda_L1 = lambda_edge = 300 (the paper's); L1 and edge terms over the
foreground. Departure: the Sobel filter replicates the crop's border (the code pads with
the background value -1), so that a crop's border is not an edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from ...options import option
from .base import PIX2PIX_PAPER_TRAINING, SMOKE_SETTINGS
from .networks import PatchDiscriminator, masked_l1
from .pix2pix import Pix2Pix3D, Pix2PixConfig

__all__ = ["EaGANConfig", "EaGAN", "edge_map", "sobel_magnitude"]


@dataclass
class EaGANConfig(Pix2PixConfig):
    gan_mode: Literal["vanilla", "lsgan"] = "lsgan"  # the authors' default (no_lsgan off)
    variant: Literal["gea", "dea"] = "dea"
    lambda_l1: float = option(300.0, ge=0)
    lambda_edge: float = option(300.0, ge=0)  # 0 switches the generator's edge term off


def _sobel_kernels() -> torch.Tensor:
    """The three 3x3x3 Sobel kernels (derivative along one axis, [1, 2, 1] smoothing along
    the others), as scipy.ndimage.sobel applies them: shape (3, 1, 3, 3, 3)."""
    smooth = torch.tensor([1.0, 2.0, 1.0])
    derivative = torch.tensor([-1.0, 0.0, 1.0])
    kernels = []
    for axis in range(3):
        factors = [derivative if a == axis else smooth for a in range(3)]
        kernels.append(torch.einsum("i,j,k->ijk", *factors))
    return torch.stack(kernels)[:, None]


def sobel_magnitude(volume: torch.Tensor) -> torch.Tensor:
    """Edge map of (N, 1, X, Y, Z) volumes: the Sobel gradient magnitude (replicated
    borders)."""
    kernels = _sobel_kernels().to(volume)
    padded = F.pad(volume, (1,) * 6, mode="replicate")
    gradients = F.conv3d(padded, kernels)
    return torch.sqrt(gradients.pow(2).sum(dim=1, keepdim=True) + 1e-8)


def edge_map(volume: torch.Tensor) -> torch.Tensor:
    """Ea-GANs' edge map of (N, 1, X, Y, Z) volumes: 2 tanh(|S(v)| / 4) - 1, in [-1, 1)."""
    return 2 * torch.tanh(sobel_magnitude(volume) / 4) - 1


class EaGAN(Pix2Pix3D):
    name = "eagan"
    citation = ("Yu et al., Ea-GANs: edge-aware generative adversarial networks for "
                "cross-modality MR image synthesis, IEEE TMI 2019")
    Config = EaGANConfig
    profiles = {
        "smoke": {"roi": (32, 32, 32), "num_downs": 5, "ngf": 8, "ndf": 8, "steps": 2,
                  **SMOKE_SETTINGS},
        "default": {"roi": (48, 48, 48), "num_downs": 4, "ngf": 16, "ndf": 16, "steps": 300},
        # pix2pix's published training in 3D with the paper's weights (300, 300); the
        # crop is not published for BraTS: 128^3 as the other 3D baselines.
        "paper": {"roi": (128, 128, 128), "num_downs": 7, "ngf": 64, "ndf": 64,
                  **PIX2PIX_PAPER_TRAINING, "lambda_l1": 300.0, "lambda_edge": 300.0,
                  "sw_batch_size": 1},
    }

    def build_model(self, source: str, target: str) -> nn.Module:
        model = super().build_model(source, target)
        if self.config.variant == "dea":  # D sees [x, image, edges of image]
            cfg = self.config
            model.discriminator = PatchDiscriminator(3, 3, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        return model

    def judged(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """dEa-GAN's discriminator also sees the edges of ``image``."""
        if self.config.variant != "dea":
            return super().judged(x, image)
        return torch.cat([x, image, edge_map(image)], dim=1)

    def generator_terms(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        foreground: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """pix2pix's weighted terms, plus ``edge`` when lambda_edge > 0."""
        terms = super().generator_terms(model, x, y, foreground, fake)
        if self.config.lambda_edge > 0:
            terms["edge"] = self.config.lambda_edge * masked_l1(
                edge_map(fake), edge_map(y), foreground)
        return terms
