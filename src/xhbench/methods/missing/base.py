"""The shared recipe of the dedicated missing-modality methods (HeMIS, RFNet, mmFormer,
M2FTrans, ...): per-modality encoders, a fusion that sees only the available
modalities, and a training loop that feeds the task's drawn mask to the network.

Networks are called as ``network(image, available)`` with ``image`` (B, M, X, Y, Z)
and ``available`` (B, M) bool. In eval mode they return fused logits; in training
mode a dict of logits: ``"fuse"`` (the segmentation), optionally ``"deep"`` (coarser
fused predictions: deep supervision or RFNet's region probability maps) and
``"sep"`` (one prediction per modality from the segmentation-based regulariser).

Loss (RFNet ``train.py`` and its descendants): for each prediction, a cross-entropy
with per-sample class weights ``1 - (voxels of the class) / (voxels)`` plus a soft
Dice averaged over the classes (pooled over the batch); total =
``w_fuse * fuse + w_sep * sum over modalities + w_deep * sum over scales``, each
weight 1 in the papers, with the fused term switched off for the first
``fusion_warmup_steps`` (RFNet's ``region_fusion_start_epoch``).

Batches: :class:`~xhbench.methods.training.StepBatches` (a pure function of seed and
step). Optimiser: Adam (amsgrad) with weight decay 1e-4, lr ``lr * (1 - step/steps)^0.9``
(the "poly" schedule of the RFNet / mmFormer / M2FTrans code). Inference: MONAI
sliding windows of the training crop, 50% overlap, softmax averaged with constant
weights, argmax; missing channels are replaced by zeros before the network sees them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from tqdm.auto import tqdm

from ...errors import ConfigError
from ..supervised import SupervisedConfig, SupervisedMethod
from ..training import StepBatches

__all__ = [
    "MissingConfig",
    "MissingModalityMethod",
    "segmentation_loss",
    "soft_dice_loss",
    "weighted_cross_entropy",
]


@dataclass
class MissingConfig(SupervisedConfig):
    channels: int = 8  # width of the first encoder level; doubles per level
    levels: int = 4  # encoder levels (the bottleneck is roi / 2^(levels-1))
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: Literal["adam", "adamw"] = "adam"
    amsgrad: bool = True
    schedule: Literal["poly", "warmup_cosine"] = "poly"
    poly_power: float = 0.9
    grad_clip: float = 0.0  # 0: no clipping (the papers' code clips nothing)
    ce_weighting: Literal["inverse_frequency", "none"] = "inverse_frequency"
    w_fuse: float = 1.0
    w_sep: float = 1.0
    w_deep: float = 1.0
    fusion_warmup_steps: int = 0
    sep_on: Literal["all", "available"] = "all"  # modalities the regulariser trains on
    sw_mode: Literal["constant", "gaussian"] = "constant"
    amp: bool = False
    log_every: int = 50


# --- losses --------------------------------------------------------------------------

def _one_hot(label: torch.Tensor, classes: int) -> torch.Tensor:
    return F.one_hot(label[:, 0].long(), classes).movedim(-1, 1).float()


def weighted_cross_entropy(logits: torch.Tensor, onehot: torch.Tensor,
                           weighting: str = "inverse_frequency") -> torch.Tensor:
    """Voxel-averaged cross-entropy; with ``inverse_frequency`` each sample's class c
    weighs ``1 - n_c / n`` (RFNet's ``softmax_weighted_loss``). Probabilities are
    clamped at 0.005 before the log, as in that code."""
    log_p = torch.log(F.softmax(logits.float(), dim=1).clamp(0.005, 1.0))
    if weighting == "none":
        return -(onehot * log_p).sum(dim=1).mean()
    spatial = tuple(range(2, onehot.ndim))
    fraction = onehot.sum(dim=spatial) / onehot.sum(dim=(1, *spatial)).clamp_min(1.0)[:, None]
    weight = (1.0 - fraction).reshape(*fraction.shape, *([1] * len(spatial)))
    return -(weight * onehot * log_p).sum(dim=1).mean()


def soft_dice_loss(logits: torch.Tensor, onehot: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """``1 - mean_c 2 sum(p_c y_c) / (sum p_c + sum y_c)``, sums over batch and voxels."""
    probs = F.softmax(logits.float(), dim=1)
    dims = (0, *range(2, onehot.ndim))
    overlap = (probs * onehot).sum(dim=dims)
    total = probs.sum(dim=dims) + onehot.sum(dim=dims)
    return 1.0 - (2.0 * overlap / (total + eps)).mean()


def segmentation_loss(logits: torch.Tensor, onehot: torch.Tensor,
                      weighting: str = "inverse_frequency") -> torch.Tensor:
    """Weighted CE + soft Dice; coarser logits are upsampled trilinearly to the label."""
    if logits.shape[2:] != onehot.shape[2:]:
        logits = F.interpolate(logits.float(), size=onehot.shape[2:], mode="trilinear",
                               align_corners=False)
    return weighted_cross_entropy(logits, onehot, weighting) + soft_dice_loss(logits, onehot)


# --- the method ------------------------------------------------------------------------

class MissingModalityMethod(SupervisedMethod):
    """A network of per-modality encoders and a masked fusion; see the module doc."""

    handles_missing = True
    Config = MissingConfig

    @property
    def roi_multiple(self) -> int:  # type: ignore[override]
        return 2 ** (self.config.levels - 1)

    def __init__(self, config: Any, spec, device: Any):
        if spec.kind != "segmentation":
            raise ConfigError(f"{self.name} segments; task kind {spec.kind!r} is not supported")
        if config.levels < 2:
            raise ConfigError(f"{self.name}: levels must be at least 2, got {config.levels}")
        super().__init__(config, spec, device)

    def widths(self) -> list[int]:
        """Encoder widths per level, shallow to deep."""
        return [self.config.channels * 2 ** level for level in range(self.config.levels)]

    # training --------------------------------------------------------------------------

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer == "adam":
            return torch.optim.Adam(self.network.parameters(), lr=cfg.lr,
                                    weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad)
        return torch.optim.AdamW(self.network.parameters(), lr=cfg.lr,
                                 weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad)

    def _schedule(self, optimizer: torch.optim.Optimizer):
        cfg = self.config
        if cfg.schedule == "warmup_cosine":
            return super()._schedule(optimizer)
        total = max(cfg.steps, 1)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: max(1.0 - step / total, 0.0) ** cfg.poly_power)

    def loss_terms(self, batch: Mapping[str, Any], step: int | None = None
                   ) -> dict[str, torch.Tensor]:
        """The weighted loss and its parts on one batch (training-mode forward)."""
        cfg = self.config
        image = torch.as_tensor(batch["image"]).to(self.device, torch.float32)
        available = torch.as_tensor(batch["available"]).to(self.device, torch.bool)
        onehot = _one_hot(torch.as_tensor(batch["label"]).to(self.device),
                          len(self.spec.out_channels))
        with self._autocast():
            out = self.network(image, available)
        terms = {"fuse": segmentation_loss(out["fuse"], onehot, cfg.ce_weighting)}
        if out.get("deep"):
            terms["deep"] = sum(segmentation_loss(logits, onehot, cfg.ce_weighting)
                                for logits in out["deep"])
        if out.get("sep"):
            sep = []
            for m, logits in enumerate(out["sep"]):
                if cfg.sep_on == "available":
                    rows = available[:, m]
                    if not rows.any():
                        continue
                    logits, target = logits[rows], onehot[rows]
                else:
                    target = onehot
                sep.append(segmentation_loss(logits, target, cfg.ce_weighting))
            if sep:
                terms["sep"] = sum(sep)
        fuse_weight = 0.0 if step is not None and step < cfg.fusion_warmup_steps else cfg.w_fuse
        weights = {"fuse": fuse_weight, "deep": cfg.w_deep, "sep": cfg.w_sep}
        terms["loss"] = sum(weights[name] * value for name, value in terms.items())
        return terms

    def fit(self, train_data, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        cfg = self.config
        batches = StepBatches(train_data, cfg.batch_size)
        optimizer = self._optimizer()
        schedule = self._schedule(optimizer)
        self.network.train()
        history: list[dict[str, float]] = []
        for step in tqdm(range(cfg.steps), desc=f"train {self.name}", disable=not cfg.progress,
                         unit="step"):
            batch = batches(step)
            optimizer.zero_grad(set_to_none=True)
            terms = self.loss_terms(batch, step)
            loss = terms["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{self.name}: loss is {loss.item()} at step {step}")
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.network.parameters(), cfg.grad_clip)
            optimizer.step()
            schedule.step()
            history.append({name: float(value.detach()) for name, value in terms.items()})
            if step % max(cfg.log_every, 1) == 0 or step == cfg.steps - 1:
                parts = " ".join(f"{k} {v:.4f}" for k, v in history[-1].items())
                log(f"step {step} {parts} lr {schedule.get_last_lr()[0]:.2e}")
        return {"steps": cfg.steps,
                "first_loss": history[0]["loss"] if history else None,
                "last_loss": history[-1]["loss"] if history else None,
                "last_terms": history[-1] if history else None}

    # inference -------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        cfg = self.config
        self.network.eval()
        mask = torch.as_tensor(np.asarray(available, dtype=bool), device=self.device)
        volume = torch.as_tensor(np.asarray(image, dtype=np.float32)[None], device=self.device)
        volume = torch.where(mask[None, :, None, None, None], volume, torch.zeros((), device=self.device))

        def predictor(window: torch.Tensor) -> torch.Tensor:
            with self._autocast():
                logits = self.network(window, mask[None].expand(window.shape[0], -1))
            return F.softmax(logits.float(), dim=1)

        probs = sliding_window_inference(volume, roi_size=tuple(cfg.infer_roi or cfg.roi),
                                         sw_batch_size=cfg.sw_batch_size, predictor=predictor,
                                         overlap=cfg.sw_overlap, mode=cfg.sw_mode)
        return probs.argmax(dim=1)[0].cpu().numpy().astype(np.int64)

