"""Pose coverage as k-NN precision and recall (Kynkäänniemi et al. 2019) on limb vectors.

Why: a synthetic set helps only where its poses fall where real infants' poses fall. Precision
says what share of the generated poses lie on the real poses' manifold (realistic); recall says
what share of the real poses lie on the generated manifold (covered). Each manifold is the union
of balls around its samples with the radius to the sample's ``k``-th nearest neighbour in the
same set.

Features: the 12 body limbs of the COCO skeleton (legs, hips, flanks, shoulders, arms; no face)
as 2D vectors ``end - start`` of the torso-normalised pose (mid-hip at the origin, mid-hip ->
mid-shoulder pointing up, lengths in torso lengths), i.e. 24 numbers per skeleton. Skeletons
missing a limb joint are left out and counted.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial.distance import cdist

from syrip_gen.coco import SKELETON

K = 3
N_GENERATED = 1000
LIMBS = np.array(SKELETON[:12]) - 1  # (12, 2) 0-based start, end: the body limbs, no face


@dataclass(frozen=True)
class PrecisionRecall:
    """k-NN precision and recall of a generated set against a real one."""

    precision: float
    recall: float
    k: int
    n_real: int
    n_generated: int


def limb_features(poses: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Torso-normalised poses ``(N, 17, 2)`` with mask ``(N, 17) bool`` -> limb vectors
    ``(M, 24) float64`` of the skeletons with every limb joint labelled, and their indices ``(M,)``."""
    ok = mask[:, LIMBS.ravel()].all(1)
    vec = poses[ok][:, LIMBS[:, 1]] - poses[ok][:, LIMBS[:, 0]]  # (M, 12, 2)
    return vec.reshape(len(vec), -1).astype(np.float64), np.flatnonzero(ok)


def knn_radii(x: np.ndarray, k: int = K) -> np.ndarray:
    """``(N, D)`` -> ``(N,)`` distance of each sample to its ``k``-th nearest other sample
    (inf when the set has ``k`` samples or fewer)."""
    if len(x) <= k:
        return np.full(len(x), np.inf)
    d = cdist(x, x)
    return np.sort(d, axis=1)[:, k]  # column 0 is the sample itself


def _share_inside(query: np.ndarray, ref: np.ndarray, radii: np.ndarray) -> float:
    """Share of ``query`` rows inside at least one ball (centre ``ref`` row, radius ``radii``)."""
    return float(np.mean((cdist(query, ref) <= radii[None]).any(1)))


def precision_recall(real: np.ndarray, generated: np.ndarray, k: int = K) -> PrecisionRecall:
    """k-NN precision (share of ``generated (M, D)`` inside the real manifold) and recall (share
    of ``real (N, D)`` inside the generated manifold)."""
    if not len(real) or not len(generated):
        raise ValueError(f"precision/recall needs samples in both sets (real {len(real)}, generated {len(generated)})")
    precision = _share_inside(generated, real, knn_radii(real, k))
    recall = _share_inside(real, generated, knn_radii(generated, k))
    return PrecisionRecall(precision, recall, k, len(real), len(generated))


def draw(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``n`` rows of ``x`` drawn without replacement (all of them, in order, when fewer)."""
    if len(x) <= n:
        return x
    return x[np.sort(rng.choice(len(x), n, replace=False))]


def pose_precision_recall(real: np.ndarray, generated: np.ndarray, seed: int = 0,
                          n_generated: int = N_GENERATED, k: int = K) -> dict:
    """Limb features of real and generated sets -> the precision/recall record for stats.json,
    with ``n_generated`` generated skeletons drawn with ``seed``."""
    gen = draw(generated, n_generated, np.random.default_rng(seed))
    return {**asdict(precision_recall(real, gen, k)), "seed": seed, "features": "12 COCO limb vectors, torso-normalised"}


__all__ = ["K", "LIMBS", "N_GENERATED", "PrecisionRecall", "draw", "knn_radii", "limb_features",
           "pose_precision_recall", "precision_recall"]
