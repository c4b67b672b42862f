"""Conditional diffusion translation (Dhariwal and Nichol, NeurIPS 2021, the paper's [11],
as used for image-to-image translation), 2D slice-wise, on MONAI's generative components.

One model per source -> target pair: a ``DiffusionModelUNet`` (ADM-style U-Net: residual
blocks with timestep embeddings, self-attention at the coarse levels) that predicts the
noise added to the target slice, given the noisy target concatenated with the source
slice (channels [x_t, source]; MONAI ``DiffusionInferer`` in ``concat`` mode).

* training (DDPM): a target y, a uniformly drawn timestep t and Gaussian noise e give
  x_t = sqrt(abar_t) y + sqrt(1 - abar_t) e (MONAI ``DDPMScheduler``, linear betas
  1e-4..2e-2 over 1000 steps); the loss is ||e - eps(x_t, t, source)||^2 over the slice;
* sampling (DDIM, eta 0): ``sampling_steps`` denoising steps from seeded noise (MONAI
  ``DDIMScheduler``), the predicted clean image clipped to [-1, 1] at each step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...options import option
from .base import SMOKE_SETTINGS, Stage
from .sampling import DiffusionConfig, SampledTranslation

__all__ = ["DDPMConfig", "Diffusion"]


@dataclass
class DDPMConfig(DiffusionConfig):
    channels: tuple[int, ...] = (64, 128, 256)  # U-Net widths per level
    attention_levels: tuple[bool, ...] = (False, False, True)
    num_res_blocks: int = option(2, ge=1)
    norm_num_groups: int = option(32, ge=1)
    num_head_channels: int = option(32, ge=1)
    resblock_updown: bool = True  # ADM's residual (BigGAN) up- and downsampling
    lr: float = 1e-4
    beta1: float = 0.9
    decay_start: float = 1.0  # ADM trains at a constant learning rate


class Diffusion(SampledTranslation):
    name = "diffusion"
    dims = 2
    citation = ("Dhariwal and Nichol, Diffusion models beat GANs on image synthesis, NeurIPS "
                "2021 (conditional DDPM translation, DDIM sampling: Song et al., ICLR 2021)")
    Config = DDPMConfig
    profiles = {
        "smoke": {"roi": (32, 32, 2), "channels": (8, 16), "attention_levels": (False, True),
                  "num_res_blocks": 1, "norm_num_groups": 8, "num_head_channels": 8,
                  "resblock_updown": False, "steps": 2, "sampling_steps": 4, **SMOKE_SETTINGS},
        # 48x48 slices: one window covers a phantom slice (no blending of separately
        # sampled windows); 1e-3 and 1,500 steps for a CPU run; 50 DDIM steps.
        "default": {"roi": (48, 48, 4), "channels": (32, 64, 64),
                    "attention_levels": (False, False, True), "num_res_blocks": 1,
                    "norm_num_groups": 16, "num_head_channels": 16, "lr": 1e-3,
                    "steps": 1500, "sampling_steps": 50, "sw_batch_size": 8},
        # ADM's 256x256 model (channels 256 x (1, 1, 2, 2, 4, 4) halved to fit one GPU,
        # attention at 32, 16 and 8 pixels, 2 residual blocks, 64-channel heads, BigGAN
        # up/down), Adam 1e-4 at a constant rate, 1000 training timesteps, and the
        # translation papers' 200 "epochs" of BraTS slices (250,200 steps at batch 1)
        # with 100 DDIM steps.
        "paper": {"roi": (256, 256, 1), "channels": (128, 128, 256, 256, 512, 512),
                  "attention_levels": (False, False, False, True, True, True),
                  "num_res_blocks": 2, "norm_num_groups": 32, "num_head_channels": 64,
                  "batch_size": 1, "lr": 1e-4, "steps": 250200, "sampling_steps": 100,
                  "sw_batch_size": 16},
    }

    def __init__(self, config, spec, device):
        super().__init__(config, spec, device)
        self.ddpm = self.train_scheduler()

    @property
    def divisor(self) -> int:
        return 2 ** (len(self.config.channels) - 1)

    def build_model(self, source: str, target: str) -> nn.Module:
        from monai.networks.nets import DiffusionModelUNet

        cfg = self.config
        model = nn.Module()
        model.unet = DiffusionModelUNet(
            spatial_dims=2, in_channels=2, out_channels=1, channels=tuple(cfg.channels),
            attention_levels=tuple(cfg.attention_levels), num_res_blocks=cfg.num_res_blocks,
            norm_num_groups=cfg.norm_num_groups, num_head_channels=cfg.num_head_channels,
            resblock_updown=cfg.resblock_updown)
        return model

    def make_optimizers(self, key: str, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        return {"unet": self.adam([self.models[key].unet], stage.lr)}

    def noise_loss(self, key: str, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor,
                   timesteps: torch.Tensor) -> torch.Tensor:
        """DDPM's simple loss: MSE between the noise and the network's prediction of it
        from the noised target and the source."""
        from monai.inferers import DiffusionInferer

        predicted = DiffusionInferer(self.ddpm)(inputs=y, diffusion_model=self.models[key].unet,
                                                noise=noise, timesteps=timesteps, condition=x,
                                                mode="concat")
        return F.mse_loss(predicted, noise)

    def train_step(self, key, source, target, x, y, foreground, optimizers):
        optimizers["unet"].zero_grad(set_to_none=True)
        loss = self.noise_loss(key, x, y, *self.draw_training_noise(y))
        self.manual_backward(loss)
        optimizers["unet"].step()
        return {"noise_mse": loss}

    def translate(self, key, source, target, x):
        """DDIM sampling of the target from seeded noise, conditioned on the source ``x``."""
        from monai.inferers import DiffusionInferer

        unet = self.models[key].unet
        scheduler = self.sample_scheduler()
        counting = self.count_evaluations(unet)
        try:
            y = DiffusionInferer(scheduler).sample(
                self.draw_noise(tuple(x.shape)), unet, scheduler=scheduler, conditioning=x,
                mode="concat", verbose=False)
        finally:
            counting.remove()
        return y.clamp(-1.0, 1.0)
