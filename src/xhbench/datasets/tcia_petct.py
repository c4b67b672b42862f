"""TCIA head-and-neck (HNSCC) and lung (NSCLC) PET/CT with NAC-PET, AC-PET and CT.

Both collections are DICOM on TCIA; :func:`xhbench.datasets.dicom.convert_tcia_petct`
(``xhbench datasets convert-tcia STUDY OUT``) turns one study into one case folder of this
layout::

    <root>/<case>/{nac_pet,ac_pet,ct}.nii.gz      (+ xhbench_conversion.json)
    <root>/<case>/seg.nii.gz                      (optional lesion mask {0, 1})

- ``ac_pet``: attenuation-corrected PET (Corrected Image contains ATTN), body-weight SUV,
  float32, on its own grid, which is the case's grid;
- ``nac_pet``: the non-corrected PET of the same study, same SUV scaling (its own values x
  weight / decay-corrected dose: not quantitative, an order of magnitude below AC-PET at the
  body centre), float32, resampled onto the AC-PET grid when needed;
- ``ct``: CT in HU, int16, resampled trilinearly onto the AC-PET grid (AutoPET's CTres
  convention), -1024 outside the CT's field of view;
- ``seg`` (optional, not written by the converter): a lesion mask {0, 1} on the AC-PET grid,
  e.g. from an RTSTRUCT; cases that have one get the uptake errors of
  :mod:`xhbench.metrics.pet`. The phantoms write it (lesion fraction >= 0.5).

**Case ids** are the case folder names: the TCIA subject id (``HNSCC-01-0001`` for the MD
Anderson HNSCC collection; ``ACRIN-NSCLC-FDG-PET-001`` for ACRIN-NSCLC-FDG-PET, the NSCLC
collection assumed here; an ``R01-001``-style NSCLC Radiogenomics id works the same), or
``<subject>__<tag>`` for a further study of the same subject. The patient id is the part
before ``__``. Hidden folders are ignored.

**Splits.** HNSCC is the tuning set: ``train`` and ``val`` by :func:`hnscc_split_of`, a
per-patient hash (``sha256("xhbench-hnscc-split-v1:" + patient)`` as a fraction of 2^256:
below 0.8 train, else val), so all studies of a patient share a split, a patient's split
never depends on which other patients are present, and a phantom written with these ids has
exactly the split this rule gives. NSCLC is an external, domain-shifted test set: every case
is in ``test``. A phantom root uses the split in its manifest (the same rule for HNSCC).

**Phantoms** (:mod:`xhbench.datasets.petct_phantom`): ``hnscc`` writes head-and-neck subjects
(vertex to lung apices, 360 x 360 x 350 mm), ``nsclc`` thorax subjects (480 x 480 x 400 mm,
liver dome to lower neck), so a model tuned on one and tested on the other meets a real
domain shift in anatomy, field of view, attenuation path lengths and uptake.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import DataError
from .base import Case, Dataset, save_nifti
from .dicom import OUTPUT_FILES
from .petct_head_neck import make_head_neck
from .petct_phantom import case_rng
from .petct_torso import make_torso

__all__ = ["FILES", "HNSCC", "LESION_FILE", "NSCLC", "TciaPetCt", "hnscc_split_of", "patient_of"]

#: modality -> file name in a case folder (the converter's names).
FILES = dict(OUTPUT_FILES)
LESION_FILE = "seg.nii.gz"  # optional lesion mask {0, 1}
HNSCC_TRAIN_SHARE = 0.8
HNSCC_SALT = "xhbench-hnscc-split-v1:"


def patient_of(case_id: str) -> str:
    """The subject id: the case id up to ``__`` (a further study's tag)."""
    return case_id.split("__", 1)[0]


def hnscc_split_of(patient: str) -> str:
    """``"train"`` or ``"val"`` for an HNSCC patient, from the patient id alone."""
    digest = hashlib.sha256((HNSCC_SALT + patient).encode()).digest()
    share = int.from_bytes(digest, "big") / 2.0 ** 256
    return "train" if share < HNSCC_TRAIN_SHARE else "val"


class TciaPetCt(Dataset):
    """Shared layout of :class:`HNSCC` and :class:`NSCLC`: ``<case>/{nac_pet,ac_pet,ct}``."""

    modalities: ClassVar[tuple[str, ...]] = ("nac_pet", "ac_pet", "ct")
    label_values: ClassVar[tuple[int, ...] | None] = (0, 1)
    phantom_version: ClassVar[int] = 2  # 2: phantoms write seg.nii.gz
    splits: ClassVar[tuple[str, ...]] = ()

    def find_cases(self) -> dict[str, Case]:
        """Every non-hidden sub-folder is a case; missing files are left for :meth:`read`."""
        found: dict[str, Case] = {}
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            found[folder.name] = Case(
                case_id=folder.name,
                patient_id=patient_of(folder.name),
                images={m: _nifti(folder, name) for m, name in FILES.items()},
                label=_optional(_nifti(folder, LESION_FILE)),
            )
        if not found:
            raise DataError("no case folders here (expected <case>/{nac_pet,ac_pet,ct}.nii.gz "
                            "folders, as xhbench datasets convert-tcia writes them)",
                            path=self.root)
        return found

    def real_split_names(self) -> list[str]:
        return list(self.splits)

    def split_ids(self, split: str) -> list[str]:
        if self.phantom is not None:
            return super().split_ids(split)
        if split not in self.splits:
            raise DataError(f"no split {split!r}; known: {', '.join(self.splits)}",
                            path=self.root)
        return [c for c in sorted(self.find_cases()) if self.split_of(patient_of(c)) == split]

    @classmethod
    @abstractmethod
    def split_of(cls, patient: str) -> str:
        """The split a real patient belongs to."""

    @classmethod
    @abstractmethod
    def _phantom_ids(cls, split: str, n: int) -> list[str]:
        """The first ``n`` phantom case ids of a split."""

    @classmethod
    @abstractmethod
    def _make(cls, rng: np.random.Generator, size: int):
        """One phantom subject (a :class:`PetCtSubject`)."""

    @classmethod
    def write_phantom(cls, out: Path, *, seed: int, cases_per_split: Mapping[str, int],
                      size: int) -> dict[str, list[str]]:
        unknown = sorted(set(cases_per_split) - {"train", "val", "test"})
        if unknown:
            raise DataError(f"no split {unknown[0]!r} for {cls.name}; known: train, val, test")
        out = Path(out)
        splits: dict[str, list[str]] = {}
        for split in cls.splits:
            n = int(cases_per_split.get(split, 0))
            if n < 0:
                raise DataError(f"split {split!r}: {n} cases requested")
            splits[split] = cls._phantom_ids(split, n)
            for case_id in splits[split]:
                subject = cls._make(case_rng(seed, case_id), size)
                folder = out / case_id
                folder.mkdir(parents=True, exist_ok=True)
                save_nifti(folder / FILES["nac_pet"], subject.nac, subject.affine)
                save_nifti(folder / FILES["ac_pet"], subject.suv, subject.affine)
                save_nifti(folder / FILES["ct"], subject.ct.astype(np.int16), subject.affine)
                save_nifti(folder / LESION_FILE, subject.label.astype(np.uint8), subject.affine)
        return splits


class HNSCC(TciaPetCt):
    """TCIA HNSCC (MD Anderson) PET/CT: the tuning set, split train / val by patient."""

    name: ClassVar[str] = "hnscc"
    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    real_split_sizes: ClassVar[dict[str, float]] = {"train": HNSCC_TRAIN_SHARE,
                                                    "val": 1 - HNSCC_TRAIN_SHARE}

    @classmethod
    def split_of(cls, patient: str) -> str:
        return hnscc_split_of(patient)

    @classmethod
    def write_phantom(cls, out: Path, *, seed: int, cases_per_split: Mapping[str, int],
                      size: int) -> dict[str, list[str]]:
        """Head-and-neck phantoms under ids ``HNSCC-01-0001``, ``-0002``, ...

        ``train`` and ``val`` take the first ids that :func:`hnscc_split_of` puts in them (so
        the manifest's split is the real rule's). HNSCC has no test split: a ``test`` count
        is accepted and ignored (the cross-domain test set is :class:`NSCLC`).
        """
        return super().write_phantom(out, seed=seed, cases_per_split=cases_per_split,
                                     size=size)

    @classmethod
    def _phantom_ids(cls, split: str, n: int) -> list[str]:
        ids, k = [], 1
        while len(ids) < n:
            case_id = f"HNSCC-01-{k:04d}"
            if hnscc_split_of(case_id) == split:
                ids.append(case_id)
            k += 1
        return ids

    @classmethod
    def _make(cls, rng, size):
        diagnosis = "hnscc" if rng.random() < 0.85 else "negative"
        return make_head_neck(rng, size, diagnosis=diagnosis)


class NSCLC(TciaPetCt):
    """TCIA NSCLC PET/CT (ACRIN-NSCLC-FDG-PET-style ids): external test set only."""

    name: ClassVar[str] = "nsclc"
    splits: ClassVar[tuple[str, ...]] = ("test",)
    real_split_sizes: ClassVar[dict[str, float]] = {"test": 1.0}

    @classmethod
    def split_of(cls, patient: str) -> str:
        return "test"

    @classmethod
    def write_phantom(cls, out: Path, *, seed: int, cases_per_split: Mapping[str, int],
                      size: int) -> dict[str, list[str]]:
        """Thorax phantoms under ids ``ACRIN-NSCLC-FDG-PET-001``, ``-002``, ... in ``test``.

        Only the ``test`` count is used; ``train`` and ``val`` counts are accepted and ignored
        (NSCLC is never trained or tuned on).
        """
        return super().write_phantom(out, seed=seed, cases_per_split=cases_per_split,
                                     size=size)

    @classmethod
    def _phantom_ids(cls, split: str, n: int) -> list[str]:
        return [f"ACRIN-NSCLC-FDG-PET-{k:03d}" for k in range(1, n + 1)]

    @classmethod
    def _make(cls, rng, size):
        diagnosis = "lung_cancer" if rng.random() < 0.9 else "negative"
        return make_torso(rng, size, diagnosis=diagnosis, region="thorax")


def _nifti(folder: Path, name: str) -> Path:
    """``name`` (``.nii.gz``), or the uncompressed ``.nii`` when only that exists."""
    path = folder / name
    plain = folder / name[: -len(".gz")] if name.endswith(".gz") else path
    return plain if not path.exists() and plain.exists() else path


def _optional(path: Path) -> Path | None:
    return path if path.exists() else None
