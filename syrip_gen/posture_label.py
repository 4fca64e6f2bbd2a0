"""Posture labels (supine / prone / side / sitting / standing) from 3D COCO keypoints.

Pure functions on batched tensors. ``up`` is the world's up direction in the keypoints' frame
(for a rendered scene, the support surface normal; for the body frame, +y).
"""
from __future__ import annotations

import math

import torch

L_SH, R_SH, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK = 5, 6, 11, 12, 13, 14, 15, 16


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-9)


def torso_frame(kp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Torso axis (hips -> shoulders) and chest normal (front), each ``(B, 3)`` unit vectors,
    of keypoints ``(B, 17, 3)`` in a right-handed frame."""
    mid_hip = (kp[:, L_HIP] + kp[:, R_HIP]) / 2
    mid_sh = (kp[:, L_SH] + kp[:, R_SH]) / 2
    axis = _unit(mid_sh - mid_hip)
    across = kp[:, L_SH] - kp[:, R_SH] + kp[:, L_HIP] - kp[:, R_HIP]  # towards the body's left
    front = _unit(torch.linalg.cross(across, axis))  # left x up = forward (x=left, y=up, z=fwd)
    return axis, front


def posture_labels(kp: torch.Tensor, up: torch.Tensor) -> list[str]:
    """One label per body of ``kp (B, 17, 3)``, with ``up (3,)`` or ``(B, 3)`` the world's up.

    Lying (torso over 50° from upright): supine if the chest faces within 50° of up, prone if
    within 50° of down, else side. Upright: standing if the ankles lie below the hips by over
    half the leg length along up and the thighs are within 35° of vertical, else sitting.
    """
    up = _unit(up.expand(kp.shape[0], 3).to(kp.dtype))
    axis, front = torso_frame(kp)
    tilt = torch.rad2deg(torch.acos((axis * up).sum(-1).clamp(-1, 1)))
    facing = (front * up).sum(-1)
    mid_hip = (kp[:, L_HIP] + kp[:, R_HIP]) / 2
    mid_knee = (kp[:, L_KNEE] + kp[:, R_KNEE]) / 2
    mid_ank = (kp[:, L_ANK] + kp[:, R_ANK]) / 2
    leg = (mid_knee - mid_hip).norm(dim=-1) + (mid_ank - mid_knee).norm(dim=-1)
    drop = ((mid_hip - mid_ank) * up).sum(-1)
    thigh_vertical = -(_unit(mid_knee - mid_hip) * up).sum(-1)
    cos50 = math.cos(math.radians(50))
    labels = []
    for i in range(kp.shape[0]):
        if tilt[i] > 50:
            labels.append("supine" if facing[i] > cos50 else "prone" if facing[i] < -cos50 else "side")
        elif drop[i] > 0.5 * leg[i] and thigh_vertical[i] > math.cos(math.radians(35)):
            labels.append("standing")
        else:
            labels.append("sitting")
    return labels


def up_for_posture(kp: torch.Tensor, posture: list[str]) -> torch.Tensor:
    """Best guess of the world's up ``(B, 3)`` for keypoints ``(B, 17, 3)`` of known postures
    (e.g. a fit of a labelled real photo): the chest normal for supine, its opposite for prone,
    the side facing away from the support for side-lying, the torso axis when upright."""
    axis, front = torso_frame(kp)
    across = _unit(kp[:, L_SH] - kp[:, R_SH])
    ups = []
    for i, p in enumerate(posture):
        p = (p or "").lower()
        if p == "supine":
            ups.append(front[i])
        elif p == "prone":
            ups.append(-front[i])
        elif p == "side":
            ups.append(across[i])
        else:
            ups.append(axis[i])
    return torch.stack(ups)
