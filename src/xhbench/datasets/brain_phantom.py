"""Brain-tumour MRI phantom on real anatomy: T1, T1ce, T2 and FLAIR with a labelled glioma.

Reused by every BraTS-like data set (the layout modules only name files and labels).
One subject is built in three steps, all on the output grid (:func:`make_brain`: the draws,
the tissue and tumour fractions, the images):

1. **Anatomy** from the MNI ICBM152 2009 template that nilearn ships inside its package (grey-
   and white-matter probability maps and brain mask, no network): CSF is
   ``clip(mask - GM - WM, 0, 1)``; grey matter inside the thalamus / basal-ganglia regions is
   "deep grey"; the maps are averaged to 2 mm (:mod:`~xhbench.datasets.brain_anatomy`, cached
   in-process). Each subject maps the template onto the grid through its own affine (scale,
   rotation, translation) and a smooth random deformation; "atrophy" widens the ventricles and
   turns part of the cortical grey matter into CSF. Tissue fractions at an output voxel are the template's
   fractions averaged over the voxel's footprint (box filter, then trilinear sampling), so they
   are partial volumes, not hard labels.
2. **Glioma** centred in the subject's white matter at a random depth (from juxtacortical to
   deep): necrotic or non-enhancing core, enhancing rim at least 2.2 output voxels thick,
   vasogenic edema that replaces white matter and deep grey only (sparing cortex and CSF); it
   pushes the surrounding anatomy away (mass effect) while the skull keeps the brain outline.
   Low-grade (``"LGG"``) subjects get a non-enhancing core with at most a small enhancing
   nodule. Each tumour fraction of a voxel comes from the signed distance to the tumour
   boundary, ramped across the voxel's width along the boundary normal; the label is the
   majority class of the voxel.
3. **Signal** per tissue from the equations in ``/work/shared/notes/physics.md``: spin echo
   ``PD (1 - exp(-TR/T1)) exp(-TE/T2)`` for T1, T1ce and T2, inversion recovery
   ``PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)`` for FLAIR; gadolinium shortens T1 in
   the enhancing tissue only (``1/T1post = 1/T1pre + r1 C``); voxel signal is the
   fraction-weighted sum; then a smooth multiplicative bias field, Rician noise at a drawn
   white-matter SNR and an arbitrary per-modality gain. The images are skull-stripped like
   BraTS: zero outside the intracranial mask, at least 1 inside after rounding.

Tissue values (Wansapura et al., JMRI 1999; Stanisz et al., MRM 2005; via physics.md) are
drawn per subject inside :data:`TISSUE_RANGES`. Pre-contrast enhancing tissue is drawn
within a few percent of the subject's edema so that enhancement shows on T1ce only.

All random draws except the noise are made on physical (mm) control grids or in template
space, so the same seed gives the same subject at every ``size`` (except where a tumour size
is raised to its grid minimum, which can also move the tumour centre).

:data:`GENERATOR_VERSION` changes whenever this module's output changes; data sets fold it
into their ``phantom_version`` through :func:`phantom_version`, so cached phantoms of every
brain data set are regenerated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .brain_anatomy import mni_anatomy, voxel_averaged

__all__ = [
    "GENERATOR_VERSION", "phantom_version", "FOV_MM", "MNI_CENTRE_MM", "TISSUES",
    "TISSUE_RANGES", "MODALITIES", "BrainPhantom", "case_rng",
    "grid_affine", "spin_echo", "inversion_recovery", "gadolinium_t1", "make_brain", "as_int16",
]

#: Version of this generator's output. Bump it whenever the same arguments give different
#: images or labels (1: procedural anatomy; 2: MNI152 anatomy).
GENERATOR_VERSION = 2


def phantom_version(layout_version: int) -> int:
    """A brain data set's ``phantom_version``: ``1000 * GENERATOR_VERSION + layout_version``.

    ``layout_version`` is the data set's own counter (file names, ids, splits); the thousands
    follow this generator, so a change here invalidates every brain data set's phantom cache.
    """
    return 1000 * GENERATOR_VERSION + int(layout_version)


#: Field of view (mm) of BraTS images (240 x 240 x 155 at 1 mm); the phantom keeps it at any size.
FOV_MM = (240.0, 240.0, 155.0)

#: MNI point (mm) placed at the grid centre: the brain mask's bounding-box centre (0, -17, 5),
#: raised 4 mm so that the vertex stays inside the 155 mm field of view while the lowest part
#: of the cerebellum and brainstem is cut, as in BraTS images.
MNI_CENTRE_MM = (0.0, -17.0, 9.0)

#: Tissue classes, in the order of :attr:`BrainPhantom.fractions` (``bone`` gives no signal).
TISSUES = ("bone", "csf", "gm", "wm", "deep_gm", "edema", "core", "enhancing")
_BONE, _CSF, _GM, _WM, _DGM, _ED, _CORE, _ET = range(8)

#: Per-subject draw ranges: T1 (ms), T2 (ms), proton density (CSF = 1); physics.md table.
TISSUE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "wm": {"t1": (800, 1100), "t2": (60, 80), "pd": (0.65, 0.72)},
    "gm": {"t1": (1300, 1800), "t2": (80, 110), "pd": (0.78, 0.85)},
    "csf": {"t1": (3500, 4500), "t2": (1500, 2500), "pd": (1.0, 1.0)},
    # Drawn where the edema and pre-contrast enhancing-tumour ranges meet, so the two stay close.
    "edema": {"t1": (1450, 1850), "t2": (140, 190), "pd": (0.85, 0.92)},
    "core": {"t1": (1800, 3000), "t2": (150, 400), "pd": (0.9, 1.0)},
    "enhancing": {"t1": (1550, 1750), "t2": (150, 180), "pd": (0.85, 0.9)},
}

#: Output modality names of :func:`make_brain` (the layout modules map them to file names).
MODALITIES = ("t1", "t1ce", "t2", "flair")

_R1_PER_MS_MM = 4.0e-3  # gadolinium relaxivity r1 at 3 T: 4 /s/mM


def spin_echo(pd, t1, t2, tr: float, te: float):
    """Spin-echo magnitude ``PD (1 - exp(-TR/T1)) exp(-TE/T2)`` (times in ms)."""
    return pd * (1.0 - np.exp(-tr / t1)) * np.exp(-te / t2)


def inversion_recovery(pd, t1, t2, tr: float, te: float, ti: float):
    """Inversion-recovery magnitude ``PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)``."""
    return pd * np.abs(1.0 - 2.0 * np.exp(-ti / t1) + np.exp(-tr / t1)) * np.exp(-te / t2)


def gadolinium_t1(t1, conc, r1: float = _R1_PER_MS_MM):
    """Post-contrast T1 (ms): ``1/T1post = 1/T1pre + r1 * C`` with C in mM, r1 in /ms/mM."""
    return 1.0 / (1.0 / t1 + r1 * conc)


def case_rng(seed: int, case_id: str) -> np.random.Generator:
    """A generator that depends on ``seed`` and ``case_id`` only (not on other cases)."""
    digest = int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "little")
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, digest])


def grid_affine(size: int, fov_mm=FOV_MM) -> np.ndarray:
    """Voxel-to-world affine of a ``size``^3 grid covering ``fov_mm``.

    Axes are (right-to-left, anterior-to-posterior, inferior-to-superior) like BraTS's LPS-ish
    ``diag(-1, -1, 1)`` images; the grid centre is the world origin.
    """
    spacing = np.array(fov_mm, dtype=float) / size
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = -affine[:3, :3] @ np.full(3, (size - 1) / 2.0)
    return affine


@dataclass
class BrainPhantom:
    """One subject at output resolution.

    Attributes:
        images: modality (:data:`MODALITIES`) -> float32 image after bias, noise and gain;
            exactly 0 outside ``brain``.
        label: uint8 label map (values from ``labels`` of :func:`make_brain`, 0 elsewhere).
        brain: bool intracranial mask (the skull-stripping mask).
        affine: voxel-to-world affine.
        fractions: tissue (:data:`TISSUES`) -> float32 partial-volume fraction.
        params: the subject's drawn tissue, sequence, tumour and nuisance parameters.
    """

    images: dict[str, np.ndarray]
    label: np.ndarray
    brain: np.ndarray
    affine: np.ndarray
    fractions: dict[str, np.ndarray]
    params: dict = field(default_factory=dict)


def as_int16(image: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Round to int16 like a scanner export: 0 outside the brain, at least 1 inside."""
    out = np.clip(np.rint(image), 1, np.iinfo(np.int16).max).astype(np.int16)
    out[~brain] = 0
    return out


def _ramp(signed: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Fraction of a voxel inside a boundary at signed distance ``signed`` from its centre
    (positive inside), for a voxel ``width`` wide along the boundary normal."""
    return np.clip(0.5 + signed / width, 0.0, 1.0)


def _sample(volume: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """Trilinear samples of ``volume`` at voxel coordinates ``index`` (0 outside), as a cube."""
    from scipy import ndimage

    return ndimage.map_coordinates(volume, index, order=1, mode="constant", cval=0.0,
                                   prefilter=False).reshape(size, size, size)


def _normal_width(offset, radius, voxel_mm) -> np.ndarray:
    """Extent of a voxel box (edges ``voxel_mm``) along the unit vectors ``offset / radius``."""
    width = (sum(np.abs(offset[axis]) * voxel_mm[axis] for axis in range(3))
             / np.maximum(radius, 1e-3))
    return np.maximum(width, np.float32(1e-3))


# -- smooth random fields ----------------------------------------------------------------
def _rbf_weights(coords: np.ndarray, extent: float, step: float) -> np.ndarray:
    """Gaussian bumps on control points ``step`` mm apart covering ``extent`` (plus margin)."""
    half = extent / 2.0 + 2.0 * step
    centres = np.arange(-half, half + 1e-6, step, dtype=np.float32)
    return np.exp(-0.5 * ((coords[:, None] - centres[None, :]) / step) ** 2).astype(np.float32)


class _Fields:
    """Smooth Gaussian random fields on one grid (separable RBF sums, unit std)."""

    def __init__(self, axes: list[np.ndarray], fov_mm):
        self.axes, self.fov = axes, fov_mm

    def __call__(self, rng: np.random.Generator, step: float) -> np.ndarray:
        weights_x, weights_y, weights_z = (_rbf_weights(coords, extent, step)
                                           for coords, extent in zip(self.axes, self.fov))
        coeff = rng.standard_normal((weights_x.shape[1], weights_y.shape[1],
                                     weights_z.shape[1]), dtype=np.float32)
        out = np.tensordot(weights_x, coeff, (1, 0))
        out = np.tensordot(weights_y, out, (1, 1)).transpose(1, 0, 2)
        out = np.tensordot(out, weights_z, (2, 1))
        # Expected std of sum_k g_k w_k(x) is sqrt(sum w^2); w^2 sums of Gaussians are nearly
        # constant in x, so one global constant keeps draws comparable across sizes.
        scale = np.sqrt((weights_x**2).sum(1).mean() * (weights_y**2).sum(1).mean()
                        * (weights_z**2).sum(1).mean())
        return (out / scale).astype(np.float32)


def _axes(size: int, factor: int, fov_mm) -> list[np.ndarray]:
    """World coordinates (mm, RAS) along each axis of a ``size * factor`` grid."""
    affine = grid_affine(size, fov_mm)
    index = (np.arange(size * factor, dtype=np.float64) + 0.5) / factor - 0.5
    return [(affine[axis, axis] * index + affine[axis, 3]).astype(np.float32)
            for axis in range(3)]


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A random rotation: up to ``max_deg`` about each axis in turn."""
    out = np.eye(3)
    for axis in range(3):
        angle = np.deg2rad(_uniform(rng, -max_deg, max_deg))
        cos, sin = np.cos(angle), np.sin(angle)
        first, second = [other for other in range(3) if other != axis]
        turn = np.eye(3)
        turn[first, first], turn[first, second] = cos, -sin
        turn[second, first], turn[second, second] = sin, cos
        out = turn @ out
    return out


# -- the subject -----------------------------------------------------------------------
def _draw_tissues(rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """T1, T2 and PD of every tissue, inside :data:`TISSUE_RANGES`."""
    tissues = {name: {key: _uniform(rng, *limits) for key, limits in ranges.items()}
               for name, ranges in TISSUE_RANGES.items()}
    # Pre-contrast enhancing tissue within +-3% of the edema (both inside their ranges).
    for key in ("t1", "t2", "pd"):
        low, high = TISSUE_RANGES["enhancing"][key]
        tissues["enhancing"][key] = float(np.clip(
            tissues["edema"][key] * _uniform(rng, 0.97, 1.03), low, high))
    # Deep grey nuclei sit between white and cortical grey matter in T1, T2 and PD.
    tissues["deep_gm"] = {key: 0.5 * (tissues["wm"][key] + tissues["gm"][key])
                          for key in ("t1", "t2", "pd")}
    return tissues


def _draw_sequences(rng: np.random.Generator, t1_csf: float) -> dict[str, dict[str, float]]:
    """TR, TE (and TI for FLAIR, nulling CSF) of each sequence, in ms."""
    flair_tr = _uniform(rng, 8500, 9500)
    # Protocols set TI to null CSF; the scanner's nominal CSF T1 differs from this subject's.
    t1_nominal = t1_csf * _uniform(rng, 0.95, 1.05)
    ti = t1_nominal * np.log(2.0 / (1.0 + np.exp(-flair_tr / t1_nominal)))
    return {
        "t1": {"tr": _uniform(rng, 450, 600), "te": _uniform(rng, 10, 15)},
        "t1ce": {"tr": _uniform(rng, 450, 600), "te": _uniform(rng, 10, 15)},
        "t2": {"tr": _uniform(rng, 4000, 6000), "te": _uniform(rng, 90, 110)},
        "flair": {"tr": flair_tr, "te": _uniform(rng, 90, 120), "ti": float(ti)},
    }


@dataclass
class _Subject:
    """The draws of one subject that do not depend on the grid (same subject at every size)."""

    tissues: dict[str, dict[str, float]]
    sequences: dict[str, dict[str, float]]
    atrophy: float
    scale: np.ndarray  # (3,) float32: template -> subject scaling per axis
    rotation: np.ndarray  # (3, 3)
    shift: np.ndarray  # (3,) float32 mm
    warp_mm: float
    core_mm: float
    rim_mm: float
    edema_mm: float
    nodule: bool  # an enhancing nodule (always for HGG, whose rim enhances)
    concentration: float  # gadolinium in the enhancing tissue, mM
    nodule_mm: float
    nodule_direction: np.ndarray
    irregularity: float
    push: float  # mass effect strength
    centre: np.ndarray  # tumour centre, MNI mm
    centre_depth: float
    bias_amplitude: float
    snr: dict[str, float]
    gain: dict[str, float]


def make_brain(rng: np.random.Generator | int, size: int, *, grade: str = "HGG",
               labels: Mapping[str, int] | None = None, fov_mm=FOV_MM) -> BrainPhantom:
    """Build one subject on a ``size``^3 grid covering ``fov_mm``.

    Args:
        rng: a generator (e.g. from :func:`case_rng`) or an integer seed.
        size: output grid edge (voxels); spacing is ``fov_mm / size``.
        grade: ``"HGG"`` (necrotic core, enhancing rim, edema) or ``"LGG"`` (non-enhancing
            core, edema, an enhancing nodule in about a third of subjects).
        labels: label value of ``"core"``, ``"edema"`` and ``"enhancing"``; default BraTS 2018
            ``{"core": 1, "edema": 2, "enhancing": 4}`` (BraTS 2023: enhancing 3).
        fov_mm: field of view per axis.

    Returns:
        A :class:`BrainPhantom`.
    """
    if grade not in ("HGG", "LGG"):
        raise ValueError(f"grade must be 'HGG' or 'LGG', not {grade!r}")
    if size < 8:
        raise ValueError(f"size must be at least 8, not {size}")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    labels = dict(labels or {"core": 1, "edema": 2, "enhancing": 4})
    anatomy = mni_anatomy()
    spacing = np.array(fov_mm, dtype=np.float64) / size
    # 1. Draws that do not depend on the grid.
    subject = _draw_subject(rng, anatomy, grade, voxel_mm=float(spacing.max()))
    # 2. Smooth fields on the output grid, drawn on mm control grids.
    axes = _axes(size, 1, fov_mm)
    fields = _Fields(axes, fov_mm)
    warp = [fields(rng, 35.0) * np.float32(subject.warp_mm) for _ in range(3)]
    bumps = np.clip(fields(rng, 22.0), -1.8, 1.8)
    edema_bumps = np.clip(fields(rng, 12.0), -1.8, 1.8)
    template = _template_coordinates(axes, subject, warp)
    del warp
    fractions, intracranial = _fractions(anatomy, subject, template, spacing, size, grade,
                                         bumps, edema_bumps)
    del template, bumps, edema_bumps
    brain = intracranial >= 0.5
    label = _label(fractions, brain, labels)
    # 3. Signals, bias field, Rician noise, gain.
    images = _images(rng, fields, fractions, brain, subject, size)
    return BrainPhantom(images=images, label=label, brain=brain, affine=grid_affine(size, fov_mm),
                        fractions={name: fractions[index] for index, name in enumerate(TISSUES)},
                        params=_params(subject, grade, size, fov_mm))


def _draw_subject(rng: np.random.Generator, anatomy, grade: str, *,
                  voxel_mm: float) -> _Subject:
    """Tissue values, sequences, the subject's affine, the tumour's sizes and centre, the
    nuisance parameters; ``voxel_mm`` (the coarsest output spacing) bounds tumour sizes."""
    tissues = _draw_tissues(rng)
    sequences = _draw_sequences(rng, tissues["csf"]["t1"])
    atrophy = _uniform(rng, 0.0, 1.0)
    scale = (_uniform(rng, 0.90, 1.0) * rng.uniform(0.97, 1.03, 3)).astype(np.float32)
    rotation = _rotation(rng, 5.0)
    shift = rng.normal(0.0, [3.0, 3.0, 2.0]).astype(np.float32)
    warp_mm = _uniform(rng, 2.5, 4.0)
    # Tumour sizes in template mm; the grid minimums are output voxels seen in template mm.
    voxel_template = voxel_mm / float(scale.min())
    if grade == "HGG":
        core_mm = max(_uniform(rng, 5.0, 15.0), 1.75 * voxel_template)
        rim_mm = max(_uniform(rng, 4.0, 8.0), 2.2 * voxel_template)
        edema_mm = core_mm + rim_mm + max(_uniform(rng, 5.0, 18.0), 1.5 * voxel_template)
        nodule = True
        concentration = _uniform(rng, 0.15, 0.45)
    else:
        core_mm = max(_uniform(rng, 10.0, 25.0), 2.0 * voxel_template)
        rim_mm = 0.0
        edema_mm = core_mm + max(_uniform(rng, 5.0, 15.0), 1.5 * voxel_template)
        nodule = rng.uniform() < 0.35
        concentration = _uniform(rng, 0.1, 0.3)
    nodule_mm = max(_uniform(rng, 3.0, 6.0), 0.8 * voxel_template)
    nodule_direction = rng.normal(size=3)
    nodule_direction /= np.linalg.norm(nodule_direction)
    irregularity = _uniform(rng, 0.10, 0.20)
    push = _uniform(rng, 0.15, 0.35)
    # Tumour centre: a white-matter seed voxel at a drawn depth below the brain surface, from
    # "core just below the surface" (juxtacortical) to deep white matter.
    depth_share = _uniform(rng, 0.0, 1.0)
    pick = rng.uniform()
    seeds, seeds_depth = anatomy.seeds_mm, anatomy.seeds_depth_mm
    shallow = core_mm + 3.0
    deep_limit = 0.85 * float(seeds_depth.max())
    target = shallow + depth_share * max(deep_limit - shallow, 0.0)
    pool = np.flatnonzero(np.abs(seeds_depth - target) <= 2.0)
    if not len(pool):  # a very coarse grid: the core is too large for any seed
        pool = np.flatnonzero(seeds_depth >= np.sort(seeds_depth)[-10])
    seed_index = pool[min(int(pick * len(pool)), len(pool) - 1)]
    return _Subject(
        tissues=tissues, sequences=sequences, atrophy=atrophy, scale=scale, rotation=rotation,
        shift=shift, warp_mm=warp_mm, core_mm=core_mm, rim_mm=rim_mm, edema_mm=edema_mm,
        nodule=nodule, concentration=concentration, nodule_mm=nodule_mm,
        nodule_direction=nodule_direction, irregularity=irregularity, push=push,
        centre=seeds[seed_index].astype(np.float32),
        centre_depth=float(seeds_depth[seed_index]), bias_amplitude=_uniform(rng, 0.10, 0.20),
        snr={modality: _uniform(rng, 20.0, 40.0) for modality in MODALITIES},
        gain={modality: 10.0 ** _uniform(rng, 3.0, 3.7) for modality in MODALITIES})


def _template_coordinates(axes, subject: _Subject, warp) -> list[np.ndarray]:
    """Template (MNI) coordinates of every voxel: the inverse subject affine plus the
    deformation ``warp``."""
    world_x = axes[0][:, None, None]
    world_y = axes[1][None, :, None]
    world_z = axes[2][None, None, :]
    scale, shift = subject.scale, subject.shift
    inverse = (subject.rotation.T / scale[:, None]).astype(np.float32)  # (R S)^-1 = S^-1 R^T
    centre = np.asarray(MNI_CENTRE_MM, dtype=np.float32)
    return [inverse[axis, 0] * (world_x - shift[0]) + inverse[axis, 1] * (world_y - shift[1])
            + inverse[axis, 2] * (world_z - shift[2]) + centre[axis] + warp[axis]
            for axis in range(3)]


def _fractions(anatomy, subject: _Subject, template, spacing, size: int, grade: str,
               bumps, edema_bumps) -> tuple[np.ndarray, np.ndarray]:
    """Partial volumes of every tissue (:data:`TISSUES`, stacked) and the intracranial
    fraction: the template's healthy tissues displaced by the tumour's mass effect, then the
    tumour's core, enhancing tissue and edema."""
    centre = subject.centre
    offset = [template[axis] - centre[axis] for axis in range(3)]
    radius = np.sqrt(offset[0] ** 2 + offset[1] ** 2 + offset[2] ** 2)
    intracranial, csf, gm, dgm, wm = _healthy_tissues(anatomy, subject, template, offset,
                                                      radius, spacing, size)
    # Tumour fractions: signed distance to each boundary over the voxel's width along the
    # boundary normal (the voxel box's extent along the radial direction, in template mm).
    voxel_mm = [np.float32(spacing[axis] / subject.scale[axis]) for axis in range(3)]
    width = _normal_width(offset, radius, voxel_mm)
    del offset
    core_mm, edema_mm = subject.core_mm, subject.edema_mm
    core_radius = radius - np.float32(subject.irregularity * core_mm) * bumps
    edema_radius = radius - np.float32(0.25 * edema_mm) * edema_bumps
    core = _ramp(core_mm - core_radius, width)
    if grade == "HGG":
        solid = _ramp(core_mm + subject.rim_mm - core_radius, width)
        enhancing = solid - core
    else:
        enhancing = np.zeros_like(core)
        if subject.nodule:
            spot = centre + subject.nodule_direction * core_mm * 0.9
            spot_offset = [template[axis] - spot[axis] for axis in range(3)]
            spot_radius = np.sqrt(sum(spot_offset[axis] ** 2 for axis in range(3)))
            enhancing = _ramp(subject.nodule_mm - spot_radius,
                              _normal_width(spot_offset, spot_radius, voxel_mm))
            core = core * (1.0 - enhancing)
        solid = core + enhancing
    edema_share = np.clip(_ramp(edema_mm - edema_radius, width) - solid, 0.0, 1.0 - solid)
    del core_radius, edema_radius, radius, width

    fractions = np.empty((len(TISSUES), size, size, size), dtype=np.float32)
    keep = 1.0 - solid
    fractions[_BONE] = 1.0 - intracranial
    fractions[_CSF] = csf * keep
    fractions[_GM] = gm * keep
    fractions[_WM] = wm * (keep - edema_share)
    fractions[_DGM] = dgm * (keep - edema_share)
    fractions[_ED] = (wm + dgm) * edema_share  # vasogenic edema: white matter and deep grey
    fractions[_CORE] = core * intracranial
    fractions[_ET] = enhancing * intracranial
    return fractions, intracranial


def _healthy_tissues(anatomy, subject: _Subject, template, offset, radius, spacing,
                     size: int) -> tuple[np.ndarray, ...]:
    """Intracranial, CSF, grey, deep grey and white matter fractions at every voxel.

    Mass effect and ventricular enlargement: the anatomy is sampled at points nearer to the
    tumour centre (or the ventricles) than the voxel's template point, so tissue moves away
    from them; the brain outline (skull) stays where the template point puts it.
    """
    outer = subject.core_mm + subject.rim_mm
    falloff = np.exp(-0.5 * (radius / (1.2 * max(outer, subject.core_mm))) ** 2) * np.float32(
        subject.push)
    ventricle_centre, ventricle_size = (0.0, -15.0, 18.0), (12.0, 24.0, 10.0)
    enlarge = np.exp(-0.5 * sum(((template[axis] - ventricle_centre[axis])
                                 / ventricle_size[axis]) ** 2 for axis in range(3)))
    enlarge *= np.float32(0.35 * subject.atrophy)
    displaced = [template[axis] - offset[axis] * falloff
                 - (template[axis] - ventricle_centre[axis]) * enlarge for axis in range(3)]
    del falloff, enlarge
    maps = voxel_averaged(tuple(float(step) for step in spacing))
    at_template, at_displaced = anatomy.to_index(template), anatomy.to_index(displaced)
    del displaced
    intracranial = np.clip(_sample(maps[4], at_template, size), 0.0, 1.0)
    csf, gm, dgm, wm = (np.clip(_sample(maps[index], at_displaced, size), 0.0, 1.0)
                        for index in range(4))
    del at_template, at_displaced
    total = csf + gm + dgm + wm
    ratio = np.where(total > 1e-3, intracranial / np.maximum(total, 1e-3), 0.0)
    csf = np.where(total > 1e-3, csf * ratio, intracranial)  # pushed past the surface: CSF
    gm, dgm, wm = gm * ratio, dgm * ratio, wm * ratio
    del ratio, total
    sulcal = np.float32(0.15 * subject.atrophy) * gm  # atrophy: cortical grey matter -> CSF
    return intracranial, csf + sulcal, gm - sulcal, dgm, wm


def _label(fractions: np.ndarray, brain: np.ndarray, labels: Mapping[str, int]) -> np.ndarray:
    """The majority tumour class of each voxel (0 where healthy or outside the brain)."""
    tumour = np.stack([1.0 - fractions[[_ED, _CORE, _ET]].sum(0), fractions[_ED],
                       fractions[_CORE], fractions[_ET]])
    values = np.array([0, labels["edema"], labels["core"], labels["enhancing"]], dtype=np.uint8)
    label = values[np.argmax(tumour, axis=0)]
    label[~brain] = 0
    return label


def _images(rng: np.random.Generator, fields, fractions: np.ndarray, brain: np.ndarray,
            subject: _Subject, size: int) -> dict[str, np.ndarray]:
    """Each modality: fraction-weighted tissue signal, bias field, Rician noise, gain."""
    concentration = np.clip(subject.concentration * (1.0 + 0.3 * fields(rng, 15.0)), 0.1, 0.5)
    receive = fields(rng, 90.0)
    names = ("csf", "gm", "wm", "deep_gm", "edema", "core", "enhancing")
    images = {}
    wm_pure = fractions[_WM] > 0.99
    if wm_pure.sum() < 10:
        wm_pure = fractions[_WM] >= np.quantile(fractions[_WM][brain], 0.98)
    for modality in MODALITIES:
        sequence = subject.sequences[modality]
        signal = np.zeros((size,) * 3, dtype=np.float32)
        for index, name in zip(range(1, 8), names):
            tissue = subject.tissues[name]
            if modality == "flair":
                value = inversion_recovery(tissue["pd"], tissue["t1"], tissue["t2"],
                                           sequence["tr"], sequence["te"], sequence["ti"])
            elif modality == "t1ce" and index == _ET:
                value = spin_echo(tissue["pd"], gadolinium_t1(tissue["t1"], concentration),
                                  tissue["t2"], sequence["tr"], sequence["te"])
            else:
                value = spin_echo(tissue["pd"], tissue["t1"], tissue["t2"], sequence["tr"],
                                  sequence["te"])
            signal += fractions[index] * np.float32(value)
        # Receive-coil field shared by all sequences plus a smaller per-sequence part.
        field_ = receive + 0.5 * fields(rng, 90.0)
        field_ /= max(np.abs(field_[brain]).max(), 1e-6)
        signal *= 1.0 + subject.bias_amplitude * field_
        sigma = float(signal[wm_pure].mean())
        sigma /= subject.snr[modality]
        noise = rng.standard_normal((2,) + signal.shape, dtype=np.float32) * sigma
        signal = (np.sqrt((signal + noise[0]) ** 2 + noise[1] ** 2)
                  * np.float32(subject.gain[modality]))
        signal[~brain] = 0.0
        images[modality] = signal.astype(np.float32)
    return images


def _params(subject: _Subject, grade: str, size: int, fov_mm) -> dict:
    """What :attr:`BrainPhantom.params` records about the subject."""
    forward = subject.rotation @ np.diag(subject.scale.astype(float))
    centre_template = np.asarray(MNI_CENTRE_MM, dtype=np.float32)
    return {
        "grade": grade, "size": size, "spacing_mm": [f / size for f in fov_mm],
        "tissues": subject.tissues, "sequences": subject.sequences, "atrophy": subject.atrophy,
        "anatomy": {"template": "MNI ICBM152 2009a nonlinear symmetric (nilearn)",
                    "scale": subject.scale.tolist(), "rotation": subject.rotation.tolist(),
                    "shift_mm": subject.shift.tolist(), "warp_mm": subject.warp_mm},
        "tumour": {"centre_mni_mm": subject.centre.tolist(),
                   # World position of the centre, neglecting the smooth deformation.
                   "centre_mm": (forward @ (subject.centre - centre_template)
                                 + subject.shift).tolist(),
                   "depth_mm": subject.centre_depth, "core_mm": subject.core_mm,
                   "rim_mm": subject.rim_mm, "edema_mm": subject.edema_mm,
                   "enhancing_nodule": bool(grade == "HGG" or subject.nodule),
                   "gd_concentration_mM": subject.concentration},
        "bias_amplitude": subject.bias_amplitude, "snr_wm": subject.snr, "gain": subject.gain,
    }
