"""BraTS 2018 training data: the ``MICCAI_BraTS_2018_Data_Training`` layout and its phantom.

Layout (285 cases, 210 HGG + 75 LGG, 240x240x155 at 1 mm)::

    <root>/HGG/Brats18_<inst>_<id>_<n>/Brats18_<inst>_<id>_<n>_{flair,t1,t1ce,t2,seg}.nii.gz
    <root>/LGG/...

``<root>`` may be the folder holding ``HGG``/``LGG`` or its parent. Labels: 0 background,
1 necrotic / non-enhancing core, 2 edema, 4 enhancing tumour. Splits: M2FTrans split 1,
shipped in ``xhbench/data/splits/brats18`` (see its README for provenance).

The phantom (:mod:`xhbench.datasets.brain_phantom`) is written in the same layout under real
case ids and grade folders; ``docs/datasets.md`` describes what it simulates.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import ClassVar, Mapping

import numpy as np

from ..errors import DataError
from .base import Case, Dataset, save_nifti
from .brain_phantom import as_int16, case_rng, make_brain, phantom_version

__all__ = ["BraTS18", "phantom_case_order"]

TRAINING_FOLDER = "MICCAI_BraTS_2018_Data_Training"
GRADES = ("HGG", "LGG")
SPLITS = ("train", "val", "test")


class BraTS18(Dataset):
    """BraTS 2018 training set (HGG/LGG folders), M2FTrans split 1."""

    name: ClassVar[str] = "brats18"
    modalities: ClassVar[tuple[str, ...]] = ("flair", "t1", "t1ce", "t2")
    label_values: ClassVar[tuple[int, ...]] = (0, 1, 2, 4)
    split_folder: ClassVar[str] = "data/splits/brats18"
    #: Own counter 2 (bumped with the move to MNI anatomy); thousands: the brain generator.
    phantom_version: ClassVar[int] = phantom_version(2)

    @property
    def data_dir(self) -> Path:
        """The folder holding ``HGG``/``LGG``: the root itself or its training subfolder."""
        for candidate in (self.root, self.root / TRAINING_FOLDER):
            if any((candidate / grade).is_dir() for grade in GRADES):
                return candidate
        raise DataError(f"no HGG/ or LGG/ folder here or in {TRAINING_FOLDER}/ "
                        "(expected the BraTS 2018 training layout)", path=self.root)

    def find_cases(self) -> dict[str, Case]:
        """Every case folder under ``HGG``/``LGG``; missing files are left for :meth:`read`."""
        found: dict[str, Case] = {}
        data_dir = self.data_dir
        for grade in GRADES:
            grade_dir = data_dir / grade
            if not grade_dir.is_dir():
                continue
            for folder in sorted(grade_dir.iterdir()):
                if not folder.is_dir() or folder.name.startswith("."):
                    continue
                case_id = folder.name
                if case_id in found:
                    raise DataError("case is in both HGG/ and LGG/", case=case_id, path=folder)
                found[case_id] = Case(
                    case_id=case_id,
                    patient_id=case_id,
                    images={m: _nifti(folder, case_id, m) for m in self.modalities},
                    label=_nifti(folder, case_id, "seg"),
                    meta={"grade": grade},
                )
        return found

    @classmethod
    def write_phantom(cls, out: Path, *, seed: int, cases_per_split: Mapping[str, int],
                      size: int) -> dict[str, list[str]]:
        """Write phantom cases under real ids in the real layout; return the splits.

        Each split takes a prefix of :func:`phantom_case_order` of its shipped split file (HGG
        and LGG interleaved in the split's proportion), so a small phantom holds both grades
        and adding cases keeps the existing ones. Each case is seeded from ``seed`` and its id.
        """
        unknown = sorted(set(cases_per_split) - set(SPLITS))
        if unknown:
            raise DataError(f"no shipped split {unknown[0]!r} for brats18; known: "
                            f"{', '.join(SPLITS)}")
        grades = _grades()
        out = Path(out)
        splits: dict[str, list[str]] = {}
        for split in SPLITS:
            n = int(cases_per_split.get(split, 0))
            order = phantom_case_order(_split_file(split), grades)
            if not 0 <= n <= len(order):
                raise DataError(f"split {split!r} has {len(order)} cases; {n} requested")
            splits[split] = order[:n]
            for case_id in splits[split]:
                subject = make_brain(case_rng(seed, case_id), size, grade=grades[case_id])
                folder = out / grades[case_id] / case_id
                folder.mkdir(parents=True, exist_ok=True)
                arrays = {m: as_int16(subject.images[m], subject.brain) for m in cls.modalities}
                arrays["seg"] = subject.label.astype(np.uint8)
                for kind, array in arrays.items():
                    save_nifti(folder / f"{case_id}_{kind}.nii.gz", array, subject.affine)
        return splits


def phantom_case_order(case_ids: list[str], grades: Mapping[str, str]) -> list[str]:
    """Interleave a split's HGG and LGG ids in the split's proportion (each in file order).

    The shipped split files list all HGG cases first, so their first few ids are all HGG;
    this order keeps every prefix close to the split's HGG:LGG ratio (train: 146:53).
    """
    by_grade = {g: [c for c in case_ids if grades[c] == g] for g in GRADES}
    share = {g: len(ids) / max(len(case_ids), 1) for g, ids in by_grade.items()}
    taken = dict.fromkeys(GRADES, 0)
    order = []
    for step in range(1, len(case_ids) + 1):
        # Largest deficit against the target share; ties go to HGG (listed first).
        grade = max((g for g in GRADES if taken[g] < len(by_grade[g])),
                    key=lambda g: share[g] * step - taken[g])
        order.append(by_grade[grade][taken[grade]])
        taken[grade] += 1
    return order


def _nifti(folder: Path, case_id: str, kind: str) -> Path:
    """``<case>_<kind>.nii.gz``, or the uncompressed ``.nii`` when only that exists."""
    path = folder / f"{case_id}_{kind}.nii.gz"
    plain = folder / f"{case_id}_{kind}.nii"
    return plain if not path.exists() and plain.exists() else path


def _resource(name: str):
    return resources.files("xhbench").joinpath(BraTS18.split_folder, name)


def _split_file(split: str) -> list[str]:
    resource = _resource(f"{split}.txt")
    if not resource.is_file():
        raise DataError(f"no split file {split}.txt in xhbench/{BraTS18.split_folder}")
    return [line.strip() for line in resource.read_text().splitlines() if line.strip()]


def _grades() -> dict[str, str]:
    """Case id -> ``"HGG"``/``"LGG"`` from ``alt/grade_dirs.txt`` (the raw folder of each case)."""
    grades = {}
    for line in _resource("alt/grade_dirs.txt").read_text().splitlines():
        if line.strip():
            grade, case_id = line.strip().split("/")
            grades[case_id] = grade
    return grades
