"""Reference tests of xhbench.metrics against scikit-image, MONAI and hand-computed cases."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric
from scipy import ndimage
from skimage.metrics import (
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)

from xhbench.metrics import (
    BRATS_REGION_LABELS,
    CONVENTIONS,
    DICE_EMPTY_RULES,
    HIGHER_IS_BETTER,
    brats_regions,
    detection_rates,
    dice,
    et_postprocess,
    nmse,
    psnr,
    ssim,
)

SHAPE = (24, 28, 20)
PAD = 5  # win_size // 2 for the default 11-voxel window


def skimage_ssim(ref, pred, data_range, **kwargs):
    return structural_similarity(
        ref,
        pred,
        data_range=data_range,
        gaussian_weights=True,
        sigma=kwargs.pop("sigma", 1.5),
        use_sample_covariance=False,
        **kwargs,
    )


def smooth(rng, shape=SHAPE, scale=1.0):
    """Random smooth float32 volume in [0, scale]."""
    volume = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    volume = (volume - volume.min()) / (volume.max() - volume.min())
    return (scale * volume).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def pair(rng):
    """A reference and a noisy, slightly biased prediction."""
    ref = smooth(rng)
    pred = (0.9 * ref + 0.05 + 0.05 * rng.standard_normal(SHAPE)).astype(np.float32)
    return pred, ref


@pytest.fixture
def mask(rng):
    return ndimage.gaussian_filter(rng.standard_normal(SHAPE), 3.0) > 0


# ---------------------------------------------------------------- PSNR / NMSE


def test_psnr_default_range_matches_skimage(pair):
    pred, ref = pair
    expected = peak_signal_noise_ratio(ref, pred, data_range=float(ref.max() - ref.min()))
    assert psnr(pred, ref) == pytest.approx(expected, rel=1e-6)


def test_psnr_explicit_range_matches_skimage(pair):
    pred, ref = pair
    expected = peak_signal_noise_ratio(ref, pred, data_range=2.0)
    assert psnr(pred, ref, data_range=2.0) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("window", [(0.0, 0.8), (0.2, 1.0)], ids=["no-max", "no-min"])
def test_psnr_mask_uses_mask_voxels_for_mse_and_range(pair, mask, window):
    pred, ref = pair
    mask = mask & (ref >= window[0]) & (ref <= window[1])
    ref_in = ref[mask]
    expected = peak_signal_noise_ratio(
        ref_in, pred[mask], data_range=float(ref_in.max() - ref_in.min())
    )
    assert psnr(pred, ref, mask=mask) == pytest.approx(expected, rel=1e-6)
    assert psnr(pred, ref, mask=mask) != pytest.approx(psnr(pred, ref), rel=1e-3)


def test_psnr_identical_is_inf(pair):
    _, ref = pair
    assert psnr(ref, ref) == math.inf


def test_nmse_matches_skimage(pair, mask):
    pred, ref = pair
    assert nmse(pred, ref) == pytest.approx(
        normalized_root_mse(ref, pred, normalization="euclidean") ** 2, rel=1e-6
    )
    assert nmse(pred, ref, mask=mask) == pytest.approx(
        normalized_root_mse(ref[mask], pred[mask], normalization="euclidean") ** 2, rel=1e-6
    )


def test_batch_with_per_item_masks_gives_one_value_per_item(pair, mask):
    pred, ref = pair
    preds, refs = np.stack([pred, ref + 0.1, pred]), np.stack([ref, ref, 2 * ref])
    masks = np.stack([mask, ~mask, np.ones_like(mask)])
    for metric in (psnr, nmse):
        assert metric(preds, refs, mask=masks) == pytest.approx(
            [metric(p, r, mask=m) for p, r, m in zip(preds, refs, masks)], rel=1e-12
        )
    assert dice(preds > 0.5, refs > 0.5) == [dice(p > 0.5, r > 0.5) for p, r in zip(preds, refs)]


# ---------------------------------------------------------------- SSIM


def test_ssim_matches_skimage_3d(pair):
    pred, ref = pair
    assert ssim(pred, ref, data_range=1.0) == pytest.approx(skimage_ssim(ref, pred, 1.0), abs=1e-5)


def test_ssim_matches_skimage_other_range_and_shape(rng):
    ref = smooth(rng, (17, 30, 12), scale=300.0)
    pred = (ref + 20.0 * rng.standard_normal(ref.shape)).astype(np.float32)
    assert ssim(pred, ref, data_range=300.0) == pytest.approx(
        skimage_ssim(ref, pred, 300.0), abs=1e-5
    )


def test_ssim_window_and_constants_match_skimage(pair):
    # scikit-image truncates a sigma-1 Gaussian at 3.5 sigma: a 9-voxel window.
    pred, ref = pair
    expected = skimage_ssim(ref, pred, 1.0, sigma=1.0, K1=0.02, K2=0.05)
    assert ssim(pred, ref, data_range=1.0, sigma=1.0, win_size=9, k1=0.02, k2=0.05) == (
        pytest.approx(expected, abs=1e-5)
    )


def test_ssim_large_offset_keeps_float32_precision(pair):
    # float32 values near 1000 with data_range 1: naive float32 moments lose all precision.
    pred, ref = (v + np.float32(1000.0) for v in pair)
    expected = skimage_ssim(ref.astype(np.float64), pred.astype(np.float64), 1.0)
    assert ssim(pred, ref, data_range=1.0) == pytest.approx(expected, abs=1e-5)


def test_ssim_identical_volumes_is_one(pair):
    _, ref = pair
    assert ssim(ref, ref, data_range=1.0) == pytest.approx(1.0, abs=1e-6)


def test_ssim_mask_averages_skimage_map_over_mask_interior(pair, mask):
    pred, ref = pair
    _, full_map = structural_similarity(
        ref.astype(np.float64),
        pred.astype(np.float64),
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    inner = (slice(PAD, -PAD),) * 3
    expected = full_map[inner][mask[inner]].mean()
    assert ssim(pred, ref, data_range=1.0, mask=mask) == pytest.approx(expected, abs=1e-5)


def test_ssim_batch_gives_one_value_per_item(pair, mask):
    pred, ref = pair
    preds = np.stack([pred, ref, ref[::-1].copy()])
    refs = np.stack([ref, ref, ref])
    values = ssim(preds, refs, data_range=1.0, mask=mask)
    assert values == pytest.approx(
        [ssim(p, r, data_range=1.0, mask=mask) for p, r in zip(preds, refs)], abs=1e-6
    )


def test_ssim_in_slabs_matches_skimage(pair, mask, monkeypatch):
    # Filter in slabs of 3 interior rows (the last slab has 2), as on full-size volumes.
    pred, ref = pair
    from xhbench.metrics import structural as module
    monkeypatch.setattr(module, "_CPU_SLAB_ELEMENTS", 3 * 5 * 2 * SHAPE[1] * SHAPE[2])
    preds, refs = np.stack([pred, ref]), np.stack([ref, ref])
    expected = [skimage_ssim(ref, pred, 1.0), 1.0]
    assert ssim(preds, refs, data_range=1.0) == pytest.approx(expected, abs=1e-5)
    monkeypatch.undo()
    masked = ssim(pred, ref, data_range=1.0, mask=mask)
    monkeypatch.setattr(module, "_CPU_SLAB_ELEMENTS", 1)
    assert ssim(pred, ref, data_range=1.0, mask=mask) == pytest.approx(masked, abs=1e-6)


def test_ssim_window_is_the_float64_gaussian_rounded_once_to_float32():
    from scipy.signal.windows import gaussian

    from xhbench.metrics.structural import _gaussian_kernel

    for sigma, win_size in ((1.5, 11), (1.0, 9)):
        window = gaussian(win_size, sigma)
        expected = torch.from_numpy((window / window.sum()).astype(np.float32))
        assert torch.equal(_gaussian_kernel(sigma, win_size, torch.device("cpu")), expected)


def test_ssim_constants_scale_with_data_range(rng):
    # Zero-mean volumes: the luminance term depends on C1 = (0.01 R)^2 and the low-contrast
    # corner on C2 = (0.03 R)^2, so R = 8 differs visibly from R = 1.
    ref = smooth(rng, scale=2.0) - np.float32(1.0)
    ref[:12] *= np.float32(0.05)
    pred = (ref + 0.02 * rng.standard_normal(SHAPE)).astype(np.float32)
    for data_range in (1.0, 8.0):
        assert ssim(pred, ref, data_range=data_range) == pytest.approx(
            skimage_ssim(ref, pred, data_range), abs=1e-5
        )


def test_ssim_one_voxel_window_matches_skimage(pair):
    # scikit-image truncates a sigma-0.1 Gaussian to one voxel: SSIM of single voxels.
    pred, ref = pair
    expected = skimage_ssim(ref, pred, 1.0, sigma=0.1)
    assert ssim(pred, ref, data_range=1.0, sigma=0.1, win_size=1) == pytest.approx(
        expected, abs=1e-5
    )


def test_ssim_of_integer_volumes_matches_skimage(pair):
    pred, ref = ((255 * v).clip(0, 255).astype(np.uint8) for v in pair)
    assert ssim(pred, ref, data_range=255.0) == pytest.approx(
        skimage_ssim(ref, pred, 255.0), abs=1e-5
    )


@pytest.mark.parametrize("shape", [(11, 28, 20), (24, 11, 20), (24, 28, 11)])
def test_ssim_axis_as_long_as_the_window_matches_skimage(rng, shape):
    ref = smooth(rng, shape)
    pred = (ref + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    assert ssim(pred, ref, data_range=1.0) == pytest.approx(skimage_ssim(ref, pred, 1.0), abs=1e-5)


def test_ssim_does_not_depend_on_torchs_default_dtype(pair):
    pred, ref = pair
    expected = ssim(pred, ref, data_range=1.0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert ssim(pred, ref, data_range=1.0) == pytest.approx(expected, abs=1e-7)
    finally:
        torch.set_default_dtype(default)


def test_ssim_batch_with_a_mask_per_item(pair, mask):
    pred, ref = pair
    masks = np.stack([mask, ~mask, mask])
    masks[2, : SHAPE[0] // 2] = False
    values = ssim(np.stack([pred, pred, pred]), np.stack([ref, ref, ref]), data_range=1.0,
                  mask=masks)
    _, full_map = structural_similarity(ref.astype(np.float64), pred.astype(np.float64),
                                        data_range=1.0, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, full=True)
    inner = (slice(PAD, -PAD),) * 3
    assert values == pytest.approx([full_map[inner][m[inner]].mean() for m in masks], abs=1e-5)
    masks[1] = False
    masks[1, :PAD] = True
    with pytest.raises(ValueError, match=r"where SSIM is defined \(batch item 1\)$"):
        ssim(np.stack([pred] * 3), np.stack([ref] * 3), data_range=1.0, mask=masks)


def test_ssim_filters_in_cache_sized_slabs_on_a_cpu(pair, monkeypatch):
    # One call of the middle-axis filter per slab of interior rows along the first axis.
    from xhbench.metrics import structural as module

    pred, ref = pair
    calls = []
    filter_middle = module._filter_middle

    def counting(t, kernel):
        calls.append(t.shape[0] // 5)  # interior rows in the slab (batch of one)
        return filter_middle(t, kernel)

    monkeypatch.setattr(module, "_filter_middle", counting)
    out_x = SHAPE[0] - 2 * PAD
    for elements, slabs in ((10**9, [out_x]), (3 * 5 * SHAPE[1] * SHAPE[2], [3] * 4 + [2]),
                            (1, [1] * out_x)):
        monkeypatch.setattr(module, "_CPU_SLAB_ELEMENTS", elements)
        calls.clear()
        ssim(pred, ref, data_range=1.0)
        assert calls == slabs


def test_ssim_parameters_out_of_range_are_named(pair):
    pred, ref = pair
    for name in ("k1", "k2", "sigma"):
        with pytest.raises(ValueError, match=f"^{name} must be a finite number > 0, got -1.0$"):
            ssim(pred, ref, data_range=1.0, **{name: -1.0})


# ---------------------------------------------------------------- numpy vs torch


@pytest.mark.parametrize(
    "metric",
    [
        lambda p, r, m: psnr(p, r, mask=m),
        lambda p, r, m: nmse(p, r, mask=m),
        lambda p, r, m: ssim(p, r, data_range=1.0, mask=m),
        lambda p, r, m: dice(p > 0.5, r > 0.5),
    ],
    ids=["psnr", "nmse", "ssim", "dice"],
)
def test_torch_and_numpy_inputs_agree(pair, mask, metric):
    pred, ref = pair
    from_numpy = metric(pred, ref, mask)
    from_torch = metric(torch.from_numpy(pred), torch.from_numpy(ref), torch.from_numpy(mask))
    assert isinstance(from_numpy, float) and isinstance(from_torch, float)
    assert from_torch == pytest.approx(from_numpy, rel=1e-12)


def test_negative_strides_and_fortran_order_are_accepted(pair):
    pred, ref = pair
    flipped = ssim(pred[::-1], ref[::-1], data_range=1.0)
    assert flipped == pytest.approx(skimage_ssim(ref[::-1], pred[::-1], 1.0), abs=1e-5)
    assert psnr(np.asfortranarray(pred), ref) == pytest.approx(psnr(pred, ref), rel=1e-12)


# ---------------------------------------------------------------- Dice


def test_dice_matches_monai_on_random_masks(rng):
    pred = rng.random((3, *SHAPE)) > 0.6
    ref = rng.random((3, *SHAPE)) > 0.5
    metric = DiceMetric(include_background=True, reduction="none")
    expected = metric(
        torch.from_numpy(pred[:, None]).float(), torch.from_numpy(ref[:, None]).float()
    )[:, 0].tolist()
    for empty in DICE_EMPTY_RULES:
        assert dice(pred, ref, empty=empty) == pytest.approx(expected, abs=1e-6)


def test_dice_nan_rule_matches_monai_ignore_empty():
    pred = np.zeros((1, 6, 6, 6), dtype=bool)
    pred[0, :2, :2, :2] = True
    ref = np.zeros_like(pred)
    metric = DiceMetric(include_background=True, reduction="none", ignore_empty=True)
    expected = metric(torch.from_numpy(pred[:, None]), torch.from_numpy(ref[:, None]))
    assert torch.isnan(expected).all()
    assert math.isnan(dice(pred[0], ref[0], empty="nan"))


def test_dice_hand_computed():
    pred = np.zeros((4, 4, 4), dtype=np.uint8)
    ref = np.zeros((4, 4, 4), dtype=np.uint8)
    pred[0, 0, :3] = 1  # 3 voxels
    ref[0, 0, 1:4] = 1  # 3 voxels, 2 shared
    ref[1, 1, :2] = 1  # 5 voxels in all
    assert dice(pred, ref, empty="nan") == pytest.approx(4 / 8)
    assert dice(pred, ref, empty="zero") == pytest.approx(4 / 8)
    assert dice(pred, ref, empty="one") == pytest.approx((4 + 1e-8) / (8 + 1e-8), abs=1e-15)


@pytest.mark.parametrize(
    ("empty", "both_empty", "only_pred", "only_ref"),
    [
        ("one", 1.0, 1e-8 / (7 + 1e-8), 1e-8 / (5 + 1e-8)),
        ("nan", math.nan, math.nan, 0.0),
        ("zero", 0.0, 0.0, 0.0),
    ],
)
def test_dice_empty_rules(empty, both_empty, only_pred, only_ref):
    nothing = np.zeros((5, 5, 5), dtype=bool)
    pred = nothing.copy()
    pred[0, 0, : 7 - 2] = True
    pred[1, 1, :2] = True  # 7 voxels
    ref = nothing.copy()
    ref[2, :5, 2] = True  # 5 voxels
    got = [dice(nothing, nothing, empty=empty), dice(pred, nothing, empty=empty)]
    got.append(dice(nothing, ref, empty=empty))
    assert got == pytest.approx([both_empty, only_pred, only_ref], abs=1e-15, nan_ok=True)


# ---------------------------------------------------------------- BraTS helpers


def test_brats_regions_brats18():
    label = np.array([0, 1, 2, 4, 4, 2]).reshape(1, 2, 3)
    regions = brats_regions(label)
    assert regions["WT"].tolist() == [[[False, True, True], [True, True, True]]]
    assert regions["TC"].tolist() == [[[False, True, False], [True, True, False]]]
    assert regions["ET"].tolist() == [[[False, False, False], [True, True, False]]]
    assert all(isinstance(v, np.ndarray) and v.dtype == bool for v in regions.values())


def test_brats_regions_brats23_torch_float_labels():
    label = torch.tensor([0.0, 1.0, 2.0, 3.0, 3.0, 2.0]).reshape(1, 2, 3)
    regions = brats_regions(label, scheme="brats23")
    assert regions["WT"].tolist() == [[[False, True, True], [True, True, True]]]
    assert regions["TC"].tolist() == [[[False, True, False], [True, True, False]]]
    assert regions["ET"].tolist() == [[[False, False, False], [True, True, False]]]
    assert all(isinstance(v, torch.Tensor) for v in regions.values())
    assert BRATS_REGION_LABELS["brats23"]["ET"] == (3,)


@pytest.mark.parametrize(("scheme", "stray"), [("brats18", 3), ("brats23", 4)])
def test_brats_regions_rejects_labels_of_the_other_scheme(scheme, stray):
    with pytest.raises(ValueError, match=rf"values \[{stray}\] outside the {scheme} labels"):
        brats_regions(np.array([[[0, 1, stray]]]), scheme=scheme)


def test_et_postprocess_threshold_499_vs_500():
    small = np.zeros((10, 10, 10), dtype=bool)
    small.flat[:499] = True
    large = small.copy()
    large.flat[499] = True
    assert not et_postprocess(small).any()
    assert (et_postprocess(large) == large).all()
    batch = et_postprocess(torch.from_numpy(np.stack([small, large])))
    assert batch.sum(dim=(1, 2, 3)).tolist() == [0, 500]
    assert small.sum() == 499  # the input is not modified


def test_et_postprocess_dice_is_separate_value():
    ref = np.zeros((10, 10, 10), dtype=bool)
    pred = ref.copy()
    pred.flat[:20] = True  # a few false-positive ET voxels in a case without ET
    assert dice(pred, ref) == pytest.approx(0.0, abs=1e-9)
    assert dice(et_postprocess(pred), ref) == 1.0


# ---------------------------------------------------------------- detection rates


def test_detection_rates_hand_computed():
    pred = [True, True, False, False, True, False, 1, 0]
    ref = [True, True, True, False, False, False, 1, 0]
    # TP = 3 (0, 1, 6), FN = 1 (2), FP = 1 (4), TN = 3 (3, 5, 7)
    assert detection_rates(pred, ref) == pytest.approx(
        {"TPR": 0.75, "FNR": 0.25, "TNR": 0.75, "FPR": 0.25}
    )


def test_detection_rates_from_masks_and_nan_denominator():
    lesion = np.zeros((3, 3, 3), dtype=bool)
    lesion[1, 1, 1] = True
    empty = np.zeros_like(lesion)
    rates = detection_rates(np.stack([lesion, empty]), [lesion, lesion])
    assert rates["TPR"] == 0.5 and rates["FNR"] == 0.5
    assert math.isnan(rates["TNR"]) and math.isnan(rates["FPR"])


# ---------------------------------------------------------------- conventions


def test_conventions_cover_every_direction_and_name_the_choices():
    assert set(CONVENTIONS) == set(HIGHER_IS_BETTER)
    assert "max(ref) - min(ref)" in CONVENTIONS["psnr"]
    assert "11 voxels" in CONVENTIONS["ssim"] and "mask" in CONVENTIONS["ssim"]
    assert all(f"'{rule}'" in CONVENTIONS["dice"] for rule in DICE_EMPTY_RULES)
    assert "500" in CONVENTIONS["et_postpro"]


# ---------------------------------------------------------------- errors


def test_shape_mismatch_names_both_shapes(pair):
    pred, ref = pair
    for metric in (psnr, nmse, dice):
        with pytest.raises(ValueError, match=r"pred \(24, 28, 19\), ref \(24, 28, 20\)"):
            metric(
                pred[..., :19] > 0.5 if metric is dice else pred[..., :19],
                ref > 0.5 if metric is dice else ref,
            )
    with pytest.raises(ValueError, match=r"pred \(24, 28, 19\), ref \(24, 28, 20\)"):
        ssim(pred[..., :19], ref, data_range=1.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_input_is_rejected(pair, bad):
    pred, ref = pair
    pred = pred.copy()
    pred[3, 4, 5] = bad
    for call in (
        lambda: psnr(pred, ref),
        lambda: nmse(pred, ref),
        lambda: ssim(pred, ref, data_range=1.0),
    ):
        with pytest.raises(ValueError, match="pred contains NaN or infinite values"):
            call()


@pytest.mark.parametrize("data_range", [0.0, -1.0, math.nan])
def test_non_positive_data_range_is_rejected(pair, data_range):
    pred, ref = pair
    with pytest.raises(ValueError, match="data_range must be a finite number > 0"):
        ssim(pred, ref, data_range=data_range)
    with pytest.raises(ValueError, match="data_range must be a finite number > 0"):
        psnr(pred, ref, data_range=data_range)


def test_constant_reference_needs_explicit_psnr_range(pair):
    pred, _ = pair
    with pytest.raises(ValueError, match=r"default data range max\(ref\) - min\(ref\)"):
        psnr(pred, np.ones(SHAPE, dtype=np.float32))


def test_zero_reference_nmse_is_rejected(pair):
    pred, _ = pair
    with pytest.raises(ValueError, match="ref is zero on every voxel"):
        nmse(pred, np.zeros(SHAPE))


@pytest.mark.parametrize("shape", [(10, 28, 20), (24, 10, 20), (24, 28, 10)])
def test_volume_smaller_than_window_names_shape(rng, shape):
    small = rng.random(shape).astype(np.float32)
    message = rf"at least win_size=11 .* shape {re.escape(str(shape))}"
    with pytest.raises(ValueError, match=message):
        ssim(small, small, data_range=1.0)


@pytest.mark.parametrize("win_size", [10, 0, 2.5])
def test_bad_window_is_rejected(pair, win_size):
    pred, ref = pair
    with pytest.raises(ValueError, match="win_size must be an odd positive integer"):
        ssim(pred, ref, data_range=1.0, win_size=win_size)


def test_masks_that_select_nothing_are_rejected(pair):
    pred, ref = pair
    border_only = np.zeros(SHAPE, dtype=bool)
    border_only[:PAD] = True
    with pytest.raises(ValueError, match="mask has no voxel at least 5 voxels from every border"):
        ssim(pred, ref, data_range=1.0, mask=border_only)
    with pytest.raises(ValueError, match="mask selects no voxel"):
        psnr(pred, ref, mask=np.zeros(SHAPE, dtype=bool))


def test_mask_shape_and_values_are_checked(pair):
    pred, ref = pair
    with pytest.raises(ValueError, match=r"mask has shape \(24, 28\)"):
        nmse(pred, ref, mask=np.ones((24, 28), dtype=bool))
    with pytest.raises(ValueError, match="mask must be a binary mask"):
        nmse(pred, ref, mask=np.full(SHAPE, 2))


def test_non_binary_dice_input_is_rejected(pair):
    pred, ref = pair
    with pytest.raises(ValueError, match="pred must be a binary mask"):
        dice(pred, ref > 0.5)
    with pytest.raises(ValueError, match="empty must be one of"):
        dice(ref > 0.5, ref > 0.5, empty="ignore")


def test_wrong_dimensionality_is_rejected(pair):
    pred, ref = pair
    with pytest.raises(ValueError, match=r"3D volume \(X, Y, Z\) or a batch .* shape \(24, 28\)"):
        psnr(pred[..., 0], ref[..., 0])


def test_detection_rates_length_mismatch(pair):
    with pytest.raises(ValueError, match="pred_positive has 2 cases but ref_positive has 3"):
        detection_rates([True, False], [True, False, True])
    with pytest.raises(ValueError, match=r"pred_positive\[0\] must be a binary mask"):
        detection_rates([2, 0], [1, 0])
