"""HD95 and average surface distance: parity with MONAI, scipy and the official BraTS
package (brats-evaluation on panoptica), and the empty-mask rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance
from scipy import ndimage

from xhbench.metrics import (
    BRATS_MAX_DISTANCE_MM,
    CONVENTIONS,
    SURFACE_EMPTY_RULES,
    average_surface_distance,
    hd95,
)

SHAPE = (24, 26, 22)


def cube(lo, hi, shape=SHAPE):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return mask


def perturbed(mask, rng, p=0.04):
    """``mask`` with a random rim of voxels added and removed at its surface."""
    grown = ndimage.binary_dilation(mask)
    shrunk = ndimage.binary_erosion(mask)
    flip = rng.random(mask.shape) < p
    return np.where(flip & grown & ~mask, True, np.where(flip & mask & ~shrunk, False, mask))


def directed_distances(a, b, spacing):
    """Distances (mm) from the 6-connected-erosion surface of ``a`` to that of ``b``
    (scipy's Euclidean distance transform): the independent reference."""
    surface = lambda m: m & ~ndimage.binary_erosion(m)  # noqa: E731
    dist_to_b = ndimage.distance_transform_edt(~surface(b), sampling=spacing)
    return dist_to_b[surface(a)]


def monai(fn, pred, ref, spacing, **kwargs):
    value = fn(torch.from_numpy(pred)[None, None].float(), torch.from_numpy(ref)[None, None].float(),
               include_background=True, spacing=spacing, **kwargs)
    return float(value.reshape(-1)[0])


CASES = {
    "shift": (cube((6, 6, 6), (14, 15, 13)), cube((8, 6, 7), (16, 15, 14))),
    "nested": (cube((5, 5, 5), (17, 18, 16)), cube((8, 8, 8), (14, 14, 13))),
    "two_blobs": (cube((3, 3, 3), (9, 9, 9)) | cube((14, 15, 12), (20, 22, 18)),
                  cube((4, 3, 3), (10, 9, 9))),
}


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 1.0, 2.5)])
@pytest.mark.parametrize("name", [*CASES, "perturbed"])
def test_hd95_and_asd_match_monai_and_scipy(name, spacing):
    if name == "perturbed":
        ref = cube((5, 6, 4), (18, 19, 17))
        pred = perturbed(ref, np.random.default_rng(3))
    else:
        pred, ref = CASES[name]
    value = hd95(pred, ref, spacing=spacing)
    assert value == pytest.approx(monai(compute_hausdorff_distance, pred, ref, spacing,
                                        percentile=95), rel=1e-6)
    forward = directed_distances(pred, ref, spacing)
    backward = directed_distances(ref, pred, spacing)
    expected = max(np.percentile(forward, 95), np.percentile(backward, 95))
    assert value == pytest.approx(expected, rel=1e-6)
    asd = average_surface_distance(pred, ref, spacing=spacing)
    assert asd == pytest.approx(monai(compute_average_surface_distance, pred, ref, spacing,
                                      symmetric=True), rel=1e-6)
    assert asd == pytest.approx(np.concatenate([forward, backward]).mean(), rel=1e-6)


def test_hd95_hand_computed_shift_in_mm():
    ref = cube((6, 6, 6), (14, 14, 14))
    pred = np.roll(ref, 3, axis=2)  # every surface point moves 3 voxels along z
    assert hd95(pred, ref) == pytest.approx(3.0)
    assert hd95(pred, ref, spacing=(1.0, 1.0, 2.0)) == pytest.approx(6.0)
    assert hd95(ref, ref) == 0.0 and average_surface_distance(ref, ref) == 0.0


def test_batch_gives_one_value_per_item_and_torch_input_agrees():
    pairs = [CASES["shift"], CASES["nested"]]
    pred = np.stack([p for p, _ in pairs])
    ref = np.stack([r for _, r in pairs])
    batch = hd95(torch.from_numpy(pred), torch.from_numpy(ref))
    assert batch == pytest.approx([hd95(p, r) for p, r in pairs])


@pytest.mark.parametrize("empty", sorted(SURFACE_EMPTY_RULES))
def test_empty_mask_rules(empty):
    blob, none = cube((4, 4, 4), (9, 9, 9)), np.zeros(SHAPE, dtype=bool)
    far = cube((15, 15, 15), (20, 20, 20))
    for metric in (hd95, average_surface_distance):
        assert math.isnan(metric(none, none, empty=empty))
        one_empty = [metric(blob, none, empty=empty), metric(none, blob, empty=empty)]
        disjoint = metric(far, blob, empty=empty)
        if empty == "brats":
            assert one_empty == [BRATS_MAX_DISTANCE_MM] * 2
            assert disjoint == BRATS_MAX_DISTANCE_MM  # no shared voxel: the package's cap
        else:
            assert all(math.isnan(v) for v in one_empty)
            assert disjoint == pytest.approx(monai(compute_average_surface_distance
                                                   if metric is average_surface_distance
                                                   else compute_hausdorff_distance,
                                                   far, blob, (1, 1, 1),
                                                   **({"symmetric": True}
                                                      if metric is average_surface_distance
                                                      else {"percentile": 95})), rel=1e-6)


def test_bad_input_is_refused():
    blob = cube((4, 4, 4), (9, 9, 9))
    with pytest.raises(ValueError, match="empty must be one of"):
        hd95(blob, blob, empty="zero")
    with pytest.raises(ValueError, match="spacing"):
        hd95(blob, blob, spacing=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="binary"):
        hd95(blob * 2, blob)


def test_conventions_name_the_rules_and_the_definition():
    assert all(f"'{rule}'" in CONVENTIONS["hd95"] for rule in SURFACE_EMPTY_RULES)
    assert f"{BRATS_MAX_DISTANCE_MM:g} mm" in SURFACE_EMPTY_RULES["brats"]
    assert "directed" in CONVENTIONS["hd95"] and "pooled" in CONVENTIONS["asd"]


# --- the official BraTS package -----------------------------------------------------------

def official_global_hd95(pred, ref, spacing):
    """global_hd95 of the whole tumour as brats-evaluation reports it (panoptica 'gli'
    config, then metrics_parser's inf -> 373 mm)."""
    pytest.importorskip("brats_evaluation", reason="needs pip install 'xhbench[brats]'")
    from xhbench.metrics.brats_official import brats_official_scores

    affine = np.diag([*spacing, 1.0])
    return brats_official_scores(pred.astype(np.uint8) * 2, ref.astype(np.uint8) * 2, affine,
                                 case_id="00001")["wt"]["global_hd95"]


@pytest.mark.parametrize("name", ["shift", "nested"])
def test_hd95_equals_brats_evaluation_where_the_definitions_agree(name):
    # a shift moves every surface point alike, and a nested cube's two directions have
    # the same distances: the pooled percentile (panoptica) equals the larger directed one
    pred, ref = CASES[name]
    assert hd95(pred, ref) == pytest.approx(official_global_hd95(pred, ref, (1, 1, 1)),
                                            rel=1e-6)


def test_brats_evaluation_measures_in_voxels_whatever_the_nifti_spacing():
    # evaluate_single_exam on files with 2.5 mm slices reports the 1 mm value: the package
    # does not pass the header's spacing to panoptica's distances (BraTS grids are 1 mm)
    pred, ref = CASES["shift"]
    official = official_global_hd95(pred, ref, (1.0, 1.0, 2.5))
    assert official == pytest.approx(hd95(pred, ref), rel=1e-6)
    assert hd95(pred, ref, spacing=(1.0, 1.0, 2.5)) > official + 0.5


def test_hd95_differs_from_brats_evaluation_by_pooling_both_directions():
    ref = cube((5, 6, 4), (18, 19, 17))
    pred = perturbed(ref, np.random.default_rng(3)) | cube((1, 1, 1), (3, 3, 3))
    pred |= cube((2, 2, 2), (6, 7, 6))  # a stray blob touching the tumour: one direction far
    ours = hd95(pred, ref)
    official = official_global_hd95(pred, ref, (1.0, 1.0, 1.0))
    forward = directed_distances(pred, ref, (1, 1, 1))
    backward = directed_distances(ref, pred, (1, 1, 1))
    # the package pools both directions before the 95th percentile; MONAI (xhbench)
    # takes the larger of the two directed 95th percentiles, never smaller
    assert official == pytest.approx(np.percentile(np.concatenate([forward, backward]), 95),
                                     rel=1e-6)
    assert ours > official + 0.1


@pytest.mark.parametrize("case", ["one_empty", "disjoint", "both_empty"])
def test_brats_empty_rule_matches_brats_evaluation(case):
    blob, none = cube((4, 4, 4), (9, 9, 9)), np.zeros(SHAPE, dtype=bool)
    pred, ref = {"one_empty": (none, blob), "disjoint": (cube((15, 15, 15), (20, 20, 20)), blob),
                 "both_empty": (none, none)}[case]
    official = official_global_hd95(pred, ref, (1.0, 1.0, 1.0))
    ours = hd95(pred, ref, empty="brats")
    assert (math.isnan(ours) and math.isnan(official)) or ours == official


@pytest.mark.parametrize("call, message", [
    (lambda: hd95(np.zeros((4, 4)), np.zeros((4, 4))),
     r"^pred must be a 3D volume \(X, Y, Z\) or a batch \(B, X, Y, Z\); got shape \(4, 4\)$"),
    (lambda: hd95(np.full((4, 4, 4), 2), np.zeros((4, 4, 4))), r"^pred must be a binary mask"),
    (lambda: hd95(np.zeros((4, 4, 4)), np.full((4, 4, 4), 2)), r"^ref must be a binary mask"),
    (lambda: hd95(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), spacing=(1.0, 0.0, 1.0)),
     r"^spacing must be a finite number > 0, got 0.0$"),
    (lambda: hd95(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), spacing=(1.0, 1.0)),
     r"^spacing must give 3 values \(one per axis\), got \(1.0, 1.0\)$"),
])
def test_surface_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_batch_with_an_empty_item_first_scores_every_item():
    pred = np.zeros((2, *SHAPE), bool)
    ref = np.zeros((2, *SHAPE), bool)
    pred[1], ref[1] = cube((4, 4, 4), (12, 12, 12)), cube((6, 6, 6), (14, 14, 14))  # 0: empty
    values = hd95(pred, ref)
    assert len(values) == 2 and math.isnan(values[0])
    assert values[1] == pytest.approx(hd95(pred[1], ref[1]))
    assert values[1] > 0
