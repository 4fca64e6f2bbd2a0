"""Stick-figure infants for the video tests and the video benchmark (``benchmarks/clips.py``):
moving clips with one or more infants (MP4 + ground-truth keypoints) and a small multi-infant
COCO set to train a toy detector on. Drawn like ``pose_models.synthetic`` (no licensed data,
same seed same bytes); fast enough to make in a test, unlike a rendered clip."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pose_models.synthetic import TEMPLATE
from syrip_gen.atomic import atomic_write_image
from syrip_gen.coco import SKELETON, write_coco

ARMS, LEGS = [7, 9], [13, 15]  # elbows + wrists, knees + ankles (left; right = +1)


def figure(t: float, centre: np.ndarray, height: float, phase: float = 0.0, amp: float = 0.25) -> np.ndarray:
    """Keypoints ``(17, 2)`` of a lying stick infant ``height`` px tall at ``centre`` at time ``t``
    (s): arms and legs wave about the shoulders and hips at 1.5 and 2 Hz."""
    xy = TEMPLATE[:, :2].copy()
    for joints, root, hz in ((ARMS, 5, 1.5), (LEGS, 11, 2.0)):
        for side in (0, 1):
            a = amp * np.sin(2 * np.pi * hz * t + phase + side * 1.3) * (1 if side == 0 else -1)
            c, s = np.cos(a), np.sin(a)
            r = np.array([[c, -s], [s, c]])
            p = xy[root + side]
            for j in joints:
                xy[j + side] = (xy[j + side] - p) @ r.T + p
    return (xy - xy.mean(0)) / 0.65 * height + centre


def draw(img: np.ndarray, kp: np.ndarray, thick: int = 2) -> None:
    for a, b in SKELETON:
        cv2.line(img, tuple(int(v) for v in kp[a - 1]), tuple(int(v) for v in kp[b - 1]), (60, 200, 240), thick)
    for j, p in enumerate(kp):
        colour = (255, 80, 80) if j % 2 else (80, 80, 255)
        cv2.circle(img, tuple(int(v) for v in p), thick, colour if j else (255, 255, 255), -1)


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return np.clip(rng.normal(90, 25, (h, w, 3)), 0, 255).astype(np.uint8)


def stick_clip(path: str | Path, frames: int = 20, size: tuple[int, int] = (160, 120), infants: int = 1,
               fps: float = 10.0, seed: int = 0) -> np.ndarray:
    """Write an MP4 of ``infants`` stick infants side by side, moving; returns the ground-truth
    keypoints ``(frames, infants, 17, 2)``."""
    from syrip_gen.video import write_mp4

    w, h = size
    rng = np.random.default_rng(seed)
    bg = background(rng, h, w)
    height = 0.75 * h if infants == 1 else min(0.75 * h, 0.8 * w / infants)
    centres = [np.array([w * (i + 0.5) / infants, h / 2]) for i in range(infants)]
    gt = np.array([[figure(f / fps, c + [3 * np.sin(f / fps), 0], height, phase=i) for i, c in enumerate(centres)]
                   for f in range(frames)])
    thick = max(2, int(round(h / 60)))

    def gen():
        for f in range(frames):
            img = bg.copy()
            for kp in gt[f]:
                draw(img, kp, thick)
            yield img

    write_mp4(path, gen(), fps)
    return gt


def multi_dataset(root: str | Path, n: int = 32, size: tuple[int, int] = (128, 96), seed: int = 0) -> Path:
    """A COCO set of ``n`` images with one or two stick infants (boxes from the keypoints), for a
    toy detector that has to find both infants of a frame."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    w, h = size
    images, anns = [], []
    for i in range(n):
        img = background(rng, h, w)
        k = 1 + i % 2
        height = rng.uniform(0.55, 0.75) * (h if k == 1 else min(h, 0.8 * w / k))
        for j in range(k):
            c = np.array([w * (j + 0.5) / k + rng.uniform(-4, 4), h / 2 + rng.uniform(-6, 6)])
            kp = figure(rng.uniform(0, 2), c, height, phase=rng.uniform(0, 6))
            draw(img, kp)
            lo, hi = kp.min(0) - 4, kp.max(0) + 4
            box = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
            kps = np.c_[kp, np.full(17, 2.0)]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "bbox": box,
                         "area": box[2] * box[3], "num_keypoints": 17, "keypoints": kps.reshape(-1).tolist()})
        name = f"img{i:04d}.jpg"
        atomic_write_image(root / "images" / name, img)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
    write_coco(root / "annotations" / "person_keypoints_train_infant.json", images, anns)
    return root
