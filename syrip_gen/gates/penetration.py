"""Self-penetration measured on the posed mesh: how deep one body part lies inside another.

Why: a fit can pass its keypoint losses with a forearm through the chest or one thigh through
the other; the render then shows an impossible body. Joint-capsule checks miss the fleshy
parts, so we test the mesh itself. But infants touch themselves all the time (hands to mouth,
crossed legs, a foot on the other shin): contact is not a failure, intersection is.

Method: the body's vertices are grouped into 14 coarse parts (head, torso, upper arm, forearm,
hand, thigh, shin, foot) from the body topology's dominant bone per vertex. A vertex ``p`` of
part A lies inside part B when, with ``q`` the nearest vertex of B and ``n`` B's outward vertex
normal there, ``(p - q) . n < -depth``: below B's own surface, not below a convex hull (hulls of
the head or torso swallow a hand resting in the concave space under the chin). Parts that are
neighbours on the kinematic tree (forearm/upper arm at a bent elbow) are not compared. The
number is the worst pair's share: max over parts A, B of (A's vertices deeper than ``depth``
inside B) / (A's vertices). Touching parts score ~0 (their vertices sit on or just under the
other's surface, within ``depth``); a limb through another scores a large share.
"""
from __future__ import annotations

import numpy as np

# coarse part -> prefixes of body-part (bone) names; matched on Anny's bone labels
PART_BONES = {
    "head": ("head", "eye.", "neck"),
    "torso": ("root", "pelvis.", "spine", "clavicle.", "shoulder01."),
    "upper_arm.L": ("upperarm01.L", "upperarm02.L"), "upper_arm.R": ("upperarm01.R", "upperarm02.R"),
    "forearm.L": ("lowerarm01.L", "lowerarm02.L"), "forearm.R": ("lowerarm01.R", "lowerarm02.R"),
    "hand.L": ("wrist.L",), "hand.R": ("wrist.R",),
    "thigh.L": ("upperleg01.L", "upperleg02.L"), "thigh.R": ("upperleg01.R", "upperleg02.R"),
    "shin.L": ("lowerleg01.L", "lowerleg02.L"), "shin.R": ("lowerleg01.R", "lowerleg02.R"),
    "foot.L": ("foot.L",), "foot.R": ("foot.R",),
}
PARTS = tuple(PART_BONES)
ADJACENT = {frozenset(p) for p in [
    ("head", "torso"), ("torso", "upper_arm.L"), ("torso", "upper_arm.R"),
    ("upper_arm.L", "forearm.L"), ("upper_arm.R", "forearm.R"),
    ("forearm.L", "hand.L"), ("forearm.R", "hand.R"),
    ("torso", "thigh.L"), ("torso", "thigh.R"), ("thigh.L", "shin.L"), ("thigh.R", "shin.R"),
    ("shin.L", "foot.L"), ("shin.R", "foot.R"),
]}


def coarse_parts(part_of_vertex: np.ndarray, part_names: tuple[str, ...]) -> np.ndarray:
    """Coarse part index ``(V,) int64`` (into ``PARTS``; -1 if unmatched) of each vertex, from
    the topology's per-vertex bone id ``(V,)`` and bone names."""
    bone_to_part = np.full(len(part_names), -1, dtype=np.int64)
    for b, name in enumerate(part_names):
        for p, prefixes in enumerate(PART_BONES.values()):
            if name.startswith(prefixes):
                bone_to_part[b] = p
    return bone_to_part[np.asarray(part_of_vertex, dtype=np.int64)]


def body_parts(body) -> np.ndarray | None:
    """:func:`coarse_parts` of a body model's topology, None without part labels (render's
    contact settling and the clips' per-frame contact records use them)."""
    topo = body.topology() if hasattr(body, "topology") else None
    if topo is None or topo.part_of_vertex is None:
        return None
    return coarse_parts(np.asarray(topo.part_of_vertex), tuple(topo.part_names))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit outward normals ``(V, 3)`` of a mesh's vertices ``(V, 3)`` (area-weighted faces ``(F, 3)``)."""
    v = vertices[faces]  # (F, 3, 3)
    fn = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    idx = faces.ravel()
    per_corner = np.repeat(fn, 3, axis=0)  # each face's normal at its three corners
    vn = np.stack([np.bincount(idx, per_corner[:, c], minlength=len(vertices)) for c in range(3)], 1)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def penetration_share(vertices: np.ndarray, parts: np.ndarray, faces: np.ndarray, depth: float = 0.02,
                      stride: int = 1) -> tuple[np.ndarray, list[str]]:
    """Worst share of one part's vertices deeper than ``depth`` inside a non-adjacent part, per body.

    ``vertices (B, V, 3) float`` posed mesh in metres; ``parts (V,) int64`` from
    :func:`coarse_parts`; ``faces (F, 3) int64`` of the mesh (for its normals); ``depth``: how
    far below the other part's surface counts (metres); ``stride``: probe every stride-th vertex
    of each part (speed). Returns ``share (B,) float64`` and, per body, the worst pair as
    ``"A in B"`` ('' when none).
    """
    from scipy.spatial import cKDTree

    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    share = np.zeros(len(vertices))
    worst: list[str] = []
    members = [np.flatnonzero(parts == p) for p in range(len(PARTS))]
    probes = [m[::stride] for m in members]
    for b, verts in enumerate(vertices):
        normals = vertex_normals(verts, faces)
        best, best_pair = 0.0, ""
        for pb, mb in enumerate(members):
            if len(mb) < 4:
                continue
            tree = cKDTree(verts[mb])
            lo, hi = verts[mb].min(0), verts[mb].max(0)
            for pa, ma in enumerate(probes):
                if pa == pb or frozenset((PARTS[pa], PARTS[pb])) in ADJACENT or not len(ma):
                    continue
                pts = verts[ma]
                near = np.all((pts > lo) & (pts < hi), axis=1)  # inside B's box: B's surface can be above it
                if not near.any():
                    continue
                _, j = tree.query(pts[near])
                q = mb[j]
                signed = np.einsum("ij,ij->i", pts[near] - verts[q], normals[q])
                frac = float((signed < -depth).sum()) / len(ma)
                if frac > best:
                    best, best_pair = frac, f"{PARTS[pa]} in {PARTS[pb]}"
        share[b] = best
        worst.append(best_pair)
    return share, worst


def bodies_penetration(a: np.ndarray, b: np.ndarray, faces: np.ndarray, depth: float = 0.0) -> float:
    """Share of one body's vertices lying more than ``depth`` metres inside the other body, the
    worse of the two ways (0: apart or touching). ``a (V, 3)``, ``b (V, 3)``: two posed meshes
    of one topology ``faces (F, 3)``, world frame. Same test as :func:`penetration_share`, between
    two infants of a scene instead of two parts of one: below the other's surface at its
    nearest vertex, probed only inside the other's box."""
    from scipy.spatial import cKDTree

    worst = 0.0
    for p, q in ((a, b), (b, a)):
        p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
        lo, hi = q.min(0), q.max(0)
        near = np.all((p > lo) & (p < hi), axis=1)
        if not near.any():
            continue
        normals = vertex_normals(q, np.asarray(faces, np.int64))
        _, j = cKDTree(q).query(p[near])
        signed = np.einsum("ij,ij->i", p[near] - q[j], normals[j])
        worst = max(worst, float((signed < -depth).sum()) / len(p))
    return worst
