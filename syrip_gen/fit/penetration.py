"""A cheap self-penetration measure: capsules on limbs, torso and head from the joints.

Why: a mesh-level collision test is far too slow inside the fitter's loop; a few capsules
around the 24 joints catch the gross failures (a shin through the other thigh, a forearm
through the chest) at the cost of a handful of segment distances per body.

Radii are "core" radii (a little under an infant's limb radius at 6 months) scaled by the
body's own size (pelvis-to-neck length over 0.20 m), so touching skin — a hand on the belly,
crossed ankles — costs nothing and only overlap beyond it counts.
"""
from __future__ import annotations

import torch

from syrip_gen.body.pose_space import JOINT

REFERENCE_TRUNK_M = 0.20
# name: (joint a, joint b, core radius in metres at the reference size)
CAPSULES = {
    "torso": ("pelvis", "spine3", 0.055),
    "head": ("head", "head", 0.055),
    "l_thigh": ("left_hip", "left_knee", 0.028), "r_thigh": ("right_hip", "right_knee", 0.028),
    "l_shin": ("left_knee", "left_ankle", 0.022), "r_shin": ("right_knee", "right_ankle", 0.022),
    "l_upper": ("left_shoulder", "left_elbow", 0.02), "r_upper": ("right_shoulder", "right_elbow", 0.02),
    "l_fore": ("left_elbow", "left_wrist", 0.017), "r_fore": ("right_elbow", "right_wrist", 0.017),
}
# pairs attached to each other (or nearly) that may touch by construction
ATTACHED = {frozenset(p) for p in (("torso", "l_thigh"), ("torso", "r_thigh"), ("torso", "l_upper"),
                                   ("torso", "r_upper"), ("torso", "head"), ("head", "l_upper"),
                                   ("head", "r_upper"), ("l_thigh", "r_thigh"))}
NAMES = list(CAPSULES)
PAIRS = [(i, j) for i in range(len(NAMES)) for j in range(i + 1, len(NAMES))
         if frozenset((NAMES[i], NAMES[j])) not in ATTACHED
         and not {CAPSULES[NAMES[i]][0], CAPSULES[NAMES[i]][1]} & {CAPSULES[NAMES[j]][0], CAPSULES[NAMES[j]][1]}]


def segment_distance(a0, a1, b0, b1) -> torch.Tensor:
    """Closest distance ``(...)`` between segments ``a0-a1`` and ``b0-b1`` (each ``(..., 3)``),
    the clamped closed form (Ericson, Real-Time Collision Detection, 5.1.9); a zero-length
    segment is a point."""
    d1, d2, r = a1 - a0, b1 - b0, a0 - b0
    a = (d1 * d1).sum(-1).clamp(min=1e-12)
    e = (d2 * d2).sum(-1).clamp(min=1e-12)
    b = (d1 * d2).sum(-1)
    c = (d1 * r).sum(-1)
    f = (d2 * r).sum(-1)
    denom = a * e - b * b
    s = torch.where(denom > 1e-10, ((b * f - c * e) / denom.clamp(min=1e-10)).clamp(0, 1), torch.zeros_like(a))
    t = (b * s + f) / e
    s = torch.where(t < 0, (-c / a).clamp(0, 1), torch.where(t > 1, ((b - c) / a).clamp(0, 1), s))
    t = t.clamp(0, 1)
    diff = (a0 + d1 * s[..., None]) - (b0 + d2 * t[..., None])
    return (diff * diff).sum(-1).clamp(min=1e-12).sqrt()


def _tables(device, dtype):
    """Capsule end indices into joints + the head centre (index 24), radii and pairs."""
    head = len(JOINT)
    ia = [head if n == "head" else JOINT[CAPSULES[n][0]] for n in NAMES]
    ib = [head if n == "head" else JOINT[CAPSULES[n][1]] for n in NAMES]
    return (torch.tensor(ia, device=device), torch.tensor(ib, device=device),
            torch.tensor([CAPSULES[n][2] for n in NAMES], dtype=dtype, device=device),
            torch.tensor(PAIRS, device=device))


def capsule_penetration(joints: torch.Tensor) -> torch.Tensor:
    """Metres of capsule overlap ``(B,)``, summed over non-attached pairs, for joints
    ``(B, 24, 3)`` float32 in metres (any frame)."""
    head_dir = joints[:, JOINT["head"]] - joints[:, JOINT["neck"]]
    # the head capsule is a sphere a little above the head joint, along the neck direction
    ext = torch.cat([joints, (joints[:, JOINT["head"]] + 0.8 * head_dir)[:, None]], 1)  # (B, 25, 3)
    ia, ib, radius, pairs = _tables(joints.device, joints.dtype)
    trunk = (joints[:, JOINT["neck"]] - joints[:, JOINT["pelvis"]]).norm(dim=-1)
    scale = (trunk / REFERENCE_TRUNK_M).clamp(0.5, 2.0)[:, None]
    a0, a1 = ext[:, ia[pairs[:, 0]]], ext[:, ib[pairs[:, 0]]]
    b0, b1 = ext[:, ia[pairs[:, 1]]], ext[:, ib[pairs[:, 1]]]
    d = segment_distance(a0, a1, b0, b1)
    overlap = torch.relu((radius[pairs[:, 0]] + radius[pairs[:, 1]]) * scale - d)
    return overlap.sum(1)
