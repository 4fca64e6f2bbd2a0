"""Overlays of fits on their photos (mesh over photo, side view beside it) and a contact sheet.

Why: a person has to be able to see at a glance whether a fit is right. No GL: the mesh is
drawn by ``syrip_gen.drawing`` (``syrip_gen.raster``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from syrip_gen.atomic import atomic_write_image, read_image
from syrip_gen.drawing import contact_sheet, draw_keypoints, draw_mesh
from syrip_gen.fit.camera import to_camera
from syrip_gen.fits import FitRecord
from syrip_gen.geometry import intrinsics_matrix, project, rot_y

OVERLAY_HEIGHT = 512

def overlay_image(record: FitRecord, photo: np.ndarray | None, verts_cam: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Photo (or grey when None) with the mesh, input keypoints (green) and fitted ones (red),
    and a side view of the mesh beside it; ``(OVERLAY_HEIGHT, W, 3) uint8`` BGR."""
    import cv2

    W, H = int(record.width), int(record.height)
    cam = record.camera
    K = intrinsics_matrix(cam["fx"], cam["fy"], cam["cx"], cam["cy"])
    base = photo if photo is not None else np.full((H, W, 3), 96, np.uint8)
    front = draw_mesh(base, verts_cam, faces, K)
    r = max(2, int(round(max(W, H) / 200)))
    kp_in = np.asarray(record.keypoints_2d, dtype=np.float64)
    draw_keypoints(front, kp_in, (0, 200, 0), r)
    k3 = np.asarray(record.keypoints_3d)
    uv = project(k3, K, min_depth=1e-3)
    draw_keypoints(front, np.concatenate([uv, kp_in[:, 2:]], 1), (0, 0, 255), max(1, r // 2))
    # side view: turn the body 90° about the camera's vertical axis, then centre it on the
    # optical axis far enough away to fill ~80% of the frame (the photo's depth can be too close)
    c = verts_cam.mean(0)
    rot = rot_y(90.0)
    turned = (verts_cam - c) @ rot.T
    half = np.abs(turned[:, :2]).max(0)
    depth = max(float(np.max(half * K[[0, 1], [0, 1]] / (0.4 * np.array([W, H])))), 1e-3)
    side_verts = turned + np.array([(W / 2 - K[0, 2]) * depth / K[0, 0],
                                    (H / 2 - K[1, 2]) * depth / K[1, 1], depth + np.abs(turned[:, 2]).max()])
    side = draw_mesh(np.full((H, W, 3), 235, np.uint8), side_verts, faces, K, alpha=1.0)
    both = np.concatenate([front, side], 1)
    scale = OVERLAY_HEIGHT / H
    out = cv2.resize(both, (int(round(both.shape[1] * scale)), OVERLAY_HEIGHT), interpolation=cv2.INTER_AREA)
    hyp = record.hypothesis if record.hypothesis is not None else ""
    err = record.mean_error_norm if record.mean_error_norm is not None else float("nan")
    text = f"{record.id} {record.status[:40]} {hyp} err {100 * err:.1f}%"
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    cv2.rectangle(out, (4, 4), (12 + tw, 12 + th), (0, 0, 0), -1)
    cv2.putText(out, text, (8, 8 + th), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_overlays(records: list[FitRecord], skeletons, body, out_dir: Path, progress: bool = True) -> dict:
    """An overlay PNG per fitted record (``out_dir/overlays/<id>.png``, kept if present) and
    ``out_dir/contact_sheet.jpg``. Returns ``{"written", "existing", "skipped": {reason: [ids]}}``;
    a missing or unreadable photo still gets an overlay on grey and is listed by reason."""
    from tqdm import tqdm

    out = out_dir / "overlays"
    out.mkdir(parents=True, exist_ok=True)
    image_of = {s.id: s.image_path for s in skeletons}
    faces = body.topology().body_faces
    report = {"written": 0, "existing": 0, "skipped": {}}
    paths = []
    fitted = [r for r in records if r.pose is not None and r.id in image_of]
    for r in tqdm(fitted, desc="overlays", unit="img", disable=not progress):
        path = out / f"{_safe(r.id)}.png"
        paths.append(path)
        if path.exists():
            report["existing"] += 1
            continue
        img_path = image_of.get(r.id)
        photo = read_image(img_path) if img_path is not None and Path(img_path).exists() else None
        if photo is None:
            why = "image missing" if img_path is None or not Path(img_path).exists() else "image unreadable"
            report["skipped"].setdefault(f"{why} (overlay drawn on grey)", []).append(r.id)
        elif photo.shape[:2] != (int(r.height), int(r.width)):
            report["skipped"].setdefault("image size differs from the record (overlay drawn on grey)", []).append(r.id)
            photo = None
        with torch.no_grad():
            pose = torch.tensor([r.pose], dtype=torch.float32, device=body.shape_mean.device)
            shape = torch.tensor([r.shape], dtype=torch.float32, device=body.shape_mean.device)
            v = body(pose, shape, with_vertices=True).vertices
            v = to_camera(v, torch.tensor([r.camera["t"]], dtype=torch.float32, device=v.device))[0]
        img = overlay_image(r, photo, v.cpu().numpy().astype(np.float64), faces)
        atomic_write_image(path, img)
        report["written"] += 1
    contact_sheet(paths, out_dir / "contact_sheet.jpg")
    return report


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))
