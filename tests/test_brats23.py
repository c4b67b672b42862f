"""BraTS 2023 data set (layout, folder splits, phantom) and the MNI anatomy of the brain phantom."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from xhbench.datasets import PHANTOM_MANIFEST, Dataset, split_sha256
from xhbench.datasets import brain_anatomy
from xhbench.datasets import brain_phantom as bp
from xhbench.datasets.brats18 import BraTS18
from xhbench.datasets.brats23 import (TRAINING_FOLDER, VALIDATION_FOLDER, BraTS23,
                                      phantom_case_ids)
from xhbench.errors import DataError

SIZE = 32
CASES = {"train": 3, "val": 1, "test": 2}  # what Task.phantom_params passes
MODALITIES = ("t1n", "t1c", "t2w", "t2f")


@pytest.fixture(scope="module")
def phantom(phantom_cache) -> BraTS23:
    return BraTS23.open(None, cache_dir=phantom_cache, seed=0, cases_per_split=CASES, size=SIZE)


@pytest.fixture(scope="module")
def subjects():
    """Six 32^3 subjects (HGG and LGG) drawn as the brats23 phantom draws them."""
    ids = phantom_case_ids()["train"][:6]
    return [bp.make_brain(bp.case_rng(0, i), SIZE, grade="LGG" if k % 5 == 1 else "HGG",
                          labels={"core": 1, "edema": 2, "enhancing": 3})
            for k, i in enumerate(ids)]


# -- MNI anatomy ---------------------------------------------------------------------------
def test_template_is_mni152_with_derived_csf_and_deep_grey():
    anatomy = brain_anatomy.mni_anatomy()
    assert anatomy is brain_anatomy.mni_anatomy()  # loaded once per process
    assert anatomy.fractions.shape[1:] == (99, 117, 95) and anatomy.spacing_mm == 2.0
    np.testing.assert_allclose(anatomy.fractions.sum(0), anatomy.intracranial, atol=1e-5)
    litres = {t: float(anatomy.fraction(t).sum()) * 8e-6 for t in brain_anatomy.MNI_TISSUES}
    assert 1.6 < sum(litres.values()) < 2.0 and litres["gm"] > litres["wm"] > litres["csf"]
    for side in (-1, 1):
        assert anatomy.at((side * 26, -10, 30))["wm"] > 0.95  # centrum semiovale
        assert anatomy.at((side * 8, -15, 20))["csf"] > 0.6  # lateral ventricle
        assert anatomy.at((side * 13, 10, 12))["deep_gm"] > 0.9  # caudate head
        assert anatomy.at((side * 40, 20, 0))["gm"] > 0.4  # insular cortex
    assert anatomy.at((0, -20, 10))["csf"] > 0.6  # third ventricle


def _template_under(subject, params) -> dict[str, np.ndarray]:
    """The undeformed template's fractions mapped through one subject's affine."""
    anatomy = brain_anatomy.mni_anatomy()
    index = np.indices((SIZE,) * 3).reshape(3, -1)
    world = subject.affine[:3, :3] @ index + subject.affine[:3, 3:]
    a = params["anatomy"]
    inverse = np.diag(1 / np.array(a["scale"])) @ np.array(a["rotation"]).T
    mni = inverse @ (world - np.array(a["shift_mm"])[:, None]) + np.array(bp.MNI_CENTRE_MM)[:, None]
    maps = brain_anatomy.voxel_averaged(tuple(np.array(bp.FOV_MM) / SIZE))
    coords = (mni - anatomy.origin_mm[:, None]) / anatomy.spacing_mm
    return {t: ndimage.map_coordinates(maps[k], coords, order=1).reshape((SIZE,) * 3)
            for k, t in enumerate(brain_anatomy.MNI_TISSUES)}


def test_subjects_are_the_template_under_their_own_affine_and_deformation(subjects):
    own_scores, other_scores = [], []
    for k, s in enumerate(subjects):
        healthy = s.brain & (s.label == 0)
        white = s.fractions["wm"] + s.fractions["deep_gm"]
        own = _template_under(s, s.params)
        other = _template_under(s, subjects[(k + 1) % len(subjects)].params)
        own_scores.append(np.corrcoef(white[healthy], (own["wm"] + own["deep_gm"])[healthy])[0, 1])
        other_scores.append(
            np.corrcoef(white[healthy], (other["wm"] + other["deep_gm"])[healthy])[0, 1])
        # Smooth deformation, mass effect and atrophy: close to the template, never equal.
        assert 0.6 < own_scores[-1] < 0.98, own_scores
    assert np.mean(own_scores) > np.mean(other_scores) + 0.1, (own_scores, other_scores)


def test_partial_volumes_and_subjects_differ(subjects):
    for s in subjects:
        total = sum(s.fractions[t] for t in bp.TISSUES)
        np.testing.assert_allclose(total, 1.0, atol=1e-4)
        inside = s.fractions["wm"][s.brain]
        assert ((inside > 0.05) & (inside < 0.95)).mean() > 0.2  # fractions, not labels
        assert 0.12 < s.brain.mean() < 0.25
    masks = [s.brain for s in subjects]
    assert all((masks[0] != m).sum() > 200 for m in masks[1:]), "anatomy varies"
    scales = {tuple(s.params["anatomy"]["scale"]) for s in subjects}
    assert len(scales) == len(subjects)


def test_tumour_sits_in_white_matter_and_spares_cortex(subjects):
    anatomy = brain_anatomy.mni_anatomy()
    for s in subjects:
        centre = s.params["tumour"]["centre_mni_mm"]
        assert anatomy.at(centre)["wm"] >= 0.8, centre
        edema = s.label == 2
        # Edema replaces white matter (and deep grey) only.
        assert s.fractions["gm"][edema].mean() < 0.25
        assert s.fractions["edema"][edema].mean() > 0.5


# -- physics (32^3) ------------------------------------------------------------------------
def test_contrasts_at_size_32(subjects):
    for s in subjects:
        f, img = s.fractions, s.images
        dominant = {t: f[t] >= 0.6 for t in ("csf", "wm", "edema")}
        dominant["wm"] = f["wm"] >= 0.95
        mean = {m: {t: float(img[m][v].mean()) for t, v in dominant.items()} for m in img}
        assert mean["flair"]["csf"] < 0.6 * mean["flair"]["wm"]  # FLAIR nulls CSF
        assert mean["t2"]["csf"] > 2 * mean["t2"]["wm"]
        assert mean["flair"]["edema"] > 1.2 * mean["flair"]["wm"]  # edema bright on FLAIR, T2
        assert mean["t2"]["edema"] > 1.5 * mean["t2"]["wm"]
        rim = f["enhancing"] >= 0.95
        if s.params["grade"] == "HGG":
            assert rim.sum() >= 10
            rel = {m: img[m][rim].mean() / mean[m]["wm"] for m in ("t1", "t1ce")}
            assert rel["t1ce"] > 1.4 * rel["t1"]  # gadolinium shortens T1 of the rim only
            assert img["t1ce"][rim].mean() > 1.3 * mean["t1ce"]["edema"]


# -- layout, splits, reading ---------------------------------------------------------------
def test_phantom_layout_ids_and_splits(phantom):
    assert phantom.origin == "phantom"
    ids = phantom_case_ids()
    assert (len(ids["train"]), len(ids["validation"])) == (1251, 219)
    assert not set(ids["train"]) & set(ids["validation"])
    assert phantom.phantom["splits"] == {"train": list(ids["train"][:3]),
                                         "validation": list(ids["validation"][:2])}
    assert phantom.split_names() == ["train", "validation"]
    assert phantom.split_ids("test") == phantom.split_ids("val") == phantom.split_ids("validation")
    for case in phantom.find_cases().values():
        folder = phantom.root / (TRAINING_FOLDER if case.meta["split"] == "train"
                                 else VALIDATION_FOLDER) / case.case_id
        assert case.case_id.startswith("BraTS-GLI-") and case.case_id.endswith("-000")
        assert case.patient_id == case.case_id[:-4]
        assert [case.images[m] for m in MODALITIES] == [
            folder / f"{case.case_id}-{m}.nii.gz" for m in MODALITIES]
        seg = folder / f"{case.case_id}-seg.nii.gz"
        assert seg.exists() == (case.meta["split"] == "train")
        assert case.label == (seg if case.meta["split"] == "train" else None)
        assert nib.load(case.images["t2f"]).get_data_dtype() == np.int16


def test_read_round_trip(phantom):
    train = phantom.cases("train")
    for k, case in enumerate(train):
        vol = phantom.read(case)
        assert vol.image.shape == (4, SIZE, SIZE, SIZE) and vol.modalities == MODALITIES
        assert vol.spacing == pytest.approx((240 / SIZE, 240 / SIZE, 155 / SIZE))
        values = set(np.unique(vol.label).tolist())
        assert values <= {0, 1, 2, 3}
        if k % 5 != 1:  # HGG: ET written as 3
            assert values == {0, 1, 2, 3}, case.case_id
        subject = bp.make_brain(bp.case_rng(0, case.case_id), SIZE,
                                grade="LGG" if k % 5 == 1 else "HGG",
                                labels={"core": 1, "edema": 2, "enhancing": 3})
        for c, m in enumerate(("t1", "t1ce", "t2", "flair")):
            np.testing.assert_array_equal(vol.image[c], bp.as_int16(subject.images[m],
                                                                    subject.brain))
        np.testing.assert_array_equal(vol.label, subject.label)
    for case in phantom.cases("test"):
        vol = phantom.read(case)
        assert vol.label is None and vol.image.shape == (4, SIZE, SIZE, SIZE)
    assert not phantom.check()


def test_display_names_and_registration():
    from xhbench.plugins import get_plugins

    assert issubclass(BraTS23, Dataset)
    assert [BraTS23.display_names[m] for m in BraTS23.modalities] == ["T1", "T1ce", "T2",
                                                                      "FLAIR"]
    entry = get_plugins().registry.get("dataset", "brats23")
    assert tuple(entry.meta["modalities"]) == MODALITIES
    assert tuple(entry.meta["labels"]) == (0, 1, 2, 3)


def test_phantom_versions_follow_the_generator():
    for cls in (BraTS18, BraTS23):
        assert cls.phantom_version // 1000 == bp.GENERATOR_VERSION
    assert BraTS18.phantom_version % 1000 == 2  # bumped with the MNI anatomy


def test_same_seed_same_bytes_other_seed_differs(phantom, tmp_path):
    BraTS23.write_phantom(tmp_path / "a", seed=0, cases_per_split={"train": 1}, size=SIZE)
    BraTS23.write_phantom(tmp_path / "b", seed=1, cases_per_split={"train": 1}, size=SIZE)
    case_id = phantom_case_ids()["train"][0]
    rel = Path(TRAINING_FOLDER) / case_id
    for kind in MODALITIES + ("seg",):
        name = rel / f"{case_id}-{kind}.nii.gz"
        assert (tmp_path / "a" / name).read_bytes() == (phantom.root / name).read_bytes(), kind
        assert (tmp_path / "b" / name).read_bytes() != (phantom.root / name).read_bytes(), kind


def test_phantom_split_requests(tmp_path):
    splits = BraTS23.write_phantom(tmp_path / "v", seed=0, size=8,
                                   cases_per_split={"validation": 1, "test": 2, "val": 1})
    assert splits == {"train": [], "validation": list(phantom_case_ids()["validation"][:2])}
    with pytest.raises(DataError, match="no split 'dev' for brats23"):
        BraTS23.write_phantom(tmp_path, seed=0, cases_per_split={"dev": 1}, size=SIZE)
    with pytest.raises(DataError, match="has 219 cases; 220 requested"):
        BraTS23.write_phantom(tmp_path, seed=0, cases_per_split={"test": 220}, size=SIZE)


# -- real (manifest-free) roots ------------------------------------------------------------
@pytest.fixture
def real(phantom, tmp_path) -> Path:
    shutil.copytree(phantom.root, tmp_path / "BraTS2023",
                    ignore=shutil.ignore_patterns(PHANTOM_MANIFEST))
    return tmp_path / "BraTS2023"


def test_real_root_splits_are_the_folders(phantom, real):
    ds = BraTS23(real)
    assert ds.origin == "real" and ds.split_names() == ["train", "validation"]
    assert ds.split_ids("train") == phantom.split_ids("train")  # sorted = phantom order
    assert ds.split_ids("test") == phantom.split_ids("validation")
    assert [c.label is None for c in ds.cases("validation")] == [True, True]
    assert not ds.check()
    before = split_sha256(ds.split_ids("train"))
    shutil.rmtree(real / TRAINING_FOLDER / ds.split_ids("train")[0])
    assert split_sha256(ds.split_ids("train")) != before  # the hash follows the ids on disk
    with pytest.raises(DataError, match="no split 'dev'"):
        ds.split_ids("dev")


def test_root_may_be_one_folder(real):
    train = BraTS23(real / TRAINING_FOLDER)
    assert train.split_names() == ["train"] and len(train.cases("train")) == 3
    with pytest.raises(DataError, match="needs the .*ValidationData/ folder"):
        train.split_ids("test")
    validation = BraTS23(real / VALIDATION_FOLDER)
    assert validation.split_names() == ["validation"]
    assert all(c.label is None for c in validation.cases("test"))
    with pytest.raises(DataError, match="no .*TrainingData/ or .*ValidationData/ folder"):
        BraTS23(real.parent).find_cases()


# -- bad input -----------------------------------------------------------------------------
def _one_case(real: Path, split: str):
    ds = BraTS23(real)
    return ds, ds.cases(split)[0]


def test_missing_file_names_case_and_file(real):
    ds, case = _one_case(real, "validation")
    case.images["t1c"].unlink()
    case = ds.find_cases()[case.case_id]
    with pytest.raises(DataError) as err:
        ds.read(case)
    message = str(err.value)
    assert case.case_id in message and f"{case.case_id}-t1c.nii.gz" in message
    assert "file missing" in message
    [problem] = ds.check()
    assert problem.case == case.case_id and Path(problem.path).name.endswith("-t1c.nii.gz")


def test_missing_training_seg_is_an_error(real):
    ds, case = _one_case(real, "train")
    case.label.unlink()
    case = ds.find_cases()[case.case_id]
    with pytest.raises(DataError, match="file missing") as err:
        ds.read(case)
    assert case.case_id in str(err.value) and "-seg.nii.gz" in str(err.value)


def test_label_4_is_rejected(real):
    ds, case = _one_case(real, "train")
    seg = np.asarray(nib.load(case.label).dataobj).copy()
    seg[seg == 3] = 4  # a BraTS 2018 label map
    old = nib.load(case.label)
    nib.save(nib.Nifti1Image(seg, old.affine), str(case.label))
    with pytest.raises(DataError) as err:
        ds.read(case)
    message = str(err.value)
    assert "unexpected label values [4]; allowed [0, 1, 2, 3]" in message
    assert case.case_id in message and case.label.name in message
