"""Training data on the BraTS phantom: epoch 1 (MONAI CacheDataset decodes every NIfTI and
preprocesses each case once, then the random crops, flips and jitter) against epoch 2
(the random part on the cached cases, which also hold the crop-centre candidates; no
.nii.gz is opened and no cached array is copied)."""

from __future__ import annotations

import time

import nibabel

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
