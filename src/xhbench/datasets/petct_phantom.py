"""Procedural FDG PET/CT phantoms: torso (thorax + abdomen + pelvis) and head and neck.

Shared by the ``autopet``, ``hnscc`` and ``nsclc`` data sets (the layout modules only name
files). One subject is built in four steps:

1. **Anatomy** as signed-distance shapes (ellipsoids, elliptic cylinders whose radii follow a
   body profile along z, capsules, shells) in millimetres, evaluated on the grid after a
   smooth random warp (a few long-wavelength sine modes, 3-6 mm). Each structure is painted
   over the earlier ones with its partial-volume fraction ``clip(0.5 - d / h, 0, 1)`` (``d``
   the signed distance, ``h`` the mean voxel size), so every voxel holds tissue fractions
   that sum to at most 1 (the rest is air). Per subject: frame size, adiposity, height,
   diaphragm level, organ sizes and positions, bladder filling, head flexion.
2. **CT** in Hounsfield units: fraction-weighted tissue values drawn per subject inside the
   ranges of ``/work/shared/notes/physics.md`` (air -1000, lung -900..-700, fat -120..-80,
   muscle 35..55, liver 50..65, kidney 30..40, cancellous bone 250..400, cortical bone
   800..1300, brain 25..42), Gaussian noise of 10-20 HU, -1024 outside the reconstruction
   circle (AutoPET's CTres fill), rounded to integers.
3. **AC-PET** as SUV: fraction-weighted physiological uptake drawn per subject (brain grey
   matter 6-10, myocardium 1-10, blood pool 1.5-2.2, liver 2-3, kidneys 2-5, bladder urine
   5-50, muscle 0.6-1.0, fat 0.2-0.4, lung 0.3-0.7, bone marrow 1.5-2.5; others in
   :data:`TISSUES`), a smooth +-6 % texture, lesions (SUV 3-25, median 7.5), a Gaussian
   resolution blur of 4-6 mm FWHM (in voxels at the grid spacing) and noise whose variance
   grows with the activity (``sigma = r sqrt(A A_liver)``, relative sigma ``r`` = 10-20 % in
   the liver, lightly correlated), clipped at 0.
4. **NAC-PET** from AC-PET through the CT's attenuation map: mu at 511 keV by the bilinear
   HU -> mu model (``0.096 (1 + HU/1000)`` /cm below 0 HU, ``0.096 + 6.4e-5 HU`` above),
   and for each voxel the mean over :data:`NAC_ANGLES` in-plane directions of
   ``exp(-line integral of mu)`` along the whole line through it (a line's attenuation is the
   same for every emission point on it). ``NAC = AC x mean attenuation``, so the body centre
   loses most (factor ~0.05-0.15 in a torso) and the skin least; lungs look relatively hot.

Lesions (``lesion`` fractions; the label is lesion fraction >= 0.5, and every lesion keeps at
least its most-covered voxel) are placed at anatomical sites by rejection sampling against the
shapes: lymph nodes (mediastinal, hilar, axillary, supraclavicular, para-aortic, iliac), lung
and liver for the torso (by diagnosis: lymphoma, melanoma, lung cancer), head-and-neck primaries
(tonsil, base of tongue, oral tongue, larynx, hypopharynx) and cervical nodes for
``head_neck``. Their SUV is at least twice the tissue around them and their radius at least
0.6 voxel, so even a 32^3 grid shows them.

All random anatomy draws are made in millimetres before anything depends on the grid, so a
seed gives the same subject at every ``size``; only the noise fields depend on it.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

__all__ = [
    "DIAGNOSES",
    "HEAD_NECK_FOV",
    "NAC_ANGLES",
    "THORAX_FOV",
    "TISSUES",
    "TORSO_FOV",
    "PetCtSubject",
    "attenuation_factors",
    "case_rng",
    "hu_to_mu",
    "make_head_neck",
    "make_torso",
]

#: Field of view (mm, x y z) of each region; the grid is ``size``^3 voxels over it.
TORSO_FOV = (480.0, 480.0, 640.0)  # lower neck to pubis (AutoPET-like torso)
THORAX_FOV = (480.0, 480.0, 400.0)  # liver dome to lower neck (NSCLC)
HEAD_NECK_FOV = (360.0, 360.0, 350.0)  # vertex to lung apices (HNSCC)
_THORAX_CENTRE_Z = 150.0  # body z (diaphragm near 10-50 mm) at the thorax grid centre

#: In-plane directions (degrees) averaged by the NAC attenuation model.
NAC_ANGLES = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0)

#: Tissue classes: (HU range, SUV range) drawn uniformly per subject. physics.md where it
#: gives a value; the rest are typical literature values (marked "assumed").
TISSUES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "fat": ((-120, -80), (0.2, 0.4)),
    "muscle": ((35, 55), (0.6, 1.0)),
    "viscera": ((20, 40), (1.0, 1.8)),  # bowel and abdominal soft tissue (assumed)
    "mediastinum": ((-20, 20), (0.8, 1.4)),  # mediastinal fat + vessels (assumed)
    "lung": ((-900, -700), (0.3, 0.7)),
    "air": ((-1000, -980), (0.0, 0.0)),  # airways, sinuses, bowel gas
    "blood": ((35, 45), (1.5, 2.2)),
    "myocardium": ((40, 50), (1.0, 10.0)),
    "liver": ((50, 65), (2.0, 3.0)),
    "spleen": ((40, 50), (1.5, 2.5)),  # assumed
    "stomach": ((25, 40), (1.2, 2.5)),  # assumed
    "kidney": ((30, 40), (2.0, 5.0)),
    "renal_pelvis": ((0, 15), (5.0, 20.0)),  # urine in the collecting system (assumed)
    "bladder": ((0, 15), (5.0, 50.0)),
    "marrow": ((250, 400), (1.5, 2.5)),  # cancellous bone
    "cortical": ((800, 1300), (0.3, 0.8)),
    "disc": ((70, 100), (0.8, 1.2)),  # assumed
    "csf": ((0, 15), (0.1, 0.3)),
    "node": ((30, 45), (0.8, 1.5)),  # normal lymph node (assumed)
    "brain_gm": ((35, 42), (6.0, 10.0)),
    "brain_wm": ((25, 32), (2.0, 4.0)),  # about 0.3-0.45 x grey matter (assumed)
    "eye": ((0, 15), (0.3, 0.6)),  # assumed
    "salivary": ((15, 40), (1.5, 3.0)),  # parotid / submandibular (assumed)
    "tonsil": ((40, 60), (2.0, 4.0)),  # assumed
    "tongue": ((40, 60), (1.5, 3.0)),  # assumed
    "thyroid": ((80, 110), (1.0, 2.0)),  # iodine-rich (assumed)
}
_LESION_HU = (30.0, 55.0)
_BONE = ("marrow", "cortical")

#: Diagnoses a torso or head-and-neck subject can be drawn with.
DIAGNOSES = ("negative", "lymphoma", "melanoma", "lung_cancer", "hnscc")

_AIR_HU = -1000.0
_CT_FILL_HU = -1024.0


@dataclass
class PetCtSubject:
    """One phantom subject: images as written to disk plus the truth behind them."""

    region: str  # "torso", "thorax" or "head_neck"
    diagnosis: str
    ct: np.ndarray  # float32 HU, integer-valued (written as int16)
    suv: np.ndarray  # float32 AC-PET, SUVbw
    nac: np.ndarray  # float32 NAC-PET in the same SUV scaling (AC x attenuation)
    label: np.ndarray  # uint8 lesion mask {0, 1}
    attenuation: np.ndarray  # float32 mean attenuation factor per voxel (NAC / AC)
    fractions: dict[str, np.ndarray]  # float32 tissue fractions (noise-free truth)
    affine: np.ndarray
    info: dict = field(default_factory=dict)  # patient weight, dose, FWHM, noise, lesions

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(float(s) for s in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))

    @property
    def pet_bqml(self) -> np.ndarray:
        """Activity concentration (Bq/ml): ``SUV x decay-corrected dose / weight``."""
        return (self.suv * np.float32(self.info["bqml_per_suv"])).astype(np.float32)

    def mask(self, *names: str, threshold: float = 0.95) -> np.ndarray:
        """Voxels whose summed fraction of ``names`` is at least ``threshold``."""
        total = sum((self.fractions[n] for n in names if n in self.fractions),
                    np.zeros(self.ct.shape, np.float32))
        return total >= threshold


def case_rng(seed: int, case_id: str) -> np.random.Generator:
    """A generator that depends on ``seed`` and ``case_id`` only (not on other cases).

    Same construction as the brain phantom's: ``default_rng([seed, sha256(case id)])``.
    """
    digest = int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "little")
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, digest])


# -- physics ------------------------------------------------------------------------------
def hu_to_mu(hu: np.ndarray) -> np.ndarray:
    """Linear attenuation at 511 keV (/cm), bilinear in HU (Kinahan et al., Med Phys 1998)."""
    hu = np.asarray(hu, dtype=np.float32)
    soft = 0.096 * (1.0 + hu / 1000.0)
    bone = 0.096 + 6.4e-5 * hu
    return np.clip(np.where(hu <= 0, soft, bone), 0.0, None).astype(np.float32)


def attenuation_factors(mu: np.ndarray, spacing_mm: float,
                        angles: tuple[float, ...] = NAC_ANGLES) -> np.ndarray:
    """Per voxel, the mean over in-plane directions of ``exp(-line integral of mu)``.

    ``mu`` (/cm) is indexed (x, y, z) with equal x and y spacing ``spacing_mm``. For each
    angle the map is rotated in the x-y plane, summed along x (the whole line: attenuation
    does not depend on where on a line of response the photon pair starts), turned into
    ``exp(-sum)``, spread back along the line and rotated back.
    """
    step_cm = spacing_mm / 10.0
    total = np.zeros(mu.shape, np.float64)
    for angle in angles:
        if angle % 180 == 0:
            total += np.exp(-mu.sum(axis=0, keepdims=True) * step_cm)
            continue
        if angle % 180 == 90:
            total += np.exp(-mu.sum(axis=1, keepdims=True) * step_cm)
            continue
        turned = ndimage.rotate(mu, angle, axes=(0, 1), reshape=False, order=1, cval=0.0)
        line = np.exp(-np.clip(turned, 0, None).sum(axis=0, keepdims=True) * step_cm)
        spread = np.broadcast_to(line, mu.shape)
        total += ndimage.rotate(spread, -angle, axes=(0, 1), reshape=False, order=1, cval=1.0)
    return np.clip(total / len(angles), 0.0, 1.0).astype(np.float32)


# -- signed-distance shapes (mm; negative inside) -----------------------------------------
def _ellipsoid(x, y, z, c, r, rot=None):
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


def _ellipse(x, y, cx, cy, a, b, power: float = 2.0):
    """Elliptic (super-elliptic with ``power``) cylinder along z; a, b may vary per voxel."""
    px, py = x - cx, y - cy
    q = (np.abs(px / a) ** power + np.abs(py / b) ** power) ** (1.0 / power)
    rho = np.sqrt(px * px + py * py)
    scale = (rho + 1e-3 * np.minimum(a, b)) / (q + 1e-3)
    return (q - 1.0) * scale


def _segment(x, y, z, p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    d = q - p
    t = ((x - p[0]) * d[0] + (y - p[1]) * d[1] + (z - p[2]) * d[2]) / float(d @ d)
    t = np.clip(t, 0.0, 1.0)
    return np.sqrt((x - p[0] - t * d[0]) ** 2 + (y - p[1] - t * d[1]) ** 2
                   + (z - p[2] - t * d[2]) ** 2)


def _tube(x, y, z, points, radius):
    """Capsule chain through ``points`` with ``radius``."""
    dist = None
    for p, q in itertools.pairwise(points):
        d = _segment(x, y, z, p, q)
        dist = d if dist is None else np.minimum(dist, d)
    return dist - radius


def _memo(memo: dict, key, z, compute):
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


def _iliac(x, y, z, c, r, side, inset, thickness, medial):
    """Lateral half of an ellipsoidal shell: an iliac wing, convex outward."""
    outer = _ellipsoid(x, y, z, c, r)
    return np.maximum(np.maximum(outer + inset, -(outer + thickness)), side * (c[0] - x) - medial)


def _tube_box(points, radius):
    pts = np.asarray(points, float)
    return pts.min(axis=0) - radius, pts.max(axis=0) + radius


def _smin(a, b, k: float = 15.0):
    """Smooth union of two signed distances (blend width ``k`` mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def _rot(axis: str, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# -- the grid and the painter -----------------------------------------------------------------
Shape = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class _Canvas:
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


def _warp_modes(rng: np.random.Generator, amplitude: tuple[float, float]) -> list:
    modes = []
    for axis in range(3):
        for _ in range(2):
            wavelength = rng.uniform(150.0, 320.0)
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            modes.append((axis, rng.uniform(*amplitude) / 2.0,
                          2 * np.pi / wavelength * direction, rng.uniform(0, 2 * np.pi)))
    return modes


def _draw_values(rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    return {name: (float(rng.uniform(*hu)), float(rng.uniform(*suv)))
            for name, (hu, suv) in TISSUES.items()}


# -- lesions ---------------------------------------------------------------------------------
@dataclass
class _Site:
    """Where a lesion may go: a sampler of candidate centres and a containment test."""

    name: str
    background: str  # tissue class around it (its SUV sets the lesion's floor)
    sample: Callable[[np.random.Generator], np.ndarray]
    inside: Shape | None = None  # candidate centre must be at least ``depth`` inside this
    depth: float = 0.0
    radius: tuple[float, float] = (6.0, 18.0)


def _place_lesions(rng, canvas: _Canvas, sites: list[_Site], avoid: list[Shape],
                   values: dict, suv_median: float = 7.5) -> list[dict]:
    """Draw one lesion per site; return their centres, radii, SUV and CT values."""
    min_radius = 0.6 * float(canvas.spacing.max())
    lesions = []
    for site in sites:
        radius = max(float(rng.uniform(*site.radius)), min_radius)
        centre = None
        for _ in range(60):
            candidate = site.sample(rng)
            px, py, pz = (np.array([v], dtype=np.float64) for v in candidate)
            if site.inside is not None and site.inside(px, py, pz)[0] > -(site.depth
                                                                         + 0.5 * radius):
                continue
            if (candidate - radius < canvas.lo).any() or (candidate + radius > canvas.hi).any():
                continue
            if any(shape(px, py, pz)[0] < radius + 12.0 for shape in avoid):
                continue
            if any(np.linalg.norm(candidate - np.array(l["centre"])) < radius + l["radius"] + 5
                   for l in lesions):
                continue
            centre = candidate
            break
        if centre is None:  # crowded or at the grid's edge: a fresh draw, kept in the grid
            centre = np.clip(site.sample(rng), canvas.lo + radius, canvas.hi - radius)
        suv = float(np.clip(rng.lognormal(math.log(suv_median), 0.4), 3.0, 25.0))
        suv = max(suv, 2.0 * values[site.background][1])
        lesions.append({"site": site.name, "centre": [float(v) for v in centre],
                        "radius": radius, "axes": [float(v) for v in rng.uniform(0.8, 1.2, 3)],
                        "suv": suv, "hu": float(rng.uniform(*_LESION_HU))})
    return lesions


def _paint_lesions(canvas: _Canvas, lesions: list[dict]) -> None:
    for k, lesion in enumerate(lesions):
        c = np.array(lesion["centre"])
        r = lesion["radius"] * np.array(lesion["axes"])
        canvas.paint(f"lesion{k}", lambda x, y, z, c=c, r=r: _ellipsoid(x, y, z, c, r),
                     box=(c - r, c + r))


# -- torso ------------------------------------------------------------------------------------
def make_torso(rng: np.random.Generator, size: int, *, diagnosis: str = "negative",
               region: str = "torso") -> PetCtSubject:
    """A torso (``region="torso"``: lower neck to pubis) or thorax (``"thorax"``) subject.

    ``diagnosis``: ``"negative"`` (no lesion), ``"lymphoma"`` (2-6 nodes, sometimes spleen),
    ``"melanoma"`` (1-4 of nodes, lung, liver), ``"lung_cancer"`` (lung primary and 0-3
    hilar/mediastinal nodes, sometimes a liver metastasis).
    """
    if region not in ("torso", "thorax"):
        raise ValueError(f"region must be 'torso' or 'thorax', not {region!r}")
    if diagnosis not in ("negative", "lymphoma", "melanoma", "lung_cancer"):
        raise ValueError(f"no torso diagnosis {diagnosis!r}")
    fov, centre_z = (TORSO_FOV, 0.0) if region == "torso" else (THORAX_FOV, _THORAX_CENTRE_Z)
    u = rng.uniform
    # Frame, adiposity and vertical landmarks (mm, body coordinates: x right, y anterior).
    s, adip, hz = u(0.88, 1.1), u(0.0, 1.0), u(0.92, 1.06)
    z_dia_r = u(10.0, 50.0)
    z_dia_l = z_dia_r - u(8.0, 25.0)
    z_apex = z_dia_r + hz * u(200.0, 240.0)
    a_chest = min(150.0 * s + 30.0 * adip, 0.44 * fov[0])
    b_chest = 100.0 * s + 22.0 * adip
    a_abd = min(a_chest * u(0.9, 1.0) + 12.0 * adip, 0.44 * fov[0])
    b_abd = b_chest * (0.95 + 0.3 * adip) * u(0.95, 1.05)
    a_pel = min(a_chest * u(0.95, 1.06) + 8.0 * adip, 0.44 * fov[0])
    b_pel = b_chest * u(0.92, 1.02) + 8.0 * adip
    a_neck, b_neck = 60.0 * s + 8 * adip, 55.0 * s + 8 * adip
    knots = np.array([-400.0, -250 * hz, -110 * hz, z_dia_r - 40, z_dia_r + 120, z_apex,
                      z_apex + 50, z_apex + 90, 500.0])
    a_knots = np.array([a_pel * 0.95, a_pel, a_abd * 0.93, a_chest * 0.98, a_chest,
                        min(a_chest * 1.06, 0.44 * fov[0]), a_neck * 1.5, a_neck, a_neck])
    b_knots = np.array([b_pel * 0.95, b_pel, b_abd, b_chest, b_chest, b_chest * 0.95,
                        b_neck * 1.2, b_neck, b_neck])
    yc_knots = np.array([0.0, 0.0, 8 * adip, 0.0, 0.0, -5.0, -10.0, -10.0, -10.0])
    fat = 6.0 + 28.0 * adip
    fat_knots = np.array([fat * 1.2, fat * 1.2, fat * 1.35, fat, fat, fat * 0.8,
                          fat * 0.5, fat * 0.4, fat * 0.4])
    wall = u(10.0, 16.0)
    shift = u(0.1, 0.14)  # cavity centre shifted anterior by this share of b

    memo: dict = {}  # profiles of the full warped grid, computed once

    def prof(knot_values, z):
        return _memo(memo, ("prof", id(knot_values)), z,
                     lambda: np.interp(z, knots, knot_values).astype(np.float32))

    def body(x, y, z):
        return _ellipse(x, y, 0.0, prof(yc_knots, z), prof(a_knots, z), prof(b_knots, z), 2.3)

    def inner(z):  # muscle-lined cavity: centre y, half axes
        def compute():
            a, b = prof(a_knots, z), prof(b_knots, z)
            yc, f = prof(yc_knots, z), prof(fat_knots, z)
            d = shift * b
            return yc + d, a - f - wall, b - f - wall - d
        return _memo(memo, ("inner",), z, compute)

    def cavity(x, y, z):
        cy, a, b = inner(z)
        return _ellipse(x, y, 0.0, cy, np.maximum(a, 10.0), np.maximum(b, 10.0), 2.2)

    def spine_y(z):
        cy, _, b = inner(z)
        return cy - b + 0.6 * r_vb(z)

    def r_vb(z):
        return _memo(memo, ("r_vb",), z, lambda: np.interp(
            z, [-300.0, -100.0, z_dia_r + 150, 500.0],
            [24.0 * s, 22.0 * s, 16.0 * s, 12.0 * s]).astype(np.float32))

    # Thoracic landmarks.
    med = u(18.0, 28.0)  # mediastinum half width at the lungs
    ax_c = a_chest - fat - wall
    b_c = b_chest - fat - wall - shift * b_chest
    cy_c = shift * b_chest

    def dome(x, y, side):
        top = z_dia_r if side > 0 else z_dia_l
        return top - 45.0 * (((x - side * 0.45 * ax_c) / (0.75 * ax_c)) ** 2
                             + ((y - cy_c) / b_c) ** 2) + 15.0 * np.minimum(y - cy_c, 0) / b_c

    def lung(side):
        centre = (side * (med + ax_c) / 2.0, cy_c, z_dia_r - 20.0)
        radii = (1.15 * (ax_c - med) / 2.0 + 10.0, 1.1 * b_c, z_apex - z_dia_r + 20.0)

        def shape(x, y, z):
            d = np.maximum(cavity(x, y, z) + 5.0, med - side * x)
            d = np.maximum(d, dome(x, y, side) - z)
            return np.maximum(d, _ellipsoid(x, y, z, centre, radii))
        return shape

    # Heart, vessels, airways.
    hs = s * u(0.9, 1.12)
    heart_c = np.array([-(15.0 + 12.0 * s) + u(-8, 8), cy_c + u(15.0, 30.0), z_dia_l + 50 * hz])
    heart_r = np.array([58.0, 45.0, 55.0]) * hs
    heart_rot = _rot("z", u(-40.0, -20.0)) @ _rot("y", u(10.0, 25.0))
    lv_wall = u(10.0, 14.0)

    def heart(x, y, z):
        return _ellipsoid(x, y, z, heart_c, heart_r, heart_rot)

    y_sp_thorax = float(spine_y(np.array([z_dia_r + 120.0]))[0])
    y_sp_abd = float(spine_y(np.array([-120.0]))[0])
    r_ao = 12.0 * s + u(0, 3)
    aorta = [(10.0, cy_c + 35.0, z_dia_r + 95.0), (0.0, cy_c + 5.0, z_dia_r + 165.0),
             (-22.0, y_sp_thorax + 22.0, z_dia_r + 150.0), (-22.0, y_sp_thorax + 22.0, z_dia_r),
             (-15.0, y_sp_abd + 28.0, -170.0 * hz)]
    ivc = [(24.0, y_sp_abd + 35.0, -170.0 * hz), (26.0, y_sp_abd + 35.0, z_dia_r + 15.0)]
    z_car = z_dia_r + 140.0 * hz
    y_tr = cy_c + u(5.0, 15.0) + 0.35 * (y_sp_thorax - cy_c)
    r_tr = u(8.0, 10.5)
    trachea = [(0.0, y_tr - 8.0, 500.0), (0.0, y_tr, z_apex), (0.0, y_tr, z_car)]
    bronchi = [[(0.0, y_tr, z_car), (side * 45.0, y_tr - 10.0, z_car - 35.0)]
               for side in (-1, 1)]

    # Abdominal organs.
    ls = u(0.88, 1.15)
    liver_c = np.array([50.0 * s + u(-8, 8), u(-5, 15), z_dia_r - 60.0 * hz])
    liver_r = np.array([95.0, 85.0, 80.0]) * ls * s
    left_lobe_c = np.array([-15.0, 30.0 + u(-5, 5), z_dia_r - 35.0])
    left_lobe_r = np.array([55.0, 45.0, 38.0]) * ls * s

    def liver(x, y, z):
        d = _smin(_ellipsoid(x, y, z, liver_c, liver_r),
                  _ellipsoid(x, y, z, left_lobe_c, left_lobe_r), 20.0)
        d = np.maximum(d, z - dome(x, y, 1) + 4.0)
        return np.maximum(d, cavity(x, y, z) + 3.0)

    spleen_c = np.array([-(ax_c - 40.0), -40.0 * s, z_dia_l - 55.0 * hz])
    spleen_r = np.array([32.0, 50.0, 48.0]) * s * u(0.85, 1.25)
    stomach_c = np.array([-45.0 * s, cy_c + 25.0, z_dia_l - 45.0 * hz])
    stomach_r = np.array([42.0, 40.0, 42.0]) * s * u(0.8, 1.2)
    gas_c = stomach_c + np.array([0.0, 0.35, 0.45]) * stomach_r
    gas_r = stomach_r * np.array([0.45, 0.35, 0.3]) * u(0.5, 1.3)
    kid_z = {1: z_dia_r - 145.0 * hz + u(-10, 10), -1: z_dia_l - 120.0 * hz + u(-10, 10)}
    kid_r = np.array([28.0, 25.0, 55.0]) * s * u(0.9, 1.1)
    kid_c = {side: np.array([side * (24.0 * s + 42.0), y_sp_abd + 8.0, kid_z[side]])
             for side in (-1, 1)}
    fill = u(0.7, 1.3)
    bladder_c = np.array([0.0, u(10.0, 40.0), -265.0 * hz])
    bladder_r = np.array([44.0, 36.0, 34.0]) * fill ** (1 / 3) * s
    psoas = [[(side * 38.0, y_sp_abd + 10, -60.0), (side * 48.0, y_sp_abd + 20, -240.0 * hz)]
             for side in (-1, 1)]
    gas_pockets = [(np.array([u(-0.55, 0.55) * a_abd, u(-0.1, 0.4) * b_abd,
                              u(-210, -80) * hz]), u(8.0, 18.0))
                   for _ in range(int(rng.integers(2, 6)))]
    # Bones.
    disc_period, disc_h = u(26.0, 32.0), u(6.0, 9.0)
    disc_phase = u(0, disc_period)
    rib_period, rib_r = u(24.0, 30.0), u(5.0, 6.5)
    rib_phase = u(0, rib_period)
    rib_slope = u(0.5, 0.7)
    rib_norm = math.sqrt(1.0 + rib_slope ** 2)
    rib_top, rib_bottom = z_apex - 10.0, z_dia_l - 80.0 * hz
    iliac = {side: np.array([side * 0.6 * a_pel, u(-45.0, -30.0), -195.0 * hz])
             for side in (-1, 1)}
    iliac_r = np.array([26.0, 70.0, 58.0]) * s
    femur = {side: np.array([side * 0.58 * a_pel, 5.0, -318.0 * hz]) for side in (-1, 1)}
    clavicle = [[(side * 18.0, cy_c + b_chest * 0.55, z_apex + 20), (side * a_chest * 0.85,
                 0.15 * b_chest, z_apex + 35)] for side in (-1, 1)]
    scap = {side: np.array([side * a_chest * 0.55, -b_chest * 0.62, z_apex - 55.0])
            for side in (-1, 1)}
    scap_rot = {side: _rot("z", side * u(20.0, 35.0)) for side in (-1, 1)}
    values = _draw_values(rng)
    warp = _warp_modes(rng, (3.0, 6.0))

    # Lesion sites for this diagnosis.
    def at(centre, jitter):
        return lambda g: np.asarray(centre, float) + g.uniform(-1, 1, 3) * np.asarray(jitter)

    lung_l, lung_r = lung(-1), lung(1)

    def in_lung(g):
        side = -1 if g.random() < 0.45 else 1
        return np.array([side * g.uniform(med + 15, ax_c - 15), cy_c + g.uniform(-0.7, 0.7)
                         * b_c, g.uniform(z_dia_r + 10, z_apex - 25)])

    def in_liver(g):
        return liver_c + g.uniform(-0.6, 0.6, 3) * liver_r

    both_lungs = lambda x, y, z: np.minimum(lung_l(x, y, z), lung_r(x, y, z))
    node_sites = {
        "mediastinal": _Site("mediastinal node", "mediastinum",
                             at((0.0, y_tr + 12.0, z_car + 25.0), (12.0, 8.0, 20.0)),
                             radius=(8.0, 18.0)),
        "hilar": _Site("hilar node", "mediastinum",
                       lambda g: np.array([g.choice([-1, 1]) * (med + 8.0), y_tr - 5.0,
                                           z_car - 30.0 + g.uniform(-10, 10)]),
                       radius=(7.0, 15.0)),
        "axillary": _Site("axillary node", "fat",
                          lambda g: np.array([g.choice([-1, 1]) * (a_chest - fat - 10.0),
                                              g.uniform(-15, 15), z_apex - g.uniform(30, 60)]),
                          radius=(7.0, 16.0)),
        "supraclavicular": _Site("supraclavicular node", "fat",
                                 lambda g: np.array([g.choice([-1, 1]) * g.uniform(40, 60),
                                                     g.uniform(5, 20), z_apex + 25.0]),
                                 radius=(6.0, 14.0)),
        "paraaortic": _Site("para-aortic node", "viscera",
                            at((-28.0, y_sp_abd + 45.0, -110.0 * hz), (8.0, 8.0, 35.0)),
                            radius=(8.0, 20.0)),
        "iliac": _Site("iliac node", "viscera",
                       lambda g: np.array([g.choice([-1, 1]) * g.uniform(55, 70),
                                           g.uniform(5, 25), -185.0 * hz + g.uniform(-10, 10)]),
                       radius=(8.0, 18.0)),
    }
    lung_site = _Site("lung", "lung", in_lung, inside=both_lungs, depth=6.0, radius=(7.0, 22.0))
    liver_site = _Site("liver", "liver", in_liver, inside=liver, depth=8.0, radius=(8.0, 22.0))
    spleen_site = _Site("spleen", "spleen", lambda g: spleen_c + g.uniform(-0.4, 0.4, 3)
                        * spleen_r, radius=(8.0, 16.0))
    sites: list[_Site] = []
    if diagnosis == "lymphoma":
        names = list(node_sites)
        for k in rng.choice(len(names), int(rng.integers(2, 7)), replace=True):
            sites.append(node_sites[names[k]])
        if rng.random() < 0.3:
            sites.append(spleen_site)
    elif diagnosis == "melanoma":
        pool = [node_sites["axillary"], node_sites["iliac"], node_sites["paraaortic"],
                lung_site, liver_site]
        for k in rng.choice(len(pool), int(rng.integers(1, 5)), replace=True):
            sites.append(pool[k])
    elif diagnosis == "lung_cancer":
        primary = _Site("lung primary", "lung", in_lung, inside=both_lungs, depth=4.0,
                        radius=(12.0, 30.0))
        sites.append(primary)
        pool = [node_sites["hilar"], node_sites["mediastinal"], node_sites["supraclavicular"]]
        for k in rng.choice(len(pool), int(rng.integers(0, 4)), replace=True):
            sites.append(pool[k])
        if rng.random() < 0.2:
            sites.append(liver_site)
    hot = [heart, lambda x, y, z: _ellipsoid(x, y, z, bladder_c, bladder_r)]
    hot += [lambda x, y, z, c=c: _ellipsoid(x, y, z, c, kid_r) for c in kid_c.values()]
    lesions = _place_lesions(rng, _DummyCanvas(fov, size, centre_z), sites, hot, values)
    fields_seed = int(rng.integers(2**31))

    # Paint, outside in.
    canvas = _Canvas(size, fov, centre_z, warp)
    canvas.paint("fat", body)
    canvas.paint("muscle", lambda x, y, z: body(x, y, z) + prof(fat_knots, z))
    canvas.paint("viscera", lambda x, y, z: np.maximum(cavity(x, y, z), z - z_dia_r + 10.0))
    canvas.paint("mediastinum", lambda x, y, z: np.maximum(cavity(x, y, z), z_dia_l - 20.0 - z))
    for side in (-1, 1):
        canvas.paint("muscle", lambda x, y, z, p=psoas[side > 0]: _tube(x, y, z, p, 20.0 * s),
                     box=_tube_box(psoas[side > 0], 20.0 * s))
    canvas.paint("lung", lung_l)
    canvas.paint("lung", lung_r)
    canvas.paint("air", lambda x, y, z: _tube(x, y, z, trachea, r_tr), box=_tube_box(trachea, r_tr))
    for b in bronchi:
        canvas.paint("air", lambda x, y, z, b=b: _tube(x, y, z, b, 0.65 * r_tr),
                     box=_tube_box(b, r_tr))
    canvas.paint("liver", liver)
    canvas.paint("spleen", lambda x, y, z: np.maximum(_ellipsoid(x, y, z, spleen_c, spleen_r),
                                                      cavity(x, y, z) + 3.0))
    canvas.paint("stomach", lambda x, y, z: _ellipsoid(x, y, z, stomach_c, stomach_r))
    canvas.paint("air", lambda x, y, z: _ellipsoid(x, y, z, gas_c, gas_r),
                 box=(gas_c - gas_r, gas_c + gas_r))
    for c, r in gas_pockets:
        canvas.paint("air", lambda x, y, z, c=c, r=r: np.maximum(
            _ellipsoid(x, y, z, c, (r, r, r * 1.5)), cavity(x, y, z) + 10.0),
            box=(c - (r, r, 1.5 * r), c + (r, r, 1.5 * r)))
    for side in (-1, 1):
        c = kid_c[side]
        canvas.paint("kidney", lambda x, y, z, c=c: _ellipsoid(x, y, z, c, kid_r),
                     box=(c - kid_r, c + kid_r))
        pc = c + np.array([-side * 0.3 * kid_r[0], 0.15 * kid_r[1], 0.0])
        pr = kid_r * np.array([0.35, 0.35, 0.4])
        canvas.paint("renal_pelvis", lambda x, y, z, c=pc, r=pr: _ellipsoid(x, y, z, c, r),
                     box=(pc - pr, pc + pr))
    canvas.paint("bladder", lambda x, y, z: _ellipsoid(x, y, z, bladder_c, bladder_r),
                 box=(bladder_c - bladder_r, bladder_c + bladder_r))
    canvas.paint("myocardium", heart, box=(heart_c - heart_r.max(), heart_c + heart_r.max()))
    canvas.paint("blood", lambda x, y, z: heart(x, y, z) + lv_wall,
                 box=(heart_c - heart_r.max(), heart_c + heart_r.max()))
    canvas.paint("blood", lambda x, y, z: _tube(x, y, z, aorta, r_ao), box=_tube_box(aorta, r_ao))
    canvas.paint("blood", lambda x, y, z: _tube(x, y, z, ivc, 0.85 * r_ao),
                 box=_tube_box(ivc, r_ao))

    # Spine: cancellous bodies in a cortical shell, discs, canal, posterior elements.
    def vertebra(x, y, z):
        return _ellipse(x, y, 0.0, spine_y(z), r_vb(z), 0.85 * r_vb(z))

    def discs(x, y, z):
        slab = np.abs(np.mod(z - disc_phase, disc_period) - disc_period / 2.0) - disc_h / 2.0
        return np.maximum(vertebra(x, y, z), -slab)

    canvas.paint("cortical", vertebra)
    canvas.paint("marrow", lambda x, y, z: vertebra(x, y, z) + 3.0)
    canvas.paint("disc", discs)
    canal_y = lambda z: spine_y(z) - 0.85 * r_vb(z) - 9.0
    canvas.paint("cortical", lambda x, y, z: np.maximum(
        _ellipse(x, y, 0.0, canal_y(z) - 8.0, 0.55 * r_vb(z) + 6.0, 18.0), -discs(x, y, z)
        - 100.0))
    canvas.paint("csf", lambda x, y, z: _ellipse(x, y, 0.0, canal_y(z), 7.5, 7.0))
    canvas.paint("cortical", lambda x, y, z: _ellipse(x, y, 0.0, canal_y(z) - 28.0, 5.0, 14.0))

    # Ribs (periodic slanted hoops in the chest wall), sternum, clavicles, scapulae.
    def ribs(x, y, z):
        cy, a, b = inner(z)
        ring = np.abs(_ellipse(x, y, 0.0, cy, a + 6.0, b + 6.0, 2.2))
        # Ribs fall along their course from the spine (angle 0) to the front (angle pi).
        course = np.arctan2(np.abs(x), cy - y) * 0.5 * (a + b)
        slant = z + rib_slope * course
        dz = np.abs(np.mod(slant - rib_phase, rib_period) - rib_period / 2.0) / rib_norm
        d = np.sqrt(ring ** 2 + dz ** 2) - rib_r
        d = np.maximum(d, np.maximum(rib_bottom - z, z - rib_top))
        # No bony rib in front of the sternum's sides (costal cartilage).
        front = (y - cy) / np.maximum(b, 1.0)
        return np.maximum(d, np.minimum((front - 0.6) * b, 0.35 * a - np.abs(x)))

    canvas.paint("cortical", ribs)
    canvas.paint("marrow", lambda x, y, z: ribs(x, y, z) + 2.5)
    st_y = cy_c + b_c + 10.0
    sternum = [(0.0, st_y, z_dia_r + 10.0), (0.0, st_y + 3, z_apex - 10.0)]
    canvas.paint("marrow", lambda x, y, z: _tube(x, y, z, sternum, 9.0),
                 box=_tube_box(sternum, 9.0))
    for side in (-1, 1):
        canvas.paint("cortical", lambda x, y, z, c=clavicle[side > 0]: np.maximum(
            _tube(x, y, z, c, 8.0), body(x, y, z) + 12.0), box=_tube_box(clavicle[side > 0], 8.0))
        c, rot = scap[side], scap_rot[side]
        canvas.paint("cortical", lambda x, y, z, c=c, rot=rot: _ellipsoid(
            x, y, z, c, (45.0, 6.0, 65.0), rot), box=(c - 70, c + 70))
    # Pelvis: iliac wings (shells), sacrum, femoral heads.
    for side in (-1, 1):
        c = iliac[side]
        canvas.paint("cortical", lambda x, y, z, c=c, side=side: _iliac(x, y, z, c, iliac_r,
                                                                       side, 0.0, 12.0, 8.0),
                     box=(c - iliac_r, c + iliac_r))
        canvas.paint("marrow", lambda x, y, z, c=c, side=side: _iliac(x, y, z, c, iliac_r,
                                                                     side, 3.0, 9.0, 5.0),
                     box=(c - iliac_r, c + iliac_r))
        c = femur[side]
        canvas.paint("cortical", lambda x, y, z, c=c: _ellipsoid(x, y, z, c, (25.0,) * 3),
                     box=(c - 25, c + 25))
        canvas.paint("marrow", lambda x, y, z, c=c: _ellipsoid(x, y, z, c, (21.0,) * 3),
                     box=(c - 25, c + 25))
    sac_c = np.array([0.0, y_sp_abd - 5.0, -205.0 * hz])
    canvas.paint("cortical", lambda x, y, z: _ellipsoid(x, y, z, sac_c, (45.0, 22.0, 50.0)),
                 box=(sac_c - 50, sac_c + 50))
    canvas.paint("marrow", lambda x, y, z: _ellipsoid(x, y, z, sac_c, (41.0, 18.0, 46.0)),
                 box=(sac_c - 50, sac_c + 50))
    _paint_lesions(canvas, lesions)
    body_sdf = body(canvas.x, canvas.y, canvas.z)
    return _finish(rng, canvas, values, lesions, diagnosis, region, fields_seed, body_sdf,
                   liver_suv=values["liver"][1])


class _DummyCanvas:
    """Spacing and extent of a grid: lesions are drawn before the grid is built."""

    def __init__(self, fov, size, centre_z: float = 0.0):
        self.spacing = np.asarray(fov, dtype=float) / size
        half = np.asarray(fov, dtype=float) / 2.0
        self.lo = np.array([-half[0], -half[1], centre_z - half[2]])
        self.hi = np.array([half[0], half[1], centre_z + half[2]])


# -- head and neck ------------------------------------------------------------------------
def make_head_neck(rng: np.random.Generator, size: int, *,
                   diagnosis: str = "hnscc") -> PetCtSubject:
    """A head-and-neck subject, vertex to lung apices.

    ``diagnosis``: ``"hnscc"`` (a primary at the tonsil, base of tongue, oral tongue,
    larynx or hypopharynx and 0-3 ipsilateral cervical nodes) or ``"negative"``.
    """
    if diagnosis not in ("negative", "hnscc"):
        raise ValueError(f"no head-and-neck diagnosis {diagnosis!r}")
    u = rng.uniform
    s, adip, hz = u(0.92, 1.08), u(0.0, 1.0), u(0.94, 1.06)
    flex = u(-8.0, 8.0)  # head flexion (degrees about x) around the upper neck
    pivot = np.array([0.0, -10.0, 10.0])
    head_c = np.array([u(-4, 4), u(-4, 6), 85.0 * hz])
    head_r = np.array([72.0, 92.0, 86.0]) * s * np.array([u(0.95, 1.05), u(0.95, 1.05), 1.0])
    face_c = np.array([0.0, 50.0 * s, 25.0 * hz])
    face_r = np.array([52.0, 48.0, 58.0]) * s
    scalp, skull = u(4.0, 7.0), u(5.0, 8.0)
    gm = u(4.0, 6.0)
    a_n, b_n = (52.0 + 14.0 * adip) * s * u(0.95, 1.05), (50.0 + 12.0 * adip) * s
    a_sh, b_sh = min(168.0 * s + 15 * adip, 0.47 * HEAD_NECK_FOV[0]), 100.0 * s + 12 * adip
    fat = 4.0 + 12.0 * adip
    zk = np.array([-400.0, -125.0 * hz, -95.0 * hz, -60.0, 60.0, 400.0])
    ak = np.array([a_sh, a_sh * 0.92, a_n * 1.3, a_n, a_n, a_n])
    bk = np.array([b_sh, b_sh * 0.95, b_n * 1.15, b_n, b_n, b_n])
    yk = np.array([-10.0, -10.0, -8.0, -5.0, -5.0, -5.0])
    y_c = -0.45 * b_n  # cervical spine, posterior half of the neck

    def neck(x, y, z):
        return _ellipse(x, y, 0.0, np.interp(z, zk, yk), np.interp(z, zk, ak),
                        np.interp(z, zk, bk), 2.1)

    rot = _rot("x", flex)

    frame_memo: dict = {}

    def head_frame(fn):  # evaluate ``fn`` in head coordinates (flexed around the pivot)
        def shape(x, y, z):
            def compute():
                px, py, pz = x - pivot[0], y - pivot[1], z - pivot[2]
                return (rot[0, 0] * px + rot[0, 1] * py + rot[0, 2] * pz + pivot[0],
                        rot[1, 0] * px + rot[1, 1] * py + rot[1, 2] * pz + pivot[1],
                        rot[2, 0] * px + rot[2, 1] * py + rot[2, 2] * pz + pivot[2])
            return fn(*_memo(frame_memo, "head", x, compute))
        return shape

    def hbox(c, r):  # world box of a head-frame ellipsoid, widened for the flexion
        world = rot.T @ (np.asarray(c, float) - pivot) + pivot
        reach = 1.2 * np.asarray(r, float) + 3.0
        return world - reach, world + reach

    head = head_frame(lambda x, y, z: _ellipsoid(x, y, z, head_c, head_r))
    face = head_frame(lambda x, y, z: np.maximum(_ellipsoid(x, y, z, face_c, face_r),
                                                 z - head_c[2]))

    def body(x, y, z):
        return _smin(_smin(head(x, y, z), face(x, y, z), 12.0),
                     np.maximum(neck(x, y, z), z - 20.0), 18.0)

    brain_base = head_c[2] - 0.55 * head_r[2]
    brain_r = head_r - scalp - skull - 2.0

    def brain(x, y, z):
        return np.maximum(_ellipsoid(x, y, z, head_c, brain_r), brain_base - z)

    cereb_c = head_c + np.array([0.0, -0.5 * head_r[1], -0.55 * head_r[2]])
    cereb_r = np.array([48.0, 30.0, 24.0]) * s
    eye_c = [head_c + np.array([side * 32.0 * s, 0.72 * head_r[1], -0.2 * head_r[2]])
             for side in (-1, 1)]
    eye_r = 12.0 * s
    nasal_c = np.array([0.0, 0.62 * head_r[1], head_c[2] - 0.45 * head_r[2]])
    sinus_c = [nasal_c + np.array([side * 27.0, -8.0, -5.0]) for side in (-1, 1)]
    mand_c, mand_r = np.array([0.0, 12.0, 12.0 * hz]), np.array([46.0, 58.0]) * s
    tongue_c, tongue_r = np.array([0.0, 38.0 * s, 17.0 * hz]), np.array([22.0, 28.0, 14.0]) * s
    airway = [(0.0, 36.0 * s, 45.0 * hz), (0.0, 16.0, 18.0 * hz), (0.0, 12.0, -12.0 * hz),
              (0.0, 22.0, -35.0 * hz), (0.0, 20.0, -400.0)]
    r_air = u(6.5, 9.0)
    parotid_c = [np.array([side * (a_n * 0.85 + 6.0), 2.0, 28.0 * hz]) for side in (-1, 1)]
    parotid_r = np.array([14.0, 22.0, 24.0]) * s * u(0.85, 1.15)
    subman_c = [np.array([side * 32.0 * s, 34.0 * s, -6.0 * hz]) for side in (-1, 1)]
    tonsil_c = [np.array([side * 14.0, 17.0, 16.0 * hz]) for side in (-1, 1)]
    tonsil_r = np.array([8.0, 8.0, 12.0]) * u(0.8, 1.3)
    thyroid_c = [np.array([side * 18.0, 26.0, -72.0 * hz]) for side in (-1, 1)]
    node_cs = [np.array([side * u(30, 42), u(2, 15), z * hz]) for side in (-1, 1)
               for z in (8.0, -22.0, -52.0)]
    lung_c = [np.array([side * 62.0 * s, -8.0, -235.0 * hz]) for side in (-1, 1)]
    lung_r = np.array([48.0, 62.0, 95.0]) * s
    clavicle = [[(side * 16.0, 30.0, -122.0 * hz), (side * a_sh * 0.85, 5.0, -110.0 * hz)]
                for side in (-1, 1)]
    disc_period, disc_h, disc_phase = u(17.0, 21.0), u(4.0, 6.0), u(0.0, 20.0)
    values = _draw_values(rng)
    values["brain_wm"] = (values["brain_wm"][0], values["brain_gm"][1] * u(0.3, 0.45))
    warp = _warp_modes(rng, (2.0, 4.0))

    sites: list[_Site] = []
    side = 1 if rng.random() < 0.5 else -1
    if diagnosis == "hnscc":
        primaries = {
            "tonsil": (np.array([side * 15.0, 17.0, 16.0 * hz]), "tonsil"),
            "base of tongue": (np.array([side * 5.0, 26.0, 4.0 * hz]), "tongue"),
            "oral tongue": (np.array([side * 10.0, 44.0 * s, 15.0 * hz]), "tongue"),
            "larynx": (np.array([side * 6.0, 24.0, -38.0 * hz]), "muscle"),
            "hypopharynx": (np.array([side * 14.0, 10.0, -22.0 * hz]), "muscle"),
        }
        name = list(primaries)[int(rng.integers(len(primaries)))]
        centre, bg = primaries[name]
        sites.append(_Site(f"{name} primary", bg, lambda g, c=centre: c + g.uniform(-4, 4, 3),
                           radius=(10.0, 22.0)))
        for k in range(int(rng.choice([0, 1, 1, 2, 3]))):
            level = (8.0, -22.0, -52.0)[k]
            sites.append(_Site(f"level {('II', 'III', 'IV')[k]} node", "muscle",
                               lambda g, z=level: np.array([side * g.uniform(32, 44),
                                                            g.uniform(0, 16), z * hz]),
                               radius=(8.0, 16.0)))
    lesions = _place_lesions(rng, _DummyCanvas(HEAD_NECK_FOV, size), sites, [], values,
                             suv_median=10.0)
    fields_seed = int(rng.integers(2**31))

    canvas = _Canvas(size, HEAD_NECK_FOV, 0.0, warp)
    canvas.paint("fat", body)
    canvas.paint("muscle", lambda x, y, z: body(x, y, z) + fat)
    for c in lung_c:
        canvas.paint("lung", lambda x, y, z, c=c: np.maximum(_ellipsoid(x, y, z, c, lung_r),
                                                             neck(x, y, z) + 15.0),
                     box=(c - lung_r, c + lung_r))
    skull_box = hbox(head_c, head_r)
    canvas.paint("cortical", head_frame(lambda x, y, z: _ellipsoid(x, y, z, head_c,
                                                                   head_r - scalp)), skull_box)
    canvas.paint("csf", head_frame(lambda x, y, z: _ellipsoid(x, y, z, head_c,
                                                              head_r - scalp - skull)), skull_box)
    canvas.paint("cortical", head_frame(lambda x, y, z: np.maximum(
        _ellipsoid(x, y, z, head_c, head_r - scalp - skull), np.abs(z - brain_base + 4) - 5.0)),
        skull_box)
    canvas.paint("brain_gm", head_frame(brain), skull_box)
    canvas.paint("brain_gm", head_frame(lambda x, y, z: _ellipsoid(x, y, z, cereb_c, cereb_r)),
                 hbox(cereb_c, cereb_r))
    canvas.paint("brain_wm", head_frame(lambda x, y, z: brain(x, y, z) + gm), skull_box)
    for side_ in (-1, 1):
        vc, vr = head_c + np.array([side_ * 11.0, 5.0, 5.0]), (7.0, 26.0, 11.0)
        canvas.paint("csf", head_frame(lambda x, y, z, c=vc, r=vr: _ellipsoid(x, y, z, c, r)),
                     hbox(vc, vr))
    for c in eye_c:
        canvas.paint("eye", head_frame(lambda x, y, z, c=c: _ellipsoid(x, y, z, c, (eye_r,) * 3)),
                     hbox(c, (eye_r,) * 3))
    canvas.paint("air", head_frame(lambda x, y, z: _ellipsoid(x, y, z, nasal_c,
                                                              (11.0, 24.0, 18.0))),
                 hbox(nasal_c, (11.0, 24.0, 18.0)))
    for c in sinus_c:
        canvas.paint("air", head_frame(lambda x, y, z, c=c: _ellipsoid(x, y, z, c,
                                                                       (13.0, 15.0, 15.0))),
                     hbox(c, (13.0, 15.0, 15.0)))

    def mandible(x, y, z):
        ring = np.abs(_ellipse(x, y, mand_c[0], mand_c[1], mand_r[0], mand_r[1]))
        d = np.maximum(ring - 6.0, np.abs(z - mand_c[2]) - 14.0)
        return np.maximum(d, mand_c[1] - 25.0 - y)

    jaw_box = hbox(mand_c, (mand_r[0] + 8.0, mand_r[1] + 8.0, 16.0))
    canvas.paint("cortical", head_frame(mandible), jaw_box)
    canvas.paint("marrow", head_frame(lambda x, y, z: mandible(x, y, z) + 3.0), jaw_box)
    canvas.paint("tongue", head_frame(lambda x, y, z: _ellipsoid(x, y, z, tongue_c, tongue_r)),
                 hbox(tongue_c, tongue_r))
    canvas.paint("air", lambda x, y, z: _tube(x, y, z, airway, r_air),
                 box=_tube_box(airway, r_air))
    for c in parotid_c:
        canvas.paint("salivary", lambda x, y, z, c=c: _ellipsoid(x, y, z, c, parotid_r),
                     box=(c - parotid_r, c + parotid_r))
    for c in subman_c:
        canvas.paint("salivary", lambda x, y, z, c=c: _ellipsoid(x, y, z, c, (13.0, 13.0, 10.0)),
                     box=(c - 13, c + 13))
    for c in tonsil_c:
        canvas.paint("tonsil", lambda x, y, z, c=c: _ellipsoid(x, y, z, c, tonsil_r),
                     box=(c - tonsil_r, c + tonsil_r))
    for c in thyroid_c:
        canvas.paint("thyroid", lambda x, y, z, c=c: _ellipsoid(x, y, z, c, (9.0, 9.0, 22.0)),
                     box=(c - 22, c + 22))
    for c in node_cs:
        canvas.paint("node", lambda x, y, z, c=c: _ellipsoid(x, y, z, c, (5.0, 5.0, 7.0)),
                     box=(c - 7, c + 7))

    def vertebra(x, y, z):
        return np.maximum(_ellipse(x, y, 0.0, y_c, 11.0 * s, 9.5 * s), z - 40.0 * hz)

    canvas.paint("cortical", vertebra)
    canvas.paint("marrow", lambda x, y, z: vertebra(x, y, z) + 2.5)
    canvas.paint("disc", lambda x, y, z: np.maximum(vertebra(x, y, z), -(np.abs(np.mod(
        z - disc_phase, disc_period) - disc_period / 2.0) - disc_h / 2.0)))
    canvas.paint("csf", lambda x, y, z: np.maximum(_ellipse(x, y, 0.0, y_c - 19.0, 7.0, 6.5),
                                                   z - 45.0 * hz))
    canvas.paint("cortical", lambda x, y, z: np.maximum(
        _ellipse(x, y, 0.0, y_c - 36.0, 4.5, 10.0), z - 35.0 * hz))
    for c in clavicle:
        canvas.paint("cortical", lambda x, y, z, c=c: np.maximum(
            _tube(x, y, z, c, 7.5), body(x, y, z) + 10.0), box=_tube_box(c, 7.5))
    _paint_lesions(canvas, lesions)
    body_sdf = body(canvas.x, canvas.y, canvas.z)
    return _finish(rng, canvas, values, lesions, diagnosis, "head_neck", fields_seed, body_sdf,
                   liver_suv=values["liver"][1])


# -- images from fractions ------------------------------------------------------------------
def _smooth_field(rng: np.random.Generator, shape, sigma_vox: float) -> np.ndarray:
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox,
                                     mode="wrap")
    return field_ / max(float(field_.std()), 1e-6)


def _finish(rng, canvas: _Canvas, values, lesions, diagnosis, region, fields_seed, body_sdf,
            *, liver_suv: float) -> PetCtSubject:
    shape = canvas.shape
    fractions = canvas.fractions
    lesion_frac = np.zeros(shape, np.float32)
    ct = np.zeros(shape, np.float32)
    suv = np.zeros(shape, np.float32)
    tissue = np.zeros(shape, np.float32)
    for name, frac in fractions.items():
        if name.startswith("lesion"):
            lesion = lesions[int(name[6:])]
            hu, uptake = lesion["hu"], lesion["suv"]
            lesion_frac += frac
        else:
            hu, uptake = values[name]
        ct += frac * np.float32(hu)
        suv += frac * np.float32(uptake)
        tissue += frac
    ct += (1.0 - tissue) * np.float32(_AIR_HU)

    # Per-subject scanner draws (independent of the grid) and grid-dependent noise.
    fields = np.random.default_rng([fields_seed, canvas.size])
    fwhm = float(rng.uniform(4.0, 6.0))
    noise_rel = float(rng.uniform(0.10, 0.20))
    ct_sigma = float(rng.uniform(10.0, 20.0))
    weight = float(rng.uniform(50.0, 110.0))
    dose = float(rng.uniform(3.0, 4.0) * 1e6 * weight)  # ~3-4 MBq/kg injected
    uptake_min = float(rng.uniform(50.0, 75.0))
    decayed = dose * 2.0 ** (-uptake_min / 109.77)  # F-18 half-life 109.77 min
    bqml_per_suv = decayed / (weight * 1000.0)

    texture = _smooth_field(fields, shape, 60.0 / canvas.h)
    suv *= 1.0 + 0.06 * np.clip(texture, -3, 3)
    sigma = [fwhm / 2.3548 / sp for sp in canvas.spacing]
    blurred = ndimage.gaussian_filter(suv, sigma, truncate=3.0)
    noise = _smooth_field(fields, shape, 0.6)
    pet = blurred + noise_rel * np.sqrt(np.clip(blurred, 0, None) * liver_suv) * noise
    pet = np.clip(pet, 0.0, None).astype(np.float32)

    ct = ct + ct_sigma * fields.standard_normal(shape).astype(np.float32)
    spacing = canvas.spacing
    ii = (np.arange(canvas.size) - (canvas.size - 1) / 2.0) * spacing[0]
    circle = (ii[:, None] ** 2 + ii[None, :] ** 2) <= (0.49 * canvas.size * spacing[0]) ** 2
    ct[~circle] = _CT_FILL_HU
    ct = np.clip(np.rint(ct), _CT_FILL_HU, 3071.0).astype(np.float32)

    att = attenuation_factors(hu_to_mu(ct), float(spacing[0]))
    nac = (pet * att).astype(np.float32)

    label = (lesion_frac >= 0.5).astype(np.uint8)
    for name, frac in fractions.items():
        if name.startswith("lesion") and frac.max() > 0:
            label[np.unravel_index(int(np.argmax(frac)), shape)] = 1
    info = {
        "weight_kg": weight, "injected_bq": dose, "uptake_min": uptake_min,
        "bqml_per_suv": bqml_per_suv, "fwhm_mm": fwhm, "noise_rel": noise_rel,
        "ct_noise_hu": ct_sigma, "tissue_values": values, "lesions": lesions,
        "body": body_sdf <= 0,
    }
    return PetCtSubject(region=region, diagnosis=diagnosis, ct=ct, suv=pet, nac=nac,
                        label=label, attenuation=att, fractions=fractions,
                        affine=canvas.affine, info=info)
