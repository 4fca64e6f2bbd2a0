"""Where further infants of a scene go: on the first body's support plane, beside it, never in it.

Why a march and not a solver: two posed meshes of ~14 000 vertices each are placed in a few
milliseconds this way, and the result is exactly what the annotations need: bodies close
enough to occlude each other from many views, never intersecting. Each further body is
lowered (or raised) so that its lowest vertex rests on the plane, centred on the bodies
already placed, then moved outward along a drawn direction on the plane in ``step`` metres
until every one of its vertices keeps ``gap`` metres from every vertex already placed. Vertex
spacing on the infant meshes is under a centimetre, so a gap of a centimetre or more also
keeps the surfaces apart (:func:`syrip_gen.gates.penetration.bodies_penetration` checks it
on the surfaces, in the tests).
"""
from __future__ import annotations

import math

import numpy as np


def place_bodies(first: np.ndarray, others: list[np.ndarray], directions: list[float], floor_y: float,
                 gap: float = 0.015, step: float = 0.02, max_distance: float = 3.0) -> list[np.ndarray] | None:
    """World offsets ``(3,) float64`` for ``others`` (each ``(V, 3)`` posed vertices) so that
    they rest on the plane ``y = floor_y`` beside ``first (V, 3)`` and each other.

    ``directions``: one angle (radians, on the x-z plane) per further body. Returns None when a
    body finds no room within ``max_distance`` metres (the caller redraws)."""
    from scipy.spatial import cKDTree

    placed = [np.asarray(first, np.float64)]
    offsets = []
    for verts, angle in zip(others, directions):
        v = np.asarray(verts, np.float64)
        allv = np.concatenate(placed)
        tree = cKDTree(allv)
        centre = (allv.min(0) + allv.max(0)) / 2
        own = (v.min(0) + v.max(0)) / 2
        base = np.array([centre[0] - own[0], floor_y - v[:, 1].min(), centre[2] - own[2]])
        way = np.array([math.cos(angle), 0.0, math.sin(angle)])
        found = None
        for k in range(int(max_distance / step) + 1):
            offset = base + k * step * way
            d, _ = tree.query(v + offset, distance_upper_bound=gap)
            if np.isinf(d).all():  # no vertex within the gap of any placed vertex
                found = offset
                break
        if found is None:
            return None
        offsets.append(found)
        placed.append(v + found)
    return offsets


def min_clearance(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest distance (m) between the vertices ``a (V, 3)`` and ``b (W, 3)``."""
    from scipy.spatial import cKDTree

    return float(cKDTree(np.asarray(b, np.float64)).query(np.asarray(a, np.float64))[0].min())
