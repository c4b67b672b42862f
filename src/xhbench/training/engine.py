"""The training engine: the one loop every method trains in.

A method describes each phase of its training as a :class:`Stage` (its batches, its
``training_step``, its optimisers and schedules) and hands it to :meth:`Engine.run`,
which runs, for each step ``start .. steps - 1``::

    batch = batches(offset + step)             # a pure function of seed and step
    keep this process's slots of it            # under torchrun (training.parallel)
    zero the gradients
    terms = training_step(batch, step)         # under autocast (bf16, CUDA, amp)
    loss = terms["loss"], or the sum of the terms
    not finite -> TrainingError naming the step, the terms and the last checkpoint
    backward, gradient clipping, optimiser steps, schedule steps
    a row of history.csv, a log line every log_every steps, the progress bar
    the resumable training state every checkpoint_every steps

With ``manual`` optimisation (GANs: several optimisers, several backward passes per
step) ``training_step`` zeroes, back-propagates (:func:`manual_backward`) and steps
its optimisers itself and returns its terms for the record; everything else (resume,
schedules, finite check, history, logging, progress, state) is the engine's.

Several stages may share one training state (a two-stage method): the parts given to
:meth:`Engine.resume` (the networks) are saved with every stage's own parts, and a
stage holding steps ``offset .. offset + steps - 1`` of the whole resumes where the
run stopped (:meth:`~xhbench.training.state.TrainingState.resume_stage`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..errors import TrainingError, UsageError
from . import parallel
from .batches import StepBatches
from .budget import Budget
from .history import HISTORY, History
from .state import TRAINING_STATE, TrainingState

__all__ = ["Engine", "Stage", "manual_backward"]

TrainingStep = Callable[[Mapping[str, Any], int], Mapping[str, torch.Tensor]]


@dataclass
class Stage:
    """One phase of training.

    Args:
        name: ``stage`` in ``history.csv`` and the log ("train", "pretrain", ...).
        steps: optimisation steps of the stage.
        batches: ``batches(step)`` -> the collated batch of that step (``StepBatches``).
        training_step: ``(batch, step) -> loss terms`` (tensors); the entry ``loss``,
            when present, is the objective, else the sum of the terms is.
        optimizers, schedules: by name (the names they are saved under); schedules are
            stepped once per step, after the optimisers.
        model: the module trained: put in train mode, wrapped in DDP under torchrun.
        grad_clip: clip the gradient norm of the optimisers' parameters (0: never).
        amp: bf16 autocast around ``training_step`` on CUDA.
        manual: ``training_step`` optimises itself (see the module doc).
        state: further objects saved with the stage (``state_dict`` / ``load_state_dict``).
        offset: steps of the stages before this one that share the training state.
    """

    name: str
    steps: int
    batches: StepBatches
    training_step: TrainingStep
    optimizers: Mapping[str, torch.optim.Optimizer]
    schedules: Mapping[str, Any] = field(default_factory=dict)
    model: torch.nn.Module | None = None
    grad_clip: float = 0.0
    amp: bool = False
    manual: bool = False
    state: Mapping[str, Any] = field(default_factory=dict)
    offset: int = 0

    def parts(self) -> dict[str, Any]:
        return {**self.optimizers, **self.schedules, **self.state}

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for optimizer in self.optimizers.values()
                for group in optimizer.param_groups for p in group["params"]]


def manual_backward(loss: torch.Tensor) -> None:
    """Back-propagate ``loss`` inside a manual-optimisation ``training_step``."""
    loss.backward()


class Engine:
    """Runs a method's stages; see the module doc.

    Args:
        name: the method's name (log lines, progress bar, errors).
        device: where the method trains (autocast is on CUDA only).
        workdir: the run folder (training state, ``history.csv``); None writes nothing.
        log: where log lines go.
        state_file: the training state's file name in ``workdir``.
        checkpoint_every: steps between saved training states (0: never).
        log_every: steps between log lines.
        budget: counts the steps and samples of every stage run.
    """

    def __init__(self, name: str, device: torch.device, workdir: Path | None,
                 log: Callable[[str], None], *, state_file: str = TRAINING_STATE,
                 checkpoint_every: int = 0, log_every: int = 50, budget: Budget | None = None):
        main = parallel.is_main()
        self.name, self.device, self.log = name, torch.device(device), log
        self.log_every = max(log_every, 1)
        self.state = TrainingState(workdir, state_file, checkpoint_every, writes=main)
        self.history = History(Path(workdir) / HISTORY if workdir is not None and main
                               else None)
        self.budget = budget if budget is not None else Budget()
        self.parts: dict[str, Any] = {}
        self.done = 0

    def resume(self, **parts: Any) -> int:
        """Restore ``parts`` (what every stage saves: the networks) and torch's RNG from the
        training state; return the steps it records (0 without one: a fresh start)."""
        self.parts = dict(parts)
        self.done = self.state.resume(self.log, **parts)
        return self.done

    def run(self, stage: Stage) -> list[dict[str, float]]:
        """Train ``stage`` from where the run stopped; return the loss terms (``loss``
        first) of each step run now."""
        world = parallel.world_size()
        if world > 1 and stage.manual:
            raise UsageError(f"{self.name}: manual optimisation trains in one process only")
        own = stage.parts()
        start = self.state.resume_stage(self.done, stage.offset, stage.steps, **own)
        self._count_before(stage, start)
        self.history.restart(stage.name, start)
        forward = self._forward(stage, world)
        if stage.model is not None:
            stage.model.train()
        if world > stage.batches.batch_size:
            self.log(f"batch_size {stage.batches.batch_size} < {world} processes: some stay "
                     "idle each step")
        bar = sys.stderr.isatty() and parallel.is_main()
        records: list[dict[str, float]] = []
        steps = tqdm(range(start, stage.steps), initial=start, total=stage.steps,
                     desc=f"{stage.name} {self.name}", unit="step", disable=not bar)
        redirect = (logging_redirect_tqdm([logging.getLogger("xhbench")]) if bar
                    else contextlib.nullcontext())
        with redirect:
            for step in steps:
                record, lr = self._step(stage, forward, step, world)
                records.append(record)
                terms = {k: v for k, v in record.items() if k != "loss"}
                self.history.append(stage.name, step, lr, record["loss"], terms)
                if bar:
                    steps.set_postfix(loss=f"{record['loss']:.4f}", refresh=False)
                if step % self.log_every == 0 or step == stage.steps - 1:
                    text = " ".join(f"{k} {v:.4f}" for k, v in record.items())
                    self.log(f"{stage.name} step {step} {text} lr {lr:.2e}")
                self.state.save_after(stage.offset + step, **self.parts, **own)
        return records

    # --- one step ---------------------------------------------------------------------

    def _step(self, stage: Stage, forward: TrainingStep, step: int,
              world: int) -> tuple[dict[str, float], float]:
        batch = stage.batches(stage.offset + step)
        self.budget.steps += 1
        self.budget.samples += parallel.batch_length(batch)
        weight = 1.0
        if world > 1:
            batch, weight = parallel.rank_share(batch)
        lr = _lr(stage)
        if not stage.manual:
            for optimizer in stage.optimizers.values():
                optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                            enabled=stage.amp and self.device.type == "cuda"):
            terms = dict(forward(batch, step))
        loss = terms.pop("loss") if "loss" in terms else sum(terms.values())
        if world > 1:  # DDP averages weight * loss: the global batch's mean loss
            loss = loss * weight
            record = {"loss": float(parallel.mean_over_ranks(loss))}
            record.update({k: float(parallel.mean_over_ranks(torch.as_tensor(v) * weight))
                           for k, v in terms.items()})
        else:
            record = {"loss": _value(loss), **{k: _value(v) for k, v in terms.items()}}
        checked = record.values() if stage.manual else [record["loss"]]
        if not all(math.isfinite(value) for value in checked):
            raise self._diverged(stage, step, record)
        if not stage.manual:
            loss.backward()
            if stage.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(stage.parameters(), stage.grad_clip)
            for optimizer in stage.optimizers.values():
                optimizer.step()
        with warnings.catch_warnings():  # manual: an optimiser a step did not use
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step\\(\\)`")
            for schedule in stage.schedules.values():
                schedule.step()
        return record, lr

    def _forward(self, stage: Stage, world: int) -> TrainingStep:
        """``training_step``, through DDP under torchrun (whose gradient all-reduce hooks
        need the forward pass to go through the wrapper)."""
        if world == 1:
            return stage.training_step
        if stage.model is None:
            raise UsageError(f"{self.name} {stage.name}: data-parallel training needs the "
                             "stage's model")
        return parallel.wrap(_StepModule(stage.model, stage.training_step), self.device)

    def _count_before(self, stage: Stage, start: int) -> None:
        """Count the steps and samples of a stage's steps done before a resume."""
        self.budget.steps += start
        self.budget.samples += sum(stage.batches.size(stage.offset + step)
                                   for step in range(start))

    def _diverged(self, stage: Stage, step: int, record: Mapping[str, float]) -> TrainingError:
        kept = (f"last good checkpoint: {self.state.path}" if self.state.exists()
                else "no checkpoint was written yet")
        terms = ", ".join(f"{name} {value:.4g}" for name, value in record.items()
                          if name != "loss")
        return TrainingError(f"{self.name} {stage.name}: loss is {record['loss']} at step "
                             f"{step}; {kept}" + (f"; loss terms: {terms}" if terms else ""))


class _StepModule(torch.nn.Module):
    """``model`` with ``training_step`` as its forward, for DDP to wrap."""

    def __init__(self, model: torch.nn.Module, training_step: TrainingStep):
        super().__init__()
        self.model = model
        self.training_step = training_step

    def forward(self, batch: Mapping[str, Any], step: int) -> Mapping[str, torch.Tensor]:
        return self.training_step(batch, step)


def _value(term: torch.Tensor | float) -> float:
    return float(term.detach()) if isinstance(term, torch.Tensor) else float(term)


def _lr(stage: Stage) -> float:
    """The learning rate of the stage's first parameter group for this step."""
    for optimizer in stage.optimizers.values():
        return float(optimizer.param_groups[0]["lr"])
    return float("nan")
