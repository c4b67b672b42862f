"""MD-Diff: the cross-conditioned diffusion model of Xing et al. (MICCAI 2024, the paper's
[47], "CDM"), 2D slice-wise, two training stages. No code is public; what the paper
describes is followed and the rest assumed (docs/methods/translation.md).

* Stage 1, ``representation``: the Modality-specific Representation Model (MRM), a
  masked autoencoder of the *target* modality: random ``patch`` x ``patch`` patches of
  the target are masked (``mask_ratio``), a feature encoder FE maps the masked target to
  a compact representation z (``tokens`` x ``width``), a decoder FD rebuilds the target
  and the loss is the L2 on the masked patches. Jointly, the Cross-conditioned U-Net
  (C-UNet) synthesises the target from the source guided by z (L1 over the foreground):
  a MONAI ``DiffusionModelUNet`` used as a plain U-Net (timestep 0) whose cross-attention
  reads z as its context (the condition embedding).
* Stage 2, ``diffusion``: the Modality-decoupled Diffusion Network (MDN), a residual MLP
  that denoises z conditioned on a source encoder's representation of the same shape,
  DDPM on z (MONAI schedulers), FE frozen.

Prediction: z sampled by DDIM (``sampling_steps``) from seeded noise given the source,
then C-UNet(source, z), clipped to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ...options import option
from .base import SMOKE_SETTINGS, Stage
from .networks import masked_l1
from .sampling import DiffusionConfig, SampledTranslation

__all__ = ["MDDiffConfig", "MDDiff"]


@dataclass
class MDDiffConfig(DiffusionConfig):
    repr_steps: int = option(400, ge=1)  # stage 1 (MRM + C-UNet)
    repr_lr: float = option(2e-4, gt=0)
    width: int = option(64, ge=1)  # representation channels per token
    tokens: int = option(4, ge=1)  # representation tokens (a 2 x 2 grid)
    patch: int = option(8, ge=1)
    mask_ratio: float = option(0.5, ge=0, lt=1)
    lambda_mrm: float = option(1.0, ge=0)
    channels: tuple[int, ...] = (32, 64, 64)  # C-UNet levels
    num_res_blocks: int = option(1, ge=1)
    norm_num_groups: int = option(16, ge=1)
    num_head_channels: int = option(16, ge=1)
    mdn_blocks: int = option(4, ge=1)
    train_timesteps: int = 100
    sampling_steps: int = 10
    lr: float = 2e-4
    beta1: float = 0.9
    decay_start: float = 1.0


class Encoder(nn.Module):
    """Conv encoder of a slice to ``tokens`` vectors of ``width``: three stride-2 convs,
    adaptive average pooling to a square grid."""

    def __init__(self, width: int, tokens: int):
        super().__init__()
        side = int(round(tokens ** 0.5))
        if side * side != tokens:
            raise ValueError(f"tokens must be a square number, got {tokens}")
        self.model = nn.Sequential(
            nn.Conv2d(1, width // 4, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width // 4, width // 2, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.SiLU(),
            nn.AdaptiveAvgPool2d(side), nn.Conv2d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).flatten(2).transpose(1, 2)  # (N, tokens, width)


class Decoder(nn.Module):
    """The MRM's decoder FD: the token grid upsampled back to the slice."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(width, width // 2, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(width // 2, 1, 3, padding=1))

    def forward(self, z: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        n, tokens, width = z.shape
        side = int(round(tokens ** 0.5))
        grid = z.transpose(1, 2).reshape(n, width, side, side)
        return self.body(F.interpolate(grid, size=size, mode="bilinear", align_corners=False))


class MDN(nn.Module):
    """Residual MLP denoiser of flattened representations, conditioned on the source's
    representation and the timestep (sinusoidal embedding)."""

    def __init__(self, dim: int, blocks: int):
        super().__init__()
        self.dim = dim
        self.inp = nn.Linear(3 * dim, 2 * dim)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(2 * dim), nn.Linear(2 * dim, 2 * dim), nn.SiLU(),
                          nn.Linear(2 * dim, 2 * dim)) for _ in range(blocks))
        self.out = nn.Linear(2 * dim, dim)

    def forward(self, z_t: torch.Tensor, timesteps: torch.Tensor,
                condition: torch.Tensor) -> torch.Tensor:
        from monai.networks.nets.diffusion_model_unet import get_timestep_embedding

        shape = z_t.shape
        t = get_timestep_embedding(timesteps.reshape(-1).expand(shape[0]), self.dim)
        h = self.inp(torch.cat([z_t.flatten(1), t.to(z_t), condition.flatten(1)], dim=1))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h).reshape(shape)


class MDDiff(SampledTranslation):
    name = "mddiff"
    dims = 2
    citation = ("Xing et al., Cross-conditioned diffusion model for medical image to image "
                "translation, MICCAI 2024")
    Config = MDDiffConfig
    profiles = {
        "smoke": {"roi": (32, 32, 2), "repr_steps": 1, "steps": 1, "width": 16,
                  "channels": (8, 16), "norm_num_groups": 8, "num_head_channels": 8,
                  "mdn_blocks": 1, "sampling_steps": 4, **SMOKE_SETTINGS},
        "default": {"roi": (48, 48, 4), "repr_steps": 600, "steps": 600, "repr_lr": 1e-3,
                    "lr": 1e-3, "sw_batch_size": 8},
        # Not published as code: the C-UNet of ResViT's slices (256x256), a 256-wide
        # 4-token representation, 16 px patches masked at 50%, 100 timesteps sampled in
        # 10 DDIM steps; each stage the translation rows' 200 epochs of slices.
        "paper": {"roi": (256, 256, 1), "width": 256, "patch": 16,
                  "channels": (64, 128, 256, 256), "num_res_blocks": 2,
                  "norm_num_groups": 32, "num_head_channels": 32, "repr_steps": 250200,
                  "steps": 250200, "repr_lr": 2e-4, "lr": 2e-4, "sw_batch_size": 16},
    }

    def __init__(self, config, spec, device):
        super().__init__(config, spec, device)
        self.ddpm = self.train_scheduler()
        self.stage = "diffusion"

    @property
    def divisor(self) -> int:
        return max(2 ** (len(self.config.channels) - 1), 8, self.config.patch)

    def build_model(self, source: str, target: str) -> nn.Module:
        from monai.networks.nets import DiffusionModelUNet

        cfg = self.config
        model = nn.Module()
        model.fe = Encoder(cfg.width, cfg.tokens)  # MRM feature encoder (target)
        model.fd = Decoder(cfg.width)  # MRM decoder
        model.unet = DiffusionModelUNet(  # C-UNet: cross-attention reads the tokens
            spatial_dims=2, in_channels=1, out_channels=1, channels=tuple(cfg.channels),
            attention_levels=(False,) * (len(cfg.channels) - 1) + (True,),
            num_res_blocks=cfg.num_res_blocks, norm_num_groups=cfg.norm_num_groups,
            num_head_channels=cfg.num_head_channels, with_conditioning=True,
            cross_attention_dim=cfg.width)
        model.se = Encoder(cfg.width, cfg.tokens)  # source encoder (MDN condition)
        model.mdn = MDN(cfg.width * cfg.tokens, cfg.mdn_blocks)
        return model

    @classmethod
    def stages_of(cls, cfg: Any) -> list[Stage]:
        return [Stage("representation", cfg.repr_steps, cfg.repr_lr, cfg.repr_lr),
                Stage("diffusion", cfg.steps, cfg.lr, cfg.lr)]

    def on_stage(self, stage: Stage) -> None:
        self.stage = stage.name

    def make_optimizers(self, key: str, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        model = self.models[key]
        if stage.name == "representation":
            return {"MRM": self.adam([model.fe, model.fd, model.unet], stage.lr)}
        return {"MDN": self.adam([model.se, model.mdn], stage.lr)}

    def synthesise(self, model: nn.Module, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """C-UNet: the source ``x`` guided by representation tokens ``z``."""
        timesteps = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        return torch.tanh(model.unet(x, timesteps, context=z))

    def mask(self, y: torch.Tensor) -> torch.Tensor:
        """1 on the masked patches (``mask_ratio`` of the ``patch``-sized patches)."""
        p = self.config.patch
        n, _, h, w = y.shape
        keep = torch.rand(n, 1, h // p, w // p, device=y.device) >= self.config.mask_ratio
        return F.interpolate((~keep).float(), scale_factor=p, mode="nearest")

    def representation_terms(self, model, x, y, foreground) -> dict[str, torch.Tensor]:
        """Stage 1: the MRM's masked-patch L2 and the C-UNet's L1 (weighted)."""
        masked = self.mask(y)
        z = model.fe(y * (1 - masked))
        rebuilt = model.fd(z, tuple(y.shape[2:]))
        mrm = ((rebuilt - y).pow(2) * masked).sum() / masked.sum().clamp_min(1.0)
        return {"MRM": self.config.lambda_mrm * mrm,
                "syn": masked_l1(self.synthesise(model, x, z), y, foreground)}

    def noise_loss(self, model, x, y, noise, timesteps) -> torch.Tensor:
        """Stage 2: DDPM on the target's representation given the source's."""
        with torch.no_grad():
            z0 = model.fe(y)
        z_t = self.ddpm.add_noise(original_samples=z0, noise=noise, timesteps=timesteps)
        return F.mse_loss(model.mdn(z_t, timesteps, model.se(x)), noise)

    def train_step(self, key, source, target, x, y, foreground, optimizers):
        model = self.models[key]
        name = "MRM" if self.stage == "representation" else "MDN"
        optimizers[name].zero_grad(set_to_none=True)
        if self.stage == "representation":
            terms = self.representation_terms(model, x, y, foreground)
        else:
            z_shape = (y.shape[0], self.config.tokens, self.config.width)
            terms = {"noise_mse": self.noise_loss(
                model, x, y, *self.draw_training_noise(y.new_empty(z_shape)))}
        self.manual_backward(sum(terms.values()))
        optimizers[name].step()
        return terms

    def sample_representation(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """z by DDIM from seeded noise, the MDN conditioned on the source."""
        scheduler = self.sample_scheduler(clip=False)  # representations are not in [-1, 1]
        condition = model.se(x)
        z = self.draw_noise((x.shape[0], self.config.tokens, self.config.width))
        counting = self.count_evaluations(model.mdn)
        try:
            for t in scheduler.timesteps:
                timestep = torch.full((x.shape[0],), int(t), device=x.device)
                z, _ = scheduler.step(model.mdn(z, timestep, condition), int(t), z)
        finally:
            counting.remove()
        return z

    def translate(self, key, source, target, x):
        model = self.models[key]
        return self.synthesise(model, x, self.sample_representation(model, x)).clamp(-1, 1)
