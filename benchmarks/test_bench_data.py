"""Training data on the BraTS phantom: epoch 1 (MONAI CacheDataset decodes every NIfTI and
preprocesses each case once, then the random crops, flips and jitter) against epoch 2
(the random part on the cached cases; no .nii.gz is opened)."""

from __future__ import annotations

import copy
import time

import nibabel
import pytest

from xhbench.methods.training import StepBatches

ROUNDS = 5
SIZE = 64
ROI = (32, 32, 32)


def test_epoch_two_against_epoch_one(benchmark, record_ratio, helpers, brats_task,
                                     monkeypatch):
    task = brats_task(SIZE, train=8)
    cases = task.train_cases()
    opened = []
    real_load = nibabel.load
    monkeypatch.setattr(nibabel, "load", lambda *a, **k: (opened.append(a[0]), real_load(*a, **k))[1])
    state = {}

    def epoch_one():
        opened.clear()
        started = time.perf_counter()
        dataset = task.training_data(cases, ROI, handles_missing=False)
        state["build_s"] = min(state.get("build_s", float("inf")),
                               time.perf_counter() - started)
        batches = StepBatches(dataset, 2, seed=0)
        for step in range(batches.per_epoch):
            batches(step)
        state["batches"], state["dataset"], state["opened_1"] = batches, dataset, len(opened)

    def epoch_two():
        opened.clear()
        batches = state["batches"]
        for step in range(batches.per_epoch, 2 * batches.per_epoch):
            batches(step)
        return len(opened)

    anchor_times, ours_times, _, opened_2 = helpers.interleave(benchmark, epoch_two, epoch_one,
                                                               ROUNDS)
    assert state["opened_1"] == 5 * len(cases)  # four modalities and the label per case
    assert opened_2 == 0, "epoch 2 opened NIfTI files"
    summary = helpers.summary_ratio(anchor_times, ours_times)
    record_ratio("data: epoch 1 / epoch 2", summary["ratio_min"], target=5.0,
                 meaning=f"{len(cases)} phantom cases of {SIZE}^3, {ROI} crops, batch 2, "
                         f"fastest of {ROUNDS}; cache build (decode + preprocess) "
                         f"{state['build_s']:.3f} s of epoch 1's {summary['anchor_min_s']:.3f} s;"
                         f" epoch 2 opened {opened_2} files", **summary,
                 files_opened_epoch_1=state["opened_1"], files_opened_epoch_2=opened_2)

    # The loading itself: decoding and preprocessing the cases (epoch 1) against fetching
    # them from the cache, the copy CacheDataset makes before the random part (epoch 2).
    cache = getattr(state["dataset"], "_cache", None)
    if not cache:
        pytest.skip("this MONAI keeps its cache elsewhere; loading ratio not measured")
    fetch = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for item in cache:
            copy.deepcopy(item)
        fetch = min(fetch, time.perf_counter() - started)
    record_ratio("data: case loading, decode / cache fetch", state["build_s"] / fetch,
                 meaning=f"epoch 1 builds the cache in {state['build_s']:.3f} s (fastest "
                         f"round); epoch 2 copies the cached cases in {fetch:.4f} s",
                 build_s=state["build_s"], cache_fetch_s=fetch)
