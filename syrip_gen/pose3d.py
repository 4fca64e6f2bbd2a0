"""3D pose error against a reference whose units and camera frame are unknown (SyRIP's corrected
3D): both poses scaled to unit mean limb length, then similarity (Procrustes) aligned on the 12
limb joints; the error is the mean per-joint distance in limb lengths.

Why: the fitter's depth and the lifter's output are only worth something if they match real
infants in 3D, and the one real 3D reference has no metric scale. Scaling by limb length makes
the number comparable across sets and independent of the body's size.

Joints: the 12 limb joints in LSP order (right ankle, knee, hip, left hip, knee, ankle, right
wrist, elbow, shoulder, left shoulder, elbow, wrist) - the first 12 of LSP-14 (neck and head top
are left out; COCO has neither). Limbs: shins, thighs, forearms and upper arms (8).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from syrip_gen.fit.synthetic import procrustes_align

LSP14_NAMES = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
               "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
               "neck", "head_top"]
REFERENCE_3D = Path("3d") / "keypoints_3d_corrected.json"  # beside annotations/ in a SyRIP-layout dataset
# COCO-17 index of each of the 12 LSP limb joints, in LSP order
COCO_OF_LSP12 = [16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9]
# limbs as index pairs into the 12 LSP limb joints
LIMBS12 = [(0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8), (9, 10), (10, 11)]


def coco_to_lsp12(kps: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """COCO-17 keypoints ``(B, 17, D)`` -> the 12 LSP limb joints ``(B, 12, D)``."""
    return kps[:, COCO_OF_LSP12]


def mean_limb_length(x: torch.Tensor) -> torch.Tensor:
    """``(B, 12, 3)`` -> ``(B,)`` mean length of the 8 limbs."""
    a, b = zip(*LIMBS12)
    return (x[:, list(a)] - x[:, list(b)]).norm(dim=-1).mean(1)


def unit_limbs(x: torch.Tensor) -> torch.Tensor:
    """``(B, 12, 3)`` centred on the joints' mean and scaled to unit mean limb length."""
    x = x - x.mean(1, keepdim=True)
    return x / mean_limb_length(x).clamp_min(1e-12)[:, None, None]


def aligned_error(pred: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Mean per-joint error ``(B,) float64`` in mean limb lengths of ``pred (B, 12, 3)`` against
    ``ref (B, 12, 3)`` after both are scaled to unit mean limb length and ``pred`` is similarity
    aligned to ``ref`` (no reflection)."""
    p = unit_limbs(torch.as_tensor(pred, dtype=torch.float64))
    r = unit_limbs(torch.as_tensor(ref, dtype=torch.float64))
    return (procrustes_align(p, r) - r).norm(dim=-1).mean(1)


def average_pose(ref: torch.Tensor | np.ndarray, iterations: int = 10) -> torch.Tensor:
    """``(12, 3)`` mean pose of ``ref (B, 12, 3)`` by generalised Procrustes: align every pose to
    the running mean, average, repeat (the no-information baseline)."""
    r = unit_limbs(torch.as_tensor(ref, dtype=torch.float64))
    mean = r[0]
    for _ in range(iterations):
        mean = procrustes_align(r, mean.expand_as(r)).mean(0)
        mean = unit_limbs(mean[None])[0]
    return mean


def zero_depth(kps2d: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Image keypoints ``(B, J, 2+)`` -> ``(B, J, 3)`` with zero depth (the no-depth baseline)."""
    k = torch.as_tensor(kps2d, dtype=torch.float64)[..., :2]
    return torch.cat([k, torch.zeros_like(k[..., :1])], -1)


def read_reference_3d(dataset: str | Path) -> dict[str, np.ndarray]:
    """Image file name -> ``(12, 3) float64`` reference 3D limb joints (LSP order) from a dataset's
    ``3d/keypoints_3d_corrected.json`` (``dataset``: its directory or its COCO file); empty when
    the dataset has none."""
    from syrip_gen.coco import dataset_root, find_keypoint_json

    path = Path(dataset)
    root = path if path.is_dir() else dataset_root(find_keypoint_json(path))
    if not (root / REFERENCE_3D).exists():
        return {}
    data = json.loads((root / REFERENCE_3D).read_text())
    return {name: np.asarray(p, np.float64)[:12] for name, p in data["poses"].items()}


def scores(pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor) -> dict:
    """Aligned errors of predictions ``(B, 12, 3)`` against references ``(B, 12, 3)``, with the
    references' own average pose as the no-information baseline: a JSON-ready summary."""
    err = aligned_error(pred, ref).numpy()
    avg = aligned_error(average_pose(ref).expand(len(err), 12, 3), ref).numpy()
    return {"n": int(len(err)), "limb_error_mean": float(err.mean()), "limb_error_median": float(np.median(err)),
            "average_pose_mean": float(avg.mean())}


__all__ = ["REFERENCE_3D", "read_reference_3d", "scores", "COCO_OF_LSP12", "LIMBS12", "LSP14_NAMES", "aligned_error", "average_pose", "coco_to_lsp12",
           "mean_limb_length", "unit_limbs", "zero_depth"]
