"""The PET/CT tasks' protocol code on small hand-built volumes: autopet_seg's inputs,
windows, body, labels and scoring call; the PET/CT synthesis protocol (autopet_transfer):
windows, the window metric protocol, the per-case Avg. and the uptake rows; and
hnscc_nsclc_transfer's NAC-PET percentile window and its two evaluation sets.

Expected values are computed here by hand (numpy) from the documented protocol; the
metrics themselves are tested in their own files. The mutation audit of the task files
runs these tests (docs/testing.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from xhbench import metrics
from xhbench.datasets.base import Volume
from xhbench.errors import ConfigError, DataError
from xhbench.metrics import autopet
from xhbench.tasks.autopet_seg import AutoPETSeg
from xhbench.tasks.autopet_transfer import (AutoPETTransfer, PetCtConfig, PetCtItem,
                                            WindowSynthesisFormat)
from xhbench.tasks.base import EvalItem, Setting
from xhbench.tasks.hnscc_nsclc_transfer import HNSCC_VAL, NSCLC_SET, HNSCCNSCLCTransfer

from test_task_protocols import FakeData, affine, case

SPACING = (2.0, 2.0, 3.0)


def _config(cls, **options):
    config = cls.Config()
    for key, value in options.items():
        setattr(config, key, value)
    return config


def _petct(case_id: str = "PETCT_0001", lesion: bool = True,
           modalities=("ct", "suv")) -> tuple[Volume, np.ndarray]:
    """A body (40 HU) with a lung (-850 HU), air and a couch speck around it; SUV 1 in the
    body with a hot lesion, some uptake in the air above 20; label 1 on the lesion."""
    shape = (20, 16, 12)  # SSIM's valid interior (x 5-14) holds air too
    ct = np.full(shape, -1000.0, np.float32)
    ct[2:14, 2:14, :] = 40.0
    ct[5:9, 5:9, :] = -850.0
    ct[2, 10, :] = -450.0  # on the body's edge: above -500 HU, below -400 HU
    ct[15, 15, 0:2] = 300.0  # couch speck
    ct[11, 11, 3] = 1500.0  # bone above the window
    body = np.zeros(shape, bool)
    body[2:14, 2:14, :] = True
    suv = np.where(body, 1.0, 0.0).astype(np.float32)
    suv[9:12, 9:12, 4:7] = 12.0  # lesion
    suv[10, 10, 5] = 26.0  # above the window
    suv[0, 0, 0] = 3.0  # uptake outside the body
    label = np.zeros(shape, np.uint8)
    if lesion:
        label[9:12, 9:12, 4:7] = 1
    channels = {"ct": ct, "suv": suv}
    image = np.stack([channels[m] for m in modalities])
    return Volume(case_id, image, label, affine(*SPACING), tuple(modalities)), body


# -- autopet_seg ------------------------------------------------------------------------------------
def test_autopet_seg_settings_are_named_by_the_inputs():
    assert AutoPETSeg(_config(AutoPETSeg), None).settings() == [
        Setting("PET+CT", "input PET+CT", (True, True))]
    assert AutoPETSeg(_config(AutoPETSeg, inputs="PET"), None).settings() == [
        Setting("PET", "input PET", (True,))]


def test_autopet_seg_preprocess_windows_suv_then_ct_and_takes_the_body_from_the_ct():
    volume, body = _petct()
    config = _config(AutoPETSeg, suv_max=10.0, ct_min_hu=-1000.0, ct_max_hu=500.0,
                     body_hu=-400.0)
    image, got_body = AutoPETSeg(config, None).preprocess(volume)
    ct, suv = volume.image
    np.testing.assert_allclose(image[0], np.clip(suv / 10.0, 0, 1), atol=1e-6)
    np.testing.assert_allclose(image[1], np.clip((ct + 1000) / 1500, 0, 1), atol=1e-6)
    assert image.shape == (2, *body.shape)
    expected = body.copy()
    expected[2, 10, :] = False  # -450 HU is below the -400 HU threshold, on the border
    np.testing.assert_array_equal(got_body, expected)
    image, _ = AutoPETSeg(_config(AutoPETSeg, inputs="PET"), None).preprocess(volume)
    assert image.shape == (1, *body.shape)
    np.testing.assert_allclose(image[0], np.clip(suv / 20.0, 0, 1), atol=1e-6)


def test_autopet_seg_refuses_a_ct_without_body_and_a_case_without_seg():
    volume, _ = _petct()
    volume.image[0][:] = -1000.0
    with pytest.raises(DataError) as error:
        AutoPETSeg(_config(AutoPETSeg), None).preprocess(volume)
    assert str(error.value) == "case PETCT_0001: no body in the CT (no voxel above -500 HU)"
    volume, _ = _petct()
    unlabelled = Volume(volume.case_id, volume.image, None, volume.affine, volume.modalities)
    task = AutoPETSeg(_config(AutoPETSeg), FakeData({"PETCT_0001": unlabelled}))
    for call in (lambda: task.prepare(unlabelled), lambda: task.load_case(case("PETCT_0001"))):
        with pytest.raises(DataError) as error:
            call()
        assert str(error.value) == "case PETCT_0001: case has no SEG"


def test_autopet_seg_load_case_and_prepare():
    volume, body = _petct()
    task = AutoPETSeg(_config(AutoPETSeg), FakeData({"PETCT_0001": volume}))
    loaded = task.load_case(case("PETCT_0001"))
    image, _ = task.preprocess(volume)
    np.testing.assert_array_equal(loaded["image"], image)
    np.testing.assert_array_equal(loaded["foreground"], body)
    assert loaded["label"].dtype == np.int64
    np.testing.assert_array_equal(loaded["label"], volume.label)
    item = task.prepare(volume)
    assert item.case_id == "PETCT_0001" and item.spacing == SPACING
    assert item.reference.dtype == bool
    np.testing.assert_array_equal(item.reference, volume.label == 1)
    np.testing.assert_array_equal(item.foreground, body)
    np.testing.assert_array_equal(item.image, image)


def test_autopet_seg_score_is_the_challenge_metrics_of_class_one_at_the_case_spacing():
    volume, _ = _petct()
    task = AutoPETSeg(_config(AutoPETSeg), None)
    item = task.prepare(volume)
    prediction = np.zeros(item.reference.shape, np.int64)
    prediction[9:12, 9:12, 4:6] = 1  # two thirds of the lesion
    prediction[3, 3, 3] = 1  # a stray voxel: 12 mm^3 = 0.012 ml false positive
    rows = task.score(prediction, item, task.settings()[0])
    assert {(r["case"], r["setting"], r["target"]) for r in rows} == {
        ("PETCT_0001", "PET+CT", "lesion")}
    values = {r["metric"]: r["value"] for r in rows}
    assert values["dice"] == pytest.approx(2 * 18 / (19 + 27))
    assert values["fpv"] == pytest.approx(0.012)
    assert values["fnv"] == 0.0  # the lesion was found
    assert values["pred_positive"] == values["ref_positive"] == 1.0
    assert task.higher_is_better() == autopet.AUTOPET_HIGHER_IS_BETTER
    assert task.higher_is_better()["fpv"] is False and task.higher_is_better()["dice"] is True


# -- the PET/CT synthesis protocol (autopet_transfer) --------------------------------------------
@pytest.mark.parametrize("body_hu", [-1000.0, 1000.0, -1200.0])
def test_petct_config_needs_the_body_threshold_inside_the_ct_window(body_hu):
    config = PetCtConfig(body_hu=body_hu)
    with pytest.raises(ConfigError) as error:
        config.validate()
    assert str(error.value) == (
        f"options ct_min_hu=-1000, body_hu={body_hu:g}, ct_max_hu=1000: the body "
        "threshold must lie inside the CT window (ct_min_hu < body_hu < ct_max_hu)")
    PetCtConfig(body_hu=-999.0).validate()


def test_petct_windows_follow_the_options():
    task = AutoPETTransfer(_config(AutoPETTransfer, suv_max=15.0, ct_min_hu=-900.0,
                                   ct_max_hu=800.0), None)
    assert dict(task.windows()) == {"ct": (-900.0, 800.0), "suv": (0.0, 15.0),
                                    "ac_pet": (0.0, 15.0)}


def test_autopet_transfer_prepare_windows_each_channel_in_task_order():
    volume, body = _petct()
    task = AutoPETTransfer(_config(AutoPETTransfer), None)
    item = task.prepare(volume)
    assert isinstance(item, PetCtItem) and item.reference is item.image
    ct, suv = volume.image
    np.testing.assert_allclose(item.image[0], np.clip(suv / 20.0, 0, 1), atol=1e-6)  # PET
    np.testing.assert_allclose(item.image[1], np.clip((ct + 1000) / 2000, 0, 1), atol=1e-6)
    np.testing.assert_array_equal(item.foreground, body)
    np.testing.assert_array_equal(item.lesions, volume.label == 1)
    unlabelled = Volume(volume.case_id, volume.image, None, volume.affine, volume.modalities)
    assert task.prepare(unlabelled).lesions is None
    higher = AutoPETTransfer(_config(AutoPETTransfer, body_hu=-400.0), None).prepare(volume)
    expected = body.copy()
    expected[2, 10, :] = False  # -450 HU on the body's edge: under -400 HU
    np.testing.assert_array_equal(higher.foreground, expected)
    volume.image[0][:] = -1000.0
    with pytest.raises(DataError) as error:
        task.prepare(volume)
    assert str(error.value) == "case PETCT_0001: no body in the CT (no voxel above -500 HU)"


def _window_metrics(pred: np.ndarray, ref: np.ndarray, fg: np.ndarray) -> dict[str, float]:
    p = np.where(fg, np.clip(pred, 0.0, 1.0), 0.0)
    r = np.where(fg, ref, 0.0)
    squared = ((p - r)[fg] ** 2)
    return {"psnr": 10 * np.log10(1.0 / squared.mean()),
            "nmse": squared.sum() / (r[fg] ** 2).sum(),
            "ssim": metrics.ssim(p.astype(np.float32), r.astype(np.float32), data_range=1.0,
                                 mask=fg)}


def _prediction(item: EvalItem, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prediction = item.reference + rng.normal(0.0, 0.05, item.reference.shape)
    prediction[0][10, 10, 4] = 1.6  # above the window in the lesion: clipped to 1 (SUV 20)
    prediction[1] += 0.03  # CT off by a constant: must not be scored as PET
    return prediction.astype(np.float32)


def test_autopet_transfer_scores_pairs_then_one_avg_then_uptake_rows():
    volume, body = _petct()
    task = AutoPETTransfer(_config(AutoPETTransfer), None)
    item = task.prepare(volume)
    prediction = _prediction(item)
    first = task.score(prediction, item, task.settings()[0])  # PET
    assert [(r["target"], r["metric"]) for r in first][:6] == [
        (pair, m) for pair in ("PET->PET", "PET->CT") for m in ("psnr", "nmse", "ssim")]
    assert all(r["setting"] == "PET" and r["case"] == "PETCT_0001" for r in first)
    assert "Avg." not in {r["target"] for r in first}  # CT's pairs are not scored yet
    second = task.score(prediction, item, task.settings()[1])  # CT: the last pairs
    third = task.score(prediction, item, task.settings()[1])
    assert "Avg." not in {r["target"] for r in third}  # written once per case
    expected = {}
    for pair, (target, source) in {"PET->PET": (0, 0), "PET->CT": (1, 0), "CT->CT": (1, 1),
                                   "CT->PET": (0, 1)}.items():
        for metric, value in _window_metrics(prediction[target], item.reference[target],
                                             body).items():
            expected[(pair, metric)] = value
    values = {(r["target"], r["metric"]): r["value"] for r in first + second}
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, rel=1e-5), key
    avg = [r for r in second if r["target"] == "Avg."]
    assert [(r["metric"], r["setting"]) for r in avg] == [
        ("psnr", "all"), ("nmse", "all"), ("ssim", "all")]
    for row in avg:
        pairs = [expected[(p, row["metric"])] for p in ("PET->PET", "CT->CT", "PET->CT",
                                                        "CT->PET")]
        assert row["value"] == pytest.approx(np.mean(pairs), rel=1e-5)
    # order: the pair rows, then Avg., then the uptake errors of the pair into PET
    assert [r["target"] for r in second] == (["CT->CT"] * 3 + ["CT->PET"] * 3 + ["Avg."] * 3
                                             + ["CT->PET"] * len(metrics.pet.PET_CONVENTIONS))


def test_uptake_rows_compare_the_prediction_clipped_to_the_window_in_suv():
    volume, _ = _petct()
    task = AutoPETTransfer(_config(AutoPETTransfer, suv_max=20.0), None)
    item = task.prepare(volume)
    prediction = _prediction(item)
    rows = task.score(prediction, item, Setting("CT", "from CT", (False, True)))
    uptake = {r["metric"]: r["value"] for r in rows if r["metric"] in metrics.pet.PET_CONVENTIONS}
    pred_suv = np.clip(prediction[0], 0.0, 1.0) * 20.0
    ref_suv = np.clip(volume.image[1], 0.0, 20.0)  # the reference in SUV, clipped at 20
    expected = metrics.pet.uptake_errors(pred_suv, ref_suv, volume.label == 1, SPACING)
    assert set(uptake) == set(expected)
    for name, value in expected.items():
        assert uptake[name] == pytest.approx(value, rel=1e-4, nan_ok=True), name
    assert uptake["suvmax_error"] == pytest.approx(0.0, abs=1e-6)  # 1.6 clipped to 20 = ref
    assert {(r["setting"], r["target"]) for r in rows if r["metric"] in uptake} == {
        ("CT", "CT->PET")}


def test_uptake_rows_need_the_pair_into_pet_and_a_lesion():
    volume, _ = _petct()
    only_ct = AutoPETTransfer(_config(AutoPETTransfer, pairs="PET->CT,CT->CT"), None)
    item = only_ct.prepare(volume)
    rows = only_ct.score(_prediction(item), item, Setting("CT", "from CT", (False, True)))
    assert {r["target"] for r in rows} == {"CT->CT"}
    task = AutoPETTransfer(_config(AutoPETTransfer), None)
    for lesion_free in (_petct(lesion=False)[0],
                        Volume("PETCT_0001", volume.image, None, volume.affine,
                               volume.modalities)):
        item = task.prepare(lesion_free)
        rows = task.score(_prediction(item), item, Setting("CT", "from CT", (False, True)))
        assert {r["metric"] for r in rows} == {"psnr", "nmse", "ssim"}


def test_a_plain_eval_item_gets_pair_rows_only():
    volume, body = _petct()
    task = AutoPETTransfer(_config(AutoPETTransfer), None)
    prepared = task.prepare(volume)
    item = EvalItem("PETCT_0001", prepared.image, prepared.reference, SPACING, body)
    rows = [r for s in task.settings() for r in task.score(_prediction(prepared), item, s)]
    assert len(rows) == 12 and "Avg." not in {r["target"] for r in rows}


def test_autopet_transfer_paper_protocol_maps_by_the_reference_range():
    volume, body = _petct()
    task = AutoPETTransfer(_config(AutoPETTransfer, pairs="CT->CT", metric_protocol="paper"),
                           None)
    item = task.prepare(volume)
    prediction = _prediction(item)
    values = {r["metric"]: r["value"] for r in task.score(prediction, item, task.settings()[0])
              if r["target"] == "CT->CT"}
    ref = item.reference[1]
    low, high = ref[body].min(), ref[body].max()
    p = np.where(body, np.clip((prediction[1] - low) / (high - low), 0, 1), 0.0)
    r = np.where(body, (ref - low) / (high - low), 0.0)
    for metric, value in _window_metrics(p, r, body).items():
        assert values[metric] == pytest.approx(value, rel=1e-4), metric
    assert task.higher_is_better() == {"psnr": True, "nmse": False, "ssim": True,
                                       **metrics.pet.PET_HIGHER_IS_BETTER}
    assert not any(metrics.pet.PET_HIGHER_IS_BETTER.values())


def test_window_format_applies_the_references_window_to_a_prediction():
    volume, body = _petct()
    task = AutoPETTransfer(_config(AutoPETTransfer), None)
    ct = volume.image[0]
    out = WindowSynthesisFormat().normalise_target(task, ct + 100.0, ct, None, body, key="ct")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.where(body, np.clip((ct + 1100) / 2000, 0, 1), 0.0),
                               atol=1e-6)


# -- hnscc_nsclc_transfer --------------------------------------------------------------------------
def _hnscc(case_id: str, nac_scale: float = 0.1) -> tuple[Volume, np.ndarray]:
    volume, body = _petct(case_id)
    ct, suv = volume.image
    rng = np.random.default_rng(len(case_id))
    nac = np.where(body, rng.uniform(0.0, 1.0, body.shape), 0.0) * nac_scale
    nac[0, 0, 0] = 50.0  # outside the body: not in the percentile
    image = np.stack([suv, nac, ct]).astype(np.float32)  # on disk: ac_pet, nac_pet, ct
    return Volume(case_id, image, volume.label, volume.affine, ("ac_pet", "nac_pet", "ct")), body


def _hnscc_task(hnscc_ids=("HN-1", "HN-2"), nsclc_ids=("LU-1",), **options):
    volumes = {i: _hnscc(i)[0] for i in (*hnscc_ids, *nsclc_ids)}
    data = FakeData(volumes, {"val": list(hnscc_ids)})
    nsclc = FakeData(volumes, {"test": list(nsclc_ids)})
    return HNSCCNSCLCTransfer(_config(HNSCCNSCLCTransfer, **options), data, {"nsclc": nsclc})


def test_hnscc_nac_pet_is_scaled_by_its_percentile_within_the_body():
    volume, body = _hnscc("HN-1")
    task = _hnscc_task(nac_percentile=90.0)
    assert dict(task.windows()) == {"ct": (-1000.0, 1000.0), "suv": (0.0, 20.0),
                                    "ac_pet": (0.0, 20.0), "nac_pet": "percentile"}
    item = task.prepare(volume)
    nac = volume.image[1]
    high = np.percentile(nac[body], 90.0)
    np.testing.assert_allclose(item.image[0], np.clip(nac / high, 0, 1), atol=1e-6)  # NAC
    np.testing.assert_allclose(item.image[1], np.clip(volume.image[0] / 20, 0, 1), atol=1e-6)
    np.testing.assert_allclose(item.image[2], np.clip((volume.image[2] + 1000) / 2000, 0, 1),
                               atol=1e-6)
    out = WindowSynthesisFormat().normalise_target(task, 2 * nac, nac, None, body,
                                                   key="nac_pet")
    np.testing.assert_allclose(out, np.where(body, np.clip(2 * nac / high, 0, 1), 0), atol=1e-6)
    zero = _hnscc("HN-2", nac_scale=0.0)[0]  # no NAC signal: all 0, not a division by 0
    assert (task.prepare(zero).image[0][body] == 0).all()
    assert (WindowSynthesisFormat().normalise_target(
        task, zero.image[1], zero.image[1], None, body, key="nac_pet") == 0).all()


@pytest.mark.parametrize("evaluate_on, sets, split", [
    ("both", {HNSCC_VAL: ["HN-1", "HN-2"], NSCLC_SET: ["LU-1"]}, "hnscc:val + nsclc:test"),
    ("hnscc", {HNSCC_VAL: ["HN-1", "HN-2"]}, "hnscc:val"),
    ("nsclc", {NSCLC_SET: ["LU-1"]}, "nsclc:test"),
])
def test_hnscc_evaluation_sets(evaluate_on, sets, split):
    task = _hnscc_task(evaluate_on=evaluate_on)
    assert {name: [c.case_id for c in cases] for name, cases in
            task.evaluation_sets().items()} == sets
    assert list(task.evaluation_sets()) == list(sets)
    assert [c.case_id for c in task.test_cases()] == [i for ids in sets.values() for i in ids]
    assert task.evaluation_split() == split


def test_hnscc_sets_are_capped_and_a_case_id_in_both_is_refused():
    task = _hnscc_task(max_test_cases=1)
    assert [c.case_id for c in task.test_cases()] == ["HN-1", "LU-1"]
    task = _hnscc_task(nsclc_ids=("LU-1", "HN-2"))
    with pytest.raises(DataError) as error:
        task.evaluation_sets()
    assert str(error.value) == "case HN-2: case id in both HNSCC validation and NSCLC"
    task = HNSCCNSCLCTransfer(_config(HNSCCNSCLCTransfer), FakeData({}, {"val": []}))
    with pytest.raises(ConfigError) as error:
        task.evaluation_sets()
    assert str(error.value) == (
        "hnscc_nsclc_transfer also evaluates on NSCLC: pass --set nsclc_root=DIR (a converted "
        "NSCLC root or an nsclc phantom), or --set evaluate_on=hnscc")


def test_hnscc_rows_carry_the_evaluation_set():
    task = _hnscc_task()
    volume, body = _hnscc("LU-1")
    item = task.prepare(volume)
    assert item.eval_set == NSCLC_SET
    prediction = item.reference + 0.02
    rows = task.score(prediction.astype(np.float32), item, task.settings()[0])
    assert {r["setting"] for r in rows} == {NSCLC_SET}
    assert [r["target"] for r in rows][:9] == ["NAC->CT"] * 3 + ["NAC->AC"] * 3 + ["Avg."] * 3
    assert "NAC->AC" in {r["target"] for r in rows[9:]}  # the uptake errors of NAC->AC
    with pytest.raises(DataError) as error:
        task.prepare(_hnscc("HN-9")[0])
    assert str(error.value) == "case HN-9: case is in no evaluation set of this task"
    plain = PetCtItem("x", item.image, item.reference, SPACING, body)
    assert task.row_setting(plain, Setting("NAC", "from NAC", (True, False, False))) == "NAC"
    assert task.avg_setting(plain) == "all"
