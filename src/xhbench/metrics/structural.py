"""3D structural similarity (SSIM) with a Gaussian window, matching scikit-image.

The five local moments (means of x, y, x*x, y*y, x*y) come from one separable Gaussian
filter applied to the five maps stacked together, in float32, restricted to the valid
interior (no padding is needed there). On a CPU the volume is filtered in slabs along the
first axis so that each slab stays in cache; the first and last axes are filtered as banded
matrix products and the middle axis as a depthwise convolution, which run several times
faster than a 1-channel ``conv3d``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._inputs import Array, batch_mask, item_label, per_item, positive, volume_pair

__all__ = ["ssim"]

# Elements of the stacked moment maps filtered per slab on a CPU (about 6 MiB of float32).
_CPU_SLAB_ELEMENTS = 1_500_000


def _gaussian_kernel(sigma: float, win_size: int, device: torch.device) -> torch.Tensor:
    """Normalised 1D Gaussian weights of length ``win_size`` (computed in float64)."""
    offsets = torch.arange(win_size, dtype=torch.float64) - win_size // 2
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (weights / weights.sum()).to(device=device, dtype=torch.float32)


def _band(kernel: torch.Tensor, n_in: int) -> torch.Tensor:
    """Banded matrix ``(n_in - len(kernel) + 1, n_in)``: valid correlation with ``kernel``."""
    width = kernel.numel()
    n_out = n_in - width + 1
    band = torch.zeros(n_out, n_in, dtype=kernel.dtype, device=kernel.device)
    rows = torch.arange(n_out, device=kernel.device).unsqueeze(1)
    band[rows, rows + torch.arange(width, device=kernel.device)] = kernel
    return band


def _filter_middle(t: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Valid correlation of ``t`` ``(N, H, C)`` with ``kernel`` along ``H``.

    Runs as a depthwise convolution in channels-last layout, which is ``t``'s own memory
    layout, so no copy is made.
    """
    n, h, c = t.shape
    weight = kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    out = F.conv2d(t.view(n, h, 1, c).permute(0, 3, 1, 2), weight, groups=c)
    return out.permute(0, 2, 3, 1).reshape(n, h - kernel.numel() + 1, c)


def _moment_maps(x: torch.Tensor, y: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Stack the maps x, y, x*x, y*y, x*y of volumes shifted by ``offset``.

    ``x`` and ``y`` are ``(B, X, Y, Z)``, ``offset`` is ``(B,)``; the result is
    ``(X, 5, B, Y, Z)`` so that each row of the first axis is contiguous.
    """
    b, nx, ny, nz = x.shape
    maps = torch.empty((nx, 5, b, ny, nz), dtype=torch.float32, device=x.device)
    shift = offset.view(1, b, 1, 1)
    torch.sub(x.transpose(0, 1), shift, out=maps[:, 0])
    torch.sub(y.transpose(0, 1), shift, out=maps[:, 1])
    torch.mul(maps[:, 0], maps[:, 0], out=maps[:, 2])
    torch.mul(maps[:, 1], maps[:, 1], out=maps[:, 3])
    torch.mul(maps[:, 0], maps[:, 1], out=maps[:, 4])
    return maps


def ssim(
    pred: Array,
    ref: Array,
    *,
    data_range: float,
    mask: Array | None = None,
    sigma: float = 1.5,
    win_size: int = 11,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float | list[float]:
    """Mean 3D SSIM with a Gaussian window and population covariance.

    Equals scikit-image ``structural_similarity(ref, pred, data_range=data_range,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` on 3D volumes: the
    SSIM map is averaged over the valid interior, the voxels at least ``win_size // 2``
    from every border. Computed in float32.

    Args:
        pred: predicted volume ``(X, Y, Z)`` or batch ``(B, X, Y, Z)``.
        ref: reference of the same shape.
        data_range: intensity range of the images (required; sets C1 and C2).
        mask: binary mask; the SSIM map is averaged over the mask voxels inside the valid
            interior instead of the whole interior (used to exclude background). The
            windows still see every voxel. Shape of the volumes, or of one volume shared
            by a batch.
        sigma: standard deviation of the Gaussian window in voxels.
        win_size: window length in voxels (odd); 11 is scikit-image's truncation of a
            sigma-1.5 Gaussian at 3.5 sigma.
        k1: luminance constant, ``C1 = (k1 * data_range) ** 2``.
        k2: contrast constant, ``C2 = (k2 * data_range) ** 2``.

    Returns:
        Mean SSIM as a float, or a list with one per batch item.

    Raises:
        ValueError: shape mismatch, NaN/inf values, a parameter out of range, an axis
            shorter than the window, or a mask with no voxel in the valid interior.
    """
    data_range = positive("data_range", data_range)
    c1 = (positive("k1", k1) * data_range) ** 2
    c2 = (positive("k2", k2) * data_range) ** 2
    sigma = positive("sigma", sigma)
    if int(win_size) != win_size or win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"win_size must be an odd positive integer, got {win_size!r}")
    win_size = int(win_size)
    x, y, batched = volume_pair(pred, ref, torch.float32)
    batch, nx, ny, nz = x.shape
    if min(nx, ny, nz) < win_size:
        raise ValueError(
            f"ssim needs every spatial axis to be at least win_size={win_size} voxels; "
            f"got volumes of shape {(nx, ny, nz)}"
        )
    pad = win_size // 2
    interior = (slice(pad, nx - pad), slice(pad, ny - pad), slice(pad, nz - pad))
    out_x, out_y, out_z = nx - 2 * pad, ny - 2 * pad, nz - 2 * pad

    if mask is None:
        rows_mask = None
        counts = torch.full((batch,), out_x * out_y * out_z, dtype=torch.float64)
    else:
        inner = batch_mask(mask, x, batched)[(slice(None), *interior)]
        counts = inner.sum(dim=(1, 2, 3)).expand(batch).to("cpu", torch.float64)
        for index, count in enumerate(counts.tolist()):
            if count == 0:
                raise ValueError(
                    f"mask has no voxel at least {pad} voxels from every border, where SSIM "
                    f"is defined{item_label(index, batched)}"
                )
        rows_mask = inner.transpose(0, 1)  # (out_x, B or 1, out_y, out_z)

    kernel = _gaussian_kernel(sigma, win_size, x.device)
    offset = y.mean(dim=(1, 2, 3))
    shift = offset.view(1, batch, 1, 1)
    maps = _moment_maps(x, y, offset).view(nx, -1)
    del x, y
    slab = out_x  # interior rows filtered at once: all of them on a GPU
    if maps.device.type == "cpu":
        slab = min(out_x, max(1, _CPU_SLAB_ELEMENTS // maps.shape[1]))
    band_x = _band(kernel, slab + win_size - 1)
    band_z = _band(kernel, nz).T
    totals = torch.zeros(batch, dtype=torch.float64, device=maps.device)
    for start in range(0, out_x, slab):
        n = min(slab, out_x - start)
        filtered = band_x[:n, : n + win_size - 1] @ maps[start : start + n + win_size - 1]
        filtered = _filter_middle(filtered.view(n * 5 * batch, ny, nz), kernel)
        filtered = (filtered.view(-1, nz) @ band_z).view(n, 5, batch, out_y, out_z)
        mean_x, mean_y, xx, yy, xy = filtered.unbind(1)
        # Variances and covariance are shift invariant; the means get the offset back.
        contrast_num = xy.sub_(mean_x * mean_y).mul_(2).add_(c2)
        contrast_den = xx.add_(yy).sub_(mean_x.square()).sub_(mean_y.square()).add_(c2)
        mean_x.add_(shift)
        mean_y.add_(shift)
        luminance_num = (mean_x * mean_y).mul_(2).add_(c1)
        luminance_den = mean_x.square().add_(mean_y.square()).add_(c1)
        ssim_map = luminance_num.mul_(contrast_num).div_(luminance_den.mul_(contrast_den))
        if rows_mask is not None:
            ssim_map = torch.where(rows_mask[start : start + n], ssim_map, 0.0)
        totals += ssim_map.sum(dim=(0, 2, 3), dtype=torch.float64)
    return per_item(totals.cpu() / counts, batched)
