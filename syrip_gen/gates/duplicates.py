"""Near-duplicate samples: the same pose seen from the same view.

Why: fitting one skeleton and rendering it many times from nearly the same camera adds
images but no information; a pose model then over-weights that pose.

Two samples are duplicates when both their 2D keypoints (centred and scaled, so the same view
at another distance or image position still matches; image rotation is kept, a rolled camera is
a different view) and their 3D body poses (joints 1..23, global orientation left to the 2D
term) are close. One number per pair: ``score = max(d2 / max_2d, d3 / max_pose)``; below 1
means duplicate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation


def normalised_2d(kps: np.ndarray) -> np.ndarray:
    """``(N, 17, 3)`` keypoints -> ``(N, 34)`` float64: labelled keypoints centred on their mean
    and divided by their RMS radius; unlabelled ones (v=0) put at the centre."""
    xy = kps[..., :2].astype(np.float64)
    used = (kps[..., 2] > 0)[..., None]
    n = np.maximum(used.sum(axis=1, keepdims=True), 1)
    centre = (xy * used).sum(axis=1, keepdims=True) / n
    rel = (xy - centre) * used
    scale = np.sqrt((rel ** 2).sum(axis=(1, 2)) / n[:, 0, 0])[:, None, None]
    return (rel / np.maximum(scale, 1e-9)).reshape(len(kps), -1)


def pose_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest geodesic angle (radians) between the joint rotations 1..23 of poses
    ``a, b (P, 24, 3)`` axis-angle -> ``(P,)``: "same pose" means every joint agrees."""
    ra = Rotation.from_rotvec(a[:, 1:].reshape(-1, 3))
    rb = Rotation.from_rotvec(b[:, 1:].reshape(-1, 3))
    return (ra.inv() * rb).magnitude().reshape(len(a), -1).max(axis=1)


@dataclass
class DuplicateScores:
    """Per sample: the smallest pair score to any other sample and that sample (``score (N,)``
    float64, inf when alone; ``nearest (N,)`` int64, -1 when none); and every pair below 1
    (``pairs (P, 2)`` int64 with i < j, ``pair_score (P,)``)."""

    score: np.ndarray
    nearest: np.ndarray
    pairs: np.ndarray
    pair_score: np.ndarray


def duplicate_scores(kps: np.ndarray, poses: np.ndarray | None, max_2d: float, max_pose: float
                     ) -> DuplicateScores:
    """Pair scores of ``kps (N, 17, 3)`` with ``poses (N, 24, 3)`` axis-angle (NaN rows where a
    sample has no body pose: then only the 2D term counts), or None."""
    n = len(kps)
    score = np.full(n, np.inf)
    nearest = np.full(n, -1, dtype=np.int64)
    none = np.zeros((0, 2), dtype=np.int64)
    if n < 2:
        return DuplicateScores(score, nearest, none, np.zeros(0))
    tree = cKDTree(normalised_2d(kps) / np.sqrt(17.0))  # RMS over the 17 keypoints
    d_nn, i_nn = tree.query(tree.data, k=2)
    far = d_nn[:, 1] >= max_2d  # no 2D candidate: the score is the 2D term alone
    score[far] = d_nn[far, 1] / max_2d
    nearest[far] = i_nn[far, 1]
    pairs = tree.query_pairs(r=max_2d, output_type="ndarray").astype(np.int64)
    if not len(pairs):
        return DuplicateScores(score, nearest, none, np.zeros(0))
    pairs = np.sort(pairs, axis=1)
    i, j = pairs[:, 0], pairs[:, 1]
    s = np.linalg.norm(tree.data[i] - tree.data[j], axis=1) / max_2d
    if poses is not None:
        ok = np.isfinite(poses[i]).all(axis=(1, 2)) & np.isfinite(poses[j]).all(axis=(1, 2))
        if ok.any():
            s[ok] = np.maximum(s[ok], pose_distance(poses[i[ok]], poses[j[ok]]) / max_pose)
    for a, b, v in zip(i, j, s):
        if v < score[a]:
            score[a], nearest[a] = v, b
        if v < score[b]:
            score[b], nearest[b] = v, a
    dup = s < 1.0
    return DuplicateScores(score, nearest, pairs[dup], s[dup])


def pair_score(kps_a: np.ndarray, kps_b: np.ndarray, pose_a: np.ndarray | None,
               pose_b: np.ndarray | None, max_2d: float, max_pose: float) -> float:
    """Score of one pair (same definition as :func:`duplicate_scores`)."""
    f = normalised_2d(np.stack([kps_a, kps_b])) / np.sqrt(17.0)
    s = np.linalg.norm(f[0] - f[1]) / max_2d
    if pose_a is not None and pose_b is not None and np.isfinite(pose_a).all() and np.isfinite(pose_b).all():
        s = max(s, float(pose_distance(pose_a[None], pose_b[None])[0]) / max_pose)
    return float(s)
