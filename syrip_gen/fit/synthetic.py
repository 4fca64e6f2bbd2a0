"""Synthetic round-trip data for the fitter: known bodies and cameras, projected to 2D skeletons.

Why: the only way to measure 3D accuracy (PA-MPJPE) without 3D ground truth on real photos;
used by the tests and by ``benchmarks/fit_real.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch

from syrip_gen.fit.camera import focal_from_fov, project, to_camera


@dataclass
class SyntheticSet:
    keypoints: torch.Tensor  # (N, 17, 3) pixels + visibility 2
    keypoints_3d: torch.Tensor  # (N, 17, 3) metres, camera frame
    pose: torch.Tensor  # (N, 24, 3)
    shape: torch.Tensor  # (N, S)
    width: torch.Tensor  # (N,)
    height: torch.Tensor  # (N,)
    t: torch.Tensor  # (N, 3)


def synthetic_skeletons(body, prior, n: int, generator: torch.Generator, fov_deg: float = 60.0,
                        pixel_noise: float = 0.0) -> SyntheticSet:
    """``n`` bodies with poses from ``prior``, ages uniform in 0-12 months, seen from random
    views (yaw any, tilt within ±40°, roll any) at 0.7-1.4 m in 1024x768 or 768x1024 images.
    ``pixel_noise``: Gaussian noise std on the 2D keypoints as a fraction of the image size."""
    pose = prior.sample(n, generator)
    yaw = torch.rand(n, generator=generator) * 2 * math.pi
    tilt = (torch.rand(n, generator=generator) - 0.5) * math.radians(80)
    roll = torch.rand(n, generator=generator) * 2 * math.pi
    zero = torch.zeros(n)
    R = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    V = roma.rotvec_to_rotmat(torch.stack([tilt, zero, zero], 1)) @ roma.rotvec_to_rotmat(torch.stack([zero, yaw, zero], 1))
    Rz = roma.rotvec_to_rotmat(torch.stack([zero, zero, roll], 1))
    pose[:, 0] = roma.rotmat_to_rotvec(R @ Rz @ R @ V)
    months = torch.rand(n, generator=generator) * 12
    shape = body.shape_for_age(months)
    shape[:, 1:] += 0.5 * body.shape_std[1:] * torch.randn(n, shape.shape[1] - 1, generator=generator)
    shape = body.clamp_shape(shape)
    portrait = torch.rand(n, generator=generator) < 0.5
    width = torch.where(portrait, 768.0, 1024.0)
    height = torch.where(portrait, 1024.0, 768.0)
    depth = 0.7 + 0.7 * torch.rand(n, generator=generator)
    xy = (torch.rand(n, 2, generator=generator) - 0.5) * 0.15 * depth[:, None]
    t = torch.cat([xy, depth[:, None]], 1)
    with torch.no_grad():
        kps = body(pose, shape).keypoints
        cam = to_camera(kps, t)
        focal = focal_from_fov(width, height, fov_deg)
        px = project(cam, focal, torch.stack([width, height], 1) / 2)
    if pixel_noise > 0:
        px = px + pixel_noise * torch.maximum(width, height)[:, None, None] * torch.randn(px.shape, generator=generator)
    kp = torch.cat([px, torch.full((n, 17, 1), 2.0)], 2)
    return SyntheticSet(kp, cam, pose, shape, width, height, t)


def procrustes_align(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``pred (B, N, 3)`` aligned to ``target`` by the best similarity transform (scale,
    rotation, translation); returns the aligned ``(B, N, 3)``."""
    mp, mt = pred.mean(1, keepdim=True), target.mean(1, keepdim=True)
    p, q = pred - mp, target - mt
    u, s, vt = torch.linalg.svd(p.transpose(1, 2) @ q)
    d = torch.sign(torch.linalg.det(u @ vt))
    D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], 1))
    rot = u @ D @ vt
    scale = (s * torch.diagonal(D, dim1=1, dim2=2)).sum(1) / (p ** 2).sum((1, 2))
    return scale[:, None, None] * p @ rot + mt


def pa_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Procrustes-aligned mean per-joint position error ``(B,)`` in the inputs' units."""
    return (procrustes_align(pred, target) - target).norm(dim=-1).mean(1)
