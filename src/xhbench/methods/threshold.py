"""``threshold``: the segmentation reference rows that need no network.

- **PET** (``autopet_seg``): the classic fixed rule, lesion = SUV >= ``suv`` (2.5) inside
  the body. SUV is read back from the task's PET window (``TaskSpec.windows``); the body is
  the task's own (CT > ``body_hu`` HU, holes filled per axial slice, largest component)
  when the CT is an input, else every voxel (PET-only input). ``fit`` learns nothing.
- **FLAIR** (``brats18_missing``): whole tumour = FLAIR hyperintensity, FLAIR (z-scored by
  the task) >= a threshold inside the brain (FLAIR non-zero), predicted as edema, so only
  WT can be found (TC and ET are never predicted). ``fit`` learns the threshold on the
  training split: the value of a grid (``grid_low`` to ``grid_high``, step ``grid_step``)
  with the highest Dice of WT pooled over ``crops_per_case`` training crops per case (the
  task's crops: centred on the tumour two times in three, intensity-jittered). In a setting
  without FLAIR it predicts no tumour at all (every voxel background).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ConfigError
from ..imaging import body_mask, from_window
from ..options import option
from .base import Method

__all__ = ["Threshold", "best_threshold"]


def best_threshold(grid: np.ndarray, above_in_mask: np.ndarray, above_in_target: np.ndarray,
                   target_size: int) -> tuple[float, float]:
    """``(threshold, dice)`` of the grid value with the highest pooled Dice, where
    ``above_in_mask[k]`` counts voxels >= ``grid[k]`` in the mask, ``above_in_target[k]``
    those also in the target, of ``target_size`` target voxels (ties: the lowest value)."""
    denominator = above_in_mask + target_size
    dice = np.where(denominator > 0, 2.0 * above_in_target / np.maximum(denominator, 1), 0.0)
    best = int(np.argmax(dice))
    return float(grid[best]), float(dice[best])


def count_at_least(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """How many ``values`` are >= each grid value."""
    return len(values) - np.searchsorted(np.sort(values), grid, side="left")


@dataclass
class ThresholdConfig:
    # training crops the FLAIR threshold sees
    roi: tuple[int, int, int] = option((128, 128, 128), ge=1)
    crops_per_case: int = option(4, ge=1)
    suv: float = option(2.5, gt=0)  # PET rule
    body_hu: float = -500.0  # PET rule: the body's CT threshold (as the task's)
    grid_low: float = -1.0  # FLAIR rule: candidate thresholds (z-score units)
    grid_high: float = 6.0
    grid_step: float = option(0.05, gt=0)

    def validate(self) -> None:
        if not self.grid_low < self.grid_high:
            raise ConfigError(f"options grid_low={self.grid_low:g} and "
                              f"grid_high={self.grid_high:g}: grid_low must be < grid_high")


class Threshold(Method):
    """Lesion = SUV >= 2.5 in the body (PET tasks); WT = FLAIR >= a learned value (BraTS)."""

    name = "threshold"
    Config = ThresholdConfig
    handles_missing = True  # reads FLAIR only where the setting has it (and trains on it)
    profiles = {"smoke": {"roi": (32, 32, 32), "crops_per_case": 1}, "default": {},
                "paper": {}}

    @classmethod
    def training_plan(cls, config: Any) -> list:
        """None: a threshold is counted, not optimised (a reference row)."""
        return []

    def __init__(self, config: Any, spec, device: Any):
        super().__init__(config, spec, device)
        names = [name.lower() for name in spec.in_channels]
        if spec.kind != "segmentation":
            raise ConfigError("threshold segments: it needs a segmentation task")
        if "pet" in names and "PET" in spec.windows:
            self.rule = "pet"
        elif "flair" in names and "ed" in spec.out_channels:
            self.rule = "flair"
        else:
            raise ConfigError(f"threshold has no rule for inputs {spec.in_channels} and "
                              f"classes {spec.out_channels} (needs PET with its SUV window, "
                              "or FLAIR with an edema class)")
        self.channel = names.index(self.rule)
        self.flair_threshold: float | None = None
        if self.rule == "pet" and "CT" in spec.windows:
            low, high = spec.windows["CT"]
            if not low < config.body_hu < high:
                raise ConfigError(f"method threshold option body_hu={config.body_hu:g}: must "
                                  f"lie inside the task's CT window ({low:g}, {high:g}) HU")

    def fit(self, train_data: Any, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        if self.rule == "pet":
            log(f"threshold: fixed rule SUV >= {self.config.suv:g} in the body")
            return {"rule": f"SUV >= {self.config.suv:g}", "steps": 0}
        from ..training.batches import StepBatches

        cfg = self.config
        grid = np.arange(cfg.grid_low, cfg.grid_high + cfg.grid_step / 2, cfg.grid_step)
        in_mask, in_target, target_size = np.zeros(len(grid)), np.zeros(len(grid)), 0
        batches = StepBatches(train_data, batch_size=1)
        crops = cfg.crops_per_case * len(train_data)
        for step in range(crops):
            batch = batches(step)
            flair = np.asarray(batch["image"][0, self.channel], dtype=np.float32)
            brain = (np.asarray(batch["foreground"][0, 0]) > 0) & (flair != 0)
            tumour = brain & (np.asarray(batch["label"][0, 0]) > 0)
            in_mask += count_at_least(flair[brain], grid)
            in_target += count_at_least(flair[tumour], grid)
            target_size += int(tumour.sum())
        if target_size == 0:
            raise ConfigError(f"threshold: no tumour voxel in {crops} training crops")
        self.flair_threshold, dice = best_threshold(grid, in_mask, in_target, target_size)
        log(f"threshold: WT = FLAIR >= {self.flair_threshold:.2f} (pooled training Dice "
            f"{dice:.3f} over {crops} crops)")
        return {"rule": "FLAIR >= threshold", "flair_threshold": self.flair_threshold,
                "train_dice": dice, "crops": crops}

    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        out = np.zeros(image.shape[1:], dtype=np.int64)
        if not available[self.channel]:
            return out  # FLAIR rule without FLAIR: no tumour
        values = image[self.channel]
        if self.rule == "pet":
            low, high = self.spec.windows["PET"]
            region = from_window(values, low, high) >= self.config.suv
            body = self._body(image, available)
            out[region & body] = 1
        else:
            if self.flair_threshold is None:
                raise ConfigError("threshold: predict before fit (no FLAIR threshold learned)")
            out[(values >= self.flair_threshold) & (values != 0)] = \
                self.spec.out_channels.index("ed")
        return out

    def _body(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        """The task's body mask from the CT input, or every voxel without one."""
        names = list(self.spec.in_channels)
        if "CT" not in names or not available[names.index("CT")]:
            return np.ones(image.shape[1:], dtype=bool)
        ct = from_window(image[names.index("CT")], *self.spec.windows["CT"])
        return body_mask(ct, self.config.body_hu)

    def state_dict(self) -> dict[str, Any]:
        return {"flair_threshold": self.flair_threshold}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.flair_threshold = state["flair_threshold"]
