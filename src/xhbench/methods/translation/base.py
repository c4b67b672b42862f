"""The shared recipe of the translation methods: pairs, intensities, 2D/3D data, training
loop and inference.

**Pairs.** The published methods train one model per source -> target pair. So do we:
``pairs`` (default ``task``: the pairs the task scores, ``TaskSpec.pairs``; else ``all`` or
a list in the synthesis tasks' ``pairs`` syntax) names the pairs to train, and each pair gets its own networks (CycleGAN: one model per unordered
pair serves both directions; MS-SPADE-style: one switchable model serves every pair).
The task draws one source modality per training sample (``available``); a step trains
the models of the pairs whose source was drawn, on that sample's source channel and
target channel. ``predict`` gets the available source and returns every channel: the
trained pairs' outputs, and zeros (the z-score mean) for a pair that was not trained.

**Intensities.** The task's volumes are z-scored; the generators end in ``tanh``. Each
channel is divided by a scale (``intensity_scale``, or by default estimated at the start
of ``fit`` as the largest absolute foreground value of a few training crops) so that it
lies in [-1, 1]; outputs are multiplied back. Losses are computed in that [-1, 1] space,
so the published loss weights (e.g. pix2pix's lambda_L1 = 100) keep their meaning.

**2D and 3D.** 3D methods train on ``roi`` crops and predict with MONAI sliding windows
(Gaussian blending). 2D methods train on the axial slices of ``roi`` crops: ``roi`` is
(H, W, slices per crop), and each slice is one 2D sample; prediction runs the 2D
generator over every axial slice (2D sliding windows of ``infer_roi`` or H x W) and
stacks the slices back into a volume, as the paper states for its 2D methods.

Reconstruction losses exclude the background (``foreground`` mask); adversarial terms see
whole crops, as in the papers.
"""

from __future__ import annotations

from abc import abstractmethod

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import torch
from torch import nn

from ...errors import ConfigError
from ...options import option
from ...tasks.base import parse_pairs
from ..base import Method
from ...training.batches import StepBatches
from ...training.budget import PlannedStage
from ...training.engine import Engine, manual_backward
from ...training.engine import Stage as EngineStage

__all__ = ["PIX2PIX_PAPER_TRAINING", "SMOKE_SETTINGS", "ResnetGANConfig", "Stage",
           "TranslationConfig", "TranslationMethod", "TwoWayTranslationMethod", "linear_decay",
           "slicewise", "trained_pairs"]

log = logging.getLogger("xhbench")

#: What every translation method's smoke profile ends with: a quick intensity scale, no
#: progress bar, a log line every step.
SMOKE_SETTINGS = {"scale_samples": 2, "progress": False, "log_every": 1}

#: pix2pix's and CycleGAN's published training (one code base), for their paper profiles:
#: batch 1, Adam 2e-4 (0.5, 0.999), 100 epochs at constant lr + 100 of linear decay. One
#: epoch = one random axial slice (2D) or crop (3D) of each of the 1,251 BraTS 2023
#: training cases: 200 x 1,251 = 250,200 steps.
PIX2PIX_PAPER_TRAINING = {"batch_size": 1, "lr": 2e-4, "beta1": 0.5, "steps": 250200,
                          "decay_start": 0.5}


@dataclass
class TranslationConfig:
    roi: tuple[int, int, int] = option((64, 64, 4), ge=1)  # 3D: crop; 2D: (H, W, slices per crop)
    batch_size: int = option(1, ge=1)
    steps: int = option(400, ge=1)
    lr: float = option(2e-4, gt=0)
    lr_d: float | None = option(None, gt=0)  # discriminator learning rate; None: lr
    beta1: float = option(0.5, ge=0, lt=1)
    beta2: float = option(0.999, ge=0, lt=1)
    # fraction of steps at constant lr, then linear decay to 0
    decay_start: float = option(0.5, ge=0, le=1)
    # "task" (the pairs the task scores), "all" or "T1->T2,T2->FLAIR": the pairs to train,
    # one model each
    pairs: str = "task"
    intensity_scale: float | None = option(None, gt=0)  # None: estimated from training crops at fit
    scale_samples: int = option(8, ge=1)  # training crops drawn to estimate the intensity scale
    # sliding window; 2D uses (H, W); None: roi
    infer_roi: tuple[int, int, int] | None = option(None, ge=1)
    sw_overlap: float = option(0.25, ge=0, lt=1)
    sw_batch_size: int = option(4, ge=1)
    checkpoint_every: int = option(100, ge=0)  # steps between resumable training states; 0: never
    progress: bool = True
    log_every: int = option(50, ge=1)


@dataclass
class ResnetGANConfig(TranslationConfig):
    """The widths of a ResNet generator and a PatchGAN discriminator (CycleGAN's code base)."""

    ngf: int = option(64, ge=1)
    ndf: int = option(64, ge=1)
    n_blocks: int = option(9, ge=1)  # residual blocks (the paper: 9 at 256x256, 6 at 128x128)
    n_layers_d: int = option(3, ge=1)


@dataclass(frozen=True)
class Stage:
    """A phase of training with its own optimisers and schedule (e.g. ResViT's Res-CNN
    pre-training, then the full ResViT)."""

    name: str
    steps: int
    lr: float
    lr_d: float


def trained_pairs(text: str, spec, what: str = "pairs") -> list[tuple[str, str]]:
    """The pairs a translation method trains: ``"task"`` -> the pairs the task scores
    (``spec.pairs``; every pair when the spec names none), else :func:`parse_pairs`
    (``what`` names the text in its error)."""
    names = tuple(spec.out_channels)
    if text.strip().lower() != "task":
        return parse_pairs(text, names, what)
    return [tuple(pair) for pair in spec.pairs] or parse_pairs("all", names)


def linear_decay(step: int, total: int, decay_start: float) -> float:
    """pix2pix's schedule as a factor: 1 for the first ``decay_start`` of the steps, then
    linearly down towards 0 (``1 - (step - start) / (total - start + 1)``)."""
    start = round(decay_start * total)
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / float(total - start + 1))


class TranslationMethod(Method):
    """Base of the translation methods; subclasses build the per-pair models and the step.

    Subclass hooks: ``dims`` (2 or 3), ``divisor`` (spatial divisibility the generator
    needs), :meth:`build_model`, :meth:`model_key`, :meth:`translate` (the generator in
    [-1, 1] space), :meth:`make_optimizers`, :meth:`train_step`,
    :meth:`reconstruction_term`; optionally :meth:`stages`, :meth:`on_stage` and
    :meth:`step_state`.
    """

    dims: ClassVar[int] = 2
    Config = TranslationConfig

    def __init__(self, config: Any, spec, device: Any):
        super().__init__(config, spec, device)
        if spec.kind != "synthesis":
            raise ConfigError(f"{self.name} is a translation method: it needs a synthesis task")
        if tuple(spec.in_channels) != tuple(spec.out_channels):
            raise ConfigError(f"{self.name}: input and output modalities must be the same")
        self.names = tuple(spec.out_channels)
        self.pairs = trained_pairs(config.pairs, spec, f"method {self.name} option pairs")
        self._check_sizes()
        self.models = nn.ModuleDict()
        for source, target in self.pairs:
            key = self.model_key(source, target)
            if key not in self.models:
                self.models[key] = self.build_model(source, target)
        self.models.to(self.device)
        scale = config.intensity_scale if config.intensity_scale is not None else 5.0
        self.scale = torch.full((len(self.names),), float(scale))
        self._warned: set[str] = set()

    # --- hooks ----------------------------------------------------------------------

    @property
    def divisor(self) -> int:
        return 1

    @property
    def min_crop(self) -> int:
        """Smallest training crop side the discriminators can judge (default 3 * 2^n_layers_d:
        a PatchGAN's last normalised layer needs more than one voxel)."""
        return 3 * 2 ** getattr(self.config, "n_layers_d", 0)

    @abstractmethod
    def build_model(self, source: str, target: str) -> nn.Module:
        """The generator(s) and discriminator(s) serving ``source -> target``."""

    def model_key(self, source: str, target: str) -> str:
        """The key of the model serving ``source -> target`` (default: one per pair)."""
        return f"{source}->{target}"

    def translate(self, key: str, source: str, target: str, x: torch.Tensor) -> torch.Tensor:
        """The generator of ``source -> target`` on a normalised batch (N, 1, *spatial)."""
        return self.models[key].generator(x)

    @abstractmethod
    def make_optimizers(self, key: str, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        """The optimisers of model ``key`` for a training stage."""

    def step_state(self, key: str) -> Mapping[str, Any]:
        """Named objects besides the optimisers that carry state from one training step of
        model ``key`` to the next (``state_dict`` / ``load_state_dict``), made by
        :meth:`make_optimizers`; they are saved in the resumable training state."""
        return {}

    @abstractmethod
    def train_step(self, key: str, source: str, target: str, x: torch.Tensor, y: torch.Tensor,
                   foreground: torch.Tensor, optimizers: Mapping[str, torch.optim.Optimizer]
                   ) -> dict[str, torch.Tensor]:
        """One update of the model ``key`` on normalised source ``x``, target ``y`` and mask
        (zero the gradients, :meth:`manual_backward`, step the optimisers); returns its
        loss terms as the optimisers see them (tensors, for the record): weighted, so that
        the terms of each loss it back-propagates add up to that loss (``D`` the
        discriminator's, the others the generator's)."""

    def reconstruction_term(self, source: str, target: str, x: torch.Tensor, y: torch.Tensor,
                            foreground: torch.Tensor) -> torch.Tensor:
        """The method's reconstruction loss on a normalised pair (eval mode, no grad): the
        masked L1 of the translation (CycleGAN overrides it with its cycle term)."""
        key = self.model_key(source, target)
        from .networks import masked_l1

        return masked_l1(self.translate(key, source, target, x), y, foreground)

    @classmethod
    def stages_of(cls, cfg: Any) -> list[Stage]:
        """The training stages ``cfg`` sets, in order (one by default)."""
        return [Stage("train", cfg.steps, cfg.lr, cfg.lr_d if cfg.lr_d is not None else cfg.lr)]

    def stages(self) -> list[Stage]:
        return self.stages_of(self.config)

    @classmethod
    def training_plan(cls, config: Any) -> list[PlannedStage]:
        """One planned stage per training stage, all of ``batch_size`` crops of ``roi``;
        every stage before the last is extra to the task's budget."""
        stages = [stage for stage in cls.stages_of(config) if stage.steps > 0]
        return [PlannedStage(stage.name, stage.steps, config.batch_size, tuple(config.roi),
                             extra=index < len(stages) - 1)
                for index, stage in enumerate(stages)]

    def on_stage(self, stage: Stage) -> None:
        """Called before a stage's first step."""

    def adam(self, modules, lr: float) -> torch.optim.Adam:
        """Adam with the config's betas over the parameters of ``modules``."""
        params = [p for module in modules for p in module.parameters()]
        return torch.optim.Adam(params, lr=lr, betas=(self.config.beta1, self.config.beta2))

    # --- checks ---------------------------------------------------------------------

    def _check_sizes(self) -> None:
        cfg = self.config
        if len(cfg.roi) != 3:
            raise ConfigError(f"{self.name}: roi needs three sizes")
        windows = [("roi", cfg.roi)] + ([("infer_roi", cfg.infer_roi)] if cfg.infer_roi else [])
        for option, sizes in windows:
            spatial = tuple(sizes[: self.dims])
            if any(size % self.divisor for size in spatial):
                raise ConfigError(f"{self.name}: {option} {tuple(sizes)}: the first {self.dims} "
                                  f"sizes must be divisible by {self.divisor}")
        if any(size < self.min_crop for size in cfg.roi[: self.dims]):
            raise ConfigError(f"{self.name}: roi {tuple(cfg.roi)} is too small for the "
                              f"discriminator: at least {self.min_crop} per side")

    # --- data -----------------------------------------------------------------------

    def to_model_space(self, volume: torch.Tensor) -> torch.Tensor:
        """(N, 1, X, Y, Z) crops -> 3D: unchanged; 2D: (N*Z, 1, X, Y) axial slices."""
        if self.dims == 3:
            return volume
        n, c, x, y, z = volume.shape
        return volume.permute(0, 4, 1, 2, 3).reshape(n * z, c, x, y)

    def normalise(self, volume: torch.Tensor, channel: int) -> torch.Tensor:
        return (volume / self.scale[channel]).clamp(-1.0, 1.0)

    @staticmethod
    def _sources(available: torch.Tensor) -> torch.Tensor:
        available = torch.as_tensor(available).bool()
        if available.dim() == 1:
            available = available[None]
        if (available.sum(dim=1) != 1).any():
            raise ConfigError("translation methods take exactly one source modality per "
                              "sample; the task made several (or none) available")
        return available.float().argmax(dim=1)

    def estimate_scale(self, train_data) -> None:
        """Per channel, the largest absolute foreground value over a few training crops."""
        count = min(len(train_data), self.config.scale_samples)
        peaks = torch.zeros(len(self.names))
        for index in range(count):
            drawn = train_data[index]
            for sample in drawn if isinstance(drawn, (list, tuple)) else [drawn]:
                target = torch.as_tensor(np.asarray(sample["target"]), dtype=torch.float32)
                mask = torch.as_tensor(np.asarray(sample["foreground"])) > 0
                for channel in range(len(self.names)):
                    values = target[channel][mask[0]]
                    if values.numel():
                        peaks[channel] = max(peaks[channel], values.abs().max())
        self.scale = torch.where(peaks > 0, peaks, torch.ones_like(peaks))

    # --- training -------------------------------------------------------------------

    def fit(self, train_data, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        """Train the stages in turn in the engine (manual optimisation: :meth:`train_step`
        steps the optimisers); step numbers (and batches) run on across stages. The state
        (models, intensity scale, the stage's optimisers, schedules and :meth:`step_state`)
        is saved in ``workdir`` every ``checkpoint_every`` steps and resumed from."""
        cfg = self.config
        engine = Engine(self.name, self.device, workdir, log, budget=self.budget,
                        checkpoint_every=cfg.checkpoint_every, log_every=cfg.log_every)
        done = engine.resume(method=self)  # models and intensity scale at the stop
        if cfg.intensity_scale is None and not done:
            self.estimate_scale(train_data)
        log(f"{self.name}: {len(self.models)} model(s) for {len(self.pairs)} pair(s); "
            f"intensity scale per channel "
            f"{dict(zip(self.names, (round(float(s), 3) for s in self.scale)))}")
        batches = StepBatches(train_data, cfg.batch_size)  # batch = f(seed, step)
        targets_of: dict[str, list[str]] = {}
        for source, target in self.pairs:
            targets_of.setdefault(source, []).append(target)
        history: dict[str, Any] = {"steps": 0, "resumed_at": done, "updates": {}, "first": {},
                                   "last": {}}
        for stage in self.stages():
            if stage.steps <= 0:
                continue
            offset = history["steps"]
            history["steps"] += stage.steps
            self.on_stage(stage)
            optimizers = {key: self.make_optimizers(key, stage) for key in self.models}
            records = engine.run(self._engine_stage(stage, batches, offset, targets_of,
                                                    optimizers))
            for record in records:
                for pair, values in _per_pair(record).items():
                    history["first"].setdefault(pair, values)
                    history["last"][pair] = values
                    history["updates"][pair] = history["updates"].get(pair, 0) + 1
        self.models.eval()
        return history

    def _engine_stage(self, stage: Stage, batches: StepBatches, offset: int,
                      targets_of: Mapping[str, list[str]],
                      optimizers: Mapping[str, Mapping[str, torch.optim.Optimizer]]
                      ) -> EngineStage:
        """``stage`` as the engine runs it: every model's optimisers with pix2pix's linear
        decay, and its :meth:`step_state`, under ``model/name``."""
        decay = functools.partial(linear_decay, total=stage.steps,
                                  decay_start=self.config.decay_start)
        flat = {f"{key}/{name}": opt for key, opts in optimizers.items()
                for name, opt in opts.items()}
        return EngineStage(
            stage.name, stage.steps, batches,
            lambda batch, step: self._step(batch, targets_of, optimizers),
            optimizers=flat,
            schedules={f"{name}/lr": torch.optim.lr_scheduler.LambdaLR(opt, decay)
                       for name, opt in flat.items()},
            state={f"{key}/{name}": part for key in optimizers
                   for name, part in self.step_state(key).items()},
            model=self.models, manual=True, offset=offset)

    def manual_backward(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` in :meth:`train_step` (through the engine)."""
        manual_backward(loss)

    def _step(self, batch: Mapping[str, Any], targets_of: Mapping[str, list[str]],
              optimizers: Mapping[str, Mapping[str, torch.optim.Optimizer]]
              ) -> dict[str, torch.Tensor]:
        """One update of the models of the pairs whose source the batch holds; their loss
        terms as ``pair/term``."""
        device = self.device
        image = torch.as_tensor(batch["image"]).to(device, torch.float32)
        target = torch.as_tensor(batch["target"]).to(device, torch.float32)
        foreground = torch.as_tensor(batch["foreground"]).to(device, torch.float32)
        sources = self._sources(batch["available"])
        terms: dict[str, torch.Tensor] = {}
        for s_index in sources.unique().tolist():
            source = self.names[s_index]
            rows = (sources == s_index).nonzero().flatten().to(device)
            x = self.to_model_space(self.normalise(image[rows, s_index:s_index + 1], s_index))
            fg = self.to_model_space(foreground[rows])
            for target_name in targets_of.get(source, []):
                t_index = self.names.index(target_name)
                y = self.to_model_space(self.normalise(target[rows, t_index:t_index + 1],
                                                        t_index))
                key = self.model_key(source, target_name)
                losses = self.train_step(key, source, target_name, x, y, fg, optimizers[key])
                terms.update({f"{source}->{target_name}/{name}": value.detach()
                              for name, value in losses.items()})
        return terms

    # --- inference ------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        self.models.eval()
        s_index = int(self._sources(torch.as_tensor(available))[0])
        source = self.names[s_index]
        volume = torch.as_tensor(image[s_index][None, None], dtype=torch.float32,
                                 device=self.device)
        x = self.normalise(volume, s_index)
        out = np.zeros((len(self.names), *image.shape[1:]), dtype=np.float32)
        trained = {t for s, t in self.pairs if s == source}
        for t_index, target in enumerate(self.names):
            if target not in trained:
                scored = not self.spec.pairs or (source, target) in self.spec.pairs
                if scored and f"{source}->{target}" not in self._warned:
                    self._warned.add(f"{source}->{target}")
                    log.warning("%s: pair %s->%s was not trained (pairs=%s); its channel is 0",
                                self.name, source, target, self.config.pairs)
                continue
            key = self.model_key(source, target)

            def generator(batch, key=key, target=target):
                return self.translate(key, source, target, batch)

            y = self._infer(generator, x)
            out[t_index] = (y[0, 0] * self.scale[t_index]).float().cpu().numpy()
        return out

    def _window(self) -> tuple[int, ...]:
        roi = self.config.infer_roi or self.config.roi
        return tuple(roi[: self.dims])

    def _infer(self, generator: Callable[[torch.Tensor], torch.Tensor],
               x: torch.Tensor) -> torch.Tensor:
        from monai.inferers import sliding_window_inference

        cfg = self.config
        if self.dims == 2:
            return slicewise(generator, x, self._window(), overlap=cfg.sw_overlap,
                             batch_size=cfg.sw_batch_size)
        return sliding_window_inference(x, roi_size=self._window(), sw_batch_size=cfg.sw_batch_size,
                                        predictor=generator, overlap=cfg.sw_overlap,
                                        mode="gaussian")

    # --- state ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"models": self.models.state_dict(), "scale": self.scale.tolist(),
                "pairs": [list(pair) for pair in self.pairs]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pairs = [tuple(pair) for pair in state.get("pairs", self.pairs)]
        if pairs != [tuple(pair) for pair in self.pairs]:
            raise ConfigError(f"{self.name}: checkpoint trained pairs {pairs}, config has "
                              f"{self.pairs}")
        self.models.load_state_dict(state["models"])
        self.scale = torch.as_tensor(state["scale"], dtype=torch.float32)

    def parameter_count(self) -> int:
        """Trainable parameters of every network trained (generators, discriminators and,
        for RegGAN, the registration network) over all pair models."""
        return sum(p.numel() for p in self.models.parameters() if p.requires_grad)


def _per_pair(record: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """``{"pair/term": value}`` (the engine's record) as ``{pair: {term: value}}``."""
    pairs: dict[str, dict[str, float]] = {}
    for name, value in record.items():
        pair, _, term = name.rpartition("/")
        if pair:
            pairs.setdefault(pair, {})[term] = value
    return pairs


def slicewise(generator: Callable[[torch.Tensor], torch.Tensor], volume: torch.Tensor,
              window: tuple[int, int], *, overlap: float = 0.25,
              batch_size: int = 4) -> torch.Tensor:
    """Run a 2D generator over the axial slices of ``volume`` (1, C, X, Y, Z) and stack the
    outputs back into (1, C', X, Y, Z). Each slice is predicted with 2D sliding windows of
    ``window`` (Gaussian blending; windows larger than the slice are zero-padded)."""
    from monai.inferers import sliding_window_inference

    if volume.shape[0] != 1:
        raise ValueError("slicewise expects one volume")
    slices = volume[0].permute(3, 0, 1, 2)  # (Z, C, X, Y)
    outputs = []
    for start in range(0, slices.shape[0], max(batch_size, 1)):
        chunk = slices[start:start + max(batch_size, 1)]
        outputs.append(sliding_window_inference(chunk, roi_size=tuple(window),
                                                sw_batch_size=max(batch_size, 1),
                                                predictor=generator, overlap=overlap,
                                                mode="gaussian"))
    stacked = torch.cat(outputs, dim=0)  # (Z, C', X, Y)
    return stacked.permute(1, 2, 3, 0)[None]


class TwoWayTranslationMethod(TranslationMethod):
    """Unpaired methods with one model per unordered pair ``a<->b`` (CycleGAN, NICE-GAN): the
    model serves both directions; ``a`` is the earlier of the two in the task's order."""

    def model_key(self, source: str, target: str) -> str:
        a, b = sorted((source, target), key=self.names.index)
        return f"{a}<->{b}"

    def _domains(self, key: str) -> tuple[str, str]:
        a, _, b = key.partition("<->")
        return a, b
