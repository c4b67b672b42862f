"""The head-and-neck phantom (vertex to lung apices): anatomy, primaries, cervical nodes.

See :mod:`xhbench.datasets.petct_phantom` for how a subject is built.
"""

from __future__ import annotations

import numpy as np

from .petct_phantom import (HEAD_NECK_FOV, PetCtSubject, Site, draw_values,
                            images_from_fractions, paint_lesions, place_lesions)
from .petct_shapes import (Canvas, GridExtent, ellipse, ellipsoid, memoised, rotation,
                           smooth_union, tube, tube_box, warp_modes)

__all__ = ["make_head_neck"]


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
        return ellipse(x, y, 0.0, np.interp(z, zk, yk), np.interp(z, zk, ak),
                        np.interp(z, zk, bk), 2.1)

    rot = rotation("x", flex)

    frame_memo: dict = {}

    def head_frame(fn):  # evaluate ``fn`` in head coordinates (flexed around the pivot)
        def shape(x, y, z):
            def compute():
                px, py, pz = x - pivot[0], y - pivot[1], z - pivot[2]
                return (rot[0, 0] * px + rot[0, 1] * py + rot[0, 2] * pz + pivot[0],
                        rot[1, 0] * px + rot[1, 1] * py + rot[1, 2] * pz + pivot[1],
                        rot[2, 0] * px + rot[2, 1] * py + rot[2, 2] * pz + pivot[2])
            return fn(*memoised(frame_memo, "head", x, compute))
        return shape

    def hbox(c, r):  # world box of a head-frame ellipsoid, widened for the flexion
        world = rot.T @ (np.asarray(c, float) - pivot) + pivot
        reach = 1.2 * np.asarray(r, float) + 3.0
        return world - reach, world + reach

    head = head_frame(lambda x, y, z: ellipsoid(x, y, z, head_c, head_r))
    face = head_frame(lambda x, y, z: np.maximum(ellipsoid(x, y, z, face_c, face_r),
                                                 z - head_c[2]))

    def body(x, y, z):
        return smooth_union(smooth_union(head(x, y, z), face(x, y, z), 12.0),
                     np.maximum(neck(x, y, z), z - 20.0), 18.0)

    brain_base = head_c[2] - 0.55 * head_r[2]
    brain_r = head_r - scalp - skull - 2.0

    def brain(x, y, z):
        return np.maximum(ellipsoid(x, y, z, head_c, brain_r), brain_base - z)

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
    values = draw_values(rng)
    values["brain_wm"] = (values["brain_wm"][0], values["brain_gm"][1] * u(0.3, 0.45))
    warp = warp_modes(rng, (2.0, 4.0))

    sites: list[Site] = []
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
        sites.append(Site(f"{name} primary", bg, lambda g, c=centre: c + g.uniform(-4, 4, 3),
                           radius=(10.0, 22.0)))
        for k in range(int(rng.choice([0, 1, 1, 2, 3]))):
            level = (8.0, -22.0, -52.0)[k]
            sites.append(Site(f"level {('II', 'III', 'IV')[k]} node", "muscle",
                               lambda g, z=level: np.array([side * g.uniform(32, 44),
                                                            g.uniform(0, 16), z * hz]),
                               radius=(8.0, 16.0)))
    lesions = place_lesions(rng, GridExtent(HEAD_NECK_FOV, size), sites, [], values,
                             suv_median=10.0)
    fields_seed = int(rng.integers(2**31))

    canvas = Canvas(size, HEAD_NECK_FOV, 0.0, warp)
    canvas.paint("fat", body)
    canvas.paint("muscle", lambda x, y, z: body(x, y, z) + fat)
    for c in lung_c:
        canvas.paint("lung", lambda x, y, z, c=c: np.maximum(ellipsoid(x, y, z, c, lung_r),
                                                             neck(x, y, z) + 15.0),
                     box=(c - lung_r, c + lung_r))
    skull_box = hbox(head_c, head_r)
    canvas.paint("cortical", head_frame(lambda x, y, z: ellipsoid(x, y, z, head_c,
                                                                   head_r - scalp)), skull_box)
    canvas.paint("csf", head_frame(lambda x, y, z: ellipsoid(x, y, z, head_c,
                                                              head_r - scalp - skull)), skull_box)
    canvas.paint("cortical", head_frame(lambda x, y, z: np.maximum(
        ellipsoid(x, y, z, head_c, head_r - scalp - skull), np.abs(z - brain_base + 4) - 5.0)),
        skull_box)
    canvas.paint("brain_gm", head_frame(brain), skull_box)
    canvas.paint("brain_gm", head_frame(lambda x, y, z: ellipsoid(x, y, z, cereb_c, cereb_r)),
                 hbox(cereb_c, cereb_r))
    canvas.paint("brain_wm", head_frame(lambda x, y, z: brain(x, y, z) + gm), skull_box)
    for side_ in (-1, 1):
        vc, vr = head_c + np.array([side_ * 11.0, 5.0, 5.0]), (7.0, 26.0, 11.0)
        canvas.paint("csf", head_frame(lambda x, y, z, c=vc, r=vr: ellipsoid(x, y, z, c, r)),
                     hbox(vc, vr))
    for c in eye_c:
        canvas.paint("eye", head_frame(lambda x, y, z, c=c: ellipsoid(x, y, z, c, (eye_r,) * 3)),
                     hbox(c, (eye_r,) * 3))
    canvas.paint("air", head_frame(lambda x, y, z: ellipsoid(x, y, z, nasal_c,
                                                              (11.0, 24.0, 18.0))),
                 hbox(nasal_c, (11.0, 24.0, 18.0)))
    for c in sinus_c:
        canvas.paint("air", head_frame(lambda x, y, z, c=c: ellipsoid(x, y, z, c,
                                                                       (13.0, 15.0, 15.0))),
                     hbox(c, (13.0, 15.0, 15.0)))

    def mandible(x, y, z):
        ring = np.abs(ellipse(x, y, mand_c[0], mand_c[1], mand_r[0], mand_r[1]))
        d = np.maximum(ring - 6.0, np.abs(z - mand_c[2]) - 14.0)
        return np.maximum(d, mand_c[1] - 25.0 - y)

    jaw_box = hbox(mand_c, (mand_r[0] + 8.0, mand_r[1] + 8.0, 16.0))
    canvas.paint("cortical", head_frame(mandible), jaw_box)
    canvas.paint("marrow", head_frame(lambda x, y, z: mandible(x, y, z) + 3.0), jaw_box)
    canvas.paint("tongue", head_frame(lambda x, y, z: ellipsoid(x, y, z, tongue_c, tongue_r)),
                 hbox(tongue_c, tongue_r))
    canvas.paint("air", lambda x, y, z: tube(x, y, z, airway, r_air),
                 box=tube_box(airway, r_air))
    for c in parotid_c:
        canvas.paint("salivary", lambda x, y, z, c=c: ellipsoid(x, y, z, c, parotid_r),
                     box=(c - parotid_r, c + parotid_r))
    for c in subman_c:
        canvas.paint("salivary", lambda x, y, z, c=c: ellipsoid(x, y, z, c, (13.0, 13.0, 10.0)),
                     box=(c - 13, c + 13))
    for c in tonsil_c:
        canvas.paint("tonsil", lambda x, y, z, c=c: ellipsoid(x, y, z, c, tonsil_r),
                     box=(c - tonsil_r, c + tonsil_r))
    for c in thyroid_c:
        canvas.paint("thyroid", lambda x, y, z, c=c: ellipsoid(x, y, z, c, (9.0, 9.0, 22.0)),
                     box=(c - 22, c + 22))
    for c in node_cs:
        canvas.paint("node", lambda x, y, z, c=c: ellipsoid(x, y, z, c, (5.0, 5.0, 7.0)),
                     box=(c - 7, c + 7))

    def vertebra(x, y, z):
        return np.maximum(ellipse(x, y, 0.0, y_c, 11.0 * s, 9.5 * s), z - 40.0 * hz)

    canvas.paint("cortical", vertebra)
    canvas.paint("marrow", lambda x, y, z: vertebra(x, y, z) + 2.5)
    canvas.paint("disc", lambda x, y, z: np.maximum(vertebra(x, y, z), -(np.abs(np.mod(
        z - disc_phase, disc_period) - disc_period / 2.0) - disc_h / 2.0)))
    canvas.paint("csf", lambda x, y, z: np.maximum(ellipse(x, y, 0.0, y_c - 19.0, 7.0, 6.5),
                                                   z - 45.0 * hz))
    canvas.paint("cortical", lambda x, y, z: np.maximum(
        ellipse(x, y, 0.0, y_c - 36.0, 4.5, 10.0), z - 35.0 * hz))
    for c in clavicle:
        canvas.paint("cortical", lambda x, y, z, c=c: np.maximum(
            tube(x, y, z, c, 7.5), body(x, y, z) + 10.0), box=tube_box(c, 7.5))
    paint_lesions(canvas, lesions)
    body_sdf = body(canvas.x, canvas.y, canvas.z)
    return images_from_fractions(rng, canvas, values, lesions, diagnosis, "head_neck",
                                 fields_seed, body_sdf, liver_suv=values["liver"][1])
