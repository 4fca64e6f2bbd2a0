"""The common pose space: the SMPL 24-joint tree in axis-angle, zero = T-pose, y up, facing +z.

Priors, joint limits and augmentations are written once in this space; each body model maps
it onto its own rig. Everything here is a pure function on batched tensors.

Frame: x = the body's left, y = up, z = forward (SMPL's). A body model whose native frame
differs gives the rotation ``C`` from this frame to its own (Anny: ``C = Rx(+90°)``, z up and
facing -y); a joint rotation ``R`` then becomes ``C R Cᵀ`` there.
"""
from __future__ import annotations

import torch

from syrip_gen.geometry import axis_rotation

JOINT_NAMES = [
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
]
NUM_JOINTS = 24
PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# mirror image of each joint (for left-right flips of a pose)
FLIP_JOINTS = [0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22]
JOINT = {name: i for i, name in enumerate(JOINT_NAMES)}


def rx(angle_deg: float, dtype=torch.float32) -> torch.Tensor:
    """``(3, 3)`` rotation about x by ``angle_deg`` (a constant: ``geometry.axis_rotation``)."""
    return torch.from_numpy(axis_rotation("x", angle_deg, degrees=True)).to(dtype)


def change_frame(rot: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """Express rotations ``(..., 3, 3)`` of the common frame in another: ``C R Cᵀ``."""
    return frame @ rot @ frame.transpose(-1, -2)


def flip_pose(pose: torch.Tensor) -> torch.Tensor:
    """Mirror a pose ``(B, 24, 3)`` left-right: swap joints and negate the y and z components
    (mirroring x -> -x keeps rotations about x and flips those about y and z)."""
    flipped = pose[:, FLIP_JOINTS].clone()
    flipped[..., 1:] *= -1
    return flipped
