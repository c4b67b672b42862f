"""Damage to one file of a copied case, and the check that reading and checking name it.

A damage function takes a :class:`xhbench.datasets.base.Case`, breaks one of its files and
returns that file's path and words the resulting :class:`DataError` must contain.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from xhbench.errors import DataError


def rewrite(path: Path, array: np.ndarray, affine=None) -> None:
    """Save ``array`` over the NIfTI at ``path``, keeping its affine unless given one."""
    old = nib.load(path)
    nib.save(nib.Nifti1Image(array, old.affine if affine is None else affine), str(path))


def delete(case, modality: str) -> tuple[Path, str]:
    """Remove the case's image of ``modality``."""
    path = case.images[modality]
    path.unlink()
    return path, "file missing"


def truncate(case, modality: str, parts: int) -> tuple[Path, str]:
    """Keep only the first ``1 / parts`` of the bytes of the case's image of ``modality``."""
    path = case.images[modality]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // parts])
    return path, "cannot read NIfTI"


def shift_origin(path: Path, axis: int, mm: float) -> tuple[Path, str]:
    """Move the image at ``path`` by ``mm`` along world ``axis`` (its affine's offset)."""
    affine = nib.load(path).affine.copy()
    affine[axis, 3] += mm
    rewrite(path, np.asarray(nib.load(path).dataobj), affine)
    return path, "affine differs"


def assert_damage_named(ds, case, damage) -> None:
    """The case checks clean; after ``damage`` reading it fails and ``ds.check()`` reports
    exactly one problem, both naming the case and the damaged file."""
    assert not ds.check()
    path, what = damage(case)
    case = ds.find_cases()[case.case_id]  # a missing modality still lists the case
    with pytest.raises(DataError) as err:
        ds.read(case)
    message = str(err.value)
    assert case.case_id in message and path.name in message and what in message, message
    [problem] = ds.check()
    assert problem.case == case.case_id and Path(problem.path).name == path.name
