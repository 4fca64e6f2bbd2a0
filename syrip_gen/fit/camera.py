"""The fit camera: pinhole, principal point at the image centre, OpenCV axes, R = diag(1,-1,-1).

Why: one place for the projection maths and the initial camera guesses. All rotation lives in
the body's global orientation (docs/architecture.md), so a camera here is a focal length, a
principal point and a translation ``t``: ``X_cam = R @ X + t``.

Default field of view: 60° across the longer image side. A phone's main camera (26 mm
equivalent) sees ~69° across the long side; real infant photos are often zoomed or cropped
(SyRIP's come from phone photos and video frames), which narrows the effective view, and
a narrower guess errs towards weaker perspective, the safer side for a wrong depth.
"""
from __future__ import annotations

import math

import torch

R_FIT = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
L_SH, R_SH, L_HIP, R_HIP = 5, 6, 11, 12


def focal_from_fov(width: torch.Tensor, height: torch.Tensor, fov_deg: float) -> torch.Tensor:
    """Focal length ``(B,)`` in pixels for a field of view across the longer side."""
    return 0.5 * torch.maximum(width, height) / math.tan(math.radians(fov_deg) / 2)


def to_camera(points: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Body-frame points ``(B, N, 3)`` -> camera frame with R = diag(1,-1,-1) and ``t (B, 3)``."""
    return points * torch.tensor([1.0, -1.0, -1.0], dtype=points.dtype, device=points.device) + t[:, None]


def project(points_cam: torch.Tensor, focal: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Camera-frame points ``(B, N, 3)`` -> pixels ``(B, N, 2)``; focal ``(B,)``, centre ``(B, 2)``.
    Depth is clamped at 1 cm so a body behind the camera gives large but finite errors."""
    z = points_cam[..., 2:].clamp(min=0.01)
    return focal[:, None, None] * points_cam[..., :2] / z + centre[:, None]


def initial_translation(kp2d: torch.Tensor, weight: torch.Tensor, model_kp: torch.Tensor,
                        focal: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Initial ``t (B, 3)``: depth from the torso's 2D size against the model's, the pelvis under
    the labelled hips (or the keypoints' centroid).

    kp2d ``(B, 17, 2)`` pixels, weight ``(B, 17)`` (0 = unlabelled), model_kp ``(B, 17, 3)``
    T-pose keypoints of the body (metres). Torso size = mean of the shoulder-to-hip lengths and
    the shoulder width that are labelled (foreshortening makes this an upper bound on depth);
    without any, the keypoint box diagonal against the body's height.
    """
    seen = weight > 0
    pairs = ((L_SH, L_HIP), (R_SH, R_HIP), (L_SH, R_SH), (L_HIP, R_SH), (R_HIP, L_SH))
    num = torch.zeros_like(focal)
    den = torch.zeros_like(focal)
    for a, b in pairs:
        ok = (seen[:, a] & seen[:, b]).to(focal.dtype)
        num = num + ok * (model_kp[:, a] - model_kp[:, b]).norm(dim=-1)
        den = den + ok * (kp2d[:, a] - kp2d[:, b]).norm(dim=-1)
    big = torch.tensor(1e9, dtype=focal.dtype, device=focal.device)
    xy = torch.where(seen[..., None], kp2d, big)
    lo = xy.amin(1)
    hi = torch.where(seen[..., None], kp2d, -big).amax(1)
    diag2d = (hi - lo).norm(dim=-1)
    height3d = model_kp[..., 1].amax(1) - model_kp[..., 1].amin(1)
    depth = torch.where(den > 1e-3, focal * num / den.clamp(min=1e-3), focal * height3d / diag2d.clamp(min=1.0))
    hips = seen[:, L_HIP] & seen[:, R_HIP]
    w = weight[..., None] * seen[..., None]
    centroid = (kp2d * w).sum(1) / w.sum(1).clamp(min=1e-6)
    anchor = torch.where(hips[:, None], (kp2d[:, L_HIP] + kp2d[:, R_HIP]) / 2, centroid)
    xy_m = (anchor - centre) * depth[:, None] / focal[:, None]
    return torch.cat([xy_m, depth[:, None]], 1)


def camera_record(focal: float, cx: float, cy: float, t) -> dict:
    """The fits-format camera dict (docs/architecture.md)."""
    return {"fx": float(focal), "fy": float(focal), "cx": float(cx), "cy": float(cy),
            "R": R_FIT.tolist(), "t": [float(x) for x in t]}
