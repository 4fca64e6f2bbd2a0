"""Helpers (no tests): tiny datasets in the syrip-gen SyRIP layout, with JPEGs drawn by OpenCV,
RLE masks by pycocotools and, where a body is given, Anny body parameters."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from syrip_gen.coco import SKELETON, write_coco

W, H = 160, 120
K = np.array([[150.0, 0, W / 2], [0, 150.0, H / 2], [0, 0, 1]])
FACING = np.diag([1.0, -1.0, -1.0])  # body frame -> camera: upright, facing the camera


def rot_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def sample(kp_body: np.ndarray, *, t=(0.0, 0.0, 1.6), roll: float = 0.0, pose=None, shape=None,
           fit_id: str | None = None, posture: str = "supine", visible_override=None) -> dict:
    """One render's facts: body-frame keypoints ``(17, 3)`` seen by a camera ``t`` metres away."""
    R = rot_z(roll) @ FACING
    return {"kp3d": kp_body @ R.T + np.asarray(t), "R": R, "t": np.asarray(t), "pose": pose,
            "shape": shape, "fit_id": fit_id, "posture": posture, "visible_override": visible_override}


def write_dataset(root: Path, samples: list[dict], split: str = "train", info: dict | None = None) -> Path:
    """Write ``root/images/*.jpg`` and ``root/annotations/person_keypoints_<split>_infant.json``."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for n, s in enumerate(samples, 1):
        uvw = s["kp3d"] @ K.T
        uv = uvw[:, :2] / uvw[:, 2:3]
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
        v = np.where(inside, 2, 0)
        if s["visible_override"] is not None:
            v = np.where(inside, s["visible_override"], 0)
        kps = np.concatenate([np.where(inside[:, None], uv, 0), v[:, None]], 1)
        img = np.full((H, W, 3), (200, 190, 180), np.uint8)
        mask = np.zeros((H, W), np.uint8)
        hull = cv2.convexHull(uv.astype(np.float32)).astype(np.int32)
        cv2.fillConvexPoly(mask, hull, 1)
        img[mask > 0] = (120, 150, 210)
        for a, b in SKELETON:
            cv2.line(img, tuple(int(x) for x in uv[a - 1]), tuple(int(x) for x in uv[b - 1]), (40, 40, 40), 1)
        name = f"syn{n:05d}.jpg"
        cv2.imwrite(str(root / "images" / name), img)
        rle = mask_utils.encode(np.asfortranarray(mask))
        ys, xs = np.nonzero(mask)
        bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)] \
            if len(xs) else [0.0, 0.0, 0.0, 0.0]
        images.append({"id": n, "file_name": name, "width": W, "height": H, "is_synthetic": True,
                       "posture": s["posture"].capitalize(),
                       "camera": {"K": K.tolist(), "R": s["R"].tolist(), "t": s["t"].tolist()}})
        ann = {"id": n, "image_id": n, "category_id": 1, "iscrowd": 0, "keypoints": kps.flatten().tolist(),
               "num_keypoints": int((v > 0).sum()), "bbox": bbox, "area": float(mask.sum()),
               "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
               "keypoints_3d": s["kp3d"].tolist(), "posture": s["posture"],
               "provenance": {"fit_id": s["fit_id"], "seed": n}}
        if s["pose"] is not None:
            ann["body"] = {"model": "anny", "pose": np.asarray(s["pose"]).tolist(),
                           "shape": np.asarray(s["shape"]).tolist(), "age_months": 6.0}
        anns.append(ann)
    path = root / "annotations" / f"person_keypoints_{split}_infant.json"
    write_coco(path, images, anns, **({"info": info} if info else {}))
    return path


def write_fits(path: Path, errors: dict[str, float], status: dict[str, str] | None = None) -> Path:
    """``fits.jsonl`` with just the fields the filter reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for fid, err in errors.items():
            f.write(json.dumps({"id": fid, "status": (status or {}).get(fid, "ok"),
                                "mean_error_norm": err}) + "\n")
    return path


def skeleton_2d_samples(n: int, seed: int = 0) -> list[dict]:
    """Body-free samples (a stick infant in varied poses), for the review page and stats."""
    rng = np.random.default_rng(seed)
    base = np.array([  # body frame, metres: rough 6-month infant, arms out, legs down
        [0, .36, .06], [.02, .38, .05], [-.02, .38, .05], [.045, .37, 0], [-.045, .37, 0],
        [.08, .22, 0], [-.08, .22, 0], [.17, .18, 0], [-.17, .18, 0], [.24, .14, 0], [-.24, .14, 0],
        [.05, 0, 0], [-.05, 0, 0], [.07, -.14, .02], [-.07, -.14, .02], [.08, -.27, 0], [-.08, -.27, 0]])
    out = []
    for i in range(n):
        kp = base + rng.normal(0, 0.025, base.shape)
        out.append(sample(kp, roll=float(rng.uniform(-60, 60)), t=(0, 0, 1.7),
                          posture=["supine", "prone", "sitting"][i % 3], fit_id=f"f{i}"))
    return out
