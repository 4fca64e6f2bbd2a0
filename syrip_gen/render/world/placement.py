"""Where further infants of a scene go: on the first body's support plane, beside it, never in it.

Why a march and not a solver: two posed meshes of ~14 000 vertices each are placed in a few
milliseconds this way, and the result is exactly what the annotations need: bodies close
enough to occlude each other from many views, never intersecting. Each further body is
lowered (or raised) so that its lowest vertex rests on the plane, centred on the bodies
already placed, then moved outward along a drawn direction on the plane in ``step`` metres
until every one of its vertices keeps ``gap`` metres from every vertex already placed (the
distance found first on every 16th vertex by doubling and bisection, then confirmed, and
stepped further if need be, on all of them). Vertex
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
        coarse = v[::16]  # a few vertices find the distance; every vertex confirms it

        def clear(k: int, pts: np.ndarray) -> bool:
            return bool(np.isinf(tree.query(pts + base + k * step * way, distance_upper_bound=gap)[0]).all())

        last = int(max_distance / step)
        hi = 1
        while hi < last and not clear(hi, coarse):  # doubling, then bisection on the sparse vertices
            hi = min(2 * hi, last)
        lo = 0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if clear(mid, coarse) else (mid, hi)
        if clear(0, coarse):
            hi = 0
        found = None
        for k in range(hi, last + 1):  # outward from there until every vertex keeps the gap
            if clear(k, v):
                found = base + k * step * way
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
