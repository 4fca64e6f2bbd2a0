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
SAMPLES = 6  # points along each segment for the distance


def segment_distance(a0, a1, b0, b1) -> torch.Tensor:
    """Approximate closest distance ``(B, P)`` between segments ``a0-a1`` and ``b0-b1``
    (each ``(B, P, 3)``): minimum over ``SAMPLES`` points on each (smooth enough to optimise)."""
    t = torch.linspace(0, 1, SAMPLES, dtype=a0.dtype, device=a0.device)[:, None]
    pa = a0[..., None, :] + t * (a1 - a0)[..., None, :]  # (B, P, S, 3)
    pb = b0[..., None, :] + t * (b1 - b0)[..., None, :]
    d = (pa[..., :, None, :] - pb[..., None, :, :]).norm(dim=-1)  # (B, P, S, S)
    return d.flatten(-2).amin(-1)


def capsule_penetration(joints: torch.Tensor) -> torch.Tensor:
    """Metres of capsule overlap ``(B,)``, summed over non-attached pairs, for joints
    ``(B, 24, 3)`` float32 in metres (any frame)."""
    ia = torch.tensor([JOINT[CAPSULES[n][0]] for n in NAMES], device=joints.device)
    ib = torch.tensor([JOINT[CAPSULES[n][1]] for n in NAMES], device=joints.device)
    radius = torch.tensor([CAPSULES[n][2] for n in NAMES], dtype=joints.dtype, device=joints.device)
    trunk = (joints[:, JOINT["neck"]] - joints[:, JOINT["pelvis"]]).norm(dim=-1)
    scale = (trunk / REFERENCE_TRUNK_M).clamp(0.5, 2.0)[:, None]
    a, b = joints[:, ia], joints[:, ib]
    # the head capsule is a sphere a little above the head joint, along the neck direction
    head_dir = joints[:, JOINT["head"]] - joints[:, JOINT["neck"]]
    hi = NAMES.index("head")
    centre = joints[:, JOINT["head"]] + 0.8 * head_dir
    a = torch.cat([a[:, :hi], centre[:, None], a[:, hi + 1:]], 1)
    b = torch.cat([b[:, :hi], centre[:, None], b[:, hi + 1:]], 1)
    p = torch.tensor(PAIRS, device=joints.device)
    d = segment_distance(a[:, p[:, 0]], b[:, p[:, 0]], a[:, p[:, 1]], b[:, p[:, 1]])
    overlap = torch.relu((radius[p[:, 0]] + radius[p[:, 1]]) * scale - d)
    return overlap.sum(1)
