"""``xhbench figures`` on segmentation runs: training curves from ``history.csv`` and
reference / prediction outlines (BraTS WT/TC/ET per modality subset, autoPET PET MIP).

The threshold method of :mod:`xhbench.testing` (no training) keeps the runs fast; the
``history.csv`` of a run is a fixture in the shared header ``stage,step,lr,loss,<terms>``.
"""

from __future__ import annotations

import matplotlib.colors
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import fake_method_plugin

from xhbench.cli import cli
from xhbench.errors import XhbenchError
from xhbench.curves import draw_curves, read_history
from xhbench.harness.figures import load_run
from xhbench.harness.overlays import COLOURS, overlay_panels
from xhbench.results import find_runs

HISTORY = pd.DataFrame({
    "stage": ["pretrain"] * 3 + ["train"] * 4,
    "step": [1, 2, 3, 1, 2, 3, 4],
    "lr": [1e-3, 5e-4, 1e-4, 2e-4, 2e-4, 1e-4, 5e-5],
    "loss": [3.0, 2.0, 1.5, 1.2, 1.0, 0.9, 0.8],
    "dice": [None, None, None, 0.7, 0.6, 0.5, 0.45],
    "ce": [None, None, None, 0.5, 0.4, 0.4, 0.35],
})


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def smoke_run(entry_points, tmp_path, task: str, *settings: str):
    entry_points("fake", fake_method_plugin())
    args = [arg for setting in settings for arg in ("--set", setting)]
    result = invoke("run", "--task", task, "--method", "fake", "--profile", "smoke",
                    "--out", str(tmp_path), *args)
    assert result.exit_code == 0, result.output
    (run,) = find_runs(tmp_path, task)[0]
    HISTORY.to_csv(run.file("history.csv"), index=False)
    return run


def has_colour(png, colour: str) -> bool:
    rgb = np.asarray(matplotlib.colors.to_rgb(colour))
    return bool((np.abs(png[..., :3] - rgb).max(axis=-1) < 0.08).any())


def test_curves_plot_every_loss_column_and_the_lr_per_stage():
    figure = draw_curves(HISTORY)
    (pre_loss, pre_lr), (train_loss, train_lr) = np.asarray(figure.axes).reshape(2, 2)
    assert [line.get_label() for line in pre_loss.lines] == ["loss"]  # all-NaN terms left out
    assert [line.get_label() for line in train_loss.lines] == ["loss", "dice", "ce"]
    train = HISTORY[HISTORY["stage"] == "train"]
    for line in train_loss.lines:
        assert np.allclose(line.get_ydata(), train[line.get_label()])
        assert np.array_equal(line.get_xdata(), train["step"])
    assert np.allclose(pre_lr.lines[0].get_ydata(), [1e-3, 5e-4, 1e-4])
    assert np.allclose(train_lr.lines[0].get_ydata(), train["lr"])
    assert train_loss.get_yscale() == "log" and pre_loss.get_yscale() == "log"
    assert draw_curves(HISTORY.assign(ce=-1.0)).axes[2].get_yscale() == "linear"


def test_history_without_the_lr_column_names_the_file(tmp_path):
    path = tmp_path / "history.csv"
    HISTORY.drop(columns="lr").to_csv(path, index=False)
    with pytest.raises(XhbenchError, match=f"{path} lacks the column.s. lr"):
        read_history(path)


def test_brats18_regions_are_whole_tumour_core_and_enhancing():
    from xhbench.tasks.base import EvalItem
    from xhbench.tasks.brats18_missing import BraTS18Missing

    reference = np.array([0, 1, 2, 4, 4, 2])  # BraTS labels
    prediction = np.array([1, 3, 2, 0, 3, 0])  # class indices: 1 NCR, 2 ED, 3 ET (label 4)
    item = EvalItem("c", np.zeros((4, 6)), reference, (1.0, 1.0, 1.0))
    regions = BraTS18Missing.regions(None, prediction, item)
    expected_pred = {"WT": prediction > 0, "TC": np.isin(prediction, (1, 3)),
                     "ET": prediction == 3}
    expected_ref = {"WT": reference > 0, "TC": np.isin(reference, (1, 4)),
                    "ET": reference == 4}
    assert list(regions) == ["WT", "TC", "ET"]
    for name, (pred, ref) in regions.items():
        assert np.array_equal(pred, expected_pred[name]), name
        assert np.array_equal(ref, expected_ref[name]), name


def test_figures_of_a_brats18_missing_run_curves_and_overlays_per_subset(entry_points,
                                                                          tmp_path):
    run = smoke_run(entry_points, tmp_path, "brats18_missing")
    result = invoke("figures", "--run", str(run.path), "--cases", "2")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (run.path / "figures").glob("*.png"))
    task, method = load_run(run.path)
    cases = [case.case_id for case in task.test_cases()[:2]]
    assert written == sorted(["training-curves.png", *(f"{c}_overlay.png" for c in cases)])
    assert result.output.split() == [str(run.path / "figures" / name) for name in
                                     ["training-curves.png", *(f"{c}_overlay.png"
                                                               for c in cases)]]

    item = task.prepare(task.data.read(task.test_cases()[0]))
    panels = overlay_panels(task, method, item)
    assert [p["label"].split("\n")[0] for p in panels] == ["all", "flair", "t1ce"]
    z = int(panels[0]["where"].split()[-1])
    whole = np.isin(item.reference, (1, 2, 4))
    present = np.flatnonzero(whole.any(axis=(0, 1)))
    assert z == (present[0] + present[-1]) // 2  # the middle of the tumour's extent
    for panel, available in zip(panels, [(1, 1, 1, 1), (1, 0, 0, 0), (0, 1, 0, 0)]):
        pred, ref = panel["regions"]["WT"]
        assert np.array_equal(ref, whole[..., z])
        channel = available.index(1)  # the threshold method's first available channel
        assert np.array_equal(pred, (item.image[channel] > 1.0)[..., z])
        assert np.array_equal(panel["image"], item.image[0][..., z])  # FLAIR, all present
        dice = panel["label"].split("\n")[1]
        assert dice.startswith("dice: WT ") and " TC " in dice and " ET " in dice

    png = matplotlib.image.imread(run.path / "figures" / f"{cases[0]}_overlay.png")
    assert png.shape[:2] == (290, 600)  # 3 panels of 2 in, 2.9 in high with labels, 100 dpi
    assert has_colour(png, COLOURS[0])  # the WT outline is drawn
    curves = matplotlib.image.imread(run.path / "figures" / "training-curves.png")
    assert curves.shape[:2] == (600, 1000)  # two stages of 3 in, 10 in wide


def test_figures_of_an_autopet_seg_run_pet_mip_with_lesions(entry_points, tmp_path):
    run = smoke_run(entry_points, tmp_path, "autopet_seg", "method.threshold=0.3")
    result = invoke("figures", "--run", str(run.path), "--cases", "1")
    assert result.exit_code == 0, result.output
    task, method = load_run(run.path)
    case = task.test_cases()[0].case_id
    assert sorted(p.name for p in (run.path / "figures").glob("*.png")) == [
        f"{case}_overlay.png", "training-curves.png"]

    item = task.prepare(task.data.read(task.test_cases()[0]))
    (panel,) = overlay_panels(task, method, item)
    pet = item.image[task.spec.in_channels.index("PET")]
    assert np.array_equal(panel["image"], np.max(pet, axis=1))
    pred, ref = panel["regions"]["lesion"]
    assert np.array_equal(ref, np.max(item.reference, axis=1))
    assert np.array_equal(pred, np.max(pet > 0.3, axis=1))
    assert "maximum-intensity projection" in panel["where"]
    png = matplotlib.image.imread(run.path / "figures" / f"{case}_overlay.png")
    assert png.shape[:2] == (290, 200)
