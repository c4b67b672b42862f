"""AutoPET-II (FDG-PET-CT-Lesions) NIfTI layout, its patient-level split, and its phantom.

Layout (TCIA FDG-PET-CT-Lesions after the challenge's NIfTI conversion; 1,014 studies of
900 patients, 501 with lesions, 513 lesion-free controls)::

    <root>/[FDG-PET-CT-Lesions/]<patient>/<study>/{CTres,SUV,PET,SEG}.nii.gz

``<patient>`` is e.g. ``PETCT_0011f3deaf``; ``<study>`` is the TCIA study folder, with spaces,
e.g. ``08-12-2005-NA-PET-CT Ganzkoerper  primaer mit KM-10250``. ``CT.nii.gz`` (the CT on its
own grid) may be there too; it is not read. Modalities: ``ct`` (CTres: CT resampled to the PET
grid, HU), ``suv`` (SUV), ``pet`` (PET, Bq/ml); label SEG {0, 1} (empty for controls).

**Case ids.** A study's case id is :func:`study_case_id`: ``<patient>__<study>`` with every run
of characters other than letters, digits, ``.`` and ``-`` replaced by ``_`` (so no spaces or
slashes: ids are safe as file names and in CSV), e.g.
``PETCT_0011f3deaf__08-12-2005-NA-PET-CT_Ganzkoerper_primaer_mit_KM-10250``. The patient id
is the patient folder; ``meta`` holds ``patient`` and the original ``study`` folder name.

**Split.** No official split with case ids exists. In order of precedence:

1. a phantom root: the split recorded in its manifest;
2. ``xhbench/data/splits/autopet/{train,val,test}.txt`` if the package ships them (it does
   not at present), one case id per line;
3. the deterministic rule :func:`assign_patients`: patient level (all studies of a patient in
   one split), stratified by lesion status (a patient is positive when any of its studies has
   a non-empty SEG). Within each stratum, patients are ordered by
   ``sha256("xhbench-autopet-split-v1:" + patient)`` and cut 70 / 10 / 20 % into
   train / val / test (``floor(share * n + 0.5)`` boundaries). The same data gives the same
   split; the run records it through ``split_sha256``.

Stratifying needs each study's lesion status, i.e. reading every SEG. :func:`seg_has_lesion`
streams the gzip data and stops at the first non-zero byte: a lesion-free full-size SEG
(400 x 400 x ~300 uint8, ~52 MB decompressed) costs ~0.1 s, a positive one less, about
1-2 minutes for the 1,014 studies on one core. The flags are cached per root in
``$XHBENCH_CACHE/autopet/`` keyed by each SEG's path, size and modification time, so only
the first use of a root pays.

The phantom (:mod:`xhbench.datasets.petct_phantom`, torso region) is written in this layout
under real-pattern ids; see :meth:`AutoPET.write_phantom` and ``docs/datasets.md``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import DataError
from ..results import write_json_atomic
from .base import Case, Dataset, default_cache_dir, save_nifti
from .petct_phantom import case_rng
from .petct_torso import make_torso

__all__ = [
    "DATA_FOLDER",
    "FILES",
    "SPLIT_SHARES",
    "AutoPET",
    "assign_patients",
    "phantom_studies",
    "seg_has_lesion",
    "study_case_id",
]

DATA_FOLDER = "FDG-PET-CT-Lesions"
#: modality -> file stem in a study folder; the label is ``SEG``.
FILES = {"ct": "CTres", "suv": "SUV", "pet": "PET"}
LABEL_FILE = "SEG"
SPLITS = ("train", "val", "test")
#: Shares of each stratum's patients, in order.
SPLIT_SHARES = (("train", 0.7), ("val", 0.1), ("test", 0.2))
SPLIT_SALT = "xhbench-autopet-split-v1:"
SHIPPED_SPLIT_FOLDER = "data/splits/autopet"
_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")


def study_case_id(patient: str, study: str) -> str:
    """``<patient>__<study>`` with runs of characters other than ``[A-Za-z0-9.-]`` -> ``_``."""
    return f"{patient}__{_UNSAFE.sub('_', study).strip('_')}"


def _rank_key(patient: str) -> tuple[str, str]:
    return hashlib.sha256((SPLIT_SALT + patient).encode()).hexdigest(), patient


def assign_patients(positive: Mapping[str, bool]) -> dict[str, str]:
    """Patient -> split: per lesion stratum, hash-ordered and cut 70 / 10 / 20 %."""
    assigned: dict[str, str] = {}
    for stratum in (True, False):
        members = sorted((p for p, pos in positive.items() if bool(pos) == stratum),
                         key=_rank_key)
        n, start, cumulative = len(members), 0, 0.0
        for split, share in SPLIT_SHARES:
            cumulative += share
            stop = n if split == SPLIT_SHARES[-1][0] else math.floor(cumulative * n + 0.5)
            for patient in members[start:stop]:
                assigned[patient] = split
            start = stop
    return assigned


def seg_has_lesion(path: Path, case_id: str | None = None) -> bool:
    """Whether a SEG NIfTI holds any non-zero voxel, decompressing only as far as needed.

    Reads the header with nibabel, then streams the data block and stops at the first
    non-zero byte (a float ``-0.0`` would count as non-zero; labels are integers). A scaled
    image (``scl_inter`` not 0) is loaded in full instead.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise DataError("file missing", case=case_id, path=path)
    try:
        proxy = nib.load(str(path)).dataobj  # the file's own data offset and scaling
        if float(proxy.inter) != 0.0 or float(proxy.slope) == 0.0:
            return bool(np.asarray(proxy).any())
        offset = int(proxy.offset)
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as stream:
            skipped = len(stream.read(offset))
            if skipped < offset:
                raise ValueError("file ends inside the header")
            while chunk := stream.read(1 << 22):
                if np.frombuffer(chunk, np.uint8).any():
                    return True
        return False
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read NIfTI ({type(exc).__name__}: {exc})", case=case_id,
                        path=path) from exc


class AutoPET(Dataset):
    """AutoPET-II FDG-PET-CT-Lesions: CTres / SUV / PET and the binary lesion SEG."""

    name: ClassVar[str] = "autopet"
    modalities: ClassVar[tuple[str, ...]] = ("ct", "suv", "pet")
    label_values: ClassVar[tuple[int, ...]] = (0, 1)
    phantom_version: ClassVar[int] = 1
    #: Split shares used by ``xhbench datasets phantom --cases``.
    real_split_sizes: ClassVar[dict[str, float]] = dict(SPLIT_SHARES)

    def __init__(self, root):
        super().__init__(root)
        self._flags: dict[str, bool] | None = None
        self._rule_splits: dict[str, list[str]] | None = None

    @property
    def data_dir(self) -> Path:
        """The folder holding the patient folders: ``FDG-PET-CT-Lesions/`` or the root."""
        nested = self.root / DATA_FOLDER
        return nested if nested.is_dir() else self.root

    # -- layout ------------------------------------------------------------------------------
    def find_cases(self) -> dict[str, Case]:
        """Every ``<patient>/<study>/`` folder; missing files are left for :meth:`read`."""
        found: dict[str, Case] = {}
        for patient_dir in sorted(self.data_dir.iterdir()):
            if not patient_dir.is_dir() or patient_dir.name.startswith("."):
                continue
            studies = [d for d in sorted(patient_dir.iterdir())
                       if d.is_dir() and not d.name.startswith(".")]
            if not studies:
                raise DataError("patient folder holds no study folder (expected "
                                "<patient>/<study>/{CTres,SUV,PET,SEG}.nii.gz)", path=patient_dir)
            for study_dir in studies:
                case_id = study_case_id(patient_dir.name, study_dir.name)
                if case_id in found:
                    raise DataError(f"two study folders map to one case id (other: "
                                    f"{found[case_id].meta['study']!r})", case=case_id,
                                    path=study_dir)
                found[case_id] = Case(
                    case_id=case_id,
                    patient_id=patient_dir.name,
                    images={m: _nifti(study_dir, stem) for m, stem in FILES.items()},
                    label=_nifti(study_dir, LABEL_FILE),
                    meta={"patient": patient_dir.name, "study": study_dir.name},
                )
        if not found:
            raise DataError(f"no patient folders here (expected the autoPET layout "
                            f"[{DATA_FOLDER}/]<patient>/<study>/{{CTres,SUV,PET,SEG}}.nii.gz)",
                            path=self.root)
        return found

    # -- splits ------------------------------------------------------------------------------
    def real_split_names(self) -> list[str]:
        return list(SPLITS)

    def split_ids(self, split: str) -> list[str]:
        """The manifest's split (phantom), the shipped file, or :func:`assign_patients`."""
        if self.phantom is not None:
            return super().split_ids(split)
        if split not in SPLITS:
            raise DataError(f"no split {split!r}; known: {', '.join(SPLITS)}", path=self.root)
        shipped = resources.files("xhbench").joinpath(SHIPPED_SPLIT_FOLDER, f"{split}.txt")
        if shipped.is_file():
            return [line.strip() for line in shipped.read_text().splitlines() if line.strip()]
        return list(self.rule_splits()[split])

    def rule_splits(self) -> dict[str, list[str]]:
        """The deterministic patient-level, lesion-stratified split of the cases on disk."""
        if self._rule_splits is None:
            cases = self.find_cases()
            flags = self.lesion_flags()
            positive: dict[str, bool] = {}
            for case_id, case in cases.items():
                positive[case.patient_id] = positive.get(case.patient_id, False) or flags[case_id]
            patient_split = assign_patients(positive)
            splits: dict[str, list[str]] = {s: [] for s in SPLITS}
            for case_id in sorted(cases):
                splits[patient_split[cases[case_id].patient_id]].append(case_id)
            self._rule_splits = splits
        return self._rule_splits

    def lesion_flags(self) -> dict[str, bool]:
        """Case id -> SEG has a lesion voxel (streamed, cached on disk per root)."""
        if self._flags is None:
            cache = _FlagCache(self.data_dir)
            flags = {}
            for case_id, case in sorted(self.find_cases().items()):
                flags[case_id] = cache.lookup(case.label, case_id)
            cache.save()
            self._flags = flags
        return self._flags

    # -- phantom -----------------------------------------------------------------------------
    @classmethod
    def write_phantom(cls, out: Path, *, seed: int, cases_per_split: Mapping[str, int],
                      size: int) -> dict[str, list[str]]:
        """Write torso phantom studies in the AutoPET layout; return the splits (case ids).

        ``cases_per_split`` counts studies per split (keys ``train``, ``val``, ``test``).
        Each split has its own patients (:func:`phantom_studies`: about one patient in four
        has a follow-up study; patients alternate between lesion-positive and lesion-free, so
        about half of the studies are lesion-free and have an empty SEG). Each study is drawn
        from ``default_rng([seed, sha256(case id)])``; adding studies keeps existing ones.
        """
        unknown = sorted(set(cases_per_split) - set(SPLITS))
        if unknown:
            raise DataError(f"no split {unknown[0]!r} for autopet; known: {', '.join(SPLITS)}")
        out = Path(out)
        splits: dict[str, list[str]] = {}
        for split in SPLITS:
            n = int(cases_per_split.get(split, 0))
            if n < 0:
                raise DataError(f"split {split!r}: {n} cases requested")
            splits[split] = []
            for patient, study, diagnosis in phantom_studies(split, n):
                case_id = study_case_id(patient, study)
                subject = make_torso(case_rng(seed, case_id), size, diagnosis=diagnosis)
                folder = out / patient / study
                folder.mkdir(parents=True, exist_ok=True)
                save_nifti(folder / "CTres.nii.gz", subject.ct.astype(np.int16), subject.affine)
                save_nifti(folder / "SUV.nii.gz", subject.suv, subject.affine)
                save_nifti(folder / "PET.nii.gz", subject.pet_bqml, subject.affine)
                save_nifti(folder / "SEG.nii.gz", subject.label, subject.affine)
                splits[split].append(case_id)
        return splits


_PHANTOM_DIAGNOSES = ("melanoma", "lymphoma", "lung_cancer")
_PHANTOM_DESCRIPTIONS = ("PET-CT Ganzkoerper  primaer mit KM", "PET-CT Ganzkoerper  primaer mit KM",
                         "PET-CT Ganzkoerper  nativ", "PET-CT Teilkoerper  primaer mit KM")


def phantom_studies(split: str, n: int) -> list[tuple[str, str, str]]:
    """The first ``n`` phantom studies of a split: ``(patient, study folder, diagnosis)``.

    Patient ``k`` of a split is ``PETCT_`` + 10 hex digits of ``sha256("autopet-phantom/
    <split>/<k>")``; even ``k`` are lesion-positive (diagnosis melanoma, lymphoma or lung
    cancer), odd ``k`` lesion-free (``"negative"``). About one patient in four has a second,
    later study; a positive patient's follow-up is positive or negative (therapy response).
    Study folders follow TCIA's ``MM-DD-YYYY-NA-<description>-<5 digits>`` pattern.
    """
    studies: list[tuple[str, str, str]] = []
    k = 0
    while len(studies) < n:
        digest = hashlib.sha256(f"autopet-phantom/{split}/{k}".encode()).digest()
        patient = "PETCT_" + digest.hex()[:10]
        positive = k % 2 == 0
        diagnosis = _PHANTOM_DIAGNOSES[digest[5] % 3] if positive else "negative"
        year, month, day = 2002 + digest[6] % 14, 1 + digest[7] % 12, 1 + digest[8] % 28
        number = int.from_bytes(digest[9:12], "little") % 90000 + 10000
        description = _PHANTOM_DESCRIPTIONS[digest[12] % len(_PHANTOM_DESCRIPTIONS)]
        studies.append((patient, f"{month:02d}-{day:02d}-{year}-NA-{description}-{number}",
                        diagnosis))
        if digest[13] % 4 == 0 and len(studies) < n:  # a follow-up study
            later = month + 3 + digest[14] % 9
            year2, month2 = year + (later - 1) // 12, (later - 1) % 12 + 1
            follow = diagnosis if positive and digest[15] % 2 == 0 else "negative"
            number2 = (number + 1 + digest[16]) % 90000 + 10000
            studies.append((patient, f"{month2:02d}-{day:02d}-{year2}-NA-{description}-{number2}",
                            follow))
        k += 1
    return studies


def _nifti(folder: Path, stem: str) -> Path:
    """``<stem>.nii.gz``, or the uncompressed ``.nii`` when only that exists."""
    path = folder / f"{stem}.nii.gz"
    plain = folder / f"{stem}.nii"
    return plain if not path.exists() and plain.exists() else path


class _FlagCache:
    """Lesion flags of one data root on disk: relative SEG path -> [size, mtime_ns, flag]."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:16]
        self.path = default_cache_dir() / "autopet" / f"lesion_flags-{digest}.json"
        try:
            self.entries = json.loads(self.path.read_text()).get("entries", {})
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    def lookup(self, seg: Path | None, case_id: str) -> bool:
        if seg is None or not Path(seg).is_file():
            raise DataError("file missing (the split is stratified by SEG)", case=case_id,
                            path=seg)
        stat = Path(seg).stat()
        key = str(Path(seg).relative_to(self.data_dir))
        entry = self.entries.get(key)
        if entry is not None and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
            return bool(entry[2])
        flag = seg_has_lesion(seg, case_id)
        self.entries[key] = [stat.st_size, stat.st_mtime_ns, flag]
        self.changed = True
        return flag

    def save(self) -> None:
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, {"data_dir": str(self.data_dir.resolve()),
                                          "entries": self.entries})
        except OSError:
            pass  # a read-only cache only costs a rescan next time
