"""Quantitative PET metrics on hand-built lesions whose values are known in closed form."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from xhbench.metrics import pet

SPACING = (2.0, 2.0, 2.0)
ML = 0.008  # one 2 mm voxel


def ball(shape, centre, radius_voxels):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius_voxels**2


def lattice_points(radius_sq: float) -> int:
    """Integer points p with |p|^2 <= radius_sq, counted one by one."""
    r = int(math.isqrt(int(radius_sq)))
    return sum(1 for p in itertools.product(range(-r, r + 1), repeat=3)
               if p[0] ** 2 + p[1] ** 2 + p[2] ** 2 <= radius_sq)




def test_peak_sphere_holds_one_ml_and_follows_the_spacing():
    fine = pet.peak_sphere((0.25, 0.25, 0.25))
    assert fine.sum() * 0.25**3 / 1000 == pytest.approx(1.0, rel=0.01)
    assert pet.peak_sphere(SPACING).sum() == lattice_points((3 / (4 * math.pi)) ** (2 / 3)
                                                            * 100 / 4)
    assert pet.peak_sphere((2.0, 2.0, 4.0)).shape == (7, 7, 3)  # 6.2 mm: 3, 3, 1 voxels


def test_uniform_sphere():
    shape = (30, 30, 30)
    lesion = ball(shape, (15, 15, 15), 5)
    suv = np.where(lesion, 8.0, 1.0)
    (values,) = pet.lesion_uptake(suv, lesion, SPACING)
    n = lattice_points(25)
    assert lesion.sum() == n
    expected = {"suvmax": 8.0, "suvmean": 8.0, "suvpeak": 8.0, "mtv": n * ML,
                "tlg": 8.0 * n * ML, "mtv_suv25": n * ML, "tlg_suv25": 8.0 * n * ML}
    assert values == pytest.approx(expected, abs=1e-6)
    errors = pet.uptake_errors(np.where(lesion, 0.9 * suv, suv), suv, lesion, SPACING)
    assert errors == pytest.approx({"suvmax_error": 0.1, "suvmean_error": 0.1,
                                    "suvpeak_error": 0.1, "mtv_error": 0.0, "tlg_error": 0.1,
                                    "mtv_suv25_error": 0.0, "tlg_suv25_error": 0.1}, abs=1e-6)
    assert all(v == 0 for v in pet.uptake_errors(suv, suv, lesion, SPACING).values())


def test_two_level_lesion_and_case_aggregation():
    shape = (40, 30, 30)
    centre = (12, 15, 15)
    core, whole = ball(shape, centre, 2), ball(shape, centre, 5)
    suv = np.ones(shape)
    suv[whole], suv[core] = 3.0, 10.0
    second = np.zeros(shape, dtype=bool)
    second[30:33, 10:13, 10:13] = True  # a uniform 3x3x3 lesion of SUV 5, far away
    suv[second] = 5.0
    n_core, n_all = lattice_points(4), lattice_points(25)
    n_sphere = lattice_points((3 * 1000 / (4 * math.pi)) ** (2 / 3) / 4)  # 6.2 mm / 2 mm
    first, other = pet.lesion_uptake(suv, whole | second, SPACING)
    assert first == pytest.approx({
        "suvmax": 10.0, "suvmean": 10.0,  # 41% of 10 = 4.1: the core only
        "suvpeak": (10.0 * n_core + 3.0 * (n_sphere - n_core)) / n_sphere,
        "mtv": n_core * ML, "tlg": 10.0 * n_core * ML,
        "mtv_suv25": n_all * ML, "tlg_suv25": (10.0 * n_core + 3.0 * (n_all - n_core)) * ML},
        abs=1e-6)
    # the 3x3x3 cube sits in background SUV 1: the peak sphere around its centre holds the
    # 27 cube voxels and n_sphere - 27 background voxels (the sphere reaches beyond it)
    assert other["suvpeak"] == pytest.approx((5.0 * 27 + (n_sphere - 27)) / n_sphere, abs=1e-6)
    assert other["mtv"] == pytest.approx(27 * ML, abs=1e-9)
    case = pet.case_uptake([first, other])
    assert case == pytest.approx({
        "suvmax": 10.0, "suvpeak": first["suvpeak"], "mtv": (n_core + 27) * ML,
        "tlg": (10.0 * n_core + 5.0 * 27) * ML,
        "suvmean": (10.0 * n_core + 5.0 * 27) / (n_core + 27),
        "mtv_suv25": (n_all + 27) * ML, "tlg_suv25": first["tlg_suv25"] + 5.0 * 27 * ML},
        abs=1e-6)


def test_lesions_are_18_connected_components():
    suv = np.ones((8, 8, 8))
    mask = np.zeros((8, 8, 8), dtype=bool)
    mask[2, 2, 2] = mask[3, 3, 3] = True  # corner contact only: two lesions
    mask[5, 5, 5] = mask[6, 6, 5] = True  # edge contact: one lesion
    assert len(pet.lesion_uptake(suv, mask, SPACING)) == 3


def test_suvpeak_matches_brute_force_with_anisotropic_spacing_at_the_border():
    rng = np.random.default_rng(0)
    spacing = (2.0, 3.0, 4.0)
    suv = rng.gamma(2.0, 2.0, size=(12, 11, 9))
    lesion = np.zeros(suv.shape, dtype=bool)
    lesion[0:4, 3:7, 6:9] = True  # touches two borders
    radius = (3 * 1000 / (4 * math.pi)) ** (1 / 3)
    best = -np.inf
    for c in zip(*np.nonzero(lesion)):
        values = [suv[p] for p in itertools.product(*map(range, suv.shape))
                  if sum(((a - b) * s) ** 2 for a, b, s in zip(p, c, spacing)) <= radius**2]
        best = max(best, float(np.mean(values)))
    (values,) = pet.lesion_uptake(suv, lesion, spacing)
    assert values["suvpeak"] == pytest.approx(best, abs=1e-9)


def test_error_is_nan_where_the_real_value_is_zero_and_no_lesion_is_an_error():
    lesion = np.zeros((6, 6, 6), dtype=bool)
    lesion[2:4, 2:4, 2:4] = True
    cold = np.where(lesion, 2.0, 0.5)  # nothing >= 2.5
    errors = pet.uptake_errors(cold * 1.5, cold, lesion, SPACING)
    assert math.isnan(errors["mtv_suv25_error"]) and math.isnan(errors["tlg_suv25_error"])
    assert errors["suvmax_error"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="lesion-positive"):
        pet.uptake_errors(cold, cold, np.zeros_like(lesion), SPACING)
    assert set(pet.PET_CONVENTIONS) == {f"{q}_error" for q in pet.QUANTITIES}


def test_uptake_errors_measure_both_volumes_in_the_components_of_the_given_connectivity():
    # two edge-touching voxels: one VOI at 18-connectivity, two at 6; the cooler voxel is
    # outside the 41% MTV of the joint VOI but is its own VOI's MTV at 6
    lesions = np.zeros((6, 6, 6), dtype=bool)
    lesions[2, 2, 2] = lesions[3, 3, 2] = True
    pred, ref = np.zeros(lesions.shape), np.zeros(lesions.shape)
    pred[2, 2, 2], pred[3, 3, 2] = 10.0, 2.0  # SUVmean 10 (18) or (10 + 2) / 2 = 6 (6)
    ref[2, 2, 2], ref[3, 3, 2] = 10.0, 3.0  # SUVmean 10 (18) or 6.5 (6)
    assert pet.uptake_errors(pred, ref, lesions, SPACING)["suvmean_error"] == 0.0
    errors = pet.uptake_errors(pred, ref, lesions, SPACING, connectivity=6)
    assert errors["suvmean_error"] == pytest.approx(0.5 / 6.5)
    assert errors["mtv_error"] == 0.0  # two voxels in both


def test_no_lesion_error_says_which_cases_have_uptake():
    with pytest.raises(ValueError) as error:
        pet.case_uptake([])
    assert str(error.value) == "no lesion: uptake is defined for lesion-positive cases only"


def test_voxels_exactly_at_a_threshold_count():
    # 41% of SUVmax 100 is exactly 41.0 and the fixed threshold is 2.5: both are included
    lesion = np.zeros((6, 6, 6), dtype=bool)
    lesion[2:4, 2, 2] = lesion[2, 3, 2] = True
    suv = np.zeros(lesion.shape)
    suv[2, 2, 2], suv[3, 2, 2], suv[2, 3, 2] = 100.0, 41.0, 2.5
    (values,) = pet.lesion_uptake(suv, lesion, SPACING)
    assert values["mtv"] == pytest.approx(2 * ML) and values["tlg"] == pytest.approx(141 * ML)
    assert values["mtv_suv25"] == pytest.approx(3 * ML)


def test_integer_suv_gives_the_values_of_the_same_floats():
    # sphere means of integers are fractions: an integer pipeline would truncate them
    rng = np.random.default_rng(2)
    suv = rng.integers(0, 20, size=(9, 9, 9))
    lesion = np.zeros(suv.shape, dtype=bool)
    lesion[3:6, 3:6, 3:6] = True
    (as_int,) = pet.lesion_uptake(suv, lesion, SPACING)
    (as_float,) = pet.lesion_uptake(suv.astype(np.float64), lesion, SPACING)
    assert as_int == pytest.approx(as_float)
    assert as_float["suvpeak"] != int(as_float["suvpeak"])


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError) as error:
        pet.lesion_uptake(np.zeros((4, 4, 4)), np.zeros((4, 4, 5), dtype=bool), SPACING)
    assert str(error.value) == "SUV shape (4, 4, 4) != lesion mask shape (4, 4, 5)"


def test_peak_sphere_radius_is_that_of_the_volume_asked_for():
    radius = (3 * 1000 / (4 * math.pi)) ** (1 / 3)  # 6.2035 mm for 1 ml
    # a voxel centre exactly on the sphere counts: spacing = radius puts the six face
    # neighbours on it
    assert pet.peak_sphere((radius,) * 3).sum() == 7
    # a voxel centre 0.001 mm outside the 1 ml sphere (3 voxels of radius / 3 + 0.00033 mm)
    step = (radius + 0.001) / 3
    inside = sum(1 for p in itertools.product(range(-3, 4), repeat=3)
                 if sum((c * step) ** 2 for c in p) <= radius**2)
    assert pet.peak_sphere((step,) * 3).sum() == inside
    # another volume: 2 ml
    fine = pet.peak_sphere((0.25, 0.25, 0.25), volume_ml=2.0)
    assert fine.sum() * 0.25**3 / 1000 == pytest.approx(2.0, rel=0.01)
