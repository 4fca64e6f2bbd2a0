"""Self-penetration measured on the posed mesh: how much of the body lies inside itself.

Why: a fit can pass its keypoint losses with a forearm through the chest or one thigh through
the other; the render then shows an impossible body. Joint-capsule checks miss the fleshy
parts, so we test the mesh itself.

Method: the body's vertices are grouped into 14 coarse parts (head, torso, upper arm, forearm,
hand, thigh, shin, foot) from the body topology's dominant bone per vertex. Each part gets its
convex hull (scipy Qhull); a vertex of part A counts as penetrating when it lies deeper than
``depth`` metres inside the hull of a part B that is not A's neighbour on the kinematic tree
(neighbours such as forearm/upper arm legitimately touch at a bent joint). The number is the
share of all vertices that penetrate. Convex hulls over-cover concave parts a little; the depth
margin absorbs resting contact (a hand on the belly), so natural poses score ~0. The number
is the worst pair's share: max over parts A, B of (A's vertices inside B) / (A's vertices).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

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


def penetration_share(vertices: np.ndarray, parts: np.ndarray, depth: float = 0.01,
                      stride: int = 1) -> tuple[np.ndarray, list[str]]:
    """Worst share of one part's vertices inside a non-adjacent part, per body.

    ``vertices (B, V, 3) float`` posed mesh in metres; ``parts (V,) int64`` from
    :func:`coarse_parts`; ``depth``: how far inside (metres) counts; ``stride``: use every
    stride-th vertex of each part, for its hull and as probes (speed; 13.7k-vertex Anny at
    stride 3 keeps hundreds of vertices per part). Returns ``share (B,) float64`` and, per
    body, the worst pair as ``"A in B"`` ('' when none).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    share = np.zeros(len(vertices))
    worst: list[str] = []
    members = [np.flatnonzero(parts == p)[::stride] for p in range(len(PARTS))]
    probe = members
    for b, verts in enumerate(vertices):
        best, best_pair = 0.0, ""
        for pb, mb in enumerate(members):
            if len(mb) < 4:
                continue
            try:
                hull = ConvexHull(verts[mb])
            except QhullError:
                continue
            eq = hull.equations  # (F, 4): n . x + d <= 0 inside, n unit
            lo, hi = verts[mb].min(0) - depth, verts[mb].max(0) + depth
            for pa, ma in enumerate(probe):
                if pa == pb or frozenset((PARTS[pa], PARTS[pb])) in ADJACENT or not len(ma):
                    continue
                pts = verts[ma]
                near = np.all((pts > lo) & (pts < hi), axis=1)
                if not near.any():
                    continue
                idx = ma[near]
                signed = verts[idx] @ eq[:, :3].T + eq[:, 3]
                frac = float((signed.max(axis=1) < -depth).sum()) / len(ma)
                if frac > best:
                    best, best_pair = frac, f"{PARTS[pa]} in {PARTS[pb]}"
        share[b] = best
        worst.append(best_pair)
    return share, worst
