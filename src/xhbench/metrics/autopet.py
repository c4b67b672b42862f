"""autoPET lesion metrics: the challenge's false-positive / false-negative volumes, the
paper's case-level conventions, and the case-level detection rates over a test set.

The official evaluation (lab-midas/autoPET ``val_script.py``, ``compute_metrics``) labels
connected components with 18-connectivity (voxels sharing a face or an edge; a shared corner
alone does not connect). The **false-positive volume** is the total volume of the predicted
components that overlap no reference voxel, the **false-negative volume** that of the
reference components that overlap no predicted voxel; a voxel's volume in ml is the product
of the spacings in mm / 1000. Dice is one global ``2|P∩T| / (|P| + |T|)`` per case,
undefined (NaN) for a lesion-free reference, so the challenge's Dice is the mean over
lesion-positive cases. The code here is written from that description, not copied.

The paper ("Personalize to generalize", Table 5) adds: Dice 0 for false negatives and true
negatives, "Dice-" as a mean over all cases, and case-level TPR / TNR / FNR / FPR where a
case is positive if its mask has any lesion voxel. :func:`lesion_case_metrics` gives every
per-case number both readings need; :func:`case_detection_rates` computes the rates over a
set of cases from the per-case flags.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from ._inputs import Array, as_batch, as_binary, tensor_pair, to_tensor
from .overlap import detection_rates, dice

__all__ = [
    "AUTOPET_CONVENTIONS",
    "AUTOPET_HIGHER_IS_BETTER",
    "CASE_METRICS",
    "case_detection_rates",
    "connected_components",
    "false_negative_volume",
    "false_positive_volume",
    "lesion_case_metrics",
    "voxel_volume_ml",
]

#: connectivity -> the scipy structuring element's rank (6: faces, 18: + edges, 26: + corners)
_RANK = {6: 1, 18: 2, 26: 3}

#: The per-case metrics of :func:`lesion_case_metrics`, in order.
CASE_METRICS = ("dice", "dice-", "fpv", "fnv", "pred_positive", "ref_positive",
                "tpr", "tnr", "fnr", "fpr")

_CPU = torch.device("cpu")

_RATE_NOTE = (
    "Per case an indicator, NaN where the rate is not defined for the case, so that its mean "
    "over cases is the case-level rate over the test set: "
)

AUTOPET_CONVENTIONS: dict[str, str] = {
    "dice": (
        "autoPET official Dice: one global 2|P∩T| / (|P| + |T|) per case, NaN when the "
        "reference is lesion-free, so its mean over cases is the mean over lesion-positive "
        "cases (a missed lesion-positive case scores 0)."
    ),
    "dice-": (
        "The paper's rule: Dice as above but 0 when the reference is lesion-free (true "
        "negatives and false positives alike); averaged over all cases."
    ),
    "fpv": (
        "autoPET false-positive volume in ml: total volume of the predicted connected "
        "components (18-connectivity) that overlap no reference voxel; voxel volume = "
        "product of spacings (mm) / 1000. Counted on every case, lesion-free ones included."
    ),
    "fnv": (
        "autoPET false-negative volume in ml: total volume of the reference connected "
        "components (18-connectivity) that overlap no predicted voxel; 0 for a lesion-free "
        "reference."
    ),
    "pred_positive": "1 if the prediction has any lesion voxel, else 0 (case-level flag).",
    "ref_positive": "1 if the reference has any lesion voxel, else 0 (case-level flag).",
    "tpr": _RATE_NOTE + "on reference-positive cases 1 if detected (pred_positive), else 0.",
    "fnr": _RATE_NOTE + "on reference-positive cases 1 if missed, else 0.",
    "tnr": _RATE_NOTE + "on lesion-free cases 1 if the prediction is empty, else 0.",
    "fpr": _RATE_NOTE + "on lesion-free cases 1 if anything is predicted, else 0.",
}
"""Metric name -> its exact convention, for the run record."""

AUTOPET_HIGHER_IS_BETTER: dict[str, bool] = {
    "dice": True, "dice-": True, "fpv": False, "fnv": False,
    "tpr": True, "tnr": True, "fnr": False, "fpr": False,
}
"""Metric name -> whether larger is better (the case flags have no direction: absent)."""


def voxel_volume_ml(spacing: Sequence[float]) -> float:
    """Volume of one voxel in ml: the product of the spacings in mm, divided by 1000."""
    values = [float(s) for s in spacing]
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing must be three finite numbers > 0 (mm), got {spacing!r}")
    return float(np.prod(values)) / 1000.0


def connected_components(mask: Array, connectivity: int = 18) -> tuple[np.ndarray, int]:
    """Label the connected components of a 3D binary mask.

    Args:
        mask: ``(X, Y, Z)`` bool or 0/1 mask (numpy or torch).
        connectivity: 6 (faces), 18 (faces and edges: the autoPET evaluation) or 26.

    Returns:
        ``(labels, count)``: int32 labels 1..count, 0 for background.
    """
    if connectivity not in _RANK:
        raise ValueError(f"connectivity must be one of 6, 18, 26; got {connectivity!r}")
    m = _mask3d("mask", mask)
    structure = ndimage.generate_binary_structure(3, _RANK[connectivity])
    labels, count = ndimage.label(m, structure=structure)
    return labels.astype(np.int32, copy=False), int(count)


def _unmatched_voxels(source: np.ndarray, other: np.ndarray, connectivity: int) -> int:
    """Voxels of the components of ``source`` that overlap no voxel of ``other``."""
    labels, count = connected_components(source, connectivity)
    if count == 0:
        return 0
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    touched = np.zeros(count + 1, dtype=bool)
    touched[np.unique(labels[other])] = True
    touched[0] = True  # background is never a component
    return int(sizes[~touched].sum())


def false_positive_volume(pred: Array, ref: Array, spacing: Sequence[float], *,
                          connectivity: int = 18) -> float:
    """autoPET false-positive volume (ml): predicted components overlapping no reference voxel.

    Args:
        pred: predicted lesion mask ``(X, Y, Z)``, bool or 0/1.
        ref: reference lesion mask of the same shape.
        spacing: voxel spacing in mm (three values).
        connectivity: component connectivity (18 as the challenge).
    """
    p, r = _pair(pred, ref)
    return _unmatched_voxels(p, r, connectivity) * voxel_volume_ml(spacing)


def false_negative_volume(pred: Array, ref: Array, spacing: Sequence[float], *,
                          connectivity: int = 18) -> float:
    """autoPET false-negative volume (ml): reference components overlapping no predicted voxel.

    Args: as :func:`false_positive_volume`.
    """
    p, r = _pair(pred, ref)
    return _unmatched_voxels(r, p, connectivity) * voxel_volume_ml(spacing)


def lesion_case_metrics(pred: Array, ref: Array, spacing: Sequence[float], *,
                        connectivity: int = 18) -> dict[str, float]:
    """Every per-case number of the autoPET task (keys :data:`CASE_METRICS`).

    ``dice`` is the official Dice (NaN for a lesion-free reference), ``dice-`` the paper's
    (0 there); ``fpv``/``fnv`` in ml; ``pred_positive``/``ref_positive`` the case flags;
    ``tpr``/``fnr`` are detection indicators on reference-positive cases and ``tnr``/``fpr``
    on lesion-free ones, NaN on the others (see :data:`AUTOPET_CONVENTIONS`).
    """
    p, r = _pair(pred, ref)
    pred_pos, ref_pos = bool(p.any()), bool(r.any())
    nan = math.nan
    return {
        "dice": dice(p, r, empty="nan"),
        "dice-": dice(p, r, empty="zero"),
        "fpv": _unmatched_voxels(p, r, connectivity) * voxel_volume_ml(spacing),
        "fnv": _unmatched_voxels(r, p, connectivity) * voxel_volume_ml(spacing),
        "pred_positive": float(pred_pos),
        "ref_positive": float(ref_pos),
        "tpr": float(pred_pos) if ref_pos else nan,
        "fnr": float(not pred_pos) if ref_pos else nan,
        "tnr": nan if ref_pos else float(not pred_pos),
        "fpr": nan if ref_pos else float(pred_pos),
    }


def case_detection_rates(rows: Iterable[Mapping[str, Any]], *,
                         key: Sequence[str] = ("case", "setting")) -> dict[str, float]:
    """TPR / TNR / FNR / FPR over cases from per-case result rows.

    Args:
        rows: rows ``{case, setting, metric, value, ...}`` (e.g. a run's ``cases.csv`` as
            records); those with metric ``pred_positive`` and ``ref_positive`` are used.
        key: the columns that identify one evaluated case (by default case and setting).

    Returns:
        ``{"TPR", "TNR", "FNR", "FPR"}`` as fractions, see
        :func:`xhbench.metrics.detection_rates` (NaN where a denominator is 0).

    Raises:
        ValueError: a case with only one of the two flags, or with a flag twice.
    """
    flags: dict[tuple, dict[str, float]] = {}
    for row in rows:
        metric = row["metric"]
        if metric not in ("pred_positive", "ref_positive"):
            continue
        entry = flags.setdefault(tuple(row[k] for k in key), {})
        if metric in entry:
            raise ValueError(f"case {tuple(row[k] for k in key)} has {metric} twice")
        entry[metric] = float(row["value"])
    incomplete = [case for case, entry in flags.items() if len(entry) != 2]
    if incomplete:
        raise ValueError(f"case {incomplete[0]} lacks pred_positive or ref_positive")
    ordered = sorted(flags, key=str)
    return detection_rates([flags[c]["pred_positive"] for c in ordered],
                           [flags[c]["ref_positive"] for c in ordered])


def _mask3d(name: str, value: Any) -> np.ndarray:
    t = as_binary(name, to_tensor(name, value, _CPU))
    t, batched = as_batch(name, t)
    if batched:
        raise ValueError(f"{name} must be one 3D volume (X, Y, Z); got shape {tuple(t.shape)}")
    return t[0].cpu().numpy()


def _pair(pred: Any, ref: Any) -> tuple[np.ndarray, np.ndarray]:
    p, r = tensor_pair(pred, ref, _CPU)
    return _mask3d("pred", p), _mask3d("ref", r)
