"""SPA / GSS: Category Aware Group Self-Support Learning (Qiu, Chen, Yao, Xu & Wang,
"Scratch Each Other's Back: Incomplete Multi-Modal Brain Tumor Segmentation via
Category Aware Group Self-Support Learning", ICCV 2023), plugged into RFNet as in the
authors' public code.

GSS changes the training, not the network: the network is :class:`.rfnet.RFNet`
(per-modality encoders, region-aware fusion over the available modalities only,
shared-weight per-modality decoder, probability-map deep supervision), so missing
modalities are handled exactly as in ``rfnet``.

The per-modality decoder outputs are the students of a group; there is no teacher.
For each class k one or two modalities lead the group (background: FLAIR; NCR/NET:
T1ce; edema: FLAIR and T2; enhancing: T1ce). With ``p`` the students' softmax and
``q`` their softmax at temperature T, the class-k target at a voxel is

- where a leader is confident (``p > leader_threshold``): the leaders' ``q``; their
  maximum when both leaders are confident, ``max - partial * (max - min)`` when one is;
- else, where every member is confident (``p > member_threshold``): the members' mean ``q``;
- else: the smallest ``q`` of all modalities (the most cautious student);

normalised over the classes. Every student learns this target (weighted soft
cross-entropy on its own ``q``), each on its own random subset of voxels: a fraction
``support_mask_ratio`` is left out (the paper's random mask). The target is computed
without gradient from the same forward pass.

Training, one loop with two stages: ``support_start_steps`` of plain RFNet (its loss and
fusion warm-up; the public GSS script starts from a trained RFNet), then GSS: fused +
``w_sep_support`` x per-modality + deep supervision + ``w_support * T^2 / 10`` x group
self-support, the poly learning rate restarting at the stage boundary.
See ``docs/methods/missing_modality.md`` for what follows the code and what is ours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ...options import option
from ...errors import ConfigError
from .base import weighted_cross_entropy
from .rfnet import RFNetConfig
from .rfnet import RFNetMethod

__all__ = ["GROUP_LEADERS", "SPAConfig", "SPAMethod", "group_targets"]

# Class -> the modalities leading its group (the public code's choice per category).
GROUP_LEADERS: dict[str, tuple[str, ...]] = {
    "background": ("flair",),
    "ncr": ("t1ce",),
    "ed": ("flair", "t2"),
    "et": ("t1ce",),
}


def group_targets(logits: torch.Tensor, leaders: Sequence[Sequence[int]], temperature: float,
                  leader_threshold: float, member_threshold: float,
                  partial: float) -> torch.Tensor:
    """The group's soft target (B, K, ...) from the students' logits (B, M, K, ...).

    ``leaders[k]`` lists the modalities leading class k; the rule is the module doc's.
    """
    p = logits.softmax(dim=2)
    q = (logits / temperature).softmax(dim=2)
    modalities = logits.shape[1]
    per_class = []
    for k, lead in enumerate(leaders):
        lead = list(lead)
        members = [m for m in range(modalities) if m not in lead]
        pk, qk = p[:, :, k], q[:, :, k]
        confident = pk[:, lead] > leader_threshold
        high, low = qk[:, lead].amax(dim=1), qk[:, lead].amin(dim=1)
        led = torch.where(confident.all(dim=1), high, high - partial * (high - low))
        consensus = (pk[:, members] > member_threshold).all(dim=1)
        target = torch.where(consensus, qk[:, members].mean(dim=1), qk.amin(dim=1))
        per_class.append(torch.where(confident.any(dim=1), led, target))
    target = torch.stack(per_class, dim=1)
    return target / target.sum(dim=1, keepdim=True)


@dataclass
class SPAConfig(RFNetConfig):
    support_start_steps: int = option(0, ge=0)  # plain RFNet steps before group self-support starts
    temperature: float = option(8.0, gt=0)  # T of the softened predictions (code: TEMP)
    leader_threshold: float = 0.75  # a leader is confident above this (code: TP)
    member_threshold: float = 0.85  # consensus: every member above this (code: TM)
    partial: float = 0.3  # one of two leaders confident: max - partial*(max - min) (DTP)
    # voxels left out of each student's support loss
    support_mask_ratio: float = option(0.2, ge=0, lt=1)
    w_support: float = option(0.3, ge=0)  # the support loss weighs w_support * T^2 / 10
    w_sep_support: float = option(0.7, ge=0)  # per-modality loss weight once self-support is on


class SPAMethod(RFNetMethod):
    name = "spa"
    citation = "Qiu, Chen, Yao, Xu & Wang, Scratch Each Other's Back: Incomplete " \
               "Multi-Modal Brain Tumor Segmentation via Category Aware Group Self-Support " \
               "Learning (GSS), ICCV 2023"
    Config = SPAConfig
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"roi": (32, 32, 32), "channels": 2, "fusion_hidden": 8, "steps": 2,
                  "support_start_steps": 1, "batch_size": 2, "sw_overlap": 0.25,
                  "progress": False},
        "default": {"roi": (32, 32, 32), "channels": 8, "fusion_hidden": 16, "steps": 600,
                    "support_start_steps": 500, "batch_size": 2, "lr": 3e-3,
                    "ce_weighting": "none",
                    "fusion_warmup_steps": 20},
        # Public code (train_GSS.py, GSS.sh): RFNet at 80^3, batch 2, Adam (amsgrad) lr
        # 2e-4, weight decay 1e-4, poly decay restarted for the GSS stage, T = 8, mask
        # ratio 0.2, thresholds 0.75 / 0.85, partial 0.3, loss fused + 0.7 sep + prm +
        # 0.3 T^2/10 support, 300 GSS epochs from a trained RFNet. Epochs to steps at
        # batch 2 (one epoch = the 199 training cases of split 1 = 99.5 steps): RFNet's
        # 1000 epochs = 99,500 steps (fused loss from epoch 20 = 1,990 steps), then 300
        # GSS epochs = 29,850 steps.
        "paper": {"roi": (80, 80, 80), "channels": 16, "levels": 4, "fusion_hidden": 128,
                  "batch_size": 2, "lr": 2e-4, "steps": 129_350,
                  "support_start_steps": 99_500, "fusion_warmup_steps": 1_990,
                  "sw_batch_size": 1, "log_every": 500},
    }

    def __init__(self, config: Any, spec, device: Any):
        checks = {
            "temperature": config.temperature > 0,
            "leader_threshold": 0 < config.leader_threshold < 1,
            "member_threshold": 0 < config.member_threshold < 1,
            "partial": 0 <= config.partial <= 1,
            "support_mask_ratio": 0 <= config.support_mask_ratio < 1,
            "support_start_steps": config.support_start_steps >= 0,
        }
        for option, ok in checks.items():
            if not ok:
                raise ConfigError(f"spa: {option} {getattr(config, option)} is out of range")
        missing = [name for name in GROUP_LEADERS if name not in spec.out_channels] + \
            [m for lead in GROUP_LEADERS.values() for m in lead if m not in spec.in_channels]
        if missing:
            raise ConfigError(f"spa: the task has no class or modality {sorted(set(missing))} "
                              "for its category groups")
        super().__init__(config, spec, device)
        self.leaders = [tuple(spec.in_channels.index(m) for m in GROUP_LEADERS[name])
                        for name in spec.out_channels]

    def support_active(self, step: int | None) -> bool:
        """Whether group self-support is on at ``step`` (None: outside ``fit``)."""
        return step is None or step >= self.config.support_start_steps

    def support_loss(self, sep: Sequence[torch.Tensor]) -> torch.Tensor:
        """Sum over the students of the weighted soft cross-entropy between their
        softened prediction and the group target, each on its own random voxels."""
        cfg = self.config
        logits = torch.stack([s.float() for s in sep], dim=1)  # (B, M, K, ...)
        with torch.no_grad():
            target = group_targets(logits, self.leaders, cfg.temperature, cfg.leader_threshold,
                                   cfg.member_threshold, cfg.partial)
        b, _, _, *spatial = logits.shape
        total = logits.new_zeros(())
        for m in range(logits.shape[1]):
            keep = torch.rand((b, 1, *spatial), device=logits.device) >= cfg.support_mask_ratio
            total = total + weighted_cross_entropy(logits[:, m] / cfg.temperature,
                                                   target * keep, cfg.ce_weighting)
        return total

    def loss_terms(self, batch: Mapping[str, Any], step: int | None = None
                   ) -> dict[str, torch.Tensor]:
        """RFNet's terms; with self-support on, the per-modality weight becomes
        ``w_sep_support`` and the ``support`` term is added."""
        if not self.support_active(step):
            return super().loss_terms(batch, step)
        cfg = self.config
        terms, out = self.forward_terms(batch, step)
        support = self.support_loss(out["sep"])
        loss = terms.pop("loss")
        if "sep" in terms:
            loss = loss + (cfg.w_sep_support - cfg.w_sep) * terms["sep"]
        terms["support"] = support
        terms["loss"] = loss + cfg.w_support * cfg.temperature ** 2 / 10 * support
        return terms

    def _schedule(self, optimizer: torch.optim.Optimizer):
        """Poly decay per stage: it restarts from ``lr`` when self-support starts."""
        cfg = self.config
        start = cfg.support_start_steps
        if cfg.schedule != "poly" or not 0 < start < cfg.steps:
            return super()._schedule(optimizer)

        def factor(step: int) -> float:
            done, length = (step, start) if step < start else (step - start, cfg.steps - start)
            return max(1.0 - done / length, 0.0) ** cfg.poly_power

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
