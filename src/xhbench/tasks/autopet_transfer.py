"""AutoPET-II PET/CT modality transfer (paper Table 4), and the PET/CT synthesis protocol.

Paper: "Personalize to generalize" (Section 5.1, Table 4): PET->PET, CT->CT, PET->CT and
CT->PET on AutoPET-II (FDG-PET-CT-Lesions), SSIM and PSNR per transfer and their average
("Avg."). The paper states only that the data set is divided into training and testing sets;
xhbench uses the ``autopet`` data set's patient-level split (all studies of a patient in one
split, lesion-stratified, 70/10/20 %; see :mod:`xhbench.datasets.autopet`): trains on
``train``, evaluates on ``test``.

Channels, in order: ``PET`` = SUV (``SUV.nii.gz``), ``CT`` = CTres in HU (CT on the PET grid).
Settings: one per source modality (``PET``, ``CT``); the method predicts both channels from
one source and the pairs whose source it is are scored.

**Normalisation** (xhbench's choice; the paper gives none): fixed windows mapped to [0, 1],
CT clipped to [-1000, 1000] HU, SUV clipped to [0, 20] (``ct_min_hu``, ``ct_max_hu``,
``suv_max``). Air (-1000 HU) and zero uptake map to 0. **Foreground** = body: CT > -500 HU,
holes filled per axial slice (array axis 2, so lungs and airways count as body), largest
3D connected component (drops the couch and detached debris); it excludes background from
training losses and metrics.

**Metrics** (protocol ``window``, the default): volumes stay in the window's [0, 1] units
(the reference as normalised, the prediction clipped to [0, 1]), background set to 0 in
both; PSNR (data range 1) and NMSE over body voxels, SSIM (3D Gaussian window 11, sigma 1.5,
data range 1) averaged over body voxels of the valid interior. Protocols ``paper`` (the
shared synthesis protocol: [0, 1] by the reference's min/max in the body) and ``brasyn``
are also offered (:mod:`xhbench.tasks.synthesis`). **Avg.** is a per-case row (target
``Avg.``, setting ``all``): the mean of the case's values over the scored pairs, written
once every pair of the case is scored, so its mean over cases is the mean of the pair
columns (the paper's Avg., which equals the mean of its four columns) and it carries its
own std across cases.

Reported rows: Table 4 shows only the paper's own method under six pre-training constraint
configurations; their column order is assumed to be Table 7's IDs 1-6 (see the reported
data's README), and each reported row is named by its configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from .. import metrics
from ..datasets.base import Volume
from ..errors import ConfigError, DataError
from ..imaging import body_mask, from_window, to_window
from ..options import option
from .base import EvalItem, Setting, TaskConfig
from .external_format import SynthesisFormat
from .synthesis import SynthesisTask

__all__ = ["AutoPETTransfer", "PetCtConfig", "PetCtItem", "PetCtSynthesisTask",
           "WindowSynthesisFormat"]

AVG = "Avg."
#: the uptake errors shown in the ``uptake`` tables (the SUV >= 2.5 alternatives aside)
UPTAKE_COLUMNS = ("suvmax_error", "suvmean_error", "suvpeak_error", "mtv_error", "tlg_error")


@dataclass
class PetCtConfig(TaskConfig):
    """Options of the PET/CT tasks: the CT and SUV windows and the body's CT threshold."""

    ct_min_hu: float = -1000.0
    ct_max_hu: float = 1000.0
    suv_max: float = option(20.0, gt=0)
    body_hu: float = -500.0

    def validate(self) -> None:
        if not self.ct_min_hu < self.body_hu < self.ct_max_hu:
            raise ConfigError(f"options ct_min_hu={self.ct_min_hu:g}, body_hu="
                              f"{self.body_hu:g}, ct_max_hu={self.ct_max_hu:g}: the body "
                              "threshold must lie inside the CT window (ct_min_hu < body_hu "
                              "< ct_max_hu)")


@dataclass
class PetCtItem(EvalItem):
    """An evaluation item that remembers its pair values (for the per-case Avg.) and the
    evaluation set it belongs to (for tasks with more than one)."""

    eval_set: str | None = None
    pair_values: dict[str, dict[str, float]] = field(default_factory=dict)
    averaged: bool = False
    lesions: np.ndarray | None = None  # (X, Y, Z) bool reference lesion mask, if the case has one


class WindowSynthesisFormat(SynthesisFormat):
    """External targets in the PET/CT transfer tasks' windows (``task.windows()``).

    A window ``(low, high)`` (CT in HU, SUV) is applied to the prediction as to the
    reference: clipped to the window and mapped to [0, 1]. A ``"percentile"`` window
    (non-quantitative NAC-PET) uses the reference's percentile in the foreground.
    """

    def normalise_target(self, task, prediction, raw_reference, reference, foreground, *, key):
        window = task.windows()[key]
        if window == "percentile":
            high = float(np.percentile(raw_reference[foreground], task.config.nac_percentile))
            window = (0.0, max(high, 1e-6))
        return np.where(foreground, to_window(prediction, *window), 0.0).astype(np.float32)

    def describe(self, task) -> dict[str, str]:
        return {"naming": self.naming,
                "conversion": "each predicted target clipped to its modality's window and "
                              "mapped to [0, 1] as the reference is (percentile windows from "
                              "the reference); background 0"}


class PetCtSynthesisTask(SynthesisTask):
    """PET/CT transfer tasks: fixed-window normalisation, body foreground, ``window``
    metric protocol and a per-case ``Avg.`` target. Subclasses set ``channels`` and
    ``windows`` (data-set modality key -> ``(low, high)`` or ``"percentile"``)."""

    #: the data-set modality key of the CT (HU) the body mask is taken from
    ct_key: ClassVar[str] = "ct"
    #: the data-set modality key of the quantitative PET (SUV) scored by uptake errors
    suv_key: ClassVar[str] = "suv"
    external_format = WindowSynthesisFormat

    def windows(self) -> Mapping[str, tuple[float, float] | str]:
        cfg = self.config
        return {"ct": (cfg.ct_min_hu, cfg.ct_max_hu), "suv": (0.0, cfg.suv_max),
                "ac_pet": (0.0, cfg.suv_max)}

    def normalise(self, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
        keys = list(volume.modalities)
        body = body_mask(volume.image[keys.index(self.ct_key)], self.config.body_hu)
        if not body.any():
            raise DataError(f"no body in the CT (no voxel above {self.config.body_hu:g} HU)",
                            case=volume.case_id)
        windows = self.windows()
        image = np.empty(volume.image.shape, dtype=np.float32)
        for c, key in enumerate(keys):
            window = windows[key]
            if window == "percentile":  # not quantitative: scaled per case within the body
                high = float(np.percentile(volume.image[c][body], self.config.nac_percentile))
                image[c] = to_window(volume.image[c], 0.0, max(high, 1e-6))
            else:
                image[c] = to_window(volume.image[c], *window)
        return image, body

    def prepare(self, volume: Volume) -> PetCtItem:
        image, foreground = self._arrays(volume)
        lesions = None if volume.label is None else volume.label == 1
        return PetCtItem(volume.case_id, image, image, volume.spacing, foreground=foreground,
                         lesions=lesions)

    def row_setting(self, item: PetCtItem, setting: Setting) -> str:
        """The ``setting`` written in a pair's rows (default: the source setting's id)."""
        return setting.id

    def avg_setting(self, item: PetCtItem) -> str:
        """The ``setting`` written in a case's ``Avg.`` rows."""
        return "all"

    def score(self, prediction: np.ndarray, item: EvalItem, setting: Setting) -> list[dict]:
        rows = super().score(prediction, item, setting)
        for row in rows:
            row["setting"] = self.row_setting(item, setting)
        if not isinstance(item, PetCtItem):
            return rows
        for row in rows:
            item.pair_values.setdefault(row["target"], {})[row["metric"]] = row["value"]
        wanted = [f"{s}->{t}" for s, t in self.pairs]
        if not item.averaged and all(pair in item.pair_values for pair in wanted):
            item.averaged = True
            names = item.pair_values[wanted[0]]
            rows += [{"case": item.case_id, "setting": self.avg_setting(item), "target": AVG,
                      "metric": metric,
                      "value": float(np.mean([item.pair_values[p][metric] for p in wanted]))}
                     for metric in names]
        return rows + self.uptake_rows(prediction, item, setting)

    def uptake_rows(self, prediction: np.ndarray, item: PetCtItem,
                    setting: Setting) -> list[dict]:
        """Uptake errors (:mod:`xhbench.metrics.pet`) of the pair from this setting's source
        to the quantitative PET, when it is scored and the case is lesion-positive: both
        volumes back in SUV from the window (the prediction clipped to it first)."""
        target = self.channels[self.suv_key]
        lesions = getattr(item, "lesions", None)
        if (setting.id, target) not in self.pairs or lesions is None or not lesions.any():
            return []
        low, high = self.windows()[self.suv_key]
        channel = self.names.index(target)
        errors = metrics.pet.uptake_errors(
            from_window(np.clip(prediction[channel], 0.0, 1.0), low, high),
            from_window(item.reference[channel], low, high), lesions, item.spacing)
        return [{"case": item.case_id, "setting": self.row_setting(item, setting),
                 "target": f"{setting.id}->{target}", "metric": metric, "value": value}
                for metric, value in errors.items()]

    def pair_metrics(self, prediction: np.ndarray, reference: np.ndarray,
                     foreground: np.ndarray) -> dict[str, float]:
        if self.config.metric_protocol != "window":
            return super().pair_metrics(prediction, reference, foreground)
        pred = np.where(foreground, np.clip(prediction, 0.0, 1.0), 0.0).astype(np.float32)
        ref = np.where(foreground, reference, 0.0).astype(np.float32)
        return {"psnr": metrics.psnr(pred, ref, data_range=1.0, mask=foreground),
                "nmse": metrics.nmse(pred, ref, mask=foreground),
                "ssim": metrics.ssim(pred, ref, data_range=1.0, mask=foreground)}

    def conventions(self) -> dict[str, Any]:
        out = dict(super().conventions())
        if self.config.metric_protocol == "window":
            common = ("3D; protocol window: volumes in the normalisation window's [0, 1] units, "
                      "prediction clipped to [0, 1]; background (outside the body) set to 0.")
            out.update({
                "psnr": f"{common} PSNR over body voxels, data range 1.",
                "nmse": f"{common} NMSE = ||pred-ref||^2 / ||ref||^2 over body voxels.",
                "ssim": f"{common} {metrics.CONVENTIONS['ssim']} Data range 1; averaged over "
                        "body voxels of the valid interior.",
            })
        out["avg"] = (f"Target '{AVG}': per case, the mean of each metric over the scored "
                      f"pairs ({', '.join(f'{s}->{t}' for s, t in self.pairs)}); written "
                      "once all of the case's pairs are scored.")
        out["normalisation"] = self.normalisation_text()
        out["foreground"] = (f"body: CT > {self.config.body_hu:g} HU, holes filled per axial "
                             "slice (array axis 2), largest 3D connected component")
        suv = self.channels[self.suv_key]
        suv_max = self.config.suv_max
        out.update({name: f"Pairs with target {suv}, lesion-positive cases. SUV = window value "
                          f"x {suv_max:g} for both volumes (the prediction clipped to the window "
                          f"first; SUV above {suv_max:g} is clipped in both). {text}"
                    for name, text in metrics.pet.PET_CONVENTIONS.items()})
        return out

    def higher_is_better(self) -> dict[str, bool]:
        return {**super().higher_is_better(), **metrics.pet.PET_HIGHER_IS_BETTER}

    def normalisation_text(self) -> str:
        parts = []
        for key, name in self.channels.items():
            window = self.windows()[key]
            if window == "percentile":
                parts.append(f"{name}: [0, p{self.config.nac_percentile:g} within the body] "
                             "per case -> [0, 1], clipped")
            else:
                parts.append(f"{name}: [{window[0]:g}, {window[1]:g}] -> [0, 1], clipped")
        return "; ".join(parts)


_TABLE4_PAIRS = ["PET->PET", "CT->CT", "PET->CT", "CT->PET"]


@dataclass
class AutoPETTransferConfig(PetCtConfig):
    pairs: str = ",".join(_TABLE4_PAIRS)
    metric_protocol: Literal["window", "paper", "brasyn"] = "window"


class AutoPETTransfer(PetCtSynthesisTask):
    name = "autopet_transfer"
    version = 2  # 2: quantitative PET (uptake errors) per lesion-positive case
    dataset = "autopet"
    test_split = "test"
    channels: ClassVar[Mapping[str, str]] = {"suv": "PET", "ct": "CT"}
    Config = AutoPETTransferConfig
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "smoke": {"phantom_size": 32, "phantom_train": 3, "phantom_test": 2},
        "default": {},
        "paper": {},
    }
    tables: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "table4": {
            "title": "Table 4: AutoPET-II modality transfer, SSIM and PSNR per transfer and "
                     "their average; mean ± std across cases",
            "layout": "per_target", "metric": ["ssim", "psnr"],
            "targets": [*_TABLE4_PAIRS, AVG], "scale": 1, "std_ddof": 0,
            "reported": {"file": "table04_autopet_transfer_ablation.csv",
                         "target_column": "transfer",
                         "targets": {t: t for t in [*_TABLE4_PAIRS, AVG]},
                         "label": "ours + {config} (pre-training ID {config_id})"},
            "note": "The paper's Table 4 holds only its own method under six pre-training "
                    "configurations (rows named by Table 7's ID and the constraints used; the "
                    "paper's column order is assumed to be Table 7's IDs 1-6). Its "
                    "normalisation and data range are not stated; xhbench's window protocol "
                    "is in the run record.",
        },
        "uptake": {
            "title": "Quantitative PET of the synthesized PET: relative errors of SUVmax, "
                     "SUVmean, SUVpeak, MTV and TLG in the reference lesions (lesion-positive "
                     "cases); mean ± std across cases",
            "layout": "per_target", "metric": list(UPTAKE_COLUMNS), "targets": ["CT->PET"],
            "scale": 1, "std_ddof": 0,
            "note": "Not in the paper. MTV: voxels >= 41% of each lesion's SUVmax; the SUV "
                    ">= 2.5 alternatives are in the plain leaderboard (see docs/metrics.md).",
        },
    }
