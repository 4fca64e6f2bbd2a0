"""Robust reprojection loss: Geman-McClure on keypoint errors normalised by the person's size.

Why: annotators mark infant joints with errors that grow with the infant's size in the image,
and a few keypoints are plainly wrong (swapped sides, a hidden limb guessed). Normalising by
the keypoint box diagonal makes one setting serve a 100-pixel and a 2000-pixel infant; the
Geman-McClure penalty ``e² / (e² + σ²)`` is quadratic for ``e ≪ σ`` and saturates at 1 for
outliers, so a wrong keypoint cannot drag the whole body.
"""
from __future__ import annotations

import torch

VISIBLE_WEIGHT = 1.0
OCCLUDED_WEIGHT = 0.5


def geman_mcclure(err: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """``e² / (e² + σ²)`` elementwise, in [0, 1); ``err`` any shape, ``sigma`` in err's units."""
    e2 = err * err
    return e2 / (e2 + sigma * sigma)


def keypoint_weights(vis: torch.Tensor) -> torch.Tensor:
    """``(B, 17)`` weights from COCO visibility ``(B, 17)``: 2 -> 1, 1 -> 0.5, 0 -> 0."""
    return torch.where(vis >= 2, VISIBLE_WEIGHT, torch.where(vis >= 1, OCCLUDED_WEIGHT, 0.0)).to(torch.float32)


def box_diagonal(kp2d: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Diagonal ``(B,)`` in pixels of the box around the labelled keypoints ``(B, 17, 2)``."""
    seen = (weight > 0)[..., None]
    big = torch.tensor(1e9, dtype=kp2d.dtype, device=kp2d.device)
    lo = torch.where(seen, kp2d, big).amin(1)
    hi = torch.where(seen, kp2d, -big).amax(1)
    return (hi - lo).norm(dim=-1).clamp(min=1.0)


def reprojection_errors(pred: torch.Tensor, target: torch.Tensor, diag: torch.Tensor) -> torch.Tensor:
    """Per-keypoint error ``(B, 17)`` as a fraction of the box diagonal ``(B,)``."""
    return (pred - target).norm(dim=-1) / diag[:, None]


def robust_reprojection(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                        diag: torch.Tensor, sigma: float) -> torch.Tensor:
    """Weighted mean Geman-McClure ``(B,)`` of the normalised errors; pred/target ``(B, 17, 2)``
    pixels, weight ``(B, 17)``, diag ``(B,)``, sigma a fraction of the diagonal."""
    rho = geman_mcclure(reprojection_errors(pred, target, diag), sigma)
    return (rho * weight).sum(1) / weight.sum(1).clamp(min=1e-6)
