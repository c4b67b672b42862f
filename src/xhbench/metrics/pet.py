"""Quantitative PET: the uptake numbers clinicians read, per lesion and per case, and the
relative errors of a synthesized PET against the real one.

Lesions are the connected components of a reference lesion mask (18-connectivity, as the
autoPET evaluation in :mod:`xhbench.metrics.autopet`). Each lesion is its own volume of
interest (VOI); every quantity of a PET volume is measured inside it, on that volume's own
SUV, so a synthesized and a real PET are measured in the same VOIs:

- **SUVmax**: the largest SUV in the VOI.
- **SUVpeak** (PERCIST 1.0, Wahl et al. 2009): the largest mean SUV of a 1 ml sphere
  (radius (3/(4 pi))^(1/3) cm = 6.20 mm) centred on a voxel of the VOI; the sphere holds
  the voxels whose centres lie within the radius (physical distance, the voxel spacing),
  inside the volume (at a border: the mean over the voxels inside), lesion or not.
- **MTV** (ml): the VOI's voxels with SUV >= 41% of the VOI's SUVmax (the EANM iso-contour
  rule); alternative ``mtv_suv25``: the VOI's voxels with SUV >= 2.5.
- **SUVmean**: the mean SUV over the MTV; **TLG** = MTV x SUVmean (ml, i.e. SUV x ml);
  ``tlg_suv25`` likewise over the SUV >= 2.5 volume.

Per case: SUVmax and SUVpeak are the largest over lesions, MTV and TLG the sums over
lesions (total MTV and total TLG), SUVmean = total TLG / total MTV (the mean over every
lesion's MTV voxels). :func:`uptake_errors` reports ``|synthesized - real| / |real|`` per
quantity (NaN where the real value is 0, e.g. no voxel >= 2.5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .autopet import connected_components, voxel_volume_ml

__all__ = ["PET_CONVENTIONS", "PET_HIGHER_IS_BETTER", "QUANTITIES", "case_uptake",
           "lesion_uptake", "peak_sphere", "uptake_errors"]

#: The per-lesion and per-case quantities, in order.
QUANTITIES = ("suvmax", "suvmean", "suvpeak", "mtv", "tlg", "mtv_suv25", "tlg_suv25")
PEAK_ML = 1.0
MTV_FRACTION = 0.41
SUV_THRESHOLD = 2.5


def peak_sphere(spacing: Sequence[float], volume_ml: float = PEAK_ML) -> np.ndarray:
    """The SUVpeak sphere as a boolean kernel: voxel offsets whose centres lie within the
    radius of a sphere of ``volume_ml`` (in mm: ``(3 * 1000 * volume_ml / (4 pi))^(1/3)``)."""
    voxel_volume_ml(spacing)  # checks the spacing
    radius = (3.0 * 1000.0 * volume_ml / (4.0 * math.pi)) ** (1.0 / 3.0)
    half = [int(math.floor(radius / float(s))) for s in spacing]
    grids = np.meshgrid(*[np.arange(-h, h + 1) * float(s) for h, s in zip(half, spacing)],
                        indexing="ij")
    return sum(g**2 for g in grids) <= radius**2


def _peak_in(suv: np.ndarray, labels: np.ndarray, index: int, box: tuple[slice, ...],
             kernel: np.ndarray) -> float:
    """The largest sphere mean centred on a voxel of lesion ``index`` (bounding ``box``);
    each mean over the sphere's voxels inside the volume."""
    wide = tuple(slice(max(b.start - k // 2, 0), b.stop + k // 2)
                 for b, k in zip(box, kernel.shape))
    weights = kernel.astype(np.float64)
    sums = ndimage.correlate(suv[wide], weights, mode="constant", cval=0.0)
    counts = ndimage.correlate(np.ones(sums.shape), weights, mode="constant", cval=0.0)
    return float((sums / counts)[labels[wide] == index].max())


def lesion_uptake(suv: np.ndarray, lesions: np.ndarray, spacing: Sequence[float], *,
                  connectivity: int = 18) -> list[dict[str, float]]:
    """The :data:`QUANTITIES` of each lesion (connected component of ``lesions``) of a PET
    volume in SUV, in component-label order; MTV and TLG in ml (see the module text)."""
    suv = np.asarray(suv, dtype=np.float64)
    if suv.shape != np.shape(lesions):
        raise ValueError(f"SUV shape {suv.shape} != lesion mask shape {np.shape(lesions)}")
    labels, _ = connected_components(lesions, connectivity)
    ml = voxel_volume_ml(spacing)
    kernel = peak_sphere(spacing)
    out = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        values = suv[box][labels[box] == index]
        suvmax = float(values.max())
        mtv = values[values >= MTV_FRACTION * suvmax]
        hot = values[values >= SUV_THRESHOLD]
        out.append({"suvmax": suvmax, "suvmean": float(mtv.mean()),
                    "suvpeak": _peak_in(suv, labels, index, box, kernel),
                    "mtv": mtv.size * ml, "tlg": float(mtv.sum()) * ml,
                    "mtv_suv25": hot.size * ml, "tlg_suv25": float(hot.sum()) * ml})
    return out


def case_uptake(per_lesion: Sequence[dict[str, float]]) -> dict[str, float]:
    """Case values from :func:`lesion_uptake`: SUVmax and SUVpeak the largest over lesions,
    MTV and TLG the sums, SUVmean = total TLG / total MTV. Empty input: an error."""
    if not per_lesion:
        raise ValueError("no lesion: uptake is defined for lesion-positive cases only")
    total = {key: sum(lesion[key] for lesion in per_lesion)
             for key in ("mtv", "tlg", "mtv_suv25", "tlg_suv25")}
    return {"suvmax": max(lesion["suvmax"] for lesion in per_lesion),
            "suvmean": total["tlg"] / total["mtv"],
            "suvpeak": max(lesion["suvpeak"] for lesion in per_lesion), **total}


def uptake_errors(pred_suv: np.ndarray, ref_suv: np.ndarray, lesions: np.ndarray,
                  spacing: Sequence[float], *, connectivity: int = 18) -> dict[str, float]:
    """``{"<quantity>_error": |pred - ref| / |ref|}`` of the case values of a synthesized
    (``pred_suv``) and a real (``ref_suv``) PET in SUV, in the reference's lesions; NaN
    where the real value is 0."""
    pred = case_uptake(lesion_uptake(pred_suv, lesions, spacing, connectivity=connectivity))
    ref = case_uptake(lesion_uptake(ref_suv, lesions, spacing, connectivity=connectivity))
    return {f"{key}_error": abs(pred[key] - ref[key]) / abs(ref[key]) if ref[key] else math.nan
            for key in QUANTITIES}


_COMMON = ("Relative error |synthesized - real| / |real| of the case value, both PET volumes "
           "in SUV and measured in the same VOIs: the connected components (18-connectivity) "
           "of the reference lesion mask; lesion-positive cases only; NaN where the real "
           "value is 0. ")

PET_CONVENTIONS: dict[str, str] = {
    "suvmax_error": _COMMON + "SUVmax: the largest SUV in a VOI; case: largest over VOIs.",
    "suvmean_error": _COMMON + "SUVmean: mean SUV over the MTV (voxels >= 41% of the VOI's "
                     "SUVmax); case: total TLG / total MTV.",
    "suvpeak_error": _COMMON + "SUVpeak (PERCIST): the largest mean SUV of a 1 ml sphere "
                     "(radius 6.20 mm; voxels whose centres lie within it by the voxel "
                     "spacing, inside the volume) centred on a voxel of the VOI; case: "
                     "largest over VOIs.",
    "mtv_error": _COMMON + "MTV (ml): voxels of the VOI with SUV >= 41% of its SUVmax; case: "
                 "the sum over VOIs (total MTV).",
    "tlg_error": _COMMON + "TLG = MTV x SUVmean (41% MTV); case: the sum over VOIs.",
    "mtv_suv25_error": _COMMON + "MTV alternative (ml): voxels of the VOI with SUV >= 2.5; "
                       "case: the sum over VOIs.",
    "tlg_suv25_error": _COMMON + "TLG over the SUV >= 2.5 volume; case: the sum over VOIs.",
}
"""Metric name -> its exact convention, for the run record."""

PET_HIGHER_IS_BETTER: dict[str, bool] = {name: False for name in PET_CONVENTIONS}
"""Every uptake error: lower is better."""
