"""The convention behind each metric, as recorded with every run."""

from __future__ import annotations

from .overlap import DICE_EMPTY_RULES
from .surface import SURFACE_EMPTY_RULES

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
    "hd95": (
        "95th-percentile Hausdorff distance in mm (MONAI compute_hausdorff_distance, "
        "percentile=95, with the case's voxel spacing): the larger of the two directed 95th "
        "percentiles of surface-to-surface distances, surfaces being the voxels removed by "
        "a 6-connected erosion. The BraTS package (panoptica) instead takes the 95th "
        "percentile of both directions' distances pooled, which is never larger; equal when "
        "the two directions have the same distribution (e.g. a shift); and its "
        "evaluate_single_exam measures in voxels whatever the NIfTI spacing (equal to mm on "
        "BraTS's 1 mm grids). Empty-mask rule "
        "must be recorded: "
        + " ".join(f"'{name}': {text}" for name, text in SURFACE_EMPTY_RULES.items())
    ),
    "asd": (
        "Symmetric average surface distance in mm (MONAI compute_average_surface_distance, "
        "symmetric=True, with the case's voxel spacing): the mean of both directions' "
        "surface distances pooled. Empty-mask rules as for hd95."
    ),
    "lesionwise_dice": (
        "BraTS lesion-wise Dice from the official brats-evaluation package (panoptica "
        "config 'gli', parse_seg_results 'lesionwise_dsc_mean'): connected components of "
        "each region matched one-to-one (maximum bipartite matching on Dice > 1e-6), the "
        "mean Dice of the matched lesion pairs; unmatched lesions count in the detection "
        "counts, not in this mean. 0 when no pair matches (panoptica's zero-TP rule for DSC), NaN "
        "when neither mask has a lesion."
    ),
    "lesionwise_hd95": (
        "BraTS lesion-wise HD95 (mm) from the same package ('lesionwise_hd95_mean'): mean "
        "HD95 of the matched lesion pairs, panoptica's pooled-percentile HD95, in voxels (the "
        "package's evaluate_single_exam ignores the NIfTI spacing; mm on BraTS's 1 mm grids); "
        "inf when no "
        "pair matches (the package's parser leaves the lesion-wise value as inf; only its "
        "global HD95 is capped at 373 mm), NaN when neither mask has a lesion."
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
    "hd95": False,
    "asd": False,
    "lesionwise_dice": True,
    "lesionwise_hd95": False,
    "tpr": True,
    "tnr": True,
    "fnr": False,
    "fpr": False,
}
"""Metric name -> whether a larger value is better (same keys as :data:`CONVENTIONS`)."""
