"""The resumable state of a training loop: :class:`TrainingState` is the
load-if-present / save-every-N of the parts (networks, optimisers, schedules) and
torch's RNG that a resumed run continues from. With the batches of
:class:`~xhbench.training.batches.StepBatches` (a pure function of seed and step) a
resumed run ends with the weights of an uninterrupted one, bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["PRETRAINING_STATE", "TRAINING_STATE", "TrainingState", "load_training_state",
           "save_training_state"]

TRAINING_STATE = "training_state.pt"  # in the run folder: the state of fit()
PRETRAINING_STATE = "pretraining_state.pt"  # in the run folder: the state of pretrain()


def save_training_state(path: Path, *, step: int, **parts: Any) -> None:
    """Atomically save ``step``, each part's ``state_dict()`` and torch's RNG states."""
    state = {"step": step, "torch_rng": torch.get_rng_state(),
             "parts": {name: part.state_dict() for name, part in parts.items()}}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_training_state(path: Path, **parts: Any) -> int:
    """Restore what :func:`save_training_state` wrote into ``parts``; return the next step.

    Raises:
        ValueError: the file does not hold the parts expected (another method's state).
    """
    state = torch.load(Path(path), map_location="cpu", weights_only=False)
    missing = sorted(set(parts) - set(state.get("parts", {})))
    if missing:
        raise ValueError(f"training state {path} lacks {', '.join(missing)}")
    for name, part in parts.items():
        part.load_state_dict(state["parts"][name])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["step"])


class TrainingState:
    """The resumable state of one training loop, in the file ``workdir / name``.

    :meth:`resume` restores it when the file exists; :meth:`save_after` saves it every
    ``every`` steps. Nothing is saved when ``every`` is 0, ``workdir`` is None (a method
    trained outside the runner) or ``writes`` is False (a DDP process other than rank 0).
    """

    def __init__(self, workdir: Path | None, name: str, every: int, *, writes: bool = True):
        self.path = None if workdir is None else Path(workdir) / name
        self.every = every if writes and self.path is not None else 0

    def exists(self) -> bool:
        return self.path is not None and self.path.exists()

    def resume(self, log: Callable[[str], None] | None = None, **parts: Any) -> int:
        """Restore ``parts`` and torch's RNG from the file; return the steps it records
        (0 when there is no file: start from the beginning)."""
        if not self.exists():
            return 0
        step = load_training_state(self.path, **parts)
        if log is not None:
            log(f"resumed training at step {step} from {self.path}")
        return step

    def resume_stage(self, done: int, offset: int, steps: int, **parts: Any) -> int:
        """The first step to train of a stage holding steps ``offset`` to ``offset + steps - 1``
        of a loop whose run stopped after ``done`` steps: 0 if it stopped before the stage,
        ``steps`` if after it; within it, the stage's own ``parts`` (its optimisers, made
        afresh for each stage) are restored as well."""
        start = min(max(done - offset, 0), max(steps, 0))
        if 0 < start < steps:
            self.resume(**parts)
        return start

    def save_after(self, step: int, **parts: Any) -> None:
        """After (0-based) step ``step``: save ``parts`` with ``step + 1`` steps done when
        ``every`` divides that."""
        if self.every and (step + 1) % self.every == 0:
            save_training_state(self.path, step=step + 1, **parts)
