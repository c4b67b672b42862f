"""Harness overhead: training steps/s of a real ``xhbench run`` (the runner's ``execute``,
what the CLI calls) against a bare MONAI loop written here: the same network (MONAI UNETR
with the smoke profile's arguments), the same data (the run's own CacheDataset, drawn by
a MONAI DataLoader), the same optimiser and schedule (AdamW, WarmupCosineSchedule,
gradient clipping), loss (DiceCELoss) and batch size.

The two loops run interleaved step by step, so that both see the same load on a shared
machine: whenever the run asks for its next batch, one bare step runs first (timed on its
own). A run step is the time from handing out batch k to the request for batch k+1, plus
the time to build batch k; the bare steps run outside those intervals.
"""

from __future__ import annotations

import statistics
import time

import torch

from xhbench.harness.runner import RunRequest, execute, plan
from xhbench.methods import supervised
from xhbench.methods.training import StepBatches

STEPS = 30  # the first step of each loop is left out (allocations, first-call costs)


def fastest_half_mean(times: list[float]) -> float:
    """Mean of the faster half of the step times: steps slowed by other processes on a
    shared machine (several times slower, at random) drop out, steady steps stay."""
    ordered = sorted(times)
    return statistics.fmean(ordered[:max(1, len(ordered) // 2)])


class BareMonaiLoop:
    """What a researcher writes by hand with MONAI."""

    def __init__(self, dataset, config, in_channels: int, classes: int):
        from monai.data import DataLoader
        from monai.losses import DiceCELoss
        from monai.networks.nets import UNETR
        from monai.optimizers import WarmupCosineSchedule

        torch.manual_seed(1)
        self.network = UNETR(in_channels=in_channels, out_channels=classes,
                             img_size=tuple(config.roi), feature_size=config.feature_size,
                             hidden_size=config.hidden_size, mlp_dim=config.mlp_dim,
                             num_heads=config.num_heads, proj_type=config.proj_type,
                             norm_name=config.norm, res_block=config.res_block,
                             dropout_rate=config.dropout_rate)
        self.loss = DiceCELoss(to_onehot_y=True, softmax=True)
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.schedule = WarmupCosineSchedule(self.optimizer, warmup_steps=config.warmup_steps,
                                             t_total=config.steps)
        self.clip = config.grad_clip
        self.loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True,
                                 num_workers=0)
        self.batches = iter(())
        self.times: list[float] = []

    def step(self) -> None:
        started = time.perf_counter()
        batch = next(self.batches, None)
        if batch is None:
            self.batches = iter(self.loader)
            batch = next(self.batches)
        self.network.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.network(batch["image"]), batch["label"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.clip)
        self.optimizer.step()
        self.schedule.step()
        self.times.append(time.perf_counter() - started)


def test_run_training_steps_against_a_bare_monai_loop(benchmark, record_ratio, brats_task,
                                                      monkeypatch, tmp_path, cache_dir):
    task = brats_task(32)  # the phantom the run opens (written once per session)
    request = RunRequest(task="brats18_missing", method="unetr", out=tmp_path / "results",
                         profile="smoke", seed=0, limit=1, cache_dir=cache_dir,
                         overrides={"task.phantom_size": "32", "task.phantom_train": "4",
                                    "task.phantom_val": "0", "task.phantom_test": "1",
                                    "method.steps": str(STEPS)})
    validated = plan(request)
    config = validated.method_config
    marks: dict[str, dict[int, float]] = {"asked": {}, "handed": {}, "build": {}}
    state: dict[str, BareMonaiLoop] = {}

    class Interleaved(StepBatches):
        def __call__(self, step: int):
            marks["asked"][step] = time.perf_counter()
            if "bare" not in state:
                state["bare"] = BareMonaiLoop(self.dataset, config, len(task.spec.in_channels),
                                              len(task.spec.out_channels))
            state["bare"].step()
            started = time.perf_counter()
            batch = super().__call__(step)
            marks["handed"][step] = time.perf_counter()
            marks["build"][step] = marks["handed"][step] - started
            return batch

    monkeypatch.setattr(supervised, "StepBatches", Interleaved)
    run = benchmark.pedantic(lambda: execute(validated), rounds=1, iterations=1)
    assert run.finished and len(marks["asked"]) == STEPS

    run_steps = [marks["asked"][k + 1] - marks["handed"][k] + marks["build"][k]
                 for k in range(1, STEPS - 1)]
    bare_steps = state["bare"].times[1:STEPS - 1]
    run_rate = 1.0 / fastest_half_mean(run_steps)
    bare_rate = 1.0 / fastest_half_mean(bare_steps)
    ratio = run_rate / bare_rate
    median_ratio = statistics.median(bare_steps) / statistics.median(run_steps)
    min_ratio = min(bare_steps) / min(run_steps)
    record_ratio("training: xhbench run / bare MONAI steps/s", ratio, target=0.95,
                 meaning=f"UNETR smoke, batch {config.batch_size}, {config.roi} crops; "
                         f"{len(run_steps)} interleaved steps each, faster half: "
                         f"{run_rate:.2f} vs {bare_rate:.2f} steps/s; ratio of medians "
                         f"{median_ratio:.3f}, of fastest steps {min_ratio:.3f}",
                 run_steps_per_s=run_rate, bare_steps_per_s=bare_rate,
                 median_ratio=median_ratio, min_ratio=min_ratio,
                 run_step_s=run_steps, bare_step_s=bare_steps)
