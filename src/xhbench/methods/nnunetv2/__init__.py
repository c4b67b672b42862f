"""``nnunetv2``: the official nnU-Net v2 (Isensee et al., Nature Methods 2021) as a baseline.

Optional: ``pip install 'xhbench[nnunet]'``. :meth:`NNUNetV2Method.fit` runs nnU-Net the way a
user does, through its Python API, with ``nnUNet_raw`` / ``nnUNet_preprocessed`` /
``nnUNet_results`` pointed into ``<run folder>/nnunetv2``:

1. export the task's training split as nnU-Net's raw dataset (:mod:`.export`);
2. ``verify_dataset_integrity``, fingerprint extraction, ``ExperimentPlanner`` planning and
   preprocessing of the chosen configuration (``3d_fullres``);
3. training with :class:`~.trainer.XhbenchTrainer` (nnU-Net's ``nnUNetTrainer`` with the
   profile's epoch count and length and the task's availability draw), on fold ``all`` (every
   training case; nnU-Net's pseudo-validation runs on the same cases), continuing from
   nnU-Net's own ``checkpoint_latest.pth`` / ``checkpoint_final.pth`` when the run resumes.

:meth:`predict` runs nnU-Net's ``nnUNetPredictor`` (its preprocessing, sliding window with
Gaussian weighting, mirroring if enabled, and export back to the input grid) on the
preprocessed test volume the runner hands every method, so the task scores it like any row.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping

import numpy as np

from ...errors import UsageError
from ...options import option
from ...tasks.base import TaskSpec, WholeCases
from ...training.budget import PlannedStage
from ..base import Method

__all__ = ["INSTALL", "NNUNetV2Method", "nnunet_environment"]

INSTALL = "pip install 'xhbench[nnunet]'"
"""The command that installs nnU-Net v2 for this method."""


@dataclass
class NNUNetV2Config:
    epochs: int = option(1000, ge=1)  # nnU-Net's num_epochs
    iterations_per_epoch: int = option(250, ge=1)  # nnU-Net's num_iterations_per_epoch
    # nnU-Net's pseudo-validation batches per epoch
    val_iterations_per_epoch: int = option(50, ge=0)
    save_every: int = option(50, ge=1)  # epochs between nnU-Net's checkpoint_latest.pth
    configuration: Literal["3d_fullres", "2d"] = "3d_fullres"
    mirroring: bool = True  # nnU-Net's test-time mirroring (8 passes in 3D)
    tile_step_size: float = option(0.5, gt=0, le=1)
    # nnU-Net's worker processes (preprocessing; augmentation if > 0)
    processes: int = option(1, ge=1)
    # nnUNet_n_proc_DA; 0 = augment in the main process
    augmentation_processes: int = option(0, ge=0)
    # None: the planner's batch size (sized for a GPU: 26 on the 48^3 phantom); an int
    # replaces it in the plans, as nnU-Net users edit plans for small machines
    batch_size: int | None = option(None, ge=1)


def require_nnunetv2() -> None:
    """Raise UsageError naming the install command unless nnunetv2 is importable."""
    try:
        import nnunetv2  # noqa: F401
    except ImportError:
        raise UsageError(f"method nnunetv2 needs the nnU-Net v2 package: {INSTALL}") from None


@contextlib.contextmanager
def nnunet_environment(root: Path) -> Iterator[dict[str, Path]]:
    """nnU-Net's folders under ``root`` (its ``nnUNet_*`` variables, read by nnunetv2 at
    use), set for the duration and restored afterwards, as is ``nnUNet_n_proc_DA`` (1 here:
    the planner sets torch's thread count from it; training sets its own value)."""
    paths = {name: Path(root) / name
             for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    values = {**{k: str(v) for k, v in paths.items()},
              "nnUNet_n_proc_DA": "1"}
    saved = {k: os.environ.get(k) for k in values}
    for path in paths.values():
        path.mkdir(parents=True, exist_ok=True)
    os.environ.update(values)
    try:
        yield paths
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class NNUNetV2Method(Method):
    """The nnU-Net v2 package, planned, trained and run by nnU-Net itself."""

    name = "nnunetv2"
    citation = ("Isensee et al., nnU-Net: a self-configuring method for deep learning-based "
                "biomedical image segmentation, Nature Methods 18, 2021")
    Config = NNUNetV2Config
    trains_on_whole_cases = True
    profiles = {
        "smoke": {"epochs": 1, "iterations_per_epoch": 2, "val_iterations_per_epoch": 1,
                  "save_every": 1, "mirroring": False, "batch_size": 2},
        "default": {"epochs": 24, "iterations_per_epoch": 25, "val_iterations_per_epoch": 2,
                    "save_every": 1, "mirroring": False, "batch_size": 2},
        "paper": {},  # nnU-Net's own: 1000 epochs x 250 iterations, mirroring at test time
    }

    @classmethod
    def check_installed(cls) -> None:
        require_nnunetv2()

    @classmethod
    def training_plan(cls, config: Any) -> list[PlannedStage]:
        """``epochs`` x ``iterations_per_epoch`` steps of nnU-Net's batch (``batch_size``;
        the planner's when None, shown as 0) of the patch nnU-Net plans (no crop here)."""
        return [PlannedStage("train", config.epochs * config.iterations_per_epoch,
                             config.batch_size or 0, None)]

    def __init__(self, config: Any, spec: TaskSpec, device: Any):
        require_nnunetv2()
        super().__init__(config, spec, device)
        self._state: dict[str, Any] | None = None
        self._predictor = None

    def fit(self, train_data: WholeCases, workdir: Path, log: Callable[[str], None]) -> dict:
        from batchgenerators.utilities.file_and_folder_operations import load_json

        from .export import dataset_name

        cfg = self.config
        with nnunet_environment(Path(workdir) / "nnunetv2") as paths:
            name = dataset_name(self.spec.name)
            done = paths["nnUNet_preprocessed"] / name / "xhbench-preprocessed.done"
            if not done.exists():  # a run stopped before the end of preprocessing redoes it
                self._plan_and_preprocess(train_data, paths, log)
                done.touch()
            plans = load_json(str(paths["nnUNet_preprocessed"] / name / "nnUNetPlans.json"))
            if cfg.batch_size is not None:
                plans["configurations"][cfg.configuration]["batch_size"] = cfg.batch_size
            dataset_json = load_json(str(paths["nnUNet_preprocessed"] / name / "dataset.json"))
            trainer = self._trainer(train_data, plans, dataset_json, paths, log)
        losses = trainer.logger.local_logger.my_fantastic_logging
        self.budget.steps = trainer.current_epoch * trainer.num_iterations_per_epoch
        self.budget.samples = self.budget.steps * int(trainer.batch_size)
        self.load_state_dict({
            "network_weights": _plain_module(trainer.network).state_dict(),
            "plans": trainer.plans_manager.plans, "dataset_json": dataset_json,
            "configuration": cfg.configuration,
            "mirroring_axes": trainer.inference_allowed_mirroring_axes,
            "spacing": _median_spacing(paths["nnUNet_preprocessed"] / name),
        })
        return {"epochs": trainer.current_epoch,
                "iterations_per_epoch": trainer.num_iterations_per_epoch,
                "train_losses": [float(v) for v in losses.get("train_losses", [])],
                "pseudo_dice": [float(v) for v in losses.get("mean_fg_dice", [])],
                "patch_size": list(trainer.configuration_manager.patch_size),
                "batch_size": int(trainer.batch_size),
                "nnunet_results": str(trainer.output_folder)}

    def _plan_and_preprocess(self, train_data: WholeCases, paths: Mapping[str, Path],
                             log: Callable[[str], None]) -> None:
        """Export, check, fingerprint, plan and preprocess with nnU-Net's own API."""
        from nnunetv2.experiment_planning.plan_and_preprocess_api import (
            extract_fingerprints,
            plan_experiments,
            preprocess,
        )
        from nnunetv2.experiment_planning.verify_dataset_integrity import (
            verify_dataset_integrity,
        )

        from .export import DATASET_ID, export_raw_dataset

        n = self.config.processes
        log(f"nnunetv2: exporting {len(train_data)} training cases to {paths['nnUNet_raw']}")
        folder = export_raw_dataset(train_data, self.spec, paths["nnUNet_raw"])
        verify_dataset_integrity(str(folder), num_processes=n)
        log("nnunetv2: fingerprint, plan and preprocess (nnU-Net's ExperimentPlanner)")
        extract_fingerprints([DATASET_ID], num_processes=n, check_dataset_integrity=False,
                             clean=True, verbose=False, show_progress_bar=False)
        plan_experiments([DATASET_ID])
        preprocess([DATASET_ID], configurations=(self.config.configuration,), num_processes=[n],
                   show_progress_bar=False)

    def _trainer(self, train_data: WholeCases, plans: dict, dataset_json: dict,
                 paths: Mapping[str, Path], log: Callable[[str], None]):
        """Build xhbench's trainer and train, continuing from nnU-Net's own checkpoint."""
        import torch

        from .trainer import configured_trainer

        cfg = self.config
        masks = [s.available for s in train_data.settings]
        draw = train_data.zero_fill and any(not all(m) for m in masks)
        schedule = {"epochs": cfg.epochs, "iterations_per_epoch": cfg.iterations_per_epoch,
                    "val_iterations_per_epoch": cfg.val_iterations_per_epoch,
                    "save_every": cfg.save_every}
        trainer_cls = configured_trainer(schedule, masks if draw else None,
                                         seed=int(torch.initial_seed() % 2**32))
        output = (paths["nnUNet_results"] / plans["dataset_name"] /
                  f"{trainer_cls.__name__}__{plans['plans_name']}__{cfg.configuration}"
                  / "fold_all")
        checkpoint = next((output / f for f in ("checkpoint_final.pth", "checkpoint_latest.pth")
                           if (output / f).exists()), None)
        os.environ["nnUNet_n_proc_DA"] = str(cfg.augmentation_processes)  # restored on exit
        trainer = trainer_cls(plans={**plans, "continue_training": checkpoint is not None},
                              configuration=cfg.configuration, fold="all",
                              dataset_json=dataset_json, device=torch.device(self.device))
        if checkpoint is not None:
            trainer.load_checkpoint(str(checkpoint))
            log(f"nnunetv2: continuing from {checkpoint.name} at epoch {trainer.current_epoch}")
        if checkpoint is None or checkpoint.name != "checkpoint_final.pth":
            trainer.run_training()
        return trainer

    def _build(self, state: Mapping[str, Any]):
        """The network and nnU-Net's predictor for ``state``."""
        import torch
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
        from nnunetv2.utilities.label_handling.label_handling import (
            determine_num_input_channels,
        )
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        from .trainer import XhbenchTrainer

        plans = PlansManager(state["plans"])
        configuration = plans.get_configuration(state["configuration"])
        network = XhbenchTrainer.build_network_architecture(
            plans, configuration,
            determine_num_input_channels(plans, configuration, state["dataset_json"]),
            plans.get_label_manager(state["dataset_json"]).num_segmentation_heads,
            enable_deep_supervision=False)
        device = torch.device(self.device)
        predictor = nnUNetPredictor(tile_step_size=self.config.tile_step_size,
                                    use_gaussian=True, use_mirroring=self.config.mirroring,
                                    perform_everything_on_device=device.type == "cuda",
                                    device=device, verbose=False, allow_tqdm=False)
        predictor.manual_initialization(network.to(device), plans, configuration,
                                        [state["network_weights"]], state["dataset_json"],
                                        "XhbenchTrainer", state["mirroring_axes"])
        return predictor

    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        """nnU-Net's prediction of one preprocessed volume ``(C, X, Y, Z)`` (missing channels
        zero-filled by the task), as class indices on the same grid.

        The volume is handed to ``nnUNetPredictor.predict_single_npy_array`` in the axis
        order nnU-Net's NibabelIO reads the exported files in (reversed), at the median
        training spacing (methods get no spacing with the volume; exact whenever the
        training and test spacings agree, as on the phantoms and BraTS)."""
        if self._predictor is None:
            raise RuntimeError("nnunetv2: predict() before fit() or load_state_dict()")
        volume = np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(0, 3, 2, 1))
        properties = {"spacing": list(self._state["spacing"])[::-1]}
        segmentation = self._predictor.predict_single_npy_array(volume, properties)
        return np.asarray(segmentation).transpose(2, 1, 0).astype(np.int64)

    def state_dict(self) -> dict[str, Any]:
        if self._state is None:
            raise RuntimeError("nnunetv2: nothing trained yet")
        return dict(self._state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)
        self._predictor = self._build(self._state)

    def parameter_count(self) -> int:
        if self._predictor is None:
            return 0
        return sum(p.numel() for p in self._predictor.network.parameters() if p.requires_grad)


def _median_spacing(preprocessed: Path) -> list[float]:
    """The median training spacing in xhbench's axis order, from nnU-Net's fingerprint
    (which lists spacings in its reader's reversed order)."""
    import json

    fingerprint = json.loads((preprocessed / "dataset_fingerprint.json").read_text())
    return [float(v) for v in np.median(np.asarray(fingerprint["spacings"]), axis=0)[::-1]]


def _plain_module(network):
    """The network without a torch.compile wrapper (nnU-Net compiles on CUDA)."""
    return getattr(network, "_orig_mod", network)
