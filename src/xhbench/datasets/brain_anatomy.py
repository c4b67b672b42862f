"""The MNI ICBM152 2009 anatomy the brain phantom is built on (step 1 of
:mod:`xhbench.datasets.brain_phantom`): tissue fractions on a 2 mm grid, loaded once per
process from the template nilearn ships, and averaged over an output voxel."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["MNI_TISSUES", "MNIAnatomy", "mni_anatomy", "voxel_averaged"]


# -- the template --------------------------------------------------------------------
#: Template tissues, in the order of :attr:`MNIAnatomy.fractions`.
MNI_TISSUES = ("csf", "gm", "deep_gm", "wm")

#: Deep grey nuclei (one ellipsoid per side, MNI mm: centre and semi-axes; the x centre is
#: mirrored): thalamus, caudate, putamen with pallidum. Grey matter inside them is "deep grey".
_DEEP_GREY = (((11.0, -18.0, 7.0), (8.0, 14.0, 9.0)),
              ((13.0, 10.0, 12.0), (6.0, 14.0, 10.0)),
              ((23.0, 2.0, 1.0), (8.0, 16.0, 10.0)))

#: Tumour centres lie in template voxels with at least this white-matter fraction.
_SEED_WM = 0.8


@dataclass(frozen=True)
class MNIAnatomy:
    """MNI ICBM152 2009 tissue fractions on a 2 mm grid (axes R, A, S like MNI space).

    Attributes:
        fractions: (4, X, Y, Z) float32 fractions of :data:`MNI_TISSUES`; their sum is
            ``intracranial``.
        intracranial: (X, Y, Z) float32 fraction of each voxel inside nilearn's brain mask.
        origin_mm: MNI coordinates (mm) of voxel (0, 0, 0).
        spacing_mm: voxel edge (2 mm).
        depth_mm: distance (mm) from each voxel to the outside of the brain mask.
        seeds_mm: (N, 3) MNI coordinates of voxels a tumour may be centred on (white matter).
        seeds_depth_mm: depth of each seed.
    """

    fractions: np.ndarray
    intracranial: np.ndarray
    origin_mm: np.ndarray
    spacing_mm: float
    depth_mm: np.ndarray
    seeds_mm: np.ndarray
    seeds_depth_mm: np.ndarray

    def fraction(self, tissue: str) -> np.ndarray:
        return self.fractions[MNI_TISSUES.index(tissue)]

    def to_index(self, coords_mm) -> np.ndarray:
        """(3, N) float32 voxel coordinates of MNI points given as three arrays (mm)."""
        return np.stack([((c - o) / self.spacing_mm).astype(np.float32).ravel()
                         for c, o in zip(coords_mm, self.origin_mm)])

    def at(self, mni_mm) -> dict[str, float]:
        """Tissue fractions of the 2 mm voxel nearest to an MNI point (for checks)."""
        index = tuple(np.rint((np.asarray(mni_mm, float) - self.origin_mm)
                              / self.spacing_mm).astype(int))
        return {t: float(self.fractions[k][index]) for k, t in enumerate(MNI_TISSUES)}


@functools.lru_cache(maxsize=1)
def mni_anatomy() -> MNIAnatomy:
    """Load nilearn's MNI152 GM, WM and brain-mask maps once per process (about 0.5 s).

    The 1 mm maps are read (``resolution=1``: nilearn's own 2 mm resampling takes about 2 s
    and interpolates) and averaged over 2 x 2 x 2 blocks, which gives exact 2 mm partial
    volumes. GM and WM are clipped to [0, 1] and to the mask, CSF is
    ``clip(mask - GM - WM, 0, 1)``.
    """
    try:
        from nilearn import datasets
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("the brain phantom needs nilearn's MNI152 template: "
                          "pip install 'nilearn>=0.10'") from exc

    def load(loader):
        image = loader(resolution=1)
        return np.asarray(image.dataobj, dtype=np.float32), np.asarray(image.affine, float)

    gm, affine = load(datasets.load_mni152_gm_template)
    wm, wm_affine = load(datasets.load_mni152_wm_template)
    mask, mask_affine = load(datasets.load_mni152_brain_mask)
    if not (np.allclose(affine, wm_affine) and np.allclose(affine, mask_affine)
            and np.allclose(affine[:3, :3], np.eye(3)) and gm.shape == wm.shape == mask.shape):
        raise RuntimeError("nilearn's MNI152 maps are not on one 1 mm RAS grid")
    mask = (mask > 0.5).astype(np.float32)
    gm = np.clip(gm, 0.0, 1.0) * mask
    wm = np.clip(wm, 0.0, 1.0) * mask
    over = np.maximum(gm + wm, 1.0)  # never above 1 in nilearn 0.10-0.14; kept as a guard
    gm, wm = gm / over, wm / over
    del over
    # 2 x 2 x 2 block means (zero-padded to even sizes). CSF = mask - GM - WM is >= 0 voxel by
    # voxel, so it is linear and may be formed after averaging.
    pad = [(0, 0)] + [(0, n % 2) for n in mask.shape]
    stack = np.pad(np.stack([gm, wm, mask]), pad)
    del gm, wm, mask
    c, nx, ny, nz = stack.shape
    gm, wm, mask = stack.reshape(c, nx // 2, 2, ny // 2, 2, nz // 2, 2).sum(axis=(2, 4, 6)) / 8.0
    del stack
    csf = np.clip(mask - gm - wm, 0.0, 1.0)
    origin = affine[:3, 3] + 0.5  # centre of the first 2 x 2 x 2 block
    axes = [origin[a] + 2.0 * np.arange(n, dtype=np.float32) for a, n in enumerate(mask.shape)]
    deep = _deep_grey_weight(axes)
    stack = np.stack([csf, gm * (1.0 - deep), gm * deep, wm, mask]).astype(np.float32)
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(stack[4] >= 0.5).astype(np.float32) * 2.0
    index = np.argwhere(stack[3] >= _SEED_WM)
    seeds = origin + 2.0 * index
    # Supratentorial only (adult gliomas rarely arise in the cerebellum or brainstem): above
    # MNI z = -15 mm, or in the temporal lobes (lateral, anterior to the cerebellum).
    x, y, z = seeds.T
    keep = (z > -15.0) | ((y > -35.0) & (np.abs(x) > 22.0) & (z > -40.0))
    return MNIAnatomy(fractions=np.ascontiguousarray(stack[:4]),
                      intracranial=np.ascontiguousarray(stack[4]), origin_mm=origin,
                      spacing_mm=2.0, depth_mm=depth, seeds_mm=seeds[keep].astype(np.float32),
                      seeds_depth_mm=depth[tuple(index[keep].T)])


def _deep_grey_weight(axes) -> np.ndarray:
    """1 inside the deep-grey ellipsoids, 0 outside, ramped over +-15 % of their radius."""
    x, y, z = (a.reshape(shape) for a, shape in
               zip(axes, [(-1, 1, 1), (1, -1, 1), (1, 1, -1)]))
    weight = np.zeros((len(axes[0]), len(axes[1]), len(axes[2])), dtype=np.float32)
    for (cx, cy, cz), (ax, ay, az) in _DEEP_GREY:
        for side in (-1.0, 1.0):
            rho = np.sqrt(((x - side * cx) / ax) ** 2 + ((y - cy) / ay) ** 2
                          + ((z - cz) / az) ** 2)
            np.maximum(weight, np.clip((1.15 - rho) / 0.3, 0.0, 1.0), out=weight)
    return weight


def _box_kernel(width: float) -> np.ndarray:
    """Taps of a box ``width`` samples wide (fractional ends), summing to 1."""
    half = width / 2.0
    n = int(np.ceil(half - 0.5))
    k = np.arange(-n, n + 1, dtype=np.float64)
    taps = np.clip(np.minimum(k + 0.5, half) - np.maximum(k - 0.5, -half), 0.0, None)
    return taps / taps.sum()


@functools.lru_cache(maxsize=8)
def voxel_averaged(spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """The template's five maps (4 tissues + intracranial) averaged over an output voxel.

    A box filter as wide as the output voxel (per axis; the subject's small rotation is
    neglected), so trilinear sampling at a voxel centre gives that voxel's partial volumes.
    """
    from scipy import ndimage

    anatomy = mni_anatomy()
    out = np.concatenate([anatomy.fractions, anatomy.intracranial[None]])
    for axis, s in enumerate(spacing_mm):
        width = s / anatomy.spacing_mm
        if width > 1.0:
            out = ndimage.correlate1d(out, _box_kernel(width), axis=axis + 1, mode="constant")
    return np.ascontiguousarray(out, dtype=np.float32)
