"""BraTS 2018 data set: real layout, phantom, integrity checks and phantom physics."""

from __future__ import annotations

import functools
import gzip
import shutil
from importlib import resources
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from bad_input import assert_damage_named, delete, rewrite, shift_origin, truncate
from scipy import ndimage

from xhbench.datasets import PHANTOM_MANIFEST, Dataset
from xhbench.datasets.brain_phantom import as_int16, case_rng, make_brain
from xhbench.datasets.brats18 import BraTS18, phantom_case_order
from xhbench.errors import DataError

SIZE = 32
CASES = {"train": 3, "val": 1, "test": 2}
MODALITIES = ("flair", "t1", "t1ce", "t2")


def _shipped(name: str) -> list[str]:
    text = resources.files("xhbench").joinpath("data/splits/brats18", name).read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


GRADES = dict(reversed(line.split("/")) for line in _shipped("alt/grade_dirs.txt"))


@pytest.fixture(scope="module")
def phantom(phantom_cache) -> BraTS18:
    return BraTS18.open(None, cache_dir=phantom_cache, seed=0, cases_per_split=CASES, size=SIZE)


@pytest.fixture(scope="module")
def volumes(phantom):
    return {c.case_id: (c, phantom.read(c)) for s in CASES for c in phantom.cases(s)}


# -- layout and reading ----------------------------------------------------------------
def test_phantom_uses_real_ids_grades_and_layout(phantom):
    assert phantom.origin == "phantom"
    for split, n in CASES.items():
        ids = [c.case_id for c in phantom.cases(split)]
        shipped = _shipped(f"{split}.txt")
        assert ids == phantom_case_order(shipped, GRADES)[:n]
        assert set(ids) <= set(shipped)
    train = [c.case_id for c in phantom.cases("train")]
    first_lgg = next(i for i in _shipped("train.txt") if GRADES[i] == "LGG")
    assert train == [_shipped("train.txt")[0], first_lgg, _shipped("train.txt")[1]]
    for case in phantom.find_cases().values():
        grade = GRADES[case.case_id]
        assert case.meta == {"grade": grade} and case.patient_id == case.case_id
        folder = phantom.root / grade / case.case_id
        assert case.label == folder / f"{case.case_id}_seg.nii.gz"
        assert [case.images[m] for m in MODALITIES] == [
            folder / f"{case.case_id}_{m}.nii.gz" for m in MODALITIES]
        assert nib.load(case.images["t1"]).get_data_dtype() == np.int16
        assert nib.load(case.label).get_data_dtype() == np.uint8


def test_read_shapes_labels_and_skull_stripping(volumes):
    grades = {GRADES[i] for i in volumes}
    assert grades == {"HGG", "LGG"}
    for case_id, (case, vol) in volumes.items():
        assert vol.image.shape == (4, SIZE, SIZE, SIZE) and vol.image.dtype == np.float32
        assert vol.modalities == MODALITIES
        assert vol.spacing == pytest.approx((240 / SIZE, 240 / SIZE, 155 / SIZE))
        values = set(np.unique(vol.label).tolist())
        assert values <= {0, 1, 2, 4}
        if case.meta["grade"] == "HGG":
            assert values == {0, 1, 2, 4}, case_id
        nonzero = vol.image != 0
        assert (nonzero == nonzero[0]).all(), "all modalities share one brain mask"
        assert not vol.label[~nonzero[0]].any(), "tumour outside the brain"
        assert 0.08 < nonzero[0].mean() < 0.35
        corners = vol.image[:, [0, -1]][:, :, [0, -1]][:, :, :, [0, -1]]
        assert not corners.any()


def test_disk_matches_generator_and_brain_mask(phantom, volumes):
    case_id = phantom.cases("test")[1].case_id  # an LGG case
    case, vol = volumes[case_id]
    subject = make_brain(case_rng(0, case_id), SIZE, grade=case.meta["grade"])
    for k, m in enumerate(MODALITIES):
        np.testing.assert_array_equal(vol.image[k], as_int16(subject.images[m], subject.brain))
        assert ((vol.image[k] != 0) == subject.brain).all()
    np.testing.assert_array_equal(vol.label, subject.label)
    np.testing.assert_allclose(vol.affine, subject.affine)


def test_tumour_shapes(volumes):
    for case_id, (case, vol) in volumes.items():
        whole = (vol.label > 0).sum()
        et = vol.label == 4
        if case.meta["grade"] == "HGG":
            assert et.sum() > 0.1 * whole
            # The rim is thick: a one-voxel erosion keeps part of it.
            assert ndimage.binary_erosion(et).sum() > 0.1 * et.sum(), case_id
        else:
            assert et.sum() <= 0.05 * whole, case_id
            assert (vol.label == 1).any() and (vol.label == 2).any()


def test_subjects_and_tumour_placement_vary():
    size = 48  # at 32 every tumour spans most of a hemisphere
    spacing = (240 / size, 240 / size, 155 / size)
    centroids, edge_gaps, masks = [], [], []
    for i in range(8):
        s = make_brain(case_rng(5, f"vary{i}"), size, grade="HGG")
        core = (s.label == 1) | (s.label == 4)
        idx = np.argwhere(core).mean(0)
        centroids.append(s.affine[:3, :3] @ idx + s.affine[:3, 3])
        edge_gaps.append(ndimage.distance_transform_edt(s.brain, sampling=spacing)[core].min())
        masks.append(s.brain)
    centroids = np.array(centroids)
    assert (centroids[:, 0] > 0).any() and (centroids[:, 0] < 0).any()
    assert (centroids.std(0) > 8.0).all()
    # Some cores reach the cortex (within two voxels of the brain edge), some stay deep.
    assert min(edge_gaps) <= 2 * spacing[0] and max(edge_gaps) >= 15.0, edge_gaps
    assert all((masks[0] != m).sum() > 100 for m in masks[1:]), "anatomy varies"


# -- determinism and cache ---------------------------------------------------------------
def test_same_seed_same_bytes_and_cases_independent(phantom, tmp_path):
    splits = BraTS18.write_phantom(tmp_path / "a", seed=0, cases_per_split={"test": 1}, size=SIZE)
    assert splits == {"train": [], "val": [], "test": [phantom.cases("test")[0].case_id]}
    case = phantom.cases("test")[0]
    for kind in MODALITIES + ("seg",):
        name = f"{case.case_id}_{kind}.nii.gz"
        rel = Path(case.meta["grade"]) / case.case_id / name
        assert (tmp_path / "a" / rel).read_bytes() == (phantom.root / rel).read_bytes(), kind


def test_different_seed_differs(phantom, tmp_path):
    BraTS18.write_phantom(tmp_path / "b", seed=1, cases_per_split={"test": 1}, size=SIZE)
    other = BraTS18(tmp_path / "b")
    case = phantom.cases("test")[0]
    a = phantom.read(case)
    b = other.read(other.find_cases()[case.case_id])
    assert not np.array_equal(a.label, b.label)
    assert not np.array_equal(a.image, b.image)


def test_open_writes_once_and_reuses(phantom, phantom_cache, monkeypatch):
    manifest = phantom.root / PHANTOM_MANIFEST
    case = phantom.cases("train")[0]
    before = (manifest.stat().st_mtime_ns, case.images["t1"].stat().st_mtime_ns)

    def fail(*args, **kwargs):
        raise AssertionError("phantom rewritten")

    monkeypatch.setattr(BraTS18, "write_phantom", classmethod(fail))
    again = BraTS18.open(None, cache_dir=phantom_cache, seed=0, cases_per_split=CASES, size=SIZE)
    assert again.root == phantom.root and again.origin == "phantom"
    assert (manifest.stat().st_mtime_ns, case.images["t1"].stat().st_mtime_ns) == before
    with pytest.raises(AssertionError, match="rewritten"):
        BraTS18.open(None, cache_dir=phantom_cache, seed=1, cases_per_split=CASES, size=SIZE)


def test_unknown_or_oversized_split_is_refused(tmp_path):
    with pytest.raises(DataError, match="no shipped split 'dev'"):
        BraTS18.write_phantom(tmp_path, seed=0, cases_per_split={"dev": 1}, size=SIZE)
    with pytest.raises(DataError, match="has 29 cases; 30 requested"):
        BraTS18.write_phantom(tmp_path, seed=0, cases_per_split={"val": 30}, size=SIZE)


def test_phantom_case_order_is_stratified_prefix():
    train = _shipped("train.txt")
    order = phantom_case_order(train, GRADES)
    assert sorted(order) == sorted(train)
    for grade in ("HGG", "LGG"):
        assert [i for i in order if GRADES[i] == grade] == [i for i in train if GRADES[i] == grade]
    lgg_share = [sum(GRADES[i] == "LGG" for i in order[:n]) / n for n in (4, 10, 40)]
    assert all(abs(share - 53 / 199) < 0.15 for share in lgg_share)


# -- a real (manifest-free) copy ---------------------------------------------------------
def test_real_copy_uses_shipped_splits(phantom, tmp_path):
    training = tmp_path / "MICCAI_BraTS_2018_Data_Training"
    shutil.copytree(phantom.root, training, ignore=shutil.ignore_patterns(PHANTOM_MANIFEST))
    for root in (tmp_path, training):  # the parent folder or the one holding HGG/LGG
        real = BraTS18(root)
        assert real.origin == "real"
        assert set(real.find_cases()) == set(phantom.find_cases())
        assert real.split_ids("test") == _shipped("test.txt")
        with pytest.raises(DataError) as err:
            real.cases("train")
        missing = next(i for i in _shipped("train.txt") if i not in real.find_cases())
        assert "split 'train'" in str(err.value) and missing in str(err.value)
    assert not real.check()  # every case on disk reads cleanly


def test_root_without_grade_folders(tmp_path):
    with pytest.raises(DataError, match="no HGG/ or LGG/ folder"):
        BraTS18(tmp_path).find_cases()


# -- bad input ---------------------------------------------------------------------------
@pytest.fixture
def single(phantom, tmp_path):
    case = phantom.cases("train")[0]
    shutil.copytree(case.images["t1"].parent, tmp_path / "HGG" / case.case_id)
    ds = BraTS18(tmp_path)
    return ds, ds.find_cases()[case.case_id]


def _missing(case):
    return delete(case, "t1ce")


def _truncated(case):
    return truncate(case, "t2", parts=2)


def _label3(case):
    seg = np.asarray(nib.load(case.label).dataobj).copy()
    seg[np.nonzero(seg)[0][0], np.nonzero(seg)[1][0], np.nonzero(seg)[2][0]] = 3
    rewrite(case.label, seg)
    return case.label, "unexpected label values [3]"


def _shape(case):
    rewrite(case.images["t1"], np.asarray(nib.load(case.images["t1"]).dataobj)[:-1])
    return case.images["t1"], "shape (31, 32, 32) differs"


def _affine(case):
    return shift_origin(case.images["t1"], axis=0, mm=5.0)


def _nan(case):
    data = np.asarray(nib.load(case.images["flair"]).dataobj).astype(np.float32)
    data[SIZE // 2, SIZE // 2, SIZE // 2] = np.nan
    rewrite(case.images["flair"], data)
    return case.images["flair"], "NaN"


@pytest.mark.parametrize("damage", [_missing, _truncated, _label3, _shape, _affine, _nan])
def test_bad_input_names_case_and_file(single, damage):
    assert_damage_named(*single, damage)


def test_uncompressed_nifti_is_accepted(single):
    ds, case = single
    gz = case.images["t2"]
    plain = gz.with_suffix("")  # .nii
    plain.write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    case = ds.find_cases()[case.case_id]
    assert case.images["t2"] == plain
    assert ds.read(case).image.shape == (4, SIZE, SIZE, SIZE)


# -- physics -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _subject48(case_id: str):
    return make_brain(case_rng(0, case_id), 48, grade="HGG")


@pytest.mark.parametrize("case_id", ["Brats18_CBICA_BHM_1", "Brats18_TCIA01_131_1"])
def test_phantom_contrasts_follow_the_signal_equations(case_id):
    s = _subject48(case_id)
    # MNI anatomy: cortex and CSF spaces are thinner than a 5 mm voxel, so no voxel holds pure
    # cortical grey matter or CSF at size 48; take the voxels they dominate instead.
    pure = {t: s.fractions[t] >= (0.8 if t in ("csf", "gm") else 0.99)
            for t in ("csf", "gm", "wm", "edema", "enhancing")}
    assert all(m.sum() >= 5 for m in pure.values()), {t: int(m.sum()) for t, m in pure.items()}
    mean = {m: {t: float(s.images[m][pure[t]].mean()) for t in pure} for m in s.images}
    assert mean["flair"]["csf"] < 0.5 * mean["flair"]["wm"]  # CSF nulled
    assert mean["flair"]["edema"] > 1.2 * mean["flair"]["wm"]
    assert mean["t2"]["csf"] > 2 * mean["t2"]["wm"]
    assert mean["t1"]["wm"] > 1.05 * mean["t1"]["gm"] and mean["t1"]["csf"] < mean["t1"]["gm"]
    rel = {m: mean[m]["enhancing"] / mean[m]["wm"] for m in ("t1", "t1ce")}
    assert rel["t1ce"] > 1.4 * rel["t1"]  # gadolinium shortens T1 of the rim only
    for m in ("t1", "t2", "flair"):  # before contrast the rim looks like edema
        assert abs(mean[m]["enhancing"] / mean[m]["edema"] - 1) < 0.1, m
    assert mean["t1ce"]["enhancing"] > 1.4 * mean["t1ce"]["edema"]


@pytest.mark.parametrize("modality", MODALITIES)
def test_noise_and_bias_field(modality):
    s = _subject48("Brats18_CBICA_BHM_1")
    image, wm = s.images[modality], s.fractions["wm"] >= 0.99
    # Rician noise: neighbouring pure white-matter voxels differ by sqrt(2) sigma, SNR 20-40.
    pairs = wm[1:] & wm[:-1]
    diff = (image[1:] - image[:-1])[pairs]
    snr = image[wm].mean() / (diff.std() / np.sqrt(2))
    assert 15 < snr < 50, snr
    # Bias field: a smooth (quadratic) trend across white matter of +-10-20%.
    idx = np.argwhere(wm).astype(float) / 48 - 0.5
    design = np.column_stack([np.ones(len(idx)), idx, idx**2, idx[:, [0]] * idx[:, [1]],
                              idx[:, [0]] * idx[:, [2]], idx[:, [1]] * idx[:, [2]]])
    coef, *_ = np.linalg.lstsq(design, image[wm], rcond=None)
    trend = design @ coef
    assert 0.08 < (trend.max() - trend.min()) / trend.mean() < 0.6


def test_dataset_contract():
    assert issubclass(BraTS18, Dataset)
    assert BraTS18.modalities == MODALITIES
    assert BraTS18.label_values == (0, 1, 2, 4)
    assert BraTS18.split_folder == "data/splits/brats18"
