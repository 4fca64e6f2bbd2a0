"""The project's own infant posture library: authored poses -> pose tensors and COCO skeletons.

Why: the demo must run on embedded defaults alone, and real infant annotations can't be
redistributed. ``assets/postures/library.yaml`` holds canonical infant postures written by
hand in the common pose space (``syrip_gen.body.pose_space``); this module turns them into
``(N, 24, 3)`` axis-angle tensors (for the bundled pose prior), samples jittered copies, and
projects posed bodies through varied cameras into a COCO-17 keypoint file
(``assets/postures/skeletons.json``, made by ``scripts/make_posture_skeletons.py``).

Rotation notation in the YAML: every rotation is ``{x: deg, y: deg, z: deg}`` (missing axes are
0), read as *extrinsic* Euler angles applied x first, then z, then y: ``R = Ry · Rz · Rx``
(roma convention ``"xzy"``). Axes are the parent's T-pose axes (x = body's left, y = up,
z = forward). For the global orientation this reads: pitch (x: -90 lies on the back, +90 on the
front), then roll about the lying body's long axis (z), then heading (y). A group key
(``hips``, ``knees``, ``shoulders``, ...) gives the LEFT joint's rotation and the right one gets
its mirror image (x kept, y and z negated).

Signs, checked on the Anny body (see tests/body/test_postures.py and test_body_anny.py):
hip flexion -x, abduction +z (left); knee flexion +x; spine/neck/head flexion +x, extension -x,
head turn to the left +y; left shoulder: arm down z -90, arm forward y -90, arm up z +90;
left elbow flexion -y.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import roma
import torch

from syrip_gen.body.pose_space import JOINT, NUM_JOINTS, PARENTS, flip_pose
from syrip_gen.coco import NUM_KEYPOINTS, POSTURES
from syrip_gen.errors import UserError
from syrip_gen.geometry import look_at_rotation, project, to_camera
from syrip_gen.paths import ASSETS
from syrip_gen.yamlfile import read_yaml

LIBRARY_PATH = ASSETS / "postures" / "library.yaml"
SKELETONS_PATH = ASSETS / "postures" / "skeletons.json"
EULER = "xzy"  # extrinsic x, then z, then y: R = Ry Rz Rx
# symmetric group key -> (left joint, right joint)
GROUPS = {
    "hips": ("left_hip", "right_hip"), "knees": ("left_knee", "right_knee"),
    "ankles": ("left_ankle", "right_ankle"), "feet": ("left_foot", "right_foot"),
    "collars": ("left_collar", "right_collar"), "shoulders": ("left_shoulder", "right_shoulder"),
    "elbows": ("left_elbow", "right_elbow"), "wrists": ("left_wrist", "right_wrist"),
    "hands": ("left_hand", "right_hand"),
}


@dataclass(frozen=True)
class Posture:
    """One authored posture. ``pose`` is ``(24, 3) float32`` axis-angle in the common space,
    joint 0 the global orientation in a world with y up."""

    name: str
    label: str  # one of syrip_gen.coco.POSTURES
    age_months: tuple[float, float]  # age range where the posture is typical
    pose: torch.Tensor  # (24, 3) float32
    note: str = ""


def euler_to_rotvec(deg: dict | list | tuple) -> torch.Tensor:
    """``{x, y, z}`` degrees (or ``[x, y, z]``) in the library's notation -> ``(3,)`` axis-angle."""
    if isinstance(deg, dict):
        extra = set(deg) - {"x", "y", "z"}
        if extra:
            raise ValueError(f"unknown rotation axes {sorted(extra)} (use x, y, z)")
        x, y, z = (float(deg.get(a, 0.0)) for a in "xyz")
    else:
        x, y, z = (float(v) for v in deg)
    rot = roma.euler_to_rotmat(EULER, [x, z, y], degrees=True, dtype=torch.float64)
    return roma.rotmat_to_rotvec(rot).float()


def _mirror(deg: dict) -> dict:
    """The right-side rotation mirroring a left-side one: x kept, y and z negated."""
    return {a: (-v if a in "yz" else v) for a, v in deg.items()}


def _parse_entry(entry: dict, where: str) -> Posture:
    for key in ("name", "posture", "age_months", "global"):
        if key not in entry:
            raise UserError(f"{where}: posture entry lacks '{key}'")
    name, label = str(entry["name"]), str(entry["posture"]).lower()
    if label not in POSTURES:
        raise UserError(f"{where}: posture {name!r} has label {label!r}; use one of {', '.join(POSTURES)}")
    lo, hi = (float(a) for a in entry["age_months"])
    if not 0 <= lo <= hi <= 12:
        raise UserError(f"{where}: posture {name!r} age_months must be [lo, hi] within 0..12")
    pose = torch.zeros(NUM_JOINTS, 3)
    try:
        pose[0] = euler_to_rotvec(entry["global"])
        seen: set[str] = set()
        for key, deg in (entry.get("joints") or {}).items():
            if key in GROUPS:
                pairs = [(GROUPS[key][0], deg), (GROUPS[key][1], _mirror(deg))]
            elif key in JOINT and key != "pelvis":
                pairs = [(key, deg)]
            else:
                raise ValueError(f"unknown joint {key!r}")
            for joint, d in pairs:
                if joint in seen:
                    raise ValueError(f"joint {joint!r} given twice (group and side key?)")
                seen.add(joint)
                pose[JOINT[joint]] = euler_to_rotvec(d)
    except (ValueError, TypeError) as err:
        raise UserError(f"{where}: posture {name!r}: {err}") from None
    return Posture(name=name, label=label, age_months=(lo, hi), pose=pose, note=str(entry.get("note", "")))


def load_library(path: str | Path = LIBRARY_PATH) -> list[Posture]:
    """Read the posture library YAML; one-line UserError on a malformed entry."""
    path = Path(path)
    data = read_yaml(path, missing="posture library not found")
    entries = data.get("postures") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path}: expected a top-level 'postures:' list")
    library = [_parse_entry(e, str(path)) for e in entries]
    names = [p.name for p in library]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"{path}: duplicate posture names {dupes}")
    return library


def library_poses(library: list[Posture]) -> torch.Tensor:
    """All poses stacked: ``(N, 24, 3) float32``."""
    return torch.stack([p.pose for p in library])


def posture_pose(name: str, library: list[Posture] | None = None) -> torch.Tensor:
    """The ``(24, 3) float32`` pose of a posture by name."""
    library = load_library() if library is None else library
    for p in library:
        if p.name == name:
            return p.pose.clone()
    raise UserError(f"no posture named {name!r} in the library ({len(library)} postures)")


@dataclass
class PoseSample:
    """Jittered library poses (``sample_library_poses``)."""

    pose: torch.Tensor  # (n, 24, 3) float32 axis-angle
    index: torch.Tensor  # (n,) int64, library entry each pose came from
    mirrored: torch.Tensor  # (n,) bool, left-right mirrored
    age_months: torch.Tensor  # (n,) float32, uniform in the entry's age range


# posture shares of the real SyRIP annotations (train200 + validate100, rounded; no side class)
SYRIP_SHARES = {"supine": 0.35, "prone": 0.45, "side": 0.0, "sitting": 0.17, "standing": 0.03}


def label_weights(library: list[Posture], shares: dict[str, float]) -> torch.Tensor:
    """Per-entry sampling weights ``(N,) float32`` so that labels come out in ``shares``
    (entries of a label share its weight equally; a label absent from ``shares`` gets 0)."""
    counts = {label: sum(p.label == label for p in library) for label in POSTURES}
    missing = [lab for lab, w in shares.items() if w > 0 and not counts.get(lab)]
    if missing:
        raise UserError(f"no library posture has label(s) {missing}; shares can't be met")
    w = torch.tensor([shares.get(p.label, 0.0) / counts[p.label] for p in library], dtype=torch.float32)
    return w / w.sum()


def jitter_poses(pose: torch.Tensor, rng: torch.Generator, jitter_deg: float,
                 global_deg: float = 0.0) -> torch.Tensor:
    """Compose each joint rotation of ``pose (B, 24, 3)`` with a random small rotation
    (rotation vector ~ N(0, jitter_deg²) per axis); the global orientation gets ``global_deg``."""
    scale = torch.full((NUM_JOINTS, 1), math.radians(jitter_deg), dtype=pose.dtype)
    scale[0] = math.radians(global_deg)
    noise = torch.randn(pose.shape, generator=rng, dtype=pose.dtype) * scale
    return roma.rotvec_composition([pose, noise])


def sample_library_poses(n: int, rng: torch.Generator, jitter_deg: float = 8.0,
                         library: list[Posture] | None = None, mirror: bool = True,
                         weights: torch.Tensor | None = None, global_deg: float = 0.0) -> PoseSample:
    """``n`` poses drawn from the library (uniformly, or by ``weights (N,)``), each jittered per
    joint by ``jitter_deg`` and, with ``mirror``, left-right mirrored with probability 1/2."""
    library = load_library() if library is None else library
    base = library_poses(library)
    probs = torch.ones(len(library)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    index = torch.multinomial(probs, n, replacement=True, generator=rng)
    pose = jitter_poses(base[index], rng, jitter_deg, global_deg)
    flip = (torch.rand(n, generator=rng) < 0.5) if mirror else torch.zeros(n, dtype=torch.bool)
    if flip.any():
        pose[flip] = flip_pose(pose[flip])
    ages = torch.tensor([library[i].age_months for i in index.tolist()]).reshape(n, 2)
    age = ages[:, 0] + torch.rand(n, generator=rng) * (ages[:, 1] - ages[:, 0])
    return PoseSample(pose=pose, index=index, mirrored=flip, age_months=age)


def world_rotations(pose: torch.Tensor) -> torch.Tensor:
    """Forward kinematics of rotations only: ``(B, 24, 3)`` -> ``(B, 24, 3, 3)`` world frame of
    each joint (product of the local rotations from the root)."""
    local = roma.rotvec_to_rotmat(pose)
    out = [local[:, 0]]
    for j in range(1, NUM_JOINTS):
        out.append(out[PARENTS[j]] @ local[:, j])
    return torch.stack(out, 1)


def hinge_angles(pose: torch.Tensor, keypoints: torch.Tensor) -> dict[str, torch.Tensor]:
    """Flexion and off-plane angles (degrees, each ``(B,)``) of knees and elbows, measured on
    keypoints ``(B, 17, 3)`` in the frame of the parent bone (thigh / upper arm) of ``pose``.

    Flexion > 0 bends the knee backwards / the elbow forwards; < 0 is hyperextension. Off-plane:
    how far the shin / forearm leaves the hinge's plane of motion."""
    rot = world_rotations(pose)
    out = {}
    limbs = {"left_knee": (11, 13, 15, "left_hip", -1.0), "right_knee": (12, 14, 16, "right_hip", -1.0),
             "left_elbow": (5, 7, 9, "left_shoulder", 1.0), "right_elbow": (6, 8, 10, "right_shoulder", 1.0)}
    for name, (a, b, c, parent, sign) in limbs.items():
        frame = rot[:, JOINT[parent]]  # columns: the parent bone's x, y, z axes
        seg = keypoints[:, c] - keypoints[:, b]
        upper = keypoints[:, b] - keypoints[:, a]
        axis = upper / upper.norm(dim=-1, keepdim=True)
        front = frame[..., 2]
        # knee flexes away from the thigh's front; the elbow towards the upper arm's front
        bend = sign * (seg * front).sum(-1)
        along = (seg * axis).sum(-1)
        side = torch.linalg.cross(axis, front)
        side = side / side.norm(dim=-1, keepdim=True)
        out[f"{name}_flexion"] = torch.rad2deg(torch.atan2(bend, along))
        out[f"{name}_off_plane"] = torch.rad2deg(torch.asin(((seg * side).sum(-1) / seg.norm(dim=-1)).clamp(-1, 1)))
    return out


# ---- skeletons: posed library bodies seen through varied cameras ------------------------------

@dataclass(frozen=True)
class SkeletonConfig:
    """How ``make_skeletons`` photographs each posture. Angles in degrees; the horizontal field
    of view is drawn from ``fov_deg``; elevation 90 looks straight down."""

    views_per_posture: int = 2
    width: int = 640
    height: int = 480
    fov_deg: tuple[float, float] = (50.0, 70.0)
    elevation_lying: tuple[float, float] = (30.0, 85.0)
    elevation_sitting: tuple[float, float] = (5.0, 45.0)
    elevation_standing: tuple[float, float] = (0.0, 30.0)
    roll_deg: float = 15.0  # camera roll, uniform in ±roll
    fill: tuple[float, float] = (0.55, 0.85)  # body radius / half image height
    edge_px: float = 8.0  # keep every keypoint this far inside the frame
    mirror_odd_views: bool = True  # odd views show the left-right mirrored posture
    occluded_depth_m: float = 0.08  # behind the torso plane by more than this -> v=1
    face_far_side_cos: float = 0.25  # face keypoint on the far side of the head -> v=1
    bbox_margin: float = 0.1  # box = keypoint extent grown by this fraction each side


def _uniform(rng: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=rng, dtype=torch.float64))


def keypoint_visibility(uv: np.ndarray, cam: np.ndarray, K: np.ndarray, width: int, height: int,
                        cfg: SkeletonConfig) -> np.ndarray:
    """COCO visibility ``(17,) int`` of keypoints at pixels ``uv (17, 2)``, camera points ``cam (17, 3)``.

    0: outside the image (or behind the camera). 1: in the image but hidden, by a simple rule:
    a limb or face keypoint that projects inside the torso quad (shoulders, hips) and lies more
    than ``occluded_depth_m`` behind the torso plane along its ray, or a face keypoint on the
    far side of the head (direction from the ears' midpoint points away from the camera).
    2: otherwise."""
    import cv2

    v = np.full(NUM_KEYPOINTS, 2, dtype=np.int64)
    inside = (cam[:, 2] > 1e-3) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
    v[~inside] = 0
    torso = [5, 6, 12, 11]
    centre = cam[torso].mean(0)
    normal = np.linalg.svd(cam[torso] - centre)[2][2]
    quad = uv[torso].astype(np.float32).reshape(-1, 1, 2)
    if cv2.contourArea(quad) > 1.0:
        for k in [0, 1, 2, 3, 4, 7, 8, 9, 10, 13, 14, 15, 16]:
            if v[k] != 2 or cv2.pointPolygonTest(quad, (float(uv[k, 0]), float(uv[k, 1])), False) <= 0:
                continue
            ray = np.array([(uv[k, 0] - K[0, 2]) / K[0, 0], (uv[k, 1] - K[1, 2]) / K[1, 1], 1.0])
            denom = normal @ ray
            if abs(denom) > 1e-6 and cam[k, 2] > (normal @ centre) / denom + cfg.occluded_depth_m:
                v[k] = 1
    head = (cam[3] + cam[4]) / 2
    for k in range(5):
        out = cam[k] - head
        if v[k] == 2 and out @ cam[k] > cfg.face_far_side_cos * np.linalg.norm(out) * np.linalg.norm(cam[k]):
            v[k] = 1
    return v


def _frame_camera(kp: np.ndarray, label: str, rng: torch.Generator, cfg: SkeletonConfig):
    """Draw a camera for world keypoints ``kp (17, 3)``; returns K, R, t (all float64)."""
    W, H = cfg.width, cfg.height
    yaw = _uniform(rng, 0.0, 360.0)
    elev = _uniform(rng, *{"sitting": cfg.elevation_sitting, "standing": cfg.elevation_standing}
                    .get(label, cfg.elevation_lying))
    roll = _uniform(rng, -cfg.roll_deg, cfg.roll_deg)
    f = (W / 2) / math.tan(math.radians(_uniform(rng, *cfg.fov_deg)) / 2)
    fill = _uniform(rng, *cfg.fill)
    shift = (_uniform(rng, -1, 1), _uniform(rng, -1, 1))
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    R = look_at_rotation(yaw, elev, roll)
    target = (kp.max(0) + kp.min(0)) / 2
    radius = np.linalg.norm(kp - target, axis=1).max() + 0.05  # head top and feet beyond keypoints
    dist = f * radius / (fill * H / 2)
    e = cfg.edge_px
    for _ in range(30):  # back off until every keypoint is inside the frame
        t = -R @ target + np.array([0, 0, dist])
        uv = project(to_camera(kp, R, t), K)
        lo, hi = uv.min(0), uv.max(0)
        if np.all(lo >= e) and hi[0] <= W - e and hi[1] <= H - e:
            break
        dist *= 1.1
    # slide the body off-centre within the room left on each side
    for scale in (0.8, 0.4, 0.0):
        room = np.array([W, H]) - 2 * e - (hi - lo)
        move = scale * np.array(shift) * room / 2 - ((lo + hi) / 2 - np.array([W, H]) / 2)
        t2 = t + np.array([move[0] * dist / f, move[1] * dist / f, 0.0])
        uv = project(to_camera(kp, R, t2), K)
        if np.all(uv.min(0) >= e) and uv[:, 0].max() <= W - e and uv[:, 1].max() <= H - e:
            return K, R, t2
    return K, R, t


def _r(x, nd: int):
    return np.round(np.asarray(x, dtype=np.float64), nd).tolist()


def make_skeletons(body, library: list[Posture], rng: torch.Generator,
                   cfg: SkeletonConfig = SkeletonConfig()) -> dict:
    """Pose each library entry on ``body`` (age uniform in its range) and photograph it
    ``cfg.views_per_posture`` times; return a COCO keypoint dict (images, annotations,
    categories, info) with pixels rounded to 0.1 px.

    Image records: ``id, file_name`` (virtual: ``posture_<i>_view<v>.jpg``), ``width, height,
    posture`` ("Supine", ...), ``source: "posture-library"``, ``posture_name``, ``camera``
    ``{K, R, t}`` (world = body frame, y up, pelvis at the origin). Annotations also carry
    ``keypoints_3d`` (17x3 m, camera frame) and ``body`` (model, pose, shape, age_months,
    mirrored) so the skeletons double as ground truth for the fitter."""
    from syrip_gen.coco import CATEGORY

    n_views = cfg.views_per_posture
    entries = [(i, v) for i in range(len(library)) for v in range(n_views)]
    months = torch.tensor([_uniform(rng, *library[i].age_months) for i, _ in entries], dtype=torch.float32)
    pose = torch.stack([library[i].pose for i, _ in entries])
    mirrored = torch.tensor([cfg.mirror_odd_views and v % 2 == 1 for _, v in entries])
    if mirrored.any():
        pose[mirrored] = flip_pose(pose[mirrored])
    shape = body.shape_for_age(months.to(body.device))
    with torch.no_grad():
        kps = body(pose.to(body.device), shape).keypoints.double().cpu().numpy()
    images, annotations = [], []
    for n, (i, v) in enumerate(entries):
        p = library[i]
        K, R, t = _frame_camera(kps[n], p.label, rng, cfg)
        cam = to_camera(kps[n], R, t)
        uv = project(cam, K)
        vis = keypoint_visibility(uv, cam, K, cfg.width, cfg.height, cfg)
        kp2d = np.concatenate([np.round(uv, 1), vis[:, None]], 1)
        kp2d[vis == 0, :2] = 0
        used = kp2d[vis > 0, :2]
        lo, hi = used.min(0), used.max(0)
        pad = cfg.bbox_margin * (hi - lo)
        x0, y0 = np.maximum(lo - pad, 0)
        x1, y1 = np.minimum(hi + pad, [cfg.width, cfg.height])
        image_id = n + 1
        images.append({
            "id": image_id, "file_name": f"posture_{i:03d}_view{v}.jpg", "width": cfg.width,
            "height": cfg.height, "posture": p.label.capitalize(), "source": "posture-library",
            "posture_name": p.name,
            "camera": {"K": _r(K, 3), "R": _r(R, 6), "t": _r(t, 5)},
        })
        annotations.append({
            "id": image_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "keypoints": [float(x) if j % 3 < 2 else int(x) for j, x in enumerate(kp2d.flatten())],
            "num_keypoints": int((vis > 0).sum()),
            "bbox": _r([x0, y0, x1 - x0, y1 - y0], 1), "area": round(float((x1 - x0) * (y1 - y0)), 1),
            "keypoints_3d": _r(cam, 4),
            "body": {"model": body.name, "pose": _r(pose[n], 5), "shape": _r(shape[n].cpu(), 5),
                     "age_months": round(float(months[n]), 2), "mirrored": bool(mirrored[n])},
        })
    info = {"description": "syrip-gen posture library skeletons (project's own, redistributable)",
            "views_per_posture": n_views, "postures": len(library)}
    return {"images": images, "annotations": annotations, "categories": [CATEGORY], "info": info}
