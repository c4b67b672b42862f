"""Metric inputs at their edges: what is accepted, what each error names, and that integer
inputs are scored in float64 (found by mutation testing, docs/testing.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

from xhbench import metrics
from xhbench.metrics import autopet

SPACING = (2.0, 2.0, 3.0)


def blob(*corners, shape=(8, 8, 8)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for corner in corners:
        mask[tuple(slice(c, c + 2) for c in corner)] = True
    return mask


# -- errors name the argument and the problem ---------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: metrics.dice(np.zeros((4, 4)), np.zeros((4, 4))),
     r"^pred must be a 3D volume \(X, Y, Z\) or a batch \(B, X, Y, Z\); got shape \(4, 4\)$"),
    (lambda: metrics.dice(np.zeros((4, 4, 4)), np.full((4, 4, 4), 2)),
     r"^ref must be a binary mask"),
    (lambda: metrics.dice(np.zeros((4, 4, 4)), np.zeros((4, 4, 5))),
     r"^pred and ref must have the same shape; got pred \(4, 4, 4\), ref \(4, 4, 5\)$"),
    (lambda: metrics.dice(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), empty="maybe"),
     r"^empty must be one of \['nan', 'one', 'zero'\], got 'maybe'$"),
    (lambda: metrics.brats_regions(np.zeros((4, 4, 4)), scheme="brats99"),
     r"^scheme must be one of \['brats18', 'brats23'\], got 'brats99'$"),
    (lambda: metrics.brats_regions(np.r_[0, 1, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13]
                                   .reshape(2, 2, 3)),
     r"^label holds values \[3, 5, 6, 7, 8, 9, 10, 11, 12, 13\] outside the brats18 labels"),
    (lambda: metrics.et_postprocess(np.zeros((4, 4, 4)), min_voxels=-1),
     r"^min_voxels must be a non-negative integer, got -1$"),
    (lambda: metrics.et_postprocess(np.zeros((4, 4, 4)), min_voxels=2.5),
     r"^min_voxels must be a non-negative integer, got 2.5$"),
    (lambda: metrics.et_postprocess(np.full((4, 4, 4), 2)), r"^et_mask must be a binary mask"),
    (lambda: metrics.et_postprocess(np.zeros((4, 4))), r"^et_mask must be a 3D volume"),
    (lambda: metrics.detection_rates(np.array(1), [True]),
     r"^pred_positive must hold one entry per case, got a scalar$"),
    (lambda: metrics.detection_rates([True], np.array([2])), r"^ref_positive must be a binary"),
    (lambda: metrics.detection_rates([True, np.full(3, 2)], [True, True]),
     r"^pred_positive\[1\] must be a binary mask"),
    (lambda: metrics.detection_rates([True, False], [True]),
     r"^pred_positive has 2 cases but ref_positive has 1$"),
    (lambda: metrics.nmse(np.ones((3, 4, 4, 4)), np.zeros((3, 4, 4, 4))),
     r"^NMSE is undefined: ref is zero on every voxel \(batch item 0\)$"),
    (lambda: metrics.psnr(np.ones((4, 4, 4)), np.ones((4, 4, 4)) * 2,
                          mask=np.zeros((4, 4, 4), bool)),
     r"^mask selects no voxel$"),
    (lambda: metrics.psnr(np.ones((4, 4, 4)), np.ones((4, 4, 4))),
     r"^the default data range max\(ref\) - min\(ref\) must be a finite number > 0, got 0.0$"),
    (lambda: metrics.psnr(np.ones((4, 4, 4)), np.zeros((4, 4, 4)), data_range=-1),
     r"^data_range must be a finite number > 0, got -1$"),
    (lambda: metrics.psnr(np.ones((4, 4, 4)), np.zeros((4, 4, 4)), mask=np.ones((4, 4))),
     r"^mask has shape \(4, 4\), but the volumes have shape \(4, 4, 4\)$"),
    (lambda: metrics.psnr(np.full((4, 4, 4), np.nan), np.zeros((4, 4, 4))),
     r"^pred contains NaN or infinite values$"),
    (lambda: metrics.psnr(np.zeros((4, 4, 4)), np.full((4, 4, 4), np.inf)),
     r"^ref contains NaN or infinite values$"),
    (lambda: metrics.psnr(np.zeros((0, 4, 4)), np.zeros((0, 4, 4))),
     r"^pred and ref are empty \(shape \(1, 0, 4, 4\)\)$"),
    (lambda: metrics.psnr(np.array(["a"] * 8).reshape(2, 2, 2), np.zeros((2, 2, 2))),
     r"^pred must hold real numbers or booleans, got dtype <U1$"),
    (lambda: metrics.psnr(torch.zeros(2, 2, 2, dtype=torch.complex64), np.zeros((2, 2, 2))),
     r"^pred must be real-valued, got dtype torch.complex64$"),
    (lambda: autopet.voxel_volume_ml((1.0, 0.0, 1.0)),
     r"^spacing must be three finite numbers > 0 \(mm\), got \(1.0, 0.0, 1.0\)$"),
    (lambda: autopet.voxel_volume_ml((1.0, 1.0)),
     r"^spacing must be three finite numbers > 0 \(mm\), got \(1.0, 1.0\)$"),
    (lambda: autopet.connected_components(np.zeros((4, 4, 4)), connectivity=8),
     r"^connectivity must be one of 6, 18, 26; got 8$"),
    (lambda: autopet.connected_components(np.zeros((2, 4, 4, 4))),
     r"^mask must be one 3D volume \(X, Y, Z\); got shape \(2, 4, 4, 4\)$"),
    (lambda: autopet.connected_components(np.full((4, 4, 4), 3)), r"^mask must be a binary"),
    (lambda: autopet.lesion_case_metrics(np.zeros((2, 4, 4, 4)), np.zeros((2, 4, 4, 4)),
                                         SPACING),
     r"^pred must be one 3D volume"),
    (lambda: autopet.lesion_case_metrics(np.zeros((4, 4, 4)), np.full((4, 4, 4), 2), SPACING),
     r"^ref must be a binary mask"),
    # each input's conversion names it (brats_regions, et_postprocess, the case flags)
    (lambda: metrics.brats_regions(np.full((2, 2, 2), "a")),
     r"^label must hold real numbers or booleans, got dtype <U1$"),
    (lambda: metrics.et_postprocess(np.full((2, 2, 2), "a")),
     r"^et_mask must hold real numbers or booleans, got dtype <U1$"),
    (lambda: metrics.detection_rates(np.array(["a"]), [True]),
     r"^pred_positive must hold real numbers or booleans, got dtype <U1$"),
    (lambda: metrics.detection_rates([True, np.array(["a"])], [True, True]),
     r"^pred_positive\[1\] must hold real numbers or booleans, got dtype <U1$"),
    (lambda: metrics.psnr(np.ones((2, 2, 2)), np.zeros((2, 2, 2)), data_range=1,
                          mask=np.full((2, 2, 2), "a")),
     r"^mask must hold real numbers or booleans, got dtype <U1$"),
    (lambda: metrics.psnr(np.zeros((4, 4)), np.zeros((4, 4)), data_range=1),
     r"^pred must be a 3D volume \(X, Y, Z\) or a batch \(B, X, Y, Z\); got shape \(4, 4\)$"),
    (lambda: autopet.connected_components(np.full((2, 2, 2), "a")),
     r"^mask must hold real numbers or booleans, got dtype <U1$"),
    (lambda: autopet.connected_components(np.zeros((4, 4), bool)),
     r"^mask must be a 3D volume \(X, Y, Z\) or a batch \(B, X, Y, Z\); got shape \(4, 4\)$"),
    # at most ten of the unexpected labels are listed
    (lambda: metrics.brats_regions(np.arange(5, 17).reshape(2, 2, 3)),
     r"^label holds values \[5, 6, 7, 8, 9, 10, 11, 12, 13, 14\] outside the brats18 labels "
     r"\[0, 1, 2, 4\]$"),
])
def test_errors_name_the_argument_and_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_case_flags_must_be_a_sequence():
    with pytest.raises(TypeError, match=r"^ref_positive must be a sequence of per-case flags"):
        metrics.detection_rates([True], "yes")


def test_case_detection_rates_name_the_case_and_the_flag():
    rows = [{"case": "a", "setting": "1", "metric": "pred_positive", "value": 1.0},
            {"case": "a", "setting": "1", "metric": "pred_positive", "value": 1.0}]
    with pytest.raises(ValueError, match=r"^case \('a', '1'\) has pred_positive twice$"):
        autopet.case_detection_rates(rows)
    rows = [{"case": "a", "setting": "1", "metric": "ref_positive", "value": 1.0},
            {"case": "b", "setting": "1", "metric": "pred_positive", "value": 0.0},
            {"case": "b", "setting": "1", "metric": "ref_positive", "value": 0.0},
            {"case": "c", "setting": "1", "metric": "pred_positive", "value": 0.0}]
    with pytest.raises(ValueError, match=r"^case \('a', '1'\) lacks pred_positive or ref_"):
        autopet.case_detection_rates(rows)


def test_case_detection_rates_accept_cases_without_a_setting():
    # keys mixing None and strings are ordered by their text, not compared directly
    rows = [{"case": "a", "setting": None, "metric": "pred_positive", "value": 1.0},
            {"case": "a", "setting": None, "metric": "ref_positive", "value": 1.0},
            {"case": "a", "setting": "x", "metric": "pred_positive", "value": 1.0},
            {"case": "a", "setting": "x", "metric": "ref_positive", "value": 0.0}]
    assert autopet.case_detection_rates(rows) == {"TPR": 1.0, "FNR": 0.0, "TNR": 0.0,
                                                  "FPR": 1.0}


# -- edges that are valid ------------------------------------------------------------------
def test_a_zero_size_threshold_keeps_every_et_voxel():
    mask = blob((0, 0, 0))
    assert (metrics.et_postprocess(mask, min_voxels=0) == mask).all()
    assert (metrics.et_postprocess(mask, min_voxels=8) == mask).all()  # exactly 8 voxels
    assert not metrics.et_postprocess(mask, min_voxels=9).any()


def test_sub_millimetre_spacing_is_valid():
    assert autopet.voxel_volume_ml((0.5, 0.5, 0.8)) == pytest.approx(0.2 / 1000)


def test_components_are_labelled_one_to_count_as_int32():
    labels, count = autopet.connected_components(blob((0, 0, 0), (4, 4, 4)))
    assert count == 2 and labels.dtype == np.int32
    assert sorted(np.unique(labels)) == [0, 1, 2]
    assert (np.bincount(labels.ravel()) == [64 - 16 + 448, 8, 8]).all()


def test_detection_rates_count_each_case_once():
    pred = [True, True, False, False, True]
    ref = [True, False, True, False, False]
    rates = metrics.detection_rates(pred, ref)
    assert rates == {"TPR": 0.5, "FNR": 0.5, "TNR": 1 / 3, "FPR": 2 / 3}
    masks = [blob((0, 0, 0)) if flag else np.zeros((8, 8, 8), bool) for flag in pred]
    assert metrics.detection_rates(np.stack(masks), ref) == rates


# -- integer inputs are scored in float64 ---------------------------------------------------
def test_integer_volumes_are_compared_in_float64():
    # uint8 arithmetic would wrap (3 - 250 = 9) and give a wrong, finite error
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, size=(8, 8, 8), dtype=np.uint8)
    pred = rng.integers(0, 256, size=(8, 8, 8), dtype=np.uint8)
    assert metrics.psnr(pred, ref, data_range=255) == pytest.approx(
        peak_signal_noise_ratio(ref, pred, data_range=255))
    expected_nmse = mean_squared_error(ref, pred) / np.mean(ref.astype(np.float64) ** 2)
    assert metrics.nmse(pred, ref) == pytest.approx(expected_nmse)


def test_a_batch_is_scored_item_by_item_whatever_its_size():
    # batch size 2 and volumes of other sizes: each item's voxel count, not the first axis's
    rng = np.random.default_rng(1)
    ref = rng.uniform(0.5, 1.0, size=(2, 3, 4, 5))
    pred = ref + rng.normal(0, 0.05, size=ref.shape)
    assert metrics.psnr(pred, ref, data_range=1.0) == pytest.approx(
        [peak_signal_noise_ratio(r, p, data_range=1.0) for p, r in zip(pred, ref)])
    assert metrics.nmse(pred, ref) == pytest.approx(
        [mean_squared_error(r, p) / np.mean(r**2) for p, r in zip(pred, ref)])


@pytest.mark.parametrize("metric", [metrics.psnr, metrics.nmse])
def test_an_empty_mask_names_the_batch_item(metric):
    mask = np.ones((2, 4, 4, 4), bool)
    mask[1] = False
    with pytest.raises(ValueError) as error:
        metric(np.ones((2, 4, 4, 4)), np.full((2, 4, 4, 4), 2.0), mask=mask,
               **({"data_range": 1.0} if metric is metrics.psnr else {}))
    assert str(error.value) == "mask selects no voxel (batch item 1)"


def test_a_constant_reference_names_its_batch_item():
    ref = np.stack([np.arange(64.0).reshape(4, 4, 4), np.full((4, 4, 4), 3.0)])
    with pytest.raises(ValueError) as error:
        metrics.psnr(ref + 1, ref)
    assert str(error.value) == ("the default data range max(ref) - min(ref) (batch item 1) "
                                "must be a finite number > 0, got 0.0")


# -- devices, checked with torch's "meta" device (no data, no accelerator needed) ----------
def test_inputs_go_to_the_device_asked_for():
    from xhbench.metrics._inputs import common_device, tensor_pair, to_tensor

    meta = torch.device("meta")
    assert common_device(np.zeros(2), torch.zeros(2, device="meta")) == meta
    assert common_device(np.zeros(2)) == torch.device("cpu")
    assert to_tensor("x", np.zeros(2), meta).device == meta
    assert to_tensor("x", torch.zeros(2), meta).device == meta
    assert {t.device for t in tensor_pair(np.zeros(2), torch.zeros(2), meta)} == {meta}
    with pytest.raises(ValueError) as error:
        common_device(torch.zeros(2), torch.zeros(2, device="meta"), np.zeros(2))
    assert str(error.value) == "inputs are on different devices: ['cpu', 'meta']"


def test_a_reference_that_is_no_number_is_named():
    with pytest.raises(ValueError,
                       match=r"^ref must hold real numbers or booleans, got dtype <U1$"):
        metrics.psnr(np.zeros((2, 2, 2)), np.full((2, 2, 2), "a"), data_range=1)
