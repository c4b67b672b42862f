"""Supervised training of a MONAI network: the shared recipe of the backbone baselines.

Subclasses only build the network. Training: AdamW, linear warm-up then cosine
decay, gradient clipping; Dice + cross-entropy (softmax over classes) for
segmentation, L1 or MSE over the foreground (background excluded, as the paper
states) for synthesis; bf16 autocast on CUDA. Inference: MONAI sliding windows
with Gaussian blending over the whole volume; :meth:`SupervisedMethod.predict_settings`
puts a case's inputs for all settings through the sliding windows as one batch.

CUDA path: bf16 autocast (``amp``), batches and volumes copied from pinned host memory
with non-blocking copies, optional ``torch.compile`` of the network (``compile``);
``cudnn.benchmark`` is the runner's (set unless ``--deterministic``).

Training runs in the engine (:mod:`xhbench.training.engine`), data-parallel under
torchrun. Hooks a subclass may override: ``_optimizer``, ``_schedule`` (stepped once
per training step), ``training_step`` (the loss terms of one batch), ``_loss`` /
``_segmentation_loss`` / ``_synthesis_loss`` (called with whatever the network returns
in training mode, e.g. deep-supervision heads).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.optimizers import WarmupCosineSchedule
from ..errors import ConfigError
from ..options import option
from ..training.batches import StepBatches
from ..training.engine import Engine, Stage
from ..training.state import TRAINING_STATE
from .base import Method

__all__ = ["SETTINGS_BATCH_BYTES", "TRAINING_STATE", "SupervisedConfig", "SupervisedMethod"]

# Host and device memory that one batched call of predict_settings may fill with its
# stacked inputs and stitched outputs; more settings are predicted in several groups.
SETTINGS_BATCH_BYTES = 4 * 1024**3


@dataclass
class SupervisedConfig:
    roi: tuple[int, int, int] = option((64, 64, 64), ge=1)
    batch_size: int = option(2, ge=1)
    steps: int = option(600, ge=1)
    lr: float = option(1e-3, gt=0)
    weight_decay: float = option(1e-5, ge=0)
    warmup_steps: int = option(50, ge=0)
    grad_clip: float = option(1.0, ge=0)  # 0: no clipping
    infer_roi: tuple[int, int, int] | None = option(None, ge=1)  # sliding window; None: roi
    sw_overlap: float = option(0.5, ge=0, lt=1)
    sw_batch_size: int = option(4, ge=1)
    synthesis_loss: Literal["l1", "mse"] = "l1"
    amp: bool = True  # bf16 autocast, CUDA only
    compile: bool = False  # torch.compile the network (nn.Module.compile; same state_dict)
    checkpoint_every: int = option(100, ge=0)  # steps between resumable states; 0: never
    progress: bool = True


class SupervisedMethod(Method):
    """A network trained on the task's samples with one loss; no pre-training."""

    def __init__(self, config: Any, spec, device: Any):
        super().__init__(config, spec, device)
        for option in ("roi", "infer_roi"):
            sizes = getattr(config, option)
            if sizes is not None and any(size % self.roi_multiple for size in sizes):
                raise ConfigError(f"{self.name}: {option} {tuple(sizes)} must be divisible by "
                                  f"{self.roi_multiple}")
        self.network = self.build_network(len(spec.in_channels), len(spec.out_channels))
        self.network.to(self.device)
        if getattr(config, "compile", False):
            # In place: calls go through the compiled forward, parameter names and the
            # state_dict stay those of the plain module (checkpoints are interchangeable).
            self.network.compile()

    @abstractmethod
    def build_network(self, in_channels: int, out_channels: int) -> torch.nn.Module:
        """The MONAI network for this method."""

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.network.parameters() if p.requires_grad)

    @classmethod
    def trains_distributed(cls) -> bool:
        """True: training runs in the engine, which shards each step's batch over the
        processes under torchrun."""
        return True

    def _autocast(self):
        enabled = self.config.amp and self.device.type == "cuda"
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _to_device(self, data: Any) -> torch.Tensor:
        """``data`` (array or tensor) on the method's device: on CUDA through pinned host
        memory with a non-blocking copy; on a CPU device unchanged (no copy)."""
        tensor = torch.as_tensor(data)
        if self.device.type == "cuda" and tensor.device.type == "cpu":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def fit(self, train_data, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        cfg = self.config
        batches = StepBatches(train_data, cfg.batch_size)
        self._train_loss = self._loss()
        optimizer = self._optimizer()
        stage = Stage("train", cfg.steps, batches, self.training_step,
                      optimizers={"optimizer": optimizer},
                      schedules={"schedule": self._schedule(optimizer)},
                      model=self.network, grad_clip=cfg.grad_clip, amp=cfg.amp)
        engine = Engine(self.name, self.device, workdir, log,
                        checkpoint_every=cfg.checkpoint_every, budget=self.budget)
        start = engine.resume(network=self.network)
        losses = [record["loss"] for record in engine.run(stage)]
        return {"steps": cfg.steps, "resumed_at": start,
                "first_loss": losses[0] if losses else None,
                "last_loss": losses[-1] if losses else None}

    def training_step(self, batch: Mapping[str, Any], step: int) -> dict[str, torch.Tensor]:
        """The loss (:meth:`_loss`) of the network on one batch."""
        return {"loss": self._train_loss(self.network(self._to_device(batch["image"])), batch)}

    def _optimizer(self) -> torch.optim.Optimizer:
        """The optimiser (hook; default AdamW with the config's lr and weight decay)."""
        return torch.optim.AdamW(self.network.parameters(), lr=self.config.lr,
                                 weight_decay=self.config.weight_decay)

    def _schedule(self, optimizer: torch.optim.Optimizer):
        """The per-step learning-rate schedule (hook; default linear warm-up, cosine decay)."""
        cfg = self.config
        return WarmupCosineSchedule(optimizer, warmup_steps=min(cfg.warmup_steps, cfg.steps),
                                    t_total=max(cfg.steps, 1))

    def _loss(self) -> Callable[[Any, Mapping[str, torch.Tensor]], torch.Tensor]:
        """``loss(output, batch)`` on what the network returns in training mode (hook:
        a network with deep supervision may return several outputs)."""
        if self.spec.kind == "segmentation":
            return self._segmentation_loss()
        return self._synthesis_loss()

    def _segmentation_loss(self) -> Callable[[torch.Tensor, Mapping[str, torch.Tensor]],
                                             torch.Tensor]:
        """Dice + cross-entropy, softmax over the classes, against ``batch["label"]``."""
        dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
        return lambda output, batch: dice_ce(output, batch["label"].to(output.device))

    def _synthesis_loss(self) -> Callable[[torch.Tensor, Mapping[str, torch.Tensor]],
                                          torch.Tensor]:
        """L1 or MSE to ``batch["target"]`` over ``batch["foreground"]`` (background excluded)."""
        power = 1 if self.config.synthesis_loss == "l1" else 2

        def masked(output: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
            target = batch["target"].to(output.device)
            weight = batch["foreground"].to(output.device).expand_as(target)
            error = (output.float() - target).abs() ** power
            return (error * weight).sum() / weight.sum().clamp_min(1.0)

        return masked

    def _sliding_window(self, batch: torch.Tensor) -> torch.Tensor:
        """Network outputs ``(B, K, X, Y, Z)`` of the volumes ``batch`` ``(B, C, X, Y, Z)``:
        MONAI sliding windows with Gaussian blending; the windows of all B volumes are
        pooled, ``sw_batch_size`` of them per forward pass."""
        with self._autocast():
            return sliding_window_inference(
                batch, roi_size=tuple(self.config.infer_roi or self.config.roi),
                sw_batch_size=self.config.sw_batch_size,
                predictor=self.network, overlap=self.config.sw_overlap, mode="gaussian")

    def _to_predictions(self, outputs: torch.Tensor) -> list[np.ndarray]:
        """One prediction per item of ``outputs`` ``(B, K, X, Y, Z)``."""
        if self.spec.kind == "synthesis":
            return list(outputs.float().cpu().numpy())
        return list(outputs.argmax(dim=1).cpu().numpy().astype(np.int64))

    @torch.no_grad()
    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        self.network.eval()
        return self._to_predictions(self._sliding_window(self._to_device(image[None])))[0]

    @torch.no_grad()
    def predict_settings(self, images, availables) -> list[np.ndarray]:
        """All settings' inputs (the task's zero-filled copies) through the sliding windows
        as one batch: MONAI pools the windows of every setting and runs ``sw_batch_size``
        of them per forward pass, so the batch size (memory per pass) is the one
        :meth:`predict` uses. Settings are grouped so that a group's stacked inputs and
        stitched outputs stay within ``SETTINGS_BATCH_BYTES``.

        Equal to calling :meth:`predict` per setting up to the float rounding of a
        convolution run with another batch composition (the windows of a forward pass
        come from several settings; the per-setting loop's last pass is smaller).
        """
        if type(self).predict is not SupervisedMethod.predict:
            return super().predict_settings(images, availables)  # a subclass's own predict
        if len(images) != len(availables):
            raise ValueError(f"predict_settings got {len(images)} inputs for "
                             f"{len(availables)} settings")
        self.network.eval()
        count = len(availables)
        if count == 0:
            return []
        first = np.asarray(images[0])
        per_setting = first.dtype.itemsize * first[0].size * (
            first.shape[0] + len(self.spec.out_channels))
        group = int(max(1, min(count, SETTINGS_BATCH_BYTES // max(per_setting, 1))))
        predictions: list[np.ndarray] = []
        for start in range(0, count, group):
            stop = min(count, start + group)
            arrays = [first if i == 0 else np.asarray(images[i]) for i in range(start, stop)]
            first = None
            batch = self._to_device(np.stack(arrays))
            del arrays
            predictions.extend(self._to_predictions(self._sliding_window(batch)))
            del batch
        return predictions

    def state_dict(self) -> dict[str, Any]:
        return {"network": self.network.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
