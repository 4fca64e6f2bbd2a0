"""Fits prepared once as the sources of a render or a sequence run: :class:`FitInfo` per fit.

Why its own module: stills (``render/run.py``) and clips (``render/sequence/clips.py``) draw from the same
prepared fits; each fit's posture, the rotation that puts its 'up' on +y, its canonical world
(where its photo camera can be reused for another fit) and its photo's framing are computed
here once (one batched body forward), with the source photo's id and file. Only the baked photo
texture (``render --photo-textures``) is added later, by the run that bakes it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from syrip_gen.fits import FitRecord
from syrip_gen.geometry import intrinsics_matrix, project, rot_y, rotation_between, to_camera


@dataclass
class FitInfo:
    """A fit prepared for sampling: its pose, shape and the rotation taking its 'up' to +y."""

    index: int
    id: str
    pose: np.ndarray  # (24, 3) float64
    shape: np.ndarray  # (S,) float64
    posture: str
    align: np.ndarray  # (3, 3) float64, R_align
    source_image_id: object = None  # of the real photo the fit came from
    source_file: str | None = None
    photo_texture: str | None = None  # its baked photo texture (render --photo-textures), if any
    canonical: np.ndarray | None = None  # (3, 3) body frame -> canonical world (canonical_world)
    camera: np.ndarray | None = None  # (3, 3) the photo camera's rotation in the canonical world
    fill: float | None = None  # the fitted body's box / the photo's size (photo views frame alike)
    fov: float | None = None  # the photo camera's vertical field of view, degrees


def canonical_world(align: np.ndarray, axis: np.ndarray, front: np.ndarray) -> np.ndarray:
    """``(3, 3)`` body frame -> canonical world: ``R_align`` (posture's up onto +y), then a turn
    about +y that puts the horizontal part of (torso axis + chest normal) onto +z. Lying
    infants then lie head to +z, upright ones face +z, so one photo's camera, expressed in its
    fit's canonical world, can be placed around another fit of the same posture."""
    h = align @ (axis + front)
    heading = math.degrees(math.atan2(h[0], h[2])) if math.hypot(h[0], h[2]) > 1e-9 else 0.0
    return rot_y(-heading) @ align


def posture_pool(fits) -> dict[str, list[FitInfo]]:
    """Fits by posture (the sources of posture views and pose blends), in index order."""
    pool: dict[str, list[FitInfo]] = {}
    for f in sorted(fits, key=lambda f: f.index):
        pool.setdefault(f.posture, []).append(f)
    return pool


def prepare_fits(records: list[FitRecord], body) -> list[FitInfo]:
    """Turn fit records (``status == "ok"``, already validated; a record's position is its fit
    index, as :func:`~syrip_gen.fits.usable_fits` returns them) into :class:`FitInfo`: posture
    from the record, else its hypothesis, else labelled from the fitted body with +y up."""
    import torch

    from syrip_gen.posture_label import posture_labels, torso_frame, up_for_posture

    if not records:
        return []
    pose = torch.tensor(np.array([r.pose for r in records]), dtype=torch.float32)
    shape = torch.tensor(np.array([r.shape for r in records]), dtype=torch.float32)
    with torch.no_grad():
        out = body(pose, shape, with_vertices=True)
    kp = out.keypoints  # body frame with the fit's global orientation
    verts = out.vertices.double().numpy()
    postures = [(r.posture or r.hypothesis or "").lower() or None for r in records]
    missing = [i for i, p in enumerate(postures) if p is None]
    if missing:
        labels = posture_labels(kp[missing], torch.tensor([0.0, 1.0, 0.0]))
        for i, lab in zip(missing, labels):
            postures[i] = lab
    ups = up_for_posture(kp, postures).double().numpy()
    axis, front = (t.double().numpy() for t in torso_frame(kp))
    y = np.array([0.0, 1.0, 0.0])
    infos = []
    for i, r in enumerate(records):
        align = rotation_between(ups[i], y)
        canon = canonical_world(align, axis[i], front[i])
        cam = r.camera.get("R") if isinstance(r.camera, dict) else None
        cam_rot = np.asarray(cam, np.float64) @ canon.T if cam is not None else None  # X_cam = R_c X_body
        fill, fov = photo_framing(r, verts[i])
        infos.append(FitInfo(index=i, id=str(r.id), pose=np.asarray(r.pose, np.float64),
                             shape=np.asarray(r.shape, np.float64), posture=postures[i], align=align,
                             canonical=canon, camera=cam_rot, fill=fill, fov=fov,
                             source_image_id=r.image_id, source_file=r.file_name))
    return infos


def photo_framing(record: FitRecord, verts: np.ndarray) -> tuple[float | None, float | None]:
    """How the photo framed its infant: the fitted body's projected box over the image size
    (``max(w / W, h / H)``, the render's ``fill``) and the camera's vertical field of view in
    degrees; (None, None) when the record has no usable camera."""
    cam, W, H = record.camera, record.width, record.height
    if not isinstance(cam, dict) or not W or not H or "t" not in cam:
        return None, None
    K = intrinsics_matrix(cam["fx"], cam["fy"], cam["cx"], cam["cy"])
    xc = to_camera(verts, np.asarray(cam["R"], np.float64), np.asarray(cam["t"], np.float64))
    if (xc[:, 2] <= 1e-6).any():
        return None, None
    uv = project(xc, K)
    extent = max(np.ptp(uv[:, 0]) / W, np.ptp(uv[:, 1]) / H)
    return float(extent), float(np.degrees(2 * math.atan(H / 2 / cam["fy"])))
