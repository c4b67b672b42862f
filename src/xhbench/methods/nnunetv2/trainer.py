"""xhbench's nnU-Net trainer: nnU-Net's own ``nnUNetTrainer`` with the epoch count and
length of the xhbench profile and, for missing-modality tasks, the task's availability draw.

Imported only when nnunetv2 is installed. The class is handed to nnU-Net directly
(nothing is written into the nnunetv2 package).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

__all__ = ["XhbenchTrainer", "configured_trainer"]


class XhbenchTrainer(nnUNetTrainer):
    """nnUNetTrainer with ``schedule`` (``epochs``, ``iterations_per_epoch``,
    ``val_iterations_per_epoch``, ``save_every``) and, when ``masks`` is set, one
    availability mask drawn uniformly per training sample whose missing channels are
    zeroed (after nnU-Net's normalisation, where the task zero-fills after its own)."""

    schedule: Mapping[str, int] = {}
    masks: np.ndarray | None = None  # (settings, channels) bool
    seed: int = 0

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = int(self.schedule.get("epochs", self.num_epochs))
        self.num_iterations_per_epoch = int(self.schedule.get("iterations_per_epoch",
                                                              self.num_iterations_per_epoch))
        self.num_val_iterations_per_epoch = int(self.schedule.get(
            "val_iterations_per_epoch", self.num_val_iterations_per_epoch))
        self.save_every = int(self.schedule.get("save_every", self.save_every))
        self.availability_rng = np.random.default_rng(self.seed)

    def train_step(self, batch: dict) -> dict:
        if self.masks is not None:
            batch = {**batch, "data": zero_missing(batch["data"], self.masks,
                                                   self.availability_rng)}
        return super().train_step(batch)


def zero_missing(data: torch.Tensor, masks: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """``data`` (B, C, ...) with, per sample, the channels of one drawn mask kept and the
    others zeroed."""
    drawn = masks[rng.integers(len(masks), size=data.shape[0])]
    keep = torch.as_tensor(drawn, dtype=data.dtype, device=data.device)
    return data * keep.reshape(*keep.shape, *([1] * (data.ndim - 2)))


def configured_trainer(schedule: Mapping[str, int], masks: Any = None,
                       seed: int = 0) -> type[XhbenchTrainer]:
    """A subclass of :class:`XhbenchTrainer` carrying ``schedule``, ``masks`` and ``seed``
    (nnU-Net builds its trainer from the class and the plans alone)."""
    return type("XhbenchTrainer", (XhbenchTrainer,),
                {"schedule": dict(schedule), "seed": seed,
                 "masks": None if masks is None else np.asarray(masks, dtype=bool)})
