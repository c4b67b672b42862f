"""The budget rule of the ``default`` profile (docs/leaderboard.md, "Budget rule"), checked
on the budgets the harness plans from the registered methods' profiles
(:func:`xhbench.harness.budgets.default_budgets`; nothing is trained).

On a task, every learned method's main training stage sees the same number of training
crops of the same size, and predicts with sliding windows of that size; its recipe's extra
stages (pre-training, a representation or autoencoder stage) come on top, so that a
two-stage method's crops are the sum. Methods with a Swin backbone use the same attention
window. :data:`EXCEPTIONS` lists, once, each method that departs from this and why.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from ..training.budget import PlannedStage, planned_crops

__all__ = ["EXCEPTIONS", "DefaultBudget", "rule_breaks"]

_TRANSFER = ("autopet_transfer", "brats23_transfer", "hnscc_nsclc_transfer")
_SLICE_WISE = "2D slice-wise translation: trains on slabs of 4 slices (X x Y x 4), one model per pair"
_GAN_3D = "3D translation GAN: 48^3 crops at batch 1 (the GAN recipe), one model per pair"

#: ``(task, method) -> why`` its default budget departs from the task's common one.
EXCEPTIONS: dict[tuple[str, str], str] = {
    **{(task, "unetr"): "48^3 crops: its ViT cuts 16^3 patches, so 32^3 would leave 8 tokens"
       for task in ("autopet_seg", "brats18_missing", *_TRANSFER)},
    **{(task, "nnunetv2"): "nnU-Net plans its own patch; epochs x iterations x batch give "
       "the task's crop count" for task in ("autopet_seg", "brats18_missing")},
    **{(task, method): _SLICE_WISE
       for task in _TRANSFER
       for method in ("cut", "cyclegan2d", "diffusion", "gcgan", "mddiff", "nicegan",
                      "pix2pix2d", "reggan", "resvit")},
    **{(task, method): _GAN_3D
       for task in _TRANSFER
       for method in ("cyclegan3d", "eagan", "msspade", "pix2pix3d", "spadegan")},
}


@dataclass(frozen=True)
class DefaultBudget:
    """What a method trains and predicts with at ``default``."""

    method: str
    stages: tuple[PlannedStage, ...]
    infer_window: tuple[int, ...] | None
    swin_window: int | None

    @classmethod
    def planned(cls, method: str, method_cls: type, config: Any) -> DefaultBudget:
        """The budget ``method_cls`` plans for its resolved ``default`` ``config``."""
        infer = getattr(config, "infer_roi", None) or getattr(config, "roi", None)
        return cls(method, tuple(method_cls.training_plan(config)),
                   tuple(infer) if infer else None, getattr(config, "window_size", None))

    @property
    def main(self) -> PlannedStage:
        """The stage the task's common budget applies to (the last)."""
        return self.stages[-1]

    @property
    def crops(self) -> int:
        return planned_crops(self.stages, extra=False)

    @property
    def extra_crops(self) -> int:
        return planned_crops(self.stages, extra=True)


def rule_breaks(task: str, budgets: Sequence[DefaultBudget]) -> list[str]:
    """Each way a method of ``task`` (among its learned methods' ``budgets``) not in
    :data:`EXCEPTIONS` departs from the task's common budget (the most common crops and
    crop among those methods); empty when the rule holds."""
    budgets = [b for b in budgets if (task, b.method) not in EXCEPTIONS]
    if not budgets:
        return []
    common = Counter((b.crops, b.main.crop) for b in budgets).most_common(1)[0][0]
    windows = {b.swin_window for b in budgets if b.swin_window is not None}
    breaks = []
    for b in budgets:
        if (b.crops, b.main.crop) != common:
            breaks.append(f"{task}: {b.method} trains {b.crops} crops of {b.main.crop}, "
                          f"the task's common budget is {common[0]} crops of {common[1]}")
        if b.infer_window != b.main.crop:
            breaks.append(f"{task}: {b.method} predicts with windows {b.infer_window}, "
                          f"trains on crops {b.main.crop}")
        if len(windows) > 1 and b.swin_window is not None:
            breaks.append(f"{task}: {b.method} uses Swin window {b.swin_window}; the task's "
                          f"Swin methods use {sorted(windows)}")
    return breaks
