"""What the diffusion translators share: MONAI noise schedulers, seeded DDIM sampling and
the sampling cost the run records.

A diffusion model predicts a volume by iterating its network ``sampling_steps`` times
from noise, so its cost at inference is part of its result: :class:`SampledTranslation`
times every :meth:`predict`, counts the network evaluations, and reports both through
:meth:`~xhbench.methods.base.Method.sampling_cost` (the runner writes them into
``cost.json``). Sampling is deterministic for a seed: each :meth:`predict` restarts the
noise generator at ``sample_seed``, so a case's prediction does not depend on which cases
came before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...options import option
from .base import TranslationConfig, TranslationMethod

__all__ = ["DiffusionConfig", "SampledTranslation"]


@dataclass
class DiffusionConfig(TranslationConfig):
    train_timesteps: int = option(1000, ge=1)  # T of the DDPM forward process
    schedule: str = "linear_beta"  # MONAI scheduler schedule (DDPM's linear betas)
    beta_start: float = option(1e-4, gt=0, lt=1)
    beta_end: float = option(2e-2, gt=0, lt=1)
    # DDIM steps at inference (eta 0: deterministic given noise)
    sampling_steps: int = option(50, ge=1)
    sample_seed: int = 0  # the noise generator's seed, restarted for every predicted case


class SampledTranslation(TranslationMethod):
    """Base of the diffusion translators: schedulers, seeded noise, sampling cost."""

    Config = DiffusionConfig

    def __init__(self, config, spec, device):
        super().__init__(config, spec, device)
        self.noise = torch.Generator(device="cpu").manual_seed(config.sample_seed)
        self.network_evaluations = 0
        self.sampling_seconds = 0.0
        self.sampled_volumes = 0

    @property
    def min_crop(self) -> int:
        return self.divisor  # no discriminator to feed

    def train_scheduler(self):
        """The DDPM forward process (MONAI ``DDPMScheduler``) used to noise targets."""
        from monai.networks.schedulers import DDPMScheduler

        cfg = self.config
        return DDPMScheduler(num_train_timesteps=cfg.train_timesteps, schedule=cfg.schedule,
                             beta_start=cfg.beta_start, beta_end=cfg.beta_end)

    def sample_scheduler(self, clip: bool = True):
        """MONAI's ``DDIMScheduler`` on the training schedule, set to ``sampling_steps``;
        ``clip``: the predicted clean sample is clipped to [-1, 1] at each step."""
        from monai.networks.schedulers import DDIMScheduler

        cfg = self.config
        scheduler = DDIMScheduler(num_train_timesteps=cfg.train_timesteps, schedule=cfg.schedule,
                                  beta_start=cfg.beta_start, beta_end=cfg.beta_end,
                                  clip_sample=clip)
        scheduler.set_timesteps(cfg.sampling_steps)
        return scheduler

    def draw_noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal noise from the seeded sampling generator."""
        return torch.randn(shape, generator=self.noise).to(self.device)

    def draw_training_noise(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise and uniformly drawn timesteps for one DDPM training step."""
        noise = torch.randn_like(like)
        timesteps = torch.randint(0, self.config.train_timesteps, (like.shape[0],),
                                  device=like.device)
        return noise, timesteps

    def count_evaluations(self, network: torch.nn.Module):
        """A forward hook counting the network's evaluations while sampling."""

        def hook(*_):
            self.network_evaluations += 1

        return network.register_forward_hook(hook)

    @torch.no_grad()
    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        self.noise.manual_seed(self.config.sample_seed)
        started = time.perf_counter()
        out = super().predict(image, available)
        self.sampling_seconds += time.perf_counter() - started
        self.sampled_volumes += 1
        return out

    def sampling_cost(self) -> dict[str, Any]:
        return {"sampling_steps": self.config.sampling_steps,
                "network_evaluations": self.network_evaluations,
                "sampled_volumes": self.sampled_volumes,
                "seconds": round(self.sampling_seconds, 3)}
