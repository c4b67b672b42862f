"""Downstream segmentation of synthesized MRI (brats23_transfer, task.downstream=true)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from xhbench import metrics
from xhbench.cli import cli
from xhbench.harness.config import resolve
from xhbench.harness.downstream import ReferenceSegmenter, reference_segmenter
from xhbench.harness.runner import open_task
from xhbench.results import find_runs
from xhbench.tasks.base import EvalItem
from xhbench.tasks.brats23_transfer import BraTS23Item, BraTS23Transfer
from xhbench.tasks.downstream import downstream_metrics

CPU = torch.device("cpu")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def toy_segment(image: np.ndarray) -> np.ndarray:
    """BraTS 2023 classes from thresholds: ED where FLAIR > 1, NCR where T1ce > 1 inside it,
    ET where T1ce > 2."""
    out = np.zeros(image.shape[1:], dtype=np.int64)
    out[image[3] > 1] = 2
    out[(image[3] > 1) & (image[1] > 1)] = 1
    out[image[1] > 2] = 3
    return out


class ToySegmenter:
    """Stands in for a trained method: ``predict`` as the harness calls it."""

    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        assert all(available)
        return toy_segment(image)


def toy_item(seed: int = 0) -> EvalItem:
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(4, 12, 12, 12)).astype(np.float32)
    image[:, 8:10, 8:10, 8:10] = 3.0  # a bright lesion in every channel
    foreground = np.ones((12, 12, 12), dtype=bool)
    foreground[0] = False
    image[:, ~foreground] = 0
    return EvalItem("case", image, image, (1.0, 1.0, 1.0), foreground=foreground)


def test_a_synthesized_modality_equal_to_the_real_one_drops_exactly_zero():
    item = toy_item()
    real = toy_segment(item.image)
    label = toy_segment(toy_item(seed=1).image)  # a reference the segmentation misses in part
    for channel in range(4):
        values = downstream_metrics(toy_segment, item, channel, item.image[channel].copy(),
                                    real, label, scheme="brats23")
        for region in ("WT", "TC", "ET"):
            assert values[f"downstream_drop_{region}"] == 0.0
            assert values[f"downstream_dice_real_{region}"] == \
                values[f"downstream_dice_synth_{region}"]
        assert values["downstream_dice_real_WT"] < 1


def test_dice_with_the_synthesized_flair_against_hand_computed_regions():
    item = toy_item()
    real = toy_segment(item.image)
    flat = np.zeros_like(item.image[3])  # a synthesized FLAIR without any hyperintensity
    flat[5] = 9.0  # ... but a bright slab, which the background rule keeps only in the brain
    values = downstream_metrics(toy_segment, item, 3, flat, real, real, scheme="brats23")
    image = item.image.copy()
    image[3] = np.where(item.foreground, flat, 0)
    synth = metrics.brats_regions(toy_segment(image), scheme="brats23")
    truth = metrics.brats_regions(real, scheme="brats23")
    for region in ("WT", "TC", "ET"):
        expected = metrics.dice(synth[region], truth[region], empty="one")
        assert values[f"downstream_dice_synth_{region}"] == pytest.approx(expected)
        assert values[f"downstream_dice_real_{region}"] == pytest.approx(1.0)
        assert values[f"downstream_drop_{region}"] == pytest.approx(1.0 - expected)
    assert values["downstream_drop_WT"] > 0.2  # the slab is not the tumour


def smoke_task(**overrides):
    config = resolve(BraTS23Transfer.name, BraTS23Transfer.Config, BraTS23Transfer.profiles,
                     "smoke", {}, {"downstream": "true", **overrides})
    return open_task(BraTS23Transfer, config, None)


def test_downstream_rows_use_the_label_when_the_case_has_one_and_record_which():
    task = smoke_task(pairs="T1->FLAIR")
    segmenter = ReferenceSegmenter(ToySegmenter(), {})
    base = toy_item()
    label = toy_segment(toy_item(seed=1).image)
    setting = task.settings()[0]
    for with_label in (True, False):
        item = BraTS23Item("case", base.image, base.reference, base.spacing,
                           foreground=base.foreground, label=label if with_label else None)
        assert not [r for r in task.score(base.image, item, setting)
                    if r["metric"].startswith("downstream_")]  # score alone: no segmenter
        rows = {r["metric"]: r["value"]
                for r in task.downstream_rows(base.image, item, setting, segmenter)}
        reference = label if with_label else toy_segment(base.image)
        expected = metrics.dice(metrics.brats_regions(toy_segment(base.image), "brats23")["WT"],
                                metrics.brats_regions(reference, "brats23")["WT"], empty="one")
        assert rows["downstream_dice_real_WT"] == pytest.approx(expected)
        assert rows["downstream_drop_WT"] == 0.0  # the prediction is the real image
        assert rows["downstream_label_reference"] == float(with_label)
    assert smoke_task(downstream="false").downstream_view() is None


def test_reference_segmenter_is_trained_once_cached_and_leaves_the_random_state(tmp_path):
    task = smoke_task(downstream_method="threshold")
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    before = random.random(), np.random.rand(), torch.rand(1).item()
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    trained = reference_segmenter(task, device=CPU, cache_dir=tmp_path)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == before
    first = trained.identity
    assert first["trained_now"] and first["method"] == "threshold"
    assert first["train_cases"] == len(task.train_cases())
    restored = reference_segmenter(smoke_task(downstream_method="threshold"), device=CPU,
                                   cache_dir=tmp_path)
    second = restored.identity
    assert not second["trained_now"] and second["key"] == first["key"]
    assert restored.method.flair_threshold == trained.method.flair_threshold
    other = reference_segmenter(smoke_task(downstream_method="threshold", downstream_seed="1"),
                                device=CPU, cache_dir=tmp_path).identity
    assert other["key"] != first["key"] and other["trained_now"]
    assert reference_segmenter(smoke_task(downstream="false"), device=CPU,
                               cache_dir=tmp_path) is None


def test_concurrent_runs_train_the_reference_segmenter_once(tmp_path, monkeypatch):
    """A sweep's workers share the cache: one trains under the lock, the other waits and
    restores what it wrote."""
    import threading
    import time

    from xhbench.methods.threshold import Threshold

    fits = []
    fit = Threshold.fit

    def slow_fit(self, *args, **kwargs):
        fits.append(threading.get_ident())
        time.sleep(0.5)  # long enough for the second run to reach the lock
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Threshold, "fit", slow_fit)
    tasks = [smoke_task(downstream_method="threshold") for _ in range(2)]
    segmenters = [None, None]

    def train(i):
        segmenters[i] = reference_segmenter(tasks[i], device=CPU, cache_dir=tmp_path)

    threads = [threading.Thread(target=train, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fits) == 1
    identities = [segmenter.identity for segmenter in segmenters]
    assert sorted(identity["trained_now"] for identity in identities) == [False, True]
    assert identities[0]["key"] == identities[1]["key"]
    thresholds = [segmenter.method.flair_threshold for segmenter in segmenters]
    assert thresholds[0] == thresholds[1]


def test_identity_run_with_downstream_rows_and_table(tmp_path):
    result = invoke("run", "--task", "brats23_transfer", "--method", "identity", "--profile",
                    "smoke", "--set", "task.downstream=true", "--set",
                    "task.downstream_method=threshold", "--set", "task.pairs=T1->T1,T1->FLAIR",
                    "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (run,), _ = find_runs(tmp_path, "brats23_transfer")
    rows = run.cases()
    down = rows[rows["metric"].str.startswith("downstream_")]
    assert set(down["case"]) == set(rows["case"]) and len(set(down["case"])) == 2
    drops = down[down["metric"].str.startswith("downstream_drop_")]
    same = drops[drops["target"] == "T1->T1"]
    assert len(same) == 2 * 3 and (same["value"] == 0.0).all()  # identical image: exactly 0
    flair = down[(down["target"] == "T1->FLAIR") & (down["metric"] == "downstream_drop_WT")]
    assert (flair["value"] > 0).all()  # T1 in place of FLAIR loses the hyperintensity
    identity = json.loads(run.file("downstream.json").read_text())
    assert identity["method"] == "threshold" and identity["profile"] == "smoke"
    assert run.summary["conventions"]["downstream_segmenter"].startswith(
        f"threshold at profile smoke, trained on {identity['train_cases']} cases")
    assert run.summary["higher_is_better"]["downstream_drop_WT"] is False
    board = invoke("leaderboard", "--task", "brats23_transfer", "--results", str(tmp_path))
    assert "T1->FLAIR downstream_drop_WT ↓" in board.output
    # another seed of the synthesis run is judged by the same, cached segmenter
    result = invoke("run", "--task", "brats23_transfer", "--method", "identity", "--profile",
                    "smoke", "--seed", "1", "--set", "task.downstream=true", "--set",
                    "task.downstream_method=threshold", "--set", "task.pairs=T1->T1,T1->FLAIR",
                    "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (seed1,) = [r for r in find_runs(tmp_path, "brats23_transfer")[0] if r.summary["seed"] == 1]
    reused = json.loads(seed1.file("downstream.json").read_text())
    assert reused["key"] == identity["key"] and not reused["trained_now"]


@pytest.mark.slow
def test_default_segmenter_swinunetr_at_its_smoke_profile(tmp_path):
    """The task's own segmenter (swinunetr; smoke profile under the task's smoke profile)
    trains, segments and gives drop 0 for the unchanged modality."""
    result = invoke("run", "--task", "brats23_transfer", "--method", "identity", "--profile",
                    "smoke", "--set", "task.downstream=true", "--set",
                    "task.pairs=T2->T2,T2->FLAIR", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (run,), _ = find_runs(tmp_path, "brats23_transfer")
    identity = json.loads(run.file("downstream.json").read_text())
    assert (identity["method"], identity["profile"]) == ("swinunetr", "smoke")
    rows = run.cases()
    drops = rows[rows["metric"].str.startswith("downstream_drop_")]
    assert len(drops) == 2 * 2 * 3
    assert (drops[drops["target"] == "T2->T2"]["value"] == 0.0).all()
