"""AutoPET-II lesion segmentation from PET (SUV) and CT (paper Tables 5 and 7).

Paper: "Personalize to generalize" (Section 5.2): binary FDG-avid lesion segmentation on
AutoPET-II with the training and testing split of its Section 5.1 (the modality-transfer
split), so xhbench uses the same split as ``autopet_transfer``: the ``autopet`` data set's
patient-level, lesion-stratified split (train / val / test = 70 / 10 / 20 % of patients; never
split by study; see :mod:`xhbench.datasets.autopet`). Trains on ``train``, evaluates on
``test``.

**Inputs**, in channel order: ``PET`` = SUV, ``CT`` = CTres (HU), the autoPET-II baseline's
order (``_0000`` SUV, ``_0001`` CT; nnU-Net v2's converter uses the reverse). Option
``inputs = "PET"`` trains and evaluates a PET-only model (the paper mentions PET-only input in
its text but prints no PET-only rows). The one setting is named by ``inputs``.
**Normalisation** as ``autopet_transfer``: CT clipped to [-1000, 1000] HU and SUV to [0, 20],
each mapped to [0, 1]; foreground = body (CT > -500 HU, holes filled per axial slice,
largest component). **Classes**: 0 background, 1 lesion (SEG). **Training crops**: lesion-centred
two times in three, flipped, intensity scaled by +-10 % but never offset (SUV and HU are
absolute; version 2). The default phantom has 64 training studies (version 1: 16).

**Metrics per case** (target ``lesion``; :mod:`xhbench.metrics.autopet`):

- ``dice``: the autoPET official Dice, NaN for a lesion-free reference, so its mean over cases
  is the mean over lesion-positive cases (a missed one scores 0);
- ``dice-``: the paper's rule, 0 for a lesion-free reference, averaged over all cases;
- ``fpv``, ``fnv``: the challenge's false-positive and false-negative volumes in ml
  (components with 18-connectivity; voxel volume = product of spacings / 1000);
- ``pred_positive``, ``ref_positive``: case-level flags (positive = any lesion voxel), from
  which :func:`xhbench.metrics.autopet.case_detection_rates` computes TPR/TNR/FNR/FPR;
- ``tpr``, ``fnr`` (on lesion-positive cases) and ``tnr``, ``fpr`` (on lesion-free cases):
  0/1 indicators, NaN on the other cases, so a plain mean over cases (NaN left out) is the
  case-level rate, and the ``per_target`` layout prints Table 5's rates as they are.

**Reading of Table 5.** The paper: "DICE is calculated in the standard manner but is set to
zero for false negatives and true negatives. Additionally, we introduce DICE- to include the
mean across all samples". xhbench reads "Dice" as the challenge's mean over lesion-positive
cases (where the true-negative rule cannot matter) and "Dice-" as the mean over all cases with
0 for every lesion-free case. Under this reading Dice- <= Dice x (positive share); the paper
prints Dice- > Dice in every row, which no rule tried reproduces (nor 1 for true negatives),
so its Dice columns are shown as printed but are not comparable one to one. Its rates are
consistent with 93 lesion-positive and 110 lesion-free test cases (e.g. TPR 90.32 = 84/93,
TNR 62.73 = 69/110).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from ..datasets.base import Case, Volume
from ..errors import DataError
from ..imaging import body_mask, to_window
from ..metrics import autopet as lesion_metrics
from ..options import option
from .autopet_transfer import PetCtConfig
from .base import EvalItem, Setting, Task, TaskSpec

__all__ = ["AutoPETSeg"]

TARGET = "lesion"
_RATES = ["dice", "dice-", "tpr", "tnr", "fnr", "fpr"]
_INPUTS = {"PET+CT": ("suv", "ct"), "PET": ("suv",)}
_NAMES = {"suv": "PET", "ct": "CT"}


@dataclass
class AutoPETSegConfig(PetCtConfig):
    phantom_train: int = option(64, ge=1)  # ~30 lesion-positive studies (16 gave ~7)
    phantom_test: int = 8
    inputs: Literal["PET+CT", "PET"] = "PET+CT"


def _reported(file: str, **naming: str) -> dict:
    """Reported rows of one CSV, named by its ``method`` column unless ``naming`` says."""
    return {"file": file, "target_column": "dataset", "targets": {"AutoPET-II": TARGET},
            **naming}


TABLES = {
    "table5": {
        "title": "Table 5: AutoPET-II lesion segmentation (%): Dice (mean over lesion-positive "
                 "cases), Dice- (all cases, 0 when lesion-free), case-level TPR/TNR/FNR/FPR",
        "layout": "per_target", "metric": _RATES, "targets": [TARGET], "scale": 100,
        "std_ddof": 0, "reported": _reported("table05_autopet_seg.csv"),
        "note": "Rates are means of per-case 0/1 indicators over the cases where they are "
                "defined (their ± is the std of the indicators). The paper prints Dice- > Dice "
                "in every row, which xhbench's reading of its definitions cannot produce; see "
                "docs/tasks.md.",
    },
    "table7": {
        "title": "Table 7: AutoPET-II lesion segmentation (%) after the paper's pre-training "
                 "configurations (ablation)",
        "layout": "per_target", "metric": _RATES, "targets": [TARGET], "scale": 100,
        "std_ddof": 0, "reported": _reported(
            "table07_autopet_seg_ablation.csv",
            label="ours {pretrain_as_printed} (pre-training ID {config_id})"),
        "note": "Reported rows are the paper's own method after each pre-training "
                "configuration; ID 6 equals Table 5's 'With ours'.",
    },
    "official": {
        "title": "autoPET challenge metrics: Dice (lesion-positive cases), false-positive and "
                 "false-negative volume (ml, 18-connected components)",
        "layout": "per_target", "metric": ["dice", "fpv", "fnv"], "targets": [TARGET],
        "scale": 1, "std_ddof": 0,
        "note": "The paper reports no volumes; the autoPET-II test-set reference points "
                "(nnU-Net baseline Dice 0.359, FNV 13.5 ml, FPV 176 ml) are on another split.",
    },
}


class AutoPETSeg(Task):
    name = "autopet_seg"
    version = 2  # 2: no intensity offset in training crops; default phantom 64 training studies
    kind = "segmentation"
    dataset = "autopet"
    test_split = "test"
    Config = AutoPETSegConfig
    tables: ClassVar[Mapping[str, Mapping[str, Any]]] = TABLES
    overlay: ClassVar[Mapping[str, Any]] = {"view": "mip", "image": "PET"}
    intensity_shift: ClassVar[float] = 0.0  # SUV and HU are absolute: scale jitter only
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "smoke": {"phantom_size": 32, "phantom_train": 4, "phantom_test": 2},
        "default": {},
        "paper": {},
    }

    @property
    def keys(self) -> tuple[str, ...]:
        return _INPUTS[self.config.inputs]

    @property
    def spec(self) -> TaskSpec:
        cfg = self.config
        windows = {"PET": (0.0, cfg.suv_max), "CT": (cfg.ct_min_hu, cfg.ct_max_hu)}
        names = tuple(_NAMES[k] for k in self.keys)
        return TaskSpec(self.name, self.kind, names, ("background", TARGET),
                        windows={name: windows[name] for name in names})

    def settings(self) -> list[Setting]:
        return [Setting(self.config.inputs, f"input {self.config.inputs}",
                        (True,) * len(self.keys))]

    def preprocess(self, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
        """``(image (C, X, Y, Z) in [0, 1], body (X, Y, Z) bool)``."""
        cfg = self.config
        index = {key: volume.modalities.index(key) for key in ("suv", "ct")}
        ct = volume.image[index["ct"]]
        body = body_mask(ct, cfg.body_hu)
        if not body.any():
            raise DataError(f"no body in the CT (no voxel above {cfg.body_hu:g} HU)",
                            case=volume.case_id)
        windows = {"suv": (0.0, cfg.suv_max), "ct": (cfg.ct_min_hu, cfg.ct_max_hu)}
        image = np.stack([to_window(volume.image[index[k]], *windows[k]) for k in self.keys])
        return image, body

    def _label(self, volume: Volume) -> np.ndarray:
        if volume.label is None:
            raise DataError("case has no SEG", case=volume.case_id)
        return volume.label.astype(np.int64)

    def load_case(self, case: Case) -> dict[str, np.ndarray | None]:
        volume = self.data.read(case)
        image, body = self.preprocess(volume)
        return {"image": image, "foreground": body, "label": self._label(volume)}

    def prepare(self, volume: Volume) -> EvalItem:
        image, body = self.preprocess(volume)
        return EvalItem(volume.case_id, image, self._label(volume) == 1, volume.spacing,
                        foreground=body)

    def score(self, prediction: np.ndarray, item: EvalItem, setting: Setting) -> list[dict]:
        values = lesion_metrics.lesion_case_metrics(np.asarray(prediction) == 1, item.reference,
                                                    item.spacing)
        return [{"case": item.case_id, "setting": setting.id, "target": TARGET,
                 "metric": metric, "value": value} for metric, value in values.items()]

    def conventions(self) -> dict[str, str]:
        cfg = self.config
        return {
            **lesion_metrics.AUTOPET_CONVENTIONS,
            "inputs": f"{cfg.inputs}: channels {', '.join(self.spec.in_channels)} "
                      "(PET = SUV, CT = CTres in HU)",
            "normalisation": f"CT [{cfg.ct_min_hu:g}, {cfg.ct_max_hu:g}] HU -> [0, 1], SUV "
                             f"[0, {cfg.suv_max:g}] -> [0, 1], clipped",
            "foreground": f"body: CT > {cfg.body_hu:g} HU, holes filled per axial slice, "
                          "largest 3D connected component",
            "table5": "Dice = mean of 'dice' (official, lesion-positive cases); Dice- = mean "
                      "of 'dice-' over all cases; rates = means of the indicators.",
        }

    def higher_is_better(self) -> dict[str, bool]:
        return dict(lesion_metrics.AUTOPET_HIGHER_IS_BETTER)
