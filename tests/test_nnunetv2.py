"""The nnunetv2 method: nnU-Net's own integrity check on the exported raw dataset, xhbench's
trainer subclass (profile epochs, availability draw), nnU-Net's checkpoint on a second fit,
and the install message when the package is missing."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.datasets.brats18 import BraTS18
from xhbench.harness.config import resolve
from xhbench.tasks.brats18_missing import MASKS, BraTS18Missing


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    config = resolve("task", BraTS18Missing.Config, BraTS18Missing.profiles, "smoke",
                     {"phantom_size": 24, "phantom_train": 2, "phantom_test": 1})
    data = BraTS18.open(None, cache_dir=tmp_path_factory.mktemp("cache"),
                        **BraTS18Missing.phantom_params(config))
    return BraTS18Missing(config, data)


def test_missing_package_exits_2_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nnunetv2", None)  # `import nnunetv2` fails
    result = CliRunner().invoke(cli, ["run", "--task", "autopet_seg", "--method", "nnunetv2",
                                      "--profile", "smoke", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "pip install 'xhbench[nnunet]'" in result.output
    assert not any(tmp_path.iterdir())  # refused before any work


def test_zero_missing_keeps_one_drawn_mask_per_sample():
    pytest.importorskip("nnunetv2", reason="needs pip install 'xhbench[nnunet]'")
    from xhbench.methods.nnunetv2.trainer import zero_missing

    masks = np.array([m.available for m in MASKS])
    data = torch.rand(64, 4, 3, 3, 3) + 1.0  # no zero anywhere
    out = zero_missing(data, masks, np.random.default_rng(0))
    kept = (out != 0).flatten(2).all(dim=2)  # (B, C): channel kept whole
    zeroed = (out == 0).flatten(2).all(dim=2)
    assert bool((kept | zeroed).all())  # each channel kept or zeroed whole
    assert torch.equal(out[kept], data[kept])
    drawn = np.random.default_rng(0).integers(len(masks), size=64)
    assert np.array_equal(kept.numpy(), masks[drawn])  # the rng's draw, uniform over masks
    assert len({tuple(row) for row in kept.numpy()}) > 5


def test_exported_raw_dataset_passes_nnunets_integrity_check(task, tmp_path):
    pytest.importorskip("nnunetv2", reason="needs pip install 'xhbench[nnunet]'")
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    from xhbench.methods.nnunetv2.export import export_raw_dataset

    cases = task.whole_cases(task.train_cases(), handles_missing=False)
    folder = export_raw_dataset(cases, task.spec, tmp_path)
    verify_dataset_integrity(str(folder), num_processes=1)
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "flair", "1": "t1ce", "2": "t1", "3": "t2"}
    assert meta["labels"] == {"background": 0, "ncr": 1, "ed": 2, "et": 3}
    assert len(list((folder / "imagesTr").iterdir())) == 4 * len(cases)
    # the check is real: a case without its T2 file fails it
    next((folder / "imagesTr").glob("*_0003.nii.gz")).unlink()
    with pytest.raises(Exception):
        verify_dataset_integrity(str(folder), num_processes=1)


@pytest.mark.slow  # nnU-Net's planning, preprocessing and training: about 3 min on 2 loaded cores
def test_fit_runs_the_profiles_epochs_then_predicts_and_reuses_the_checkpoint(
        task, tmp_path, one_torch_thread):
    pytest.importorskip("nnunetv2", reason="needs pip install 'xhbench[nnunet]'")
    from xhbench.methods.nnunetv2 import NNUNetV2Method

    config = resolve("method", NNUNetV2Method.Config, NNUNetV2Method.profiles, "smoke",
                     {"epochs": 2, "iterations_per_epoch": 1})
    method = NNUNetV2Method(config, task.spec, torch.device("cpu"))
    cases = task.whole_cases(task.train_cases(), handles_missing=False)
    history = method.fit(cases, tmp_path, print)
    assert history["epochs"] == 2 and len(history["train_losses"]) == 2
    assert history["batch_size"] == config.batch_size == 2  # the profile's, not the planner's
    assert (method.budget.steps, method.budget.samples) == (2, 4)  # cost.json's budget
    results = tmp_path / "nnunetv2" / "nnUNet_results"
    assert len(list(results.rglob("checkpoint_final.pth"))) == 1

    item = task.prepare(task.data.read(task.test_cases()[0]))
    prediction = method.predict(item.image * 0 + item.image, MASKS[14].available)
    assert prediction.shape == item.reference.shape and prediction.dtype == np.int64
    assert set(np.unique(prediction)) <= {0, 1, 2, 3}

    restored = NNUNetV2Method(config, task.spec, torch.device("cpu"))
    restored.load_state_dict(method.state_dict())
    assert np.array_equal(restored.predict(item.image, MASKS[14].available), prediction)

    plans = next((tmp_path / "nnunetv2" / "nnUNet_preprocessed").rglob("nnUNetPlans.json"))
    planned_at = plans.stat().st_mtime_ns
    again = NNUNetV2Method(config, task.spec, torch.device("cpu")).fit(cases, tmp_path, print)
    assert again["epochs"] == 2  # nnU-Net's checkpoint_final: no further training
    assert plans.stat().st_mtime_ns == planned_at  # nor a second planning


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["autopet_seg", "brats18_missing"])
def test_smoke_run_end_to_end(task_name, tmp_path):
    pytest.importorskip("nnunetv2", reason="needs pip install 'xhbench[nnunet]'")
    runner = CliRunner()
    result = runner.invoke(cli, ["run", "--task", task_name, "--method", "nnunetv2",
                                 "--profile", "smoke", "--out", str(tmp_path)],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    board = runner.invoke(cli, ["leaderboard", "--task", task_name, "--results", str(tmp_path),
                                "--format", "json"], catch_exceptions=False)
    assert board.exit_code == 0 and '"nnunetv2"' in board.output
