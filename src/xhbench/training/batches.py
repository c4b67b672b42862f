"""Reproducible training batches: batch number ``step`` is a pure function of ``(seed, step)``.

Each epoch is a seeded permutation of the training set and each sample's random
transforms are seeded from ``(seed, step, slot)``. So a run killed at step k and
resumed from its checkpoint sees exactly the batches an uninterrupted run sees, and
``itertools.cycle``'s trap (replaying the first epoch's augmentations forever)
cannot happen.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from monai.data import get_track_meta, list_data_collate, set_track_meta
from monai.data.utils import set_rnd

__all__ = ["StepBatches"]


class StepBatches:
    """``batches(step)`` -> the collated batch of that step.

    Args:
        dataset: a map-style dataset whose random transforms are MONAI ``Randomizable``.
        batch_size: samples per step (the last batch of an epoch may be smaller).
        seed: base seed; defaults to torch's initial seed, which the runner sets.
    """

    def __init__(self, dataset: Any, batch_size: int, seed: int | None = None):
        if len(dataset) == 0:
            raise ValueError("no training samples")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = torch.initial_seed() % 2**32 if seed is None else seed
        self.per_epoch = math.ceil(len(dataset) / batch_size)

    def __call__(self, step: int):
        epoch, position = divmod(step, self.per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))
        chosen = order[position * self.batch_size:(position + 1) * self.batch_size]
        tracking = get_track_meta()
        set_track_meta(False)  # plain tensors: no transform is ever inverted, and MONAI's
        try:                   # metadata tracking costs more than the transforms themselves
            samples = []
            for slot, index in enumerate(chosen):
                set_rnd(self.dataset, int(np.random.default_rng([self.seed, step, slot])
                                          .integers(2**31)))
                samples.append(self.dataset[int(index)])
            return list_data_collate(samples)
        finally:
            set_track_meta(tracking)

    def size(self, step: int) -> int:
        """The number of samples in batch ``step`` (without drawing it)."""
        position = step % self.per_epoch
        return min(self.batch_size, len(self.dataset) - position * self.batch_size)
