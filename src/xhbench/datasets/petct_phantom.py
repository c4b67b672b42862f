"""Procedural FDG PET/CT phantoms: torso (thorax + abdomen + pelvis) and head and neck.

Shared by the ``autopet``, ``hnscc`` and ``nsclc`` data sets (the layout modules only name
files). One subject is built in four steps
(:mod:`~xhbench.datasets.petct_torso` and :mod:`~xhbench.datasets.petct_head_neck` draw the
anatomy with the shapes of :mod:`~xhbench.datasets.petct_shapes`; this module turns it into
images):

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
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .petct_shapes import Canvas, GridExtent, Shape, ellipsoid

__all__ = [
    "DIAGNOSES",
    "HEAD_NECK_FOV",
    "NAC_ANGLES",
    "THORAX_FOV",
    "TISSUES",
    "TORSO_FOV",
    "PetCtSubject",
    "Site",
    "attenuation_factors",
    "case_rng",
    "draw_values",
    "images_from_fractions",
    "hu_to_mu",
    "paint_lesions",
    "place_lesions",
]

#: Field of view (mm, x y z) of each region; the grid is ``size``^3 voxels over it.
TORSO_FOV = (480.0, 480.0, 640.0)  # lower neck to pubis (AutoPET-like torso)
THORAX_FOV = (480.0, 480.0, 400.0)  # liver dome to lower neck (NSCLC)
HEAD_NECK_FOV = (360.0, 360.0, 350.0)  # vertex to lung apices (HNSCC)

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


def draw_values(rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    """One subject's (HU, SUV) of every tissue class, drawn in :data:`TISSUES`' ranges."""
    return {name: (float(rng.uniform(*hu)), float(rng.uniform(*suv)))
            for name, (hu, suv) in TISSUES.items()}


# -- lesions ---------------------------------------------------------------------------------
@dataclass
class Site:
    """Where a lesion may go: a sampler of candidate centres and a containment test."""

    name: str
    background: str  # tissue class around it (its SUV sets the lesion's floor)
    sample: Callable[[np.random.Generator], np.ndarray]
    inside: Shape | None = None  # candidate centre must be at least ``depth`` inside this
    depth: float = 0.0
    radius: tuple[float, float] = (6.0, 18.0)


def place_lesions(rng, canvas: GridExtent, sites: list[Site], avoid: list[Shape],
                  values: dict, suv_median: float = 7.5) -> list[dict]:
    """Draw one lesion per site; return their centres, radii, SUV and CT values."""
    min_radius = 0.6 * float(canvas.spacing.max())
    lesions = []
    for site in sites:
        radius = max(float(rng.uniform(*site.radius)), min_radius)
        centre = None
        for _ in range(60):
            candidate = site.sample(rng)
            px, py, pz = (np.array([value], dtype=np.float64) for value in candidate)
            if site.inside is not None and site.inside(px, py, pz)[0] > -(site.depth
                                                                         + 0.5 * radius):
                continue
            if (candidate - radius < canvas.lo).any() or (candidate + radius > canvas.hi).any():
                continue
            if any(shape(px, py, pz)[0] < radius + 12.0 for shape in avoid):
                continue
            if any(np.linalg.norm(candidate - np.array(other["centre"]))
                   < radius + other["radius"] + 5 for other in lesions):
                continue
            centre = candidate
            break
        if centre is None:  # crowded or at the grid's edge: a fresh draw, kept in the grid
            centre = np.clip(site.sample(rng), canvas.lo + radius, canvas.hi - radius)
        suv = float(np.clip(rng.lognormal(math.log(suv_median), 0.4), 3.0, 25.0))
        suv = max(suv, 2.0 * values[site.background][1])
        lesions.append({"site": site.name, "centre": [float(value) for value in centre],
                        "radius": radius,
                        "axes": [float(value) for value in rng.uniform(0.8, 1.2, 3)],
                        "suv": suv, "hu": float(rng.uniform(*_LESION_HU))})
    return lesions


def paint_lesions(canvas: Canvas, lesions: list[dict]) -> None:
    """Each lesion as its own tissue ``lesion<index>``, an ellipsoid over what is there."""
    for index, lesion in enumerate(lesions):
        centre = np.array(lesion["centre"])
        radii = lesion["radius"] * np.array(lesion["axes"])
        canvas.paint(f"lesion{index}", lambda x, y, z, centre=centre, radii=radii: ellipsoid(
            x, y, z, centre, radii), box=(centre - radii, centre + radii))


# -- images from fractions ------------------------------------------------------------------
def _smooth_field(rng: np.random.Generator, shape, sigma_vox: float) -> np.ndarray:
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox,
                                     mode="wrap")
    return field_ / max(float(field_.std()), 1e-6)


def images_from_fractions(rng, canvas: Canvas, values, lesions, diagnosis, region,
                          fields_seed, body_sdf, *, liver_suv: float) -> PetCtSubject:
    """CT, AC-PET, NAC-PET and the lesion label from the painted tissue fractions
    (steps 2-4 of the module doc)."""
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

    texture = _smooth_field(fields, shape, 60.0 / canvas.voxel_mm)
    suv *= 1.0 + 0.06 * np.clip(texture, -3, 3)
    sigma = [fwhm / 2.3548 / step for step in canvas.spacing]
    blurred = ndimage.gaussian_filter(suv, sigma, truncate=3.0)
    noise = _smooth_field(fields, shape, 0.6)
    pet = blurred + noise_rel * np.sqrt(np.clip(blurred, 0, None) * liver_suv) * noise
    pet = np.clip(pet, 0.0, None).astype(np.float32)

    ct = ct + ct_sigma * fields.standard_normal(shape).astype(np.float32)
    spacing = canvas.spacing
    offset = (np.arange(canvas.size) - (canvas.size - 1) / 2.0) * spacing[0]
    circle = (offset[:, None] ** 2 + offset[None, :] ** 2) <= (0.49 * canvas.size * spacing[0]) ** 2
    ct[~circle] = _CT_FILL_HU
    ct = np.clip(np.rint(ct), _CT_FILL_HU, 3071.0).astype(np.float32)

    attenuation = attenuation_factors(hu_to_mu(ct), float(spacing[0]))
    nac = (pet * attenuation).astype(np.float32)

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
                        label=label, attenuation=attenuation, fractions=fractions,
                        affine=canvas.affine, info=info)
