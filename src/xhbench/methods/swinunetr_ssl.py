"""SwinUNETR initialised by the self-supervised pre-training of Tang et al. (CVPR 2022).

Stage 1 (:meth:`pretrain`, cached by the runner under :meth:`pretraining_key`): a fresh
Swin encoder of the same architecture as the fine-tuned network's is trained on crops
with every modality: two views per crop, each rotated by k * 90 degrees in the plane of
the last two spatial axes and cut out (boxes of noise or of another sample); heads on
the bottleneck predict the rotation (cross-entropy), match the two views (NT-Xent,
temperature 0.5) and reconstruct the rotated view without cut-out (L1); weights 1, 1, 1;
AdamW with linear warm-up and cosine decay. Only the encoder is kept. Its training state
is saved in the run folder every ``checkpoint_every`` steps and resumed from.

Stage 2 (:meth:`fit`): the pre-trained encoder is loaded into the SwinUNETR's
``swinViT`` (loaded keys counted; zero is an error, never a silent no-op) and the whole
network is fine-tuned with the shared recipe of :class:`SupervisedMethod`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from ..options import option
from ..training.batches import StepBatches
from ..training.engine import Engine, Stage
from ..training.state import PRETRAINING_STATE
from .swinunetr import SwinUNETRConfig
from .swinunetr import SwinUNETRMethod

__all__ = ["SwinUNETRSSLMethod", "load_encoder"]

# What the pre-trained encoder depends on: crop size, encoder architecture, and the
# pre-training settings; not the fine-tuning lr, steps, batch, inference or progress.
PRETRAINING_FIELDS = ("roi", "feature_size", "norm", "dropout_path_rate", "amp",
                      "pretrain_steps", "pretrain_batch_size", "pretrain_lr",
                      "pretrain_weight_decay", "pretrain_warmup_steps", "pretrain_grad_clip",
                      "rotation_weight", "contrastive_weight", "reconstruction_weight",
                      "temperature", "contrastive_dim", "cutout_fraction", "cutout_box")


@dataclass
class SwinUNETRSSLConfig(SwinUNETRConfig):
    pretrain_steps: int = option(300, ge=0)
    pretrain_batch_size: int = option(2, ge=1)
    pretrain_lr: float = option(4e-4, gt=0)
    pretrain_weight_decay: float = option(0.1, ge=0)
    pretrain_warmup_steps: int = option(50, ge=0)
    pretrain_grad_clip: float = option(1.0, ge=0)
    rotation_weight: float = option(1.0, ge=0)
    contrastive_weight: float = option(1.0, ge=0)
    reconstruction_weight: float = option(1.0, ge=0)
    temperature: float = option(0.5, gt=0)
    contrastive_dim: int = option(512, ge=1)
    # at most this fraction of voxels per cut-out round
    cutout_fraction: float = option(0.3, ge=0, le=1)
    cutout_box: float = 0.25  # box edge at most this fraction of the crop edge


def load_encoder(network: torch.nn.Module, encoder_state: Mapping[str, torch.Tensor]
                 ) -> tuple[int, list[str]]:
    """Copy a pre-trained encoder into ``network.swinViT``; return the number of tensors
    loaded and the encoder keys left at their initial values.

    Raises:
        RuntimeError: no key matched by name and shape (the silent no-op load).
    """
    target = network.swinViT.state_dict()
    matched = {k: v for k, v in encoder_state.items()
               if k in target and tuple(target[k].shape) == tuple(v.shape)}
    if not matched:
        raise RuntimeError(f"pre-trained encoder: 0 of {len(target)} keys matched by name and "
                           f"shape (state has {len(encoder_state)} keys, e.g. "
                           f"{next(iter(encoder_state), None)!r}, network expects e.g. "
                           f"{next(iter(target), None)!r})")
    network.swinViT.load_state_dict(matched, strict=False)
    return len(matched), sorted(set(target) - set(matched))


class _Crops:
    """The pre-training data set reduced to its crops (``image``): pre-training uses no other
    key, and a task's samples may carry keys its pre-training crop leaves uncropped (a
    label), which could not be batched. A sample that is a list of crops (MONAI's
    ``num_samples`` croppers) is flattened, as ``list_data_collate`` does."""

    def __init__(self, data):
        self.data = data  # MONAI's set_rnd reaches the random transforms through it

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        sample = self.data[index]
        if isinstance(sample, (list, tuple)):
            return [{"image": crop["image"]} for crop in sample]
        return {"image": sample["image"]}


class SwinUNETRSSLMethod(SwinUNETRMethod):
    name = "swinunetr_ssl"
    citation = ("Tang et al., Self-Supervised Pre-Training of Swin Transformers for 3D Medical "
                "Image Analysis, CVPR 2022")
    Config = SwinUNETRSSLConfig
    pretrains = True
    profiles = {
        "smoke": {**SwinUNETRMethod.profiles["smoke"], "pretrain_steps": 2,
                  "pretrain_batch_size": 2, "pretrain_warmup_steps": 1, "contrastive_dim": 64},
        "default": {**SwinUNETRMethod.profiles["default"], "pretrain_steps": 300,
                    "pretrain_batch_size": 2, "pretrain_warmup_steps": 50},
        # Fine-tuning as swinunetr's paper profile (96^3, lr 2e-4, 1000 epochs = 50k
        # steps). Pre-training: the reference script's defaults (research-contributions
        # SwinUNETR/Pretrain/main.py): AdamW lr 4e-4, weight decay 0.1, 500 warm-up
        # steps, 100,000 steps, batch 2 volumes x 2 crops = 4 crops per step.
        "paper": {**SwinUNETRMethod.profiles["paper"], "pretrain_steps": 100000,
                  "pretrain_batch_size": 4, "pretrain_lr": 4e-4, "pretrain_weight_decay": 0.1,
                  "pretrain_warmup_steps": 500},
    }

    def __init__(self, config: Any, spec, device: Any):
        super().__init__(config, spec, device)
        self.pretrained_encoder: dict[str, torch.Tensor] | None = None
        self.loaded_encoder_keys = 0

    def pretraining_key(self) -> dict[str, Any]:
        key = {name: getattr(self.config, name) for name in PRETRAINING_FIELDS}
        key["in_channels"] = len(self.spec.in_channels)
        return key

    def build_heads(self):
        """A fresh encoder (same architecture as the network's) with the SSL heads."""
        from .ssl_pretraining import SSLHeads

        encoder = self.build_network(len(self.spec.in_channels), 1).swinViT
        return SSLHeads(encoder, len(self.spec.in_channels), self.config.feature_size * 16,
                        contrastive_dim=self.config.contrastive_dim, norm=self.config.norm
                        ).to(self.device)

    def pretrain_losses(self, heads, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three losses and their weighted ``total`` on one batch of crops."""
        from .ssl_pretraining import ssl_losses, two_views

        cfg = self.config
        views = two_views(image, cfg.cutout_fraction, cfg.cutout_box)
        with self._autocast():
            return ssl_losses(heads, views, cfg.temperature,
                              (cfg.rotation_weight, cfg.contrastive_weight,
                               cfg.reconstruction_weight))

    def pretrain(self, data, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        from monai.optimizers import WarmupCosineSchedule

        cfg = self.config
        heads = self.build_heads()
        batches = StepBatches(_Crops(data), cfg.pretrain_batch_size)
        optimizer = torch.optim.AdamW(heads.parameters(), lr=cfg.pretrain_lr,
                                      weight_decay=cfg.pretrain_weight_decay)
        schedule = WarmupCosineSchedule(optimizer,
                                        warmup_steps=min(cfg.pretrain_warmup_steps,
                                                         cfg.pretrain_steps),
                                        t_total=max(cfg.pretrain_steps, 1))
        engine = Engine(self.name, self.device, workdir, log, state_file=PRETRAINING_STATE,
                        checkpoint_every=cfg.checkpoint_every, budget=self.budget)
        start = engine.resume(heads=heads)
        records = engine.run(Stage("pretrain", cfg.pretrain_steps, batches,
                                   functools.partial(self.pretraining_step, heads),
                                   optimizers={"optimizer": optimizer},
                                   schedules={"schedule": schedule}, model=heads,
                                   grad_clip=cfg.pretrain_grad_clip, amp=cfg.amp))
        self.pretrained_encoder = {k: v.detach().cpu().clone()
                                   for k, v in heads.encoder.state_dict().items()}
        return {"steps": cfg.pretrain_steps, "resumed_at": start,
                "first_losses": records[0] if records else None,
                "last_losses": records[-1] if records else None}

    def pretraining_step(self, heads, batch: Mapping[str, Any], step: int
                         ) -> dict[str, torch.Tensor]:
        """The weighted pre-training loss (``loss``) and its three terms on one batch."""
        image = batch["image"].to(self.device, non_blocking=True)
        if image.shape[1] != len(self.spec.in_channels):
            raise ValueError(f"{self.name}: pre-training crops have {image.shape[1]} "
                             f"channels, the task {len(self.spec.in_channels)}")
        losses = self.pretrain_losses(heads, image)
        return {"loss": losses.pop("total"), **losses}

    def fit(self, train_data, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        if self.pretrained_encoder is None:
            raise RuntimeError(f"{self.name}: fit() before pretrain() or loading a pre-trained "
                               "state")
        loaded, untouched = load_encoder(self.network, self.pretrained_encoder)
        self.loaded_encoder_keys = loaded
        log(f"pre-trained encoder loaded: {loaded} tensors"
            + (f"; {len(untouched)} left at initial values: {untouched[:5]}" if untouched else ""))
        history = super().fit(train_data, workdir, log)
        return {**history, "loaded_encoder_keys": loaded}

    def state_dict(self) -> dict[str, Any]:
        return {"network": self.network.state_dict(), "pretrained_encoder": self.pretrained_encoder}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.pretrained_encoder = state.get("pretrained_encoder")
