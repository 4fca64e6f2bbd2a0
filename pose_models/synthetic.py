"""A tiny drawn-stick-figure COCO dataset (with camera and keypoints_3d) for tests and smoke runs.

No licensed data: a 3D infant-sized skeleton is posed at random, projected through a pinhole camera and
drawn with cv2. Same seed, same bytes.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from syrip_gen.atomic import atomic_write_image
from syrip_gen.coco import SKELETON, SYRIP_POSTURES, write_coco
from syrip_gen.geometry import axis_rotation, intrinsics_matrix, project

# rough infant skeleton (metres, x right, y down, z away from the camera), COCO-17 order
TEMPLATE = np.array([
    [0.00, -0.30, 0.0], [0.03, -0.33, 0.0], [-0.03, -0.33, 0.0], [0.06, -0.31, 0.03], [-0.06, -0.31, 0.03],
    [0.09, -0.18, 0.0], [-0.09, -0.18, 0.0], [0.16, -0.06, 0.0], [-0.16, -0.06, 0.0], [0.20, 0.05, 0.0],
    [-0.20, 0.05, 0.0], [0.06, 0.05, 0.0], [-0.06, 0.05, 0.0], [0.08, 0.19, 0.0], [-0.08, 0.19, 0.0],
    [0.09, 0.32, 0.0], [-0.09, 0.32, 0.0]])
LABELS = [p.capitalize() for p in SYRIP_POSTURES]  # as SyRIP files store them




def make_dataset(root: str | Path, n: int = 16, width: int = 96, height: int = 128, seed: int = 0,
                 synthetic_every: int = 2) -> Path:
    """Write ``root/images/*.jpg`` and ``root/annotations/person_keypoints_train_infant.json``; returns root.
    Every ``synthetic_every``-th image is marked ``is_synthetic`` (the domain label)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(n):
        body = TEMPLATE + rng.normal(0, 0.015, TEMPLATE.shape)
        # roll about z, yaw about -y (the sign this data has always been drawn with), pitch about x
        r = axis_rotation("z", rng.uniform(-0.5, 0.5)) @ axis_rotation("y", -rng.uniform(-0.6, 0.6)) @ axis_rotation("x", rng.uniform(-0.3, 0.3))
        cam = body @ r.T + np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(0.9, 1.2)])
        f = 0.8 * height * rng.uniform(0.9, 1.1)
        k = intrinsics_matrix(f, f, (width - 1) / 2, (height - 1) / 2)
        uv = project(cam, k)
        img = np.clip(rng.normal(90, 25, (height, width, 3)), 0, 255).astype(np.uint8)
        for a, b in SKELETON:
            pa, pb = uv[a - 1], uv[b - 1]
            cv2.line(img, tuple(int(v) for v in pa), tuple(int(v) for v in pb), (60, 200, 240), 2)
        for j, p in enumerate(uv):
            colour = (255, 80, 80) if j % 2 else (80, 80, 255)
            cv2.circle(img, tuple(int(v) for v in p), 2, colour if j else (255, 255, 255), -1)
        name = f"img{i:04d}.jpg"
        atomic_write_image(root / "images" / name, img)
        vis = np.full(17, 2.0)
        vis[rng.random(17) < 0.05] = 0
        kps = np.concatenate([uv, vis[:, None]], 1)
        kps[vis == 0, :2] = 0
        lab = uv[vis > 0]
        x0, y0 = lab.min(0) - 4
        x1, y1 = lab.max(0) + 4
        box = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
        images.append({"id": i + 1, "file_name": name, "width": width, "height": height,
                       "is_synthetic": i % synthetic_every == 0, "posture": LABELS[i % len(LABELS)],
                       "camera": {"K": k.tolist(), "R": np.eye(3).tolist(), "t": [0.0, 0.0, 0.0]}})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "bbox": box,
                     "area": box[2] * box[3], "num_keypoints": int((vis > 0).sum()),
                     "keypoints": [float(v) for v in kps.reshape(-1)], "keypoints_3d": cam.tolist()})
    write_coco(root / "annotations" / "person_keypoints_train_infant.json", images, anns)
    return root
