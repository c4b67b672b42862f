"""M3AE: Multimodal Representation Learning for Brain Tumor Segmentation with Missing
Modalities (Liu et al., AAAI 2023).

One 3D U-Net over all four channels (no per-modality encoders). Missing modalities
are not zero-filled: their voxels are replaced by a learned substitute image, one
volume per modality of the crop's size, fitted by "model inversion" during the
pre-training (it is a parameter optimised with the network, then kept fixed).

- Stage 1, multimodal masked autoencoder (``pretrain_steps``): per sample, a random
  subset of modalities is dropped (the task's uniform draw over the 15 masks) and
  random cubes (``mask_patch`` voxels, a fraction ``mask_ratio``) of the remaining
  ones are masked; dropped and masked voxels take the substitute's values; the network
  reconstructs all four modalities (MSE over every voxel of the crop); the substitute
  is optimised with the network in this stage only.
- Stage 2, segmentation fine-tuning (``steps``): the input with the drawn modalities
  missing (substitute filled) is segmented (weighted CE + Dice), and the same network's
  bottleneck features on the missing-modality input are pulled towards those on the
  full input (self-distillation, MSE, weight ``w_distill``; the full-modality pass is
  supervised too and shares the batch, so no second network is kept in memory).

Steps run on from stage 1 into stage 2 (batch ``pretrain_steps + step`` in stage 2); one
training state, saved every ``checkpoint_every`` steps, covers both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..training import TRAINING_STATE, StepBatches, TrainingState
from .base import MissingConfig, MissingModalityMethod, _one_hot, segmentation_loss
from .layers import ResidualEncoder, UNetDecoder

__all__ = ["Config", "M3AEMethod", "M3AENet", "patch_mask"]


def patch_mask(shape: tuple[int, ...], patch: int, ratio: float, generator=None,
               device=None) -> torch.Tensor:
    """(B, M, X, Y, Z) bool, True where a voxel is KEPT: cubes of ``patch`` voxels, a
    fraction ``ratio`` of them masked, drawn independently per sample and modality."""
    b, m, *spatial = shape
    grid = [math.ceil(size / patch) for size in spatial]
    cells = math.prod(grid)
    masked = round(ratio * cells)
    scores = torch.rand(b * m, cells, generator=generator, device=device)
    order = scores.argsort(dim=1)
    keep = torch.ones(b * m, cells, dtype=torch.bool, device=device)
    keep.scatter_(1, order[:, :masked], False)
    keep = keep.reshape(b, m, *grid)
    for axis in range(3):
        keep = keep.repeat_interleave(patch, dim=2 + axis)
    return keep[(..., *(slice(0, size) for size in spatial))]


class M3AENet(nn.Module):
    def __init__(self, modalities: int, num_classes: int, widths: list[int],
                 roi: tuple[int, ...]):
        super().__init__()
        self.roi = tuple(roi)
        self.encoder = ResidualEncoder(widths, in_channels=modalities)
        self.decoder = UNetDecoder(widths, widths, num_classes)
        self.reconstruction = nn.Conv3d(widths[0], modalities, 1)
        self.substitute = nn.Parameter(torch.zeros(1, modalities, *self.roi))

    def fill(self, image: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``image`` where ``keep`` (broadcastable bool), the substitute elsewhere."""
        substitute = self.substitute
        if tuple(image.shape[2:]) != self.roi:
            substitute = F.interpolate(substitute, size=image.shape[2:], mode="trilinear",
                                       align_corners=False)
        return torch.where(keep, image, substitute.to(image.dtype))

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(full-resolution decoder feature, bottleneck)."""
        skips = self.encoder(x)
        feature, _ = self.decoder.features(skips)
        return feature, skips[-1]

    def forward(self, image: torch.Tensor, available: torch.Tensor):
        x = self.fill(image, available[:, :, None, None, None])
        if not self.training:
            feature, _ = self.run(x)
            return self.decoder.head(feature)
        both = torch.cat([x, image])  # missing-modality input and the full input, one pass
        feature, bottleneck = self.run(both)
        logits = self.decoder.head(feature)
        b = image.shape[0]
        return {"fuse": logits[:b], "full": logits[b:],
                "distill": F.mse_loss(bottleneck[:b].float(), bottleneck[b:].float())}

    def reconstruct(self, image: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        feature, _ = self.run(self.fill(image, keep))
        return self.reconstruction(feature)


@dataclass
class Config(MissingConfig):
    levels: int = 4
    pretrain_steps: int = 2
    pretrain_lr: float = 1e-3
    mask_ratio: float = 0.875
    mask_patch: int = 8
    w_full: float = 1.0  # segmentation loss of the full-modality pass
    w_distill: float = 0.1
    ce_weighting: Literal["inverse_frequency", "none"] = "none"


class M3AEMethod(MissingModalityMethod):
    name = "m3ae"
    citation = "Liu et al., M3AE: Multimodal Representation Learning for Brain Tumor " \
               "Segmentation with Missing Modalities, AAAI 2023"
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"roi": (32, 32, 32), "channels": 2, "pretrain_steps": 2, "steps": 2,
                  "batch_size": 2, "sw_overlap": 0.25, "progress": False},
        "default": {"roi": (32, 32, 32), "channels": 8, "pretrain_steps": 100, "steps": 150,
                    "batch_size": 2, "lr": 1e-3},
        # Paper (as we read it; see docs/methods/missing_modality.md): 3D U-Net, 128^3
        # crops, mask ratio 87.5% of 16^3 cubes, batch 1. Epochs to steps: one epoch = one
        # pass over the 199 training cases at batch 1 = 199 steps; 600 pre-training epochs
        # = 119,400 steps, 300 fine-tuning epochs = 59,700 steps.
        "paper": {"roi": (128, 128, 128), "channels": 16, "levels": 5, "batch_size": 1,
                  "mask_patch": 16, "pretrain_steps": 119_400, "steps": 59_700,
                  "pretrain_lr": 3e-4, "lr": 3e-4, "sw_batch_size": 1, "log_every": 500},
    }

    def build_network(self, in_channels: int, out_channels: int) -> nn.Module:
        return M3AENet(in_channels, out_channels, self.widths(), tuple(self.config.roi))

    # stage 1 ------------------------------------------------------------------------------

    def pretraining_terms(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        cfg = self.config
        image = torch.as_tensor(batch["image"]).to(self.device, torch.float32)
        available = torch.as_tensor(batch["available"]).to(self.device, torch.bool)
        keep = patch_mask(tuple(image.shape), cfg.mask_patch, cfg.mask_ratio,
                          device=self.device) & available[:, :, None, None, None]
        with self._autocast():
            reconstruction = self.network.reconstruct(image, keep)
        loss = F.mse_loss(reconstruction.float(), image)
        return {"reconstruction": loss, "loss": loss}

    # stage 2 ------------------------------------------------------------------------------

    def loss_terms(self, batch: Mapping[str, Any], step: int | None = None
                   ) -> dict[str, torch.Tensor]:
        cfg = self.config
        image = torch.as_tensor(batch["image"]).to(self.device, torch.float32)
        available = torch.as_tensor(batch["available"]).to(self.device, torch.bool)
        onehot = _one_hot(torch.as_tensor(batch["label"]).to(self.device),
                          len(self.spec.out_channels))
        with self._autocast():
            out = self.network(image, available)
        terms = {"fuse": segmentation_loss(out["fuse"], onehot, cfg.ce_weighting),
                 "full": segmentation_loss(out["full"], onehot, cfg.ce_weighting),
                 "distill": out["distill"]}
        terms["loss"] = (cfg.w_fuse * terms["fuse"] + cfg.w_full * terms["full"]
                         + cfg.w_distill * terms["distill"])
        return terms

    def fit(self, train_data, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        cfg = self.config
        batches = StepBatches(train_data, cfg.batch_size)
        state = TrainingState(workdir, TRAINING_STATE, cfg.checkpoint_every)
        done = state.resume(log, network=self.network)  # the network at the stop
        pre = self._stage(batches, cfg.pretrain_steps, cfg.pretrain_lr, 0, "pretrain",
                          self.pretraining_terms, log, state, done, train_substitute=True)
        fine = self._stage(batches, cfg.steps, cfg.lr, cfg.pretrain_steps, "finetune",
                           self.loss_terms, log, state, done, train_substitute=False)
        return {"steps": cfg.steps, "pretrain_steps": cfg.pretrain_steps, "resumed_at": done,
                "pretrain_first_loss": pre[0]["loss"] if pre else None,
                "pretrain_last_loss": pre[-1]["loss"] if pre else None,
                "first_loss": fine[0]["loss"] if fine else None,
                "last_loss": fine[-1]["loss"] if fine else None,
                "last_terms": fine[-1] if fine else None}

    def _stage(self, batches, steps: int, lr: float, offset: int, stage: str, terms_fn,
               log, state: TrainingState, done: int,
               train_substitute: bool) -> list[dict[str, float]]:
        """Steps ``offset + step`` of one stage, from where a run stopped after ``done``."""
        cfg = self.config
        params = [p for name, p in self.network.named_parameters()
                  if train_substitute or name != "substitute"]
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay,
                                     amsgrad=cfg.amsgrad)
        total = max(steps, 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: max(1.0 - s / total, 0.0) ** cfg.poly_power)
        parts = {"optimizer": optimizer, "schedule": schedule}
        start = state.resume_stage(done, offset, steps, **parts)
        self.network.train()
        history: list[dict[str, float]] = []
        for step in tqdm(range(start, steps), initial=start, total=steps,
                         desc=f"{stage} {self.name}", disable=not cfg.progress, unit="step"):
            optimizer.zero_grad(set_to_none=True)
            terms = terms_fn(batches(offset + step))
            if not torch.isfinite(terms["loss"]):
                raise FloatingPointError(f"{self.name} {stage}: loss is "
                                         f"{terms['loss'].item()} at step {step}")
            terms["loss"].backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            schedule.step()
            history.append({k: float(v.detach()) for k, v in terms.items()})
            if step % max(cfg.log_every, 1) == 0 or step == steps - 1:
                text = " ".join(f"{k} {v:.4f}" for k, v in history[-1].items())
                log(f"{stage} step {step} {text} lr {schedule.get_last_lr()[0]:.2e}")
            state.save_after(offset + step, network=self.network, **parts)
        return history
