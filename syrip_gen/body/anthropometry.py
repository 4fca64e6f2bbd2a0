"""Measurements of a posed body mesh: standing length and head height, for calibration and tests."""
from __future__ import annotations

import torch


def body_length(vertices: torch.Tensor) -> torch.Tensor:
    """Crown-to-heel length ``(B,)`` of T-posed bodies ``(B, V, 3)`` (y up)."""
    return vertices[..., 1].amax(-1) - vertices[..., 1].amin(-1)


def head_height(vertices: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """Crown-to-chin height ``(B,)`` of T-posed, forward-facing bodies.

    The chin (menton) is the lowest midline vertex between the shoulders and the nose that
    stands forward of halfway from the ears to the nose: the neck below it lies further back.
    vertices ``(B, V, 3)``, keypoints ``(B, 17, 3)`` (COCO order), y up, facing +z.
    """
    ears_z = keypoints[:, 3:5, 2].mean(1, keepdim=True)
    nose_z = keypoints[:, 0:1, 2]
    shoulder_y = keypoints[:, 5:7, 1].mean(1, keepdim=True)
    nose_y = keypoints[:, 0:1, 1]
    x, y, z = vertices.unbind(-1)
    face = (x.abs() < 0.006) & (z > (ears_z + nose_z) / 2) & (y > shoulder_y) & (y < nose_y)
    chin = torch.where(face, y, torch.full_like(y, float("inf"))).amin(-1)
    return y.amax(-1) - chin
