"""nnU-Net-style baseline: MONAI's ``DynUNet`` configured the way nnU-Net plans its 3D U-Net.

This is *not* the nnU-Net package (Isensee et al., Nature Methods 2021): it has no
fingerprinting, resampling, nnU-Net augmentation, cross-validation ensembling or
mirroring at test time. What it takes from nnU-Net:

- the topology planner (:func:`plan_unet`, the rule of nnU-Net's
  ``get_pool_and_conv_props``): from the voxel spacing and the patch size, choose per
  stage which axes to halve and which conv kernels are 3 or 1 (below);
- features 32 doubling per stage, capped at 320; two conv-InstanceNorm-LeakyReLU(0.01)
  blocks per stage; strided convs down, transposed convs up;
- deep supervision on every decoder resolution but the coarsest, each head's loss
  against the label downsampled (nearest) to that head's size, weights 1/2^i with
  the coarsest at 0, normalised to sum to 1 (:func:`deep_supervision_weights`);
- the loss: soft Dice without background (batch Dice, smooth 1e-5) + cross-entropy;
- paper profile: SGD, Nesterov momentum 0.99, weight decay 3e-5, poly learning rate
  (1 - step/steps)^0.9, gradient norm clipped at 12.

Planning rule, one stage at a time, starting from the patch (voxels) and spacing (mm):
an axis may be halved when its current size is >= 2 * ``min_edge`` (so it stays >= 4
voxels), its current spacing is < 2x the finest current spacing among those axes
(coarse axes of anisotropic data wait until the fine ones catch up) and it has been
halved fewer than ``max_pools`` times; a lone candidate axis needs size >= 3 * min_edge.
Planning stops when no axis qualifies. A stage's conv kernel is 3 along every axis
whose spacing is < 2x the finest current spacing (once 3, it stays 3), else 1; the
bottleneck is always 3. The halved axes' spacing doubles and size halves (rounded up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F

from ..options import option
from ..errors import ConfigError
from .supervised import SupervisedConfig, SupervisedMethod

__all__ = ["NNUNetMethod", "UNetPlan", "deep_supervision_weights", "plan_unet"]


@dataclass(frozen=True)
class UNetPlan:
    """A U-Net topology: one kernel and one stride per stage (the first stride is 1)."""

    kernels: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...], ...]
    bottleneck: tuple[int, ...]  # feature-map size at the deepest stage

    @property
    def pools(self) -> int:
        return len(self.strides) - 1

    @property
    def divisor(self) -> tuple[int, ...]:
        """Per axis, what the patch size must be divisible by."""
        return tuple(math.prod(stride[a] for stride in self.strides)
                     for a in range(len(self.bottleneck)))


def plan_unet(spacing: Sequence[float], patch: Sequence[int], min_edge: int = 4,
              max_pools: int = 999) -> UNetPlan:
    """nnU-Net's kernel and stride plan for a patch at a voxel spacing (see module doc)."""
    if len(spacing) != len(patch):
        raise ConfigError(f"spacing {tuple(spacing)} and patch {tuple(patch)} differ in length")
    dim = len(patch)
    spacing = [float(s) for s in spacing]
    size = [int(p) for p in patch]
    halved = [0] * dim
    kernel = [1] * dim
    kernels: list[tuple[int, ...]] = []
    strides: list[tuple[int, ...]] = [(1,) * dim]
    while True:
        axes = [a for a in range(dim) if size[a] >= 2 * min_edge]
        if not axes:
            break
        finest = min(spacing[a] for a in axes)
        axes = [a for a in axes if spacing[a] < 2 * finest and halved[a] < max_pools]
        if not axes or (len(axes) == 1 and size[axes[0]] < 3 * min_edge):
            break
        finest_all = min(spacing)
        kernel = [3 if kernel[a] == 3 or spacing[a] < 2 * finest_all else 1 for a in range(dim)]
        kernels.append(tuple(kernel))
        strides.append(tuple(2 if a in axes else 1 for a in range(dim)))
        for a in axes:
            halved[a] += 1
            spacing[a] *= 2
            size[a] = math.ceil(size[a] / 2)
    kernels.append((3,) * dim)
    return UNetPlan(tuple(kernels), tuple(strides), tuple(size))


def deep_supervision_weights(levels: int) -> list[float]:
    """nnU-Net's loss weights for ``levels`` decoder outputs, finest first: 1/2^i, the
    coarsest set to 0, normalised to sum to 1 (one level: ``[1.0]``)."""
    if levels < 1:
        raise ValueError("levels must be >= 1")
    weights = [0.5 ** i for i in range(levels)]
    if levels > 1:
        weights[-1] = 0.0
    total = sum(weights)
    return [w / total for w in weights]


def _downsample_batch(batch: Mapping[str, Any], size: Sequence[int]) -> dict[str, Any]:
    """The training targets at a deep-supervision head's resolution: labels by nearest
    neighbour (as nnU-Net), intensities and the foreground mask by averaging."""
    out = dict(batch)
    for key in ("label", "target", "foreground"):
        value = batch.get(key)
        if not isinstance(value, torch.Tensor) or tuple(value.shape[2:]) == tuple(size):
            continue
        if key == "label":
            out[key] = F.interpolate(value.float(), size=tuple(size), mode="nearest-exact").long()
        else:
            out[key] = F.interpolate(value.float(), size=tuple(size), mode="area")
    return out


def _deep_supervised_dynunet():
    from monai.networks.nets import DynUNet

    class DeepSupervisedDynUNet(DynUNet):
        """DynUNet that returns ``[full-resolution logits, coarser heads...]`` in training,
        at the heads' own sizes, so the loss downsamples the targets (nnU-Net) instead of
        upsampling the logits (MONAI's stacked output). Evaluation is unchanged."""

        def forward(self, x):
            if not (self.training and self.deep_supervision):
                return super().forward(x)
            out = self.output_block(self.skip_layers(x))
            return [out, *self.heads]

    return DeepSupervisedDynUNet


@dataclass
class NNUNetConfig(SupervisedConfig):
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)  # mm, of the task's voxels
    min_edge: int = 4  # nnU-Net's UNet_featuremap_min_edge_length
    max_pools: int = option(999, ge=0)  # per axis
    base_filters: int = option(32, ge=1)
    max_filters: int = option(320, ge=1)
    deep_supervision: bool = True
    batch_dice: bool = True  # Dice pooled over the batch, as nnU-Net's 3d_fullres
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = 0.99  # SGD (Nesterov)
    schedule: Literal["warmup_cosine", "poly"] = "warmup_cosine"
    poly_exponent: float = 0.9


class NNUNetMethod(SupervisedMethod):
    name = "nnunet"
    citation = ("Isensee et al., nnU-Net, Nature Methods 2021 (nnU-Net-style configuration of "
                "MONAI DynUNet, not the nnU-Net package)")
    Config = NNUNetConfig
    profiles = {
        "smoke": {"roi": (32, 32, 32), "steps": 2, "batch_size": 2, "warmup_steps": 1,
                  "base_filters": 8, "sw_overlap": 0.25, "progress": False},
        # default: nnU-Net's own width (32 features at full resolution). 16 missed issue 16's
        # WT floor on the phantom's validation split (0.764; 32: 0.876; docs/methods/baselines.md)
        "default": {"roi": (32, 32, 32), "steps": 600, "batch_size": 2},
        # nnU-Net's trainer: SGD lr 1e-2, Nesterov momentum 0.99, weight decay 3e-5, poly
        # decay, grad clip 12, batch 2. The issue fixes lr 2e-4 (the paper's) for every
        # method; nnU-Net's own value is --set lr=0.01. 1000 epochs of the 199 training
        # cases at batch 2 on one GPU: 1000 * 199 / 2 = 99,500 steps (nnU-Net's own
        # "epoch" is 250 iterations, i.e. 250k steps).
        "paper": {"roi": (96, 96, 96), "steps": 99500, "batch_size": 2, "lr": 2e-4,
                  "optimizer": "sgd", "schedule": "poly", "weight_decay": 3e-5,
                  "warmup_steps": 0, "grad_clip": 12.0, "base_filters": 32,
                  "max_filters": 320},
    }

    def build_network(self, in_channels: int, out_channels: int) -> torch.nn.Module:
        cfg = self.config
        self.plan = plan_unet(cfg.spacing, cfg.roi, cfg.min_edge, cfg.max_pools)
        if self.plan.pools < 2:
            raise ConfigError(f"{self.name}: roi {tuple(cfg.roi)} allows {self.plan.pools} "
                              "downsamplings; need at least 2 (use a larger roi)")
        for option in ("roi", "infer_roi"):
            sizes = getattr(cfg, option)
            if sizes is not None and any(s % d for s, d in zip(sizes, self.plan.divisor)):
                padded = tuple(math.ceil(s / d) * d for s, d in zip(sizes, self.plan.divisor))
                raise ConfigError(f"{self.name}: {option} {tuple(sizes)} must be divisible by "
                                  f"{self.plan.divisor} per axis (the plan for roi "
                                  f"{tuple(cfg.roi)}); e.g. {padded}")
        stages = len(self.plan.strides)
        filters = [min(cfg.base_filters * 2 ** i, cfg.max_filters) for i in range(stages)]
        # nnU-Net supervises decoder resolutions 0 .. pools-2 (the coarsest has weight 0).
        self.heads = self.plan.pools - 1 if cfg.deep_supervision else 1
        network_cls = _deep_supervised_dynunet()
        return network_cls(
            spatial_dims=3, in_channels=in_channels, out_channels=out_channels,
            kernel_size=[list(k) for k in self.plan.kernels],
            strides=[list(s) for s in self.plan.strides],
            upsample_kernel_size=[list(s) for s in self.plan.strides[1:]],
            filters=filters, norm_name=("INSTANCE", {"affine": True}),
            act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
            deep_supervision=self.heads > 1, deep_supr_num=max(self.heads - 1, 1),
            res_block=False, trans_bias=True)

    def ds_weights(self) -> list[float]:
        """Loss weights of the outputs the network returns in training, finest first."""
        return deep_supervision_weights(self.plan.pools)[:self.heads] if self.heads > 1 \
            else [1.0]

    def _segmentation_loss(self):
        from monai.losses import DiceCELoss

        dice_ce = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False,
                             batch=self.config.batch_dice, smooth_nr=1e-5, smooth_dr=1e-5)
        return lambda output, batch: dice_ce(output, batch["label"].to(output.device))

    def _loss(self) -> Callable[[Any, Mapping[str, torch.Tensor]], torch.Tensor]:
        base = super()._loss()
        weights = self.ds_weights()

        def deep_supervised(outputs, batch):
            if isinstance(outputs, torch.Tensor):
                return base(outputs, batch)
            if len(outputs) != len(weights):
                raise RuntimeError(f"{len(outputs)} outputs for {len(weights)} loss weights")
            total = outputs[0].new_zeros((), dtype=torch.float32)
            for weight, output in zip(weights, outputs):
                total = total + weight * base(output, _downsample_batch(batch, output.shape[2:]))
            return total

        return deep_supervised

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(self.network.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                   nesterov=True, weight_decay=cfg.weight_decay)
        return super()._optimizer()

    def _schedule(self, optimizer: torch.optim.Optimizer):
        cfg = self.config
        if cfg.schedule == "poly":
            steps, power = max(cfg.steps, 1), cfg.poly_exponent
            return torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: max(1.0 - step / steps, 0.0) ** power)
        return super()._schedule(optimizer)
