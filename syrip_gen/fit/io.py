"""Fit input: skeletons from COCO or OpenPose JSON (the fits file itself is ``syrip_gen/fits.py``'s).

Why: the fitter's maths should see only arrays; this module turns the two input formats into
``Skeleton`` records (with a reason wherever one cannot be used).

OpenPose input (the SyRIP fitting code's 19-point format: BODY_25 without the six foot points,
``people[0].pose_keypoints_2d`` as 19 x (x, y, c)) maps to COCO-17 by ``OPENPOSE19_TO_COCO``:
nose 0, left eye 16, right eye 15, left ear 18, right ear 17, left shoulder 5, right shoulder 2,
left elbow 6, right elbow 3, left wrist 7, right wrist 4, left hip 12, right hip 9, left knee
13, right knee 10, left ankle 14, right ankle 11 (OpenPose's neck 1 and mid-hip 8 are unused).
Confidence becomes COCO visibility: c <= 0 -> 0 (unlabelled), c < ``LOW_CONFIDENCE`` -> 1
(counted with the occluded weight), else 2. A 25-point BODY_25 list is accepted the same way.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from syrip_gen import coco
from syrip_gen.errors import UserError
from syrip_gen.fits import SkeletonFields
from syrip_gen.paths import IMAGE_SUFFIXES

OPENPOSE19_TO_COCO = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]
LOW_CONFIDENCE = 0.3


@dataclass(kw_only=True)
class Skeleton(SkeletonFields):
    """One input person: enough to fit it and to write its record (fits format)."""

    id: str
    keypoints: np.ndarray | None  # (17, 3) float64 x, y, v; None when unreadable
    image_path: Path | None = None
    problem: str | None = None  # why it cannot be fitted (then it is written as rejected)
    focal: float | None = None  # pixels, when the input gives the camera (image camera.K or focal)
    extra: dict = field(default_factory=dict)

    def record(self) -> dict:
        """The input fields of a fits record."""
        return {"id": self.id, "image_id": self.image_id, "file_name": self.file_name,
                "width": self.width, "height": self.height, "source": self.source,
                "posture": self.posture,
                "keypoints_2d": None if self.keypoints is None else _clean(self.keypoints).tolist()}


def _clean(kps: np.ndarray) -> np.ndarray:
    out = np.array(kps, dtype=np.float64)
    out[~np.isfinite(out)] = 0.0
    return out


def load_skeletons(path: str | Path, images: str | Path | None = None, min_keypoints: int = 6) -> list[Skeleton]:
    """Skeletons from a COCO keypoint file (or SyRIP dataset dir), an OpenPose JSON file, or a
    directory of OpenPose JSON files. One-line UserError when the whole input is unusable."""
    path = Path(path)
    if path.is_dir() and not (path / "annotations").is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise UserError(f"{path}: no JSON files (expected COCO keypoints or OpenPose per-image JSON)")
        if all(_is_openpose(f) for f in files[:3]):
            return [s for f in files for s in _openpose_file(f, images, min_keypoints)]
    if path.is_file() and _is_openpose(path):
        return _openpose_file(path, images, min_keypoints)
    return _coco_skeletons(path, images, min_keypoints)


def _is_openpose(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "people" in data


def _coco_skeletons(path: Path, images: str | Path | None, min_keypoints: int) -> list[Skeleton]:
    kf = coco.load_coco(path)
    image_dir = Path(images) if images else kf.image_dir()
    out = []
    seen_ids = set()
    for i, ann in enumerate(kf.annotations):
        ann_id = str(ann.get("id", f"index{i}"))
        if ann_id in seen_ids:
            ann_id = f"{ann_id}#{i}"
        seen_ids.add(ann_id)
        img = kf.images.get(ann["image_id"], {})
        sk = Skeleton(id=ann_id, source=str(kf.path), keypoints=None, image_id=ann["image_id"],
                      file_name=img.get("file_name"), posture=coco.image_posture(img))
        w, h = img.get("width"), img.get("height")
        sk.width = float(w) if coco.is_finite_number(w) and w > 0 else None
        sk.height = float(h) if coco.is_finite_number(h) and h > 0 else None
        if sk.file_name:
            sk.image_path = image_dir / sk.file_name
        sk.focal = _given_focal(img)
        if not img:
            sk.problem = f"image_id {ann['image_id']!r} has no image record"
        if sk.problem is None and (sk.width is None or sk.height is None):
            sk.width, sk.height = _image_size(sk.image_path)
            if sk.width is None:
                sk.problem = "image size unknown (no width/height and the image is unreadable)"
        kps = ann.get("keypoints")
        why = coco.keypoint_problem(kps, sk.width, sk.height, min_keypoints=min_keypoints)
        if why is None or not why.startswith("keypoints must"):
            sk.keypoints = np.asarray(kps, dtype=np.float64).reshape(17, 3)
        sk.problem = sk.problem or why
        out.append(sk)
    return out


def _openpose_file(path: Path, images: str | Path | None, min_keypoints: int) -> list[Skeleton]:
    sk = Skeleton(id=path.stem, source=str(path), keypoints=None, image_id=path.stem)
    try:
        data = json.loads(path.read_text())
        flat = np.asarray(data["people"][0]["pose_keypoints_2d"], dtype=np.float64)
    except (OSError, ValueError, UnicodeDecodeError):
        sk.problem = "not valid JSON"
        return [sk]
    except (KeyError, IndexError, TypeError):
        sk.problem = "no people[0].pose_keypoints_2d"
        return [sk]
    if flat.size not in (19 * 3, 25 * 3):
        sk.problem = f"pose_keypoints_2d must hold 19 or 25 points x 3, got {flat.size} numbers"
        return [sk]
    pts = flat.reshape(-1, 3)[OPENPOSE19_TO_COCO]
    conf = pts[:, 2]
    vis = np.where(~(conf > 0), 0.0, np.where(conf < LOW_CONFIDENCE, 1.0, 2.0))
    sk.keypoints = np.concatenate([pts[:, :2], vis[:, None]], 1)
    image_dir = Path(images) if images else path.parent
    for suffix in IMAGE_SUFFIXES:
        for stem in (path.stem, path.stem.removesuffix("_keypoints")):
            cand = image_dir / f"{stem}{suffix}"
            if cand.exists():
                sk.image_path, sk.file_name = cand, cand.name
                break
        if sk.image_path:
            break
    sk.width, sk.height = _image_size(sk.image_path)
    if sk.width is None:
        sk.problem = "image size unknown: OpenPose JSON has none; pass --images with the photos"
        return [sk]
    sk.problem = coco.keypoint_problem(sk.keypoints, sk.width, sk.height, min_keypoints=min_keypoints)
    return [sk]


def _given_focal(img: dict) -> float | None:
    """Focal length in pixels from an image record's ``camera.K`` (renders, posture skeletons)
    or a ``focal`` field; None when absent or not a positive number."""
    f = img.get("focal")
    cam = img.get("camera")
    if f is None and isinstance(cam, dict):
        try:
            f = float(np.asarray(cam["K"], dtype=np.float64)[0, 0])
        except (KeyError, ValueError, TypeError, IndexError):
            f = None
    return float(f) if coco.is_finite_number(f) and f > 0 else None


def _image_size(path: Path | None) -> tuple[float | None, float | None]:
    if path is None or not Path(path).exists():
        return None, None
    try:
        from PIL import Image

        with Image.open(path) as im:
            return float(im.width), float(im.height)
    except Exception:  # unreadable image: reported by the caller as a reason
        return None, None
