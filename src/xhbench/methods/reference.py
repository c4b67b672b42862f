"""Reference rows for the transfer tasks that need no training: ``identity`` and ``histmatch``.

They give every learned method's number a floor to be read against ("what does no learning
score?"). Both work on the task's normalised volumes: the source modality as the task
normalised it (BraTS: z-scored over the brain; PET/CT: its window mapped to [0, 1]) is
already in the units the target is normalised to, so no further conversion is made.

- ``identity`` predicts every target as the source itself.
- ``histmatch`` maps the source onto each target's intensity distribution, learned from
  the training split (quantile mapping, as :func:`skimage.exposure.match_histograms`):
  ``fit`` pools the target's foreground voxels of ``crops_per_case`` training crops per
  case; ``predict`` sends each source voxel's quantile (among the case's non-zero source
  voxels) to the pooled target's value at that quantile. Voxels where the source is 0
  (background after the task's normalisation) stay 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ConfigError
from .base import Method

__all__ = ["HistMatch", "Identity", "match_to_template", "quantile_template"]


def _source_channel(available: tuple[bool, ...], method: str) -> int:
    present = [c for c, ok in enumerate(available) if ok]
    if len(present) != 1:
        raise ConfigError(f"{method} maps one source modality; setting has {len(present)}")
    return present[0]


class _NoTraining(Method):
    """A synthesis reference: no network, nothing to pre-train."""

    @classmethod
    def training_plan(cls, config: Any) -> list:
        """None: a reference row learns nothing by optimisation."""
        return []

    def __init__(self, config: Any, spec, device: Any):
        super().__init__(config, spec, device)
        if spec.kind != "synthesis" or tuple(spec.in_channels) != tuple(spec.out_channels):
            raise ConfigError(f"{self.name} is a transfer reference: it needs a synthesis task "
                              "whose inputs and targets are the same modalities")


@dataclass
class IdentityConfig:
    roi: tuple[int, int, int] = (16, 16, 16)  # unused: identity reads no training crop


class Identity(_NoTraining):
    """Every target predicted as the (normalised) source: the floor of no translation."""

    name = "identity"
    Config = IdentityConfig
    profiles = {"smoke": {}, "default": {}, "paper": {}}

    def fit(self, train_data: Any, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        return {"steps": 0}

    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        source = image[_source_channel(available, self.name)].astype(np.float32)
        return np.repeat(source[None], len(self.spec.out_channels), axis=0)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None


def quantile_template(values: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """``(values, quantiles)`` of a sample's empirical distribution: its sorted distinct
    values and their cumulative share (as ``skimage.exposure.match_histograms`` builds its
    template), thinned to at most ``points`` evenly spaced entries (the last kept)."""
    distinct, counts = np.unique(np.asarray(values, dtype=np.float64), return_counts=True)
    quantiles = np.cumsum(counts) / counts.sum()
    if len(distinct) > points:
        keep = np.unique(np.linspace(0, len(distinct) - 1, points).round().astype(int))
        distinct, quantiles = distinct[keep], quantiles[keep]
    return distinct, quantiles


def match_to_template(source: np.ndarray, values: np.ndarray,
                      quantiles: np.ndarray) -> np.ndarray:
    """Each source value sent to the template's value at its quantile in ``source``
    (cumulative share of source values up to it), interpolated linearly."""
    distinct, inverse, counts = np.unique(np.asarray(source, dtype=np.float64),
                                          return_inverse=True, return_counts=True)
    source_quantiles = np.cumsum(counts) / counts.sum()
    return np.interp(source_quantiles, quantiles, values)[inverse.ravel()].reshape(source.shape)


@dataclass
class HistMatchConfig:
    roi: tuple[int, int, int] = (96, 96, 96)  # training crop the statistics are pooled from
    crops_per_case: int = 4
    values_per_crop: int = 200_000  # foreground voxels kept per crop and channel (random)
    template_points: int = 4096  # quantile points stored per target


class HistMatch(_NoTraining):
    """The source mapped onto each target's intensity histogram of the training split."""

    name = "histmatch"
    Config = HistMatchConfig
    profiles = {"smoke": {"roi": (32, 32, 32), "crops_per_case": 1}, "default": {},
                "paper": {}}

    def __init__(self, config: Any, spec, device: Any):
        super().__init__(config, spec, device)
        self.templates: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def fit(self, train_data: Any, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        from ..training.batches import StepBatches

        cfg = self.config
        batches = StepBatches(train_data, batch_size=1)
        rng = np.random.default_rng(0)
        pooled: dict[str, list[np.ndarray]] = {name: [] for name in self.spec.out_channels}
        crops = cfg.crops_per_case * len(train_data)
        for step in range(crops):
            batch = batches(step)
            target = np.asarray(batch["target"][0], dtype=np.float32)
            foreground = np.asarray(batch["foreground"][0, 0]) > 0
            for c, name in enumerate(self.spec.out_channels):
                values = target[c][foreground]
                if len(values) > cfg.values_per_crop:
                    values = rng.choice(values, cfg.values_per_crop, replace=False)
                pooled[name].append(values)
        for name, parts in pooled.items():
            values = np.concatenate(parts)
            if values.size == 0:
                raise ConfigError(f"histmatch: no foreground voxel of {name} in {crops} "
                                  "training crops")
            self.templates[name] = quantile_template(values, cfg.template_points)
        log(f"histmatch: target histograms from {crops} training crops")
        return {"crops": crops, "voxels": {name: int(sum(map(len, parts)))
                                           for name, parts in pooled.items()}}

    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        source = image[_source_channel(available, self.name)]
        inside = source != 0
        out = np.zeros((len(self.spec.out_channels), *source.shape), dtype=np.float32)
        if inside.any():
            for c, name in enumerate(self.spec.out_channels):
                out[c][inside] = match_to_template(source[inside], *self.templates[name])
        return out

    def state_dict(self) -> dict[str, Any]:
        return {name: {"values": values, "quantiles": quantiles}
                for name, (values, quantiles) in self.templates.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        missing = set(self.spec.out_channels) - set(state)
        if missing:
            raise KeyError(f"histmatch state lacks {', '.join(sorted(missing))}")
        self.templates = {name: (np.asarray(state[name]["values"]),
                                 np.asarray(state[name]["quantiles"]))
                          for name in self.spec.out_channels}
