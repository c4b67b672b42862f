"""M3AE: Multimodal Representation Learning for Brain Tumor Segmentation with Missing
Modalities (Liu et al., AAAI 2023), after the public code (github.com/ccarliu/m3ae:
``model/Unet.py``, ``model/mask_utils.py``, ``pretrain.py`` with ``pre.sh``,
``train_18_selfdill_withaug.py`` with ``run.sh``).

One 3D U-Net over all four channels (no per-modality encoders). Missing modalities are
not zero-filled: their voxels take a learned substitute image ("model inversion"), one
volume per modality of the crop's size, fitted during pre-training and frozen after.

- Modality dropout, both stages: per sample, a number of modalities uniform in
  ``0..max_missing``, then which ones uniformly (the code's ``mdp``).
- Stage 1, multimodal masked autoencoder (``pretrain_steps``): of the ``mask_patch``
  cubes of all four modalities together, a fraction ``1 - mask_ratio`` is kept, drawn
  from the present modalities only; dropped and masked voxels take the substitute's
  values; a 1x1 head reconstructs all four modalities, MSE over every voxel, plus
  ``w_substitute`` times the L2 norm of the substitute minus its per-modality mean. The
  substitute has its own learning rate (``substitute_lr``).
- Stage 2, fine-tuning (``steps``): each case of the batch twice, each copy with its own
  modality dropout (one batch, no second network). As in the code, the network has one
  sigmoid output per region (ET, TC, WT), decoded into the four classes by
  :meth:`M3AEMethod.labels`. Soft Dice of the regions on
  the final and the deep-supervision outputs; self-distillation (weight ``w_distill``)
  on the coarsest deep-supervision output's region logits: MSE between the two copies,
  plus, with ``distill_weighting``, each copy pulled to the other (the other detached)
  per region, weighted by the ratio of the running Dice of the two copies' subsets.

Steps run on from stage 1 into stage 2 (batch ``pretrain_steps + step`` in stage 2); one
training state, saved every ``checkpoint_every`` steps, covers both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn
from ...options import option
from ...errors import ConfigError
from ...training.batches import StepBatches
from ...training.budget import PlannedStage
from ...training.engine import Engine, Stage
from .base import MissingConfig, MissingModalityMethod, _one_hot

__all__ = ["CLASSES", "M3AEConfig", "M3AEMethod", "M3AENet", "distillation_loss", "draw_available",
           "patch_mask", "region_dice_loss", "subset_index"]

CLASSES = ("background", "ncr", "ed", "et")
REGIONS = ((3,), (1, 3), (1, 2, 3))  # ET, TC, WT as class indices, the code's channel order


def draw_available(n: int, modalities: int, max_missing: int, device=None) -> torch.Tensor:
    """(n, M) bool: per row, ``k`` uniform in ``0..max_missing`` modalities missing, which
    ones uniformly (torch's global generator)."""
    missing = torch.randint(0, max_missing + 1, (n, 1), device=device)
    rank = torch.rand(n, modalities, device=device).argsort(dim=1).argsort(dim=1)
    return rank >= missing


def patch_mask(shape: tuple[int, ...], patch: int, ratio: float,
               available: torch.Tensor | None = None, generator=None,
               device=None) -> torch.Tensor:
    """(B, M, X, Y, Z) bool, True where a voxel is KEPT. The crop is cut into cubes of
    ``patch`` voxels per modality; ``int((1 - ratio) * M * cubes)`` of the sample's M x
    cubes are kept, drawn uniformly among those of the ``available`` (B, M) modalities."""
    b, m, *spatial = shape
    grid = [math.ceil(size / patch) for size in spatial]
    cells = math.prod(grid)
    kept = int((1.0 - ratio) * m * cells)
    present = (torch.ones(b, m, dtype=torch.bool, device=device) if available is None
               else available.to(device=device, dtype=torch.bool))
    present = present[:, :, None].expand(b, m, cells).reshape(b, m * cells)
    scores = torch.rand(b, m * cells, generator=generator, device=device)
    scores = torch.where(present, scores, torch.full_like(scores, 2.0))  # absent: last
    keep = torch.zeros(b, m * cells, dtype=torch.bool, device=device)
    keep.scatter_(1, scores.argsort(dim=1)[:, :kept], True)
    keep = (keep & present).reshape(b, m, *grid)
    for axis in range(3):
        keep = keep.repeat_interleave(patch, dim=2 + axis)
    return keep[(..., *(slice(0, size) for size in spatial))]


def subset_index(available: torch.Tensor) -> torch.Tensor:
    """(B,) row of each (B, M) mask in a table of the 2^M - 1 non-empty subsets."""
    m = available.shape[1]
    bits = 2 ** torch.arange(m - 1, -1, -1, device=available.device)
    return (available.long() * bits).sum(dim=1) - 1


def region_targets(onehot: torch.Tensor) -> torch.Tensor:
    """(B, 3, ...) ET, TC, WT masks from one-hot classes (B, 4, ...)."""
    return torch.stack([onehot[:, list(region)].sum(dim=1) for region in REGIONS], dim=1)


def region_dice_loss(regions: torch.Tensor, target: torch.Tensor,
                     eps: float = 1e-7) -> torch.Tensor:
    """``1 - mean_R 2 sum(p_R y_R) / (sum p_R + sum y_R)`` with ``p_R`` the sigmoid of the
    region logits, sums over batch and voxels (the regions' soft Dice, no background)."""
    probs = torch.sigmoid(regions)
    dims = (0, *range(2, target.ndim))
    overlap = (probs * target).sum(dim=dims)
    total = probs.sum(dim=dims) + target.sum(dim=dims)
    return 1.0 - (2.0 * overlap / (total + eps)).mean()


def hard_dice(regions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, R) Dice of the regions at probability 0.5 per sample; 1 where both are empty."""
    pred = (regions > 0).float()
    spatial = tuple(range(2, target.ndim))
    overlap = (pred * target).sum(dim=spatial)
    total = pred.sum(dim=spatial) + target.sum(dim=spatial)
    return torch.where(total > 0, 2 * overlap / total.clamp_min(1.0), torch.ones_like(total))


def distillation_loss(first: torch.Tensor, second: torch.Tensor,
                      ratio: torch.Tensor | None) -> torch.Tensor:
    """MSE between the region logits of two copies (B, R, ...); with ``ratio`` (B, R),
    the running Dice of the first copy's subset over the second's, add ``first`` pulled
    to ``second`` (detached) weighted by ``ratio`` and the converse weighted by 1 / ratio,
    each per region and averaged, as ``train_18_selfdill_withaug.py`` does."""
    first, second = first.float(), second.float()
    loss = F.mse_loss(first, second)
    if ratio is None:
        return loss
    spatial = tuple(range(2, first.ndim))
    to_second = (first - second.detach()).square().mean(dim=spatial)
    to_first = (first.detach() - second).square().mean(dim=spatial)
    return loss + (to_second * ratio).mean() + (to_first / ratio).mean()


class Block(nn.Module):
    """Pre-activation residual unit: (GroupNorm, ReLU, 3x3x3 conv) twice, plus the input."""

    def __init__(self, width: int):
        super().__init__()
        groups = math.gcd(8, width)
        self.body = nn.Sequential(
            nn.GroupNorm(groups, width), nn.ReLU(inplace=True),
            nn.Conv3d(width, width, 3, padding=1),
            nn.GroupNorm(groups, width), nn.ReLU(inplace=True),
            nn.Conv3d(width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class M3AENet(nn.Module):
    """The code's U-Net: a 3x3x3 stem and one block at the first level; below it a
    stride-2 convolution doubling the width, then two blocks (four at the deepest
    level); up the decoder a 1x1 convolution halving the width, nearest x2 upsampling,
    the skip added, one block. Heads: segmentation and reconstruction (1x1) at full
    resolution, deep supervision (1x1, upsampled trilinearly) at levels 1..L-2."""

    def __init__(self, modalities: int, num_classes: int, widths: list[int],
                 roi: tuple[int, ...]):
        super().__init__()
        self.roi = tuple(roi)
        deepest = len(widths) - 1
        self.encoder = nn.ModuleList([nn.Sequential(
            nn.Conv3d(modalities, widths[0], 3, padding=1), Block(widths[0]))])
        for level in range(1, len(widths)):
            blocks = 4 if level == deepest else 2
            self.encoder.append(nn.Sequential(
                nn.Conv3d(widths[level - 1], widths[level], 3, stride=2, padding=1),
                *(Block(widths[level]) for _ in range(blocks))))
        self.reduce = nn.ModuleList(nn.Conv3d(widths[l + 1], widths[l], 1)
                                    for l in range(deepest))
        self.merge = nn.ModuleList(Block(widths[l]) for l in range(deepest))
        self.head = nn.Conv3d(widths[0], num_classes, 1)
        self.deep = nn.ModuleList(nn.Conv3d(widths[l], num_classes, 1)
                                  for l in range(1, deepest))
        self.reconstruction = nn.Conv3d(widths[0], modalities, 1)
        self.substitute = nn.Parameter(torch.randn(1, modalities, *self.roi))
        # running Dice of the coarsest deep output per modality subset and region
        self.register_buffer("subset_dice", torch.ones(2 ** modalities - 1, len(REGIONS)))

    def fill(self, image: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``image`` where ``keep`` (broadcastable bool), the substitute elsewhere."""
        substitute = self.substitute
        if tuple(image.shape[2:]) != self.roi:
            substitute = F.interpolate(substitute, size=image.shape[2:], mode="trilinear",
                                       align_corners=False)
        return torch.where(keep, image, substitute.to(image.dtype))

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(full-resolution decoder feature, decoder features of levels L-2..1)."""
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        coarse = []
        for level in reversed(range(len(self.merge))):
            up = F.interpolate(self.reduce[level](x), scale_factor=2, mode="nearest")
            x = self.merge[level](up + skips[level])
            if level > 0:
                coarse.append(x)
        return x, coarse

    def forward(self, image: torch.Tensor, available: torch.Tensor):
        feature, coarse = self.run(self.fill(image, available[:, :, None, None, None]))
        logits = self.head(feature)
        if not self.training:
            return logits
        size = image.shape[2:]
        deep = [F.interpolate(head(x), size=size, mode="trilinear", align_corners=True)
                for head, x in zip(list(self.deep)[::-1], coarse)]
        return {"logits": logits, "deep": deep}

    def reconstruct(self, image: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        feature, _ = self.run(self.fill(image, keep))
        return self.reconstruction(feature)


@dataclass
class M3AEConfig(MissingConfig):
    levels: int = 4
    lr: float = 3e-4
    amsgrad: bool = False
    schedule: Literal["cosine", "poly"] = "cosine"  # per stage, per step, to 0
    max_missing: int = 3  # modality dropout: 0..max_missing modalities missing
    pretrain_steps: int = option(2, ge=0)
    pretrain_batch_size: int = option(2, ge=1)
    pretrain_lr: float = option(3e-4, gt=0)
    pretrain_weight_decay: float = option(0.0, ge=0)
    substitute_lr: float = option(5e-3, gt=0)
    w_substitute: float = option(0.005, ge=0)  # L2 norm of the substitute minus its mean
    mask_ratio: float = option(0.875, ge=0, lt=1)
    mask_patch: int = option(8, ge=1)
    w_distill: float = option(0.1, ge=0)
    distill_weighting: bool = True  # the running-Dice weighted one-way terms


class M3AEMethod(MissingModalityMethod):
    name = "m3ae"
    citation = "Liu et al., M3AE: Multimodal Representation Learning for Brain Tumor " \
               "Segmentation with Missing Modalities, AAAI 2023"
    Config = M3AEConfig
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"roi": (32, 32, 32), "channels": 2, "pretrain_steps": 2, "steps": 2,
                  "batch_size": 1, "sw_overlap": 0.25, "progress": False},
        "default": {"roi": (32, 32, 32), "channels": 8, "pretrain_steps": 100, "steps": 600,
                    "batch_size": 2, "pretrain_lr": 1e-3, "lr": 1e-3},
        # pre.sh and run.sh: 128^3 crops, 16^3 cubes, 600 pre-training epochs at batch 2
        # (600 x ceil(199 / 2) = 60,000 steps here), 300 fine-tuning epochs of one case
        # in two copies (300 x 199 = 59,700 steps), lr 3e-4, weight decay 0 then 1e-4.
        "paper": {"roi": (128, 128, 128), "channels": 16, "levels": 4, "batch_size": 1,
                  "pretrain_batch_size": 2, "mask_patch": 16, "pretrain_steps": 60_000,
                  "steps": 59_700, "sw_batch_size": 1, "log_every": 500},
    }

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The regions' sigmoids (ET, TC, WT): what sliding windows average."""
        return torch.sigmoid(logits.float())

    def labels(self, probs: torch.Tensor) -> torch.Tensor:
        """Classes from the region probabilities (N, 3, ...), decoded as the code decodes
        its sigmoid regions: edema where P(WT) > 0.5, then NCR where P(TC) > 0.5, then ET
        where P(ET) > 0.5, each overwriting the last."""
        out = torch.zeros(probs.shape[:1] + probs.shape[2:], dtype=torch.long,
                          device=probs.device)
        et, tc, wt = (probs[:, index] > 0.5 for index in range(len(REGIONS)))
        out[wt] = CLASSES.index("ed")
        out[tc] = CLASSES.index("ncr")
        out[et] = CLASSES.index("et")
        return out

    def __init__(self, config: Any, spec, device: Any):
        if tuple(spec.out_channels) != CLASSES:
            raise ConfigError(f"m3ae trains on the BraTS regions: classes must be {CLASSES}, "
                              f"got {tuple(spec.out_channels)}")
        modalities = len(spec.in_channels)
        if not 0 <= config.max_missing < modalities:
            raise ConfigError(f"m3ae: max_missing must be in 0..{modalities - 1}, "
                              f"got {config.max_missing}")
        super().__init__(config, spec, device)

    @classmethod
    def training_plan(cls, config: Any) -> list[PlannedStage]:
        """The masked-autoencoder stage (extra to the task's budget), then fine-tuning; a
        fine-tuning step draws ``batch_size`` crops and feeds each in two copies."""
        crop = tuple(config.roi)
        return [PlannedStage("pretrain", config.pretrain_steps, config.pretrain_batch_size,
                             crop, extra=True),
                PlannedStage("finetune", config.steps, config.batch_size, crop)]

    @classmethod
    def trains_distributed(cls) -> bool:
        """False: the running Dice per modality subset is updated sample by sample in the
        order of the batch; data-parallel, each process would keep its own."""
        return False

    def build_network(self, in_channels: int, out_channels: int) -> nn.Module:
        """The U-Net with one output per region (ET, TC, WT), not per class."""
        return M3AENet(in_channels, len(REGIONS), self.widths(), tuple(self.config.roi))

    # stage 1 ------------------------------------------------------------------------------

    def pretraining_terms(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        cfg = self.config
        image = torch.as_tensor(batch["image"]).to(self.device, torch.float32)
        available = draw_available(image.shape[0], image.shape[1], cfg.max_missing,
                                   self.device)
        keep = patch_mask(tuple(image.shape), cfg.mask_patch, cfg.mask_ratio, available,
                          device=self.device)
        with self._autocast():
            reconstruction = self.network.reconstruct(image, keep)
        mse = F.mse_loss(reconstruction.float(), image)
        substitute = self.network.substitute
        spread = torch.linalg.vector_norm(substitute - substitute.mean(dim=(2, 3, 4),
                                                                       keepdim=True))
        return {"reconstruction": mse, "substitute": spread,
                "loss": mse + cfg.w_substitute * spread}

    # stage 2 ------------------------------------------------------------------------------

    def loss_terms(self, batch: Mapping[str, Any], step: int | None = None
                   ) -> dict[str, torch.Tensor]:
        cfg = self.config
        image = torch.as_tensor(batch["image"]).to(self.device, torch.float32)
        target = region_targets(_one_hot(torch.as_tensor(batch["label"]).to(self.device),
                                         len(CLASSES)))
        b = image.shape[0]
        image, target = image.repeat(2, 1, 1, 1, 1), target.repeat(2, 1, 1, 1, 1)
        available = draw_available(2 * b, image.shape[1], cfg.max_missing, self.device)
        with self._autocast():
            out = self.network(image, available)
        terms = {"fuse": region_dice_loss(out["logits"].float(), target)}
        deep = [logits.float() for logits in out["deep"]]
        if deep:
            terms["deep"] = sum(region_dice_loss(regions, target) for regions in deep)
        coarse = (deep or [out["logits"].float()])[0]
        ratio = None
        if cfg.distill_weighting:
            ratio = self._subset_dice_ratio(coarse.detach(), target, available)
        terms["distill"] = distillation_loss(coarse[:b], coarse[b:], ratio)
        terms["loss"] = (cfg.w_fuse * terms["fuse"] + cfg.w_deep * terms.get("deep", 0.0)
                         + cfg.w_distill * terms["distill"])
        return terms

    @torch.no_grad()
    def _subset_dice_ratio(self, coarse: torch.Tensor, target: torch.Tensor,
                           available: torch.Tensor) -> torch.Tensor:
        """Update the running Dice (x0.99 + 0.01 new, per sample in order) of each copy's
        subset, then return first copies' over second copies' (B, R); both floored at
        1e-3 (the code has no floor: a subset's Dice decaying to 0 would divide by 0)."""
        table = self.network.subset_dice
        rows = subset_index(available)
        dice = hard_dice(coarse, target)
        for row, value in zip(rows.tolist(), dice):
            table[row] = 0.99 * table[row] + 0.01 * value
        b = coarse.shape[0] // 2
        floored = table.clamp_min(1e-3)
        return floored[rows[:b]] / floored[rows[b:]]

    def fit(self, train_data, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        cfg = self.config
        engine = Engine(self.name, self.device, workdir, log, budget=self.budget,
                        checkpoint_every=cfg.checkpoint_every, log_every=cfg.log_every)
        done = engine.resume(network=self.network)  # the network at the stop
        pre = engine.run(self._stage("pretrain", StepBatches(train_data, cfg.pretrain_batch_size),
                                     cfg.pretrain_steps, 0,
                                     lambda batch, step: self.pretraining_terms(batch)))
        fine = engine.run(self._stage("finetune", StepBatches(train_data, cfg.batch_size),
                                      cfg.steps, cfg.pretrain_steps, self.loss_terms))
        return {"steps": cfg.steps, "pretrain_steps": cfg.pretrain_steps, "resumed_at": done,
                "pretrain_first_loss": pre[0]["loss"] if pre else None,
                "pretrain_last_loss": pre[-1]["loss"] if pre else None,
                "first_loss": fine[0]["loss"] if fine else None,
                "last_loss": fine[-1]["loss"] if fine else None,
                "last_terms": fine[-1] if fine else None}

    def _optimizer_for(self, stage: str) -> torch.optim.Optimizer:
        """Adam; pre-training: weight decay ``pretrain_weight_decay``, the substitute in
        its own group at ``substitute_lr``; fine-tuning: the substitute frozen."""
        cfg = self.config
        pretraining = stage == "pretrain"
        substitute = self.network.substitute
        substitute.requires_grad_(pretraining)
        rest = [p for name, p in self.network.named_parameters() if name != "substitute"]
        if pretraining:
            groups = [{"params": rest}, {"params": [substitute], "lr": cfg.substitute_lr}]
            return torch.optim.Adam(groups, lr=cfg.pretrain_lr, amsgrad=cfg.amsgrad,
                                    weight_decay=cfg.pretrain_weight_decay)
        return torch.optim.Adam(rest, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                amsgrad=cfg.amsgrad)

    def _factor(self, step: int, total: int) -> float:
        if self.config.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(step / total, 1.0)))
        return max(1.0 - step / total, 0.0) ** self.config.poly_power

    def _stage(self, name: str, batches: StepBatches, steps: int, offset: int,
               terms: Callable) -> Stage:
        """Steps ``offset + step`` of the whole, with the stage's own optimiser (made when
        the stage starts: it sets which parameters train) and schedule."""
        cfg = self.config
        optimizer = self._optimizer_for(name)
        total = max(steps, 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                     lambda s: self._factor(s, total))
        return Stage(name, steps, batches, terms, optimizers={"optimizer": optimizer},
                     schedules={"schedule": schedule}, model=self.network,
                     grad_clip=cfg.grad_clip, amp=cfg.amp, offset=offset)
