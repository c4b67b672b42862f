"""The data-set contract: one on-disk layout, its phantom, its fixed splits.

A :class:`Dataset` reads a real folder (``--data-root``) or a phantom that
xhbench wrote in the very same layout; the loading code is the same for both.
A phantom folder carries :data:`PHANTOM_MANIFEST`, which records how it was
made and which case ids form each split.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import ClassVar, Mapping

import numpy as np

from ..errors import DataError
from ..results import make_unique_dir
from .checks import case_problems, check_grid, image_problems, label_problems, load_nifti

__all__ = ["DEFAULT_SPLITS", "PHANTOM_MANIFEST", "Case", "Volume", "Problem", "Dataset",
           "default_cache_dir", "save_nifti", "shipped_split_sizes", "split_sha256",
           "write_phantom_root"]

PHANTOM_MANIFEST = "xhbench_phantom.json"
DEFAULT_SPLITS = ("train", "val", "test")


def default_cache_dir() -> Path:
    """``$XHBENCH_CACHE`` or ``~/.cache/xhbench``: phantoms, pre-trained states, scan caches."""
    return Path(os.environ.get("XHBENCH_CACHE", Path.home() / ".cache" / "xhbench"))


@dataclass(frozen=True)
class Case:
    """One subject (or study) on disk."""

    case_id: str
    patient_id: str
    images: Mapping[str, Path]  # modality name -> file
    label: Path | None = None
    meta: Mapping[str, object] = field(default_factory=dict)


@dataclass
class Volume:
    """A case loaded into memory: channels in the data set's modality order."""

    case_id: str
    image: np.ndarray  # float32, (C, X, Y, Z)
    label: np.ndarray | None  # integer label values as on disk, (X, Y, Z)
    affine: np.ndarray
    modalities: tuple[str, ...]

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(float(s) for s in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))


@dataclass(frozen=True)
class Problem:
    """One integrity problem found by :meth:`Dataset.check`."""

    case: str | None
    path: Path | None
    what: str

    def __str__(self) -> str:
        return str(DataError(self.what, case=self.case, path=self.path))


def shipped_split_sizes(folder: str) -> dict[str, float]:
    """Case count of each ``<split>.txt`` in the package folder ``folder`` (empty if none),
    ``train``, ``val``, ``test`` first, then any other split alphabetically."""
    root = resources.files("xhbench").joinpath(folder)
    if not root.is_dir():
        return {}
    sizes = {}
    for entry in root.iterdir():
        if entry.is_file() and entry.name.endswith(".txt"):
            lines = [line for line in entry.read_text().splitlines() if line.strip()]
            sizes[entry.name[:-4]] = float(len(lines))
    order = [s for s in DEFAULT_SPLITS if s in sizes] + sorted(set(sizes) - set(DEFAULT_SPLITS))
    return {s: sizes[s] for s in order}


def split_sha256(case_ids: list[str]) -> str:
    """Hash of a split as its newline-joined case ids (order kept)."""
    return hashlib.sha256("\n".join(case_ids).encode()).hexdigest()


class Dataset(ABC):
    """Base class: subclasses define the layout (``find_cases``) and the phantom.

    Class attributes:
        name: registry name.
        modalities: modality names in file order (channel order of :class:`Volume`).
        label_values: the values a label map may hold, or ``None`` without labels.
        split_folder: folder inside the ``xhbench`` package holding ``<split>.txt``
            case-id lists (one id per line), e.g. ``"data/splits/brats18"``.
        real_split_sizes: the real data set's split sizes (cases or shares), which a
            phantom's case count is shared by; ``None``: the shipped split files' sizes.
        phantom_version: bump when the phantom generator changes its output.
    """

    name: ClassVar[str]
    modalities: ClassVar[tuple[str, ...]]
    label_values: ClassVar[tuple[int, ...] | None] = None
    split_folder: ClassVar[str | None] = None
    real_split_sizes: ClassVar[Mapping[str, float] | None] = None
    phantom_version: ClassVar[int] = 1

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError("data root is not a folder", path=self.root)
        manifest = self.root / PHANTOM_MANIFEST
        self.phantom = json.loads(manifest.read_text()) if manifest.exists() else None

    @property
    def origin(self) -> str:
        """``"phantom"`` or ``"real"``: recorded with every result."""
        return "phantom" if self.phantom is not None else "real"

    def fingerprint(self, cases: list[Case]) -> dict[str, object]:
        """What ``cases`` hold, for cache keys: a phantom's manifest (generator version,
        seed, size, splits), else the root and a sha256 over each image file's path,
        size and modification time (files inside a DICOM folder included)."""
        if self.phantom is not None:
            return {"phantom": self.phantom}
        digest = hashlib.sha256()
        for case in cases:
            for modality, path in sorted(case.images.items()):
                files = sorted(p for p in Path(path).rglob("*") if p.is_file()) \
                    if Path(path).is_dir() else [Path(path)]
                for file in files:
                    stat = file.stat()
                    digest.update(f"{case.case_id}\t{modality}\t{file}\t{stat.st_size}\t"
                                  f"{stat.st_mtime_ns}\n".encode())
        return {"root": str(self.root.resolve()), "files": digest.hexdigest()}

    # -- layout --------------------------------------------------------------
    @abstractmethod
    def find_cases(self) -> dict[str, Case]:
        """Scan the root and return every case found, by case id."""

    @classmethod
    def write_phantom(cls, out: Path, *, seed: int, cases_per_split: Mapping[str, int],
                      size: int) -> dict[str, list[str]]:
        """Write a phantom in the real layout under ``out``; return its splits."""
        raise DataError(f"data set {cls.name} has no phantom: pass --data-root")

    # -- splits --------------------------------------------------------------
    def split_names(self) -> list[str]:
        """The splits this root defines: the phantom's, else :meth:`real_split_names`."""
        if self.phantom is not None:
            return list(self.phantom["splits"])
        return self.real_split_names()

    def real_split_names(self) -> list[str]:
        """The splits of the real layout: by default those of the shipped split files."""
        return list(shipped_split_sizes(self.split_folder)) if self.split_folder else []

    def split_ids(self, split: str) -> list[str]:
        """Case ids of a split: the phantom's own, or the shipped split file."""
        if self.phantom is not None:
            splits = self.phantom["splits"]
        else:
            splits = {split: self._shipped_split(split)}
        if split not in splits:
            raise DataError(f"no split {split!r}; known: {', '.join(sorted(splits))}",
                            path=self.root)
        return list(splits[split])

    def _shipped_split(self, split: str) -> list[str]:
        if self.split_folder is None:
            raise DataError(f"data set {self.name} ships no split files", path=self.root)
        resource = resources.files("xhbench").joinpath(self.split_folder, f"{split}.txt")
        if not resource.is_file():
            raise DataError(f"no split file {split}.txt in xhbench/{self.split_folder}")
        return [line.strip() for line in resource.read_text().splitlines() if line.strip()]

    def cases(self, split: str) -> list[Case]:
        """The cases of a split, in split-file order; a listed case missing on disk is an error."""
        found = self.find_cases()
        ids = self.split_ids(split)
        if not ids:
            raise DataError(f"split {split!r} lists no cases", path=self.root)
        missing = [case_id for case_id in ids if case_id not in found]
        if missing:
            raise DataError(
                f"{len(missing)} case(s) of split {split!r} are not on disk "
                f"(first: {', '.join(missing[:5])})", path=self.root)
        return [found[case_id] for case_id in ids]

    # -- loading and checks --------------------------------------------------
    def read(self, case: Case) -> Volume:
        """Load one case, checking shapes, affines, finiteness and label values
        (:mod:`xhbench.datasets.checks`); the first problem is a DataError."""
        import nibabel as nib

        arrays, affine, shape = [], None, None
        files = [case.images[m] if m in case.images else None for m in self.modalities]
        for modality, path in zip(self.modalities, files):
            if path is None:
                raise DataError(f"modality {modality} missing", case=case.case_id)
            data, image_affine = load_nifti(nib, case.case_id, path, np.float32)
            if shape is None:
                shape, affine = data.shape, image_affine
            check_grid(case.case_id, path, data.shape, image_affine, shape, affine)
            for problem in image_problems(data):
                raise DataError(problem, case=case.case_id, path=path)
            arrays.append(data)
        label = None
        if case.label is not None:
            label, label_affine = load_nifti(nib, case.case_id, case.label, np.float32)
            check_grid(case.case_id, case.label, label.shape, label_affine, shape, affine)
            for problem in label_problems(label, self.label_values):
                raise DataError(problem, case=case.case_id, path=case.label)
            label = label.astype(np.int16)
        return Volume(case.case_id, np.stack(arrays), label, np.asarray(affine), self.modalities)

    def check(self, split: str | None = None) -> list[Problem]:
        """Every problem of the cases of one split, or of every case on disk
        (:func:`xhbench.datasets.checks.case_problems`)."""
        try:
            cases = self.cases(split) if split else list(self.find_cases().values())
        except DataError as exc:
            return [Problem(exc.case, exc.path, exc.message)]
        return [Problem(*found) for case in cases for found in case_problems(self, case)]

    # -- phantom cache -------------------------------------------------------
    @classmethod
    def open(cls, data_root: str | Path | None, *, cache_dir: Path, seed: int,
             cases_per_split: Mapping[str, int], size: int) -> "Dataset":
        """Open ``data_root``, or the cached phantom (written once) when it is ``None``."""
        if data_root is not None:
            return cls(data_root)
        key = json.dumps({"v": cls.phantom_version, "seed": seed, "size": size,
                          "cases": dict(sorted(cases_per_split.items()))}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        root = Path(cache_dir) / "phantoms" / cls.name / digest
        if not (root / PHANTOM_MANIFEST).exists():
            write_phantom_root(cls, root, seed=seed, cases_per_split=cases_per_split, size=size)
        return cls(root)


def write_phantom_root(cls: type[Dataset], root: Path, *, seed: int,
                       cases_per_split: Mapping[str, int], size: int) -> None:
    """Write ``cls``'s phantom with its manifest into ``root`` (all or nothing).

    Concurrent writers of the same root wait for each other; the root appears
    only when complete, so a crash never leaves a half-written phantom.
    """
    from filelock import FileLock

    root = Path(root).absolute()
    root.parent.mkdir(parents=True, exist_ok=True)
    params = {"seed": seed, "cases_per_split": dict(cases_per_split), "size": size}
    lock = FileLock(str(root) + ".lock")
    with lock:
        if not (root / PHANTOM_MANIFEST).exists():
            _write_staged(cls, root, params)
    # Every writer removes the lock file once the root is complete; a writer that
    # re-creates it while waiting finds the manifest and removes it in turn.
    Path(lock.lock_file).unlink(missing_ok=True)


def _write_staged(cls: type[Dataset], root: Path, params: dict) -> None:
    staging = make_unique_dir(root.parent, root.name + ".")  # follows the umask
    try:
        splits = cls.write_phantom(staging, **params)
        manifest = {"dataset": cls.name, "phantom_version": cls.phantom_version,
                    **params, "splits": splits}
        (staging / PHANTOM_MANIFEST).write_text(json.dumps(manifest, indent=2))
        if root.exists():
            shutil.rmtree(root)
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    """Write gzip NIfTI with qform/sform code 1 (scanner) and mm units; byte-deterministic."""
    import nibabel as nib

    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")
    nib.save(image, str(path))
