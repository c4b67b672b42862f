"""BraTS 2023 adult glioma (GLI) data: the challenge layout and its phantom.

Layout (1251 training cases with ``seg``, 219 validation cases without; 240 x 240 x 155 at
1 mm, skull-stripped, co-registered)::

    <root>/ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData/
        BraTS-GLI-XXXXX-YYY/BraTS-GLI-XXXXX-YYY-{t1n,t1c,t2w,t2f,seg}.nii.gz
    <root>/ASNR-MICCAI-BraTS2023-GLI-Challenge-ValidationData/
        BraTS-GLI-XXXXX-YYY/BraTS-GLI-XXXXX-YYY-{t1n,t1c,t2w,t2f}.nii.gz

``<root>`` may hold either folder or both, or be one of them (a folder whose name contains
"validation" is the validation set, any other the training set). ``XXXXX`` is the patient,
``YYY`` the time point. Modalities: t1n = T1, t1c = T1ce, t2w = T2, t2f = FLAIR. Labels: 0
background, 1 necrotic tumour core (NCR), 2 peritumoural edema (ED), 3 enhancing tumour (ET;
4 in BraTS 2018).

Splits: the challenge publishes no split file; a split is a folder. ``"train"`` is every case
of the training folder and ``"validation"`` every case of the validation folder, in sorted id
order (so the split hash recorded with results follows the ids on disk). The paper trains on
the training set and evaluates synthesis on the 219 validation cases; ``"test"`` and ``"val"``
are accepted as other names of ``"validation"`` (the evaluation set, without labels: it must
not serve for model selection).

The phantom (:mod:`xhbench.datasets.brain_phantom`, ET written as 3) uses the same layout under
fixed ids in the real pattern; ``docs/datasets.md`` describes it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import ClassVar, Mapping

import numpy as np

from ..errors import DataError
from .base import Case, Dataset, save_nifti
from .brain_phantom import as_int16, case_rng, make_brain, phantom_version

__all__ = ["BraTS23", "TRAINING_FOLDER", "VALIDATION_FOLDER", "phantom_case_ids"]

TRAINING_FOLDER = "ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData"
VALIDATION_FOLDER = "ASNR-MICCAI-BraTS2023-GLI-Challenge-ValidationData"
FOLDERS = {"train": TRAINING_FOLDER, "validation": VALIDATION_FOLDER}
SPLITS = tuple(FOLDERS)
#: Other split names and the folder they mean.
ALIASES = {"val": "validation", "test": "validation"}
CASE_PATTERN = re.compile(r"^BraTS-GLI-(\d{5})-(\d{3})$")

#: Phantom modality (:data:`brain_phantom.MODALITIES`) written as each BraTS 2023 file.
_FROM_PHANTOM = {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair"}
_LABELS = {"core": 1, "edema": 2, "enhancing": 3}


class BraTS23(Dataset):
    """BraTS 2023 GLI training and validation folders; a split is a folder."""

    name: ClassVar[str] = "brats23"
    modalities: ClassVar[tuple[str, ...]] = ("t1n", "t1c", "t2w", "t2f")
    #: The names the paper (and BraTS 2018) use for each modality.
    display_names: ClassVar[dict[str, str]] = {"t1n": "T1", "t1c": "T1ce", "t2w": "T2",
                                               "t2f": "FLAIR"}
    label_values: ClassVar[tuple[int, ...]] = (0, 1, 2, 3)
    split_folder: ClassVar[str | None] = None
    #: Case counts of the real folders (``xhbench datasets phantom --cases`` shares by them).
    real_split_sizes: ClassVar[dict[str, int]] = {"train": 1251, "validation": 219}
    phantom_version: ClassVar[int] = phantom_version(1)

    # -- layout ----------------------------------------------------------------------------
    @property
    def folders(self) -> dict[str, Path]:
        """Split -> folder, for the folders this root has."""
        found = {split: self.root / name for split, name in FOLDERS.items()
                 if (self.root / name).is_dir()}
        if found:
            return found
        if any(p.is_dir() and p.name.startswith("BraTS-GLI-") for p in self.root.iterdir()):
            split = "validation" if "validation" in self.root.name.lower() else "train"
            return {split: self.root}
        raise DataError(f"no {TRAINING_FOLDER}/ or {VALIDATION_FOLDER}/ folder and no "
                        "BraTS-GLI-* case folders here (expected the BraTS 2023 GLI layout)",
                        path=self.root)

    def find_cases(self) -> dict[str, Case]:
        """Every case folder of both folders; missing files are left for :meth:`read`.

        A training case always names its ``seg`` file; a validation case names it only when
        it exists (the challenge ships none).
        """
        found: dict[str, Case] = {}
        for split, folder in self.folders.items():
            for case_dir in sorted(folder.iterdir()):
                if not case_dir.is_dir() or case_dir.name.startswith("."):
                    continue
                case_id = case_dir.name
                if case_id in found:
                    raise DataError("case is in both the training and the validation folder",
                                    case=case_id, path=case_dir)
                seg = _nifti(case_dir, case_id, "seg")
                match = CASE_PATTERN.match(case_id)
                found[case_id] = Case(
                    case_id=case_id,
                    patient_id=f"BraTS-GLI-{match.group(1)}" if match else case_id,
                    images={m: _nifti(case_dir, case_id, m) for m in self.modalities},
                    label=seg if split == "train" or seg.exists() else None,
                    meta={"split": split},
                )
        return found

    # -- splits ----------------------------------------------------------------------------
    def real_split_names(self) -> list[str]:
        """The split folders found (aliases not included)."""
        return list(self.folders)

    def split_ids(self, split: str) -> list[str]:
        """Case ids of a split (``"test"`` and ``"val"`` mean ``"validation"``).

        A phantom's from its manifest; on real data every case of the split's folder, sorted.
        """
        canonical = ALIASES.get(split, split)
        if canonical not in SPLITS:
            raise DataError(f"no split {split!r}; known: {', '.join(SPLITS)} "
                            f"(and {', '.join(f'{a} = {c}' for a, c in ALIASES.items())})",
                            path=self.root)
        if self.phantom is not None:
            return super().split_ids(canonical)
        if canonical not in self.folders:
            raise DataError(f"split {split!r} needs the {FOLDERS[canonical]}/ folder",
                            path=self.root)
        return sorted(case.case_id for case in self.find_cases().values()
                      if case.meta["split"] == canonical)

    # -- phantom ---------------------------------------------------------------------------
    @classmethod
    def write_phantom(cls, out: Path, *, seed: int, cases_per_split: Mapping[str, int],
                      size: int) -> dict[str, list[str]]:
        """Write phantom cases in both folders; return ``{"train": [...], "validation": [...]}``.

        ``cases_per_split`` takes ``"train"`` and ``"validation"``, or the task names
        ``"val"`` / ``"test"``: all three name the validation folder, which gets the largest
        count asked for. Each folder holds the first n of :func:`phantom_case_ids`; every
        fifth case from the second on is low-grade. Validation cases get no ``seg`` file.
        """
        unknown = sorted(set(cases_per_split) - set(SPLITS) - set(ALIASES))
        if unknown:
            raise DataError(f"no split {unknown[0]!r} for brats23; known: "
                            f"{', '.join(SPLITS + tuple(ALIASES))}")
        counts = {"train": int(cases_per_split.get("train", 0)),
                  "validation": max(int(cases_per_split.get(k, 0))
                                    for k in ("validation", *ALIASES))}
        ids = phantom_case_ids()
        out = Path(out)
        splits: dict[str, list[str]] = {}
        for split, n in counts.items():
            if not 0 <= n <= len(ids[split]):
                raise DataError(f"split {split!r} has {len(ids[split])} cases; {n} requested")
            splits[split] = list(ids[split][:n])
            for index, case_id in enumerate(splits[split]):
                grade = "LGG" if index % 5 == 1 else "HGG"
                subject = make_brain(case_rng(seed, case_id), size, grade=grade, labels=_LABELS)
                folder = out / FOLDERS[split] / case_id
                folder.mkdir(parents=True, exist_ok=True)
                arrays = {m: as_int16(subject.images[_FROM_PHANTOM[m]], subject.brain)
                          for m in cls.modalities}
                if split == "train":
                    arrays["seg"] = subject.label.astype(np.uint8)
                for kind, array in arrays.items():
                    save_nifti(folder / f"{case_id}-{kind}.nii.gz", array, subject.affine)
        return splits


@functools.lru_cache(maxsize=1)
def phantom_case_ids() -> dict[str, tuple[str, ...]]:
    """Fixed phantom ids in the real pattern: 1251 training and 219 validation, each sorted.

    The real ids of both folders share one range of patient numbers (00000-01666, with gaps);
    here patient numbers 0-1669 are ordered by a hash (not by the phantom seed, so ids never
    change), the first 1251 go to training and the next 219 to validation, all time point 000.
    """
    order = sorted(range(1670), key=lambda n: hashlib.sha256(f"brats23:{n}".encode()).digest())
    sizes = BraTS23.real_split_sizes
    train = sorted(order[:sizes["train"]])
    validation = sorted(order[sizes["train"]:sizes["train"] + sizes["validation"]])
    return {"train": tuple(f"BraTS-GLI-{n:05d}-000" for n in train),
            "validation": tuple(f"BraTS-GLI-{n:05d}-000" for n in validation)}


def _nifti(folder: Path, case_id: str, kind: str) -> Path:
    """``<case>-<kind>.nii.gz``, or the uncompressed ``.nii`` when only that exists."""
    path = folder / f"{case_id}-{kind}.nii.gz"
    plain = folder / f"{case_id}-{kind}.nii"
    return plain if not path.exists() and plain.exists() else path
