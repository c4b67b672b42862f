"""The brats18_missing protocol: masks, channel order, samples, scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import DataLoader

from xhbench.datasets.brats18 import BraTS18
from xhbench.harness.config import resolve
from xhbench.tasks.brats18_missing import MASKS, MODALITIES, BraTS18Missing


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    config = resolve("task", BraTS18Missing.Config, BraTS18Missing.profiles, "smoke",
                     {"phantom_train": 2, "phantom_test": 1})
    data = BraTS18.open(None, cache_dir=tmp_path_factory.mktemp("cache"),
                        **BraTS18Missing.phantom_params(config))
    return BraTS18Missing(config, data)


def test_masks_follow_the_rfnet_order():
    assert MODALITIES == ("flair", "t1ce", "t1", "t2")
    assert len(MASKS) == 15 and len({m.available for m in MASKS}) == 15
    assert MASKS[0].available == (False, False, False, True)  # t2 only
    assert MASKS[1].available == (False, True, False, False)  # t1ce only
    assert MASKS[9].name == "flair+t1ce" and MASKS[14].available == (True,) * 4
    assert [sum(m.available) for m in MASKS] == [1] * 4 + [2] * 6 + [3] * 4 + [4]


def test_training_samples_zero_fill_the_drawn_mask(task):
    torch.manual_seed(0)
    data = task.training_data(task.train_cases(), (32, 32, 32), handles_missing=False)
    seen = set()
    for batch in DataLoader(data, batch_size=1):
        image, label, available = batch["image"][0], batch["label"][0], batch["available"][0]
        assert image.shape == (4, 32, 32, 32) and label.shape == (1, 32, 32, 32)
        assert set(torch.unique(label).tolist()) <= {0, 1, 2, 3}
        for channel, present in enumerate(available.tolist()):
            assert bool(image[channel].abs().sum() > 0) == present
        seen.add(tuple(available.tolist()))
    assert seen


def test_training_samples_keep_inputs_for_methods_that_handle_missing(task):
    data = task.training_data(task.train_cases(), (32, 32, 32), handles_missing=True)
    sample = data[0][0]
    assert all(np.abs(np.asarray(sample["image"][c])).sum() > 0 for c in range(4))
    assert sample["available"].any()


def test_oracle_prediction_scores_one_and_empty_prediction_zero(task):
    item = task.prepare(task.data.read(task.test_cases()[0]))
    oracle = np.searchsorted((0, 1, 2, 4), item.reference)
    rows = {r["target"]: r["value"] for r in task.score(oracle, item, MASKS[14])}
    et_mm3 = (item.reference == 4).sum() * float(np.prod(item.spacing))
    assert rows == {"WT": pytest.approx(1.0), "TC": pytest.approx(1.0),
                    "ET": pytest.approx(1.0),
                    "ET_postpro": pytest.approx(1.0 if et_mm3 >= 500 else 0.0, abs=1e-6)}
    empty = task.score(np.zeros_like(oracle), item, MASKS[14])
    assert all(r["value"] < 1e-6 for r in empty if r["target"] == "WT")


def test_et_postprocessing_uses_physical_volume(task):
    item = task.prepare(task.data.read(task.test_cases()[0]))
    voxel_mm3 = float(np.prod(item.spacing))
    prediction = np.zeros(item.reference.shape, dtype=np.int64)
    small = max(1, int(400 / voxel_mm3))  # under 500 mm^3: removed in ET_postpro
    prediction.flat[:small] = 3
    rows = {r["target"]: r["value"] for r in task.score(prediction, item, MASKS[14])}
    reference_has_et = bool((item.reference == 4).any())
    assert reference_has_et
    assert rows["ET_postpro"] < 1e-6 and rows["ET"] < 1e-6
    no_et = item.reference.copy()
    no_et[no_et == 4] = 1
    item.reference = no_et
    rows = {r["target"]: r["value"] for r in task.score(prediction, item, MASKS[14])}
    assert rows["ET"] < 1e-6 and rows["ET_postpro"] == pytest.approx(1.0)


def scored_with(task, metrics_option, prediction, item):
    import dataclasses

    other = BraTS18Missing(dataclasses.replace(task.config, metrics=metrics_option), task.data)
    return other, other.score(prediction, item, MASKS[14])


def test_paper_metrics_are_the_default_and_hd95_is_an_option(task):
    from xhbench.metrics import hd95, brats_regions

    item = task.prepare(task.data.read(task.test_cases()[0]))
    shifted = np.roll(np.searchsorted((0, 1, 2, 4), item.reference), 2, axis=0)
    assert {r["metric"] for r in task.score(shifted, item, MASKS[14])} == {"dice"}
    other, rows = scored_with(task, "paper+hd95", shifted, item)
    got = {r["target"]: r["value"] for r in rows if r["metric"] == "hd95"}
    pred = brats_regions(np.asarray((0, 1, 2, 4))[shifted])
    ref = brats_regions(item.reference)
    assert got == {region: pytest.approx(hd95(pred[region], ref[region], spacing=item.spacing))
                   for region in ("WT", "TC", "ET")}
    assert got["WT"] > 0
    assert other.higher_is_better()["hd95"] is False and "'brats'" in other.conventions()["hd95"]


def test_lesionwise_option_reports_the_official_package(task):
    pytest.importorskip("brats_evaluation", reason="needs pip install 'xhbench[brats]'")
    item = task.prepare(task.data.read(task.test_cases()[0]))
    oracle = np.searchsorted((0, 1, 2, 4), item.reference)
    _, rows = scored_with(task, "paper+lesionwise", oracle, item)
    lesionwise = {(r["metric"], r["target"]): r["value"] for r in rows
                  if r["metric"].startswith("lesionwise")}
    assert {target for _, target in lesionwise} == {"WT", "TC", "ET"}
    assert all(lesionwise[("lesionwise_dice", t)] == pytest.approx(1.0) for t in ("WT", "TC", "ET"))
    assert all(lesionwise[("lesionwise_hd95", t)] == pytest.approx(0.0) for t in ("WT", "TC", "ET"))


def test_lesionwise_option_without_the_package_names_the_install(task, monkeypatch):
    import dataclasses
    import sys

    from xhbench.errors import UsageError

    monkeypatch.setitem(sys.modules, "brats_evaluation", None)  # import fails
    with pytest.raises(UsageError, match=r"pip install 'xhbench\[brats\]'"):
        BraTS18Missing(dataclasses.replace(task.config, metrics="paper+lesionwise"), task.data)
