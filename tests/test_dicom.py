"""TCIA PET/CT DICOM -> NIfTI converter, on small synthetic series written by pydicom."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset as DicomDataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from xhbench.cli import cli
from xhbench.datasets.base import Case, Dataset
from xhbench.datasets.dicom import (
    CONVERSION_RECORD,
    Series,
    convert_tcia_petct,
    find_series,
    load_series,
)
from xhbench.errors import DataError

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CT_SOP = "1.2.840.10008.5.1.4.1.1.2"
PT_SOP = "1.2.840.10008.5.1.4.1.1.128"
WEIGHT_KG, DOSE_BQ, HALF_LIFE_S = 70.0, 3.7e8, 6586.2
SUV_PER_BQML = WEIGHT_KG * 1000 / (DOSE_BQ * 2 ** (-3600 / HALF_LIFE_S))  # injected 1 h before


def write_series(folder: Path, stored: np.ndarray, *, modality: str, positions, iop=AXIAL,
                 spacing=(4.0, 4.0), slope=1.0, intercept=0.0, study_uid="1.2.3",
                 frame_uid="1.2.3.4", description="", number=1, order=None, **tags) -> str:
    """One series, one file per slice (``stored[k]`` is slice k, ``[row, column]``), files
    named in ``order`` (default reversed) so that file order is not position order."""
    folder.mkdir(parents=True)
    series_uid = generate_uid()
    order = list(order) if order is not None else list(range(len(positions)))[::-1]
    for file_index, k in enumerate(order):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_SOP if modality == "CT" else PT_SOP
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = DicomDataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.PatientID = "HN-TEST-001"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = (
            study_uid, series_uid, frame_uid)
        ds.Modality, ds.SeriesNumber, ds.SeriesDescription = modality, number, description
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [float(v) for v in positions[k]]
        ds.ImageOrientationPatient = list(iop)
        ds.PixelSpacing = list(spacing)
        ds.Rows, ds.Columns = stored.shape[1], stored.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope = slope[k] if isinstance(slope, (list, tuple)) else slope
        ds.RescaleIntercept = intercept
        ds.PixelData = stored[k].astype("<i2").tobytes()
        for key, value in tags.items():
            setattr(ds, key, value)
        _save(ds, folder / f"1-{file_index + 1:03d}.dcm")
    return series_uid


def _save(ds, path: Path) -> None:
    if int(pydicom.__version__.split(".")[0]) >= 3:
        pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
    else:  # pydicom 2.x
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(str(path), write_like_original=False)


def pet_tags(corrected, units="BQML"):
    info = DicomDataset()
    info.RadionuclideTotalDose = DOSE_BQ
    info.RadionuclideHalfLife = HALF_LIFE_S
    info.RadiopharmaceuticalStartTime = "100000.00"
    tags = {"Units": units, "DecayCorrection": "START", "PatientWeight": WEIGHT_KG,
            "SeriesDate": "20200102", "SeriesTime": "110000.00",
            "RadiopharmaceuticalInformationSequence": [info]}
    if corrected is not None:
        tags["CorrectedImage"] = list(corrected)
    return tags


def axial_positions(n, z0=-20.0, dz=4.0, x0=-16.0, y0=-12.0):
    return [(x0, y0, z0 + k * dz) for k in range(n)]


def make_study(root: Path, *, roles=("ct", "ac", "nac"), ct_grid="same", ac_units="BQML"):
    """A study: PET 8 x 8 x 4 voxels at 4 mm; CT on the same grid or a finer, larger one.

    Series descriptions lie on purpose (AC series called "NAC" and vice versa): only
    Corrected Image may decide.
    """
    rng = np.random.default_rng(0)
    positions = axial_positions(4)
    stored = {"ac": rng.integers(100, 3000, (4, 8, 8)), "nac": rng.integers(10, 500, (4, 8, 8))}
    if "ac" in roles:
        write_series(root / "3.000000-PET NAC-11111", stored["ac"], modality="PT",
                     positions=positions, slope=[0.5, 1.0, 2.0, 1.5], description="PET NAC",
                     number=3, **pet_tags(["DECY", "ATTN", "SCAT", "DTIM"], units=ac_units))
    if "nac" in roles:
        write_series(root / "4.000000-PET AC-22222", stored["nac"], modality="PT",
                     positions=positions, slope=0.25, description="PET AC corrected", number=4,
                     **pet_tags(["DECY", "RADL", "DTIM"]))
    if "ct" in roles:
        if ct_grid == "same":
            stored["ct"] = rng.integers(-1000, 1500, (4, 8, 8))
            write_series(root / "2.000000-CT-33333", stored["ct"], modality="CT",
                         positions=positions, intercept=-1024, slope=1.0, number=2,
                         description="CT")
            stored["ct"] = stored["ct"] - 1024
        else:  # 2 mm voxels covering and exceeding the PET field of view; HU linear in x, z
            x = -20.0 + 2.0 * np.arange(20)
            z = -24.0 + 2.0 * np.arange(12)
            ramp = (5.0 * x[None, None, :] + 10.0 * z[:, None, None]) * np.ones((1, 20, 1))
            write_series(root / "2.000000-CT-33333", ramp, modality="CT",
                         positions=[(-20.0, -20.0, zz) for zz in z], spacing=(2.0, 2.0),
                         number=2, description="CT")
        write_series(root / "1.000000-TOPOGRAM-44444", np.zeros((2, 8, 8)), modality="CT",
                     positions=axial_positions(2), ImageType=["ORIGINAL", "PRIMARY",
                                                              "LOCALIZER"], number=1)
    return stored


# -- slice geometry ---------------------------------------------------------------------
def _world_ras(ipp, iop, spacing, row, col):
    """DICOM PS3.3 C.7.6.2.1.1, then LPS -> RAS."""
    row_cos, col_cos = np.array(iop[:3]), np.array(iop[3:])
    lps = np.array(ipp) + col * spacing[1] * row_cos + row * spacing[0] * col_cos
    return lps * [-1, -1, 1]


@pytest.mark.parametrize("iop, positions", [
    (AXIAL, [(-16.0, -12.0, 30.0), (-16.0, -12.0, 27.0), (-16.0, -12.0, 33.0)]),
    ((1.0, 0.0, 0.0, 0.0, 0.0, -1.0), [(-10.0, 5.0, 40.0), (-10.0, 1.0, 40.0),
                                       (-10.0, 3.0, 40.0)]),  # coronal
    ((0.0, 1.0, 0.0, 0.0, 0.0, -1.0), [(7.0, -30.0, 50.0), (3.0, -30.0, 50.0),
                                       (5.0, -30.0, 50.0)]),  # sagittal
])
def test_slices_sorted_and_affine_maps_voxels_to_patient_ras(tmp_path, iop, positions):
    rows, cols, spacing = 5, 3, (2.0, 1.5)  # rows != columns, row spacing != column spacing
    stored = np.arange(3 * rows * cols).reshape(3, rows, cols)
    write_series(tmp_path / "s", stored, modality="CT", positions=positions, iop=iop,
                 spacing=spacing, slope=2.0, intercept=-100.0, order=[2, 0, 1])
    (series,) = find_series(tmp_path)
    array, affine = load_series(series)
    assert array.shape == (cols, rows, 3)
    normal = np.cross(iop[:3], iop[3:])
    by_position = sorted(range(3), key=lambda k: np.dot(positions[k], normal))
    for k, source in enumerate(by_position):
        np.testing.assert_array_equal(array[:, :, k], (stored[source] * 2.0 - 100.0).T)
        for row, col in ((0, 0), (rows - 1, 0), (0, cols - 1), (rows - 1, cols - 1), (2, 1)):
            expected = _world_ras(positions[source], iop, spacing, row, col)
            np.testing.assert_allclose((affine @ [col, row, k, 1])[:3], expected, atol=1e-6)
    # the slice axis points along +normal (positions ascending) and is one slice step long
    assert np.dot(affine[:3, 2] * [-1, -1, 1], normal) > 0
    np.testing.assert_allclose(np.linalg.norm(affine[:3, 2]), 2.0 if iop != AXIAL else 3.0)


def test_axial_affine_is_lps_flipped(tmp_path):
    write_series(tmp_path / "s", np.ones((3, 4, 4)), modality="CT",
                 positions=axial_positions(3, z0=10.0, dz=2.5, x0=-6.0, y0=-7.0),
                 spacing=(2.0, 3.0))
    _, affine = load_series(find_series(tmp_path)[0])
    np.testing.assert_allclose(affine, [[-3.0, 0, 0, 6.0], [0, -2.0, 0, 7.0],
                                        [0, 0, 2.5, 10.0], [0, 0, 0, 1]])


def test_duplicate_slice_positions_are_an_error(tmp_path):
    write_series(tmp_path / "s", np.ones((3, 4, 4)), modality="PT",
                 positions=[(0, 0, 0), (0, 0, 4.0), (0, 0, 4.0)], CorrectedImage=["ATTN"])
    with pytest.raises(DataError, match="share one position"):
        load_series(find_series(tmp_path)[0])


# -- whole studies ----------------------------------------------------------------------
def test_convert_values_units_and_classification(tmp_path):
    stored = make_study(tmp_path / "study")
    (tmp_path / "study" / "LICENSE").write_text("not DICOM")
    record = convert_tcia_petct(tmp_path / "study", tmp_path / "case")
    images = {role: nib.load(tmp_path / "case" / f"{role}.nii.gz")
              for role in ("ac_pet", "nac_pet", "ct")}
    affine = images["ac_pet"].affine
    for image in images.values():
        assert image.shape == (8, 8, 4)
        np.testing.assert_allclose(image.affine, affine)
        assert int(image.header["sform_code"]) == 1 and int(image.header["qform_code"]) == 1
    np.testing.assert_allclose(affine, [[-4, 0, 0, 16], [0, -4, 0, 12], [0, 0, 4, -20],
                                        [0, 0, 0, 1]])
    # AC is the series whose Corrected Image holds ATTN, whatever its description says
    assert record["series"]["ac_pet"]["description"] == "PET NAC"
    assert record["series"]["nac_pet"]["description"] == "PET AC corrected"
    slopes = np.array([0.5, 1.0, 2.0, 1.5])
    ac = np.asarray(images["ac_pet"].dataobj)
    np.testing.assert_allclose(ac, (stored["ac"] * slopes[:, None, None]).transpose(2, 1, 0)
                               * SUV_PER_BQML, rtol=1e-5)
    nac = np.asarray(images["nac_pet"].dataobj)
    np.testing.assert_allclose(nac, stored["nac"].transpose(2, 1, 0) * 0.25 * SUV_PER_BQML,
                               rtol=1e-5)
    assert images["ac_pet"].get_data_dtype() == np.float32
    assert images["ct"].get_data_dtype() == np.int16
    np.testing.assert_array_equal(np.asarray(images["ct"].dataobj),
                                  np.maximum(stored["ct"], -1024).transpose(2, 1, 0))
    assert record["series"]["ct"]["description"] == "CT"  # the localizer is skipped
    assert record["series"]["ac_pet"]["units"] == "SUVbw (g/ml)"
    assert record["series"]["ac_pet"]["suv"]["seconds_injection_to_start"] == 3600
    assert record["ct_coverage"] == 1.0 and record["same_frame_of_reference"]
    assert json.loads((tmp_path / "case" / CONVERSION_RECORD).read_text()) == record


def test_native_units_keep_bq_per_ml(tmp_path):
    stored = make_study(tmp_path / "study")
    record = convert_tcia_petct(tmp_path / "study", tmp_path / "case", pet_units="native")
    nac = np.asarray(nib.load(tmp_path / "case" / "nac_pet.nii.gz").dataobj)
    np.testing.assert_allclose(nac, stored["nac"].transpose(2, 1, 0) * 0.25, rtol=1e-6)
    assert record["series"]["ac_pet"]["units"] == "BQML"


def test_suv_needs_bq_per_ml(tmp_path):
    make_study(tmp_path / "study", ac_units="CNTS")
    with pytest.raises(DataError, match=r"Units BQML .*CNTS.*pet_units='native'"):
        convert_tcia_petct(tmp_path / "study", tmp_path / "case")


def test_ct_resampled_onto_the_pet_grid(tmp_path):
    make_study(tmp_path / "study", ct_grid="fine")
    record = convert_tcia_petct(tmp_path / "study", tmp_path / "case")
    ct = nib.load(tmp_path / "case" / "ct.nii.gz")
    assert ct.shape == (8, 8, 4)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in ct.shape], indexing="ij"), -1)
    ras = ijk @ ct.affine[:3, :3].T + ct.affine[:3, 3]
    x_lps, z = -ras[..., 0], ras[..., 2]
    # trilinear interpolation reproduces a linear ramp exactly (then rounded to int16)
    np.testing.assert_allclose(np.asarray(ct.dataobj), 5.0 * x_lps + 10.0 * z, atol=0.51)
    assert record["series"]["ct"]["resampled_to_reference"]
    assert record["ct_coverage"] == 1.0


@pytest.mark.parametrize("roles, missing", [
    (("ac", "nac"), "no CT series"),
    (("ct", "ac"), "no NAC PET series"),
    (("ct", "nac"), "no AC PET series"),
    (("ct",), "no NAC PET and no AC PET series"),
])
def test_missing_series_names_study_and_what_is_missing(tmp_path, roles, missing):
    make_study(tmp_path / "study", roles=roles)
    with pytest.raises(DataError) as error:
        convert_tcia_petct(tmp_path / "study", tmp_path / "case")
    message = str(error.value)
    assert f"TCIA study folder {tmp_path / 'study'}: {missing}" in message
    assert "Found: series" in message
    assert not (tmp_path / "case").exists()


def test_pet_without_corrected_image_is_not_guessed_from_its_description(tmp_path):
    make_study(tmp_path / "study", roles=("ct", "ac"))
    write_series(tmp_path / "study" / "5-PET NAC", np.ones((2, 8, 8)), modality="PT",
                 positions=axial_positions(2), description="PET NAC")
    with pytest.raises(DataError, match="no NAC PET series") as error:
        convert_tcia_petct(tmp_path / "study", tmp_path / "case")
    assert "PT without Corrected Image (0028,0051)" in str(error.value)
    series = {s.description: s for s in find_series(tmp_path / "study")}
    assert series["PET NAC"].role() == (None, "PT without Corrected Image (0028,0051)")
    assert isinstance(series["PET NAC"], Series)


def test_converted_case_reads_through_the_dataset_contract(tmp_path):
    make_study(tmp_path / "study", ct_grid="fine")
    convert_tcia_petct(tmp_path / "study", tmp_path / "root" / "HN-TEST-001")

    class PetCt(Dataset):
        name = "petct_test"
        modalities = ("nac_pet", "ac_pet", "ct")

        def find_cases(self):
            return {d.name: Case(d.name, d.name, {m: d / f"{m}.nii.gz" for m in
                                                  self.modalities}) for d in self.root.iterdir()}

    data = PetCt(tmp_path / "root")
    volume = data.read(data.find_cases()["HN-TEST-001"])
    assert volume.image.shape == (3, 8, 8, 4)
    assert volume.spacing == pytest.approx((4.0, 4.0, 4.0))


def test_cli_convert_and_refuse_to_overwrite(tmp_path):
    make_study(tmp_path / "study")
    args = ["datasets", "convert-tcia", str(tmp_path / "study"), str(tmp_path / "case")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "ac_pet: series 3 'PET NAC'" in result.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "exists" in again.output
    assert CliRunner().invoke(cli, [*args, "--force", "--pet-units", "native"]).exit_code == 0


def test_cli_missing_series_is_one_line_exit_1(tmp_path):
    make_study(tmp_path / "study", roles=("ct", "ac"))
    result = CliRunner().invoke(cli, ["datasets", "convert-tcia", str(tmp_path / "study"),
                                      str(tmp_path / "case")])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: TCIA study folder {tmp_path / 'study'}: no NAC PET")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_suv_factor_arithmetic():
    assert SUV_PER_BQML == pytest.approx(70000 / (3.7e8 * math.exp(-math.log(2) * 3600 / 6586.2)))
