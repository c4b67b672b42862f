"""AutoPET-II data set: layout, ids, patient-level stratified split, phantom physics, bad input."""

from __future__ import annotations

import functools
import json
import random
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from bad_input import assert_damage_named, delete, rewrite
from scipy import ndimage

from xhbench.datasets import PHANTOM_MANIFEST
from xhbench.datasets import autopet as autopet_module
from xhbench.datasets.autopet import (
    AutoPET,
    assign_patients,
    phantom_studies,
    seg_has_lesion,
    study_case_id,
)
from xhbench.datasets.petct_phantom import case_rng
from xhbench.datasets.petct_torso import make_torso
from xhbench.errors import DataError
from xhbench.plugins import get_plugins

SIZE = 32
CASES = {"train": 4, "val": 1, "test": 2}
STUDY_PATTERN = re.compile(r"^\d\d-\d\d-\d{4}-NA-PET-CT .+-\d{5}$")


@pytest.fixture(scope="module")
def phantom(phantom_cache) -> AutoPET:
    return AutoPET.open(None, cache_dir=phantom_cache, seed=0, cases_per_split=CASES, size=SIZE)


@pytest.fixture(scope="module")
def volumes(phantom):
    return {c.case_id: (c, phantom.read(c)) for s in CASES for c in phantom.cases(s)}


@functools.cache
def _subject(seed: int, diagnosis: str):
    return make_torso(case_rng(seed, f"physics-{diagnosis}"), SIZE, diagnosis=diagnosis)


# -- layout, ids, reading ---------------------------------------------------------------
def test_registered():
    entry = get_plugins().registry.get("dataset", "autopet")
    assert entry.load() is AutoPET
    assert entry.meta["modalities"] == AutoPET.modalities == ("ct", "suv", "pet")
    assert entry.meta["labels"] == AutoPET.label_values == (0, 1)


def test_layout_and_ids(phantom):
    assert phantom.origin == "phantom"
    found = phantom.find_cases()
    assert sorted(found) == sorted(i for s in CASES for i in phantom.split_ids(s))
    for split, n in CASES.items():
        expected = [study_case_id(p, s) for p, s, _ in phantom_studies(split, n)]
        assert phantom.split_ids(split) == expected
    for case_id, case in found.items():
        patient, study = case.meta["patient"], case.meta["study"]
        assert re.fullmatch(r"PETCT_[0-9a-f]{10}", patient) and case.patient_id == patient
        assert STUDY_PATTERN.match(study) and " " in study
        assert case_id == study_case_id(patient, study)
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+", case_id), "safe id"
        folder = phantom.root / patient / study
        assert case.images == {"ct": folder / "CTres.nii.gz", "suv": folder / "SUV.nii.gz",
                               "pet": folder / "PET.nii.gz"}
        assert case.label == folder / "SEG.nii.gz"
        dtypes = {k: nib.load(folder / f"{k}.nii.gz").get_data_dtype()
                  for k in ("CTres", "SUV", "PET", "SEG")}
        assert dtypes == {"CTres": np.int16, "SUV": np.float32, "PET": np.float32,
                          "SEG": np.uint8}


def test_study_case_id():
    study = "08-12-2005-NA-PET-CT Ganzkoerper  primaer mit KM-10250"
    assert study_case_id("PETCT_0011f3deaf", study) == (
        "PETCT_0011f3deaf__08-12-2005-NA-PET-CT_Ganzkoerper_primaer_mit_KM-10250")
    assert study_case_id("PETCT_1", "a/b (c)") == "PETCT_1__a_b_c"


def test_read_channels_units_and_labels(volumes):
    for _case, vol in volumes.values():
        assert vol.image.shape == (3, SIZE, SIZE, SIZE) and vol.modalities == ("ct", "suv", "pet")
        assert vol.spacing == pytest.approx((15.0, 15.0, 20.0))
        ct, suv, pet = vol.image
        assert ct.min() >= -1024 and ct.max() < 3072 and np.array_equal(ct, np.round(ct))
        assert suv.min() >= 0 and 1.5 < np.percentile(suv[ct > -500], 99) < 60
        # PET (Bq/ml) = SUV x decay-corrected dose / weight: one factor per study.
        body = suv > 0.5
        factor = pet[body] / suv[body]
        assert np.allclose(factor, factor[0], rtol=1e-4) and 1e3 < factor[0] < 2e4
        assert set(np.unique(vol.label).tolist()) <= {0, 1}


def test_disk_matches_generator(phantom, volumes):
    case = phantom.cases("train")[0]
    *_, diagnosis = phantom_studies("train", 1)[0]
    subject = make_torso(case_rng(0, case.case_id), SIZE, diagnosis=diagnosis)
    vol = volumes[case.case_id][1]
    np.testing.assert_array_equal(vol.image[0], subject.ct)
    np.testing.assert_array_equal(vol.image[1], subject.suv)
    np.testing.assert_array_equal(vol.label, subject.label)
    np.testing.assert_allclose(vol.affine, subject.affine)


def test_about_half_lesion_free_and_controls_have_empty_seg(phantom, volumes):
    studies = [s for split in ("train", "val", "test") for s in phantom_studies(split, 40)]
    negative = np.mean([d == "negative" for *_, d in studies])
    assert 0.4 <= negative <= 0.65, negative
    assert any(len([s for s in studies if s[0] == p]) > 1 for p, *_ in studies), "follow-ups"
    diagnoses = {study_case_id(p, s): d for split, n in CASES.items()
                 for p, s, d in phantom_studies(split, n)}
    flags = phantom.lesion_flags()
    assert {d == "negative" for d in diagnoses.values()} == {True, False}
    for case_id, (case, vol) in volumes.items():
        assert flags[case_id] == bool(vol.label.any()) == (diagnoses[case_id] != "negative")


# -- determinism -----------------------------------------------------------------------
def test_same_seed_same_bytes_different_seed_differs(phantom, tmp_path):
    splits = AutoPET.write_phantom(tmp_path / "a", seed=0, cases_per_split={"val": 1}, size=SIZE)
    assert splits == {"train": [], "val": phantom.split_ids("val"), "test": []}
    case = phantom.cases("val")[0]
    rel = Path(case.meta["patient"]) / case.meta["study"]
    for name in ("CTres", "SUV", "PET", "SEG"):
        assert ((tmp_path / "a" / rel / f"{name}.nii.gz").read_bytes()
                == (phantom.root / rel / f"{name}.nii.gz").read_bytes()), name
    AutoPET.write_phantom(tmp_path / "b", seed=1, cases_per_split={"val": 1}, size=SIZE)
    for name in ("CTres", "SUV"):
        a = np.asarray(nib.load(phantom.root / rel / f"{name}.nii.gz").dataobj)
        b = np.asarray(nib.load(tmp_path / "b" / rel / f"{name}.nii.gz").dataobj)
        assert a.shape == b.shape and not np.array_equal(a, b), name


def test_unknown_split_is_refused(tmp_path):
    with pytest.raises(DataError, match="no split 'dev' for autopet"):
        AutoPET.write_phantom(tmp_path, seed=0, cases_per_split={"dev": 1}, size=SIZE)


# -- split -----------------------------------------------------------------------------
def test_phantom_split_is_patient_level(phantom):
    owner = {}
    for split in CASES:
        for case in phantom.cases(split):
            assert owner.setdefault(case.patient_id, split) == split, case.patient_id


def test_assign_patients_is_stratified_deterministic_and_order_free():
    rng = random.Random(3)
    positive = {f"PETCT_{rng.getrandbits(40):010x}": rng.random() < 0.45 for _ in range(300)}
    split = assign_patients(positive)
    shuffled = dict(rng.sample(sorted(positive.items()), len(positive)))
    assert assign_patients(shuffled) == split
    for stratum in (True, False):
        members = [p for p, pos in positive.items() if pos == stratum]
        counts = {s: sum(split[p] == s for p in members) for s in ("train", "val", "test")}
        n = len(members)
        assert abs(counts["train"] - 0.7 * n) <= 1 and abs(counts["val"] - 0.1 * n) <= 1, counts
        assert sum(counts.values()) == n
    # Adding one patient moves only few others.
    more = dict(positive, PETCT_ffffffffff=True)
    moved = sum(assign_patients(more)[p] != s for p, s in split.items())
    assert moved <= 3


def test_real_copy_uses_the_rule(phantom, tmp_path, monkeypatch):
    data = tmp_path / "FDG-PET-CT-Lesions"  # the root's usual subfolder is accepted
    shutil.copytree(phantom.root, data, ignore=shutil.ignore_patterns(PHANTOM_MANIFEST))
    real = AutoPET(tmp_path)
    assert real.origin == "real" and real.data_dir == data
    assert set(real.find_cases()) == set(phantom.find_cases())
    assert real.split_names() == ["train", "val", "test"]
    splits = {s: real.split_ids(s) for s in real.split_names()}
    assert sorted(i for ids in splits.values() for i in ids) == sorted(real.find_cases())
    cases = real.find_cases()
    owner = {}
    for split, ids in splits.items():
        for case_id in ids:
            assert owner.setdefault(cases[case_id].patient_id, split) == split
    flags = real.lesion_flags()
    positive = {}
    for case_id, case in cases.items():
        positive[case.patient_id] = positive.get(case.patient_id, False) or flags[case_id]
    expect = assign_patients(positive)
    assert all(expect[cases[i].patient_id] == s for s, ids in splits.items() for i in ids)
    assert not real.check()
    # The flags are cached on disk: a second instance reads no SEG.
    cache_files = list((autopet_module.default_cache_dir() / "autopet").glob("*.json"))
    assert cache_files and json.loads(cache_files[0].read_text())["entries"]
    monkeypatch.setattr(autopet_module, "seg_has_lesion",
                        lambda *a, **k: pytest.fail("SEG re-read despite the cache"))
    assert AutoPET(tmp_path).split_ids("test") == splits["test"]
    with pytest.raises(DataError, match="no split 'dev'"):
        real.split_ids("dev")


def test_seg_has_lesion_streams_gz_and_plain(tmp_path):
    empty = np.zeros((20, 20, 20), np.uint8)
    one = empty.copy()
    one[19, 19, 19] = 1
    for name, array in (("e", empty), ("o", one)):
        nib.save(nib.Nifti1Image(array, np.eye(4)), str(tmp_path / f"{name}.nii.gz"))
        nib.save(nib.Nifti1Image(array, np.eye(4)), str(tmp_path / f"{name}.nii"))
    assert not seg_has_lesion(tmp_path / "e.nii.gz") and not seg_has_lesion(tmp_path / "e.nii")
    assert seg_has_lesion(tmp_path / "o.nii.gz") and seg_has_lesion(tmp_path / "o.nii")
    (tmp_path / "t.nii.gz").write_bytes((tmp_path / "o.nii.gz").read_bytes()[:40])
    with pytest.raises(DataError, match="cannot read NIfTI") as err:
        seg_has_lesion(tmp_path / "t.nii.gz", "c1")
    assert "case c1" in str(err.value) and "t.nii.gz" in str(err.value)


# -- bad input -------------------------------------------------------------------------
@pytest.fixture
def single(phantom, tmp_path):
    case = next(c for c in phantom.cases("train") if phantom.lesion_flags()[c.case_id])
    rel = Path(case.meta["patient"]) / case.meta["study"]
    shutil.copytree(phantom.root / rel, tmp_path / rel)
    ds = AutoPET(tmp_path)
    return ds, ds.find_cases()[case.case_id]


def _missing(case):
    return delete(case, "suv")


def _label2(case):
    seg = np.asarray(nib.load(case.label).dataobj).copy()
    seg[seg > 0] = 2
    rewrite(case.label, seg)
    return case.label, "unexpected label values [2]"


def _shape(case):
    rewrite(case.images["pet"], np.asarray(nib.load(case.images["pet"]).dataobj)[:, :-1])
    return case.images["pet"], "shape (32, 31, 32) differs"


def _affine(case):
    path = case.label
    affine = nib.load(path).affine.copy()
    affine[2, 2] *= 1.5
    rewrite(path, np.asarray(nib.load(path).dataobj), affine)
    return path, "affine differs"


def _nan(case):
    data = np.asarray(nib.load(case.images["suv"]).dataobj).copy()
    data[3, 4, 5] = np.inf
    rewrite(case.images["suv"], data)
    return case.images["suv"], "NaN or infinite"


@pytest.mark.parametrize("damage", [_missing, _label2, _shape, _affine, _nan])
def test_bad_input_names_case_and_file(single, damage):
    assert_damage_named(*single, damage)


def test_missing_seg_stops_the_split_with_case_and_file(single):
    ds, case = single
    case.label.unlink()
    with pytest.raises(DataError) as err:
        ds.split_ids("train")
    assert case.case_id in str(err.value) and "SEG.nii.gz" in str(err.value)


def test_patient_folder_without_study(tmp_path):
    (tmp_path / "PETCT_0000000000").mkdir()
    with pytest.raises(DataError, match="no study folder") as err:
        AutoPET(tmp_path).find_cases()
    assert "PETCT_0000000000" in str(err.value)


# -- physics ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_ct_hounsfield_units(seed):
    s = _subject(seed, "melanoma")
    median = {t: float(np.median(s.ct[s.mask(t)])) for t in ("lung", "muscle", "fat", "liver")}
    assert median["lung"] < -600 and median["fat"] < -50, median
    assert 0 < median["muscle"] < 100 and 30 < median["liver"] < 90, median
    bone = s.mask("marrow", "cortical", threshold=0.9)
    assert bone.sum() >= 5 and np.median(s.ct[bone]) > 300
    assert s.ct[~s.info["body"]].mean() < -950  # air
    # Noise 10-20 HU: neighbouring pure-muscle voxels differ by sqrt(2) sigma.
    muscle = s.mask("muscle", threshold=0.999)
    pairs = muscle[1:] & muscle[:-1]
    sigma = (s.ct[1:] - s.ct[:-1])[pairs].std() / np.sqrt(2)
    assert 8 < sigma < 24, sigma


@pytest.mark.parametrize("seed", [0, 1])
def test_physiological_uptake(seed):
    s = _subject(seed, "negative")
    mean = {t: float(s.suv[s.mask(t, threshold=0.9)].mean())
            for t in ("liver", "lung", "muscle", "fat", "bladder")}
    assert mean["bladder"] > mean["liver"] > mean["muscle"] > mean["fat"], mean
    assert mean["liver"] > 2 * mean["lung"] and 1.5 < mean["liver"] < 3.5, mean
    assert not s.label.any() and not s.info["lesions"]


def test_lesions_are_hotter_than_their_surroundings(volumes):
    seen = 0
    for case_id, (case, vol) in volumes.items():
        labels, n = ndimage.label(vol.label)
        suv = vol.image[1]
        for k in range(1, n + 1):
            lesion = labels == k
            shell = ndimage.binary_dilation(lesion) & (vol.label == 0)
            assert suv[lesion].mean() > 1.5 * np.median(suv[shell]), case_id
            seen += 1
    assert seen >= 2


def test_lesion_sites_and_uptake_vary():
    lesions = [l for seed in range(6) for d in ("lymphoma", "melanoma", "lung_cancer")
               for l in make_torso(case_rng(seed, d), 16, diagnosis=d).info["lesions"]]
    sites = {l["site"] for l in lesions}
    assert {"lung", "liver", "lung primary"} <= sites and len(sites) >= 7, sites
    suv = np.array([l["suv"] for l in lesions])
    assert suv.min() >= 3 and suv.max() <= 25 and 5 < np.median(suv) < 12


def test_subjects_vary():
    subjects = [make_torso(case_rng(seed, "vary"), 24) for seed in range(4)]
    widths = [s.info["body"].any(axis=(1, 2)).sum() for s in subjects]
    livers = [s.fractions["liver"].sum() for s in subjects]
    assert len(set(widths)) > 1 and np.std(livers) / np.mean(livers) > 0.05
    assert len({round(s.info["tissue_values"]["liver"][1], 3) for s in subjects}) == 4
