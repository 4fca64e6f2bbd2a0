"""Cameras, projection and rotations: the one geometry of the project (NumPy, float64).

One :class:`Camera` travels from variant sampling (placed by :func:`place_camera` /
:func:`frame_camera`) through the scene and the renderer to annotation, so every stage projects
the same way. Conventions (docs/architecture.md): world = body frame, metres, y up; cameras
follow OpenCV, ``X_cam = R @ X + t`` (x right, y down, z forward), ``u = fx X_cam.x / X_cam.z +
cx``, pixel ``(row i, column j)`` centred at ``(u, v) = (j, i)``.

One implementation per numeric library (the rule):

- NumPy projection: :func:`project` (batched over points and cameras). Every NumPy caller
  (drawing, overlays, learned keypoints, gates, the bake, the pose models' synthetic data and
  lifter views) goes through it. Its torch twin is ``fit/camera.py``'s ``project`` (the
  fitter's differentiable one, fx = fy, depth clamped at 1 cm); tests/house/test_geometry.py checks
  that they agree.
- NumPy rotations: scipy's ``Rotation`` behind :func:`axis_rotation`, :func:`rot_y`,
  :func:`rot_z`, :func:`rotvec_to_matrix`, :func:`matrix_to_rotvec`, :func:`rotation_between`
  and :func:`look_at_rotation`; no hand-written cos/sin matrices elsewhere. Torch rotations
  (the fitter, the body models, the posture library: batched, on the device, differentiable)
  use ``roma``; a torch module that needs a constant rotation takes it from here
  (``torch.from_numpy``).
- Mesh rasterising (z-buffer, no GL): ``syrip_gen/raster.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Camera:
    """Pinhole camera, world -> camera (OpenCV)."""

    K: np.ndarray  # (3, 3) float64 intrinsics
    R: np.ndarray  # (3, 3) float64 rotation world -> camera
    t: np.ndarray  # (3,) float64 translation world -> camera
    width: int
    height: int

    def __post_init__(self):
        for name, shape in (("K", (3, 3)), ("R", (3, 3)), ("t", (3,))):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"Camera.{name} must have shape {shape}, got {value.shape}")
            object.__setattr__(self, name, value)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points ``(N, 3)`` -> camera-frame points ``(N, 3)`` float64."""
        return to_camera(points, self.R, self.t)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(N, 3)`` -> pixels ``(N, 2)`` float64 and camera depth z ``(N,)``."""
        cam = self.to_camera(points)
        return project(cam, self.K), cam[:, 2]

    def to_dict(self) -> dict:
        """``{"K", "R", "t"}`` as nested lists (the dataset's ``camera`` record)."""
        return {"K": self.K.tolist(), "R": self.R.tolist(), "t": self.t.tolist()}


def to_camera(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """World points ``(N, 3)`` -> camera frame ``(N, 3) float64``: ``X R^T + t``."""
    return np.asarray(points, np.float64) @ np.asarray(R, np.float64).T + np.asarray(t, np.float64)


def project(cam: np.ndarray, K: np.ndarray, min_depth: float | None = None) -> np.ndarray:
    """Camera-frame points ``(..., 3)`` -> pixels ``(..., 2)`` float64 (OpenCV pinhole); ``K
    (3, 3)`` or one per leading index ``(..., 3, 3)`` (:func:`intrinsics_matrix` builds them).
    No clipping by default: points behind the camera project mirrored, callers test ``z``;
    ``min_depth`` clamps ``z`` from below instead (drawings, error terms: large but finite)."""
    cam = np.asarray(cam, np.float64)
    K = np.asarray(K, np.float64)
    if K.ndim > 2:
        K = K.reshape(K.shape[:-2] + (1,) * (cam.ndim - K.ndim + 1) + (3, 3))
    z = cam[..., 2] if min_depth is None else np.maximum(cam[..., 2], min_depth)
    return np.stack([K[..., 0, 0] * cam[..., 0] / z + K[..., 0, 2], K[..., 1, 1] * cam[..., 1] / z + K[..., 1, 2]], -1)


def intrinsics_matrix(fx, fy, cx, cy) -> np.ndarray:
    """``(..., 3, 3) float64`` K from focal lengths and principal point (scalars or arrays of one
    shape, e.g. a fits record's ``camera`` or a batch of focal lengths)."""
    fx, fy, cx, cy = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (fx, fy, cx, cy)))
    K = np.zeros(fx.shape + (3, 3))
    K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = fx, fy, cx, cy, 1.0
    return K


def intrinsics(width: int, height: int, fov_deg: float = 50.0) -> np.ndarray:
    """``(3, 3) float64`` K with square pixels, centred, horizontal field of view ``fov_deg``."""
    f = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]], dtype=np.float64)


def look_at(eye, target, up=(0.0, 1.0, 0.0), *, width: int, height: int,
            fov_deg: float = 50.0, K: np.ndarray | None = None) -> Camera:
    """Camera at ``eye (3,)`` looking at ``target (3,)`` with image-up close to ``up (3,)``.

    When ``up`` is parallel to the view direction (e.g. straight down with y up), world -z
    is used as the image-up hint instead.
    """
    eye, target = np.asarray(eye, np.float64), np.asarray(target, np.float64)
    z = target - eye
    z /= np.linalg.norm(z)
    R = look_rotation(z, up)
    K = intrinsics(width, height, fov_deg) if K is None else np.asarray(K, np.float64)
    return Camera(K=K, R=R, t=-R @ eye, width=int(width), height=int(height))


def look_rotation(forward, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """World -> camera rotation ``(3, 3) float64`` (rows: camera right, down, forward in world
    coordinates) of a camera looking along the unit vector ``forward (3,)`` with image-up close
    to ``up (3,)``; when they are parallel, world -z (or +y) is the image-up hint instead."""
    z = np.asarray(forward, np.float64)
    up = np.asarray(up, np.float64)
    if np.linalg.norm(np.cross(z, up)) < 1e-6:
        up = np.array([0.0, 0.0, -1.0]) if abs(z[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(z, up)  # image right = image-down x forward, image-down ~ -up
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


# ---- framing: a camera placed so that given points fill the frame -----------------------
def place_camera(verts: np.ndarray, width: int, height: int, elevation: float, roll: float,
                 fov: float, fill: float, margin: float) -> tuple[Camera | None, str | None]:
    """Camera looking at world points ``verts (V, 3)`` from ``elevation`` degrees above the
    horizon (azimuth 0: from +z, world y up), rolled in-plane by ``roll`` degrees, then framed by
    :func:`frame_camera`. Returns (camera, None) or (None, reason)."""
    e = math.radians(elevation)
    forward = -np.array([0.0, math.sin(e), math.cos(e)])  # from the camera towards the points
    return frame_camera(verts, rot_z(roll) @ look_rotation(forward), width, height, fov, fill, margin)


def frame_camera(verts: np.ndarray, R: np.ndarray, width: int, height: int, fov: float, fill: float,
                 margin: float) -> tuple[Camera | None, str | None]:
    """Camera with rotation ``R (3, 3)`` (world -> camera) and vertical field of view ``fov``
    degrees looking at world points ``verts (V, 3)``, re-centred on their projection and moved
    along its axis until their box covers ``fill`` of the frame. Returns (camera, None), or
    (None, reason) when the points end up behind the camera or less than ``margin`` pixels
    inside the frame."""
    lo, hi = verts.min(0), verts.max(0)
    target = (lo + hi) / 2
    back = -R[2]  # from target towards the camera
    fy = (height / 2) / math.tan(math.radians(fov) / 2)
    fx, cx, cy = fy, (width - 1) / 2, (height - 1) / 2  # pixel centres at integers (OpenCV)
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)
    radius = float(np.linalg.norm(hi - lo) / 2)
    dist = radius / math.tan(math.radians(fov) / 2 * fill) + radius
    t = -R @ (target + dist * back)
    for _ in range(3):
        cam = R @ verts.T + t[:, None]  # (3, V)
        if cam[2].min() <= 1e-3:
            t[2] += radius
            continue
        u, v = project(cam.T, K).T
        zc = float(np.median(cam[2]))
        # shift sideways so the projected box is centred, then move along the axis to fill
        t[0] -= ((u.min() + u.max()) / 2 - cx) * zc / fx
        t[1] -= ((v.min() + v.max()) / 2 - cy) * zc / fy
        extent = max((u.max() - u.min()) / width, (v.max() - v.min()) / height)
        t[2] += zc * (extent / fill - 1.0)
    cam = R @ verts.T + t[:, None]
    if cam[2].min() <= 1e-3:
        return None, "camera_inside_body"
    u, v = project(cam.T, K).T
    lo_u, lo_v = margin - 0.5, margin - 0.5
    if u.min() < lo_u or v.min() < lo_v or u.max() > width - 0.5 - margin or v.max() > height - 0.5 - margin:
        return None, "out_of_frame"
    return Camera(K=K, R=R.copy(), t=t.copy(), width=int(width), height=int(height)), None


# ---- rotations (numpy, float64; scipy's Rotation) ----------------------------------------
AXES = "xyz"


def axis_rotation(axis, angle, degrees: bool = False) -> np.ndarray:
    """Rotation ``(..., 3, 3)`` by ``angle`` (scalar or array) about coordinate ``axis``
    ("x", "y", "z" or 0, 1, 2), right-handed (+90° about z takes +x to +y)."""
    from scipy.spatial.transform import Rotation

    name = AXES[axis] if isinstance(axis, (int, np.integer)) else axis
    angle = np.asarray(angle, np.float64)
    return Rotation.from_euler(name, angle.reshape(-1, 1), degrees=degrees).as_matrix().reshape(angle.shape + (3, 3))


def rot_y(deg: float) -> np.ndarray:
    """Rotation ``(3, 3)`` by ``deg`` about +y."""
    return axis_rotation("y", deg, degrees=True)


def rot_z(deg: float) -> np.ndarray:
    """Rotation ``(3, 3)`` by ``deg`` about +z."""
    return axis_rotation("z", deg, degrees=True)


def rotvec_to_matrix(v: np.ndarray) -> np.ndarray:
    """``(..., 3)`` axis-angle -> ``(..., 3, 3)``."""
    from scipy.spatial.transform import Rotation

    v = np.asarray(v, dtype=np.float64)
    return Rotation.from_rotvec(v.reshape(-1, 3)).as_matrix().reshape(v.shape[:-1] + (3, 3))


def matrix_to_rotvec(m: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation matrices -> ``(..., 3)`` axis-angle."""
    from scipy.spatial.transform import Rotation

    m = np.asarray(m, dtype=np.float64)
    return Rotation.from_matrix(m.reshape(-1, 3, 3)).as_rotvec().reshape(m.shape[:-2] + (3,))


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation ``(3, 3)`` taking direction ``a`` onto ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(a @ b)
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0, 0] if abs(a[0]) < 0.9 else [0, 1.0, 0])
        return rotvec_to_matrix(perp / np.linalg.norm(perp) * math.pi)
    return rotvec_to_matrix(axis / s * math.atan2(s, c))


def look_at_rotation(yaw_deg: float, elev_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """World -> camera rotation ``(3, 3) float64`` (OpenCV: rows = camera right, down, forward)
    of a camera looking at the origin from heading ``yaw`` (0 = from +z) and ``elev`` above the
    horizon (world y up), rolled by ``roll`` about its viewing axis."""
    # OpenCV axes of a camera at yaw = elev = 0 (looking along -z, y up) are diag(1, -1, -1)
    # of the world's; turning the camera by yaw about +y turns the world by -yaw under it.
    return (axis_rotation("z", -roll_deg, degrees=True) @ axis_rotation("x", elev_deg, degrees=True)
            @ np.diag([1.0, -1.0, -1.0]) @ axis_rotation("y", -yaw_deg, degrees=True))


def camera_elevation(R: np.ndarray) -> float:
    """Degrees the optical axis of a camera ``R (3, 3)`` (world -> camera, world y up) points
    down: 90 straight down, 0 level, negative looking up."""
    return math.degrees(math.asin(float(np.clip(-R[2, 1], -1.0, 1.0))))


def raise_camera(R: np.ndarray, min_elevation: float) -> np.ndarray:
    """``R`` pitched about its horizontal right axis so that it looks down at least
    ``min_elevation`` degrees: a fitted photo camera can end up under a lying infant's support
    (the fit's depth or up direction is off), where the support would hide the body."""
    el = camera_elevation(R)
    if el >= min_elevation:
        return R
    right = np.array([R[0, 0], 0.0, R[0, 2]])
    if np.linalg.norm(right) < 1e-9:
        return R
    right /= np.linalg.norm(right)
    for sign in (1.0, -1.0):
        turned = R @ rotvec_to_matrix(sign * math.radians(min_elevation - el) * right).T
        if abs(camera_elevation(turned) - min_elevation) < 1e-6:
            return turned
    return R
