"""TCIA PET/CT DICOM studies -> the ``<case>/{nac_pet,ac_pet,ct}.nii.gz`` layout.

:func:`convert_tcia_petct` turns one study folder (its series in sub-folders, as the NBIA
Data Retriever writes them, or any nesting) into one case folder:

- ``ac_pet.nii.gz``: the attenuation-corrected PET (float32), on its own grid, which is the
  case's reference grid;
- ``nac_pet.nii.gz``: the non-attenuation-corrected PET (float32) on the AC-PET grid
  (resampled trilinearly only when its grid differs);
- ``ct.nii.gz``: the CT in Hounsfield units (int16), resampled trilinearly onto the AC-PET
  grid (AutoPET's ``CTres`` convention), values below -1024 HU (padding outside the
  reconstruction circle) set to -1024, and -1024 outside the CT's field of view;
- ``xhbench_conversion.json``: the source series, units, SUV parameters and grid.

All three images share one shape and affine, as :meth:`Dataset.read` requires.

Conventions:

- Series are grouped by SeriesInstanceUID. CT: Modality ``CT``, localizers (ImageType
  LOCALIZER) skipped. PET: Modality ``PT``; a series is attenuation-corrected when Corrected
  Image (0028,0051) contains ``ATTN``, non-corrected when the tag is present without ATTN,
  and unusable when the tag is absent (series descriptions are not trusted). When a role
  has several candidates, the one with most slices (then lowest SeriesNumber) is taken.
- Slices are sorted by ImagePositionPatient projected on the slice normal (row cosine x
  column cosine); duplicate positions, mixed orientations or uneven spacing are errors.
- Voxel ``[i, j, k]`` is column ``i``, row ``j`` of the ``k``-th slice in that order. The
  DICOM (LPS) affine has columns ``row_cosine * PixelSpacing[1]``,
  ``column_cosine * PixelSpacing[0]``, ``(IPP_last - IPP_first) / (n - 1)`` and
  translation ``IPP_first``; the NIfTI affine is ``diag(-1, -1, 1, 1)`` times it (RAS+).
  The voxel order is kept as stored (no reorientation); qform and sform code 1 (scanner).
- Values are ``stored * RescaleSlope + RescaleIntercept`` per slice. PET is written as
  body-weight SUV (``pet_units="suv"``, default): ``SUV = C[Bq/ml] * weight[g] /
  (injected dose[Bq] * 2^(-dt / half-life))`` with ``dt`` from RadiopharmaceuticalStart
  (Date)Time to SeriesDate/SeriesTime when DecayCorrection is START (``dt = 0`` for
  ADMIN); this needs Units BQML, PatientWeight and the radiopharmaceutical tags, each
  series using its own tags. ``pet_units="native"`` writes the rescaled values in the
  series' own Units (Bq/ml for BQML) instead.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from .base import save_nifti

__all__ = ["CT_AIR_HU", "OUTPUT_FILES", "convert_tcia_petct", "find_series", "load_series"]

OUTPUT_FILES = {"nac_pet": "nac_pet.nii.gz", "ac_pet": "ac_pet.nii.gz", "ct": "ct.nii.gz"}
CONVERSION_RECORD = "xhbench_conversion.json"
CT_AIR_HU = -1024.0
PET_UNITS = ("suv", "native")
_ROLE_NAMES = {"ct": "CT", "nac_pet": "NAC PET", "ac_pet": "AC PET"}


@dataclass
class Series:
    """One DICOM series of a study: its files and their headers (no pixel data)."""

    uid: str
    files: list[Path] = field(default_factory=list)
    headers: list = field(default_factory=list)

    @property
    def first(self):
        return self.headers[0]

    @property
    def modality(self) -> str:
        return str(getattr(self.first, "Modality", ""))

    @property
    def number(self) -> int | None:
        value = getattr(self.first, "SeriesNumber", None)
        return int(value) if value not in (None, "") else None

    @property
    def description(self) -> str:
        return str(getattr(self.first, "SeriesDescription", ""))

    @property
    def corrected(self) -> list[str] | None:
        """Corrected Image (0028,0051) values, or ``None`` when the tag is absent."""
        if "CorrectedImage" not in self.first:
            return None
        value = self.first.CorrectedImage
        return [str(v).strip().upper() for v in (value if _is_multi(value) else [value])]

    def role(self) -> tuple[str | None, str]:
        """``("ct" | "ac_pet" | "nac_pet" | None, why)``."""
        image_type = [str(v).upper() for v in _as_list(getattr(self.first, "ImageType", []))]
        slices = sum("ImagePositionPatient" in h for h in self.headers)
        if self.modality not in ("CT", "PT"):
            return None, f"modality {self.modality or 'unknown'}"
        if "LOCALIZER" in image_type:
            return None, "localizer"
        if slices < 2:
            return None, f"{slices} slice(s) with a position"
        if self.modality == "CT":
            return "ct", "CT"
        corrected = self.corrected
        if corrected is None:
            return None, "PT without Corrected Image (0028,0051)"
        return ("ac_pet" if "ATTN" in corrected else "nac_pet"), f"CorrectedImage {corrected}"

    def summary(self) -> str:
        _, why = self.role()
        return (f"series {self.number} {self.description!r} ({self.modality}, "
                f"{len(self.files)} file(s); {why})")


def find_series(study_dir: str | Path) -> list[Series]:
    """Every DICOM series under ``study_dir`` (any nesting), headers only; non-DICOM skipped."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise DataError("TCIA study folder not found", path=study_dir)
    series: dict[str, Series] = {}
    for path in sorted(p for p in study_dir.rglob("*") if p.is_file()):
        try:
            header = pydicom.dcmread(str(path), stop_before_pixels=True)
        except (InvalidDicomError, EOFError, OSError):
            continue
        uid = str(getattr(header, "SeriesInstanceUID", "")) or f"(no SeriesInstanceUID) {path.parent}"
        entry = series.setdefault(uid, Series(uid))
        entry.files.append(path)
        entry.headers.append(header)
    return list(series.values())


def convert_tcia_petct(study_dir: str | Path, out_case_dir: str | Path, *,
                       pet_units: str = "suv", overwrite: bool = False) -> dict:
    """Convert one TCIA PET/CT study folder to ``out_case_dir/{nac_pet,ac_pet,ct}.nii.gz``.

    Args:
        study_dir: the study folder (holding the series folders).
        out_case_dir: the case folder to write (created if needed).
        pet_units: ``"suv"`` (body-weight SUV) or ``"native"`` (rescaled values in the
            series' Units, Bq/ml for BQML).
        overwrite: replace existing output files instead of refusing.

    Returns:
        The conversion record, also written to ``xhbench_conversion.json``.

    Raises:
        DataError: a series is missing (message names the study folder and what is
            missing, and lists the series found), or a series cannot be assembled.
    """
    if pet_units not in PET_UNITS:
        raise UsageError(f"pet_units must be one of {PET_UNITS}, not {pet_units!r}")
    study_dir, out = Path(study_dir), Path(out_case_dir)
    existing = [out / name for name in OUTPUT_FILES.values() if (out / name).exists()]
    if existing and not overwrite:
        raise UsageError(f"{existing[0]} exists; pass --force (overwrite=True) to replace it")
    chosen = _choose_series(study_dir, find_series(study_dir))

    volumes = {role: load_series(chosen[role], study_dir) for role in OUTPUT_FILES}
    record: dict = {"source": str(study_dir), "pet_units": pet_units, "series": {},
                    "reference_grid": "ac_pet"}
    ref_array, ref_affine = volumes["ac_pet"]
    shape = ref_array.shape
    arrays: dict[str, np.ndarray] = {}
    for role in ("ac_pet", "nac_pet"):
        array, affine = volumes[role]
        units = str(getattr(chosen[role].first, "Units", "")).upper() or "unknown"
        info: dict = {}
        if pet_units == "suv":
            factor, info = suv_factor(chosen[role], study_dir)
            array = array * factor
            units = "SUVbw (g/ml)"
        resampled = not _same_grid(array.shape, affine, shape, ref_affine)
        if resampled:
            array = resample(array, affine, ref_affine, shape, fill=0.0)
        arrays[role] = array.astype(np.float32)
        record["series"][role] = _series_record(chosen[role], units, resampled, info)
    ct, ct_affine = volumes["ct"]
    ct = np.maximum(ct, CT_AIR_HU)
    inside = resample(np.ones(ct.shape, np.float32), ct_affine, ref_affine, shape, fill=0.0,
                      order=0)
    ct = resample(ct, ct_affine, ref_affine, shape, fill=CT_AIR_HU)
    arrays["ct"] = np.clip(np.round(ct), -32768, 32767).astype(np.int16)
    record["series"]["ct"] = _series_record(chosen["ct"], "HU", True, {})
    record["ct_coverage"] = float(inside.mean())
    frames = {str(getattr(chosen[r].first, "FrameOfReferenceUID", "")) for r in OUTPUT_FILES}
    record["same_frame_of_reference"] = len(frames) == 1
    record["shape"] = list(shape)
    record["affine"] = np.asarray(ref_affine).round(6).tolist()
    record["spacing"] = [float(s) for s in np.sqrt((ref_affine[:3, :3] ** 2).sum(axis=0))]

    out.mkdir(parents=True, exist_ok=True)
    staged = []
    try:
        for role, name in OUTPUT_FILES.items():
            tmp = out / f".tmp{os.getpid()}_{name}"
            save_nifti(tmp, arrays[role], ref_affine)
            staged.append((tmp, out / name))
            record["series"][role]["file"] = name
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    (out / CONVERSION_RECORD).write_text(json.dumps(record, indent=2))
    return record


def _choose_series(study_dir: Path, found: list[Series]) -> dict[str, Series]:
    studies = {str(getattr(s.first, "StudyInstanceUID", "")) for s in found}
    if len(studies) > 1:
        raise DataError(f"TCIA study folder {study_dir} holds {len(studies)} studies "
                        "(StudyInstanceUID); pass one study folder")
    candidates: dict[str, list[Series]] = {role: [] for role in OUTPUT_FILES}
    for series in found:
        role, _ = series.role()
        if role is not None:
            candidates[role].append(series)
    missing = [_ROLE_NAMES[role] for role, options in candidates.items() if not options]
    if missing:
        listing = "; ".join(s.summary() for s in found) or "no DICOM files"
        raise DataError(f"TCIA study folder {study_dir}: no {' and no '.join(missing)} series "
                        f"(AC/NAC PET told apart by Corrected Image (0028,0051) containing "
                        f"ATTN). Found: {listing}")
    return {role: min(options, key=lambda s: (-len(s.files), s.number or 0, s.uid))
            for role, options in candidates.items()}


def load_series(series: Series, study_dir: str | Path = "") -> tuple[np.ndarray, np.ndarray]:
    """Read a series' pixels: ``(array[column, row, slice] float64, RAS affine)``."""
    import pydicom

    where = f"TCIA study folder {study_dir}, {series.summary()}"
    datasets = []
    for path in series.files:
        ds = pydicom.dcmread(str(path))
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            raise DataError(f"{where}: multi-frame images are not supported", path=path)
        if "ImagePositionPatient" in ds:
            datasets.append((path, ds))
    orientation = np.array([float(v) for v in datasets[0][1].ImageOrientationPatient])
    spacing = np.array([float(v) for v in datasets[0][1].PixelSpacing])
    size = (int(datasets[0][1].Rows), int(datasets[0][1].Columns))
    for path, ds in datasets:
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], orientation,
                           atol=1e-4):
            raise DataError(f"{where}: slices differ in ImageOrientationPatient", path=path)
        if (int(ds.Rows), int(ds.Columns)) != size or not np.allclose(
                [float(v) for v in ds.PixelSpacing], spacing, atol=1e-4):
            raise DataError(f"{where}: slices differ in size or PixelSpacing", path=path)
    row_cos, col_cos = orientation[:3], orientation[3:]
    normal = np.cross(row_cos, col_cos)
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for _, ds in datasets])
    order = np.argsort(positions @ normal, kind="stable")
    datasets = [datasets[i] for i in order]
    positions = positions[order]
    steps = np.diff(positions @ normal)
    if np.any(np.abs(steps) < 1e-3):
        raise DataError(f"{where}: several slices share one position (a dynamic or "
                        "multi-bed series?)", path=datasets[int(np.argmin(np.abs(steps)))][0])
    if np.abs(steps - steps.mean()).max() > 0.01 * abs(steps.mean()) + 1e-3:
        raise DataError(f"{where}: uneven slice spacing ({steps.min():.3f} to "
                        f"{steps.max():.3f} mm)")
    slices = []
    for path, ds in datasets:
        try:
            pixels = ds.pixel_array.astype(np.float64)
        except Exception as exc:
            raise DataError(f"{where}: cannot decode pixel data ({type(exc).__name__}: {exc})",
                            path=path) from exc
        slope = float(getattr(ds, "RescaleSlope", 1) or 1)
        intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
        slices.append((pixels * slope + intercept).T)  # [row, column] -> [column, row]
    array = np.stack(slices, axis=-1)
    lps = np.eye(4)
    lps[:3, 0] = row_cos * spacing[1]
    lps[:3, 1] = col_cos * spacing[0]
    lps[:3, 2] = (positions[-1] - positions[0]) / (len(positions) - 1)
    lps[:3, 3] = positions[0]
    return array, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def suv_factor(series: Series, study_dir: str | Path = "") -> tuple[float, dict]:
    """Bq/ml -> body-weight SUV factor of a PET series, and the values it used."""
    ds = series.first
    where = f"TCIA study folder {study_dir}, {series.summary()}"

    def need(value, what):
        if value in (None, ""):
            raise DataError(f"{where}: cannot compute SUV without {what}; convert with "
                            "pet_units='native' (--pet-units native) to keep the series' units")
        return value

    units = str(getattr(ds, "Units", "")).upper()
    if units != "BQML":
        need(None, f"Units BQML (the series has {units or 'no Units'})")
    weight = float(need(getattr(ds, "PatientWeight", None), "PatientWeight (0010,1030)"))
    if weight <= 0:
        need(None, "a positive PatientWeight")
    info = need((getattr(ds, "RadiopharmaceuticalInformationSequence", None) or [None])[0],
                "RadiopharmaceuticalInformationSequence (0054,0016)")
    dose = float(need(getattr(info, "RadionuclideTotalDose", None), "RadionuclideTotalDose"))
    half_life = float(need(getattr(info, "RadionuclideHalfLife", None), "RadionuclideHalfLife"))
    correction = str(getattr(ds, "DecayCorrection", "START")).upper()
    elapsed = 0.0
    if correction == "START":
        injection = _datetime(getattr(info, "RadiopharmaceuticalStartDateTime", None), None,
                              None)
        date = getattr(ds, "SeriesDate", None) or getattr(ds, "AcquisitionDate", None)
        if injection is None:
            injection = _datetime(None, date, getattr(info, "RadiopharmaceuticalStartTime", None))
        start = _datetime(None, date, getattr(ds, "SeriesTime", None)
                          or getattr(ds, "AcquisitionTime", None))
        need(injection, "the injection time (RadiopharmaceuticalStartTime)")
        need(start, "the series start (SeriesTime)")
        elapsed = (start - injection).total_seconds()
        if elapsed < 0 and getattr(info, "RadiopharmaceuticalStartDateTime", None) is None:
            elapsed += 86400.0  # injected before midnight, scanned after
        if elapsed < 0:
            need(None, "an injection time before the series start")
    elif correction != "ADMIN":
        need(None, f"decay correction START or ADMIN (DecayCorrection is {correction})")
    dose_at_start = dose * math.pow(2.0, -elapsed / half_life)
    factor = weight * 1000.0 / dose_at_start
    return factor, {"weight_kg": weight, "injected_dose_bq": dose, "half_life_s": half_life,
                    "decay_correction": correction, "seconds_injection_to_start": elapsed,
                    "suv_per_bqml": factor}


def resample(array: np.ndarray, affine: np.ndarray, ref_affine: np.ndarray,
             shape: tuple[int, ...], *, fill: float, order: int = 1) -> np.ndarray:
    """``array`` (on ``affine``) sampled at the voxels of the grid ``(shape, ref_affine)``."""
    from scipy import ndimage

    if _same_grid(array.shape, affine, shape, ref_affine):
        return array
    to_source = np.linalg.inv(affine) @ ref_affine
    return ndimage.affine_transform(array, to_source[:3, :3], offset=to_source[:3, 3],
                                    output_shape=tuple(shape), order=order, mode="constant",
                                    cval=fill)


def _same_grid(shape, affine, ref_shape, ref_affine) -> bool:
    return tuple(shape) == tuple(ref_shape) and np.allclose(affine, ref_affine, atol=1e-4)


def _series_record(series: Series, units: str, resampled: bool, suv: dict) -> dict:
    return {"series_instance_uid": series.uid, "series_number": series.number,
            "description": series.description, "modality": series.modality,
            "corrected_image": series.corrected, "slices": len(series.files), "units": units,
            "resampled_to_reference": resampled, **({"suv": suv} if suv else {})}


def _datetime(combined, date, time) -> datetime | None:
    """A DICOM DT, or DA + TM, as a naive datetime (time zone offsets ignored)."""
    if combined:
        text = str(combined).split("+")[0].split("-")[0].strip()
        date, time = text[:8], text[8:] or "000000"
    if not date or not time:
        return None
    time = str(time).strip().replace(":", "")
    whole, _, fraction = time.partition(".")
    whole = whole.ljust(6, "0")
    try:
        base = datetime.strptime(str(date).strip().replace(".", "") + whole[:6], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return base + timedelta(seconds=float(f"0.{fraction}") if fraction else 0.0)


def _as_list(value) -> list:
    return list(value) if _is_multi(value) else [value]


def _is_multi(value) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"
