"""What a training costs: planned from a config before it runs, counted while it runs
(recorded in the run's ``cost.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = ["Budget", "PlannedStage", "planned_crops"]


@dataclass
class Budget:
    """Optimisation steps and samples (crops) seen, over all stages of a training (the
    steps done before a resume included); the engine counts them."""

    steps: int = 0
    samples: int = 0

    def as_cost(self) -> dict[str, int]:
        return {"train_steps": self.steps, "train_samples": self.samples}


@dataclass(frozen=True)
class PlannedStage:
    """One stage of a training as its config plans it.

    ``crop`` is the training crop (``None`` where the method's own planner picks it, as
    nnU-Net does); ``extra`` marks a stage the recipe adds before the task's common
    budget (pre-training, a representation or autoencoder stage); ``pretraining`` marks
    the runner's cached pre-training (:attr:`~xhbench.methods.base.Method.pretrains`),
    which a run that reuses the cache does not count.
    """

    name: str
    steps: int
    batch: int
    crop: tuple[int, ...] | None
    extra: bool = False
    pretraining: bool = False

    @property
    def crops(self) -> int:
        """Training crops the stage draws (steps x batch)."""
        return self.steps * self.batch

    def describe(self) -> str:
        crop = "x".join(map(str, self.crop)) if self.crop else "planned by the method"
        return f"{self.name}: {self.steps} steps x batch {self.batch} = {self.crops} crops of {crop}"


def planned_crops(stages: Sequence[PlannedStage], *, extra: bool | None = None) -> int:
    """Crops over ``stages`` (only the extra ones, or only the others, when ``extra`` is
    given)."""
    return sum(s.crops for s in stages if extra is None or s.extra == extra)
