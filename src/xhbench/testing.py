"""Helpers for testing xhbench and its plugins: fake methods and a contract check.

Plugin authors call :func:`check_method_contract` in their own tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .methods.base import Method
from .tasks.base import TaskSpec

__all__ = ["FakeMethod", "check_method_contract"]


@dataclass
class FakeConfig:
    roi: tuple[int, int, int] = (32, 32, 32)
    threshold: float = 1.0
    channel: int = 0


class FakeMethod(Method):
    """Labels voxels whose first available channel exceeds a threshold; trains nothing.

    Needs no torch, so plugin and harness tests run in a blink.
    """

    name = "fake"
    Config = FakeConfig
    profiles = {"smoke": {}, "default": {}, "paper": {}}

    def fit(self, train_data: Any, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        log(f"{self.name}: nothing to train ({len(train_data)} samples)")
        return {"steps": 0}

    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        present = [c for c, ok in enumerate(available) if ok]
        channel = self.config.channel if available[self.config.channel] else present[0]
        out = np.zeros(image.shape[1:], dtype=np.int64)
        out[image[channel] > self.config.threshold] = len(self.spec.out_channels) - 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"threshold": self.config.threshold}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.config.threshold = float(state["threshold"])




def check_method_contract(method_cls: type, spec: TaskSpec | None = None,
                          shape: tuple[int, int, int] = (32, 32, 32)) -> None:
    """Build a method with its smoke profile and predict one random volume on CPU.

    Raises:
        AssertionError: wrong output shape or dtype, labels out of range, NaN.
    """
    import torch

    from .harness.config import resolve

    spec = spec or TaskSpec("contract", "segmentation", ("a", "b", "c", "d"),
                            ("background", "x", "y", "z"))
    config = resolve(method_cls.__name__, method_cls.Config, method_cls.profiles, "smoke")
    method = method_cls(config, spec, torch.device("cpu"))
    image = np.random.default_rng(0).normal(size=(len(spec.in_channels), *shape)).astype(np.float32)
    for available in ((True,) * len(spec.in_channels), (True,) + (False,) * (len(spec.in_channels) - 1)):
        prediction = method.predict(image, available)
        assert prediction.shape == shape, f"prediction shape {prediction.shape} != {shape}"
        assert np.issubdtype(prediction.dtype, np.integer), f"dtype {prediction.dtype} not integer"
        assert prediction.min() >= 0 and prediction.max() < len(spec.out_channels), \
            "class index out of range"
