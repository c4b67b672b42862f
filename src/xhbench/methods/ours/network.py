"""The network of ``ours``: MONAI's SwinUNETR split into encoder E and decoder D,
with a learnable prior O between them (paper Sec. 3.1, Fig. 2).

Shapes for an input ``(B, C, X, Y, Z)`` (sizes divisible by 32) and feature size
``f``:

* E (``encode``): ``swinViT`` and the residual blocks ``encoder1..4`` and
  ``encoder10`` of MONAI's ``SwinUNETR``. It returns the bottleneck
  ``z = encoder10(swinViT stage 4)`` of shape ``(B, 16f, X/32, Y/32, Z/32)`` and
  the skip features ``x = (enc0, enc1, enc2, enc3, hidden3)`` at full, 1/2, 1/4,
  1/8 and 1/16 resolution (``f, f, 2f, 4f, 8f`` channels).
* O (``PriorFusion``) acts at the ``prior_level``: ``bottleneck`` (the paper's z,
  ``16f`` channels at 1/32), ``hidden3`` (SwinUNETR's stage-3 output, ``8f``
  channels at 1/16: a 2^3 grid for a 32^3 crop, where the bottleneck is a single
  voxel), the skips ``enc3`` (``4f`` at 1/8) or ``enc2`` (``2f`` at 1/4), or the
  decoder's maps ``dec2`` (``4f`` at 1/8, after ``decoder5`` and ``decoder4``) or
  ``dec1`` (``2f`` at 1/4): there everything the decoder carries up from ``z``
  passes through ``X_h'``. O is a ``(tokens, channels)`` parameter. Each voxel of the level's map
  ``h`` is one query token; multi-head attention with key = value = O gives ``h'``
  of the same shape; ``[h, h']`` is fused by a ``Conv3d`` back to ``channels``:
  ``X_h' = conv(h (+) h')``.
* D (``decode``): ``decoder5..1`` of SwinUNETR with the skips of the *same*
  input; ``X_h'`` replaces the feature of its level (the bottleneck, a skip, or
  the decoder's map, from which decoding resumes), then a 1x1x1 output head: the
  task head (SwinUNETR's own ``out``: classes or target modalities) or the
  pre-training reconstruction head (one channel per input modality).
* Pre-training heads on the spatially averaged ``z``: a linear contrastive
  projection psi (``16f -> proj_dim``) and a linear 4-way rotation classifier F.

``encode``/``decode`` work on any MONAI ``SwinUNETR``, so the ``encoder_only``
mode (a plain SwinUNETR that loads only the pre-trained encoder) shares them.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = [
    "ENCODER_PREFIXES",
    "PRIOR_LEVELS",
    "OursNet",
    "PriorFusion",
    "build_swinunetr",
    "copy_encoder",
    "decode",
    "decode_until",
    "encode",
]

# MONAI's own names for the encoder half of SwinUNETR (what encoder_only loads).
ENCODER_PREFIXES = ("swinViT.", "encoder1.", "encoder2.", "encoder3.", "encoder4.",
                    "encoder10.")

# prior_level -> (channels as a multiple of the feature size, downsampling factor, where):
# ("skip", i) replaces skip i (None: the bottleneck z); ("decoder", k) transforms the
# decoder's map after its first k blocks (MONAI's dec2 after decoder5 and decoder4, dec1
# after decoder3), so that everything the decoder carries up from z passes through X_h'.
PRIOR_LEVELS = {"bottleneck": (16, 32, ("skip", None)), "hidden3": (8, 16, ("skip", 4)),
                "enc3": (4, 8, ("skip", 3)), "enc2": (2, 4, ("skip", 2)),
                "dec2": (4, 8, ("decoder", 2)), "dec1": (2, 4, ("decoder", 3))}

# SwinUNETR's decoder blocks in order, each with the index of the skip it reads
DECODER_BLOCKS = (("decoder5", 4), ("decoder4", 3), ("decoder3", 2), ("decoder2", 1),
                  ("decoder1", 0))

Skips = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def build_swinunetr(in_channels: int, out_channels: int, feature_size: int,
                    norm: Literal["group", "instance"], dropout_path_rate: float = 0.0,
                    use_checkpoint: bool = False, window_size: int = 7) -> nn.Module:
    """MONAI's SwinUNETR; GroupNorm (4 groups) for the small CPU crops whose 1x1x1
    bottleneck InstanceNorm cannot normalise."""
    from monai.networks.nets import SwinUNETR

    norm_name = ("group", {"num_groups": 4}) if norm == "group" else "instance"
    return SwinUNETR(in_channels=in_channels, out_channels=out_channels,
                     feature_size=feature_size, norm_name=norm_name, drop_rate=0.0,
                     dropout_path_rate=dropout_path_rate, use_checkpoint=use_checkpoint,
                     window_size=window_size)


def encode(backbone: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, Skips]:
    """E: ``(z, skips)`` exactly as ``SwinUNETR.forward`` computes them."""
    hidden = backbone.swinViT(x, backbone.normalize)
    skips = (backbone.encoder1(x), backbone.encoder2(hidden[0]), backbone.encoder3(hidden[1]),
             backbone.encoder4(hidden[2]), hidden[3])
    return backbone.encoder10(hidden[4]), skips


def encode_bottleneck(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Only ``z`` (the contrastive views need no skips)."""
    return backbone.encoder10(backbone.swinViT(x, backbone.normalize)[4])


def decode(backbone: nn.Module, bottleneck: torch.Tensor, skips: Skips,
           head: nn.Module | None = None, start: int = 0) -> torch.Tensor:
    """D: SwinUNETR's decoder from ``bottleneck`` and ``skips``; ``head`` defaults to
    the backbone's own output block. ``start`` > 0: ``bottleneck`` is the decoder's map
    after its first ``start`` blocks (:func:`decode_until`), and decoding resumes there."""
    x = bottleneck
    for name, skip in DECODER_BLOCKS[start:]:
        x = getattr(backbone, name)(x, skips[skip])
    return (head if head is not None else backbone.out)(x)


def decode_until(backbone: nn.Module, bottleneck: torch.Tensor, skips: Skips,
                 stop: int) -> torch.Tensor:
    """The decoder's map after its first ``stop`` blocks."""
    x = bottleneck
    for name, skip in DECODER_BLOCKS[:stop]:
        x = getattr(backbone, name)(x, skips[skip])
    return x


def copy_encoder(source: nn.Module, target: nn.Module) -> int:
    """Copy the encoder weights (:data:`ENCODER_PREFIXES`) of one SwinUNETR into another;
    returns the number of tensors copied (never silently zero)."""
    wanted = {k: v for k, v in source.state_dict().items() if k.startswith(ENCODER_PREFIXES)}
    missing, unexpected = target.load_state_dict(wanted, strict=False)
    if unexpected or not wanted:
        raise RuntimeError(f"encoder copy failed: {len(wanted)} tensors, unexpected {unexpected}")
    not_loaded = [k for k in missing if k.startswith(ENCODER_PREFIXES)]
    if not_loaded:
        raise RuntimeError(f"encoder copy left {len(not_loaded)} encoder tensors unloaded")
    return len(wanted)


class PriorFusion(nn.Module):
    """``X_h' = conv(h (+) attn(query=h, key=O, value=O))`` with a learnable prior O;
    ``residual``: ``X_h' = h + conv(...)``, so that ``X_h'`` cannot become a constant
    unless ``h`` does."""

    def __init__(self, channels: int, tokens: int, heads: int, kernel_size: int = 1,
                 residual: bool = False):
        super().__init__()
        self.residual = residual
        if channels % heads:
            raise ValueError(f"prior: {channels} channels do not split into {heads} heads")
        self.prior = nn.Parameter(torch.empty(tokens, channels))
        nn.init.trunc_normal_(self.prior, std=0.02)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.fuse = nn.Conv3d(2 * channels, channels, kernel_size, padding=kernel_size // 2)

    def retrieve(self, z: torch.Tensor) -> torch.Tensor:
        """``z'``: what each voxel (token) of ``z`` retrieves from O (same shape as z)."""
        batch, channels, *spatial = z.shape
        query = z.flatten(2).transpose(1, 2)  # (B, N, C): one token per voxel
        prior = self.prior.to(query.dtype).unsqueeze(0).expand(batch, -1, -1)
        retrieved, _ = self.attention(query, prior, prior, need_weights=False)
        return retrieved.transpose(1, 2).reshape(batch, channels, *spatial)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        fused = self.fuse(torch.cat([z, self.retrieve(z)], dim=1))
        return z + fused if self.residual else fused


class OursNet(nn.Module):
    """E, O, fusion, D and the heads; ``forward`` is the downstream prediction."""

    def __init__(self, in_channels: int, out_channels: int, *, feature_size: int = 12,
                 norm: Literal["group", "instance"] = "group", use_prior: bool = True,
                 prior_tokens: int = 32, prior_heads: int = 8, fuse_kernel: int = 1,
                 proj_dim: int = 512, dropout_path_rate: float = 0.0,
                 use_checkpoint: bool = False, window_size: int = 7,
                 prior_level: Literal["bottleneck", "hidden3", "enc3", "enc2", "dec2", "dec1"] = "bottleneck",
                 fuse_residual: bool = False):
        super().__init__()
        from monai.networks.blocks import UnetOutBlock

        self.backbone = build_swinunetr(in_channels, out_channels, feature_size, norm,
                                        dropout_path_rate, use_checkpoint, window_size)
        self.bottleneck_channels = 16 * feature_size
        self.prior_level = prior_level
        self.prior = (PriorFusion(PRIOR_LEVELS[prior_level][0] * feature_size, prior_tokens,
                                  prior_heads, fuse_kernel, fuse_residual)
                      if use_prior else None)
        self.replace_features = None  # diagnostics: X_h' -> what the decoder reads instead
        self.contrastive_head = nn.Linear(self.bottleneck_channels, proj_dim)
        self.rotation_head = nn.Linear(self.bottleneck_channels, 4)
        self.reconstruction_head = UnetOutBlock(3, feature_size, in_channels)

    def check_size(self, x: torch.Tensor) -> None:
        self.backbone._check_input_size(x.shape[2:])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, Skips]:
        self.check_size(x)
        return encode(self.backbone, x)

    def encode_bottleneck(self, x: torch.Tensor) -> torch.Tensor:
        self.check_size(x)
        return encode_bottleneck(self.backbone, x)

    def level(self, z: torch.Tensor, skips: Skips) -> torch.Tensor:
        """The map O acts on: ``z``, the skip of the prior's level, or the decoder's map."""
        kind, index = PRIOR_LEVELS[self.prior_level][2]
        if kind == "decoder":
            return decode_until(self.backbone, z, skips, index)
        return z if index is None else skips[index]

    def fuse(self, z: torch.Tensor, skips: Skips) -> torch.Tensor:
        """``X_h^i'`` at the prior's level; without the prior (ablation) the level's map
        itself. ``replace_features`` (diagnostics) is called as ``(X_h', h)`` and what it
        returns is decoded instead."""
        level = self.level(z, skips)
        features = self.prior(level) if self.prior is not None else level
        return features if self.replace_features is None else \
            self.replace_features(features, level)

    def decode(self, z: torch.Tensor, features: torch.Tensor, skips: Skips,
               head: Literal["task", "reconstruction"] = "task") -> torch.Tensor:
        """D with ``features`` (``X_h'``) in place of the map of the prior's level."""
        kind, index = PRIOR_LEVELS[self.prior_level][2]
        head_module = self.reconstruction_head if head == "reconstruction" else None
        if kind == "decoder":
            return decode(self.backbone, features, skips, head_module, start=index)
        if index is None:
            z = features
        else:
            skips = (*skips[:index], features, *skips[index + 1:])
        return decode(self.backbone, z, skips, head_module)

    @staticmethod
    def pooled(z: torch.Tensor) -> torch.Tensor:
        return z.mean(dim=tuple(range(2, z.ndim)))

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """psi(z): the contrastive code."""
        return self.contrastive_head(self.pooled(z))

    def rotation_logits(self, z: torch.Tensor) -> torch.Tensor:
        """F(z): logits of the rotation classes 0/90/180/270 degrees."""
        return self.rotation_head(self.pooled(z))

    def task_parameters(self) -> list[nn.Parameter]:
        """What downstream prediction uses: backbone and prior (no pre-training heads)."""
        params = list(self.backbone.parameters())
        if self.prior is not None:
            params += list(self.prior.parameters())
        return params

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(task output, X_h')`` for a batch of prepared inputs."""
        z, skips = self.encode(x)
        features = self.fuse(z, skips)
        return self.decode(z, features, skips), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]
