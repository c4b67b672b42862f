"""ShaSpec: Shared-Specific Feature Modelling (Wang, Chen, Ma, Avery, Hull & Carneiro,
"Multi-modal Learning with Missing Modality via Shared-Specific Feature Modelling",
CVPR 2023), the paper's "SPA [42]" by its reference list.

- Encoders: one shared encoder, the same weights applied to every modality on its own
  (shared features ``r_m``), and one specific encoder per modality (specific
  features ``s_m``, used at the bottleneck).
- Residual fusion at the bottleneck, for an available modality:
  ``f_m = r_m + proj([r_m, s_m])`` (``proj``: one 3x3x3 convolution, no norm, no bias).
- Missing-modality feature generation: a missing modality's slot gets the mean of the
  AVAILABLE modalities' shared features (:func:`fill_missing`), at the bottleneck and
  at every skip level; nothing computed from a missing modality reaches the decoder.
- Decoder: a U-Net decoder on the four slots concatenated per level (the shared
  features on the skips, as in the public code).
- Auxiliary losses: distribution alignment of the shared bottleneck features, L1
  between consecutive modalities of the cycle flair, t1, t1ce, t2 (the code's channel
  order; :func:`alignment_loss`, weight ``w_align``, the code's alpha 0.1), and domain classification of the specific
  features, a linear classifier on their global average naming the modality
  (:func:`domain_loss`, ``w_domain``, the code's beta 0.02). Both use every modality's
  features: every training case has all four.
- Training (public ``run.sh``): ``full_modality_steps`` with every modality fused, the
  poly rate decaying to zero over them, then the task's drawn masks with the poly
  curve of the whole run resumed at that step.

See ``docs/methods/missing_modality.md`` for what follows the code and what is ours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...options import option
from ...errors import ConfigError
from .base import MissingConfig, MissingModalityMethod
from .layers import ResidualEncoder, UNetDecoder

__all__ = ["ALIGNMENT_CYCLE", "ShaSpecConfig", "ModalityEncoder", "ShaSpecMethod", "ShaSpecNet",
           "alignment_loss", "domain_loss", "fill_missing"]

# The public code's channel order: its alignment pairs each modality with the next one.
ALIGNMENT_CYCLE = ("flair", "t1", "t1ce", "t2")


def fill_missing(features: torch.Tensor, shared: torch.Tensor,
                 available: torch.Tensor) -> torch.Tensor:
    """``features`` (B, M, C, ...) where a modality is available; where it is missing,
    the mean of ``shared`` (B, M, C, ...) over the available modalities only."""
    keep = available.reshape(*available.shape, *([1] * (shared.ndim - 2)))
    zero = torch.zeros((), dtype=shared.dtype, device=shared.device)
    count = keep.sum(dim=1).to(shared.dtype).clamp_min(1.0)
    mean = torch.where(keep, shared, zero).sum(dim=1) / count
    return torch.where(keep, features, mean[:, None])


def alignment_loss(shared: torch.Tensor, cycle: Sequence[int]) -> torch.Tensor:
    """Sum over the cycle (modality indices) of the mean absolute difference between the
    shared features (B, M, ...) of each modality and of the next one."""
    ordered = shared[:, list(cycle)]
    return (ordered - ordered.roll(-1, dims=1)).abs().flatten(2).mean(dim=(0, 2)).sum()


def domain_loss(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the modality classifier's logits (B, M, M) against the modality
    each specific feature came from."""
    b, m, _ = logits.shape
    labels = torch.arange(m, device=logits.device).repeat(b)
    return F.cross_entropy(logits.flatten(0, 1), labels)


class ModalityEncoder(nn.Module):
    """One modality's encoders: the shared encoder (the same module in every modality's
    entry) and its own specific encoder. Returns the shared features of every level and
    the specific bottleneck feature."""

    def __init__(self, shared: ResidualEncoder, specific: ResidualEncoder):
        super().__init__()
        self.shared = shared
        self.specific = specific

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        return self.shared(x), self.specific(x)[-1]


class ShaSpecNet(nn.Module):
    def __init__(self, modalities: int, num_classes: int, widths: list[int]):
        super().__init__()
        shared = ResidualEncoder(widths)
        self.encoders = nn.ModuleList(ModalityEncoder(shared, ResidualEncoder(widths))
                                      for _ in range(modalities))
        self.proj = nn.Conv3d(2 * widths[-1], widths[-1], 3, padding=1, bias=False)
        self.domain = nn.Linear(widths[-1], modalities)
        self.decoder = UNetDecoder([modalities * w for w in widths], widths, num_classes)

    def forward(self, image: torch.Tensor, available: torch.Tensor):
        encoded = [enc(image[:, m:m + 1]) for m, enc in enumerate(self.encoders)]
        shared = [torch.stack([e[0][level] for e in encoded], dim=1)
                  for level in range(len(encoded[0][0]))]  # (B, M, C, ...) per level
        specific = torch.stack([e[1] for e in encoded], dim=1)
        r = shared[-1]
        residual = self.proj(torch.cat([r, specific], dim=2).flatten(0, 1))
        composed = r + residual.unflatten(0, r.shape[:2])
        slots = [fill_missing(s, s, available) for s in shared[:-1]]
        slots.append(fill_missing(composed, r, available))
        logits, _ = self.decoder([s.flatten(1, 2) for s in slots])
        if not self.training:
            return logits
        return {"fuse": logits, "shared": r,
                "domain": self.domain(specific.flatten(3).mean(dim=3))}


@dataclass
class ShaSpecConfig(MissingConfig):
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = 0.99  # SGD only
    nesterov: bool = True  # SGD only
    # distribution alignment of the shared features (code: alpha)
    w_align: float = option(0.1, ge=0)
    # domain classification of the specific features (code: beta)
    w_domain: float = option(0.02, ge=0)
    full_modality_steps: int = option(0, ge=0)  # steps fusing every modality before the drawn masks
    w_sep: float = option(0.0, ge=0)
    w_deep: float = option(0.0, ge=0)


class ShaSpecMethod(MissingModalityMethod):
    name = "shaspec"
    citation = "Wang, Chen, Ma, Avery, Hull & Carneiro, Multi-modal Learning with Missing " \
               "Modality via Shared-Specific Feature Modelling (ShaSpec), CVPR 2023"
    Config = ShaSpecConfig
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"roi": (32, 32, 32), "channels": 2, "steps": 2, "full_modality_steps": 1,
                  "batch_size": 2, "sw_overlap": 0.25, "progress": False},
        "default": {"roi": (32, 32, 32), "channels": 8, "steps": 600,
                    "full_modality_steps": 180, "batch_size": 2, "lr": 3e-3,
                    "ce_weighting": "none"},
        # Public code (run.sh, train_SS.py): crops of 80 slices x 160 x 160 (here X, Y, Z =
        # 160, 160, 80), batch 1, SGD (Nesterov, momentum 0.99) lr 1e-2 without weight
        # decay, poly power 0.9; 80,000 iterations with all modalities, then the run
        # resumed to 180,000 with random subsets; alpha 0.1, beta 0.02; sliding windows
        # of the crop with overlap 1/3. Bottleneck width 256 as the code's ASPP.
        "paper": {"roi": (160, 160, 80), "channels": 16, "levels": 5, "batch_size": 1,
                  "optimizer": "sgd", "lr": 1e-2, "momentum": 0.99, "nesterov": True,
                  "weight_decay": 0.0, "steps": 180_000, "full_modality_steps": 80_000,
                  "sw_overlap": 1 / 3, "sw_batch_size": 1, "log_every": 500},
    }

    def __init__(self, config: Any, spec, device: Any):
        if config.full_modality_steps < 0:
            raise ConfigError(f"shaspec: full_modality_steps {config.full_modality_steps} "
                              "is negative")
        if not 0 <= config.momentum < 1:
            raise ConfigError(f"shaspec: momentum {config.momentum} is out of range")
        super().__init__(config, spec, device)
        # the modalities of ALIGNMENT_CYCLE in its order, any others after them
        self.cycle = sorted(range(len(spec.in_channels)), key=lambda m: (
            ALIGNMENT_CYCLE.index(spec.in_channels[m]) if spec.in_channels[m] in
            ALIGNMENT_CYCLE else len(ALIGNMENT_CYCLE), m))

    def build_network(self, in_channels: int, out_channels: int) -> nn.Module:
        return ShaSpecNet(in_channels, out_channels, self.widths())

    def loss_terms(self, batch: Mapping[str, Any], step: int | None = None
                   ) -> dict[str, torch.Tensor]:
        """The fused segmentation loss (every modality fused before
        ``full_modality_steps``) plus the weighted ``align`` and ``domain`` terms."""
        cfg = self.config
        if step is not None and step < cfg.full_modality_steps:
            batch = {**batch,
                     "available": torch.ones_like(torch.as_tensor(batch["available"]),
                                                  dtype=torch.bool)}
        terms, out = self.forward_terms(batch, step)
        loss = terms.pop("loss")
        terms["align"] = alignment_loss(out["shared"].float(), self.cycle)
        terms["domain"] = domain_loss(out["domain"].float())
        terms["loss"] = loss + cfg.w_align * terms["align"] + cfg.w_domain * terms["domain"]
        return terms

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer != "sgd":
            return super()._optimizer()
        return torch.optim.SGD(self.network.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)

    def _schedule(self, optimizer: torch.optim.Optimizer):
        """Poly decay to zero over ``full_modality_steps``, then the poly curve over all
        ``steps`` from that step on (the code's second run resuming the first)."""
        cfg = self.config
        warm = cfg.full_modality_steps
        if cfg.schedule != "poly" or not 0 < warm < cfg.steps:
            return super()._schedule(optimizer)

        def factor(step: int) -> float:
            return max(1.0 - step / (warm if step < warm else cfg.steps), 0.0) ** cfg.poly_power

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
