"""BraTS 2018 missing-modality segmentation (the RFNet / mmFormer / M2FTrans protocol).

Paper: "Personalize to generalize", Table 3 (summary) and Table 10 (per setting).
Split: M2FTrans split 1 (199 train / 29 val / 57 test), shipped with xhbench.
Channels: [FLAIR, T1ce, T1, T2]. Labels: 0 background, 1 necrosis / non-enhancing
core, 2 edema, 4 enhancing tumour; regions WT = {1, 2, 4}, TC = {1, 4}, ET = {4}.
Each test case is evaluated under all 15 non-empty availability masks, in the
order of the RFNet code. Dice per case uses that literature's convention (empty
reference and empty prediction score 1); ``ET_postpro`` is ET after zeroing a
predicted enhancing tumour smaller than 500 mm^3 (500 voxels at 1 mm), reported
as its own column. Preprocessing: crop to the non-zero bounding box of the four
modalities, z-score each modality over the brain (voxels where any modality is
non-zero); background stays 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .. import metrics
from ..datasets.base import Case, Volume
from ..errors import DataError
from ..options import option
from .base import EvalItem, Setting, Task, TaskConfig, TaskSpec
from .external_format import SegmentationFormat

__all__ = ["BraTS18Format", "BraTS18Missing", "MASKS", "MODALITIES"]

MODALITIES = ("flair", "t1ce", "t1", "t2")
LABELS = (0, 1, 2, 4)  # class index -> label value
REGIONS = ("WT", "TC", "ET")

# (id, name, available as [flair, t1ce, t1, t2]) in the order of RFNet's train.py.
MASKS = tuple(
    Setting(str(i), name, tuple(flag == "T" for flag in code))
    for i, (name, code) in enumerate(
        [("t2", "FFFT"), ("t1ce", "FTFF"), ("t1", "FFTF"), ("flair", "TFFF"),
         ("t1ce+t2", "FTFT"), ("t1ce+t1", "FTTF"), ("flair+t1", "TFTF"), ("t1+t2", "FFTT"),
         ("flair+t2", "TFFT"), ("flair+t1ce", "TTFF"), ("flair+t1ce+t1", "TTTF"),
         ("flair+t1+t2", "TFTT"), ("flair+t1ce+t2", "TTFT"), ("t1ce+t1+t2", "FTTT"),
         ("all", "TTTT")],
        start=1,
    )
)


@dataclass
class BraTS18MissingConfig(TaskConfig):
    phantom_val: int = 2
    phantom_test: int = 8
    et_postpro_mm3: float = option(500.0, ge=0)
    # the paper's Dice, plus optional boundary / official BraTS lesion-wise metrics
    metrics: Literal["paper", "paper+hd95", "paper+lesionwise", "paper+hd95+lesionwise"] = "paper"
    # "missing": the 15 availability masks (the paper); "full": all four modalities only,
    # the BraTS challenge's condition (external predictions then in the challenge layout)
    settings: Literal["missing", "full"] = "missing"


def preprocess(volume: Volume) -> tuple[np.ndarray, np.ndarray | None]:
    """Reorder to [flair, t1ce, t1, t2], crop to the brain's bounding box, z-score."""
    order = [volume.modalities.index(m) for m in MODALITIES]
    image = volume.image[order]
    brain = (image != 0).any(axis=0)
    if not brain.any():
        raise DataError("all modalities are empty", case=volume.case_id)
    box = tuple(slice(idx.min(), idx.max() + 1) for idx in np.nonzero(brain))
    image, brain = image[(slice(None), *box)], brain[box]
    out = np.zeros_like(image)
    for c in range(image.shape[0]):
        values = image[c][brain]
        out[c][brain] = (values - values.mean()) / max(float(values.std()), 1e-8)
    label = volume.label[box] if volume.label is not None else None
    return out, label


_REGIONS_AS_PRINTED = {"Tumor core": "TC", "Enhancing tumor": "ET", "Whole tumor": "WT"}
_ALL = [m.id for m in MASKS]
TABLES = {
    "table3": {
        "title": "Table 3: Dice (%) per region over the 15 modality subsets; MN = missing number",
        "layout": "setting_groups", "metric": "dice", "scale": 100, "std_ddof": 1,
        "targets": ["TC", "ET", "WT", "ET_postpro"],
        "groups": {"All settings": _ALL,
                   "FM": [m.id for m in MASKS if sum(m.available) == 4],
                   **{f"MN={n}": [m.id for m in MASKS if sum(m.available) == 4 - n]
                      for n in (1, 2, 3)}},
        "reported": {"file": "table03_brats18_missing_summary.csv", "target_column": "region",
                     "targets": _REGIONS_AS_PRINTED, "group_column": "setting"},
        "note": "The paper's MN=2 and MN=3 stds cannot be reproduced from its Table 10 "
                "(shifted column ranges); they are shown as printed.",
    },
    "table10": {
        "title": "Table 10: Dice (%) per modality subset (columns: xhbench setting ids, "
                 + ", ".join(f"{m.id}={m.name}" for m in MASKS) + ")",
        "layout": "per_setting", "metric": "dice", "scale": 100, "std_ddof": 0,
        "targets": ["TC", "ET", "WT"], "columns": _ALL,
        "reported": {"file": "table10_brats18_missing_per_setting.csv",
                     "target_column": "region", "targets": _REGIONS_AS_PRINTED,
                     "group_column": "setting_index", "column_prefix": "paper col ",
                     "method_column": "table3_method_at_same_row_position"},
        "note": "The paper does not say which subset each of its Table 10 columns is (only "
                "that columns 1-4, 5-10, 11-14, 15 miss 3, 2, 1, 0 modalities), so its "
                "columns are shown apart; its method labels are permuted relative to Table 3 "
                "and are shown under Table 3's names, with which the numbers agree.",
    },
}


_FROM_BRATS23 = {"t2f": "flair", "t1c": "t1ce", "t1n": "t1", "t2w": "t2"}


class BraTS18Format(SegmentationFormat):
    """External label maps, cropped with the bounding box that ``preprocess`` uses.

    ``preprocess`` crops every case to the bounding box of voxels where any modality is
    non-zero; the same box is applied to the prediction. The box is recomputed here and
    checked against the task's own crop of the reference (the cropped ground truth must
    equal ``item.reference``), so a change in ``preprocess`` cannot go unnoticed.
    """

    naming = ("<setting>/<case_id>.nii.gz: labels 0, 1, 2, 4 (BraTS convention) on the "
              "case's original grid (same shape and affine as its images); with "
              "task.settings=full the BraTS challenge layout <case_id>.nii.gz")

    def files(self, task, case_id: str, setting) -> dict[str, str]:
        if task.config.settings == "full":  # the challenge layout: one flat folder
            return {"label": f"{case_id}.nii.gz"}
        return super().files(task, case_id, setting)

    def to_task_grid(self, task, classes, volume, item) -> np.ndarray:
        brain = (volume.image != 0).any(axis=0)
        box = tuple(slice(idx.min(), idx.max() + 1) for idx in np.nonzero(brain))
        if volume.label is not None and not np.array_equal(volume.label[box], item.reference):
            raise DataError("internal: the crop of the prediction does not match the task's "
                            "preprocessing (report this as a bug)", case=volume.case_id)
        return classes[box]

    def describe(self, task) -> dict[str, str]:
        return {"naming": self.naming,
                "conversion": "label values 0, 1, 2, 4 -> class indices 0-3; cropped to the "
                              "bounding box of non-zero voxels of the four modalities, as the "
                              "reference is"}


class BraTS18Missing(Task):
    name = "brats18_missing"
    version = 1
    kind = "segmentation"
    dataset = "brats18"
    extra_datasets = {"pretraining": "brats23"}
    external_format = BraTS18Format
    Config = BraTS18MissingConfig
    tables = TABLES
    overlay = {"view": "slice", "image": "flair",
               "settings": ["15", "4", "2"]}  # all four modalities, FLAIR only, T1ce only
    profiles = {
        "smoke": {"phantom_size": 32, "phantom_train": 4, "phantom_val": 1, "phantom_test": 2},
        "default": {},
        "paper": {},
    }

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(self.name, self.kind, MODALITIES, ("background", "ncr", "ed", "et"))

    def __init__(self, config, data, extra_data=None):
        super().__init__(config, data, extra_data)
        if "lesionwise" in config.metrics:
            from ..metrics.brats_official import require

            require()

    def settings(self) -> list[Setting]:
        return list(MASKS) if self.config.settings == "missing" else [MASKS[-1]]

    def load_case(self, case: Case) -> dict[str, np.ndarray | None]:
        image, label = preprocess(self.data.read(case))
        if label is None:
            raise DataError("training case has no segmentation", case=case.case_id)
        return {"image": image, "foreground": (image != 0).any(axis=0),
                "label": np.searchsorted(LABELS, label).astype(np.int64)}

    def preprocessing_options(self) -> dict[str, object]:
        return {}  # et_postpro_mm3 only changes the scoring

    def load_pretraining_case(self, case: Case) -> dict[str, np.ndarray | None]:
        """A BraTS 2023 case (t1n, t1c, t2w, t2f) in this task's channel order, z-scored."""
        volume = self.pretraining_corpus.read(case)
        renamed = Volume(volume.case_id, volume.image, None, volume.affine,
                         tuple(_FROM_BRATS23[m] for m in volume.modalities))
        image, _ = preprocess(renamed)
        return {"image": image, "foreground": (image != 0).any(axis=0), "label": None}

    def prepare(self, volume: Volume) -> EvalItem:
        image, label = preprocess(volume)
        if label is None:
            raise DataError("test case has no segmentation", case=volume.case_id)
        return EvalItem(volume.case_id, image, label, volume.spacing,
                        foreground=(image != 0).any(axis=0))

    def score(self, prediction: np.ndarray, item: EvalItem, setting: Setting) -> list[dict]:
        predicted = np.asarray(LABELS)[prediction]
        pred_regions = metrics.brats_regions(predicted, scheme="brats18")
        ref_regions = metrics.brats_regions(item.reference, scheme="brats18")
        values = {region: metrics.dice(pred_regions[region], ref_regions[region], empty="one")
                  for region in REGIONS}
        min_voxels = int(round(self.config.et_postpro_mm3 / float(np.prod(item.spacing))))
        et_post = metrics.et_postprocess(pred_regions["ET"], min_voxels=min_voxels)
        values["ET_postpro"] = metrics.dice(et_post, ref_regions["ET"], empty="one")
        rows = [("dice", target, value) for target, value in values.items()]
        if "hd95" in self.config.metrics:
            rows += [("hd95", region, metrics.hd95(pred_regions[region], ref_regions[region],
                                                   spacing=item.spacing, empty="brats"))
                     for region in REGIONS]
        if "lesionwise" in self.config.metrics:
            rows += _lesionwise_rows(predicted, item)
        return [{"case": item.case_id, "setting": setting.id, "target": target,
                 "metric": metric, "value": value} for metric, target, value in rows]

    def _extra_metrics(self) -> list[str]:
        return ((["hd95"] if "hd95" in self.config.metrics else [])
                + (["lesionwise_dice", "lesionwise_hd95"]
                   if "lesionwise" in self.config.metrics else []))

    def regions(self, prediction: np.ndarray, item: EvalItem) -> dict[str, tuple[np.ndarray,
                                                                              np.ndarray]]:
        """WT, TC and ET of the prediction (class indices) and of the reference (labels)."""
        predicted = metrics.brats_regions(np.asarray(LABELS)[prediction], scheme="brats18")
        reference = metrics.brats_regions(item.reference, scheme="brats18")
        return {region: (predicted[region], reference[region]) for region in REGIONS}

    def conventions(self) -> dict[str, str]:
        extra = {name: metrics.CONVENTIONS[name] for name in self._extra_metrics()}
        if "hd95" in extra:
            extra["hd95"] += " Empty-mask rule: 'brats'."
        if "lesionwise_dice" in extra:
            extra["lesionwise_dice"] += (" BraTS 2018 label 4 (ET) is mapped to 3 for the "
                                         "package's 'gli' config.")
        return {
            "dice": metrics.CONVENTIONS["dice"]
            + " Empty-mask rule: 'one' (BraTS missing-modality family)."
            + f" ET_postpro: predicted ET under {self.config.et_postpro_mm3:g} mm^3 set empty.",
            **extra,
            "settings": ("15 availability masks over [flair, t1ce, t1, t2] in RFNet order; "
                         "missing channels zero-filled unless the method handles missing "
                         "modalities." if self.config.settings == "missing" else
                         "all four modalities only (setting 15; the BraTS challenge's "
                         "condition), in training and evaluation."),
            "preprocessing": "crop to non-zero bounding box; z-score per modality over the brain.",
        }

    def higher_is_better(self) -> dict[str, bool]:
        return {"dice": True, **{name: metrics.HIGHER_IS_BETTER[name]
                                 for name in self._extra_metrics()}}


def _lesionwise_rows(predicted: np.ndarray, item: EvalItem) -> list[tuple[str, str, float]]:
    """Lesion-wise Dice and HD95 per region from the official BraTS package."""
    from ..metrics.brats_official import brats_official_scores

    def brats23(label: np.ndarray) -> np.ndarray:
        return np.where(label == 4, 3, label)  # the 'gli' config's ET is label 3

    scores = brats_official_scores(brats23(predicted), brats23(item.reference),
                                   np.diag([*item.spacing, 1.0]), case_id=item.case_id)
    return [(metric, region, scores[region.lower()][column]) for region in REGIONS
            for metric, column in (("lesionwise_dice", "lesionwise_dsc_mean"),
                                   ("lesionwise_hd95", "lesionwise_hd95_mean"))]
