"""3D lifter (Martinez et al. 2017): an MLP from normalised 2D keypoints to pelvis-relative 3D keypoints,
plus the random-camera re-projection that turns synthetic 3D annotations into 2D/3D training pairs.

2D normalisation (:func:`normalise_2d`): subtract the mid-hip, divide by the larger side of the labelled
keypoints' box; unlabelled joints become 0. The output is metres, pelvis (= mid-hip) at the origin, axes
of the camera that sees the 2D input.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from syrip_gen.geometry import axis_rotation, intrinsics_matrix, project

LHIP, RHIP = 11, 12


@dataclass(frozen=True)
class LifterConfig:
    num_joints: int = 17
    hidden: int = 1024
    blocks: int = 2
    dropout: float = 0.5


class _Residual(nn.Module):
    def __init__(self, n: int, p: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n, n), nn.BatchNorm1d(n), nn.ReLU(inplace=True), nn.Dropout(p),
                                 nn.Linear(n, n), nn.BatchNorm1d(n), nn.ReLU(inplace=True), nn.Dropout(p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class Lifter(nn.Module):
    kind = "lifter"

    def __init__(self, cfg: LifterConfig):
        super().__init__()
        self.cfg = cfg
        j = cfg.num_joints
        self.inp = nn.Sequential(nn.Linear(2 * j, cfg.hidden), nn.BatchNorm1d(cfg.hidden), nn.ReLU(inplace=True),
                                 nn.Dropout(cfg.dropout))
        self.blocks = nn.Sequential(*[_Residual(cfg.hidden, cfg.dropout) for _ in range(cfg.blocks)])
        self.out = nn.Linear(cfg.hidden, 3 * j)

    def forward(self, kp2d: torch.Tensor, kp3d: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """kp2d ``(B, J, 2) float32`` normalised -> 3D ``(B, J, 3) float32`` metres, pelvis-relative;
        loss = mean joint L2 distance (m) against ``kp3d`` ``(B, J, 3)`` when given."""
        b, j, _ = kp2d.shape
        pred = self.out(self.blocks(self.inp(kp2d.reshape(b, -1)))).reshape(b, j, 3)
        return pred, (None if kp3d is None else (pred - kp3d).norm(dim=-1).mean())

    def training_loss(self, batch: Mapping[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        _, loss = self(batch["kp2d"], batch["kp3d"])
        return loss, {"mpjpe_m": loss.item()}

    def load_pretrained(self, state, source: str) -> None:
        from syrip_gen.errors import UserError
        raise UserError(f"{source}: the lifter has no pretrained initialisation; drop --init")


def normalise_2d(kps: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """kps ``(..., J, 2)`` pixels, vis ``(..., J)`` -> ``(..., J, 2) float32``: mid-hip at 0, divided by
    the larger side of the labelled joints' box; unlabelled joints (and all, if a hip is missing) -> 0."""
    kps = np.asarray(kps, np.float64)
    lab = np.asarray(vis) > 0
    lo = np.where(lab[..., None], kps, np.inf).min(-2)
    hi = np.where(lab[..., None], kps, -np.inf).max(-2)
    side = np.where(lab.any(-1), (hi - lo).max(-1), 1.0)
    centre = 0.5 * (kps[..., LHIP, :] + kps[..., RHIP, :])
    out = (kps - centre[..., None, :]) / np.maximum(side, 1e-6)[..., None, None]
    ok = lab & lab[..., LHIP, None] & lab[..., RHIP, None]
    return np.where(ok[..., None], out, 0.0).astype(np.float32)


def pelvis_relative(kp3d: np.ndarray) -> np.ndarray:
    """``(..., J, 3)`` -> the same with the mid-hip subtracted."""
    return kp3d - 0.5 * (kp3d[..., LHIP, None, :] + kp3d[..., RHIP, None, :])


def random_view(kp3d: np.ndarray, rng: np.random.Generator, max_pitch_deg: float = 45.0,
                max_roll_deg: float = 20.0, distance: tuple[float, float] = (0.6, 2.5),
                focal: tuple[float, float] = (400.0, 1600.0), keep_original: float = 0.2
                ) -> tuple[np.ndarray, np.ndarray]:
    """Re-project one body through a random camera. kp3d ``(J, 3)`` metres (camera coordinates).
    The body is rotated about its pelvis (yaw any angle about the camera's vertical, pitch and roll
    bounded), placed at a random distance and seen with a random focal length.
    Returns 2D ``(J, 2)`` pixels and pelvis-relative 3D ``(J, 3)`` in the new camera frame."""
    rel = pelvis_relative(kp3d)
    if rng.random() < keep_original:
        r = np.eye(3)
        d = float(np.linalg.norm(kp3d[[LHIP, RHIP]].mean(0)))
        d = d if np.isfinite(d) and d > 0.2 else rng.uniform(*distance)
    else:
        # yaw about -y (the sign this sampler has always drawn with), pitch about x, roll about z
        r = (axis_rotation("y", -rng.uniform(-np.pi, np.pi)) @ axis_rotation("x", rng.uniform(-max_pitch_deg, max_pitch_deg), degrees=True)
             @ axis_rotation("z", rng.uniform(-max_roll_deg, max_roll_deg), degrees=True))
        d = rng.uniform(*distance)
    rel = rel @ r.T
    f = rng.uniform(*focal)
    uv = project(rel + np.array([0.0, 0.0, d]), intrinsics_matrix(f, f, 500.0, 500.0), min_depth=0.05)
    return uv, rel


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity-align pred ``(N, J, 3)`` to gt ``(N, J, 3)`` (scale, rotation, translation; Umeyama)."""
    out = np.empty_like(pred)
    for i, (p, g) in enumerate(zip(pred, gt)):
        mp, mg = p.mean(0), g.mean(0)
        p0, g0 = p - mp, g - mg
        u, s, vt = np.linalg.svd(p0.T @ g0)
        d = np.sign(np.linalg.det(u @ vt))
        s[-1] *= d
        u[:, -1] *= d
        rot = u @ vt
        scale = s.sum() / max((p0 ** 2).sum(), 1e-12)
        out[i] = scale * p0 @ rot + mg
    return out


def mpjpe_mm(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """MPJPE and PA-MPJPE in millimetres for pelvis-relative ``(N, J, 3)`` metre arrays."""
    e = float(np.linalg.norm(pred - gt, axis=-1).mean() * 1000)
    pa = float(np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean() * 1000)
    return e, pa
