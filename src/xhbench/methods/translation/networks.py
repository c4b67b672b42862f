"""Shared GAN pieces for 2D and 3D: U-Net and ResNet generators, PatchGAN discriminators,
adversarial losses, the image pool and masked reconstruction terms.

Every module takes ``dims`` (2 or 3) and builds the same architecture with 2D or 3D
layers. Normalisation is instance normalisation without affine parameters throughout
(see ``docs/methods/translation.md``: pix2pix's batch normalisation at batch size 1 with
test-batch statistics is instance normalisation, as the pix2pix paper itself notes).
Generators end in ``tanh``: they work in [-1, 1]; the methods map the task's
z-scored intensities into that range and back.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GANLoss", "ImagePool", "PatchDiscriminator", "ResnetBlock", "ResnetGenerator",
           "UNetGenerator", "conv", "conv_transpose", "masked_l1", "norm", "reflection_pad",
           "set_requires_grad", "smoothness"]


def conv(dims: int) -> type[nn.Module]:
    return {2: nn.Conv2d, 3: nn.Conv3d}[dims]


def conv_transpose(dims: int) -> type[nn.Module]:
    return {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]


def norm(dims: int, channels: int) -> nn.Module:
    """Instance normalisation without affine parameters (pix2pix / CycleGAN's ``instance``)."""
    return {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[dims](channels, affine=False)


def reflection_pad(dims: int, size: int) -> nn.Module:
    return {2: nn.ReflectionPad2d, 3: nn.ReflectionPad3d}[dims](size)


def set_requires_grad(modules, flag: bool) -> None:
    for module in modules:
        for parameter in module.parameters():
            parameter.requires_grad_(flag)


# --- generators ---------------------------------------------------------------------

class _UNetLevel(nn.Module):
    """One level of pix2pix's U-Net: down conv, the inner levels, up conv, skip concat."""

    def __init__(self, dims: int, outer: int, inner: int, inner_module: nn.Module | None, *,
                 in_channels: int | None = None, outermost: bool = False,
                 dropout: bool = False):
        super().__init__()
        Conv, ConvT = conv(dims), conv_transpose(dims)
        self.outermost = outermost
        down = Conv(in_channels or outer, inner, kernel_size=4, stride=2, padding=1)
        if outermost:  # no norm after the first conv or before tanh
            layers = [down, inner_module, nn.ReLU(True),
                      ConvT(inner * 2, outer, kernel_size=4, stride=2, padding=1), nn.Tanh()]
        elif inner_module is None:  # innermost: 1 voxel at full depth, so no norm there
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      ConvT(inner, outer, kernel_size=4, stride=2, padding=1), norm(dims, outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, norm(dims, inner), inner_module,
                      nn.ReLU(True), ConvT(inner * 2, outer, kernel_size=4, stride=2, padding=1),
                      norm(dims, outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class UNetGenerator(nn.Module):
    """pix2pix's U-Net: ``num_downs`` stride-2 4x4 convolutions (C64-C128-C256-C512-...),
    mirrored transposed convolutions with skip connections, dropout 0.5 in the decoder
    levels with 8*ngf channels below the fourth, tanh output. Input sizes must be
    divisible by ``2 ** num_downs``."""

    def __init__(self, dims: int, in_channels: int, out_channels: int, *, num_downs: int = 8,
                 ngf: int = 64, dropout: bool = True):
        super().__init__()
        if num_downs < 2:
            raise ValueError("num_downs must be at least 2")
        self.divisor = 2 ** num_downs
        width = [ngf * min(2 ** i, 8) for i in range(num_downs)]
        block = None
        for level in reversed(range(1, num_downs)):
            block = _UNetLevel(dims, width[level - 1], width[level], block,
                               dropout=dropout and 4 <= level < num_downs - 1)
        self.model = _UNetLevel(dims, out_channels, width[0], block, in_channels=in_channels,
                                outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with instance norm and a residual add."""

    def __init__(self, dims: int, channels: int, dropout: bool = False):
        super().__init__()
        Conv = conv(dims)
        layers = [reflection_pad(dims, 1), Conv(channels, channels, 3), norm(dims, channels),
                  nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [reflection_pad(dims, 1), Conv(channels, channels, 3), norm(dims, channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet generator: c7s1-ngf, two stride-2 downsamplings, ``n_blocks``
    residual blocks, two transposed-conv upsamplings, c7s1-out with tanh. Input sizes
    must be divisible by 4."""

    divisor = 4

    def __init__(self, dims: int, in_channels: int, out_channels: int, *, ngf: int = 64,
                 n_blocks: int = 9):
        super().__init__()
        Conv, ConvT = conv(dims), conv_transpose(dims)
        layers = [reflection_pad(dims, 3), Conv(in_channels, ngf, 7), norm(dims, ngf),
                  nn.ReLU(True)]
        for i in range(2):
            c = ngf * 2 ** i
            layers += [Conv(c, 2 * c, 3, stride=2, padding=1), norm(dims, 2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(dims, ngf * 4) for _ in range(n_blocks)]
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            layers += [ConvT(c, c // 2, 3, stride=2, padding=1, output_padding=1),
                       norm(dims, c // 2), nn.ReLU(True)]
        layers += [reflection_pad(dims, 3), Conv(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# --- discriminators ---------------------------------------------------------------

class PatchDiscriminator(nn.Module):
    """The PatchGAN of pix2pix / CycleGAN: ``n_layers`` stride-2 4x4 convolutions
    (ndf, 2ndf, 4ndf, ... capped at 8ndf), one stride-1 conv, a 1-channel stride-1
    conv; LeakyReLU 0.2; no norm after the first conv. With ``n_layers=3`` each output
    judges a 70x70 patch (2D). ``forward`` returns the logits; with
    ``return_features`` also the activations of each layer (for feature matching)."""

    def __init__(self, dims: int, in_channels: int, *, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        Conv = conv(dims)
        layers = [nn.Sequential(Conv(in_channels, ndf, 4, stride=2, padding=1),
                                nn.LeakyReLU(0.2, True))]
        channels = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers.append(nn.Sequential(Conv(channels, out, 4, stride=stride, padding=1),
                                        norm(dims, out), nn.LeakyReLU(0.2, True)))
            channels = out
        layers.append(Conv(channels, 1, 4, stride=1, padding=1))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return (x, features[:-1]) if return_features else x


# --- losses ---------------------------------------------------------------------------

class GANLoss(nn.Module):
    """Adversarial objectives on discriminator logits.

    ``vanilla``: binary cross-entropy (pix2pix); ``lsgan``: least squares to 1 / 0
    (CycleGAN, RegGAN, ResViT); ``hinge``: SPADE's hinge loss, where the generator
    term is ``-mean(D(fake))`` and the discriminator's is ``relu(1 -+ D)``.
    """

    def __init__(self, mode: Literal["vanilla", "lsgan", "hinge"]):
        super().__init__()
        if mode not in ("vanilla", "lsgan", "hinge"):
            raise ValueError(f"unknown GAN loss {mode!r}")
        self.mode = mode

    def forward(self, logits: torch.Tensor, real: bool, for_discriminator: bool = True):
        if self.mode == "vanilla":
            target = torch.full_like(logits, 1.0 if real else 0.0)
            return F.binary_cross_entropy_with_logits(logits, target)
        if self.mode == "lsgan":
            return F.mse_loss(logits, torch.full_like(logits, 1.0 if real else 0.0))
        if not for_discriminator:  # hinge, generator side
            return -logits.mean()
        return F.relu(1.0 - logits).mean() if real else F.relu(1.0 + logits).mean()


def masked_l1(prediction: torch.Tensor, target: torch.Tensor,
              foreground: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over foreground voxels (background excluded)."""
    weight = foreground.expand_as(target)
    return ((prediction - target).abs() * weight).sum() / weight.sum().clamp_min(1.0)


def smoothness(flow: torch.Tensor) -> torch.Tensor:
    """Mean squared finite difference of a displacement field along each spatial axis
    (RegGAN's smoothness term)."""
    total = flow.new_zeros(())
    for axis in range(2, flow.dim()):
        total = total + torch.diff(flow, dim=axis).pow(2).mean()
    return total


class ImagePool:
    """CycleGAN's history of generated images: the discriminator sees, per sample, the new
    fake or (with probability 1/2 once the pool is full) a stored one, which the new fake
    replaces. ``size=0`` passes fakes through."""

    def __init__(self, size: int = 50, generator: random.Random | None = None):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.random = generator or random.Random(0)

    def state_dict(self) -> dict[str, Any]:
        return {"images": list(self.images), "random": self.random.getstate()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.images = list(state["images"])
        self.random.setstate(state["random"])

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.random.random() < 0.5:
                index = self.random.randrange(self.size)
                out.append(self.images[index].clone())
                self.images[index] = image
            else:
                out.append(image)
        return torch.cat(out, dim=0)
