"""The head-and-neck phantom (vertex to lung apices): anatomy, primaries, cervical nodes.

See :mod:`xhbench.datasets.petct_phantom` for how a subject is built. :class:`HeadNeck`
draws one subject's anatomy (the order of the random draws is part of the phantom) and
holds its shapes; the ``_paint_*`` functions put them on the grid, outside in. The head
is flexed about the upper neck: its structures are shapes in head coordinates
(:meth:`HeadNeck.in_head_frame`).
"""

from __future__ import annotations

import numpy as np

from .petct_phantom import (HEAD_NECK_FOV, PetCtSubject, Site, draw_values,
                            images_from_fractions, paint_lesions, place_lesions)
from .petct_shapes import (Canvas, GridExtent, ellipse, ellipsoid, memoised, rotation,
                           smooth_union, tube, tube_box, warp_modes)

__all__ = ["HeadNeck", "make_head_neck"]

#: Cervical lymph-node levels II, III and IV: their heights (mm, before the height scale).
_NODE_LEVELS = (8.0, -22.0, -52.0)


def make_head_neck(rng: np.random.Generator, size: int, *,
                   diagnosis: str = "hnscc") -> PetCtSubject:
    """A head-and-neck subject, vertex to lung apices.

    ``diagnosis``: ``"hnscc"`` (a primary at the tonsil, base of tongue, oral tongue,
    larynx or hypopharynx and 0-3 ipsilateral cervical nodes) or ``"negative"``.
    """
    if diagnosis not in ("negative", "hnscc"):
        raise ValueError(f"no head-and-neck diagnosis {diagnosis!r}")
    anatomy = HeadNeck(rng)
    values = draw_values(rng)
    values["brain_wm"] = (values["brain_wm"][0], values["brain_gm"][1] * rng.uniform(0.3, 0.45))
    warp = warp_modes(rng, (2.0, 4.0))
    sites = _lesion_sites(rng, anatomy, diagnosis)
    lesions = place_lesions(rng, GridExtent(HEAD_NECK_FOV, size), sites, [], values,
                            suv_median=10.0)
    fields_seed = int(rng.integers(2**31))

    canvas = Canvas(size, HEAD_NECK_FOV, 0.0, warp)
    _paint_neck_and_lungs(canvas, anatomy)
    _paint_head(canvas, anatomy)
    _paint_jaw_and_mouth(canvas, anatomy)
    _paint_glands_and_nodes(canvas, anatomy)
    _paint_cervical_spine(canvas, anatomy)
    paint_lesions(canvas, lesions)
    body_sdf = anatomy.body(canvas.x, canvas.y, canvas.z)
    return images_from_fractions(rng, canvas, values, lesions, diagnosis, "head_neck",
                                 fields_seed, body_sdf, liver_suv=values["liver"][1])


class HeadNeck:
    """One subject's head and neck in millimetres (x right, y anterior, z up)."""

    def __init__(self, rng: np.random.Generator):
        uniform = rng.uniform
        scale, adiposity, height = uniform(0.92, 1.08), uniform(0.0, 1.0), uniform(0.94, 1.06)
        self.scale, self.height = scale, height
        flexion = uniform(-8.0, 8.0)  # head flexion (degrees about x) around the upper neck
        self.pivot = np.array([0.0, -10.0, 10.0])
        self.head_centre = np.array([uniform(-4, 4), uniform(-4, 6), 85.0 * height])
        self.head_radii = np.array([72.0, 92.0, 86.0]) * scale * np.array(
            [uniform(0.95, 1.05), uniform(0.95, 1.05), 1.0])
        self.face_centre = np.array([0.0, 50.0 * scale, 25.0 * height])
        self.face_radii = np.array([52.0, 48.0, 58.0]) * scale
        self.scalp, self.skull = uniform(4.0, 7.0), uniform(5.0, 8.0)
        self.grey_matter = uniform(4.0, 6.0)  # cortical thickness
        neck_a = (52.0 + 14.0 * adiposity) * scale * uniform(0.95, 1.05)
        neck_b = (50.0 + 12.0 * adiposity) * scale
        shoulder_a = min(168.0 * scale + 15 * adiposity, 0.47 * HEAD_NECK_FOV[0])
        shoulder_b = 100.0 * scale + 12 * adiposity
        self.fat = 4.0 + 12.0 * adiposity
        self.knots = np.array([-400.0, -125.0 * height, -95.0 * height, -60.0, 60.0, 400.0])
        self.half_width_knots = np.array([shoulder_a, shoulder_a * 0.92, neck_a * 1.3, neck_a,
                                          neck_a, neck_a])
        self.half_depth_knots = np.array([shoulder_b, shoulder_b * 0.95, neck_b * 1.15, neck_b,
                                          neck_b, neck_b])
        self.centre_y_knots = np.array([-10.0, -10.0, -8.0, -5.0, -5.0, -5.0])
        self.spine_y = -0.45 * neck_b  # cervical spine, posterior half of the neck
        self.flexion = rotation("x", flexion)
        self._frame_memo: dict = {}
        self._draw_head_structures(scale, height)
        self._draw_neck_structures(uniform, scale, height, neck_a, shoulder_a)

    def _draw_head_structures(self, scale, height) -> None:
        head_centre, head_radii = self.head_centre, self.head_radii
        self.brain_base = head_centre[2] - 0.55 * head_radii[2]
        self.brain_radii = head_radii - self.scalp - self.skull - 2.0
        self.cerebellum_centre = head_centre + np.array([0.0, -0.5 * head_radii[1],
                                                         -0.55 * head_radii[2]])
        self.cerebellum_radii = np.array([48.0, 30.0, 24.0]) * scale
        self.eye_centres = [head_centre + np.array([side * 32.0 * scale, 0.72 * head_radii[1],
                                                    -0.2 * head_radii[2]]) for side in (-1, 1)]
        self.eye_radius = 12.0 * scale
        self.nasal_centre = np.array([0.0, 0.62 * head_radii[1],
                                      head_centre[2] - 0.45 * head_radii[2]])
        self.sinus_centres = [self.nasal_centre + np.array([side * 27.0, -8.0, -5.0])
                              for side in (-1, 1)]
        self.mandible_centre = np.array([0.0, 12.0, 12.0 * height])
        self.mandible_radii = np.array([46.0, 58.0]) * scale
        self.tongue_centre = np.array([0.0, 38.0 * scale, 17.0 * height])
        self.tongue_radii = np.array([22.0, 28.0, 14.0]) * scale

    def _draw_neck_structures(self, uniform, scale, height, neck_a, shoulder_a) -> None:
        self.airway = [(0.0, 36.0 * scale, 45.0 * height), (0.0, 16.0, 18.0 * height),
                       (0.0, 12.0, -12.0 * height), (0.0, 22.0, -35.0 * height),
                       (0.0, 20.0, -400.0)]
        self.airway_radius = uniform(6.5, 9.0)
        self.parotid_centres = [np.array([side * (neck_a * 0.85 + 6.0), 2.0, 28.0 * height])
                                for side in (-1, 1)]
        self.parotid_radii = np.array([14.0, 22.0, 24.0]) * scale * uniform(0.85, 1.15)
        self.submandibular_centres = [np.array([side * 32.0 * scale, 34.0 * scale,
                                                -6.0 * height]) for side in (-1, 1)]
        self.tonsil_centres = [np.array([side * 14.0, 17.0, 16.0 * height]) for side in (-1, 1)]
        self.tonsil_radii = np.array([8.0, 8.0, 12.0]) * uniform(0.8, 1.3)
        self.thyroid_centres = [np.array([side * 18.0, 26.0, -72.0 * height])
                                for side in (-1, 1)]
        self.node_centres = [np.array([side * uniform(30, 42), uniform(2, 15), level * height])
                             for side in (-1, 1) for level in _NODE_LEVELS]
        self.lung_centres = [np.array([side * 62.0 * scale, -8.0, -235.0 * height])
                             for side in (-1, 1)]
        self.lung_radii = np.array([48.0, 62.0, 95.0]) * scale
        self.clavicles = [[(side * 16.0, 30.0, -122.0 * height),
                           (side * shoulder_a * 0.85, 5.0, -110.0 * height)] for side in (-1, 1)]
        self.disc_period, self.disc_height, self.disc_phase = (
            uniform(17.0, 21.0), uniform(4.0, 6.0), uniform(0.0, 20.0))

    # -- the head frame ------------------------------------------------------------------------
    def in_head_frame(self, head_shape):
        """``head_shape`` (in head coordinates) as a world shape: the head flexed about the
        pivot (the transformed full grid is computed once)."""
        pivot, turn = self.pivot, self.flexion

        def shape(x, y, z):
            def compute():
                px, py, pz = x - pivot[0], y - pivot[1], z - pivot[2]
                return (turn[0, 0] * px + turn[0, 1] * py + turn[0, 2] * pz + pivot[0],
                        turn[1, 0] * px + turn[1, 1] * py + turn[1, 2] * pz + pivot[1],
                        turn[2, 0] * px + turn[2, 1] * py + turn[2, 2] * pz + pivot[2])
            return head_shape(*memoised(self._frame_memo, "head", x, compute))
        return shape

    def head_box(self, centre, radii):
        """World box of a head-frame ellipsoid, widened for the flexion."""
        world = self.flexion.T @ (np.asarray(centre, float) - self.pivot) + self.pivot
        reach = 1.2 * np.asarray(radii, float) + 3.0
        return world - reach, world + reach

    # -- shapes --------------------------------------------------------------------------------
    def neck(self, x, y, z):
        return ellipse(x, y, 0.0, np.interp(z, self.knots, self.centre_y_knots),
                       np.interp(z, self.knots, self.half_width_knots),
                       np.interp(z, self.knots, self.half_depth_knots), 2.1)

    def body(self, x, y, z):
        head = self.in_head_frame(lambda x, y, z: ellipsoid(x, y, z, self.head_centre,
                                                            self.head_radii))
        face = self.in_head_frame(lambda x, y, z: np.maximum(
            ellipsoid(x, y, z, self.face_centre, self.face_radii), z - self.head_centre[2]))
        return smooth_union(smooth_union(head(x, y, z), face(x, y, z), 12.0),
                            np.maximum(self.neck(x, y, z), z - 20.0), 18.0)

    def brain(self, x, y, z):
        """The brain in head coordinates (cut off below the skull base)."""
        return np.maximum(ellipsoid(x, y, z, self.head_centre, self.brain_radii),
                          self.brain_base - z)

    def mandible(self, x, y, z):
        """The mandible in head coordinates: a horseshoe around the mouth."""
        centre, radii = self.mandible_centre, self.mandible_radii
        ring = np.abs(ellipse(x, y, centre[0], centre[1], radii[0], radii[1]))
        distance = np.maximum(ring - 6.0, np.abs(z - centre[2]) - 14.0)
        return np.maximum(distance, centre[1] - 25.0 - y)

    def vertebra(self, x, y, z):
        return np.maximum(ellipse(x, y, 0.0, self.spine_y, 11.0 * self.scale, 9.5 * self.scale),
                          z - 40.0 * self.height)


# -- lesion sites ---------------------------------------------------------------------------
def _lesion_sites(rng: np.random.Generator, anatomy: HeadNeck, diagnosis: str) -> list[Site]:
    """An HNSCC primary and 0-3 cervical nodes on one side (none for ``"negative"``)."""
    scale, height = anatomy.scale, anatomy.height
    sites: list[Site] = []
    side = 1 if rng.random() < 0.5 else -1
    if diagnosis == "hnscc":
        primaries = {
            "tonsil": (np.array([side * 15.0, 17.0, 16.0 * height]), "tonsil"),
            "base of tongue": (np.array([side * 5.0, 26.0, 4.0 * height]), "tongue"),
            "oral tongue": (np.array([side * 10.0, 44.0 * scale, 15.0 * height]), "tongue"),
            "larynx": (np.array([side * 6.0, 24.0, -38.0 * height]), "muscle"),
            "hypopharynx": (np.array([side * 14.0, 10.0, -22.0 * height]), "muscle"),
        }
        name = list(primaries)[int(rng.integers(len(primaries)))]
        centre, background = primaries[name]
        sites.append(Site(f"{name} primary", background,
                          lambda g, centre=centre: centre + g.uniform(-4, 4, 3),
                          radius=(10.0, 22.0)))
        for level in range(int(rng.choice([0, 1, 1, 2, 3]))):
            sites.append(Site(f"level {('II', 'III', 'IV')[level]} node", "muscle",
                              lambda g, z=_NODE_LEVELS[level]: np.array(
                                  [side * g.uniform(32, 44), g.uniform(0, 16), z * height]),
                              radius=(8.0, 16.0)))
    return sites


# -- painting, outside in -------------------------------------------------------------------
def _paint_neck_and_lungs(canvas: Canvas, anatomy: HeadNeck) -> None:
    """Subcutaneous fat, muscle, the lung apices."""
    canvas.paint("fat", anatomy.body)
    canvas.paint("muscle", lambda x, y, z: anatomy.body(x, y, z) + anatomy.fat)
    radii = anatomy.lung_radii
    for centre in anatomy.lung_centres:
        canvas.paint("lung", lambda x, y, z, centre=centre: np.maximum(
            ellipsoid(x, y, z, centre, radii), anatomy.neck(x, y, z) + 15.0),
            box=(centre - radii, centre + radii))


def _paint_head(canvas: Canvas, anatomy: HeadNeck) -> None:
    """Skull and skull base, CSF, brain, cerebellum, ventricles, eyes, nasal cavity, sinuses."""
    in_head, head_box = anatomy.in_head_frame, anatomy.head_box
    head_centre, head_radii = anatomy.head_centre, anatomy.head_radii
    scalp, skull = anatomy.scalp, anatomy.skull
    skull_box = head_box(head_centre, head_radii)
    canvas.paint("cortical", in_head(lambda x, y, z: ellipsoid(x, y, z, head_centre,
                                                               head_radii - scalp)), skull_box)
    canvas.paint("csf", in_head(lambda x, y, z: ellipsoid(x, y, z, head_centre,
                                                          head_radii - scalp - skull)),
                 skull_box)
    canvas.paint("cortical", in_head(lambda x, y, z: np.maximum(
        ellipsoid(x, y, z, head_centre, head_radii - scalp - skull),
        np.abs(z - anatomy.brain_base + 4) - 5.0)), skull_box)
    canvas.paint("brain_gm", in_head(anatomy.brain), skull_box)
    cerebellum_centre, cerebellum_radii = anatomy.cerebellum_centre, anatomy.cerebellum_radii
    canvas.paint("brain_gm", in_head(lambda x, y, z: ellipsoid(x, y, z, cerebellum_centre,
                                                               cerebellum_radii)),
                 head_box(cerebellum_centre, cerebellum_radii))
    canvas.paint("brain_wm", in_head(lambda x, y, z: anatomy.brain(x, y, z)
                                     + anatomy.grey_matter), skull_box)
    for side in (-1, 1):
        centre, radii = head_centre + np.array([side * 11.0, 5.0, 5.0]), (7.0, 26.0, 11.0)
        canvas.paint("csf", in_head(lambda x, y, z, centre=centre, radii=radii: ellipsoid(
            x, y, z, centre, radii)), head_box(centre, radii))
    eye_radii = (anatomy.eye_radius,) * 3
    for centre in anatomy.eye_centres:
        canvas.paint("eye", in_head(lambda x, y, z, centre=centre: ellipsoid(
            x, y, z, centre, eye_radii)), head_box(centre, eye_radii))
    nasal_centre, nasal_radii = anatomy.nasal_centre, (11.0, 24.0, 18.0)
    canvas.paint("air", in_head(lambda x, y, z: ellipsoid(x, y, z, nasal_centre, nasal_radii)),
                 head_box(nasal_centre, nasal_radii))
    sinus_radii = (13.0, 15.0, 15.0)
    for centre in anatomy.sinus_centres:
        canvas.paint("air", in_head(lambda x, y, z, centre=centre: ellipsoid(
            x, y, z, centre, sinus_radii)), head_box(centre, sinus_radii))


def _paint_jaw_and_mouth(canvas: Canvas, anatomy: HeadNeck) -> None:
    """Mandible (cortex and marrow), tongue, the airway."""
    radii = anatomy.mandible_radii
    jaw_box = anatomy.head_box(anatomy.mandible_centre, (radii[0] + 8.0, radii[1] + 8.0, 16.0))
    canvas.paint("cortical", anatomy.in_head_frame(anatomy.mandible), jaw_box)
    canvas.paint("marrow", anatomy.in_head_frame(lambda x, y, z: anatomy.mandible(x, y, z)
                                                 + 3.0), jaw_box)
    tongue_centre, tongue_radii = anatomy.tongue_centre, anatomy.tongue_radii
    canvas.paint("tongue", anatomy.in_head_frame(lambda x, y, z: ellipsoid(
        x, y, z, tongue_centre, tongue_radii)), anatomy.head_box(tongue_centre, tongue_radii))
    airway, radius = anatomy.airway, anatomy.airway_radius
    canvas.paint("air", lambda x, y, z: tube(x, y, z, airway, radius),
                 box=tube_box(airway, radius))


def _paint_glands_and_nodes(canvas: Canvas, anatomy: HeadNeck) -> None:
    """Parotid and submandibular glands, tonsils, thyroid lobes, normal cervical nodes."""
    radii = anatomy.parotid_radii
    for centre in anatomy.parotid_centres:
        canvas.paint("salivary", lambda x, y, z, centre=centre: ellipsoid(x, y, z, centre, radii),
                     box=(centre - radii, centre + radii))
    for centre in anatomy.submandibular_centres:
        canvas.paint("salivary", lambda x, y, z, centre=centre: ellipsoid(
            x, y, z, centre, (13.0, 13.0, 10.0)), box=(centre - 13, centre + 13))
    radii = anatomy.tonsil_radii
    for centre in anatomy.tonsil_centres:
        canvas.paint("tonsil", lambda x, y, z, centre=centre: ellipsoid(x, y, z, centre, radii),
                     box=(centre - radii, centre + radii))
    for centre in anatomy.thyroid_centres:
        canvas.paint("thyroid", lambda x, y, z, centre=centre: ellipsoid(
            x, y, z, centre, (9.0, 9.0, 22.0)), box=(centre - 22, centre + 22))
    for centre in anatomy.node_centres:
        canvas.paint("node", lambda x, y, z, centre=centre: ellipsoid(
            x, y, z, centre, (5.0, 5.0, 7.0)), box=(centre - 7, centre + 7))


def _paint_cervical_spine(canvas: Canvas, anatomy: HeadNeck) -> None:
    """Vertebrae, discs, the spinal canal, spinous processes, clavicles."""
    vertebra, height, spine_y = anatomy.vertebra, anatomy.height, anatomy.spine_y
    period, phase = anatomy.disc_period, anatomy.disc_phase
    canvas.paint("cortical", vertebra)
    canvas.paint("marrow", lambda x, y, z: vertebra(x, y, z) + 2.5)
    canvas.paint("disc", lambda x, y, z: np.maximum(vertebra(x, y, z), -(np.abs(np.mod(
        z - phase, period) - period / 2.0) - anatomy.disc_height / 2.0)))
    canvas.paint("csf", lambda x, y, z: np.maximum(ellipse(x, y, 0.0, spine_y - 19.0, 7.0, 6.5),
                                                   z - 45.0 * height))
    canvas.paint("cortical", lambda x, y, z: np.maximum(
        ellipse(x, y, 0.0, spine_y - 36.0, 4.5, 10.0), z - 35.0 * height))
    for clavicle in anatomy.clavicles:
        canvas.paint("cortical", lambda x, y, z, clavicle=clavicle: np.maximum(
            tube(x, y, z, clavicle, 7.5), anatomy.body(x, y, z) + 10.0),
            box=tube_box(clavicle, 7.5))
