"""The support an infant lies, sits or stands on: a plane in the camera frame, fitted with the body.

Why: 2D keypoints leave every limb's depth two-way ambiguous, and the pose prior alone picks
no better than the average pose (benchmarks/results/fit3d.md). A real infant is not floating:
it rests on a flat support (mat, cot, floor), the posture says which side of the body touches
it (supine: the back; prone: the front; sitting: buttocks and legs; standing: the feet), nothing
goes through it, and the camera that filmed it is above it (cots and mats are filmed from
above). These are the ground-contact terms of PROX / HuMoR-style fitting, kept cheap: the
plane is ``n · X + d = 0`` in the camera frame (``n`` unit, pointing from the support to the
body; the camera, at the origin, is ``d`` above it), and the body is a few probe points on its
surface built from the 24 joints, not the mesh.

Probes (``probes``): a sphere on every joint (radius about the joint's distance to the skin), the
head as a sphere above the neck, and oriented torso points on the back, the front and under the
buttocks, each from the torso's own frame (so the back of a body seen from the front lies
behind it). Radii are an Anny infant's at 6 months, scaled by the body's pelvis-to-neck length
(as in ``fit/penetration.py``). A probe's height above the plane is that of its lowest point.

The plane's offset is solved, not searched: given the normal, the plane goes right under the
lowest probe that may carry the body in this posture (``best_offset``; a free offset under Adam
only chased in circles); the normal is optimised with the body. Terms, each ``(N,)`` per body
(``support_terms``): ``support_penetration`` (metres of probes below the plane, summed: the parts
that cannot carry the body sinking into it), ``support_contact`` (metres between the plane and the
mean of the ``k`` lowest probes of the side that must touch: a supine infant's back, the buttocks,
the feet; zero when resting on it, positive when that side hovers or sinks), ``support_side`` (how far
the cosine between the normal and the torso direction the posture turns away from the support,
e.g. a supine infant's belly, falls short of ``cos(MAX_TILT_DEG)``) and ``camera_elevation`` (how
far the sine of the camera's elevation over the plane, seen from the pelvis, falls short of the
posture's minimum: ``supine_elevation_deg`` for supine infants, as cots and mats are filmed from
above, else 0; a camera below the plane costs at least that). Prone photos in SyRIP are often
taken from low down (the infant lifting its head towards the camera), so no minimum there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from syrip_gen.body.pose_space import JOINT, JOINT_NAMES, NUM_JOINTS

REFERENCE_TRUNK_M = 0.208  # Anny's pelvis-to-neck length at 6 months, where the radii were measured
# distance from each joint to the nearest skin (Anny, 6 months, T-pose), metres
JOINT_RADIUS = {
    "pelvis": 0.030, "left_hip": 0.026, "right_hip": 0.026, "spine1": 0.017, "left_knee": 0.016,
    "right_knee": 0.016, "spine2": 0.018, "left_ankle": 0.013, "right_ankle": 0.013, "spine3": 0.023,
    "left_foot": 0.012, "right_foot": 0.012, "neck": 0.020, "left_collar": 0.026, "right_collar": 0.026,
    "head": 0.014, "left_shoulder": 0.017, "right_shoulder": 0.017, "left_elbow": 0.012,
    "right_elbow": 0.012, "left_wrist": 0.010, "right_wrist": 0.010, "left_hand": 0.010, "right_hand": 0.010,
}
HEAD_CENTRE = 0.8  # head sphere centre: head joint + 0.8 (head - neck), as in fit/penetration.py
HEAD_RADIUS = 0.055  # its radius (back of the skull 0.057, crown 0.073, face 0.088 from the centre)
# oriented torso probes: (joint, distance to the skin in metres[, sideways to the left]) on the back
# (flat ±5 cm across), the front and under the buttocks (Anny, 6 months, measured along the
# torso's forward and up directions)
BACK = (("pelvis", 0.039, 0.0), ("spine1", 0.020, 0.0), ("spine2", 0.019, 0.0), ("spine3", 0.028, 0.0),
        ("pelvis", 0.036, 0.045), ("pelvis", 0.036, -0.045), ("spine3", 0.023, 0.045), ("spine3", 0.023, -0.045),
        ("left_collar", 0.036, 0.0), ("right_collar", 0.036, 0.0), ("head_centre", 0.057, 0.0))  # + sideways (left)
FRONT = (("pelvis", 0.071), ("spine1", 0.091), ("spine2", 0.086), ("spine3", 0.075), ("head_centre", 0.088))
BOTTOM = (("pelvis", 0.050), ("left_hip", 0.040), ("right_hip", 0.040))  # under the buttocks (torso down)

# probe layout: 24 joint spheres, the head sphere, then back, front and bottom points
P_HEAD = NUM_JOINTS
P_BACK = P_HEAD + 1
P_FRONT = P_BACK + len(BACK)
P_BOTTOM = P_FRONT + len(FRONT)
NUM_PROBES = P_BOTTOM + len(BOTTOM)

# posture -> probes that may carry the body (the plane rests on the lowest of them): the torso
# side that faces away from the support never carries it; a standing infant stands on its feet
_ALL = list(range(NUM_PROBES))
_FEET = [JOINT[f"{s}_{j}"] for s in ("left", "right") for j in ("ankle", "foot")]
CONTACT = {
    "supine": [i for i in _ALL if not P_FRONT <= i < P_BOTTOM],
    "prone": [i for i in _ALL if not P_BACK <= i < P_FRONT],
    "standing": _FEET,
}
# posture -> (the side that must touch the support, how many of its lowest probes): the back of a
# supine infant (flat: three), the buttocks, the feet. Prone infants push up on their arms, crawl
# on hands and knees or lie flat, so they have none (asking the belly or the knees to touch cost
# 3D on train200: benchmarks/results/fit3d.md), nor have side-lying and unlabelled ones.
CARRY = {
    "supine": (list(range(P_BACK, P_FRONT)), 3),
    "sitting": (list(range(P_BOTTOM, NUM_PROBES)), 2),
    "standing": (_FEET, 2),
}
# posture -> (torso direction that points away from the support: "forward", "back" or "up")
SIDE = {"supine": "forward", "prone": "back", "sitting": "up", "standing": "up"}
# posture -> largest free tilt of that direction off the plane normal, degrees (a supine infant's
# back lies flat, a prone one pushes its chest up, a sitting one leans)
MAX_TILT_DEG = {"supine": 25.0, "prone": 60.0, "sitting": 45.0, "standing": 30.0}
FROM_ABOVE = ("supine",)  # postures filmed from above: the camera-elevation minimum applies


def torso_frame(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit forward (belly side) and up (pelvis to neck) directions ``(N, 3)`` of the torso from
    joints ``(N, 24, 3)`` float32 in any right-handed frame (the body's x = left, y = up, z =
    forward frame rotated and moved)."""
    across = (joints[:, JOINT["left_hip"]] - joints[:, JOINT["right_hip"]]
              + joints[:, JOINT["left_shoulder"]] - joints[:, JOINT["right_shoulder"]])
    up = joints[:, JOINT["neck"]] - joints[:, JOINT["pelvis"]]
    fwd = torch.cross(across, up, dim=-1)
    return fwd / fwd.norm(dim=-1, keepdim=True).clamp_min(1e-9), up / up.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def probes(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Probe centres ``(N, NUM_PROBES, 3)`` and radii ``(N, NUM_PROBES)`` of bodies with joints
    ``(N, 24, 3)`` float32 (metres, any frame); oriented probes lie on the skin (radius 0)."""
    fwd, up = torso_frame(joints)
    scale = ((joints[:, JOINT["neck"]] - joints[:, JOINT["pelvis"]]).norm(dim=-1) / REFERENCE_TRUNK_M).clamp(0.5, 2.0)
    head = joints[:, JOINT["head"]] + HEAD_CENTRE * (joints[:, JOINT["head"]] - joints[:, JOINT["neck"]])

    def at(name):
        return head if name == "head_centre" else joints[:, JOINT[name]]

    s = scale[:, None]
    left = torch.cross(up, fwd, dim=-1)
    oriented = ([at(n) + s * (w * left - r * fwd) for n, r, w in BACK] + [at(n) + r * s * fwd for n, r in FRONT]
                + [at(n) - r * s * up for n, r in BOTTOM])
    centres = torch.cat([joints, head[:, None], torch.stack(oriented, 1)], 1)
    radius = torch.tensor([JOINT_RADIUS[n] for n in JOINT_NAMES] + [HEAD_RADIUS], dtype=joints.dtype,
                          device=joints.device)
    radius = torch.cat([radius[None] * s, torch.zeros(len(scale), NUM_PROBES - NUM_JOINTS - 1, dtype=joints.dtype,
                                                      device=joints.device)], 1)
    return centres, radius


def heights(centres: torch.Tensor, radius: torch.Tensor, normal: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Signed height ``(N, P)`` in metres of each probe's lowest point above the plane
    ``normal · X + offset = 0``: centres ``(N, P, 3)``, radius ``(N, P)``, normal ``(N, 3)`` unit,
    offset ``(N,)``; negative = through the plane."""
    return (centres * normal[:, None]).sum(-1) + offset[:, None] - radius


SIDE_CODE = {"forward": 1, "back": 2, "up": 3}  # 0: no side (unlabelled, side-lying)


@dataclass
class SupportRows:
    """What each body's posture asks of its support (one row per fitted body)."""

    contact: torch.Tensor  # (N, P) bool: probes that may carry the body
    sin_min: torch.Tensor  # (N,) float32: sine of the lowest camera elevation that costs nothing
    side: torch.Tensor  # (N,) long: SIDE_CODE of the torso direction pointing away from the support
    cos_max: torch.Tensor  # (N,) float32: cosine of the largest free tilt of that direction off the normal
    carry: torch.Tensor  # (N, P) bool: the side that must touch (all False: no such side)
    k: torch.Tensor  # (N,) long: how many of its lowest probes must touch

    def __getitem__(self, rows) -> "SupportRows":
        return SupportRows(*(getattr(self, f.name)[rows] for f in fields(self)))


def support_rows(postures: list[str | None], supine_elevation_deg: float, max_tilt_deg: dict[str, float],
                 device=None) -> SupportRows:
    """The posture's demands (contact set, the side that must touch, minimum camera elevation, torso
    side and tilt) per body.
    ``max_tilt_deg``: posture -> largest tilt of its side direction off the plane normal."""
    n = len(postures)
    contact = torch.zeros(n, NUM_PROBES, dtype=torch.bool)
    k = torch.ones(n, dtype=torch.long)
    side = torch.zeros(n, dtype=torch.long)
    cos_max = torch.full((n,), -1.0)
    sin_min = torch.zeros(n)
    carry = torch.zeros(n, NUM_PROBES, dtype=torch.bool)
    for i, p in enumerate(postures):
        p = (p or "").lower()
        contact[i, CONTACT.get(p, _ALL)] = True
        if p in CARRY:
            carry[i, CARRY[p][0]], k[i] = True, CARRY[p][1]
        if p in SIDE:
            side[i] = SIDE_CODE[SIDE[p]]
            cos_max[i] = math.cos(math.radians(max_tilt_deg.get(p, 180.0)))
        if p in FROM_ABOVE:
            sin_min[i] = math.sin(math.radians(supine_elevation_deg))
    return SupportRows(contact.to(device), sin_min.to(device), side.to(device), cos_max.to(device),
                       carry.to(device), k.to(device))


def lowest_mean(h: torch.Tensor, mask: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Mean ``(N,)`` of the ``k (N,)`` lowest heights ``h (N, P)`` among ``mask (N, P)``."""
    big = torch.finfo(h.dtype).max / 4
    kmax = int(k.max()) if k.numel() else 1
    low = torch.where(mask, h, torch.full_like(h, big)).topk(kmax, dim=1, largest=False).values  # (N, kmax)
    take = (torch.arange(kmax, device=h.device)[None] < k[:, None]).to(h.dtype)
    return (low * take).sum(1) / take.sum(1).clamp_min(1)


def support_penetration(h: torch.Tensor) -> torch.Tensor:
    """Metres ``(N,)`` of the probes below the plane, summed; ``h (N, P)`` heights."""
    return torch.relu(-h).sum(1)


def support_contact(h: torch.Tensor, mask: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Metres ``(N,)`` between the plane and the mean of the ``k (N,)`` lowest probes of ``mask``
    (hovering or sinking alike); 0 for rows without any probe in ``mask``."""
    return torch.where(mask.any(1), lowest_mean(h, mask, k).abs(), torch.zeros_like(h[:, 0]))


def elevation_sine(normal: torch.Tensor, offset: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """Sine ``(N,)`` of the camera's elevation over the plane seen from the foot of ``anchor``
    ``(N, 3)`` (camera frame, the camera at the origin) on the plane: camera height over the
    distance; 1 = straight above, 0 = level with the support, negative = below it."""
    foot = anchor - ((anchor * normal).sum(-1) + offset)[:, None] * normal
    return offset / foot.norm(dim=-1).clamp_min(1e-6)


def camera_elevation(sin_e: torch.Tensor, sin_min: torch.Tensor) -> torch.Tensor:
    """One-sided prior ``(N,)``: how far the elevation sine falls short of its minimum."""
    return torch.relu(sin_min - sin_e)


def side_direction(joints: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """Unit torso direction ``(N, 3)`` that the posture turns away from the support (``side (N,)``
    SIDE_CODE; rows without one: towards the camera, joints ``(N, 24, 3)`` in the camera frame)."""
    fwd, up = torso_frame(joints)
    toward_camera = -joints[:, JOINT["pelvis"]]
    toward_camera = toward_camera / toward_camera.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    s = side[:, None]
    return torch.where(s == 1, fwd, torch.where(s == 2, -fwd, torch.where(s == 3, up, toward_camera)))


def support_side(normal: torch.Tensor, direction: torch.Tensor, cos_max: torch.Tensor) -> torch.Tensor:
    """One-sided prior ``(N,)``: how far the cosine between the plane normal ``(N, 3)`` and the
    posture's side direction ``(N, 3)`` falls short of ``cos_max (N,)`` (−1: never costs)."""
    return torch.relu(cos_max - (normal * direction).sum(-1))


def best_offset(centres: torch.Tensor, radius: torch.Tensor, normal: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Offset ``(N,)`` that puts the plane with ``normal (N, 3)`` right under the lowest probe of
    ``mask (N, P)`` (it touches; none of them goes through)."""
    h0 = heights(centres, radius, normal, torch.zeros_like(normal[:, 0]))
    return -lowest_mean(h0, mask, torch.ones(len(h0), dtype=torch.long, device=h0.device))


def support_terms(joints_cam: torch.Tensor, normal: torch.Tensor, offset: torch.Tensor | None,
                  rows: SupportRows) -> dict[str, torch.Tensor]:
    """The support terms ``(N,)`` (see the module doc) for joints ``(N, 24, 3)`` float32 in the
    camera frame and a plane ``normal (N, 3)`` (normalised here) and ``offset (N,)``; with
    ``offset=None`` the plane goes right under the lowest contact probe (``best_offset``)."""
    n = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    centres, radius = probes(joints_cam)
    if offset is None:
        offset = best_offset(centres, radius, n, rows.contact)
    h = heights(centres, radius, n, offset)
    return {"support_penetration": support_penetration(h),
            "support_contact": support_contact(h, rows.carry, rows.k),
            "support_side": support_side(n, side_direction(joints_cam, rows.side), rows.cos_max),
            "camera_elevation": camera_elevation(elevation_sine(n, offset, joints_cam[:, JOINT["pelvis"]]),
                                                 rows.sin_min)}


def fitted_plane(joints_cam: torch.Tensor, normal: torch.Tensor, rows: SupportRows) -> tuple[torch.Tensor, ...]:
    """The plane under bodies ``(N, 24, 3)`` (camera frame) with ``normal (N, 3)``: unit normal
    ``(N, 3)``, offset ``(N,)`` (the camera's height over it, metres) and the camera's elevation
    over it seen from the pelvis ``(N,)`` degrees."""
    n = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    centres, radius = probes(joints_cam)
    offset = best_offset(centres, radius, n, rows.contact)
    sin_e = elevation_sine(n, offset, joints_cam[:, JOINT["pelvis"]])
    return n, offset, torch.rad2deg(torch.asin(sin_e.clamp(-1.0, 1.0)))
