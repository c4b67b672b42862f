"""The shared recipe of the dedicated missing-modality methods (HeMIS, RFNet, mmFormer,
M2FTrans, ...): per-modality encoders, a fusion that sees only the available
modalities, and a training loop that feeds the task's drawn mask to the network.

Networks are called as ``network(image, available)`` with ``image`` (B, M, X, Y, Z)
and ``available`` (B, M) bool. In eval mode they return fused logits; in training
mode a dict of logits: ``"fuse"`` (the segmentation), optionally ``"deep"`` (coarser
fused predictions: deep supervision or RFNet's region probability maps) and
``"sep"`` (one prediction per modality from the segmentation-based regulariser).

Loss (RFNet ``train.py`` and its descendants): for each prediction, a cross-entropy
with per-sample class weights ``1 - (voxels of the class) / (voxels)`` plus a soft
Dice averaged over the classes (pooled over the batch); total =
``w_fuse * fuse + w_sep * sum over modalities + w_deep * sum over scales``, each
weight 1 in the papers, with the fused term switched off for the first
``fusion_warmup_steps`` (RFNet's ``region_fusion_start_epoch``).

Training runs in the engine (:mod:`xhbench.training.engine`): batches are a pure
function of seed and step; the training state is saved every ``checkpoint_every`` steps
and resumed from. Optimiser: Adam (amsgrad) with
weight decay 1e-4, lr ``lr * (1 - step/steps)^0.9`` (the "poly" schedule of the RFNet /
mmFormer / M2FTrans code). Inference: MONAI sliding windows of the training crop, 50%
overlap, softmax averaged with constant weights, argmax; missing channels are replaced
by zeros before the network sees them.

Several settings of one case (:meth:`MissingModalityMethod.predict_settings`): one
sliding-window pass over the case; in each window every modality is encoded once by
its encoder (``network.encoders[m]``) and the fusion and decoder run per subset on those
features, batched, all subsets' softmax maps stitched together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference

from ...errors import ConfigError
from ...options import option
from ..base import Method
from ..supervised import SETTINGS_BATCH_BYTES, SupervisedConfig, SupervisedMethod
from ...training.batches import StepBatches
from ...training.engine import Engine, Stage

__all__ = [
    "MissingConfig",
    "MissingModalityMethod",
    "segmentation_loss",
    "soft_dice_loss",
    "weighted_cross_entropy",
]


@dataclass
class MissingConfig(SupervisedConfig):
    channels: int = option(8, ge=1)  # width of the first encoder level; doubles per level
    levels: int = option(4, ge=1)  # encoder levels (the bottleneck is roi / 2^(levels-1))
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: Literal["adam", "adamw"] = "adam"
    amsgrad: bool = True
    schedule: Literal["poly", "warmup_cosine"] = "poly"
    poly_power: float = option(0.9, ge=0)
    grad_clip: float = 0.0  # 0: no clipping (the papers' code clips nothing)
    ce_weighting: Literal["inverse_frequency", "none"] = "inverse_frequency"
    w_fuse: float = option(1.0, ge=0)
    w_sep: float = option(1.0, ge=0)
    w_deep: float = option(1.0, ge=0)
    fusion_warmup_steps: int = option(0, ge=0)
    sep_on: Literal["all", "available"] = "all"  # modalities the regulariser trains on
    sw_mode: Literal["constant", "gaussian"] = "constant"
    amp: bool = False
    log_every: int = option(50, ge=1)


# --- losses --------------------------------------------------------------------------

def _one_hot(label: torch.Tensor, classes: int) -> torch.Tensor:
    return F.one_hot(label[:, 0].long(), classes).movedim(-1, 1).float()


def weighted_cross_entropy(logits: torch.Tensor, onehot: torch.Tensor,
                           weighting: str = "inverse_frequency") -> torch.Tensor:
    """Voxel-averaged cross-entropy; with ``inverse_frequency`` each sample's class c
    weighs ``1 - n_c / n`` (RFNet's ``softmax_weighted_loss``). Probabilities are
    clamped at 0.005 before the log, as in that code."""
    log_p = torch.log(F.softmax(logits.float(), dim=1).clamp(0.005, 1.0))
    if weighting == "none":
        return -(onehot * log_p).sum(dim=1).mean()
    spatial = tuple(range(2, onehot.ndim))
    fraction = onehot.sum(dim=spatial) / onehot.sum(dim=(1, *spatial)).clamp_min(1.0)[:, None]
    weight = (1.0 - fraction).reshape(*fraction.shape, *([1] * len(spatial)))
    return -(weight * onehot * log_p).sum(dim=1).mean()


def soft_dice_loss(logits: torch.Tensor, onehot: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """``1 - mean_c 2 sum(p_c y_c) / (sum p_c + sum y_c)``, sums over batch and voxels."""
    probs = F.softmax(logits.float(), dim=1)
    dims = (0, *range(2, onehot.ndim))
    overlap = (probs * onehot).sum(dim=dims)
    total = probs.sum(dim=dims) + onehot.sum(dim=dims)
    return 1.0 - (2.0 * overlap / (total + eps)).mean()


def segmentation_loss(logits: torch.Tensor, onehot: torch.Tensor,
                      weighting: str = "inverse_frequency") -> torch.Tensor:
    """Weighted CE + soft Dice; coarser logits are upsampled trilinearly to the label."""
    if logits.shape[2:] != onehot.shape[2:]:
        logits = F.interpolate(logits.float(), size=onehot.shape[2:], mode="trilinear",
                               align_corners=False)
    return weighted_cross_entropy(logits, onehot, weighting) + soft_dice_loss(logits, onehot)


# --- the method ------------------------------------------------------------------------

class MissingModalityMethod(SupervisedMethod):
    """A network of per-modality encoders and a masked fusion; see the module doc."""

    handles_missing = True
    Config = MissingConfig

    @property
    def roi_multiple(self) -> int:  # type: ignore[override]
        return 2 ** (self.config.levels - 1)

    def __init__(self, config: Any, spec, device: Any):
        if spec.kind != "segmentation":
            raise ConfigError(f"{self.name} segments; task kind {spec.kind!r} is not supported")
        if config.levels < 2:
            raise ConfigError(f"{self.name}: levels must be at least 2, got {config.levels}")
        super().__init__(config, spec, device)

    def widths(self) -> list[int]:
        """Encoder widths per level, shallow to deep."""
        return [self.config.channels * 2 ** level for level in range(self.config.levels)]

    def grid(self) -> tuple[int, ...]:
        """Bottleneck size per axis of a training crop (token grid of transformer fusion)."""
        return tuple(size // self.roi_multiple for size in self.config.roi)

    # training --------------------------------------------------------------------------

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer == "adam":
            return torch.optim.Adam(self.network.parameters(), lr=cfg.lr,
                                    weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad)
        return torch.optim.AdamW(self.network.parameters(), lr=cfg.lr,
                                 weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad)

    def _schedule(self, optimizer: torch.optim.Optimizer):
        cfg = self.config
        if cfg.schedule == "warmup_cosine":
            return super()._schedule(optimizer)
        total = max(cfg.steps, 1)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: max(1.0 - step / total, 0.0) ** cfg.poly_power)

    def loss_terms(self, batch: Mapping[str, Any], step: int | None = None
                   ) -> dict[str, torch.Tensor]:
        """The weighted loss and its parts on one batch (training-mode forward)."""
        return self.forward_terms(batch, step)[0]

    def forward_terms(self, batch: Mapping[str, Any], step: int | None = None
                      ) -> tuple[dict[str, torch.Tensor], Mapping[str, Any]]:
        """:meth:`loss_terms` and the network's output they came from, for subclasses
        whose extra terms read other outputs of the same forward pass."""
        cfg = self.config
        image = torch.as_tensor(batch["image"]).to(self.device, torch.float32)
        available = torch.as_tensor(batch["available"]).to(self.device, torch.bool)
        onehot = _one_hot(torch.as_tensor(batch["label"]).to(self.device),
                          len(self.spec.out_channels))
        with self._autocast():
            out = self.network(image, available)
        terms = {"fuse": segmentation_loss(out["fuse"], onehot, cfg.ce_weighting)}
        if out.get("deep"):
            terms["deep"] = sum(segmentation_loss(logits, onehot, cfg.ce_weighting)
                                for logits in out["deep"])
        if out.get("sep"):
            sep = []
            for m, logits in enumerate(out["sep"]):
                if cfg.sep_on == "available":
                    rows = available[:, m]
                    if not rows.any():
                        continue
                    logits, target = logits[rows], onehot[rows]
                else:
                    target = onehot
                sep.append(segmentation_loss(logits, target, cfg.ce_weighting))
            if sep:
                terms["sep"] = sum(sep)
        fuse_weight = 0.0 if step is not None and step < cfg.fusion_warmup_steps else cfg.w_fuse
        weights = {"fuse": fuse_weight, "deep": cfg.w_deep, "sep": cfg.w_sep}
        terms["loss"] = sum(weights[name] * value for name, value in terms.items())
        return terms, out

    def fit(self, train_data, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        cfg = self.config
        batches = StepBatches(train_data, cfg.batch_size)
        optimizer = self._optimizer()
        stage = Stage("train", cfg.steps, batches, self.loss_terms,
                      optimizers={"optimizer": optimizer},
                      schedules={"schedule": self._schedule(optimizer)},
                      model=self.network, grad_clip=cfg.grad_clip, amp=cfg.amp)
        engine = Engine(self.name, self.device, workdir, log, budget=self.budget,
                        checkpoint_every=cfg.checkpoint_every, log_every=cfg.log_every)
        start = engine.resume(network=self.network)
        history = engine.run(stage)
        return {"steps": cfg.steps, "resumed_at": start,
                "first_loss": history[0]["loss"] if history else None,
                "last_loss": history[-1]["loss"] if history else None,
                "last_terms": history[-1] if history else None}

    # inference -------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        cfg = self.config
        self.network.eval()
        mask = torch.as_tensor(np.asarray(available, dtype=bool), device=self.device)
        volume = torch.as_tensor(np.asarray(image, dtype=np.float32)[None], device=self.device)
        volume = torch.where(mask[None, :, None, None, None], volume, torch.zeros((), device=self.device))

        def predictor(window: torch.Tensor) -> torch.Tensor:
            with self._autocast():
                logits = self.network(window, mask[None].expand(window.shape[0], -1))
            return self.probabilities(logits)

        probs = sliding_window_inference(volume, roi_size=tuple(cfg.infer_roi or cfg.roi),
                                         sw_batch_size=cfg.sw_batch_size, predictor=predictor,
                                         overlap=cfg.sw_overlap, mode=cfg.sw_mode)
        return self.labels(probs)[0].cpu().numpy().astype(np.int64)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The maps that sliding windows average, from the network's logits: the class
        softmax (M3AE: its regions' sigmoids)."""
        return F.softmax(logits.float(), dim=1)

    def labels(self, probs: torch.Tensor) -> torch.Tensor:
        """Class indices (N, ...) from stitched class probabilities (N, C, ...): argmax."""
        return probs.argmax(dim=1)

    @torch.no_grad()
    def predict_settings(self, images: Sequence[np.ndarray],
                         availables: Sequence[tuple[bool, ...]]) -> list[np.ndarray]:
        """Predict one case under every modality subset in one sliding-window pass.

        Per window, each modality is encoded once (the network's ``encoders[m]`` on
        channel m) and the fusion and decoder run for the subsets in batches of
        ``max(1, sw_batch_size // windows)`` on the shared features: the encoders' work is
        done once instead of once per subset. The encoders see the full image; that
        equals :meth:`predict`'s zero-filled input because in eval mode a missing
        modality's features are zeroed before any fusion (``layers.mask_modalities``), so
        they cannot reach the output. Networks without per-modality ``encoders`` (M3AE's
        single U-Net) run the subsets as one batch of zero-filled windows instead.

        Equal to calling :meth:`predict` per setting up to the float rounding of the
        fusion and decoder run at another batch size (bit-identical when each subset is
        decoded alone, i.e. ``sw_batch_size`` no larger than the windows per pass).
        Settings are grouped so that the stitched maps stay within
        ``SETTINGS_BATCH_BYTES``.
        """
        if type(self).predict is not MissingModalityMethod.predict:
            return Method.predict_settings(self, images, availables)
        if len(images) != len(availables):
            raise ValueError(f"predict_settings got {len(images)} inputs for "
                             f"{len(availables)} settings")
        cfg = self.config
        self.network.eval()
        classes = len(self.spec.out_channels)  # maps per setting (M3AE: one fewer)
        predictions: list[np.ndarray] = []
        start = 0
        while start < len(availables):
            image = images[start]  # settings sharing one input array go together
            stop = start + 1
            while stop < len(availables) and images[stop] is image:
                stop += 1
            array = np.asarray(image, dtype=np.float32)
            per_setting = 4 * classes * array[0].size
            group = int(max(1, (SETTINGS_BATCH_BYTES - 4 * array.size) // max(per_setting, 1)))
            volume = self._to_device(array[None])
            for first in range(start, stop, group):
                chosen = range(first, min(stop, first + group))
                masks = torch.as_tensor(np.asarray([availables[i] for i in chosen], dtype=bool),
                                        device=self.device)
                probs = sliding_window_inference(
                    volume, roi_size=tuple(cfg.infer_roi or cfg.roi),
                    sw_batch_size=cfg.sw_batch_size, overlap=cfg.sw_overlap, mode=cfg.sw_mode,
                    predictor=lambda window, masks=masks: self._subset_probabilities(window,
                                                                                     masks))
                labels = self.labels(probs[0].unflatten(0, (len(chosen), -1)))
                predictions.extend(labels.cpu().numpy().astype(np.int64))
                del probs, labels
            start = stop
        return predictions

    def _shares_encoders(self) -> bool:
        encoders = getattr(self.network, "encoders", None)
        return isinstance(encoders, torch.nn.ModuleList) and \
            len(encoders) == len(self.spec.in_channels)

    def _subset_probabilities(self, window: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Softmax maps ``(w, S * K, ...)`` of the windows ``(w, M, ...)`` under the
        subsets ``masks`` (S, M), subset-major along the channels."""
        w, s_total = window.shape[0], masks.shape[0]
        per_pass = max(1, self.config.sw_batch_size // w)
        network = self.network
        share = self._shares_encoders()
        if share:
            with self._autocast():
                encoded = [encoder(window[:, m:m + 1])
                           for m, encoder in enumerate(network.encoders)]
            # A compiled network would trace the replayed encoders: run it eagerly.
            forward = network.forward if getattr(self.config, "compile", False) else network
        out = []
        for first in range(0, s_total, per_pass):
            subsets = masks[first:first + per_pass]
            s = subsets.shape[0]
            rows = subsets.repeat_interleave(w, dim=0)  # (s * w, M), subset-major
            inputs = window.repeat(s, *([1] * (window.ndim - 1)))
            if share:
                with _replayed_encoders(network.encoders, encoded, s, w), self._autocast():
                    logits = forward(inputs, rows)
            else:
                inputs = torch.where(rows[:, :, None, None, None], inputs,
                                     torch.zeros((), dtype=inputs.dtype, device=inputs.device))
                with self._autocast():
                    logits = network(inputs, rows)
            out.append(self.probabilities(logits).unflatten(0, (s, w)))
        return torch.cat(out).transpose(0, 1).flatten(1, 2)


def _tiled(value: Any, times: int) -> Any:
    """``value`` (tensors, possibly in lists, tuples or dicts) repeated ``times`` along the
    batch axis; always a copy, so a fusion cannot alter the shared features in place."""
    if isinstance(value, torch.Tensor):
        return value.repeat(times, *([1] * (value.ndim - 1)))
    if isinstance(value, (list, tuple)):
        return type(value)(_tiled(v, times) for v in value)
    if isinstance(value, dict):
        return {k: _tiled(v, times) for k, v in value.items()}
    return value


@contextmanager
def _replayed_encoders(encoders: torch.nn.ModuleList, outputs: list[Any], times: int,
                       windows: int) -> Iterator[None]:
    """Within the block, ``encoders[m](x)`` returns ``outputs[m]`` (computed on ``windows``
    windows) tiled ``times`` times instead of encoding ``x`` again; each encoder must be
    called exactly once, on a batch of ``times * windows``."""
    calls = [0] * len(encoders)

    def replay(m: int):
        def forward(x: torch.Tensor, *args, **kwargs):
            if x.shape[0] != times * windows or args or kwargs:
                raise RuntimeError(f"encoder {m} called on a batch of {x.shape[0]} (expected "
                                   f"{times * windows}) or with extra arguments: the network "
                                   "does not encode each modality once per forward")
            calls[m] += 1
            return _tiled(outputs[m], times)
        return forward

    for m, encoder in enumerate(encoders):
        encoder.forward = replay(m)
    try:
        yield
    finally:
        for encoder in encoders:
            encoder.__dict__.pop("forward", None)
    if calls != [1] * len(encoders):
        raise RuntimeError(f"encoders called {calls} times in one forward, expected once each")
