"""The convention behind each metric, as recorded with every run."""

from __future__ import annotations

from .overlap import DICE_EMPTY_RULES

__all__ = ["CONVENTIONS", "HIGHER_IS_BETTER"]

_DETECTION = (
    "Case-level detection (the paper's autoPET convention): a case is positive if its mask "
    "has any lesion voxel. TPR = TP/(TP+FN) and FNR = FN/(TP+FN) over reference-positive "
    "cases; TNR = TN/(TN+FP) and FPR = FP/(TN+FP) over reference-negative cases; NaN when "
    "the denominator is 0 (no reference-positive or no reference-negative case)."
)

CONVENTIONS: dict[str, str] = {
    "psnr": (
        "PSNR = 10*log10(data_range^2 / MSE) in dB, float64. MSE is the mean squared "
        "difference over all voxels, or over the mask voxels when a mask is given. "
        "data_range defaults to max(ref) - min(ref) over the same voxels (per case), so it "
        "depends on the reference only; an explicit data_range (e.g. 1 for [0, 1] images) "
        "overrides it. Identical volumes give +inf."
    ),
    "nmse": (
        "NMSE = sum((pred - ref)^2) / sum(ref^2) over all voxels, or over the mask voxels "
        "when a mask is given, float64; equals scikit-image "
        "normalized_root_mse(ref, pred, normalization='euclidean')^2. Not shift invariant: "
        "it is computed on the intensities as given (after the task's normalisation). An "
        "all-zero reference is an error."
    ),
    "ssim": (
        "Mean 3D SSIM, float32: Gaussian window sigma 1.5 truncated to 11 voxels (weights "
        "normalised to sum 1), population (biased) local variances and covariance, "
        "C1 = (0.01*data_range)^2, C2 = (0.03*data_range)^2; the SSIM map is averaged over "
        "the valid interior, the voxels at least 5 (win_size//2) from every border, where the "
        "window lies inside the volume. Equals scikit-image structural_similarity(ref, pred, "
        "data_range=..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False) in 3D "
        "(scikit-image's defaults, a 7-voxel uniform window with sample covariance, give "
        "about 0.03 more). data_range has no default and must be recorded. With a mask, the "
        "map is averaged over the mask voxels inside the valid interior (to exclude "
        "background); the windows still see all voxels."
    ),
    "dice": (
        "Dice = 2|P∩T| / (|P| + |T|) of binary masks, one global value per case (all voxels "
        "pooled), then averaged over cases. The empty-reference rule must be recorded: "
        + " ".join(f"'{name}': {text}" for name, text in DICE_EMPTY_RULES.items())
        + " A non-empty reference with an empty prediction scores (about) 0 under every rule."
    ),
    "et_postpro": (
        "Dice of the enhancing tumour after BraTS post-processing (RFNet, M2FTrans): a "
        "predicted ET mask with fewer than 500 voxels is set to empty before Dice, which the "
        "family computes with the 'one' rule (so an emptied prediction of a case without ET "
        "scores 1). Reported as a separate ET_postpro value next to ET, never in place of it."
    ),
    "tpr": _DETECTION,
    "tnr": _DETECTION,
    "fnr": _DETECTION,
    "fpr": _DETECTION,
}
"""Metric name -> one paragraph stating its exact convention."""

HIGHER_IS_BETTER: dict[str, bool] = {
    "psnr": True,
    "nmse": False,
    "ssim": True,
    "dice": True,
    "et_postpro": True,
    "tpr": True,
    "tnr": True,
    "fnr": False,
    "fpr": False,
}
"""Metric name -> whether a larger value is better (same keys as :data:`CONVENTIONS`)."""
