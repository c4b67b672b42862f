"""The torso phantom (lower neck to pubis) and its thorax crop: anatomy, lesion sites.

See :mod:`xhbench.datasets.petct_phantom` for how a subject is built.
"""

from __future__ import annotations

import math

import numpy as np

from .petct_phantom import (THORAX_FOV, TORSO_FOV, PetCtSubject, Site, draw_values,
                            images_from_fractions, paint_lesions, place_lesions)
from .petct_shapes import (Canvas, GridExtent, ellipse, ellipsoid, iliac_wing, memoised,
                           rotation, smooth_union, tube, tube_box, warp_modes)

__all__ = ["make_torso"]

_THORAX_CENTRE_Z = 150.0  # body z (diaphragm near 10-50 mm) at the thorax grid centre


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
        return memoised(memo, ("prof", id(knot_values)), z,
                     lambda: np.interp(z, knots, knot_values).astype(np.float32))

    def body(x, y, z):
        return ellipse(x, y, 0.0, prof(yc_knots, z), prof(a_knots, z), prof(b_knots, z), 2.3)

    def inner(z):  # muscle-lined cavity: centre y, half axes
        def compute():
            a, b = prof(a_knots, z), prof(b_knots, z)
            yc, f = prof(yc_knots, z), prof(fat_knots, z)
            d = shift * b
            return yc + d, a - f - wall, b - f - wall - d
        return memoised(memo, ("inner",), z, compute)

    def cavity(x, y, z):
        cy, a, b = inner(z)
        return ellipse(x, y, 0.0, cy, np.maximum(a, 10.0), np.maximum(b, 10.0), 2.2)

    def spine_y(z):
        cy, _, b = inner(z)
        return cy - b + 0.6 * r_vb(z)

    def r_vb(z):
        return memoised(memo, ("r_vb",), z, lambda: np.interp(
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
            return np.maximum(d, ellipsoid(x, y, z, centre, radii))
        return shape

    # Heart, vessels, airways.
    hs = s * u(0.9, 1.12)
    heart_c = np.array([-(15.0 + 12.0 * s) + u(-8, 8), cy_c + u(15.0, 30.0), z_dia_l + 50 * hz])
    heart_r = np.array([58.0, 45.0, 55.0]) * hs
    heart_rot = rotation("z", u(-40.0, -20.0)) @ rotation("y", u(10.0, 25.0))
    lv_wall = u(10.0, 14.0)

    def heart(x, y, z):
        return ellipsoid(x, y, z, heart_c, heart_r, heart_rot)

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
        d = smooth_union(ellipsoid(x, y, z, liver_c, liver_r),
                  ellipsoid(x, y, z, left_lobe_c, left_lobe_r), 20.0)
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
    scap_rot = {side: rotation("z", side * u(20.0, 35.0)) for side in (-1, 1)}
    values = draw_values(rng)
    warp = warp_modes(rng, (3.0, 6.0))

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
        "mediastinal": Site("mediastinal node", "mediastinum",
                             at((0.0, y_tr + 12.0, z_car + 25.0), (12.0, 8.0, 20.0)),
                             radius=(8.0, 18.0)),
        "hilar": Site("hilar node", "mediastinum",
                       lambda g: np.array([g.choice([-1, 1]) * (med + 8.0), y_tr - 5.0,
                                           z_car - 30.0 + g.uniform(-10, 10)]),
                       radius=(7.0, 15.0)),
        "axillary": Site("axillary node", "fat",
                          lambda g: np.array([g.choice([-1, 1]) * (a_chest - fat - 10.0),
                                              g.uniform(-15, 15), z_apex - g.uniform(30, 60)]),
                          radius=(7.0, 16.0)),
        "supraclavicular": Site("supraclavicular node", "fat",
                                 lambda g: np.array([g.choice([-1, 1]) * g.uniform(40, 60),
                                                     g.uniform(5, 20), z_apex + 25.0]),
                                 radius=(6.0, 14.0)),
        "paraaortic": Site("para-aortic node", "viscera",
                            at((-28.0, y_sp_abd + 45.0, -110.0 * hz), (8.0, 8.0, 35.0)),
                            radius=(8.0, 20.0)),
        "iliac": Site("iliac node", "viscera",
                       lambda g: np.array([g.choice([-1, 1]) * g.uniform(55, 70),
                                           g.uniform(5, 25), -185.0 * hz + g.uniform(-10, 10)]),
                       radius=(8.0, 18.0)),
    }
    lung_site = Site("lung", "lung", in_lung, inside=both_lungs, depth=6.0, radius=(7.0, 22.0))
    liver_site = Site("liver", "liver", in_liver, inside=liver, depth=8.0, radius=(8.0, 22.0))
    spleen_site = Site("spleen", "spleen", lambda g: spleen_c + g.uniform(-0.4, 0.4, 3)
                        * spleen_r, radius=(8.0, 16.0))
    sites: list[Site] = []
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
        primary = Site("lung primary", "lung", in_lung, inside=both_lungs, depth=4.0,
                        radius=(12.0, 30.0))
        sites.append(primary)
        pool = [node_sites["hilar"], node_sites["mediastinal"], node_sites["supraclavicular"]]
        for k in rng.choice(len(pool), int(rng.integers(0, 4)), replace=True):
            sites.append(pool[k])
        if rng.random() < 0.2:
            sites.append(liver_site)
    hot = [heart, lambda x, y, z: ellipsoid(x, y, z, bladder_c, bladder_r)]
    hot += [lambda x, y, z, c=c: ellipsoid(x, y, z, c, kid_r) for c in kid_c.values()]
    lesions = place_lesions(rng, GridExtent(fov, size, centre_z), sites, hot, values)
    fields_seed = int(rng.integers(2**31))

    # Paint, outside in.
    canvas = Canvas(size, fov, centre_z, warp)
    canvas.paint("fat", body)
    canvas.paint("muscle", lambda x, y, z: body(x, y, z) + prof(fat_knots, z))
    canvas.paint("viscera", lambda x, y, z: np.maximum(cavity(x, y, z), z - z_dia_r + 10.0))
    canvas.paint("mediastinum", lambda x, y, z: np.maximum(cavity(x, y, z), z_dia_l - 20.0 - z))
    for side in (-1, 1):
        canvas.paint("muscle", lambda x, y, z, p=psoas[side > 0]: tube(x, y, z, p, 20.0 * s),
                     box=tube_box(psoas[side > 0], 20.0 * s))
    canvas.paint("lung", lung_l)
    canvas.paint("lung", lung_r)
    canvas.paint("air", lambda x, y, z: tube(x, y, z, trachea, r_tr), box=tube_box(trachea, r_tr))
    for b in bronchi:
        canvas.paint("air", lambda x, y, z, b=b: tube(x, y, z, b, 0.65 * r_tr),
                     box=tube_box(b, r_tr))
    canvas.paint("liver", liver)
    canvas.paint("spleen", lambda x, y, z: np.maximum(ellipsoid(x, y, z, spleen_c, spleen_r),
                                                      cavity(x, y, z) + 3.0))
    canvas.paint("stomach", lambda x, y, z: ellipsoid(x, y, z, stomach_c, stomach_r))
    canvas.paint("air", lambda x, y, z: ellipsoid(x, y, z, gas_c, gas_r),
                 box=(gas_c - gas_r, gas_c + gas_r))
    for c, r in gas_pockets:
        canvas.paint("air", lambda x, y, z, c=c, r=r: np.maximum(
            ellipsoid(x, y, z, c, (r, r, r * 1.5)), cavity(x, y, z) + 10.0),
            box=(c - (r, r, 1.5 * r), c + (r, r, 1.5 * r)))
    for side in (-1, 1):
        c = kid_c[side]
        canvas.paint("kidney", lambda x, y, z, c=c: ellipsoid(x, y, z, c, kid_r),
                     box=(c - kid_r, c + kid_r))
        pc = c + np.array([-side * 0.3 * kid_r[0], 0.15 * kid_r[1], 0.0])
        pr = kid_r * np.array([0.35, 0.35, 0.4])
        canvas.paint("renal_pelvis", lambda x, y, z, c=pc, r=pr: ellipsoid(x, y, z, c, r),
                     box=(pc - pr, pc + pr))
    canvas.paint("bladder", lambda x, y, z: ellipsoid(x, y, z, bladder_c, bladder_r),
                 box=(bladder_c - bladder_r, bladder_c + bladder_r))
    canvas.paint("myocardium", heart, box=(heart_c - heart_r.max(), heart_c + heart_r.max()))
    canvas.paint("blood", lambda x, y, z: heart(x, y, z) + lv_wall,
                 box=(heart_c - heart_r.max(), heart_c + heart_r.max()))
    canvas.paint("blood", lambda x, y, z: tube(x, y, z, aorta, r_ao), box=tube_box(aorta, r_ao))
    canvas.paint("blood", lambda x, y, z: tube(x, y, z, ivc, 0.85 * r_ao),
                 box=tube_box(ivc, r_ao))

    # Spine: cancellous bodies in a cortical shell, discs, canal, posterior elements.
    def vertebra(x, y, z):
        return ellipse(x, y, 0.0, spine_y(z), r_vb(z), 0.85 * r_vb(z))

    def discs(x, y, z):
        slab = np.abs(np.mod(z - disc_phase, disc_period) - disc_period / 2.0) - disc_h / 2.0
        return np.maximum(vertebra(x, y, z), -slab)

    canvas.paint("cortical", vertebra)
    canvas.paint("marrow", lambda x, y, z: vertebra(x, y, z) + 3.0)
    canvas.paint("disc", discs)
    canal_y = lambda z: spine_y(z) - 0.85 * r_vb(z) - 9.0
    canvas.paint("cortical", lambda x, y, z: np.maximum(
        ellipse(x, y, 0.0, canal_y(z) - 8.0, 0.55 * r_vb(z) + 6.0, 18.0), -discs(x, y, z)
        - 100.0))
    canvas.paint("csf", lambda x, y, z: ellipse(x, y, 0.0, canal_y(z), 7.5, 7.0))
    canvas.paint("cortical", lambda x, y, z: ellipse(x, y, 0.0, canal_y(z) - 28.0, 5.0, 14.0))

    # Ribs (periodic slanted hoops in the chest wall), sternum, clavicles, scapulae.
    def ribs(x, y, z):
        cy, a, b = inner(z)
        ring = np.abs(ellipse(x, y, 0.0, cy, a + 6.0, b + 6.0, 2.2))
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
    canvas.paint("marrow", lambda x, y, z: tube(x, y, z, sternum, 9.0),
                 box=tube_box(sternum, 9.0))
    for side in (-1, 1):
        canvas.paint("cortical", lambda x, y, z, c=clavicle[side > 0]: np.maximum(
            tube(x, y, z, c, 8.0), body(x, y, z) + 12.0), box=tube_box(clavicle[side > 0], 8.0))
        c, rot = scap[side], scap_rot[side]
        canvas.paint("cortical", lambda x, y, z, c=c, rot=rot: ellipsoid(
            x, y, z, c, (45.0, 6.0, 65.0), rot), box=(c - 70, c + 70))
    # Pelvis: iliac wings (shells), sacrum, femoral heads.
    for side in (-1, 1):
        c = iliac[side]
        canvas.paint("cortical", lambda x, y, z, c=c, side=side: iliac_wing(x, y, z, c, iliac_r,
                                                                       side, 0.0, 12.0, 8.0),
                     box=(c - iliac_r, c + iliac_r))
        canvas.paint("marrow", lambda x, y, z, c=c, side=side: iliac_wing(x, y, z, c, iliac_r,
                                                                     side, 3.0, 9.0, 5.0),
                     box=(c - iliac_r, c + iliac_r))
        c = femur[side]
        canvas.paint("cortical", lambda x, y, z, c=c: ellipsoid(x, y, z, c, (25.0,) * 3),
                     box=(c - 25, c + 25))
        canvas.paint("marrow", lambda x, y, z, c=c: ellipsoid(x, y, z, c, (21.0,) * 3),
                     box=(c - 25, c + 25))
    sac_c = np.array([0.0, y_sp_abd - 5.0, -205.0 * hz])
    canvas.paint("cortical", lambda x, y, z: ellipsoid(x, y, z, sac_c, (45.0, 22.0, 50.0)),
                 box=(sac_c - 50, sac_c + 50))
    canvas.paint("marrow", lambda x, y, z: ellipsoid(x, y, z, sac_c, (41.0, 18.0, 46.0)),
                 box=(sac_c - 50, sac_c + 50))
    paint_lesions(canvas, lesions)
    body_sdf = body(canvas.x, canvas.y, canvas.z)
    return images_from_fractions(rng, canvas, values, lesions, diagnosis, region,
                                 fields_seed, body_sdf, liver_suv=values["liver"][1])
