"""Pictures for people to look at: mesh drawings (``syrip_gen.raster``, no GL) and contact sheets.

- :func:`draw_mesh`: a perspective, flat-shaded mesh over a photo (fit overlays);
- :func:`paint_views`: front and side views of a body (``syrip-gen body preview`` without GL);
- :func:`paint_orthographic`: one orthographic view (the posture library's contact sheet);
- :func:`draw_keypoints`, :func:`contact_sheet` (a grid of image files) and
  :func:`write_contact_sheet` (a rendered dataset's images with keypoints and boxes).

Every mesh goes through :func:`syrip_gen.raster.triangle_ids` (one rasteriser for drawings and
the photo bake) and perspective points through :func:`syrip_gen.geometry.project`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from syrip_gen.atomic import atomic_write_image, read_image
from syrip_gen.coco import SKELETON
from syrip_gen.geometry import project
from syrip_gen.raster import paint, triangle_ids

THUMB_HEIGHT = 200
MESH_COLOUR = np.array([120, 170, 235], dtype=np.float64)  # BGR, light skin-blue
LIGHT = np.array([0.3, -0.5, -1.0]) / np.linalg.norm([0.3, -0.5, -1.0])  # towards the camera, from above


def draw_mesh(canvas: np.ndarray, verts_cam: np.ndarray, faces: np.ndarray, K: np.ndarray,
              alpha: float = 0.7) -> np.ndarray:
    """Draw a mesh (camera-frame vertices ``(V, 3)``, faces ``(F, 3)``) flat-shaded onto
    ``canvas (H, W, 3) uint8`` through intrinsics ``K (3, 3)``; returns a new image."""
    uv = project(verts_cam, K, min_depth=1e-3)
    tri = verts_cam[faces]  # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    centre = tri.mean(1)
    facing = (normal * centre).sum(1) < 0  # towards the camera
    shade = np.clip(np.abs(normal @ LIGHT), 0.0, 1.0) * 0.75 + 0.25
    keep = facing & (tri[:, :, 2].min(1) > 1e-3)
    ids = triangle_ids(uv[faces], centre[:, 2], canvas.shape[1], canvas.shape[0], keep=keep)
    colours = (MESH_COLOUR[None] * shade[:, None]).astype(np.int32)
    out = canvas.copy()
    m = ids >= 0
    out[m] = (alpha * colours[ids[m]] + (1 - alpha) * canvas[m]).astype(np.uint8)
    return out


def paint_orthographic(vertices: np.ndarray, faces: np.ndarray, R: np.ndarray, size: int, scale: float,
                centre: np.ndarray) -> np.ndarray:
    """Orthographic painter's-algorithm render of a mesh ``(V, 3)``, ``(F, 3)``; ``R`` rows are the
    view's right, down and forward axes. Returns ``(size, size, 3) uint8``, shaded by normal."""
    cam = (vertices - centre) @ R.T  # x right, y down, z away from the viewer
    tri = cam[faces]  # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    shade = np.abs(normal[:, 2]) * 0.75 + 0.25
    base = np.array([190, 200, 235], np.float64)  # skin-ish (BGR)
    ids = triangle_ids(tri[:, :, :2] * scale + size / 2, tri[:, :, 2].mean(1), size, size)
    return paint(ids, np.round(base * shade[:, None]).astype(np.uint8), np.full(3, 255, np.uint8))


PAINTER_VIEWS = {"front": np.array([0.0, 0.0, -1.0]), "side": np.array([-1.0, 0.0, 0.0])}  # viewing dirs


def painter_project(vertices: np.ndarray, points: np.ndarray, size: int, view: str):
    """Pixels ``(..., 2)`` and depths ``(...)`` of body-frame ``points (..., 3)`` in :func:`paint_views`'
    panel ``view`` of a body with ``vertices (V, 3)``; also its (forward, right, up) axes."""
    v = np.asarray(vertices, dtype=np.float64)
    up, fwd = np.array([0.0, 1.0, 0.0]), PAINTER_VIEWS[view]
    right = np.cross(fwd, up)
    centre = (v.max(0) + v.min(0)) / 2
    scale = size / ((v.max(0) - v.min(0)).max() * 1.15)
    rel = np.asarray(points, dtype=np.float64) - centre
    uv = np.stack([rel @ right, -(rel @ up)], -1) * scale + size / 2
    return uv, rel @ fwd, (fwd, right, up)


def paint_views(vertices, faces, size: int = 512, views=("front", "side")):
    """Flat-shaded painter's-algorithm drawing, RGB ``(size, size * len(views), 3)`` uint8.

    ``vertices (V, 3)`` float in the body frame (y up, facing +z); "front" looks at the body
    from +z (its left on the image's right), "side" from its left (+x), facing image left.
    """
    import cv2

    v = np.asarray(vertices, dtype=np.float64)
    tri = v[np.asarray(faces)]  # (F, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True).clip(min=1e-12)
    panels = []
    for view in views:
        uv, depth, (fwd, right, up) = painter_project(v, tri, size, view)
        light = -fwd + 0.6 * up + 0.3 * right
        light /= np.linalg.norm(light)
        shade = 0.3 + 0.7 * np.abs(normals @ light)
        skin = np.array([232, 190, 160], np.float64)  # RGB
        # drawn at twice the size and shrunk: smooth edges (larger depth = farther)
        ids = triangle_ids(uv * 2 + 0.5, depth.mean(1), 2 * size, 2 * size)
        big = paint(ids, (skin * shade[:, None]).astype(np.uint8), np.full(3, 235, np.uint8))
        img = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
        cv2.putText(img, view, (8, size - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (90, 90, 90), 1, cv2.LINE_AA)
        panels.append(img)
    return np.concatenate(panels, 1)


def draw_keypoints(img: np.ndarray, kp: np.ndarray, colour, radius: int) -> None:
    """Skeleton lines and dots of COCO keypoints ``(17, 3)`` (x, y, v) onto ``img`` in place."""
    import cv2

    for a, b in SKELETON:
        if kp[a - 1, 2] > 0 and kp[b - 1, 2] > 0:
            cv2.line(img, tuple(int(x) for x in kp[a - 1, :2]), tuple(int(x) for x in kp[b - 1, :2]), colour,
                     max(1, radius // 2), cv2.LINE_AA)
    for x, y, v in kp:
        if v > 0:
            cv2.circle(img, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA)


def contact_sheet(paths: list[Path], out_path: Path, columns: int = 6) -> None:
    """Grid of thumbnails of the overlay images ``paths`` written to ``out_path``."""
    import cv2

    thumbs = []
    for p in paths:
        img = read_image(p)
        if img is None:
            continue
        s = THUMB_HEIGHT / img.shape[0]
        thumbs.append(cv2.resize(img, (int(img.shape[1] * s), THUMB_HEIGHT), interpolation=cv2.INTER_AREA))
    if not thumbs:
        return
    width = max(t.shape[1] for t in thumbs)
    rows = []
    for i in range(0, len(thumbs), columns):
        row = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in thumbs[i:i + columns]]
        row += [np.full((THUMB_HEIGHT, width, 3), 255, np.uint8)] * (columns - len(row))
        rows.append(np.concatenate(row, 1))
    atomic_write_image(out_path, np.concatenate(rows, 0), (cv2.IMWRITE_JPEG_QUALITY, 85))


def write_contact_sheet(ann_path: Path, dst: Path, seed: int = 0, n: int = 64, tile_w: int = 200,
                        quality: int = 85) -> Path:
    """A grid of up to ``n`` randomly chosen images with their keypoints drawn (green: visible,
    orange: occluded) and the mask's box, for a person to look at."""
    import cv2

    data = json.loads(Path(ann_path).read_text())
    imgs = {r["id"]: r for r in data["images"]}
    anns = data["annotations"]
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(anns), size=min(n, len(anns)), replace=False).tolist())
    if not pick:
        return dst
    first = imgs[anns[pick[0]]["image_id"]]
    tile_h = int(round(tile_w * first["height"] / first["width"]))
    cols = int(np.ceil(np.sqrt(len(pick))))
    rows = int(np.ceil(len(pick) / cols))
    sheet = np.full((rows * tile_h, cols * tile_w, 3), 255, np.uint8)
    root = Path(ann_path).parent.parent / "images"
    for slot, i in enumerate(pick):
        ann = anns[i]
        img = read_image(root / imgs[ann["image_id"]]["file_name"])
        if img is None:
            continue
        s = tile_w / img.shape[1]
        img = cv2.resize(img, (tile_w, tile_h), interpolation=cv2.INTER_AREA)
        kp = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
        pts = [(int(round(x * s)), int(round(y * s))) for x, y, _ in kp]
        for a, b in SKELETON:
            if kp[a - 1, 2] > 0 and kp[b - 1, 2] > 0:
                cv2.line(img, pts[a - 1], pts[b - 1], (255, 200, 0), 1, cv2.LINE_AA)
        for (x, y), v in zip(pts, kp[:, 2]):
            if v > 0:
                cv2.circle(img, (x, y), 2, (0, 220, 0) if v == 2 else (0, 140, 255), -1, cv2.LINE_AA)
        bx, by, bw, bh = ann["bbox"]
        cv2.rectangle(img, (int(bx * s), int(by * s)), (int((bx + bw) * s), int((by + bh) * s)), (255, 0, 255), 1)
        cv2.putText(img, ann.get("posture", ""), (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        r, c = divmod(slot, cols)
        sheet[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w] = img
    atomic_write_image(dst, sheet, (cv2.IMWRITE_JPEG_QUALITY, quality))
    return dst
