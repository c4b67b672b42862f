"""autopet_seg and autopet_transfer: the autoPET case-level metrics on hand-built cases, the
detection rates, the PET/CT normalisation and body mask, and both tasks end to end."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
from click.testing import CliRunner

import xhbench
from xhbench.cli import cli
from xhbench.harness.config import resolve
from xhbench.results import find_runs
from xhbench.methods.base import Method
from xhbench.metrics import autopet
from xhbench.tasks.autopet_seg import AutoPETSeg
from xhbench.imaging import body_mask, from_window, to_window
from xhbench.tasks.autopet_transfer import AutoPETTransfer

from conftest import fake_method_plugin, plugin_module

SPACING = (2.0, 2.0, 3.0)  # 12 mm^3 = 0.012 ml per voxel
VOXEL_ML = 0.012


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def volume(*voxels: tuple[int, int, int], shape=(8, 8, 8)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for voxel in voxels:
        mask[voxel] = True
    return mask


# -- case-level metrics on constructed cases ---------------------------------------------------
def test_true_negative_case():
    empty = volume()
    values = autopet.lesion_case_metrics(empty, empty, SPACING)
    assert math.isnan(values["dice"])  # official: undefined without a lesion
    assert values["dice-"] == 0.0  # the paper: 0 for a true negative
    assert values["fpv"] == 0.0 and values["fnv"] == 0.0
    assert (values["pred_positive"], values["ref_positive"]) == (0.0, 0.0)
    assert values["tnr"] == 1.0 and values["fpr"] == 0.0
    assert math.isnan(values["tpr"]) and math.isnan(values["fnr"])


def test_false_positive_case():
    pred = volume((1, 1, 1), (1, 1, 2))  # one 2-voxel component
    values = autopet.lesion_case_metrics(pred, volume(), SPACING)
    assert math.isnan(values["dice"]) and values["dice-"] == 0.0
    assert values["fpv"] == pytest.approx(2 * VOXEL_ML) and values["fnv"] == 0.0
    assert values["tnr"] == 0.0 and values["fpr"] == 1.0
    assert (values["pred_positive"], values["ref_positive"]) == (1.0, 0.0)


def test_false_negative_case():
    ref = volume((4, 4, 4), (4, 4, 5), (4, 5, 5))
    values = autopet.lesion_case_metrics(volume(), ref, SPACING)
    assert values["dice"] == 0.0 and values["dice-"] == 0.0  # a missed lesion scores 0
    assert values["fnv"] == pytest.approx(3 * VOXEL_ML) and values["fpv"] == 0.0
    assert values["tpr"] == 0.0 and values["fnr"] == 1.0
    assert math.isnan(values["tnr"]) and math.isnan(values["fpr"])


def test_true_positive_case_with_a_missed_lesion_and_a_stray_component():
    # Reference: lesion A, a 2x2x2 cube (8 voxels), and lesion B, one voxel far away.
    ref = np.zeros((10, 10, 10), dtype=bool)
    ref[1:3, 1:3, 1:3] = True
    ref[8, 8, 8] = True
    # Prediction: half of A plus 2 voxels glued to it (one component), and a separate voxel.
    pred = np.zeros_like(ref)
    pred[1:3, 1:3, 1] = True  # 4 voxels inside A
    pred[3, 1:3, 1] = True  # 2 voxels outside A, face-connected to the 4
    pred[6, 1, 1] = True  # a stray component touching no reference voxel
    values = autopet.lesion_case_metrics(pred, ref, SPACING)
    # |P| = 7, |T| = 9, |P∩T| = 4: Dice = 8 / 16
    assert values["dice"] == pytest.approx(0.5) and values["dice-"] == pytest.approx(0.5)
    assert values["fpv"] == pytest.approx(1 * VOXEL_ML)  # only the stray voxel
    assert values["fnv"] == pytest.approx(1 * VOXEL_ML)  # only lesion B
    assert values["tpr"] == 1.0 and values["fnr"] == 0.0
    assert autopet.false_positive_volume(pred, ref, SPACING) == values["fpv"]
    assert autopet.false_negative_volume(pred, ref, SPACING) == values["fnv"]


def test_18_connectivity_joins_edges_but_not_corners():
    corner = volume((1, 1, 1), (2, 2, 2))
    edge = volume((1, 1, 1), (2, 2, 1))
    face = volume((1, 1, 1), (2, 1, 1))
    assert autopet.connected_components(corner)[1] == 2
    assert autopet.connected_components(edge)[1] == 1
    assert autopet.connected_components(face)[1] == 1
    assert autopet.connected_components(corner, connectivity=26)[1] == 1
    assert autopet.connected_components(edge, connectivity=6)[1] == 2
    # A predicted voxel edge-connected to a hit is part of the hit; a corner-connected one
    # is its own component, touching no reference voxel: a false positive.
    ref = volume((1, 1, 1))
    pred = volume((1, 1, 1), (2, 2, 1), (3, 3, 2))
    assert autopet.false_positive_volume(pred, ref, SPACING) == pytest.approx(VOXEL_ML)
    assert autopet.false_positive_volume(pred, ref, SPACING, connectivity=26) == 0.0
    # Same for a reference lesion reaching a detected one only through a corner.
    assert autopet.false_negative_volume(volume((1, 1, 1)), corner, SPACING) == \
        pytest.approx(VOXEL_ML)
    assert autopet.false_negative_volume(volume((1, 1, 1)), edge, SPACING) == 0.0


def test_voxel_volume_and_bad_input():
    assert autopet.voxel_volume_ml((2.0365, 2.0365, 3.0)) == pytest.approx(0.012441, rel=1e-4)
    with pytest.raises(ValueError, match="spacing"):
        autopet.voxel_volume_ml((1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="binary"):
        autopet.lesion_case_metrics(np.full((4, 4, 4), 2), volume(shape=(4, 4, 4)), SPACING)
    with pytest.raises(ValueError, match="same shape"):
        autopet.lesion_case_metrics(volume(shape=(4, 4, 4)), volume(), SPACING)
    with pytest.raises(ValueError, match="connectivity"):
        autopet.connected_components(volume(), connectivity=8)


def test_case_detection_rates_from_rows_match_the_indicator_means():
    cases = {  # case -> (pred, ref)
        "tp1": (volume((1, 1, 1)), volume((1, 1, 1))),
        "tp2": (volume((2, 2, 2)), volume((2, 2, 3))),  # detected (a positive call), Dice 0
        "fn": (volume(), volume((3, 3, 3))),
        "tn": (volume(), volume()),
        "fp": (volume((4, 4, 4)), volume()),
    }
    rows = [{"case": case, "setting": "PET+CT", "metric": metric, "value": value}
            for case, (pred, ref) in cases.items()
            for metric, value in autopet.lesion_case_metrics(pred, ref, SPACING).items()]
    rates = autopet.case_detection_rates(rows)
    assert rates == pytest.approx({"TPR": 2 / 3, "FNR": 1 / 3, "TNR": 1 / 2, "FPR": 1 / 2})
    for name, value in rates.items():  # the per-case indicators give the same rates
        indicators = [r["value"] for r in rows if r["metric"] == name.lower()]
        assert np.nanmean(indicators) == pytest.approx(value)
    # "Dice" (official, lesion-positive cases) and "Dice-" (all cases, 0 when lesion-free)
    dice = [r["value"] for r in rows if r["metric"] == "dice"]
    dice_all = [r["value"] for r in rows if r["metric"] == "dice-"]
    assert np.nanmean(dice) == pytest.approx((1 + 0 + 0) / 3)
    assert np.mean(dice_all) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="lacks"):
        autopet.case_detection_rates([r for r in rows if r["metric"] != "ref_positive"])


# -- normalisation and foreground ----------------------------------------------------------------
def test_windows_and_body_mask_fill_the_lungs():
    ct = np.full((12, 12, 3), -1024.0)
    ct[2:10, 2:10, :] = 40.0  # soft tissue
    ct[4:8, 4:8, :] = -850.0  # a lung inside the body
    ct[0, 0, :] = 100.0  # a detached speck (couch): not body
    body = body_mask(ct)
    assert body[2:10, 2:10, :].all() and body.sum() == 8 * 8 * 3
    assert to_window(np.array([-2000.0, -1000.0, 0.0, 1000.0, 3000.0]), -1000, 1000).tolist() \
        == [0.0, 0.0, 0.5, 1.0, 1.0]
    hu = np.array([-1000.0, -437.5, 0.0, 250.0, 1000.0])
    assert from_window(to_window(hu, -1000, 1000), -1000, 1000).tolist() == hu.tolist()


def smoke_task(cls, **overrides):
    config = resolve(cls.name, cls.Config, cls.profiles, "smoke", {}, overrides)
    return cls(config, _open(cls, config))


def _open(cls, config):
    from xhbench.datasets.autopet import AutoPET
    from xhbench.harness.runner import default_cache_dir

    return AutoPET.open(None, cache_dir=default_cache_dir(), **cls.phantom_params(config))


def test_seg_inputs_labels_and_pet_only_option():
    task = smoke_task(AutoPETSeg)
    assert task.spec.in_channels == ("PET", "CT")
    assert task.spec.out_channels == ("background", "lesion")
    case = task.train_cases()[0]
    volume_ = task.data.read(case)
    loaded = task.load_case(case)
    suv, ct = (volume_.image[volume_.modalities.index(k)] for k in ("suv", "ct"))
    np.testing.assert_allclose(loaded["image"][0], np.clip(suv / 20.0, 0, 1), atol=1e-6)
    np.testing.assert_allclose(loaded["image"][1], np.clip((ct + 1000) / 2000, 0, 1), atol=1e-6)
    assert loaded["foreground"][ct < -500].any()  # lungs belong to the body
    np.testing.assert_array_equal(loaded["label"], volume_.label)
    pet_only = smoke_task(AutoPETSeg, inputs="PET")
    assert pet_only.spec.in_channels == ("PET",)
    assert [s.id for s in pet_only.settings()] == ["PET"]
    assert pet_only.load_case(case)["image"].shape[0] == 1


def _crops(data, index: int, count: int) -> list[dict]:
    from monai.utils import set_determinism

    set_determinism(0)
    crops = [data[index] for _ in range(count)]
    set_determinism(None)
    return [crop[0] if isinstance(crop, list) else crop for crop in crops]


def test_seg_training_crops_hold_lesions_two_times_in_three_on_positive_cases():
    task = smoke_task(AutoPETSeg)
    cases = task.train_cases()
    data = task.training_data(cases, (16, 16, 16), handles_missing=False)
    flags = task.data.lesion_flags()
    assert {flags[case.case_id] for case in cases} == {True, False}
    for index, case in enumerate(cases):
        share = np.mean([np.asarray(c["label"]).any() for c in _crops(data, index, 60)])
        if flags[case.case_id]:  # pos=2, neg=1: at least the lesion-centred two thirds
            assert share >= 0.5, (case.case_id, share)
        else:
            assert share == 0.0


def test_crops_of_a_lesion_free_study_are_background_centred_without_a_warning_each():
    import warnings

    from monai.transforms import RandCropByPosNegLabeld

    from xhbench.tasks.transforms import CropByPosNegd

    label = np.zeros((1, 8, 8, 8), np.float32)
    sample = {"image": np.arange(512, dtype=np.float32).reshape(1, 8, 8, 8), "label": label}
    args = dict(keys=("image", "label"), label_key="label", spatial_size=(4, 4, 4), pos=2,
                neg=1, num_samples=3)
    with pytest.warns(UserWarning, match="Num foregrounds 0"):  # what MONAI itself does
        RandCropByPosNegLabeld(**args)(sample)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crops = CropByPosNegd(**args)(sample)
    assert len(crops) == 3 and all(np.asarray(c["image"]).shape == (1, 4, 4, 4) for c in crops)
    sample["label"] = np.ones_like(label)  # no background: still MONAI's warning
    with pytest.warns(UserWarning, match="Num backgrounds 0"):
        CropByPosNegd(**args)(sample)


def test_seg_training_crops_keep_zero_suv_and_air_at_zero():
    # SUV and HU are quantitative: the crops are jittered by a +-10 % scale only (no
    # offset), so the air around the body (SUV 0, CT -1000 HU -> 0) stays exactly 0.
    task = smoke_task(AutoPETSeg)
    assert task.intensity_shift == 0.0
    data = task.training_data(task.train_cases(), (32, 32, 32), handles_missing=False)
    source = task.load_case(task.train_cases()[0])["image"]
    assert (source == 0).all(axis=0).any()
    for crop in _crops(data, 0, 20):
        image = np.asarray(crop["image"])
        assert (image == 0).all(axis=0).any()
        assert image.max() <= 1.1 * source.max() + 1e-6


def test_seg_oracle_scores_every_case_and_flags_the_lesion_free_ones():
    task = smoke_task(AutoPETSeg)
    flags = task.data.lesion_flags()
    for case in task.test_cases():
        item = task.prepare(task.data.read(case))
        rows = task.score(item.reference.astype(np.int64), item, task.settings()[0])
        values = {r["metric"]: r["value"] for r in rows}
        assert set(values) == set(autopet.CASE_METRICS)
        assert values["ref_positive"] == float(flags[case.case_id])
        assert values["fpv"] == values["fnv"] == 0.0 and values["dice-"] == float(
            flags[case.case_id])


def test_transfer_scores_pairs_and_writes_avg_once_per_case():
    task = smoke_task(AutoPETTransfer)
    assert [s.id for s in task.settings()] == ["PET", "CT"]
    item = task.prepare(task.data.read(task.test_cases()[0]))
    assert 0.0 <= item.image.min() and item.image.max() <= 1.0
    shifted = np.clip(item.reference + 0.05, 0, 1)
    rows = [r for s in task.settings() for r in task.score(shifted, item, s)]
    targets = [r["target"] for r in rows]
    assert targets.count("Avg.") == 3  # psnr, nmse, ssim: once, after the last pair
    value = {(r["target"], r["metric"]): r["value"] for r in rows}
    for metric in ("psnr", "ssim", "nmse"):
        pairs = [value[(p, metric)] for p in ("PET->PET", "CT->CT", "PET->CT", "CT->PET")]
        assert value[("Avg.", metric)] == pytest.approx(np.mean(pairs))
    assert task.conventions()["normalisation"].startswith("PET: [0, 20] -> [0, 1]")


# -- end to end ----------------------------------------------------------------------------------
@dataclass
class CopyConfig:
    roi: tuple[int, int, int] = (32, 32, 32)
    scale: float = 0.9


class CopySourceMethod(Method):
    """Predicts every channel as a scaled copy of the available source; trains nothing."""

    name = "copy"
    Config = CopyConfig
    profiles: ClassVar[dict[str, dict]] = {"smoke": {}, "default": {}, "paper": {}}

    def fit(self, train_data: Any, workdir, log) -> dict[str, Any]:
        log(f"copy: nothing to train ({len(train_data)} samples)")
        return {"steps": 0}

    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        source = image[available.index(True)] * self.config.scale
        return np.repeat(source[None], len(self.spec.out_channels), axis=0)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state) -> None:
        pass


def copy_method_plugin():
    @xhbench.hookimpl
    def xhbench_register_methods(register):
        register("copy", "xhbench_copy:CopySourceMethod", description="copies the source",
                 kinds=("synthesis",))

    return plugin_module("xhbench_copy", xhbench_register_methods=xhbench_register_methods,
                         CopySourceMethod=CopySourceMethod)


def test_autopet_seg_end_to_end_with_table5(entry_points, tmp_path):
    entry_points("fake", fake_method_plugin())
    result = invoke("run", "--task", "autopet_seg", "--method", "fake", "--profile", "smoke",
                    "--set", "method.threshold=0.2", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (run,), _ = find_runs(tmp_path, "autopet_seg")
    cases = run.cases()
    assert set(cases["metric"]) == set(autopet.CASE_METRICS)
    assert set(cases["setting"]) == {"PET+CT"} and set(cases["target"]) == {"lesion"}
    assert len(cases) == 2 * len(autopet.CASE_METRICS)
    assert run.summary["conventions"]["fpv"].startswith("autoPET false-positive volume")
    table = invoke("leaderboard", "--task", "autopet_seg", "--results", str(tmp_path),
                   "--table", "table5", "--with-reported")
    assert table.exit_code == 0, table.output
    header = table.output.splitlines()[0]
    for column in ("lesion dice ", "lesion dice- ", "lesion tpr", "lesion tnr", "lesion fnr",
                   "lesion fpr"):
        assert column in header
    assert "SwinUNETR — reported (paper, Table 5)" in table.output
    assert "| fake [smoke, phantom, seeds 0]" in table.output
    official = invoke("leaderboard", "--task", "autopet_seg", "--results", str(tmp_path),
                      "--table", "official")
    assert "lesion fpv" in official.output and "lesion fnv" in official.output
    ablation = invoke("leaderboard", "--task", "autopet_seg", "--results", str(tmp_path),
                      "--table", "table7", "--with-reported")
    assert ("| ours + Contrastive + Decomposition + Invariance (pre-training ID 2) — reported "
            "(paper, Table 7)") in ablation.output


def test_autopet_transfer_end_to_end_with_table4(entry_points, tmp_path):
    entry_points("copy", copy_method_plugin())
    result = invoke("run", "--task", "autopet_transfer", "--method", "copy", "--profile",
                    "smoke", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (run,), _ = find_runs(tmp_path, "autopet_transfer")
    cases = run.cases()
    assert set(cases["target"]) == {"PET->PET", "CT->CT", "PET->CT", "CT->PET", "Avg."}
    assert set(cases["setting"]) == {"PET", "CT", "all"}
    image_rows = cases[cases["metric"].isin(["psnr", "nmse", "ssim"])]
    assert len(image_rows) == 2 * 5 * 3  # cases x (4 pairs + Avg.) x (psnr, nmse, ssim)
    # uptake errors: pairs into PET on lesion-positive cases; a copy scaled by 0.9 of the
    # real PET (PET->PET) errs by 10% on SUVmax, SUVmean, SUVpeak and TLG, not on the 41% MTV
    uptake = cases[cases["metric"].str.endswith("_error")]
    positive = uptake["case"].unique()
    assert len(positive) >= 1 and len(uptake) == len(positive) * 2 * 7
    assert set(uptake["target"]) == {"PET->PET", "CT->PET"}
    own = uptake[uptake["target"] == "PET->PET"].set_index("metric")["value"]
    for metric, error in (("suvmax_error", 0.1), ("suvmean_error", 0.1), ("suvpeak_error", 0.1),
                          ("mtv_error", 0.0), ("tlg_error", 0.1)):
        assert own[metric] == pytest.approx(error, abs=1e-5), metric
    assert run.summary["higher_is_better"]["suvmax_error"] is False
    assert "PERCIST" in run.summary["conventions"]["suvpeak_error"]
    assert run.summary["data"]["split"] == "test"  # one split: the task's test_split
    table = invoke("leaderboard", "--task", "autopet_transfer", "--results", str(tmp_path),
                   "--table", "table4", "--with-reported")
    assert table.exit_code == 0, table.output
    header = table.output.splitlines()[0]
    assert "PET->PET ssim" in header and "Avg. psnr" in header
    assert ("| ours + Contrastive + Decomposition + Equivariance + Invariance + O (pre-training "
            "ID 6) — reported (paper, Table 4)") in table.output
    assert "0.9728" in table.output  # configuration 6's Avg. SSIM
    uptake_table = invoke("leaderboard", "--task", "autopet_transfer", "--results",
                          str(tmp_path), "--table", "uptake")
    assert uptake_table.exit_code == 0, uptake_table.output
    assert "CT->PET suvmax_error" in uptake_table.output.splitlines()[0]
