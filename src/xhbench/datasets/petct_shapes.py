"""Signed-distance shapes and the painter the PET/CT phantoms are built with.

Shapes are functions of world coordinates (mm) returning a signed distance, negative
inside. A :class:`Canvas` is a randomly warped millimetre grid on which tissues are
painted structure by structure, each with its partial-volume fraction (see
:mod:`xhbench.datasets.petct_phantom`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

__all__ = ["Canvas", "GridExtent", "Shape", "ellipse", "ellipsoid", "iliac_wing", "memoised",
           "rotation", "segment", "smooth_union", "tube", "tube_box", "warp_modes"]


# -- signed-distance shapes (mm; negative inside) -----------------------------------------
def ellipsoid(x, y, z, c, r, rot=None):
    px, py, pz = x - c[0], y - c[1], z - c[2]
    if rot is not None:
        px, py, pz = (rot[0, 0] * px + rot[0, 1] * py + rot[0, 2] * pz,
                      rot[1, 0] * px + rot[1, 1] * py + rot[1, 2] * pz,
                      rot[2, 0] * px + rot[2, 1] * py + rot[2, 2] * pz)
    q2 = (px / r[0]) ** 2 + (py / r[1]) ** 2 + (pz / r[2]) ** 2
    d2 = px * px + py * py + pz * pz
    # Distance along the ray from the centre: exact on every ray, ~sdf near the surface.
    scale = np.sqrt((d2 + 1e-6 * min(r) ** 2) / (q2 + 1e-6))
    return (np.sqrt(q2) - 1.0) * scale


def ellipse(x, y, cx, cy, a, b, power: float = 2.0):
    """Elliptic (super-elliptic with ``power``) cylinder along z; a, b may vary per voxel."""
    px, py = x - cx, y - cy
    q = (np.abs(px / a) ** power + np.abs(py / b) ** power) ** (1.0 / power)
    rho = np.sqrt(px * px + py * py)
    scale = (rho + 1e-3 * np.minimum(a, b)) / (q + 1e-3)
    return (q - 1.0) * scale


def segment(x, y, z, p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    d = q - p
    t = ((x - p[0]) * d[0] + (y - p[1]) * d[1] + (z - p[2]) * d[2]) / float(d @ d)
    t = np.clip(t, 0.0, 1.0)
    return np.sqrt((x - p[0] - t * d[0]) ** 2 + (y - p[1] - t * d[1]) ** 2
                   + (z - p[2] - t * d[2]) ** 2)


def tube(x, y, z, points, radius):
    """Capsule chain through ``points`` with ``radius``."""
    dist = None
    for p, q in itertools.pairwise(points):
        d = segment(x, y, z, p, q)
        dist = d if dist is None else np.minimum(dist, d)
    return dist - radius


def memoised(memo: dict, key, z, compute):
    """Profile values of a large coordinate array, computed once per array (by identity).

    Shapes are re-evaluated on the same warped grid many times; the profiles along z are
    the expensive part. Small arrays (sampled points, boxes) are computed directly.
    """
    if z.size < 4096:
        return compute()
    hit = memo.get(key)
    if hit is not None and hit[0] is z:
        return hit[1]
    value = compute()
    memo[key] = (z, value)
    return value


def iliac_wing(x, y, z, c, r, side, inset, thickness, medial):
    """Lateral half of an ellipsoidal shell: an iliac wing, convex outward."""
    outer = ellipsoid(x, y, z, c, r)
    return np.maximum(np.maximum(outer + inset, -(outer + thickness)), side * (c[0] - x) - medial)


def tube_box(points, radius):
    pts = np.asarray(points, float)
    return pts.min(axis=0) - radius, pts.max(axis=0) + radius


def smooth_union(a, b, k: float = 15.0):
    """Smooth union of two signed distances (blend width ``k`` mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def rotation(axis: str, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# -- the grid and the painter -----------------------------------------------------------------
Shape = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class Canvas:
    """A warped millimetre grid and tissue fractions painted on it, structure by structure."""

    def __init__(self, size: int, fov, centre_z: float, warp_modes):
        self.size = size
        self.spacing = np.asarray(fov, dtype=float) / size
        affine = np.diag([-self.spacing[0], -self.spacing[1], self.spacing[2], 1.0])
        affine[:3, 3] = -affine[:3, :3] @ np.full(3, (size - 1) / 2.0) + [0.0, 0.0, centre_z]
        self.affine = affine
        idx = np.arange(size, dtype=np.float32)
        gx = (affine[0, 0] * idx + affine[0, 3]).astype(np.float32)
        gy = (affine[1, 1] * idx + affine[1, 3]).astype(np.float32)
        gz = (affine[2, 2] * idx + affine[2, 3]).astype(np.float32)
        x, y, z = np.meshgrid(gx, gy, gz, indexing="ij")
        self.warp_max = 0.0
        self.x, self.y, self.z = x.copy(), y.copy(), z.copy()
        for axis, amp, k, phase in warp_modes:  # displacement d(p) = amp sin(k . p + phase)
            shift = amp * np.sin(k[0] * x + k[1] * y + k[2] * z + phase)
            (self.x, self.y, self.z)[axis][...] += shift.astype(np.float32)
        self.warp_max = float(sum(abs(m[1]) for m in warp_modes))
        self.h = float(np.mean(self.spacing))
        self.fractions: dict[str, np.ndarray] = {}
        self.shape = (size, size, size)

    def box(self, lo, hi) -> tuple[slice, ...]:
        """Index slices covering the world box [lo, hi] (plus the warp and one voxel)."""
        margin = self.warp_max + 2 * self.h
        corners = np.array([[a, b, c, 1.0] for a in (lo[0] - margin, hi[0] + margin)
                            for b in (lo[1] - margin, hi[1] + margin)
                            for c in (lo[2] - margin, hi[2] + margin)])
        idx = (np.linalg.inv(self.affine) @ corners.T)[:3]
        start = np.clip(np.floor(idx.min(axis=1)).astype(int), 0, self.size)
        stop = np.clip(np.ceil(idx.max(axis=1)).astype(int) + 1, 0, self.size)
        return tuple(slice(int(a), int(b)) for a, b in zip(start, stop))

    def fraction(self, shape: Shape, box=None) -> tuple[tuple[slice, ...], np.ndarray]:
        if box is None:  # the arrays themselves, so that profile memos can hit
            sl, d = (slice(None),) * 3, shape(self.x, self.y, self.z)
        else:
            sl = self.box(*box)
            d = shape(self.x[sl], self.y[sl], self.z[sl])
        return sl, np.clip(0.5 - d / self.h, 0.0, 1.0).astype(np.float32)

    def paint(self, name: str, shape: Shape, box=None) -> None:
        """Put tissue ``name`` where ``shape`` is negative, over what is there."""
        sl, f = self.fraction(shape, box)
        if not f.any():
            return
        keep = 1.0 - f
        for array in self.fractions.values():
            array[sl] *= keep
        if name not in self.fractions:
            self.fractions[name] = np.zeros(self.shape, np.float32)
        self.fractions[name][sl] += f


def warp_modes(rng: np.random.Generator, amplitude: tuple[float, float]) -> list:
    modes = []
    for axis in range(3):
        for _ in range(2):
            wavelength = rng.uniform(150.0, 320.0)
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            modes.append((axis, rng.uniform(*amplitude) / 2.0,
                          2 * np.pi / wavelength * direction, rng.uniform(0, 2 * np.pi)))
    return modes


class GridExtent:
    """Spacing and extent of a grid: lesions are drawn before the grid is built."""

    def __init__(self, fov, size, centre_z: float = 0.0):
        self.spacing = np.asarray(fov, dtype=float) / size
        half = np.asarray(fov, dtype=float) / 2.0
        self.lo = np.array([-half[0], -half[1], centre_z - half[2]])
        self.hi = np.array([half[0], half[1], centre_z + half[2]])
