"""The tasks' protocol code on small hand-built volumes: brats18_missing's crop, z-score,
labels and scores, the shared synthesis protocol (brats23_transfer), the task contract's
pairs, input masking and case limits, and the intensity windows and body mask.

Each expected value is computed here by hand (numpy) from the protocol as the task
documents it, not by calling the task's own helpers; these tests are what the mutation
audit of the task files runs (docs/testing.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from xhbench import metrics
from xhbench.datasets.base import Case, Volume
from xhbench.errors import ConfigError, DataError
from xhbench.imaging import body_mask, from_window, to_window
from xhbench.tasks.base import EvalItem, Setting, TaskConfig, parse_pairs
from xhbench.tasks.brats18_missing import MASKS, BraTS18Missing, preprocess
from xhbench.tasks.brats23_transfer import BraTS23Transfer, ZScoreSynthesisFormat
from xhbench.tasks.downstream import DOWNSTREAM_HIGHER_IS_BETTER
from xhbench.tasks.synthesis import zscore_in_mask


class FakeData:
    """A data set in memory: ``read`` returns the case's volume, ``cases`` its split."""

    def __init__(self, volumes: dict[str, Volume], splits: dict[str, list[str]] | None = None):
        self.volumes = volumes
        self.splits = splits or {}

    def read(self, case: Case) -> Volume:
        return self.volumes[case.case_id]

    def cases(self, split: str) -> list[Case]:
        return [Case(i, i, {}) for i in self.splits[split]]


def case(case_id: str) -> Case:
    return Case(case_id, case_id, {})


def affine(*spacing: float) -> np.ndarray:
    return np.diag([*spacing, 1.0])


# -- imaging: windows and the body mask -------------------------------------------------------
def test_to_window_clips_and_maps_to_the_unit_interval_in_float32():
    hu = np.array([-1500.0, -1000.0, -500.0, 0.0, 999.0, 1000.0, 2000.0])
    out = to_window(hu, -1000.0, 1000.0)
    assert out.dtype == np.float32
    assert out.tolist() == pytest.approx([0.0, 0.0, 0.25, 0.5, 0.9995, 1.0, 1.0])
    assert to_window(np.array([-1.0, 5.0, 30.0]), 0.0, 20.0).tolist() == [0.0, 0.25, 1.0]


@pytest.mark.parametrize("low, high", [(1.0, 1.0), (2.0, 1.0)])
def test_to_window_refuses_an_empty_window(low, high):
    with pytest.raises(ConfigError, match=rf"^window \[{low}, {high}\] is empty$"):
        to_window(np.zeros(3), low, high)


def test_from_window_is_the_inverse_inside_the_window():
    assert from_window(np.array([0.0, 0.25, 1.0]), -1000.0, 1000.0).tolist() == [
        -1000.0, -500.0, 1000.0]
    assert from_window(np.array([0.5]), 0.0, 20.0).tolist() == [10.0]


def test_body_mask_threshold_holes_per_axial_slice_and_largest_component():
    ct = np.full((14, 14, 6), -1000.0)
    ct[2:12, 2:12, :] = 40.0  # the body through every axial slice
    ct[5:9, 5:9, :] = -850.0  # a lung: a hole in each axial (x, y) slice -> body
    ct[0, 13, :] = -500.0  # exactly at the threshold: not above it
    ct[12, 5, :] = -500.0  # the same, touching the body
    ct[13, 0:2, 0:2] = 60.0  # a detached couch speck: a smaller component, dropped
    body = body_mask(ct)
    expected = np.zeros(ct.shape, bool)
    expected[2:12, 2:12, :] = True
    np.testing.assert_array_equal(body, expected)
    assert body_mask(ct, threshold_hu=-900.0)[5:9, 5:9, :].all()

    # a cavity closed in (x, z) but open in every axial slice: holes are filled per axial
    # slice only, so it stays outside the body
    ct = np.full((10, 10, 10), -1000.0)
    ct[2:8, 2:8, 2:8] = 40.0
    ct[4:6, 4:6, 2:8] = -1000.0  # a tube along z: a hole in each axial slice -> filled
    ct[0:10, 4:6, 4:6] = -1000.0  # a tube along x: open in the axial slices 4 and 5
    body = body_mask(ct)
    assert body[4:6, 4:6, 2:4].all() and body[4:6, 4:6, 6:8].all()
    assert not body[2:8, 4:6, 4:6].any()
    assert body.sum() == 6 * 6 * 6 - 6 * 2 * 2

    # two one-voxel components: the first of the largest, never the background
    ct = np.full((5, 5, 5), -1000.0)
    ct[1, 1, 1] = ct[3, 3, 3] = 0.0
    np.testing.assert_array_equal(np.argwhere(body_mask(ct)), [[1, 1, 1]])

    # one component: kept as it is, even where the background is larger
    ct = np.full((12, 12, 4), -1000.0)
    ct[1:3, 1:3, :] = 0.0
    np.testing.assert_array_equal(body_mask(ct), ct > -500)


# -- the task contract: pairs, inputs of a setting, case limits -------------------------------
NAMES = ("T1", "T1ce", "T2", "FLAIR")


def test_parse_pairs_reads_all_and_lists_case_insensitively():
    assert parse_pairs(" ALL ", NAMES) == [(s, t) for s in NAMES for t in NAMES]
    assert parse_pairs("t1 -> t2, T2->flair,T1->T1ce", NAMES) == [
        ("T1", "T2"), ("T2", "FLAIR"), ("T1", "T1ce")]


@pytest.mark.parametrize("text, bad", [("T1T2", "T1T2"), ("T1->PD", "T1->PD"),
                                       ("T1->T2, PD->T1", "PD->T1")])
def test_parse_pairs_names_the_unreadable_item(text, bad):
    message = (f"pairs: cannot read '{bad}'; write SOURCE->TARGET with modalities "
               "T1, T1ce, T2, FLAIR, or 'all'")
    with pytest.raises(ConfigError) as error:
        parse_pairs(text, NAMES)
    assert str(error.value) == message


def test_inputs_zero_the_missing_channels_unless_the_method_handles_them():
    task = BraTS18Missing(BraTS18Missing.Config(), None)
    image = np.arange(1, 4 * 8 + 1, dtype=np.float32).reshape(4, 2, 2, 2)
    item = EvalItem("c", image, None, (1.0, 1.0, 1.0))
    setting = Setting("x", "flair+t1", (True, False, True, False))
    out = task.inputs(item, setting, handles_missing=False)
    np.testing.assert_array_equal(out, image * np.array([1, 0, 1, 0])[:, None, None, None])
    assert task.inputs(item, setting, handles_missing=True) is image


def test_train_and_test_cases_come_from_their_splits_capped_by_the_limits():
    data = FakeData({}, {"train": ["a", "b", "c"], "test": ["x", "y", "z"]})
    config = BraTS18Missing.Config()
    task = BraTS18Missing(config, data)
    assert [c.case_id for c in task.train_cases()] == ["a", "b", "c"]
    assert [c.case_id for c in task.test_cases()] == ["x", "y", "z"]
    assert task.evaluation_split() == "test"
    config.max_train_cases, config.max_test_cases = 2, 1
    assert [c.case_id for c in task.train_cases()] == ["a", "b"]
    assert [c.case_id for c in task.test_cases()] == ["x"]
    assert "max_test_cases" in {f for f in TaskConfig.__dataclass_fields__}


# -- brats18_missing: preprocessing --------------------------------------------------------------
def _brats18_volume(label: bool = True) -> tuple[Volume, np.ndarray, tuple[slice, ...]]:
    """Four modalities on disk in the order t1, t2, flair, t1ce; the brain is the union of
    their non-zero voxels (one voxel is non-zero in T2 only) inside an off-centre box."""
    rng = np.random.default_rng(7)
    shape = (12, 10, 9)
    brain = np.zeros(shape, bool)
    brain[2:9, 3:8, 1:6] = True
    brain[2, 3, 1] = False  # not a full box: a corner outside the brain
    image = np.zeros((4, *shape), np.float32)
    for c, (mean, sd) in enumerate([(300, 40), (700, 90), (500, 60), (900, 120)]):
        image[c][brain] = rng.normal(mean, sd, brain.sum())
    image[0][4, 4, 4] = 0.0  # zero in T1 but inside the brain (non-zero in the others)
    for c in (0, 2, 3):  # the box's far corner is non-zero in T2 only
        image[c][8, 7, 5] = 0.0
    seg = np.zeros(shape, np.uint8)
    seg[3:7, 4:7, 2:5] = 2
    seg[4:6, 5:7, 3:5] = 1
    seg[5, 5:7, 3:5] = 4
    volume = Volume("Brats18_X_1", image, seg if label else None, affine(1.0, 1.0, 1.0),
                    ("t1", "t2", "flair", "t1ce"))
    box = (slice(2, 9), slice(3, 8), slice(1, 6))
    return volume, brain, box


def test_brats18_preprocess_crops_to_the_brain_box_and_z_scores_in_task_order():
    volume, brain, box = _brats18_volume()
    out, label = preprocess(volume)
    assert out.shape == (4, 7, 5, 5) and out.dtype == np.float32
    np.testing.assert_array_equal(label, volume.label[box])
    inside = brain[box]
    for channel, disk in enumerate([2, 3, 0, 1]):  # flair, t1ce, t1, t2
        values = volume.image[disk][box][inside].astype(np.float64)
        expected = np.zeros(inside.shape)
        expected[inside] = (values - values.mean()) / values.std()
        np.testing.assert_allclose(out[channel], expected, atol=1e-4)
    assert preprocess(_brats18_volume(label=False)[0])[1] is None
    small = Volume(volume.case_id, volume.image * 1e-3, None, volume.affine, volume.modalities)
    np.testing.assert_allclose(preprocess(small)[0], out, atol=1e-4)  # std < 1: no floor


def test_brats18_preprocess_keeps_a_constant_modality_finite_and_refuses_an_empty_case():
    volume, brain, box = _brats18_volume()
    volume.image[1][brain] = 5.0  # T2 constant over the brain: std 0
    out, _ = preprocess(volume)
    assert np.isfinite(out).all() and (out[3] == 0).all()
    empty = Volume("Brats18_E_1", np.zeros((4, 3, 3, 3), np.float32), None, np.eye(4),
                   ("flair", "t1ce", "t1", "t2"))
    with pytest.raises(DataError) as error:
        preprocess(empty)
    assert str(error.value) == "case Brats18_E_1: all modalities are empty"


# -- brats18_missing: settings, loading, preparing ------------------------------------------------
def test_brats18_settings_are_the_fifteen_masks_or_all_four_only():
    config = BraTS18Missing.Config()
    assert BraTS18Missing(config, None).settings() == list(MASKS)
    config.settings = "full"
    assert BraTS18Missing(config, None).settings() == [MASKS[14]]
    assert MASKS[14].available == (True,) * 4


def test_brats18_load_case_maps_labels_to_classes_and_refuses_a_missing_seg():
    volume, brain, box = _brats18_volume()
    task = BraTS18Missing(BraTS18Missing.Config(), FakeData({volume.case_id: volume}))
    loaded = task.load_case(case(volume.case_id))
    expected_classes = np.select([volume.label == v for v in (1, 2, 4)], [1, 2, 3], 0)[box]
    np.testing.assert_array_equal(loaded["label"], expected_classes)
    assert loaded["label"].dtype == np.int64
    np.testing.assert_array_equal(loaded["foreground"], brain[box])
    np.testing.assert_array_equal(loaded["image"], preprocess(volume)[0])
    unlabelled = _brats18_volume(label=False)[0]
    task = BraTS18Missing(BraTS18Missing.Config(), FakeData({unlabelled.case_id: unlabelled}))
    with pytest.raises(DataError) as error:
        task.load_case(case(unlabelled.case_id))
    assert str(error.value) == "case Brats18_X_1: training case has no segmentation"


def test_brats18_pretraining_case_renames_brats23_files_to_the_task_channels():
    volume, brain, box = _brats18_volume()
    as_brats23 = Volume("BraTS-GLI-00001-000", volume.image, volume.label, volume.affine,
                        ("t1n", "t2w", "t2f", "t1c"))  # = t1, t2, flair, t1ce
    task = BraTS18Missing(BraTS18Missing.Config(), None,
                          {"pretraining": FakeData({as_brats23.case_id: as_brats23})})
    loaded = task.load_pretraining_case(case(as_brats23.case_id))
    np.testing.assert_array_equal(loaded["image"], preprocess(volume)[0])
    np.testing.assert_array_equal(loaded["foreground"], brain[box])
    assert loaded["label"] is None
    empty = Volume("BraTS-GLI-00009-000", np.zeros((4, 3, 3, 3), np.float32), None, np.eye(4),
                   as_brats23.modalities)
    task.extra_data["pretraining"].volumes[empty.case_id] = empty
    with pytest.raises(DataError) as error:
        task.load_pretraining_case(case(empty.case_id))
    assert str(error.value) == "case BraTS-GLI-00009-000: all modalities are empty"


def test_brats18_prepare_keeps_label_values_spacing_and_the_brain():
    volume, brain, box = _brats18_volume()
    volume = Volume(volume.case_id, volume.image, volume.label, affine(1.0, 2.0, 1.5),
                    volume.modalities)
    task = BraTS18Missing(BraTS18Missing.Config(), None)
    item = task.prepare(volume)
    assert item.case_id == "Brats18_X_1" and item.spacing == (1.0, 2.0, 1.5)
    np.testing.assert_array_equal(item.reference, volume.label[box])  # values 0, 1, 2, 4
    np.testing.assert_array_equal(item.image, preprocess(volume)[0])
    np.testing.assert_array_equal(item.foreground, brain[box])
    with pytest.raises(DataError) as error:
        task.prepare(_brats18_volume(label=False)[0])
    assert str(error.value) == "case Brats18_X_1: test case has no segmentation"


# -- brats18_missing: scoring -------------------------------------------------------------------
def _dice(pred: np.ndarray, ref: np.ndarray) -> float:
    if not pred.any() and not ref.any():
        return 1.0
    return 2.0 * (pred & ref).sum() / (pred.sum() + ref.sum())


def _brats18_case(spacing=(1.0, 1.0, 2.0)) -> EvalItem:
    ref = np.zeros((10, 10, 10), np.int64)  # label values
    ref[1:7, 1:7, 1:7] = 2  # edema
    ref[2:6, 2:6, 2:6] = 1  # necrosis
    ref[3:5, 3:5, 3:6] = 4  # enhancing: 12 voxels
    return EvalItem("Brats18_S_1", np.zeros((4, 10, 10, 10), np.float32), ref, spacing)


def _by_target(rows: list[dict], metric: str = "dice") -> dict[str, float]:
    return {r["target"]: r["value"] for r in rows if r["metric"] == metric}


def test_brats18_score_gives_the_regions_dice_per_case_and_setting():
    item = _brats18_case()
    pred = np.zeros(item.reference.shape, np.int64)  # class indices 0-3 (label 4 = class 3)
    pred[1:7, 1:7, 2:7] = 2
    pred[2:6, 2:6, 3:7] = 1
    pred[3:5, 3:6, 3:6] = 3  # 18 ET voxels, 12 of them right
    task = BraTS18Missing(BraTS18Missing.Config(), None)
    setting = MASKS[6]
    rows = task.score(pred, item, setting)
    assert [(r["case"], r["setting"], r["metric"], r["target"]) for r in rows] == [
        ("Brats18_S_1", "7", "dice", t) for t in ("WT", "TC", "ET", "ET_postpro")]
    labels = np.array([0, 1, 2, 4])[pred]
    ref = item.reference
    expected = {
        "WT": _dice(labels > 0, ref > 0),
        "TC": _dice(np.isin(labels, (1, 4)), np.isin(ref, (1, 4))),
        "ET": _dice(labels == 4, ref == 4),
        # 18 voxels x 2 mm^3 = 36 mm^3 < 500 mm^3: emptied
        "ET_postpro": _dice(np.zeros_like(ref, bool), ref == 4),
    }
    assert _by_target(rows) == pytest.approx(expected, abs=1e-6)
    assert expected["ET"] == pytest.approx(2 * 12 / 30) and expected["ET_postpro"] == 0.0


@pytest.mark.parametrize("mm3, kept", [(36.0, True), (36.2, True), (34.0, True),
                                       (37.8, False), (38.0, False)])
def test_brats18_et_postpro_threshold_is_in_mm3_at_the_case_spacing(mm3, kept):
    item = _brats18_case(spacing=(1.0, 1.0, 2.0))  # 2 mm^3 per voxel
    pred = np.zeros(item.reference.shape, np.int64)
    pred[3:5, 3:6, 3:6] = 3  # 18 voxels = 36 mm^3
    config = BraTS18Missing.Config()
    config.et_postpro_mm3 = mm3  # rounded to whole voxels: 36.2 mm^3 -> 18, 37.8 -> 19
    values = _by_target(BraTS18Missing(config, None).score(pred, item, MASKS[14]))
    assert values["ET_postpro"] == pytest.approx(values["ET"] if kept else 0.0, abs=1e-6)
    assert values["ET"] == pytest.approx(2 * 12 / 30)


def test_brats18_empty_regions_score_one_and_a_false_positive_zero():
    item = _brats18_case()
    item.reference[item.reference == 4] = 1  # no enhancing tumour in the reference
    pred = np.where(item.reference > 0, 1, 0)  # necrosis only, no ET predicted
    values = _by_target(BraTS18Missing(BraTS18Missing.Config(), None).score(
        pred, item, MASKS[14]))
    assert values["ET"] == 1.0 and values["ET_postpro"] == 1.0
    assert values["WT"] == pytest.approx(1.0)
    pred[0, 0, 0] = 3  # one false ET voxel: ET 0, but ET_postpro removes it
    values = _by_target(BraTS18Missing(BraTS18Missing.Config(), None).score(
        pred, item, MASKS[14]))
    assert values["ET"] == pytest.approx(0.0, abs=1e-6) and values["ET_postpro"] == 1.0


def test_brats18_hd95_option_scores_each_region_at_the_spacing_with_the_brats_rule():
    item = _brats18_case(spacing=(1.0, 1.0, 3.0))
    item.reference[item.reference == 4] = 1  # no ET in the reference
    pred = np.where(item.reference > 0, 2, 0)
    pred[1:7, 1:7, 7] = 2  # WT one slice too far in z: 3 mm
    pred[2, 2, 2] = 3  # a false ET voxel against an empty reference ET
    config = BraTS18Missing.Config()
    config.metrics = "paper+hd95"
    rows = BraTS18Missing(config, None).score(pred, item, MASKS[3])
    assert [(r["metric"], r["target"]) for r in rows][4:] == [
        ("hd95", "WT"), ("hd95", "TC"), ("hd95", "ET")]
    hd95 = _by_target(rows, "hd95")
    assert hd95["WT"] == pytest.approx(3.0)
    assert hd95["ET"] == metrics.BRATS_MAX_DISTANCE_MM  # empty reference, non-empty prediction
    tc_pred = np.zeros(pred.shape, bool)
    tc_pred[2, 2, 2] = True  # the false ET voxel is TC too
    assert hd95["TC"] == pytest.approx(metrics.hd95(tc_pred, np.isin(item.reference, (1, 4)),
                                                    spacing=(1.0, 1.0, 3.0)))
    assert all(r["setting"] == "4" for r in rows)
    assert BraTS18Missing(BraTS18Missing.Config(), None).higher_is_better() == {"dice": True}
    assert BraTS18Missing(config, None).higher_is_better() == {"dice": True, "hd95": False}


def test_brats18_lesionwise_rows_map_label_4_to_the_packages_et():
    pytest.importorskip("panoptica", reason="needs pip install 'xhbench[brats]'")
    item = _brats18_case()
    config = BraTS18Missing.Config()
    config.metrics = "paper+lesionwise"
    task = BraTS18Missing(config, None)
    oracle = np.searchsorted([0, 1, 2, 4], item.reference)
    rows = task.score(oracle, item, MASKS[14])
    assert [(r["metric"], r["target"]) for r in rows[4:]] == [
        (m, region) for region in ("WT", "TC", "ET")
        for m in ("lesionwise_dice", "lesionwise_hd95")]
    assert _by_target(rows, "lesionwise_dice") == {"WT": 1.0, "TC": 1.0, "ET": 1.0}
    assert _by_target(rows, "lesionwise_hd95") == {"WT": 0.0, "TC": 0.0, "ET": 0.0}
    missed_et = np.where(oracle == 3, 1, oracle)  # the enhancing tumour called necrosis
    rows = task.score(missed_et, item, MASKS[14])
    lesionwise = _by_target(rows, "lesionwise_dice")
    assert lesionwise["ET"] == 0.0 and lesionwise["TC"] == 1.0
    assert task.higher_is_better() == {"dice": True, "lesionwise_dice": True,
                                       "lesionwise_hd95": False}
    # distances in mm at the case's spacing (isotropic: panoptica 2.1.7 applies an
    # anisotropic spacing in reversed axis order, see docs/testing.md)
    item = _brats18_case(spacing=(2.0, 2.0, 2.0))
    longer = oracle.copy()
    longer[1:7, 1:7, 7] = 2  # WT one slice further: 2 mm
    hd95 = _by_target(task.score(longer, item, MASKS[14]), "lesionwise_hd95")
    assert hd95["WT"] == pytest.approx(metrics.hd95(longer > 0, item.reference > 0,
                                                    spacing=(2.0, 2.0, 2.0)))
    assert hd95["WT"] == pytest.approx(2.0) and hd95["ET"] == 0.0


# -- the synthesis protocol (brats23_transfer) ---------------------------------------------------
def _brats23_volume() -> tuple[Volume, np.ndarray]:
    rng = np.random.default_rng(11)
    shape = (16, 16, 16)
    brain = np.zeros(shape, bool)
    brain[2:9, 3:13, 2:14] = True  # SSIM's valid interior [5:11] holds background too
    image = np.zeros((4, *shape), np.float32)
    for c, (mean, sd) in enumerate([(200, 30), (400, 50), (600, 70), (800, 90)]):
        image[c][brain] = rng.normal(mean, sd, brain.sum())
    image[2][5, 5, 5] = 0.0  # zero in one modality, still brain
    # on disk: t2f, t1n, t1c, t2w (the task's channels are T1, T1ce, T2, FLAIR)
    return Volume("BraTS-GLI-00002-000", image, None, affine(1.0, 1.0, 1.0),
                  ("t2f", "t1n", "t1c", "t2w")), brain


def _brats23_task(**options) -> BraTS23Transfer:
    config = BraTS23Transfer.Config()
    for key, value in options.items():
        setattr(config, key, value)
    return BraTS23Transfer(config, None)


def _zscored(values: np.ndarray, brain: np.ndarray) -> np.ndarray:
    out = np.zeros(values.shape)
    inside = values[brain].astype(np.float64)
    out[brain] = (inside - inside.mean()) / inside.std()
    return out


def test_brats23_prepare_reorders_channels_and_z_scores_over_the_brain():
    volume, brain = _brats23_volume()
    item = _brats23_task().prepare(volume)
    assert item.image.dtype == np.float32 and item.reference is item.image
    for channel, disk in enumerate([1, 2, 3, 0]):
        np.testing.assert_allclose(item.image[channel], _zscored(volume.image[disk], brain),
                                   atol=1e-4)
    np.testing.assert_array_equal(item.foreground, brain)
    assert item.case_id == volume.case_id and item.spacing == (1.0, 1.0, 1.0)
    assert item.label is None
    labelled = Volume(volume.case_id, volume.image, brain.astype(np.uint8) * 2, volume.affine,
                      volume.modalities)  # the label only downstream segmentation reads
    np.testing.assert_array_equal(_brats23_task().prepare(labelled).label, labelled.label)
    task = _brats23_task()
    task.data = FakeData({volume.case_id: volume})
    loaded = task.load_case(case(volume.case_id))
    np.testing.assert_array_equal(loaded["image"], item.image)
    np.testing.assert_array_equal(loaded["foreground"], brain)
    assert loaded["label"] is None
    empty = Volume("BraTS-GLI-00003-000", np.zeros((4, 3, 3, 3), np.float32), None,
                   np.eye(4), volume.modalities)
    with pytest.raises(DataError) as error:
        task.prepare(empty)
    assert str(error.value) == "case BraTS-GLI-00003-000: empty foreground"


def test_zscore_in_mask_is_zero_outside_and_finite_for_a_constant_channel():
    image = np.stack([np.arange(27, dtype=np.float64).reshape(3, 3, 3), np.full((3, 3, 3), 4.0)])
    mask = np.zeros((3, 3, 3), bool)
    mask[1:, 1:, :] = True
    out = zscore_in_mask(image, mask)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], _zscored(image[0], mask), atol=1e-6)
    assert (out[1] == 0).all()
    small = zscore_in_mask(image * 1e-3, mask)  # std under 1: the same z-scores
    np.testing.assert_allclose(small, out, atol=1e-5)


def test_synthesis_settings_are_the_sources_in_pair_order():
    task = _brats23_task(pairs="T2->FLAIR,T1->T2,T2->T1,T1->T1ce")
    assert task.settings() == [
        Setting("T2", "from T2", (False, False, True, False)),
        Setting("T1", "from T1", (True, False, False, False))]
    assert [s.id for s in _brats23_task().settings()] == list(NAMES)


def _paper_protocol(pred: np.ndarray, ref: np.ndarray, fg: np.ndarray) -> tuple:
    low, high = ref[fg].min(), ref[fg].max()
    r = np.where(fg, (ref - low) / (high - low), 0.0)
    p = np.where(fg, np.clip((pred - low) / (high - low), 0.0, 1.0), 0.0)
    return p, r


def _expected(p: np.ndarray, r: np.ndarray, fg: np.ndarray) -> dict[str, float]:
    mse = ((p - r)[fg] ** 2).mean()
    return {"psnr": 10 * np.log10(1.0 / mse),
            "nmse": ((p - r)[fg] ** 2).sum() / (r[fg] ** 2).sum(),
            "ssim": metrics.ssim(p.astype(np.float32), r.astype(np.float32), data_range=1.0,
                                 mask=fg)}


def test_synthesis_score_maps_by_the_reference_range_and_scores_the_target_channel():
    volume, brain = _brats23_volume()
    task = _brats23_task(pairs="T1->T2,T1->FLAIR,T2->T1")
    item = task.prepare(volume)
    rng = np.random.default_rng(5)
    prediction = item.reference + rng.normal(0, 0.3, item.reference.shape).astype(np.float32)
    prediction[3] += 0.5  # FLAIR off by a constant: it must not be scored as T2
    prediction[2][brain & (np.indices(brain.shape)[0] == 6)] = 50.0  # clipped to 1
    rows = task.score(prediction, item, task.settings()[0])
    assert [(r["target"], r["metric"]) for r in rows] == [
        (pair, m) for pair in ("T1->T2", "T1->FLAIR") for m in ("psnr", "nmse", "ssim")]
    assert {(r["case"], r["setting"]) for r in rows} == {(volume.case_id, "T1")}
    values = {(r["target"], r["metric"]): r["value"] for r in rows}
    for pair, channel in (("T1->T2", 2), ("T1->FLAIR", 3)):
        p, r = _paper_protocol(prediction[channel], item.reference[channel], brain)
        for metric, value in _expected(p, r, brain).items():
            assert values[(pair, metric)] == pytest.approx(value, rel=1e-4), (pair, metric)
    assert task.higher_is_better() == {"psnr": True, "nmse": False, "ssim": True}
    assert _brats23_task(downstream=True).higher_is_better() == {
        "psnr": True, "nmse": False, "ssim": True, **DOWNSTREAM_HIGHER_IS_BETTER}


def test_synthesis_brasyn_protocol_maps_each_volume_by_its_own_percentiles():
    volume, brain = _brats23_volume()
    task = _brats23_task(pairs="T1->T2", metric_protocol="brasyn")
    item = task.prepare(volume)
    noise = np.random.default_rng(2).normal(0.0, 0.2, item.reference.shape)
    prediction = 3.0 * item.reference + 1.0 + noise  # values beyond both percentiles
    prediction[2][4, 4, 4] = 40.0  # an outlier above the 99.5th percentile
    prediction[2][3, 4, 3:6] = -40.0  # three below the 0.5th (of 840 brain voxels): to 0
    rows = task.score(prediction, item, task.settings()[0])
    values = {r["metric"]: r["value"] for r in rows}

    def unit(v):
        low, high = np.percentile(v[brain], [0.5, 99.5])
        return np.where(brain, np.clip((v - low) / (high - low), 0.0, 1.0), 0.0)

    p, r = unit(prediction[2]), unit(item.reference[2])
    for metric, value in _expected(p, r, brain).items():
        assert values[metric] == pytest.approx(value, rel=1e-4), metric
    # a prediction on a much narrower scale (percentile range under 1) maps the same way
    narrow = 0.05 * prediction
    values = {r["metric"]: r["value"] for r in task.score(narrow, item, task.settings()[0])}
    for metric, value in _expected(unit(narrow[2]), r, brain).items():
        assert values[metric] == pytest.approx(value, rel=1e-4), metric


def test_zscore_format_normalises_a_prediction_with_the_references_statistics():
    volume, brain = _brats23_volume()
    raw = volume.image[0].astype(np.float64)  # FLAIR as on disk
    task = _brats23_task()
    reference = _zscored(raw, brain)
    out = ZScoreSynthesisFormat().normalise_target(task, raw + 10.0, raw, reference, brain,
                                                   key="t2f")
    inside = raw[brain]
    expected = np.where(brain, (raw + 10.0 - inside.mean()) / inside.std(), 0.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-4)
    constant = np.where(brain, 7.0, 0.0)
    out = ZScoreSynthesisFormat().normalise_target(task, constant + 1e-6, constant, constant,
                                                   brain, key="t2f")
    # std 0: divided by the floor 1e-8, as the reference was (1e-6 off -> 100 z-units)
    np.testing.assert_allclose(out, np.where(brain, 100.0, 0.0), rtol=1e-3)
