"""Scaling: the smoke run (``xhbench run --profile smoke``, nnunet on brats18_missing, one
test case) at two phantom sizes, 32^3 and 64^3, and how each part's time grows against
the voxels of the case:

- data: reading and preparing a test case (NIfTI decode, crop, z-score): about linear;
- metrics: scoring one prediction (Dice of three regions, ET_postpro) and SSIM: linear;
- training: seconds per step; the crops are ``roi`` whatever the volume, so the network's
  FLOPs per step, and the step time, should not grow;
- evaluation: seconds per case, which follows the number of sliding windows (the
  network's FLOPs at inference), not the voxels: windows overlap and pad the volume.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from xhbench.harness.runner import RunRequest, execute, plan
from xhbench.methods import supervised
from xhbench.methods.training import StepBatches
from xhbench.metrics import brats_regions, dice, ssim

SIZES = (32, 64)
STEPS = 6
METRIC_SHAPES = ((120, 120, 78), (240, 240, 155))  # metrics again at BraTS-like sizes


def windows(shape, roi, overlap: float) -> int:
    """Sliding windows MONAI places on a volume of ``shape`` (padded up to ``roi``)."""
    count = 1
    for size, window in zip(shape, roi):
        stride = max(int(window * (1 - overlap)), 1)
        count *= 1 if size <= window else -(-(size - window) // stride) + 1
    return count


def best_of(fn, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def smoke_run(size: int, out, cache_dir, monkeypatch) -> dict:
    request = RunRequest(task="brats18_missing", method="nnunet", out=out, profile="smoke",
                         seed=0, limit=1, cache_dir=cache_dir,
                         overrides={"task.phantom_size": str(size), "task.phantom_train": "4",
                                    "task.phantom_val": "0", "task.phantom_test": "1",
                                    "method.steps": str(STEPS)})
    validated = plan(request)
    asked: list[float] = []

    class Timed(StepBatches):
        def __call__(self, step: int):
            asked.append(time.perf_counter())
            return super().__call__(step)

    monkeypatch.setattr(supervised, "StepBatches", Timed)
    started = time.perf_counter()
    run = execute(validated)
    total = time.perf_counter() - started
    cost = run.read_json("cost.json")
    steps = np.diff(asked)[1:]  # step 1 .. STEPS-2; step 0 carries first-call costs
    return {"total_s": total, "train_step_s": float(statistics.median(steps)),
            "eval_s": cost["eval_seconds_per_case"], "config": validated.method_config}


def test_smoke_run_at_two_volume_sizes(benchmark, record_ratio, brats_task, cache_dir,
                                       monkeypatch, tmp_path):
    parts: dict[int, dict] = {}
    for size in SIZES:
        brats_task(size)  # the phantom, written before anything is timed

    def both_sizes():
        for size in SIZES:
            parts[size] = smoke_run(size, tmp_path / f"results{size}", cache_dir, monkeypatch)

    benchmark.pedantic(both_sizes, rounds=1, iterations=1)

    for size in SIZES:
        task = brats_task(size)
        case = task.test_cases()[0]
        item = task.prepare(task.data.read(case))
        config = parts[size]["config"]
        parts[size]["shape"] = tuple(item.image.shape[1:])
        parts[size]["voxels"] = int(np.prod(item.image.shape[1:]))
        parts[size]["windows"] = windows(item.image.shape[1:], config.infer_roi or config.roi,
                                         config.sw_overlap)
        parts[size]["data_s"] = best_of(lambda: task.prepare(task.data.read(case)))
        prediction = np.random.default_rng(0).integers(0, 4, size=item.reference.shape)
        parts[size]["score_s"] = best_of(lambda: task.score(prediction, item, task.settings()[0]))
        pair = np.random.default_rng(1).random((2, *[max(s, 11) for s in item.image.shape[1:]]),
                                               dtype=np.float32)
        parts[size]["ssim_s"] = best_of(lambda: ssim(pair[0], pair[1], data_range=1.0))

    metric_times = []
    for shape in METRIC_SHAPES:
        rng = np.random.default_rng(2)
        pair = rng.random((2, *shape), dtype=np.float32)
        labels = rng.integers(0, 5, size=(2, *shape)).astype(np.int64)
        labels[labels == 3] = 4
        metric_times.append({
            "ssim": best_of(lambda: ssim(pair[0], pair[1], data_range=1.0)),
            "dice": best_of(lambda: [dice(p, r) for p, r in zip(
                brats_regions(labels[0]).values(), brats_regions(labels[1]).values())])})
    big_ratio = float(np.prod(METRIC_SHAPES[1]) / np.prod(METRIC_SHAPES[0]))
    for metric in ("ssim", "dice"):
        a, b = metric_times[0][metric], metric_times[1][metric]
        record_ratio(f"scaling: {metric} {METRIC_SHAPES[0]} -> {METRIC_SHAPES[1]}", b / a,
                     meaning=f"{a:.3f} s -> {b:.3f} s for x{big_ratio:.1f} voxels",
                     small_s=a, large_s=b)

    small, large = (parts[s] for s in SIZES)
    voxel_ratio = large["voxels"] / small["voxels"]
    window_ratio = large["windows"] / small["windows"]
    meaning = (f"cases {small['shape']} -> {large['shape']}: voxels x{voxel_ratio:.1f}, "
               f"sliding windows x{window_ratio:.0f}")
    record_ratio("scaling: voxels 64^3 / 32^3 phantom", voxel_ratio, meaning=meaning,
                 parts={size: {k: v for k, v in p.items() if k != "config"}
                        for size, p in parts.items()})
    for key, label, expected in (("data_s", "data (read + prepare)", "voxels"),
                                 ("score_s", "metrics (task.score)", "voxels"),
                                 ("ssim_s", "metrics (ssim)", "voxels"),
                                 ("train_step_s", "training step", "1: same crops"),
                                 ("eval_s", "evaluation per case", "windows"),
                                 ("total_s", "whole smoke run", "")):
        growth = large[key] / small[key]
        record_ratio(f"scaling: {label}", growth,
                     meaning=f"{small[key]:.3f} s -> {large[key]:.3f} s; expected growth: "
                             f"{expected}" if expected else
                             f"{small[key]:.1f} s -> {large[key]:.1f} s",
                     small_s=small[key], large_s=large[key])
