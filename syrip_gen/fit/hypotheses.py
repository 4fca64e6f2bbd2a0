"""Global-orientation hypotheses: the starting views the fitter tries for every skeleton.

Why: 2D keypoints of a lying infant fit both a body seen from the front and one seen from
the back (or from the side) almost equally well early on; gradient descent keeps whichever
it starts nearest. So every skeleton is fitted from several views at once (in the same
batch) and the best is kept.

In camera terms (R = diag(1,-1,-1), all rotation in the global orientation) a supine infant
photographed from above and an upright infant facing the camera are the same view, "front",
up to a roll about the optical axis; prone from above and facing away are "back". The roll is
set from the 2D torso (hips -> shoulders) so the head points where the labelled shoulders
are. Tilts (head or feet nearer the camera) cover oblique shots; two views start from a
sitting pose (hips flexed) for sitting and standing infants, whose thighs often point at the
camera. Posture labels only nudge the choice (``label_bias``), never decide it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch

from syrip_gen.body.pose_space import JOINT
from syrip_gen.fit.camera import L_HIP, L_SH, R_FIT, R_HIP, R_SH


@dataclass(frozen=True)
class Hypothesis:
    name: str
    yaw_deg: float  # about the body's up axis: 0 front, 180 back, +-90 sides
    tilt_deg: float  # about the camera's x axis: + head nearer the camera
    start: str  # initial body pose: "rest" or "sitting"
    facing: str  # "front", "back" or "side", for the posture-label bias


HYPOTHESES = (
    Hypothesis("front", 0, 0, "rest", "front"),
    Hypothesis("back", 180, 0, "rest", "back"),
    Hypothesis("front_head_near", 0, 35, "rest", "front"),
    Hypothesis("front_feet_near", 0, -35, "rest", "front"),
    Hypothesis("back_head_near", 180, 35, "rest", "back"),
    Hypothesis("left_side", -90, 0, "rest", "side"),
    Hypothesis("right_side", 90, 0, "rest", "side"),
    Hypothesis("front_sitting", 0, 0, "sitting", "front"),
    Hypothesis("back_sitting", 180, 0, "sitting", "back"),
)
NAMES = tuple(h.name for h in HYPOTHESES)

# posture label -> {facing or start: extra selection cost, in units of the data term}
LABEL_BIAS = {
    "supine": {"back": 1.0, "sitting": 0.5},
    "prone": {"front": 1.0, "sitting": 0.5},
    "sitting": {"rest": 0.25},
    "standing": {},
    "side": {},
}


def _deg(x: float) -> float:
    return math.radians(x)


def start_pose(kind: str) -> torch.Tensor:
    """A body pose ``(24, 3)`` float32 to start from: "rest" = an infant lying at ease (hips and
    knees bent, arms down and bent); "sitting" = hips flexed ~80°, legs forward."""
    p = torch.zeros(24, 3)
    hip_flex, knee_flex = (30, 40) if kind == "rest" else (80, 25)
    for side, s in (("left", 1.0), ("right", -1.0)):
        p[JOINT[f"{side}_hip"]] = torch.tensor([-_deg(hip_flex), 0.0, s * _deg(10)])
        p[JOINT[f"{side}_knee"], 0] = _deg(knee_flex)
        p[JOINT[f"{side}_shoulder"], 2] = -s * _deg(55)
        p[JOINT[f"{side}_elbow"], 1] = -s * _deg(40)
    return p


def roll_angle(kp2d: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """In-image angle ``(B,)`` taking image-up onto the hips -> shoulders direction of
    keypoints ``(B, 17, 2)``; 0 where neither a shoulder nor a hip pair is labelled."""
    seen = weight > 0

    def mid(a, b):
        both = seen[:, a] & seen[:, b]
        one_a = seen[:, a] & ~seen[:, b]
        m = torch.where(both[:, None], (kp2d[:, a] + kp2d[:, b]) / 2,
                        torch.where(one_a[:, None], kp2d[:, a], kp2d[:, b]))
        return m, seen[:, a] | seen[:, b]

    sh, ok_sh = mid(L_SH, R_SH)
    hip, ok_hip = mid(L_HIP, R_HIP)
    d = sh - hip
    ok = ok_sh & ok_hip & (d.norm(dim=-1) > 1e-3)
    angle = torch.atan2(d[:, 0], -d[:, 1])
    return torch.where(ok, angle, torch.zeros_like(angle))


def initial_orientations(roll: torch.Tensor, hypotheses=HYPOTHESES) -> torch.Tensor:
    """Global orientations ``(B, H, 3)`` axis-angle: ``G = R Rz(roll) R V`` with ``V`` the
    hypothesis' view, so the camera sees view ``V`` rolled by ``roll (B,)``."""
    B = roll.shape[0]
    R = R_FIT.to(roll.dtype)
    views = []
    for h in hypotheses:
        yaw = roma.rotvec_to_rotmat(torch.tensor([0.0, _deg(h.yaw_deg), 0.0]))
        tilt = roma.rotvec_to_rotmat(torch.tensor([_deg(h.tilt_deg), 0.0, 0.0]))
        views.append(tilt @ yaw)
    V = torch.stack(views).to(roll.dtype)  # (H, 3, 3)
    zero = torch.zeros_like(roll)
    Rz = roma.rotvec_to_rotmat(torch.stack([zero, zero, roll], -1))  # (B, 3, 3)
    G = R @ Rz[:, None] @ R @ V[None]
    return roma.rotmat_to_rotvec(G)


def label_bias(posture: str | None, hypotheses=HYPOTHESES) -> torch.Tensor:
    """Extra selection cost ``(H,)`` of each hypothesis for a posture label (0 without one)."""
    table = LABEL_BIAS.get((posture or "").lower(), {})
    return torch.tensor([table.get(h.facing, 0.0) + table.get(h.start, 0.0) for h in hypotheses])
