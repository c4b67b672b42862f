"""One seed for every source of randomness."""

from __future__ import annotations

import os
import random

import numpy as np

__all__ = ["seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices).

    MONAI's random transforms are seeded from torch's generator by
    ``monai.data.DataLoader``. ``monai.utils.set_determinism`` is not used: it
    also turns off cuDNN autotuning, which costs speed on CUDA.
    """
    import torch

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
