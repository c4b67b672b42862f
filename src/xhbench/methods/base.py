"""The method contract: build from a config and a task spec, fit, predict.

A method never reads files or computes metrics: the runner gives it training
samples built by the task and one prepared volume at a time to predict.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from ..tasks.base import TaskSpec
from ..training.budget import Budget, PlannedStage

__all__ = ["Method"]


class Method(ABC):
    """Base class of methods.

    Class attributes:
        name: registry name. citation: the paper it implements.
        Config: dataclass of hyper-parameters; profiles: overrides for
        ``smoke`` / ``default`` / ``paper``.
        handles_missing: True when the method copes with missing modalities
        itself; otherwise the task zero-fills missing input channels.
        pretrains: True when the runner must call :meth:`pretrain` before
        :meth:`fit`; the pre-trained state is cached by :meth:`pretraining_key`.
        roi_multiple: the spatial divisibility the network needs of :attr:`roi`.
        trains_on_whole_cases: True when :meth:`fit` takes the training split as whole
            cases (:class:`~xhbench.tasks.base.WholeCases`) and samples itself (the
            nnU-Net package); otherwise it gets the task's random crops.

    Config must have ``roi``, the training crop (:attr:`roi`), unless the method trains
    on whole cases.
    """

    name: ClassVar[str]
    citation: ClassVar[str] = ""
    Config: ClassVar[type]
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    handles_missing: ClassVar[bool] = False
    pretrains: ClassVar[bool] = False
    roi_multiple: ClassVar[int] = 1
    trains_on_whole_cases: ClassVar[bool] = False

    def __init__(self, config: Any, spec: TaskSpec, device: Any):
        self.config = config
        self.spec = spec
        self.device = device

    @property
    def roi(self) -> tuple[int, ...]:
        """The size of the training crops the task cuts for :meth:`fit` and
        :meth:`pretrain` (the config's ``roi``)."""
        return tuple(self.config.roi)

    @classmethod
    def check_installed(cls) -> None:
        """Raise :class:`~xhbench.errors.UsageError` naming the install command when an
        optional package the method needs is missing (checked before a run starts)."""

    @classmethod
    def trains_distributed(cls) -> bool:
        """True when :meth:`fit` trains data-parallel under torchrun (one process per
        device, gradients averaged); otherwise the runner refuses ``--nproc``."""
        return False

    def pretrain(self, data: Any, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        """Self-supervised pre-training on crops with every modality (methods that
        set ``pretrains``); the state it leaves is what :meth:`state_dict` returns."""
        raise TypeError(f"{type(self).__name__} sets pretrains but defines no pretrain()")

    def pretraining_key(self) -> dict[str, Any]:
        """What the pre-trained state depends on (default: the whole config)."""
        import dataclasses

        return dataclasses.asdict(self.config)

    @abstractmethod
    def fit(self, train_data: Any, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        """Train on the task's samples; return a short history for the run log."""

    @abstractmethod
    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        """Predict one whole preprocessed volume ``(C, X, Y, Z)``.

        Returns class indices ``(X, Y, Z)`` for segmentation, or target
        channels ``(T, X, Y, Z)`` for synthesis.
        """

    def predict_settings(self, images: Sequence[np.ndarray],
                         availables: Sequence[tuple[bool, ...]]) -> list[np.ndarray]:
        """Predict one case under several settings: ``images[i]`` is the input for
        ``availables[i]`` (as :meth:`predict` takes it: zero-filled by the task unless the
        method handles missing modalities, in which case every item is the same array).

        Returns one prediction per setting, each what ``predict(images[i], availables[i])``
        returns. The default calls :meth:`predict` once per setting; methods override it
        to share work across settings (one batch through the network, each modality
        encoded once). ``images`` may be a lazy sequence: index it, do not keep it.
        """
        if len(images) != len(availables):
            raise ValueError(f"predict_settings got {len(images)} inputs for "
                             f"{len(availables)} settings")
        return [self.predict(images[i], tuple(available))
                for i, available in enumerate(availables)]

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to predict again after :meth:`load_state_dict`."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def diagnostics(self) -> dict[str, Any]:
        """Numbers about how the trained model works, recorded after evaluation in
        ``summary.json["diagnostics"]`` and the run log (default: none)."""
        return {}

    def variant(self) -> str:
        """What this configuration switches on or off (e.g. an ablation row), recorded in
        ``summary.json["variant"]`` and shown in paper-shaped tables (default: empty)."""
        return ""

    @classmethod
    def training_plan(cls, config: Any) -> list[PlannedStage]:
        """The stages a training with ``config`` runs (steps, batch, crop), before it runs:
        what ``xhbench list methods --options`` and ``--dry-run`` show and the budget rule
        (docs/leaderboard.md) checks. Default: one stage of ``steps`` x ``batch_size``
        crops of ``roi``, after the runner's pre-training (``pretrain_steps`` x
        ``pretrain_batch_size``) for methods that set :attr:`pretrains`; methods with other
        stages, or none, override it. A config without ``steps`` plans nothing."""
        if getattr(config, "steps", None) is None:
            return []
        crop = tuple(config.roi)
        stages = [PlannedStage("train", config.steps, getattr(config, "batch_size", 1), crop)]
        if cls.pretrains:
            stages.insert(0, PlannedStage("pretrain", config.pretrain_steps,
                                          config.pretrain_batch_size, crop, extra=True,
                                          pretraining=True))
        return stages

    def parameter_count(self) -> int:
        """Number of trainable parameters (recorded as the run's cost)."""
        return 0

    @property
    def budget(self) -> Budget:
        """Optimisation steps and samples of training so far (the engine counts them;
        recorded as the run's cost)."""
        if "_budget" not in self.__dict__:
            self._budget = Budget()
        return self._budget

    def sampling_cost(self) -> dict[str, Any]:
        """What predicting cost beyond one network pass, for ``cost.json``'s ``sampling``
        (iterative samplers: sampling steps, network evaluations, ``seconds`` in
        :meth:`predict`); empty for one-pass methods."""
        return {}
