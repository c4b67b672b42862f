"""What a training cost, recorded in the run's ``cost.json``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Budget"]


@dataclass
class Budget:
    """Optimisation steps and samples (crops) seen, over all stages of a training (the
    steps done before a resume included); the engine counts them."""

    steps: int = 0
    samples: int = 0

    def as_cost(self) -> dict[str, int]:
        return {"train_steps": self.steps, "train_samples": self.samples}
