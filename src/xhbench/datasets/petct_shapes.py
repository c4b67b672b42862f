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
def ellipsoid(x, y, z, centre, radii, turn=None):
    """An ellipsoid with semi-axes ``radii`` about ``centre``, rotated by the matrix ``turn``."""
    px, py, pz = x - centre[0], y - centre[1], z - centre[2]
    if turn is not None:
        px, py, pz = (turn[0, 0] * px + turn[0, 1] * py + turn[0, 2] * pz,
                      turn[1, 0] * px + turn[1, 1] * py + turn[1, 2] * pz,
                      turn[2, 0] * px + turn[2, 1] * py + turn[2, 2] * pz)
    level_squared = (px / radii[0]) ** 2 + (py / radii[1]) ** 2 + (pz / radii[2]) ** 2
    distance_squared = px * px + py * py + pz * pz
    # Distance along the ray from the centre: exact on every ray, ~sdf near the surface.
    scale = np.sqrt((distance_squared + 1e-6 * min(radii) ** 2) / (level_squared + 1e-6))
    return (np.sqrt(level_squared) - 1.0) * scale


def ellipse(x, y, centre_x, centre_y, half_width, half_depth, power: float = 2.0):
    """Elliptic (super-elliptic with ``power``) cylinder along z; the half axes may vary
    per voxel."""
    px, py = x - centre_x, y - centre_y
    level = (np.abs(px / half_width) ** power + np.abs(py / half_depth) ** power) ** (1.0 / power)
    radius = np.sqrt(px * px + py * py)
    scale = (radius + 1e-3 * np.minimum(half_width, half_depth)) / (level + 1e-3)
    return (level - 1.0) * scale


def segment(x, y, z, start, end):
    """Distance to the line segment from ``start`` to ``end``."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    step = end - start
    along = ((x - start[0]) * step[0] + (y - start[1]) * step[1] + (z - start[2]) * step[2]
             ) / float(step @ step)
    along = np.clip(along, 0.0, 1.0)
    return np.sqrt((x - start[0] - along * step[0]) ** 2 + (y - start[1] - along * step[1]) ** 2
                   + (z - start[2] - along * step[2]) ** 2)


def tube(x, y, z, points, radius):
    """Capsule chain through ``points`` with ``radius``."""
    nearest = None
    for start, end in itertools.pairwise(points):
        distance = segment(x, y, z, start, end)
        nearest = distance if nearest is None else np.minimum(nearest, distance)
    return nearest - radius


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


def iliac_wing(x, y, z, centre, radii, side, inset, thickness, medial):
    """Lateral half of an ellipsoidal shell: an iliac wing, convex outward."""
    outer = ellipsoid(x, y, z, centre, radii)
    return np.maximum(np.maximum(outer + inset, -(outer + thickness)),
                      side * (centre[0] - x) - medial)


def tube_box(points, radius):
    """The box (low corner, high corner) around a :func:`tube`."""
    points = np.asarray(points, float)
    return points.min(axis=0) - radius, points.max(axis=0) + radius


def smooth_union(first, second, blend: float = 15.0):
    """Smooth union of two signed distances (blend width ``blend`` mm)."""
    weight = np.clip(0.5 + 0.5 * (second - first) / blend, 0.0, 1.0)
    return second * (1 - weight) + first * weight - blend * weight * (1 - weight)


def rotation(axis: str, degrees: float) -> np.ndarray:
    """The matrix of a rotation by ``degrees`` about ``axis`` ("x", "y" or "z")."""
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    if axis == "x":
        return np.array([[1, 0, 0], [0, cos, -sin], [0, sin, cos]])
    if axis == "y":
        return np.array([[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]])
    return np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])


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
        index = np.arange(size, dtype=np.float32)
        grid_x = (affine[0, 0] * index + affine[0, 3]).astype(np.float32)
        grid_y = (affine[1, 1] * index + affine[1, 3]).astype(np.float32)
        grid_z = (affine[2, 2] * index + affine[2, 3]).astype(np.float32)
        x, y, z = np.meshgrid(grid_x, grid_y, grid_z, indexing="ij")
        self.x, self.y, self.z = x.copy(), y.copy(), z.copy()
        # displacement along ``axis``: amplitude sin(wave . p + phase)
        for axis, amplitude, wave, phase in warp_modes:
            shift = amplitude * np.sin(wave[0] * x + wave[1] * y + wave[2] * z + phase)
            (self.x, self.y, self.z)[axis][...] += shift.astype(np.float32)
        self.warp_max = float(sum(abs(mode[1]) for mode in warp_modes))
        self.voxel_mm = float(np.mean(self.spacing))
        self.fractions: dict[str, np.ndarray] = {}
        self.shape = (size, size, size)

    def box(self, lo, hi) -> tuple[slice, ...]:
        """Index slices covering the world box [lo, hi] (plus the warp and one voxel)."""
        margin = self.warp_max + 2 * self.voxel_mm
        corners = np.array([[cx, cy, cz, 1.0] for cx in (lo[0] - margin, hi[0] + margin)
                            for cy in (lo[1] - margin, hi[1] + margin)
                            for cz in (lo[2] - margin, hi[2] + margin)])
        index = (np.linalg.inv(self.affine) @ corners.T)[:3]
        start = np.clip(np.floor(index.min(axis=1)).astype(int), 0, self.size)
        stop = np.clip(np.ceil(index.max(axis=1)).astype(int) + 1, 0, self.size)
        return tuple(slice(int(first), int(last)) for first, last in zip(start, stop))

    def fraction(self, shape: Shape, box=None) -> tuple[tuple[slice, ...], np.ndarray]:
        """The region evaluated (all, or ``box``) and ``shape``'s partial volume in it."""
        if box is None:  # the arrays themselves, so that profile memos can hit
            region, distance = (slice(None),) * 3, shape(self.x, self.y, self.z)
        else:
            region = self.box(*box)
            distance = shape(self.x[region], self.y[region], self.z[region])
        return region, np.clip(0.5 - distance / self.voxel_mm, 0.0, 1.0).astype(np.float32)

    def paint(self, name: str, shape: Shape, box=None) -> None:
        """Put tissue ``name`` where ``shape`` is negative, over what is there."""
        region, fraction = self.fraction(shape, box)
        if not fraction.any():
            return
        keep = 1.0 - fraction
        for array in self.fractions.values():
            array[region] *= keep
        if name not in self.fractions:
            self.fractions[name] = np.zeros(self.shape, np.float32)
        self.fractions[name][region] += fraction


def warp_modes(rng: np.random.Generator, amplitude: tuple[float, float]) -> list:
    """Two long-wavelength sine displacements per axis: (axis, amplitude, wave, phase)."""
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
