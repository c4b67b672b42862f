"""Procedural brain-tumour MRI phantom: T1, T1ce, T2 and FLAIR with a labelled glioma.

Reused by every BraTS-like data set (the layout modules only name files and labels).
One subject is built in three steps:

1. **Anatomy** on a grid twice as fine as the output (``2 * size`` per axis): an intracranial
   shape (an ellipsoid narrowed frontally and temporally, per-subject size, small rotation and
   translation, and a smooth random deformation), outer CSF, a grey-matter cortex ribbon folded
   by sulci (zero sheets of a random field, lined with grey matter), an interhemispheric
   fissure, deep grey nuclei, lateral and third ventricles. Per-subject "atrophy" widens the
   CSF spaces. A glioma sits at a random place (deep or juxtacortical): necrotic or
   non-enhancing core, enhancing rim at least two output voxels thick, vasogenic edema that
   spreads through white matter and spares the cortex; it pushes the ventricles and the
   midline away (mass effect). Low-grade (``"LGG"``) subjects get a non-enhancing core with at
   most a small enhancing nodule.
2. **Partial volume**: each output voxel's tissue fractions are the means of its 2x2x2
   sub-voxels; the label is the majority class.
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

All random draws except the noise are made on physical (mm) control grids, so the same seed
gives the same anatomy at every ``size``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

__all__ = [
    "FOV_MM", "TISSUES", "TISSUE_RANGES", "MODALITIES", "BrainPhantom", "case_rng",
    "grid_affine", "spin_echo", "inversion_recovery", "gadolinium_t1", "make_brain",
    "as_int16",
]

#: Field of view (mm) of BraTS images (240 x 240 x 155 at 1 mm); the phantom keeps it at any size.
FOV_MM = (240.0, 240.0, 155.0)

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
        wx, wy, wz = (_rbf_weights(a, f, step) for a, f in zip(self.axes, self.fov))
        coeff = rng.standard_normal((wx.shape[1], wy.shape[1], wz.shape[1]), dtype=np.float32)
        out = np.tensordot(wx, coeff, (1, 0))
        out = np.tensordot(wy, out, (1, 1)).transpose(1, 0, 2)
        out = np.tensordot(out, wz, (2, 1))
        # Expected std of sum_k g_k w_k(x) is sqrt(sum w^2); w^2 sums of Gaussians are nearly
        # constant in x, so one global constant keeps draws comparable across sizes.
        scale = np.sqrt((wx**2).sum(1).mean() * (wy**2).sum(1).mean() * (wz**2).sum(1).mean())
        return (out / scale).astype(np.float32)


def _axes(size: int, factor: int, fov_mm) -> list[np.ndarray]:
    """World coordinates (mm, RAS) along each axis of a ``size * factor`` grid."""
    affine = grid_affine(size, fov_mm)
    n = size * factor
    index = (np.arange(n, dtype=np.float64) + 0.5) / factor - 0.5
    return [(affine[a, a] * index + affine[a, 3]).astype(np.float32) for a in range(3)]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    out = np.eye(3)
    for axis in range(3):
        a = np.deg2rad(_u(rng, -max_deg, max_deg))
        c, s = np.cos(a), np.sin(a)
        i, j = [k for k in range(3) if k != axis]
        rot = np.eye(3)
        rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
        out = rot @ out
    return out


# -- the subject -----------------------------------------------------------------------
def _draw_tissues(rng: np.random.Generator) -> dict[str, dict[str, float]]:
    tissues = {name: {k: _u(rng, *r) for k, r in ranges.items()}
               for name, ranges in TISSUE_RANGES.items()}
    # Pre-contrast enhancing tissue within +-3% of the edema (both inside their ranges).
    for key in ("t1", "t2", "pd"):
        lo, hi = TISSUE_RANGES["enhancing"][key]
        tissues["enhancing"][key] = float(np.clip(tissues["edema"][key] * _u(rng, 0.97, 1.03),
                                                  lo, hi))
    # Deep grey nuclei sit between white and cortical grey matter in T1, T2 and PD.
    tissues["deep_gm"] = {k: 0.5 * (tissues["wm"][k] + tissues["gm"][k])
                          for k in ("t1", "t2", "pd")}
    return tissues


def _draw_sequences(rng: np.random.Generator, t1_csf: float) -> dict[str, dict[str, float]]:
    flair_tr = _u(rng, 8500, 9500)
    # Protocols set TI to null CSF; the scanner's nominal CSF T1 differs from this subject's.
    t1_nominal = t1_csf * _u(rng, 0.95, 1.05)
    ti = t1_nominal * np.log(2.0 / (1.0 + np.exp(-flair_tr / t1_nominal)))
    return {
        "t1": {"tr": _u(rng, 450, 600), "te": _u(rng, 10, 15)},
        "t1ce": {"tr": _u(rng, 450, 600), "te": _u(rng, 10, 15)},
        "t2": {"tr": _u(rng, 4000, 6000), "te": _u(rng, 90, 110)},
        "flair": {"tr": flair_tr, "te": _u(rng, 90, 120), "ti": float(ti)},
    }


def make_brain(rng: np.random.Generator | int, size: int, *, grade: str = "HGG",
               labels: Mapping[str, int] | None = None, fov_mm=FOV_MM) -> BrainPhantom:
    """Build one subject on a ``size``^3 grid covering ``fov_mm``.

    Args:
        rng: a generator (e.g. from :func:`case_rng`) or an integer seed.
        size: output grid edge (voxels); spacing is ``fov_mm / size``.
        grade: ``"HGG"`` (necrotic core, enhancing rim, edema) or ``"LGG"`` (non-enhancing
            core, edema, an enhancing nodule in about a third of subjects).
        labels: label value of ``"core"``, ``"edema"`` and ``"enhancing"``; default BraTS 2018
            ``{"core": 1, "edema": 2, "enhancing": 4}``.
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
    voxel = float(max(fov_mm)) / size  # the coarsest output spacing (mm)

    # 1. Draws that do not depend on the grid (same anatomy at every size).
    tissues = _draw_tissues(rng)
    sequences = _draw_sequences(rng, tissues["csf"]["t1"])
    atrophy = _u(rng, 0.0, 1.0)
    scale = _u(rng, 0.92, 1.06)
    semi = (np.array([68.0, 82.0, 62.0]) * scale * rng.uniform(0.96, 1.04, 3)).astype(np.float32)
    rotation = _rotation(rng, 4.0)
    shift = rng.normal(0.0, [3.0, 3.0, 2.0]).astype(np.float32)
    csf_mm = _u(rng, 1.5, 2.5) + 1.5 * atrophy
    gm_mm = _u(rng, 2.3, 3.3)
    sulcus_mm = _u(rng, 0.8, 1.4) + 1.0 * atrophy
    sulcus_depth = _u(rng, 10.0, 18.0)
    fissure_mm = _u(rng, 1.5, 2.5) + atrophy
    vent = {"x": _u(rng, 4.5, 7.0) * (1 + 0.3 * atrophy), "y": _u(rng, -6.0, 2.0),
            "z": _u(rng, 8.0, 14.0), "ax": _u(rng, 4.0, 6.5) * (1 + 0.6 * atrophy),
            "ay": _u(rng, 22.0, 30.0), "az": _u(rng, 8.0, 11.0) * (1 + 0.3 * atrophy),
            "bend": _u(rng, 6.0, 12.0), "third": _u(rng, 1.0, 2.0) * (1 + atrophy)}
    deep = {"x": _u(rng, 14.0, 19.0), "y": _u(rng, -6.0, 4.0), "z": _u(rng, -4.0, 4.0),
            "ax": _u(rng, 7.0, 10.0), "ay": _u(rng, 14.0, 20.0), "az": _u(rng, 9.0, 12.0)}
    # Tumour: direction and relative depth (0 = centre, 1 = surface) from the brain centre.
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    depth_frac = _u(rng, 0.0, 1.0)  # position between the shallowest and deepest allowed
    if grade == "HGG":
        core_mm = max(_u(rng, 5.0, 15.0), 1.75 * voxel)
        rim_mm = max(_u(rng, 4.0, 8.0), 2.2 * voxel)
        edema_mm = core_mm + rim_mm + _u(rng, 5.0, 18.0)
        nodule = True
        conc = _u(rng, 0.15, 0.45)
    else:
        core_mm = max(_u(rng, 10.0, 25.0), 2.0 * voxel)
        rim_mm = 0.0
        edema_mm = core_mm + _u(rng, 5.0, 15.0)
        nodule = rng.uniform() < 0.35
        conc = _u(rng, 0.1, 0.3)
    nodule_mm = max(_u(rng, 3.0, 6.0), 1.2 * voxel)
    nodule_dir = rng.normal(size=3)
    nodule_dir /= np.linalg.norm(nodule_dir)
    irregular = _u(rng, 0.10, 0.20)
    push = _u(rng, 0.15, 0.35)
    bias_amp = _u(rng, 0.10, 0.20)
    snr = {m: _u(rng, 20.0, 40.0) for m in MODALITIES}
    gain = {m: 10.0 ** _u(rng, 3.0, 3.7) for m in MODALITIES}

    # 2. Smooth fields on the fine grid, drawn on mm control grids.
    fine = _Fields(_axes(size, 2, fov_mm), fov_mm)
    warp = [fine(rng, 35.0) * 4.0 for _ in range(3)]
    sulci = fine(rng, 5.0)
    gyri = fine(rng, 12.0)
    midline = fine(rng, 30.0) * 1.5
    bumps = np.clip(fine(rng, 22.0), -1.8, 1.8)
    edema_bumps = np.clip(fine(rng, 12.0), -1.8, 1.8)

    x, y, z = _axes(size, 2, fov_mm)
    X, Y, Z = x[:, None, None], y[None, :, None], z[None, None, :]
    rt = rotation.T.astype(np.float32)
    p = [rt[i, 0] * (X - shift[0]) + rt[i, 1] * (Y - shift[1]) + rt[i, 2] * (Z - shift[2]) + warp[i]
         for i in range(3)]
    del warp

    depth = _depth(p, semi)
    inside = depth >= 0

    # Tumour geometry (in the subject frame p) and its mass effect. The centre lies on a random
    # ray at a random depth below the surface, deep enough to hold the whole core: from
    # juxtacortical (rim and edema reach the cortex) to deep white matter.
    along = np.linspace(0.0, 1.5 * semi.max(), 400)[:, None] * direction[None, :]
    ray_depth = _depth(list(along.T), semi)
    allowed = np.flatnonzero((ray_depth >= core_mm + 3.0) & (ray_depth <= 0.8 * ray_depth[0]))
    if not len(allowed):  # a very coarse grid: the core is too large for the brain
        allowed = np.array([0])
    pick = allowed[min(int(depth_frac * len(allowed)), len(allowed) - 1)]
    centre = along[pick].astype(np.float32)
    centre_depth = float(ray_depth[pick])
    d = [p[i] - centre[i] for i in range(3)]
    r_t = np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2)
    outer = core_mm + rim_mm
    falloff = np.exp(-0.5 * (r_t / (1.2 * outer)) ** 2) * push
    q = [p[i] - d[i] * falloff for i in range(3)]  # deep structures move away from the tumour
    del falloff

    # Cortex: ribbon under the outer CSF, folded by sulci lined with grey matter.
    cls = np.full(r_t.shape, _WM, dtype=np.uint8)
    sul_grad = _rms_gradient(sulci, [a[1] - a[0] for a in _axes(size, 2, fov_mm)])
    sulcus_dist = np.abs(sulci) / sul_grad  # approximate distance (mm) to a sulcal sheet
    gm_local = gm_mm * (1.0 + 0.25 * np.clip(gyri, -2, 2))
    cortex_depth = csf_mm + gm_local
    cls[depth < cortex_depth] = _GM
    cls[(sulcus_dist < sulcus_mm / 2 + gm_local) & (depth < cortex_depth + sulcus_depth)] = _GM
    # Interhemispheric fissure: a CSF sheet at the (wavy, shifted) midline above the core.
    core_region = ((q[1] / (0.5 * semi[1])) ** 2 + ((q[2] + 5.0) / (0.45 * semi[2])) ** 2) < 1
    mid = np.abs(q[0] - midline)
    cls[(mid < fissure_mm / 2 + gm_local) & ~core_region] = _GM
    del gm_local
    # Deep grey nuclei, then CSF spaces on top.
    for side in (-1.0, 1.0):
        cls[_ellipsoid(q, (side * deep["x"], deep["y"], deep["z"]),
                       (deep["ax"], deep["ay"], deep["az"]))] = _DGM
    csf = depth < csf_mm
    csf |= (sulcus_dist < sulcus_mm / 2) & (depth < csf_mm + sulcus_depth)
    csf |= (mid < fissure_mm / 2) & ~core_region
    del sulcus_dist, core_region
    for side in (-1.0, 1.0):
        # Lateral ventricles bend down toward their frontal and occipital horns.
        zc = vent["z"] - vent["bend"] * ((q[1] - vent["y"]) / vent["ay"]) ** 2
        csf |= _ellipsoid(q, (side * vent["x"], vent["y"], zc),
                          (vent["ax"], vent["ay"], vent["az"]))
    csf |= (mid < vent["third"]) & (((q[1] - vent["y"] + 5.0) / 15.0) ** 2
                                    + ((q[2] - vent["z"] + 16.0) / 9.0) ** 2 < 1)
    cls[csf] = _CSF
    del csf, mid, q

    # Tumour: irregular radius; edema through white matter and deep grey only.
    # The same radial offset moves both boundaries, so the rim keeps its thickness.
    r_core = r_t - irregular * core_mm * bumps
    r_edema = r_t - 0.25 * edema_mm * edema_bumps
    del r_t, bumps, edema_bumps
    cls[(r_edema < edema_mm) & ((cls == _WM) | (cls == _DGM))] = _ED
    if grade == "HGG":
        cls[r_core < outer] = _ET
        cls[r_core < core_mm] = _CORE
    else:
        cls[r_core < core_mm] = _CORE
        if nodule:
            spot = centre + nodule_dir * core_mm * 0.9
            cls[((p[0] - spot[0]) ** 2 + (p[1] - spot[1]) ** 2 + (p[2] - spot[2]) ** 2)
                < nodule_mm**2] = _ET
    cls[~inside] = _BONE
    del r_core, r_edema, inside, p, depth

    # 3. Partial volume: mean over the 2x2x2 sub-voxels of each output voxel.
    blocks = cls.reshape(size, 2, size, 2, size, 2)
    counts = np.stack([(blocks == k).sum(axis=(1, 3, 5), dtype=np.uint8) for k in range(8)])
    fractions = counts.astype(np.float32) / 8.0
    brain = fractions[_BONE] <= 0.5
    tumour = np.stack([1.0 - fractions[[_ED, _CORE, _ET]].sum(0), fractions[_ED],
                       fractions[_CORE], fractions[_ET]])
    values = np.array([0, labels["edema"], labels["core"], labels["enhancing"]], dtype=np.uint8)
    label = values[np.argmax(tumour, axis=0)]
    label[~brain] = 0

    # 4. Signals, bias field, Rician noise, gain.
    coarse = _Fields(_axes(size, 1, fov_mm), fov_mm)
    conc_map = np.clip(conc * (1.0 + 0.3 * coarse(rng, 15.0)), 0.1, 0.5)
    receive = coarse(rng, 90.0)
    names = ("csf", "gm", "wm", "deep_gm", "edema", "core", "enhancing")
    images = {}
    wm_pure = fractions[_WM] > 0.99
    for modality in MODALITIES:
        seq = sequences[modality]
        signal = np.zeros((size,) * 3, dtype=np.float32)
        for k, name in zip(range(1, 8), names):
            t = tissues[name]
            if modality == "flair":
                s = inversion_recovery(t["pd"], t["t1"], t["t2"], seq["tr"], seq["te"], seq["ti"])
            elif modality == "t1ce" and k == _ET:
                s = spin_echo(t["pd"], gadolinium_t1(t["t1"], conc_map), t["t2"],
                              seq["tr"], seq["te"])
            else:
                s = spin_echo(t["pd"], t["t1"], t["t2"], seq["tr"], seq["te"])
            signal += fractions[k] * np.float32(s)
        # Receive-coil field shared by all sequences plus a smaller per-sequence part.
        field_ = receive + 0.5 * coarse(rng, 90.0)
        field_ /= max(np.abs(field_[brain]).max(), 1e-6)
        signal *= 1.0 + bias_amp * field_
        sigma = float(signal[wm_pure].mean() if wm_pure.any() else signal[brain].mean())
        sigma /= snr[modality]
        noise = rng.standard_normal((2,) + signal.shape, dtype=np.float32) * sigma
        signal = np.sqrt((signal + noise[0]) ** 2 + noise[1] ** 2) * np.float32(gain[modality])
        signal[~brain] = 0.0
        images[modality] = signal.astype(np.float32)

    params = {
        "grade": grade, "size": size, "spacing_mm": [f / size for f in fov_mm],
        "tissues": tissues, "sequences": sequences, "atrophy": atrophy,
        "semi_axes_mm": semi.tolist(),
        "tumour": {"centre_mm": (rotation @ centre + shift).tolist(), "depth_mm": centre_depth,
                   "core_mm": core_mm, "rim_mm": rim_mm, "edema_mm": edema_mm,
                   "enhancing_nodule": bool(grade == "HGG" or nodule),
                   "gd_concentration_mM": conc},
        "bias_amplitude": bias_amp, "snr_wm": snr, "gain": gain,
    }
    return BrainPhantom(images=images, label=label, brain=brain, affine=grid_affine(size, fov_mm),
                        fractions={name: fractions[k] for k, name in enumerate(TISSUES)},
                        params=params)


def _ellipsoid(q, centre, semi) -> np.ndarray:
    """Points of ``q`` inside an axis-aligned ellipsoid (centre entries may be arrays)."""
    return sum(((q[i] - centre[i]) / semi[i]) ** 2 for i in range(3)) < 1


def _depth(p, semi: np.ndarray):
    """Depth (mm) below the intracranial surface along the ray from the centre (< 0 outside).

    The surface is an ellipsoid with semi-axes ``semi`` (left-right, anterior-posterior,
    inferior-superior), narrowed left-right toward the temporal (inferior) and frontal poles.
    """
    inferior = np.clip(-p[2] / semi[2], 0, 1)
    frontal = np.clip(p[1] / semi[1], 0, 1)
    a0 = semi[0] * (1 - 0.12 * inferior**2) * (1 - 0.10 * frontal**2)
    rho = np.sqrt((p[0] / a0) ** 2 + (p[1] / semi[1]) ** 2 + (p[2] / semi[2]) ** 2)
    radius = np.sqrt(p[0] ** 2 + p[1] ** 2 + p[2] ** 2)
    # At the centre (radius 0) the depth is the ray length to the surface, about the semi-axis.
    return np.where(rho > 1e-6, radius * (1 / np.maximum(rho, 1e-6) - 1), semi.min())


def _rms_gradient(f: np.ndarray, spacing: list[float]) -> float:
    """Root-mean-square gradient magnitude (per mm) of a field, from a subsample."""
    sub = f[::2, ::2, ::2]
    total = 0.0
    for axis, h in enumerate(spacing):
        total += float(np.mean((np.diff(sub, axis=axis) / (2 * abs(h))) ** 2))
    return float(np.sqrt(total))
