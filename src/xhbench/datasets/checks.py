"""Data checks, in one place: what makes a file, a case, a split or a root unusable.

:meth:`Dataset.read <xhbench.datasets.base.Dataset.read>` raises the first problem of a
case it loads; :meth:`Dataset.check <xhbench.datasets.base.Dataset.check>` and
``xhbench datasets check`` (:func:`check_root`) list every problem, with the same
messages. A problem is ``(case, path, what)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError

__all__ = ["Found", "case_problems", "check_grid", "check_root", "image_problems",
           "label_problems", "load_nifti", "scan_case"]

#: One problem: the case (or ``None``), the file (or ``None``) and what is wrong.
Found = tuple[str | None, Path | None, str]


# -- one file ----------------------------------------------------------------------------
def load_nifti(nib, case_id: str, path: Path, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Data and affine of one NIfTI file; a missing or undecodable file is a DataError."""
    if not Path(path).is_file():
        raise DataError("file missing", case=case_id, path=path)
    try:
        image = nib.load(str(path))
        return np.asarray(image.dataobj, dtype=dtype), image.affine
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a corrupt file
        raise DataError(f"cannot read NIfTI ({type(exc).__name__}: {exc})",
                        case=case_id, path=path) from exc


def image_problems(array: np.ndarray) -> list[str]:
    """What is wrong with one image's voxels: non-finite values, nothing but zeros."""
    problems = []
    if not np.isfinite(array).all():
        problems.append("image holds NaN or infinite values")
        array = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
    if not array.any():
        problems.append("image is all zero")
    return problems


def label_problems(array: np.ndarray, label_values: Sequence[int] | None) -> list[str]:
    """What is wrong with one label map: NaN, non-integer values, values the data set
    does not define (``label_values``; ``None``: any integer)."""
    problems = []
    if not np.isfinite(array).all():
        problems.append("label holds NaN values")
        array = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
    if not np.array_equal(array, np.round(array)):
        problems.append("label holds non-integer values")
    elif label_values is not None:
        unexpected = sorted(set(np.unique(array).astype(int).tolist()) - set(label_values))
        if unexpected:
            problems.append(f"unexpected label values {unexpected}; "
                            f"allowed {list(label_values)}")
    return problems


def check_grid(case_id, path, shape, affine, ref_shape, ref_affine) -> None:
    """A DataError unless ``shape`` and ``affine`` match the case's reference grid."""
    if tuple(shape) != tuple(ref_shape):
        raise DataError(f"shape {tuple(shape)} differs from the case's {tuple(ref_shape)}",
                        case=case_id, path=path)
    if not np.allclose(affine, ref_affine, atol=1e-3):
        raise DataError("affine differs from the case's other images", case=case_id, path=path)


# -- one case ----------------------------------------------------------------------------
def case_problems(data, case) -> list[Found]:
    """Problems of one case: none when ``data.read`` accepts it, else every file's problem.

    :meth:`Dataset.read` is the judge (a data set may check more than the base class); a
    case it rejects is scanned file by file (:func:`scan_case`), and ``read``'s own message
    is reported only when the scan finds nothing (a check specific to that data set).
    """
    try:
        data.read(case)
        return []
    except DataError as exc:
        first = (exc.case or case.case_id, exc.path, exc.message)
    except Exception as exc:  # noqa: BLE001 - a data set's reader must not crash the check
        first = (case.case_id, None, f"read() failed: {type(exc).__name__}: {exc}")
    return scan_case(data, case) or [first]


def scan_case(data, case) -> list[Found]:
    """Each file of a case checked on its own, with the messages :meth:`Dataset.read` uses.

    Shapes and affines are compared with the grid most of the case's files share (not the
    first file's), so that one odd file is the one reported.
    """
    import nibabel as nib

    problems: list[Found] = []
    grids = []  # (path, shape, affine) of each decodable file
    files = [(m, case.images.get(m)) for m in data.modalities]
    if case.label is not None:
        files.append(("label", case.label))
    for kind, path in files:
        if path is None:
            problems.append((case.case_id, None, f"modality {kind} missing"))
            continue
        try:
            array, affine = load_nifti(nib, case.case_id, path, np.float32)
        except DataError as exc:
            problems.append((case.case_id, exc.path, exc.message))
            continue
        grids.append((path, array.shape, affine))
        found = (label_problems(array, data.label_values) if kind == "label"
                 else image_problems(array))
        problems.extend((case.case_id, path, what) for what in found)
    if grids:
        def agreeing(ref):
            return sum(shape == ref[1] and np.allclose(affine, ref[2], atol=1e-3)
                       for _, shape, affine in grids)

        reference = max(grids, key=agreeing)  # ties: the earliest file
        for path, shape, affine in grids:
            try:
                check_grid(case.case_id, path, shape, affine, reference[1], reference[2])
            except DataError as exc:
                problems.append((case.case_id, exc.path, exc.message))
    return problems


# -- a whole root ------------------------------------------------------------------------
def check_root(data, split: str | None = None) -> dict[str, Any]:
    """Every problem of a data root, as ``{"problems": [{"case", "file", "what"}], ...}``.

    Split problems first (unknown, empty, duplicate ids, ids not on disk, a case in two
    splits), then each case in turn (:func:`case_problems`); files relative to the root.
    """
    problems: list[dict] = []
    root = Path(data.root)

    def add(case, path, what):
        entry = {"case": case, "file": _relative(path, root), "what": what}
        if entry not in problems:
            problems.append(entry)

    try:
        found = data.find_cases()
    except DataError as exc:
        add(exc.case, exc.path, exc.message)
        found = {}
    names = [split] if split else data.split_names()
    split_ids: dict[str, list[str]] = {}
    for name in names:
        try:
            ids = data.split_ids(name)
        except DataError as exc:
            add(exc.case, exc.path, exc.message)
            continue
        split_ids[name] = ids
        where = _split_source(data, name)
        if not ids:
            add(None, where, f"split {name!r} lists no cases")
        seen = set()
        for case_id in ids:
            if case_id in seen:
                add(case_id, where, f"listed twice in split {name!r}")
            seen.add(case_id)
            if found and case_id not in found:
                add(case_id, where, f"listed in split {name!r} but not on disk under {root}")
    owner: dict[str, str] = {}
    for name, ids in split_ids.items():
        for case_id in dict.fromkeys(ids):
            if case_id in owner:
                add(case_id, None, f"in both split {owner[case_id]!r} and split {name!r}")
            else:
                owner[case_id] = name
    if split:
        to_check = [found[c] for c in dict.fromkeys(split_ids.get(split, [])) if c in found]
    else:
        to_check = [found[c] for c in sorted(found)]
    for case in to_check:
        for case_id, path, what in case_problems(data, case):
            add(case_id, path, what)
    return {"dataset": data.name, "root": str(root), "origin": data.origin,
            "cases_on_disk": len(found), "cases_checked": len(to_check),
            "splits": {name: len(ids) for name, ids in split_ids.items()},
            "problems": problems}


def _split_source(data, split: str) -> Path | str:
    """Where a split's ids come from: the phantom manifest, a shipped file, the root."""
    from .base import PHANTOM_MANIFEST

    if data.phantom is not None:
        return Path(data.root) / PHANTOM_MANIFEST
    folder = data.split_folder
    return f"xhbench/{folder}/{split}.txt" if folder else Path(data.root)


def _relative(path, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)
