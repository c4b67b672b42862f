"""Downstream segmentation of a synthesized MRI modality (the BraSyn protocol).

A reference segmenter, trained once with all four real modalities, segments each test case
twice: with the real target modality and with the synthesized one in its place. The Dice of
both (WT, TC, ET) and their paired difference say whether the synthesized image serves the
segmentation it is for. The harness trains (or restores) the segmenter on
:class:`SegmentationView` and passes it, with each prediction, to the task's
``downstream_rows`` (:mod:`xhbench.harness.downstream`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .. import metrics
from ..datasets.base import Case, Dataset
from .base import EvalItem, Setting, TaskSpec

__all__ = ["DOWNSTREAM_CONVENTIONS", "DOWNSTREAM_HIGHER_IS_BETTER", "REGIONS",
           "SegmentationView", "downstream_metrics"]

REGIONS = ("WT", "TC", "ET")


@dataclass
class SegmentationView:
    """The reference segmenter a synthesis task asks for (registered ``method`` at
    ``profile``, trained under ``seed``) and its training data seen as a segmentation task:
    all modalities as input, the data set's labels as classes.

    ``load`` reads one case as the synthesis task preprocesses it (same channel order and
    normalisation as its test items), with ``label`` as class indices.
    """

    method: str
    profile: str
    seed: int
    name: str
    data: Dataset
    spec: TaskSpec
    cases: Sequence[Case]
    load: Callable[[Case], dict[str, np.ndarray | None]]

    def train_cases(self) -> list[Case]:
        return list(self.cases)

    def training_data(self, cases: Sequence[Case], roi: Sequence[int], *,
                      handles_missing: bool):
        """Crops with every modality present (one setting: all available)."""
        from .transforms import training_dataset

        setting = Setting("all", "all modalities", (True,) * len(self.spec.in_channels))
        return training_dataset(cases, load=self.load, roi=roi, settings=[setting],
                                zero_fill=not handles_missing, synthesis=False)


def downstream_metrics(segment: Callable[[np.ndarray], np.ndarray], item: EvalItem,
                       channel: int, synthesized: np.ndarray, real_segmentation: np.ndarray,
                       reference: np.ndarray, scheme: str) -> dict[str, float]:
    """Dice of the segmentation with the real image (``real_segmentation``) and with
    ``synthesized`` in place of channel ``channel`` (background set to 0), against the
    label map ``reference``; and their difference, real minus synthesized, per region."""
    image = item.image.copy()
    image[channel] = np.where(item.foreground, synthesized, 0.0)
    regions = {"real": metrics.brats_regions(real_segmentation, scheme=scheme),
               "synth": metrics.brats_regions(segment(image), scheme=scheme)}
    truth = metrics.brats_regions(reference, scheme=scheme)
    out: dict[str, float] = {}
    for region in REGIONS:
        real = metrics.dice(regions["real"][region], truth[region], empty="one")
        synth = metrics.dice(regions["synth"][region], truth[region], empty="one")
        out.update({f"downstream_dice_real_{region}": real,
                    f"downstream_dice_synth_{region}": synth,
                    f"downstream_drop_{region}": real - synth})
    return out


_COMMON = ("Downstream segmentation (BraSyn): a reference segmenter trained once on the "
           "training split with all real modalities segments the case with the real target "
           "modality and with the synthesized one in its place (background 0); Dice per "
           "region (BraTS regions, one global value per case, empty rule 'one'), against the "
           "case's label, or where the case has none (BraTS validation) against the "
           "segmentation of the real case (then the real Dice is 1). ")

DOWNSTREAM_CONVENTIONS: dict[str, Any] = {
    **{f"downstream_dice_real_{r}": _COMMON + f"{r} Dice with the real target modality."
       for r in REGIONS},
    **{f"downstream_dice_synth_{r}": _COMMON + f"{r} Dice with the synthesized modality."
       for r in REGIONS},
    **{f"downstream_drop_{r}": _COMMON + f"{r}: real Dice minus synthesized Dice, per case "
       "(paired); 0 when the synthesized image equals the real one." for r in REGIONS},
    "downstream_label_reference": "1 when the case's Dice reference is its label, 0 when it "
                                  "is the segmentation of the real case (no label).",
}
"""Metric name -> its convention, for the run record."""

DOWNSTREAM_HIGHER_IS_BETTER: dict[str, bool] = {
    **{f"downstream_dice_{kind}_{r}": True for kind in ("real", "synth") for r in REGIONS},
    **{f"downstream_drop_{r}": False for r in REGIONS},
}
"""Direction of the downstream metrics (the reference flag has none)."""
