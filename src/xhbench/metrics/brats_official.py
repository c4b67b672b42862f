"""The BraTS challenges' official evaluation (the ``brats-evaluation`` package).

Optional: ``pip install 'xhbench[brats]'``. Each case goes through the package's own
route: the label maps are written as NIfTI files with the case's affine,
``brats_evaluation.evaluate_single_exam`` scores them with the bundled panoptica
config, and ``brats_evaluation.parse_seg_results`` turns the result into the challenge's
columns (``lesionwise_dsc_mean_wt``, ``global_hd95_et``, ...), which are returned as read.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import UsageError

__all__ = ["INSTALL", "available", "brats_official_scores"]

INSTALL = "pip install 'xhbench[brats]'"
"""The command that installs the optional package."""

REGIONS = ("wt", "tc", "et")


def available() -> bool:
    """True when ``brats-evaluation`` (and its panoptica) can be imported."""
    try:
        import brats_evaluation  # noqa: F401
        import panoptica  # noqa: F401
    except ImportError:
        return False
    return True


def require() -> None:
    """Raise UsageError naming the install command unless the package is importable."""
    if not available():
        raise UsageError(f"the BraTS lesion-wise metrics need the brats-evaluation package: "
                         f"{INSTALL}")


@lru_cache(maxsize=4)
def _evaluator(config: str):
    from brats_evaluation import config_path
    from panoptica import Panoptica_Evaluator

    return Panoptica_Evaluator.load_from_config(str(config_path(config)))


def brats_official_scores(pred: np.ndarray, ref: np.ndarray, affine: np.ndarray, *,
                          case_id: str, config: str = "gli") -> dict[str, dict[str, float]]:
    """The official per-case scores of one label map in the BraTS 2023 labels
    (1 NETC, 2 SNFH, 3 ET; a BraTS 2018 map must have its 4 mapped to 3 first).

    Returns ``{region: {column: value}}`` for the regions ``wt``, ``tc``, ``et``, with the
    package's columns without the region suffix (``lesionwise_dsc_mean``,
    ``lesionwise_hd95_mean``, ``global_dsc``, ``global_hd95``, ``all_instance_tp``, ...).
    """
    import nibabel as nib
    from brats_evaluation import evaluate_single_exam, parse_seg_results

    require()
    with tempfile.TemporaryDirectory(prefix="xhbench-brats-") as tmp:
        folder = Path(tmp)
        paths = {}
        for name, array in (("pred", pred), ("ref", ref)):
            paths[name] = folder / f"{name}.nii.gz"
            nib.save(nib.Nifti1Image(np.asarray(array, dtype=np.uint8), affine), paths[name])
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints progress
            result = evaluate_single_exam(str(paths["pred"]), str(paths["ref"]), case_id,
                                          _evaluator(config))
            if "error" in result:
                raise ValueError(f"case {case_id}: brats-evaluation failed: {result['error']}")
            (folder / "results.json").write_text(json.dumps(
                {"metrics": [result], "missings": []}, default=_plain))
            parse_seg_results(str(folder / "results.json"), str(folder / "results.csv"))
        import pandas as pd

        row = pd.read_csv(folder / "results.csv").iloc[0]
    return {region: {column[:-len(region) - 1]: float(row[column]) for column in row.index
                     if column.endswith(f"_{region}")}
            for region in REGIONS}


def _plain(value):
    """numpy scalars and arrays as JSON values (panoptica returns some as numpy types)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
