"""NAC-PET -> AC-PET and NAC-PET -> CT, tuned on HNSCC, tested on HNSCC and NSCLC (Table 6).

Paper: "Personalize to generalize" (Section 5.3, Table 6): models are tuned on TCIA's
head-and-neck HNSCC collection and evaluated on its validation split and on the lung NSCLC
collection, a different anatomy, field of view and scanner population (domain shift).
Metrics SSIM and PSNR for NAC->CT and NAC->AC and their average ("Avg.").

**Data and splits.** Trains on ``hnscc`` ``train``; evaluates on two sets, kept apart in the
results by the rows' ``setting``: ``HNSCC validation`` (``hnscc`` ``val``: a per-patient hash
split, 80/20; see :mod:`xhbench.datasets.tcia_petct`) and ``NSCLC`` (every ``nsclc`` case;
never trained or tuned on). The NSCLC root is ``nsclc_root``; without it a phantom HNSCC run
uses the NSCLC phantom (``phantom_test`` cases, same seed and size) from the same cache, and
a real HNSCC root is an error (pass ``--set nsclc_root=DIR`` or ``evaluate_on=hnscc``).
``max_test_cases`` (``--limit``) caps each evaluation set. NSCLC cases are read with the
HNSCC data set's reader (the two layouts are the same: ``<case>/{nac_pet,ac_pet,ct}``); a
case id found in both sets is an error.

Channels, in order: ``NAC`` (NAC-PET), ``AC`` (AC-PET, SUV), ``CT`` (HU, on the PET grid).
The one setting is the source ``NAC``; the method predicts every channel from NAC-PET alone
and the pairs ``NAC->CT`` and ``NAC->AC`` are scored; each case also gets ``Avg.`` rows, their
mean (see :mod:`xhbench.tasks.autopet_transfer`).

**Normalisation** (xhbench's choice; the paper gives none): AC-PET SUV clipped to [0, 20] and
CT to [-1000, 1000] HU, each mapped to [0, 1]; NAC-PET is not quantitative (an order of
magnitude below AC-PET in the body centre, scanner dependent), so each case's NAC-PET is
divided by its 99.5th percentile within the body (``nac_percentile``) and clipped to [0, 1].
Foreground = body from the CT (> -500 HU, holes filled per axial slice, largest component).
Metric protocol ``window`` as in :mod:`xhbench.tasks.autopet_transfer`.

**Pre-training.** The paper pre-trains on AutoPET-II AC-PET and CT before tuning here;
xhbench's pre-training corpus for this task is, for now, the HNSCC training split (AutoPET has
no NAC-PET channel).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from ..datasets.base import Case, Dataset, Volume
from ..errors import ConfigError, DataError
from ..options import option
from .autopet_transfer import AVG, UPTAKE_COLUMNS, PetCtConfig, PetCtItem, PetCtSynthesisTask
from .base import DataSource, Setting

__all__ = ["EVAL_SETS", "HNSCCNSCLCTransfer"]

HNSCC_VAL = "HNSCC validation"
NSCLC_SET = "NSCLC"
#: evaluation set -> (data set, split); the names are Table 6's block labels
EVAL_SETS = {HNSCC_VAL: ("hnscc", "val"), NSCLC_SET: ("nsclc", "test")}
_PAIRS = [("NAC", "CT"), ("NAC", "AC")]  # Table 6's column order


@dataclass
class HNSCCNSCLCTransferConfig(PetCtConfig):
    phantom_val: int = 4
    phantom_test: int = 4  # NSCLC phantom cases (HNSCC has no test split)
    evaluate_on: Literal["both", "hnscc", "nsclc"] = "both"
    nsclc_root: str | None = None
    metric_protocol: Literal["window", "paper", "brasyn"] = "window"
    nac_percentile: float = option(99.5, gt=0, le=100)

    def validate(self) -> None:
        super().validate()
        if self.nsclc_root is not None and not Path(self.nsclc_root).is_dir():
            raise ConfigError(f"option nsclc_root={self.nsclc_root}: not a folder")


TABLE6 = {
    "title": "Table 6: NAC-PET -> CT / AC-PET, tuned on HNSCC; one block per evaluation set, "
             "SSIM and PSNR per transfer and their average; mean ± std across cases",
    "layout": "blocks", "metric": ["ssim", "psnr"], "scale": 1, "std_ddof": 0,
    "targets": ["NAC->CT", "NAC->AC", AVG], "columns": [HNSCC_VAL, NSCLC_SET],
    "reported": {"file": "table06_hnscc_nsclc_transfer.csv", "target_column": "transfer",
                 "targets": {"NAC->CT": "NAC->CT", "NAC->AC": "NAC->AC", AVG: AVG},
                 "group_column": "eval_set"},
}


class HNSCCNSCLCTransfer(PetCtSynthesisTask):
    name = "hnscc_nsclc_transfer"
    version = 2  # 2: quantitative PET (uptake errors) per lesion-positive case
    dataset = "hnscc"
    extra_datasets: ClassVar[Mapping[str, str]] = {"nsclc": "nsclc"}
    test_split = "val"  # the HNSCC part; NSCLC's cases are added by test_cases()
    channels: ClassVar[Mapping[str, str]] = {"nac_pet": "NAC", "ac_pet": "AC", "ct": "CT"}
    suv_key: ClassVar[str] = "ac_pet"
    Config = HNSCCNSCLCTransferConfig
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "smoke": {"phantom_size": 32, "phantom_train": 3, "phantom_val": 2, "phantom_test": 2},
        "default": {},
        "paper": {},
    }
    tables: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "table6": TABLE6,
        "uptake": {
            "title": "Quantitative PET of the synthesized AC-PET (NAC->AC): relative errors of "
                     "SUVmax, SUVmean, SUVpeak, MTV and TLG in the reference lesions "
                     "(lesion-positive cases with a lesion mask); one block per evaluation set",
            "layout": "blocks", "metric": list(UPTAKE_COLUMNS), "targets": ["NAC->AC"],
            "columns": [HNSCC_VAL, NSCLC_SET], "scale": 1, "std_ddof": 0,
            "note": "Not in the paper. Real TCIA conversions carry no lesion mask (seg.nii.gz "
                    "is optional), so their cases have no uptake rows.",
        },
    }

    def __init__(self, config: Any, data: Dataset,
                 extra_data: Mapping[str, Dataset] | None = None):
        super().__init__(config, data, extra_data)
        self._sets: dict[str, list[Case]] | None = None
        self._set_of: dict[str, str] = {}

    @staticmethod
    def phantom_params(config: Any) -> dict[str, Any]:
        """The HNSCC phantom (train and val only; ``phantom_test`` sizes the NSCLC phantom)."""
        return {"seed": config.phantom_seed, "size": config.phantom_size,
                "cases_per_split": {"train": config.phantom_train, "val": config.phantom_val}}

    @classmethod
    def data_source(cls, config: Any, role: str,
                    roots: Mapping[str, Path | None]) -> DataSource | None:
        """NSCLC: ``nsclc_root``, or beside a phantom HNSCC the NSCLC phantom
        (``phantom_test`` cases, same seed and size); not read for ``evaluate_on=hnscc``
        nor beside a real HNSCC root without ``nsclc_root`` (:meth:`nsclc_data` says so)."""
        if role != "nsclc":
            return super().data_source(config, role, roots)
        if config.evaluate_on == "hnscc":
            return None
        phantom = {"seed": config.phantom_seed, "size": config.phantom_size,
                   "cases_per_split": {"test": config.phantom_test}}
        if config.nsclc_root:
            return DataSource(Path(config.nsclc_root), phantom)
        return DataSource(None, phantom) if roots.get("main") is None else None

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(_PAIRS)

    def windows(self) -> Mapping[str, tuple[float, float] | str]:
        return {**super().windows(), "nac_pet": "percentile"}

    # -- evaluation sets ---------------------------------------------------------------------
    def nsclc_data(self) -> Dataset:
        """The NSCLC data set the runner opened (see :meth:`data_source`)."""
        if "nsclc" not in self.extra_data:
            raise ConfigError(
                "hnscc_nsclc_transfer also evaluates on NSCLC: pass --set nsclc_root=DIR (a "
                "converted NSCLC root or an nsclc phantom), or --set evaluate_on=hnscc")
        return self.extra_data["nsclc"]

    def evaluation_sets(self) -> dict[str, list[Case]]:
        """Evaluation set name -> its cases (each capped at ``max_test_cases``)."""
        if self._sets is None:
            sets: dict[str, list[Case]] = {}
            if self.config.evaluate_on in ("both", "hnscc"):
                sets[HNSCC_VAL] = self.data.cases(self.test_split)
            if self.config.evaluate_on in ("both", "nsclc"):
                sets[NSCLC_SET] = self.nsclc_data().cases("test")
            set_of: dict[str, str] = {}
            for name, cases in sets.items():
                sets[name] = cases = self._limit(cases, self.config.max_test_cases)
                for case in cases:
                    if case.case_id in set_of:
                        raise DataError(f"case id in both {set_of[case.case_id]} and {name}",
                                        case=case.case_id)
                    set_of[case.case_id] = name
            self._sets, self._set_of = sets, set_of
        return self._sets

    def test_cases(self) -> list[Case]:
        return [case for cases in self.evaluation_sets().values() for case in cases]

    def evaluation_split(self) -> str:
        """The evaluated sets as ``data set:split``, e.g. ``hnscc:val + nsclc:test``."""
        return " + ".join(f"{dataset}:{split}" for dataset, split in EVAL_SETS.values()
                          if self.config.evaluate_on in ("both", dataset))

    def prepare(self, volume: Volume) -> PetCtItem:
        item = super().prepare(volume)
        self.evaluation_sets()
        if volume.case_id not in self._set_of:
            raise DataError("case is in no evaluation set of this task", case=volume.case_id)
        item.eval_set = self._set_of[volume.case_id]
        return item

    def row_setting(self, item: PetCtItem, setting: Setting) -> str:
        return item.eval_set or setting.id

    def avg_setting(self, item: PetCtItem) -> str:
        return item.eval_set or "all"

    def conventions(self) -> dict[str, Any]:
        return {
            **super().conventions(),
            "evaluation_sets": (
                f"rows' setting = evaluation set: '{HNSCC_VAL}' (hnscc split val) and "
                f"'{NSCLC_SET}' (nsclc split test, domain shift); evaluate_on = "
                f"{self.config.evaluate_on}; input NAC-PET only; trained on hnscc train"),
        }
