"""The torso phantom (lower neck to pubis) and its thorax crop: anatomy, lesion sites.

See :mod:`xhbench.datasets.petct_phantom` for how a subject is built. :class:`Torso` draws
one subject's anatomy (frame, thorax, heart and vessels, abdominal organs, bones, in that
order: the order of the random draws is part of the phantom) and holds its shapes; the
``_paint_*`` functions put them on the grid, outside in.
"""

from __future__ import annotations

import math

import numpy as np

from .petct_phantom import (THORAX_FOV, TORSO_FOV, PetCtSubject, Site, draw_values,
                            images_from_fractions, paint_lesions, place_lesions)
from .petct_shapes import (Canvas, GridExtent, ellipse, ellipsoid, iliac_wing, memoised,
                           rotation, smooth_union, tube, tube_box, warp_modes)

__all__ = ["Torso", "make_torso"]

_THORAX_CENTRE_Z = 150.0  # body z (diaphragm near 10-50 mm) at the thorax grid centre


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
    torso = Torso(rng, fov)
    values = draw_values(rng)
    warp = warp_modes(rng, (3.0, 6.0))
    sites = _lesion_sites(rng, torso, diagnosis)
    hot = [torso.heart, lambda x, y, z: ellipsoid(x, y, z, torso.bladder_centre,
                                                  torso.bladder_radii)]
    hot += [lambda x, y, z, centre=centre: ellipsoid(x, y, z, centre, torso.kidney_radii)
            for centre in torso.kidney_centre.values()]
    lesions = place_lesions(rng, GridExtent(fov, size, centre_z), sites, hot, values)
    fields_seed = int(rng.integers(2**31))

    canvas = Canvas(size, fov, centre_z, warp)
    _paint_trunk(canvas, torso)
    _paint_chest_organs(canvas, torso)
    _paint_abdominal_organs(canvas, torso)
    _paint_heart_and_vessels(canvas, torso)
    _paint_spine(canvas, torso)
    _paint_ribs_and_shoulders(canvas, torso)
    _paint_pelvis(canvas, torso)
    paint_lesions(canvas, lesions)
    body_sdf = torso.body(canvas.x, canvas.y, canvas.z)
    return images_from_fractions(rng, canvas, values, lesions, diagnosis, region,
                                 fields_seed, body_sdf, liver_suv=values["liver"][1])


class Torso:
    """One subject's torso anatomy in millimetres (x right, y anterior, z up).

    Radii of the body follow profiles along z through knots at landmarks (pubis, pelvis,
    abdomen, diaphragm, chest, lung apex, neck); organs are ellipsoids, tubes and shells
    placed relative to them. Shapes are signed distances (negative inside).
    """

    def __init__(self, rng: np.random.Generator, fov):
        self._memo: dict = {}  # profiles of the full warped grid, computed once
        self._draw_frame(rng.uniform, fov)
        self._draw_thorax(rng.uniform)
        self._draw_heart_and_vessels(rng.uniform)
        self._draw_abdomen(rng)
        self._draw_bones(rng.uniform)

    # -- draws (in this order) -------------------------------------------------------------
    def _draw_frame(self, uniform, fov) -> None:
        """Frame size, adiposity, height, diaphragm and apex levels, body profiles."""
        scale, adiposity, height = uniform(0.88, 1.1), uniform(0.0, 1.0), uniform(0.92, 1.06)
        self.scale, self.adiposity, self.height = scale, adiposity, height
        self.diaphragm_right = uniform(10.0, 50.0)
        self.diaphragm_left = self.diaphragm_right - uniform(8.0, 25.0)
        self.lung_apex = self.diaphragm_right + height * uniform(200.0, 240.0)
        chest_a = min(150.0 * scale + 30.0 * adiposity, 0.44 * fov[0])
        chest_b = 100.0 * scale + 22.0 * adiposity
        abdomen_a = min(chest_a * uniform(0.9, 1.0) + 12.0 * adiposity, 0.44 * fov[0])
        abdomen_b = chest_b * (0.95 + 0.3 * adiposity) * uniform(0.95, 1.05)
        pelvis_a = min(chest_a * uniform(0.95, 1.06) + 8.0 * adiposity, 0.44 * fov[0])
        pelvis_b = chest_b * uniform(0.92, 1.02) + 8.0 * adiposity
        neck_a, neck_b = 60.0 * scale + 8 * adiposity, 55.0 * scale + 8 * adiposity
        self.chest_a, self.chest_b = chest_a, chest_b
        self.abdomen_a, self.abdomen_b, self.pelvis_a = abdomen_a, abdomen_b, pelvis_a
        apex = self.lung_apex
        self.knots = np.array([-400.0, -250 * height, -110 * height, self.diaphragm_right - 40,
                               self.diaphragm_right + 120, apex, apex + 50, apex + 90, 500.0])
        self.half_width_knots = np.array([pelvis_a * 0.95, pelvis_a, abdomen_a * 0.93,
                                          chest_a * 0.98, chest_a,
                                          min(chest_a * 1.06, 0.44 * fov[0]), neck_a * 1.5,
                                          neck_a, neck_a])
        self.half_depth_knots = np.array([pelvis_b * 0.95, pelvis_b, abdomen_b, chest_b,
                                          chest_b, chest_b * 0.95, neck_b * 1.2, neck_b, neck_b])
        self.centre_y_knots = np.array([0.0, 0.0, 8 * adiposity, 0.0, 0.0, -5.0, -10.0, -10.0,
                                        -10.0])
        fat = 6.0 + 28.0 * adiposity
        self.fat = fat
        self.fat_knots = np.array([fat * 1.2, fat * 1.2, fat * 1.35, fat, fat, fat * 0.8,
                                   fat * 0.5, fat * 0.4, fat * 0.4])
        self.muscle_wall = uniform(10.0, 16.0)
        self.cavity_shift = uniform(0.1, 0.14)  # cavity centre anterior by this share of b

    def _draw_thorax(self, uniform) -> None:
        """Mediastinum width and the chest cavity at the lungs."""
        self.mediastinum_half_width = uniform(18.0, 28.0)
        self.chest_cavity_a = self.chest_a - self.fat - self.muscle_wall
        self.chest_cavity_b = (self.chest_b - self.fat - self.muscle_wall
                               - self.cavity_shift * self.chest_b)
        self.chest_cavity_y = self.cavity_shift * self.chest_b

    def _draw_heart_and_vessels(self, uniform) -> None:
        """Heart (rotated ellipsoid), aorta, inferior vena cava, trachea and bronchi."""
        scale, height, cavity_y = self.scale, self.height, self.chest_cavity_y
        heart_scale = scale * uniform(0.9, 1.12)
        self.heart_centre = np.array([-(15.0 + 12.0 * scale) + uniform(-8, 8),
                                      cavity_y + uniform(15.0, 30.0),
                                      self.diaphragm_left + 50 * height])
        self.heart_radii = np.array([58.0, 45.0, 55.0]) * heart_scale
        self.heart_rotation = rotation("z", uniform(-40.0, -20.0)) @ rotation(
            "y", uniform(10.0, 25.0))
        self.ventricle_wall = uniform(10.0, 14.0)
        diaphragm = self.diaphragm_right
        spine_thorax = float(self.spine_y(np.array([diaphragm + 120.0]))[0])
        spine_abdomen = float(self.spine_y(np.array([-120.0]))[0])
        self.spine_abdomen_y = spine_abdomen
        self.aorta_radius = 12.0 * scale + uniform(0, 3)
        self.aorta = [(10.0, cavity_y + 35.0, diaphragm + 95.0),
                      (0.0, cavity_y + 5.0, diaphragm + 165.0),
                      (-22.0, spine_thorax + 22.0, diaphragm + 150.0),
                      (-22.0, spine_thorax + 22.0, diaphragm),
                      (-15.0, spine_abdomen + 28.0, -170.0 * height)]
        self.vena_cava = [(24.0, spine_abdomen + 35.0, -170.0 * height),
                          (26.0, spine_abdomen + 35.0, diaphragm + 15.0)]
        self.carina_z = diaphragm + 140.0 * height
        self.trachea_y = cavity_y + uniform(5.0, 15.0) + 0.35 * (spine_thorax - cavity_y)
        self.trachea_radius = uniform(8.0, 10.5)
        trachea_y, carina = self.trachea_y, self.carina_z
        self.trachea = [(0.0, trachea_y - 8.0, 500.0), (0.0, trachea_y, self.lung_apex),
                        (0.0, trachea_y, carina)]
        self.bronchi = [[(0.0, trachea_y, carina), (side * 45.0, trachea_y - 10.0, carina - 35.0)]
                        for side in (-1, 1)]

    def _draw_abdomen(self, rng: np.random.Generator) -> None:
        """Liver (two lobes), spleen, stomach with its gas, kidneys, bladder, psoas, bowel gas."""
        uniform, scale, height = rng.uniform, self.scale, self.height
        liver_scale = uniform(0.88, 1.15)
        self.liver_centre = np.array([50.0 * scale + uniform(-8, 8), uniform(-5, 15),
                                      self.diaphragm_right - 60.0 * height])
        self.liver_radii = np.array([95.0, 85.0, 80.0]) * liver_scale * scale
        self.left_lobe_centre = np.array([-15.0, 30.0 + uniform(-5, 5),
                                          self.diaphragm_right - 35.0])
        self.left_lobe_radii = np.array([55.0, 45.0, 38.0]) * liver_scale * scale
        self.spleen_centre = np.array([-(self.chest_cavity_a - 40.0), -40.0 * scale,
                                       self.diaphragm_left - 55.0 * height])
        self.spleen_radii = np.array([32.0, 50.0, 48.0]) * scale * uniform(0.85, 1.25)
        self.stomach_centre = np.array([-45.0 * scale, self.chest_cavity_y + 25.0,
                                        self.diaphragm_left - 45.0 * height])
        self.stomach_radii = np.array([42.0, 40.0, 42.0]) * scale * uniform(0.8, 1.2)
        self.stomach_gas_centre = (self.stomach_centre
                                   + np.array([0.0, 0.35, 0.45]) * self.stomach_radii)
        self.stomach_gas_radii = (self.stomach_radii * np.array([0.45, 0.35, 0.3])
                                  * uniform(0.5, 1.3))
        kidney_z = {1: self.diaphragm_right - 145.0 * height + uniform(-10, 10),
                    -1: self.diaphragm_left - 120.0 * height + uniform(-10, 10)}
        self.kidney_radii = np.array([28.0, 25.0, 55.0]) * scale * uniform(0.9, 1.1)
        self.kidney_centre = {side: np.array([side * (24.0 * scale + 42.0),
                                              self.spine_abdomen_y + 8.0, kidney_z[side]])
                              for side in (-1, 1)}
        filling = uniform(0.7, 1.3)
        self.bladder_centre = np.array([0.0, uniform(10.0, 40.0), -265.0 * height])
        self.bladder_radii = np.array([44.0, 36.0, 34.0]) * filling ** (1 / 3) * scale
        spine = self.spine_abdomen_y
        self.psoas = [[(side * 38.0, spine + 10, -60.0), (side * 48.0, spine + 20, -240.0 * height)]
                      for side in (-1, 1)]
        self.bowel_gas = [(np.array([uniform(-0.55, 0.55) * self.abdomen_a,
                                     uniform(-0.1, 0.4) * self.abdomen_b,
                                     uniform(-210, -80) * height]), uniform(8.0, 18.0))
                          for _ in range(int(rng.integers(2, 6)))]

    def _draw_bones(self, uniform) -> None:
        """Discs, ribs, iliac wings, femoral heads, clavicles, scapulae."""
        scale, height = self.scale, self.height
        self.disc_period, self.disc_height = uniform(26.0, 32.0), uniform(6.0, 9.0)
        self.disc_phase = uniform(0, self.disc_period)
        self.rib_period, self.rib_radius = uniform(24.0, 30.0), uniform(5.0, 6.5)
        self.rib_phase = uniform(0, self.rib_period)
        self.rib_slope = uniform(0.5, 0.7)
        self.rib_norm = math.sqrt(1.0 + self.rib_slope ** 2)
        self.rib_top = self.lung_apex - 10.0
        self.rib_bottom = self.diaphragm_left - 80.0 * height
        pelvis_a = self.pelvis_a
        self.iliac_centre = {side: np.array([side * 0.6 * pelvis_a, uniform(-45.0, -30.0),
                                             -195.0 * height]) for side in (-1, 1)}
        self.iliac_radii = np.array([26.0, 70.0, 58.0]) * scale
        self.femoral_head = {side: np.array([side * 0.58 * pelvis_a, 5.0, -318.0 * height])
                             for side in (-1, 1)}
        apex, chest_a, chest_b = self.lung_apex, self.chest_a, self.chest_b
        self.clavicles = [[(side * 18.0, self.chest_cavity_y + chest_b * 0.55, apex + 20),
                           (side * chest_a * 0.85, 0.15 * chest_b, apex + 35)]
                          for side in (-1, 1)]
        self.scapula_centre = {side: np.array([side * chest_a * 0.55, -chest_b * 0.62,
                                               apex - 55.0]) for side in (-1, 1)}
        self.scapula_rotation = {side: rotation("z", side * uniform(20.0, 35.0))
                                 for side in (-1, 1)}

    # -- body and cavity ---------------------------------------------------------------------
    def profile(self, knot_values, z):
        """``knot_values`` interpolated at heights ``z`` (memoised for the full grid)."""
        return memoised(self._memo, ("prof", id(knot_values)), z,
                        lambda: np.interp(z, self.knots, knot_values).astype(np.float32))

    def body(self, x, y, z):
        return ellipse(x, y, 0.0, self.profile(self.centre_y_knots, z),
                       self.profile(self.half_width_knots, z),
                       self.profile(self.half_depth_knots, z), 2.3)

    def inner(self, z):
        """The muscle-lined cavity at heights ``z``: centre y and half axes."""
        def compute():
            half_width = self.profile(self.half_width_knots, z)
            half_depth = self.profile(self.half_depth_knots, z)
            centre_y, fat = self.profile(self.centre_y_knots, z), self.profile(self.fat_knots, z)
            shift = self.cavity_shift * half_depth
            return (centre_y + shift, half_width - fat - self.muscle_wall,
                    half_depth - fat - self.muscle_wall - shift)
        return memoised(self._memo, ("inner",), z, compute)

    def cavity(self, x, y, z):
        centre_y, half_width, half_depth = self.inner(z)
        return ellipse(x, y, 0.0, centre_y, np.maximum(half_width, 10.0),
                       np.maximum(half_depth, 10.0), 2.2)

    def spine_y(self, z):
        centre_y, _, half_depth = self.inner(z)
        return centre_y - half_depth + 0.6 * self.vertebral_radius(z)

    def vertebral_radius(self, z):
        scale = self.scale
        return memoised(self._memo, ("r_vb",), z, lambda: np.interp(
            z, [-300.0, -100.0, self.diaphragm_right + 150, 500.0],
            [24.0 * scale, 22.0 * scale, 16.0 * scale, 12.0 * scale]).astype(np.float32))

    # -- organs -------------------------------------------------------------------------------
    def diaphragm_dome(self, x, y, side):
        """Height of the diaphragm's dome over the lung of ``side``."""
        top = self.diaphragm_right if side > 0 else self.diaphragm_left
        cavity_a, cavity_b, cavity_y = (self.chest_cavity_a, self.chest_cavity_b,
                                        self.chest_cavity_y)
        return top - 45.0 * (((x - side * 0.45 * cavity_a) / (0.75 * cavity_a)) ** 2
                             + ((y - cavity_y) / cavity_b) ** 2) + 15.0 * np.minimum(
            y - cavity_y, 0) / cavity_b

    def lung(self, side):
        """The lung of ``side``: in the cavity, beside the mediastinum, above the dome."""
        mediastinum, cavity_a = self.mediastinum_half_width, self.chest_cavity_a
        centre = (side * (mediastinum + cavity_a) / 2.0, self.chest_cavity_y,
                  self.diaphragm_right - 20.0)
        radii = (1.15 * (cavity_a - mediastinum) / 2.0 + 10.0, 1.1 * self.chest_cavity_b,
                 self.lung_apex - self.diaphragm_right + 20.0)

        def shape(x, y, z):
            distance = np.maximum(self.cavity(x, y, z) + 5.0, mediastinum - side * x)
            distance = np.maximum(distance, self.diaphragm_dome(x, y, side) - z)
            return np.maximum(distance, ellipsoid(x, y, z, centre, radii))
        return shape

    def heart(self, x, y, z):
        return ellipsoid(x, y, z, self.heart_centre, self.heart_radii, self.heart_rotation)

    def liver(self, x, y, z):
        distance = smooth_union(ellipsoid(x, y, z, self.liver_centre, self.liver_radii),
                                ellipsoid(x, y, z, self.left_lobe_centre, self.left_lobe_radii),
                                20.0)
        distance = np.maximum(distance, z - self.diaphragm_dome(x, y, 1) + 4.0)
        return np.maximum(distance, self.cavity(x, y, z) + 3.0)

    def vertebra(self, x, y, z):
        radius = self.vertebral_radius(z)
        return ellipse(x, y, 0.0, self.spine_y(z), radius, 0.85 * radius)

    def discs(self, x, y, z):
        slab = (np.abs(np.mod(z - self.disc_phase, self.disc_period) - self.disc_period / 2.0)
                - self.disc_height / 2.0)
        return np.maximum(self.vertebra(x, y, z), -slab)

    def spinal_canal_y(self, z):
        return self.spine_y(z) - 0.85 * self.vertebral_radius(z) - 9.0

    def ribs(self, x, y, z):
        """Periodic slanted hoops in the chest wall, without their costal cartilage."""
        centre_y, half_width, half_depth = self.inner(z)
        ring = np.abs(ellipse(x, y, 0.0, centre_y, half_width + 6.0, half_depth + 6.0, 2.2))
        # Ribs fall along their course from the spine (angle 0) to the front (angle pi).
        course = np.arctan2(np.abs(x), centre_y - y) * 0.5 * (half_width + half_depth)
        slant = z + self.rib_slope * course
        along_z = (np.abs(np.mod(slant - self.rib_phase, self.rib_period) - self.rib_period / 2.0)
                   / self.rib_norm)
        distance = np.sqrt(ring ** 2 + along_z ** 2) - self.rib_radius
        distance = np.maximum(distance, np.maximum(self.rib_bottom - z, z - self.rib_top))
        # No bony rib in front of the sternum's sides (costal cartilage).
        front = (y - centre_y) / np.maximum(half_depth, 1.0)
        return np.maximum(distance, np.minimum((front - 0.6) * half_depth,
                                               0.35 * half_width - np.abs(x)))


# -- lesion sites ---------------------------------------------------------------------------
def _lesion_sites(rng: np.random.Generator, torso: Torso, diagnosis: str) -> list[Site]:
    """The sites this diagnosis puts lesions at (lymph nodes, lung, liver, spleen)."""
    mediastinum, cavity_a = torso.mediastinum_half_width, torso.chest_cavity_a
    cavity_b, cavity_y = torso.chest_cavity_b, torso.chest_cavity_y
    apex, height = torso.lung_apex, torso.height
    trachea_y, carina, spine = torso.trachea_y, torso.carina_z, torso.spine_abdomen_y

    def around(centre, jitter):
        return lambda g: np.asarray(centre, float) + g.uniform(-1, 1, 3) * np.asarray(jitter)

    left_lung, right_lung = torso.lung(-1), torso.lung(1)

    def in_lung(g):
        side = -1 if g.random() < 0.45 else 1
        return np.array([side * g.uniform(mediastinum + 15, cavity_a - 15),
                         cavity_y + g.uniform(-0.7, 0.7) * cavity_b,
                         g.uniform(torso.diaphragm_right + 10, apex - 25)])

    def in_liver(g):
        return torso.liver_centre + g.uniform(-0.6, 0.6, 3) * torso.liver_radii

    def either_side(g):
        return g.choice([-1, 1])

    def both_lungs(x, y, z):
        return np.minimum(left_lung(x, y, z), right_lung(x, y, z))

    node_sites = {
        "mediastinal": Site("mediastinal node", "mediastinum",
                            around((0.0, trachea_y + 12.0, carina + 25.0), (12.0, 8.0, 20.0)),
                            radius=(8.0, 18.0)),
        "hilar": Site("hilar node", "mediastinum",
                      lambda g: np.array([either_side(g) * (mediastinum + 8.0), trachea_y - 5.0,
                                          carina - 30.0 + g.uniform(-10, 10)]),
                      radius=(7.0, 15.0)),
        "axillary": Site("axillary node", "fat",
                         lambda g: np.array([either_side(g) * (torso.chest_a - torso.fat - 10.0),
                                             g.uniform(-15, 15), apex - g.uniform(30, 60)]),
                         radius=(7.0, 16.0)),
        "supraclavicular": Site("supraclavicular node", "fat",
                                lambda g: np.array([either_side(g) * g.uniform(40, 60),
                                                    g.uniform(5, 20), apex + 25.0]),
                                radius=(6.0, 14.0)),
        "paraaortic": Site("para-aortic node", "viscera",
                           around((-28.0, spine + 45.0, -110.0 * height), (8.0, 8.0, 35.0)),
                           radius=(8.0, 20.0)),
        "iliac": Site("iliac node", "viscera",
                      lambda g: np.array([either_side(g) * g.uniform(55, 70), g.uniform(5, 25),
                                          -185.0 * height + g.uniform(-10, 10)]),
                      radius=(8.0, 18.0)),
    }
    lung_site = Site("lung", "lung", in_lung, inside=both_lungs, depth=6.0, radius=(7.0, 22.0))
    liver_site = Site("liver", "liver", in_liver, inside=torso.liver, depth=8.0,
                      radius=(8.0, 22.0))
    spleen_site = Site("spleen", "spleen", lambda g: torso.spleen_centre
                       + g.uniform(-0.4, 0.4, 3) * torso.spleen_radii, radius=(8.0, 16.0))
    sites: list[Site] = []
    if diagnosis == "lymphoma":
        names = list(node_sites)
        for index in rng.choice(len(names), int(rng.integers(2, 7)), replace=True):
            sites.append(node_sites[names[index]])
        if rng.random() < 0.3:
            sites.append(spleen_site)
    elif diagnosis == "melanoma":
        pool = [node_sites["axillary"], node_sites["iliac"], node_sites["paraaortic"],
                lung_site, liver_site]
        for index in rng.choice(len(pool), int(rng.integers(1, 5)), replace=True):
            sites.append(pool[index])
    elif diagnosis == "lung_cancer":
        primary = Site("lung primary", "lung", in_lung, inside=both_lungs, depth=4.0,
                       radius=(12.0, 30.0))
        sites.append(primary)
        pool = [node_sites["hilar"], node_sites["mediastinal"], node_sites["supraclavicular"]]
        for index in rng.choice(len(pool), int(rng.integers(0, 4)), replace=True):
            sites.append(pool[index])
        if rng.random() < 0.2:
            sites.append(liver_site)
    return sites


# -- painting, outside in -------------------------------------------------------------------
def _paint_trunk(canvas: Canvas, torso: Torso) -> None:
    """Subcutaneous fat, the muscle wall, abdominal viscera, mediastinum, psoas muscles."""
    canvas.paint("fat", torso.body)
    canvas.paint("muscle", lambda x, y, z: torso.body(x, y, z)
                 + torso.profile(torso.fat_knots, z))
    canvas.paint("viscera", lambda x, y, z: np.maximum(torso.cavity(x, y, z),
                                                       z - torso.diaphragm_right + 10.0))
    canvas.paint("mediastinum", lambda x, y, z: np.maximum(torso.cavity(x, y, z),
                                                           torso.diaphragm_left - 20.0 - z))
    radius = 20.0 * torso.scale
    for side in (-1, 1):
        course = torso.psoas[side > 0]
        canvas.paint("muscle", lambda x, y, z, course=course: tube(x, y, z, course, radius),
                     box=tube_box(course, radius))


def _paint_chest_organs(canvas: Canvas, torso: Torso) -> None:
    """Lungs, trachea and bronchi."""
    canvas.paint("lung", torso.lung(-1))
    canvas.paint("lung", torso.lung(1))
    radius = torso.trachea_radius
    canvas.paint("air", lambda x, y, z: tube(x, y, z, torso.trachea, radius),
                 box=tube_box(torso.trachea, radius))
    for bronchus in torso.bronchi:
        canvas.paint("air", lambda x, y, z, bronchus=bronchus: tube(x, y, z, bronchus,
                                                                    0.65 * radius),
                     box=tube_box(bronchus, radius))


def _paint_abdominal_organs(canvas: Canvas, torso: Torso) -> None:
    """Liver, spleen, stomach and its gas, bowel gas, kidneys with their pelves, bladder."""
    canvas.paint("liver", torso.liver)
    canvas.paint("spleen", lambda x, y, z: np.maximum(
        ellipsoid(x, y, z, torso.spleen_centre, torso.spleen_radii), torso.cavity(x, y, z) + 3.0))
    canvas.paint("stomach", lambda x, y, z: ellipsoid(x, y, z, torso.stomach_centre,
                                                      torso.stomach_radii))
    gas_centre, gas_radii = torso.stomach_gas_centre, torso.stomach_gas_radii
    canvas.paint("air", lambda x, y, z: ellipsoid(x, y, z, gas_centre, gas_radii),
                 box=(gas_centre - gas_radii, gas_centre + gas_radii))
    for centre, radius in torso.bowel_gas:
        canvas.paint("air", lambda x, y, z, centre=centre, radius=radius: np.maximum(
            ellipsoid(x, y, z, centre, (radius, radius, radius * 1.5)),
            torso.cavity(x, y, z) + 10.0),
            box=(centre - (radius, radius, 1.5 * radius), centre + (radius, radius, 1.5 * radius)))
    kidney_radii = torso.kidney_radii
    for side in (-1, 1):
        centre = torso.kidney_centre[side]
        canvas.paint("kidney", lambda x, y, z, centre=centre: ellipsoid(x, y, z, centre,
                                                                        kidney_radii),
                     box=(centre - kidney_radii, centre + kidney_radii))
        pelvis_centre = centre + np.array([-side * 0.3 * kidney_radii[0],
                                           0.15 * kidney_radii[1], 0.0])
        pelvis_radii = kidney_radii * np.array([0.35, 0.35, 0.4])
        canvas.paint("renal_pelvis", lambda x, y, z, centre=pelvis_centre, radii=pelvis_radii:
                     ellipsoid(x, y, z, centre, radii),
                     box=(pelvis_centre - pelvis_radii, pelvis_centre + pelvis_radii))
    bladder_centre, bladder_radii = torso.bladder_centre, torso.bladder_radii
    canvas.paint("bladder", lambda x, y, z: ellipsoid(x, y, z, bladder_centre, bladder_radii),
                 box=(bladder_centre - bladder_radii, bladder_centre + bladder_radii))


def _paint_heart_and_vessels(canvas: Canvas, torso: Torso) -> None:
    """Myocardium around the blood pool, aorta, inferior vena cava."""
    heart_box = (torso.heart_centre - torso.heart_radii.max(),
                 torso.heart_centre + torso.heart_radii.max())
    canvas.paint("myocardium", torso.heart, box=heart_box)
    canvas.paint("blood", lambda x, y, z: torso.heart(x, y, z) + torso.ventricle_wall,
                 box=heart_box)
    radius = torso.aorta_radius
    canvas.paint("blood", lambda x, y, z: tube(x, y, z, torso.aorta, radius),
                 box=tube_box(torso.aorta, radius))
    canvas.paint("blood", lambda x, y, z: tube(x, y, z, torso.vena_cava, 0.85 * radius),
                 box=tube_box(torso.vena_cava, radius))


def _paint_spine(canvas: Canvas, torso: Torso) -> None:
    """Cancellous vertebral bodies in a cortical shell, discs, canal, posterior elements."""
    canvas.paint("cortical", torso.vertebra)
    canvas.paint("marrow", lambda x, y, z: torso.vertebra(x, y, z) + 3.0)
    canvas.paint("disc", torso.discs)
    canal_y, radius = torso.spinal_canal_y, torso.vertebral_radius
    canvas.paint("cortical", lambda x, y, z: np.maximum(
        ellipse(x, y, 0.0, canal_y(z) - 8.0, 0.55 * radius(z) + 6.0, 18.0),
        -torso.discs(x, y, z) - 100.0))
    canvas.paint("csf", lambda x, y, z: ellipse(x, y, 0.0, canal_y(z), 7.5, 7.0))
    canvas.paint("cortical", lambda x, y, z: ellipse(x, y, 0.0, canal_y(z) - 28.0, 5.0, 14.0))


def _paint_ribs_and_shoulders(canvas: Canvas, torso: Torso) -> None:
    """Ribs, sternum, clavicles, scapulae."""
    canvas.paint("cortical", torso.ribs)
    canvas.paint("marrow", lambda x, y, z: torso.ribs(x, y, z) + 2.5)
    sternum_y = torso.chest_cavity_y + torso.chest_cavity_b + 10.0
    sternum = [(0.0, sternum_y, torso.diaphragm_right + 10.0),
               (0.0, sternum_y + 3, torso.lung_apex - 10.0)]
    canvas.paint("marrow", lambda x, y, z: tube(x, y, z, sternum, 9.0),
                 box=tube_box(sternum, 9.0))
    for side in (-1, 1):
        clavicle = torso.clavicles[side > 0]
        canvas.paint("cortical", lambda x, y, z, clavicle=clavicle: np.maximum(
            tube(x, y, z, clavicle, 8.0), torso.body(x, y, z) + 12.0),
            box=tube_box(clavicle, 8.0))
        centre, turn = torso.scapula_centre[side], torso.scapula_rotation[side]
        canvas.paint("cortical", lambda x, y, z, centre=centre, turn=turn: ellipsoid(
            x, y, z, centre, (45.0, 6.0, 65.0), turn), box=(centre - 70, centre + 70))


def _paint_pelvis(canvas: Canvas, torso: Torso) -> None:
    """Iliac wings (shells), femoral heads, sacrum."""
    radii = torso.iliac_radii
    for side in (-1, 1):
        centre = torso.iliac_centre[side]
        canvas.paint("cortical", lambda x, y, z, centre=centre, side=side: iliac_wing(
            x, y, z, centre, radii, side, 0.0, 12.0, 8.0), box=(centre - radii, centre + radii))
        canvas.paint("marrow", lambda x, y, z, centre=centre, side=side: iliac_wing(
            x, y, z, centre, radii, side, 3.0, 9.0, 5.0), box=(centre - radii, centre + radii))
        centre = torso.femoral_head[side]
        canvas.paint("cortical", lambda x, y, z, centre=centre: ellipsoid(x, y, z, centre,
                                                                          (25.0,) * 3),
                     box=(centre - 25, centre + 25))
        canvas.paint("marrow", lambda x, y, z, centre=centre: ellipsoid(x, y, z, centre,
                                                                        (21.0,) * 3),
                     box=(centre - 25, centre + 25))
    sacrum = np.array([0.0, torso.spine_abdomen_y - 5.0, -205.0 * torso.height])
    canvas.paint("cortical", lambda x, y, z: ellipsoid(x, y, z, sacrum, (45.0, 22.0, 50.0)),
                 box=(sacrum - 50, sacrum + 50))
    canvas.paint("marrow", lambda x, y, z: ellipsoid(x, y, z, sacrum, (41.0, 18.0, 46.0)),
                 box=(sacrum - 50, sacrum + 50))
