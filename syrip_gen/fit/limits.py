"""Anatomical joint limits with infant ranges of motion, and the no-hyperextension prior.

Why: 2D keypoints fit many impossible 3D poses (a knee bent backwards, a hip twisted past
90°). These penalties, pure functions of a pose ``(B, 24, 3)`` in the common space, keep the
fitter (and the filter stage) to what an infant's joints allow.

Limits are boxes on each joint's axis-angle components (x = the body's left, y = up, z =
forward, in the parent's T-pose frame), in degrees, written for the left side; the right side
is the mirror image (y and z components negated). Axis-angle components are a good stand-in
for anatomical angles for a single dominant motion and approximate for combined ones, so the
boxes are generous. Signs (checked on the body model): hip flexion is -x, hip abduction +z
(left), hip external rotation +y (left); knee flexion +x; elbow flexion -y (left); shoulder
adduction (arm down) -z (left), horizontal flexion (arm forward) -y (left); spine and neck
flexion +x.

Infant ranges and reasoning (approximate values as reported in the paediatric literature;
the boxes are deliberately wider): newborns and young infants are more flexible than adults in
hip external rotation (up to ~90°) and abduction (~75° in flexion) (Haas, Epps & Adams 1973,
"Normal ranges of hip motion in the newborn", Clin Orthop Relat Res 91) and in ankle
dorsiflexion (~60°), while they show physiological flexion contractures of hip and knee
(extension short of neutral by roughly 10-30°) (Waugh et al. 1983, "Measurement of selected
hip, knee, and ankle joint motions in newborns", Phys Ther 63). We do not enforce the
contractures (the photos span 0-12 months and they resolve), but allow little extension past
neutral; flexion limits (hip ~150°, knee ~160°, elbow ~155°) follow soft-tissue contact in
chubby limbs. Neck rotation (~±110° neck + head) reflects infants' wide head turning.
"""
from __future__ import annotations

import math

import torch

from syrip_gen.body.pose_space import FLIP_JOINTS, JOINT, NUM_JOINTS

# left-side (and central) limits, degrees: (x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi)
LEFT_LIMITS_DEG: dict[str, tuple[tuple[float, float], ...]] = {
    "left_hip": ((-150, 25), (-60, 90), (-30, 80)),
    "left_knee": ((-5, 160), (-40, 40), (-15, 15)),
    "left_ankle": ((-50, 60), (-35, 35), (-35, 35)),
    "left_foot": ((-30, 30), (-30, 30), (-30, 30)),
    "spine1": ((-30, 45), (-30, 30), (-25, 25)),
    "spine2": ((-30, 45), (-30, 30), (-25, 25)),
    "spine3": ((-30, 45), (-30, 30), (-25, 25)),
    "neck": ((-55, 50), (-60, 60), (-40, 40)),
    "head": ((-45, 40), (-50, 50), (-30, 30)),
    "left_collar": ((-20, 20), (-25, 25), (-20, 35)),
    "left_shoulder": ((-90, 90), (-135, 60), (-100, 95)),
    "left_elbow": ((-90, 90), (-155, 5), (-15, 15)),
    "left_wrist": ((-90, 90), (-70, 70), (-70, 70)),
    "left_hand": ((-30, 30), (-30, 30), (-30, 30)),
}
# (joint, component, sign): extension past straight is sign * component > 0
HYPEREXTENSION = (("left_knee", 0, -1.0), ("right_knee", 0, -1.0),
                  ("left_elbow", 1, 1.0), ("right_elbow", 1, -1.0))


def limit_table() -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds ``(24, 3)`` float32 in radians (joint 0 unbounded)."""
    lo = torch.full((NUM_JOINTS, 3), -math.inf)
    hi = torch.full((NUM_JOINTS, 3), math.inf)
    for name, box in LEFT_LIMITS_DEG.items():
        j = JOINT[name]
        b = torch.tensor(box, dtype=torch.float32) * math.pi / 180
        lo[j], hi[j] = b[:, 0], b[:, 1]
        m = FLIP_JOINTS[j]
        if m != j:  # mirror: x unchanged; y, z negated (bounds swap)
            lo[m, 0], hi[m, 0] = b[0, 0], b[0, 1]
            lo[m, 1:], hi[m, 1:] = -b[1:, 1], -b[1:, 0]
    return lo, hi


_TABLE = limit_table()


def joint_limit_violation(pose: torch.Tensor) -> torch.Tensor:
    """Radians beyond the limits, summed over joints and components: ``(B,)`` for a pose
    ``(B, 24, 3)`` float32. Zero inside the limits; grows linearly outside."""
    lo, hi = (t.to(pose.device, pose.dtype) for t in _TABLE)
    body = slice(1, NUM_JOINTS)
    below = torch.relu(lo[body] - pose[:, body])
    above = torch.relu(pose[:, body] - hi[body])
    return (below + above).flatten(1).sum(1)


def hyperextension(pose: torch.Tensor) -> torch.Tensor:
    """Radians of knee and elbow extension past straight, summed: ``(B,)`` for ``(B, 24, 3)``."""
    total = torch.zeros(pose.shape[0], dtype=pose.dtype, device=pose.device)
    for name, comp, sign in HYPEREXTENSION:
        total = total + torch.relu(sign * pose[:, JOINT[name], comp])
    return total
