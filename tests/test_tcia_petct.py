"""HNSCC and NSCLC data sets: layout, splits, NAC physics, domain shift, bad input."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
from bad_input import assert_damage_named, delete, rewrite, shift_origin, truncate
from scipy import ndimage

from xhbench.datasets import PHANTOM_MANIFEST
from xhbench.datasets.petct_head_neck import make_head_neck
from xhbench.datasets.petct_phantom import attenuation_factors, case_rng, hu_to_mu
from xhbench.datasets.petct_torso import make_torso
from xhbench.datasets.tcia_petct import HNSCC, LESION_FILE, NSCLC, hnscc_split_of, patient_of
from xhbench.errors import DataError
from xhbench.plugins import get_plugins

SIZE = 32
CASES = {"train": 3, "val": 2, "test": 3}  # hnscc ignores test, nsclc train and val
FILES = ("nac_pet.nii.gz", "ac_pet.nii.gz", "ct.nii.gz")


@pytest.fixture(scope="module")
def hnscc(phantom_cache) -> HNSCC:
    return HNSCC.open(None, cache_dir=phantom_cache, seed=0, cases_per_split=CASES, size=SIZE)


@pytest.fixture(scope="module")
def nsclc(phantom_cache) -> NSCLC:
    return NSCLC.open(None, cache_dir=phantom_cache, seed=0, cases_per_split=CASES, size=SIZE)


@pytest.fixture(scope="module")
def volumes(hnscc, nsclc):
    return {ds.name: [ds.read(c) for s in ds.split_names() for c in ds.cases(s)]
            for ds in (hnscc, nsclc)}


# -- layout, ids, splits -------------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [("hnscc", HNSCC), ("nsclc", NSCLC)])
def test_registered(name, cls):
    entry = get_plugins().registry.get("dataset", name)
    assert entry.load() is cls
    assert entry.meta["modalities"] == cls.modalities == ("nac_pet", "ac_pet", "ct")
    assert entry.meta["labels"] == cls.label_values == (0, 1)  # the optional lesion mask


def test_phantom_ids_and_splits(hnscc, nsclc):
    assert hnscc.split_names() == ["train", "val"]
    assert nsclc.split_names() == ["test"]
    train, val = hnscc.split_ids("train"), hnscc.split_ids("val")
    assert len(train) == 3 and len(val) == 2
    assert all(hnscc_split_of(i) == "train" for i in train)
    assert all(hnscc_split_of(i) == "val" for i in val)
    candidates = [f"HNSCC-01-{k:04d}" for k in range(1, 100)]
    assert train == [i for i in candidates if hnscc_split_of(i) == "train"][:3]
    assert val == [i for i in candidates if hnscc_split_of(i) == "val"][:2]
    assert nsclc.split_ids("test") == [f"ACRIN-NSCLC-FDG-PET-{k:03d}" for k in (1, 2, 3)]
    with pytest.raises(DataError, match="no split 'test'"):
        hnscc.split_ids("test")
    with pytest.raises(DataError, match="no split 'train'"):
        nsclc.split_ids("train")


def test_layout_and_read(hnscc, nsclc, volumes):
    for ds in (hnscc, nsclc):
        assert ds.origin == "phantom" and not ds.check()
        for case_id, case in ds.find_cases().items():
            folder = ds.root / case_id
            assert [case.images[m] for m in ds.modalities] == [folder / f for f in FILES]
            assert case.label == folder / LESION_FILE and case.patient_id == case_id
            dtypes = [nib.load(folder / f).get_data_dtype() for f in FILES]
            assert dtypes == [np.float32, np.float32, np.int16]
    spacing = {name: vols[0].spacing for name, vols in volumes.items()}
    assert spacing["hnscc"] == pytest.approx((11.25, 11.25, 350 / 32))
    assert spacing["nsclc"] == pytest.approx((15.0, 15.0, 12.5))
    for vols in volumes.values():
        for vol in vols:
            nac, ac, ct = vol.image
            assert vol.image.shape == (3, SIZE, SIZE, SIZE) and vol.label.shape == (SIZE,) * 3
            assert set(np.unique(vol.label)) <= {0, 1}
            assert ct.min() >= -1024 and np.array_equal(ct, np.round(ct))
            assert ac.min() >= 0 and nac.min() >= 0
            assert (nac <= ac + 1e-6).all(), "attenuation only removes counts"


def test_real_copy_uses_the_same_rule(hnscc, nsclc, tmp_path):
    for ds in (hnscc, nsclc):
        root = tmp_path / ds.name
        shutil.copytree(ds.root, root, ignore=shutil.ignore_patterns(PHANTOM_MANIFEST))
        (root / ".hidden").mkdir()
        real = type(ds)(root)
        assert real.origin == "real" and set(real.find_cases()) == set(ds.find_cases())
        assert real.split_names() == ds.split_names()
        for split in ds.split_names():
            assert real.split_ids(split) == ds.split_ids(split)
        assert not real.check()
        case_id = real.split_ids(real.split_names()[0])[0]
        (root / case_id / LESION_FILE).unlink()  # the lesion mask is optional
        assert real.find_cases()[case_id].label is None and not real.check()
        assert real.read(real.find_cases()[case_id]).label is None


def test_split_rules():
    patients = [f"HNSCC-01-{k:04d}" for k in range(1, 1001)]
    split = {p: hnscc_split_of(p) for p in patients}
    assert set(split.values()) == {"train", "val"}
    assert 0.75 < np.mean([s == "train" for s in split.values()]) < 0.85
    assert {p: hnscc_split_of(p) for p in reversed(patients)} == split
    assert patient_of("HNSCC-01-0007__post-rt") == "HNSCC-01-0007" == patient_of("HNSCC-01-0007")


def test_further_studies_follow_their_patient(hnscc, tmp_path):
    case_id = hnscc.split_ids("val")[0]
    shutil.copytree(hnscc.root / case_id, tmp_path / case_id)
    shutil.copytree(hnscc.root / case_id, tmp_path / f"{case_id}__followup")
    real = HNSCC(tmp_path)
    cases = real.find_cases()
    assert cases[f"{case_id}__followup"].patient_id == case_id
    assert real.split_ids("val") == [case_id, f"{case_id}__followup"]
    assert real.split_ids("train") == []


def test_phantom_split_keys(tmp_path):
    splits = HNSCC.write_phantom(tmp_path / "h", seed=0, cases_per_split={"val": 1, "test": 4},
                                 size=8)
    assert splits == {"train": [], "val": ["HNSCC-01-0004"]}
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == ["HNSCC-01-0004"]
    splits = NSCLC.write_phantom(tmp_path / "n", seed=0, cases_per_split={"train": 5, "test": 1},
                                 size=8)
    assert splits == {"test": ["ACRIN-NSCLC-FDG-PET-001"]}
    with pytest.raises(DataError, match="no split 'dev'"):
        NSCLC.write_phantom(tmp_path / "x", seed=0, cases_per_split={"dev": 1}, size=8)


# -- determinism ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [HNSCC, NSCLC])
def test_same_seed_same_bytes_different_seed_differs(cls, hnscc, nsclc, tmp_path):
    ds = hnscc if cls is HNSCC else nsclc
    split = ds.split_names()[0]
    case_id = ds.split_ids(split)[0]
    cls.write_phantom(tmp_path / "a", seed=0, cases_per_split={split: 1}, size=SIZE)
    cls.write_phantom(tmp_path / "b", seed=1, cases_per_split={split: 1}, size=SIZE)
    for name in FILES:
        same = (tmp_path / "a" / case_id / name).read_bytes()
        assert same == (ds.root / case_id / name).read_bytes(), name
        assert same != (tmp_path / "b" / case_id / name).read_bytes(), name


# -- physics -------------------------------------------------------------------------------
def _body(vol):
    return ndimage.binary_fill_holes(vol.image[2] > -500)


def test_nac_loses_more_at_the_body_centre(volumes):
    """Per axial slice (attenuation acts in-plane), NAC/AC at the centre vs at the skin."""
    for name, vols in volumes.items():
        for vol in vols:
            nac, ac, ct = vol.image
            ratios = []
            for k in range(ct.shape[2]):
                body = ndimage.binary_fill_holes(ct[:, :, k] > -500)
                depth = ndimage.distance_transform_edt(body, sampling=vol.spacing[:2])
                hot = body & (ac[:, :, k] > 0.3)
                if depth.max() < 3 * vol.spacing[0] or hot.sum() < 20:
                    continue
                ratio, d = nac[:, :, k][hot] / ac[:, :, k][hot], depth[hot]
                centre = np.median(ratio[d >= 0.7 * d.max()])
                surface = np.median(ratio[d <= 1.01 * vol.spacing[0]])
                assert 0.02 < centre < 0.45 and surface < 0.7, (name, vol.case_id, k)
                ratios.append(centre / surface)
            assert len(ratios) >= SIZE // 2
            assert np.median(ratios) < 0.8 and max(ratios) < 0.95, (name, vol.case_id, ratios)


def test_attenuation_model():
    mu = hu_to_mu(np.array([-1000.0, -800.0, 0.0, 1000.0, 1200.0]))
    assert mu == pytest.approx([0.0, 0.0192, 0.096, 0.16, 0.1728], abs=1e-4)
    # A uniform water cylinder (radius 10 cm): a line through the centre loses exp(-0.096 *
    # 20); the mean over directions is that at the centre and larger near the edge.
    n, step = 41, 5.0
    ii = (np.arange(n) - n // 2) * step
    water = np.repeat((ii[:, None] ** 2 + ii[None, :] ** 2 <= 100.0**2)[:, :, None], 3, axis=2)
    att = attenuation_factors(hu_to_mu(np.where(water, 0.0, -1000.0)), step)
    assert att[n // 2, n // 2, 1] == pytest.approx(np.exp(-0.096 * 20.5), rel=0.06)
    assert att[n // 2 + 19, n // 2, 1] > 2 * att[n // 2, n // 2, 1]
    assert (att[~water] >= att[n // 2, n // 2, 1]).all()


def test_hnscc_and_nsclc_differ(volumes):
    def stats(vol):
        nac, ac, ct = vol.image
        body = _body(vol)
        return {"lung": float(((ct < -600) & body).sum() / body.sum()),
                "width_mm": float(body.any(axis=(1, 2)).sum() * vol.spacing[0]),
                "nac_ratio": float(np.median(nac[body & (ac > 0.3)] / ac[body & (ac > 0.3)])),
                "hot": float((ac > 5).sum() / body.sum())}

    s = {name: [stats(v) for v in vols] for name, vols in volumes.items()}
    lung = {n: np.mean([x["lung"] for x in v]) for n, v in s.items()}
    assert lung["nsclc"] > 0.08 and lung["hnscc"] < 0.03, lung
    ratio = {n: np.mean([x["nac_ratio"] for x in v]) for n, v in s.items()}
    assert ratio["hnscc"] > 1.3 * ratio["nsclc"], ratio  # shorter paths through the head
    hot = {n: np.mean([x["hot"] for x in v]) for n, v in s.items()}
    assert hot["hnscc"] > 2 * hot["nsclc"], hot  # brain uptake


def test_head_neck_anatomy_and_lesions():
    s = make_head_neck(case_rng(4, "hn"), 48, diagnosis="hnscc")
    gm, wm = s.mask("brain_gm", threshold=0.9), s.mask("brain_wm", threshold=0.9)
    assert 5 < s.suv[gm].mean() < 11 and s.suv[wm].mean() < 0.6 * s.suv[gm].mean()
    assert np.median(s.ct[s.mask("air", threshold=0.9)]) < -900  # airway, sinuses
    assert np.median(s.ct[s.mask("cortical", "marrow", threshold=0.9)]) > 300  # skull, spine
    assert 0 < np.median(s.ct[s.mask("muscle")]) < 100
    assert any("primary" in l["site"] for l in s.info["lesions"])
    labels, n = ndimage.label(s.label)
    for k in range(1, n + 1):
        shell = ndimage.binary_dilation(labels == k) & (s.label == 0)
        assert s.suv[labels == k].mean() > 1.5 * np.median(s.suv[shell])


def test_thorax_is_the_torso_region():
    s = make_torso(case_rng(2, "t"), SIZE, diagnosis="lung_cancer", region="thorax")
    assert s.region == "thorax" and s.info["lesions"][0]["site"] == "lung primary"
    assert s.mask("lung").sum() > 0.05 * s.info["body"].sum() and not s.mask("bladder").any()
    assert np.median(s.ct[s.mask("lung")]) < -600


# -- bad input -----------------------------------------------------------------------------
@pytest.fixture
def single(nsclc, tmp_path):
    case_id = nsclc.split_ids("test")[0]
    shutil.copytree(nsclc.root / case_id, tmp_path / case_id)
    ds = NSCLC(tmp_path)
    return ds, ds.find_cases()[case_id]


def _missing(case):
    return delete(case, "nac_pet")


def _truncated(case):
    return truncate(case, "ct", parts=3)


def _shape(case):
    rewrite(case.images["ct"], np.asarray(nib.load(case.images["ct"]).dataobj)[..., :-2])
    return case.images["ct"], "shape (32, 32, 30) differs"


def _affine(case):
    return shift_origin(case.images["ac_pet"], axis=1, mm=4.0)


@pytest.mark.parametrize("damage", [_missing, _truncated, _shape, _affine])
def test_bad_input_names_case_and_file(single, damage):
    assert_damage_named(*single, damage)
