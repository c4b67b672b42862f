"""MS-SPADE (Kim and Park, WACV 2024, the paper's [25]): 3D latent diffusion translation
with switchable SPADE conditioning, on MONAI's generative components.

One model serves every pair (``model_key`` ``switchable``), in two training stages:

1. ``autoencoder``: a 3D ``AutoencoderKL`` shared by all modalities, trained on source
   and target crops alike: L1 reconstruction + ``kl_weight`` KL + ``adv_weight`` least-
   squares adversarial loss from a 3D ``PatchDiscriminator`` (MONAI
   ``PatchAdversarialLoss``). No perceptual loss: MONAI's ``PerceptualLoss`` needs
   pre-trained weights that cannot be had offline.
2. ``diffusion``: a ``SPADEDiffusionModelUNet`` in the (frozen) autoencoder's latent
   space denoises the target's latent; every normalisation is SPADE-modulated by the
   source's latent together with a one-hot map of the target modality (the switch: the
   same network, modulated differently per target). DDPM training of the noise
   prediction through MONAI's ``LatentDiffusionInferer``; latents are scaled by
   ``1 / std`` of the first diffusion batch (the latent diffusion convention).

Sampling: DDIM (``sampling_steps``, eta 0) from seeded noise in latent space, decoded by
the autoencoder and clipped to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ...options import option
from .base import SMOKE_SETTINGS, Stage
from .sampling import DiffusionConfig, SampledTranslation

__all__ = ["MSSPADEConfig", "MSSPADE"]


@dataclass
class MSSPADEConfig(DiffusionConfig):
    # stage 1: the autoencoder
    ae_steps: int = option(400, ge=1)
    ae_lr: float = option(1e-4, gt=0)
    ae_channels: tuple[int, ...] = (32, 64, 64)  # levels; 2^(levels - 1) downsampling
    ae_res_blocks: int = 1
    ae_attention: bool = False  # non-local attention in the encoder's / decoder's middle
    latent_channels: int = option(3, ge=1)
    kl_weight: float = option(1e-6, ge=0)
    adv_weight: float = option(0.01, ge=0)
    ndf: int = option(32, ge=1)
    n_layers_d: int = option(3, ge=1)
    # stage 2: the SPADE diffusion U-Net in latent space
    channels: tuple[int, ...] = (64, 128)
    attention_levels: tuple[bool, ...] = (False, True)
    num_res_blocks: int = option(1, ge=1)
    norm_num_groups: int = option(32, ge=1)
    num_head_channels: int = option(32, ge=1)
    spade_hidden: int = option(128, ge=1)
    lr: float = 1e-4
    beta1: float = 0.9
    decay_start: float = 1.0


class MSSPADE(SampledTranslation):
    name = "msspade"
    dims = 3
    citation = ("Kim and Park, Adaptive latent diffusion model for 3D medical image to image "
                "translation: multi-modal magnetic resonance imaging study, WACV 2024")
    Config = MSSPADEConfig
    profiles = {
        "smoke": {"roi": (32, 32, 32), "ae_steps": 1, "ae_channels": (8, 8),
                  "norm_num_groups": 8, "ndf": 8, "n_layers_d": 2, "channels": (8, 16),
                  "attention_levels": (False, False), "num_head_channels": 8,
                  "spade_hidden": 8, "steps": 1, "sampling_steps": 4, "sw_batch_size": 1,
                  **SMOKE_SETTINGS},
        # 48^3 crops (a whole phantom), latents of 12^3 x 3; 300 autoencoder + 800
        # diffusion steps at 1e-3 for a CPU run; 50 DDIM steps.
        "default": {"roi": (48, 48, 48), "ae_steps": 300, "ae_lr": 1e-3,
                    "ae_channels": (16, 32, 32), "norm_num_groups": 16, "ndf": 16,
                    "channels": (32, 64), "attention_levels": (False, True),
                    "num_head_channels": 16, "spade_hidden": 32, "lr": 1e-3, "steps": 800,
                    "sampling_steps": 50, "sw_batch_size": 1},
        # The released code's sizes: a 4x-downsampling autoencoder (ch 128, mult 1-1-2,
        # 2 residual blocks, 3 latent channels, 192^3 -> 48^3 in the paper; 128^3 crops
        # here), a latent U-Net of 128 channels (mult 1-1-2, attention at the two coarse
        # levels, 32-channel heads), 128-channel SPADE maps, 1000 timesteps with the LDM's
        # linear betas 0.0015..0.0195; Adam 1e-4 (the LDM's base rate is 1e-6 x batch
        # scaling; not published per GPU); 200 epochs of 1,251 cases per stage.
        "paper": {"roi": (128, 128, 128), "ae_steps": 250200, "ae_lr": 1e-4,
                  "ae_channels": (128, 128, 256), "ae_res_blocks": 2, "ae_attention": True,
                  "ndf": 64, "n_layers_d": 3, "channels": (128, 128, 256),
                  "attention_levels": (False, True, True), "num_res_blocks": 1,
                  "norm_num_groups": 32, "num_head_channels": 32, "spade_hidden": 128,
                  "beta_start": 0.0015, "beta_end": 0.0195, "schedule": "scaled_linear_beta",
                  "lr": 1e-4, "steps": 250200, "sampling_steps": 100, "sw_batch_size": 1},
    }

    def __init__(self, config, spec, device):
        super().__init__(config, spec, device)
        self.ddpm = self.train_scheduler()
        self.stage = "diffusion"

    @property
    def latent_factor(self) -> int:
        return 2 ** (len(self.config.ae_channels) - 1)

    @property
    def divisor(self) -> int:
        return self.latent_factor * 2 ** (len(self.config.channels) - 1)

    def model_key(self, source: str, target: str) -> str:
        return "switchable"  # one model serves every pair

    def build_model(self, source: str, target: str) -> nn.Module:
        from monai.networks.nets import AutoencoderKL, PatchDiscriminator, SPADEDiffusionModelUNet

        cfg = self.config
        model = nn.Module()
        levels = len(cfg.ae_channels)
        model.autoencoder = AutoencoderKL(
            spatial_dims=3, in_channels=1, out_channels=1, channels=tuple(cfg.ae_channels),
            num_res_blocks=cfg.ae_res_blocks, attention_levels=(False,) * levels,
            latent_channels=cfg.latent_channels, norm_num_groups=cfg.norm_num_groups,
            with_encoder_nonlocal_attn=cfg.ae_attention,
            with_decoder_nonlocal_attn=cfg.ae_attention)
        model.discriminator = PatchDiscriminator(
            spatial_dims=3, channels=cfg.ndf, in_channels=1, num_layers_d=cfg.n_layers_d,
            norm="INSTANCE")
        model.unet = SPADEDiffusionModelUNet(
            spatial_dims=3, in_channels=cfg.latent_channels, out_channels=cfg.latent_channels,
            label_nc=cfg.latent_channels + len(self.names), channels=tuple(cfg.channels),
            attention_levels=tuple(cfg.attention_levels), num_res_blocks=cfg.num_res_blocks,
            norm_num_groups=cfg.norm_num_groups, num_head_channels=cfg.num_head_channels,
            spade_intermediate_channels=cfg.spade_hidden)
        # 1 / std of the latents, set from the first diffusion batch (0: not yet)
        model.register_buffer("latent_scale", torch.zeros(()))
        return model

    # --- stages -------------------------------------------------------------------

    @classmethod
    def stages_of(cls, cfg: Any) -> list[Stage]:
        return [Stage("autoencoder", cfg.ae_steps, cfg.ae_lr, cfg.ae_lr),
                Stage("diffusion", cfg.steps, cfg.lr, cfg.lr)]

    def on_stage(self, stage: Stage) -> None:
        self.stage = stage.name

    def make_optimizers(self, key: str, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        model = self.models[key]
        if stage.name == "autoencoder":
            return {"AE": self.adam([model.autoencoder], stage.lr),
                    "D": self.adam([model.discriminator], stage.lr_d)}
        return {"unet": self.adam([model.unet], stage.lr)}

    def train_step(self, key, source, target, x, y, foreground, optimizers):
        if self.stage == "autoencoder":
            return self._autoencoder_step(self.models[key], torch.cat([x, y]), optimizers)
        return self._diffusion_step(key, target, x, y, optimizers)

    # --- stage 1 ------------------------------------------------------------------

    def autoencoder_losses(self, model: nn.Module, images: torch.Tensor
                           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The autoencoder's reconstruction and its weighted L1, KL and adversarial terms
        (their sum is its loss)."""
        from monai.losses import PatchAdversarialLoss

        reconstruction, mu, sigma = model.autoencoder(images)
        kl = 0.5 * (mu.pow(2) + sigma.pow(2) - torch.log(sigma.pow(2)) - 1)
        adversarial = PatchAdversarialLoss(criterion="least_squares")
        terms = {"L1": F.l1_loss(reconstruction, images),
                 "KL": self.config.kl_weight * kl.flatten(1).sum(1).mean(),
                 "G_adv": self.config.adv_weight * adversarial(
                     model.discriminator(reconstruction)[-1:], target_is_real=True,
                     for_discriminator=False)}
        return reconstruction, terms

    def _autoencoder_step(self, model, images, optimizers):
        from monai.losses import PatchAdversarialLoss

        optimizers["AE"].zero_grad(set_to_none=True)
        model.discriminator.requires_grad_(False)
        reconstruction, terms = self.autoencoder_losses(model, images)
        self.manual_backward(sum(terms.values()))
        optimizers["AE"].step()
        model.discriminator.requires_grad_(True)
        optimizers["D"].zero_grad(set_to_none=True)
        adversarial = PatchAdversarialLoss(criterion="least_squares")
        loss_d = 0.5 * (
            adversarial(model.discriminator(reconstruction.detach())[-1:], target_is_real=False,
                        for_discriminator=True)
            + adversarial(model.discriminator(images)[-1:], target_is_real=True,
                          for_discriminator=True))
        self.manual_backward(loss_d)
        optimizers["D"].step()
        return {**terms, "D": loss_d}

    # --- stage 2 ------------------------------------------------------------------

    def encode(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """The autoencoder's latent of ``x`` (its mean: deterministic), scaled by
        ``latent_scale``."""
        model = self.models[key]
        return model.autoencoder.encode(x)[0] * scale_of(model)

    def condition(self, key: str, target: str, x: torch.Tensor) -> torch.Tensor:
        """The SPADE input: the source's latent and a one-hot map of the target."""
        latent = self.encode(key, x)
        code = torch.zeros(latent.shape[0], len(self.names), *latent.shape[2:],
                           device=latent.device)
        code[:, self.names.index(target)] = 1.0
        return torch.cat([latent, code], dim=1)

    def noise_loss(self, key: str, target: str, x: torch.Tensor, y: torch.Tensor,
                   noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        from monai.inferers import LatentDiffusionInferer

        model = self.models[key]
        with torch.no_grad():
            seg = self.condition(key, target, x)
        inferer = LatentDiffusionInferer(self.ddpm, scale_factor=scale_of(model))
        predicted = inferer(inputs=y, autoencoder_model=model.autoencoder,
                            diffusion_model=model.unet, noise=noise, timesteps=timesteps,
                            seg=seg)
        return F.mse_loss(predicted, noise)

    def _diffusion_step(self, key, target, x, y, optimizers):
        model = self.models[key]
        model.autoencoder.eval()  # frozen
        if float(model.latent_scale) == 0:
            with torch.no_grad():
                latent = model.autoencoder.encode(y)[0]
                model.latent_scale.fill_(1.0 / float(latent.std().clamp_min(1e-6)))
        optimizers["unet"].zero_grad(set_to_none=True)
        shape = (y.shape[0], self.config.latent_channels,
                 *(size // self.latent_factor for size in y.shape[2:]))
        noise, timesteps = self.draw_training_noise(y.new_empty(shape))
        loss = self.noise_loss(key, target, x, y, noise, timesteps)
        self.manual_backward(loss)
        optimizers["unet"].step()
        return {"noise_mse": loss}

    def translate(self, key, source, target, x):
        """DDIM sampling in latent space, SPADE-conditioned on the source's latent and the
        target switch, decoded by the autoencoder."""
        from monai.inferers import LatentDiffusionInferer

        model = self.models[key]
        seg = self.condition(key, target, x)
        scheduler = self.sample_scheduler()
        inferer = LatentDiffusionInferer(scheduler, scale_factor=scale_of(model))
        counting = self.count_evaluations(model.unet)
        try:
            y = inferer.sample(self.draw_noise((x.shape[0], self.config.latent_channels,
                                                *seg.shape[2:])),
                               model.autoencoder, model.unet, scheduler=scheduler, seg=seg,
                               verbose=False)
        finally:
            counting.remove()
        return y.clamp(-1.0, 1.0)


def scale_of(model: nn.Module) -> float:
    """The latent scale of ``model``; 1 before the diffusion stage has set it."""
    return float(model.latent_scale) or 1.0
