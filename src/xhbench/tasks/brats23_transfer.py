"""BraTS 2023 MRI modality transfer (paper Tables 1, 2, 8 and 9).

Trains on the BraTS 2023 glioma training set and evaluates on its 219-case
validation set (no segmentation needed). Channels [T1, T1ce, T2, FLAIR] (files
t1n, t1c, t2w, t2f). Each modality is z-scored over the brain (voxels where any
modality is non-zero) as the paper states; background stays 0 and is excluded
from training losses and metrics. Settings: one per source modality; pairs
``all`` (4x4, Tables 2/9) or a list such as ``T1->T2,T2->FLAIR,T1->T1ce``
(Table 1). Metric protocol: see :mod:`xhbench.tasks.synthesis`.

With ``downstream=true`` each scored pair is also judged by downstream segmentation (the
BraSyn protocol, :mod:`xhbench.tasks.downstream`): a reference segmenter
(``downstream_method`` at ``downstream_profile``; the smoke profile uses the segmenter's
smoke profile) trained once on the training split with all four real modalities segments
each test case with the real target and with the synthesized one in its place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..datasets.base import Case, Volume
from ..errors import DataError
from ..options import option
from .base import EvalItem, Setting, TaskConfig, TaskSpec
from .downstream import (DOWNSTREAM_CONVENTIONS, DOWNSTREAM_HIGHER_IS_BETTER, REGIONS,
                         SegmentationView, downstream_metrics)
from .external_format import SynthesisFormat
from .synthesis import SynthesisTask, zscore_in_mask

__all__ = ["BraTS23Transfer", "ZScoreSynthesisFormat"]

_NAMES = ("T1", "T1ce", "T2", "FLAIR")
_CLASSES = ("background", "ncr", "ed", "et")  # BraTS 2023 labels 0-3
_PRINTED = {"Flair": "FLAIR"}  # the paper's spelling -> ours


@dataclass
class BraTS23TransferConfig(TaskConfig):
    pairs: str = "all"
    metric_protocol: Literal["paper", "brasyn"] = "paper"
    downstream: bool = False  # also score each pair by downstream segmentation (BraSyn)
    downstream_method: str = "swinunetr"  # the reference segmenter ...
    downstream_profile: str = "default"  # ... its profile ...
    downstream_seed: int = option(0, ge=0)  # ... and seed: one fixed segmenter for every run


@dataclass
class BraTS23Item(EvalItem):
    """A test item with the case's label (``None`` without one) and, once segmented, the
    reference segmenter's output on the real case."""

    label: np.ndarray | None = None
    real_segmentation: np.ndarray | None = None


# The measured method beside each reported row (Tables 1/8 name methods with their
# dimension; Table 2 without).
_TABLE1_ROWS = {"pix2pix2d": "Pix2Pix 2D", "cyclegan2d": "CycleGAN 2D",
                "nicegan": "NICEGAN 2D", "gcgan": "GcGAN 2D", "cut": "CUT 2D",
                "reggan": "RegGAN 2D", "resvit": "ResViT 2D", "diffusion": "Diffusion 2D",
                "mddiff": "MD-Diff 2D", "cyclegan3d": "CycleGAN 3D", "pix2pix3d": "Pix2Pix 3D",
                "eagan": "EaGAN 3D", "msspade": "MS-SPADE 3D", "ours": "Ours 3D"}
_TABLE2_ROWS = {"swinunetr": "SwinUNETR", "msspade": "MS-SPADE", "ours": "Ours"}


def _pair_table(title: str, pairs: list[str], metrics: list[str], layout: str) -> dict:
    # Table 1's layout: Table 8's cells (with std), then Table 1's for what Table 8 lacks
    # (CUT, GcGAN, Diffusion, MD-Diff; the T1->T1ce column)
    files = ("table02_brats23_all_to_all.csv" if layout == "pairs"
             else ["table08_brats23_transfer_std.csv", "table01_brats23_transfer.csv"])
    return {"title": title, "layout": layout, "metric": metrics, "targets": pairs,
            "scale": 1, "std_ddof": 0,
            "reported": {"file": files, "pair_columns": ("source", "target"),
                         "rename": _PRINTED,
                         "beside": _TABLE2_ROWS if layout == "pairs" else _TABLE1_ROWS}}


class ZScoreSynthesisFormat(SynthesisFormat):
    """External targets z-scored with the reference's mean and std.

    The task z-scores each modality over the brain (voxels where any modality is
    non-zero). A prediction of the target modality is z-scored with the mean and std of
    the *reference* target over that same brain mask, i.e. exactly the map the reference
    went through, so a global intensity error stays visible to PSNR and NMSE.
    """

    def normalise_target(self, task, prediction, raw_reference, reference, foreground, *, key):
        values = raw_reference[foreground].astype(np.float64)
        mean, std = values.mean(), max(float(values.std()), 1e-8)
        return np.where(foreground, (prediction - mean) / std, 0.0).astype(np.float32)

    def describe(self, task) -> dict[str, str]:
        return {"naming": self.naming,
                "conversion": "each predicted target z-scored with the mean and std of the "
                              "reference target over the brain mask (the reference's own "
                              "normalisation); background 0"}


class BraTS23Transfer(SynthesisTask):
    name = "brats23_transfer"
    version = 1
    dataset = "brats23"
    test_split = "validation"
    channels = {"t1n": "T1", "t1c": "T1ce", "t2w": "T2", "t2f": "FLAIR"}
    Config = BraTS23TransferConfig
    external_format = ZScoreSynthesisFormat
    normalisation_note = "z-score per modality over the brain; background 0"
    profiles = {
        "smoke": {"phantom_size": 32, "phantom_train": 3, "phantom_test": 2,
                  "downstream_profile": "smoke"},
        "default": {},
        "paper": {"downstream_profile": "paper"},
    }
    tables = {
        "downstream": {
            "title": "Downstream segmentation (BraSyn): Dice of the reference segmenter with "
                     "the synthesized target in place of the real one, and the paired drop "
                     "(real minus synthesized); mean ± std across cases",
            "layout": "per_target", "targets": ["T1->T2", "T2->FLAIR", "T1->T1ce"],
            "metric": [f"downstream_{kind}_{r}" for kind in ("dice_synth", "drop")
                       for r in REGIONS],
            "scale": 1, "std_ddof": 0,
            "note": "Not in the paper; runs with --set task.downstream=true only. The "
                    "reference segmenter is recorded in each run (downstream.json).",
        },
        "table1": _pair_table("Table 1: T1->T2, T2->FLAIR, T1->T1ce; mean ± std across cases",
                              ["T1->T2", "T2->FLAIR", "T1->T1ce"], ["psnr", "nmse", "ssim"],
                              "per_target"),
        "table2": _pair_table("Tables 2 and 9: all 4x4 transfers; mean ± std across cases",
                              [f"{s}->{t}" for s in _NAMES for t in _NAMES],
                              ["psnr", "nmse", "ssim"], "pairs"),
    }

    def normalise(self, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
        foreground = (volume.image != 0).any(axis=0)
        return zscore_in_mask(volume.image, foreground), foreground

    # -- downstream segmentation (docs/metrics.md) --------------------------------------------
    def downstream_view(self) -> SegmentationView | None:
        """With ``downstream``: the segmenter (``downstream_method`` at
        ``downstream_profile``, seed ``downstream_seed``) and the training split as a
        segmentation task."""
        cfg = self.config
        if not cfg.downstream:
            return None
        spec = TaskSpec(f"{self.name}_downstream", "segmentation", self.names, _CLASSES)
        return SegmentationView(cfg.downstream_method, cfg.downstream_profile,
                                cfg.downstream_seed, spec.name, self.data, spec,
                                self.train_cases(), self._segmentation_case)

    def _segmentation_case(self, case: Case) -> dict[str, np.ndarray | None]:
        volume = self.data.read(case)
        if volume.label is None:
            raise DataError("the downstream segmenter trains on labelled cases; this one has "
                            "no seg", case=case.case_id)
        image, foreground = self._arrays(volume)
        return {"image": image, "foreground": foreground,
                "label": volume.label.astype(np.int64)}  # BraTS 2023 labels are the classes

    def prepare(self, volume: Volume) -> BraTS23Item:
        item = super().prepare(volume)
        return BraTS23Item(item.case_id, item.image, item.reference, item.spacing,
                           foreground=item.foreground, label=volume.label)

    def downstream_rows(self, prediction: np.ndarray, item: BraTS23Item, setting: Setting,
                        segmenter) -> list[dict]:
        """Downstream Dice and drop of each scored pair from this setting's source (the
        segmentation of the real case computed once per case)."""
        if item.real_segmentation is None:
            item.real_segmentation = segmenter.segment(item.image)
        reference = item.label if item.label is not None else item.real_segmentation
        rows = []
        for source, target in self.pairs:
            if source != setting.id:
                continue
            channel = self.names.index(target)
            values = downstream_metrics(segmenter.segment, item, channel, prediction[channel],
                                        item.real_segmentation, reference, scheme="brats23")
            values["downstream_label_reference"] = float(item.label is not None)
            rows += [{"case": item.case_id, "setting": setting.id,
                      "target": f"{source}->{target}", "metric": metric, "value": value}
                     for metric, value in values.items()]
        return rows

    def conventions(self) -> dict[str, Any]:
        out = dict(super().conventions())
        if self.config.downstream:
            out.update(DOWNSTREAM_CONVENTIONS)
            cfg = self.config
            out["downstream_segmenter"] = (
                f"{cfg.downstream_method} at profile {cfg.downstream_profile}, trained on "
                f"{len(self.train_cases())} cases of the training split, seed "
                f"{cfg.downstream_seed} (its config and cache key: downstream.json)")
        return out

    def higher_is_better(self) -> dict[str, bool]:
        return {**super().higher_is_better(),
                **(DOWNSTREAM_HIGHER_IS_BETTER if self.config.downstream else {})}
