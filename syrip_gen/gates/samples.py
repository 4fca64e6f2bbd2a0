"""What the gates judge, as arrays: one row per infant of a dataset (:func:`dataset_samples`), or
the ok fits of a fits file and their mirror images (:func:`fit_samples`, for calibration).

Why here: the gates compute on arrays, the records on disk are COCO annotations
(``annotate.SyntheticAnnotation``) and fit records (``fits.FitRecord``); this is the one place
that turns the records into the arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from syrip_gen.annotate import read_synthetic
from syrip_gen.fits import FitRecord


@dataclass
class Samples:
    """One row per infant: every annotation of every image (an image without one: one row with
    ``ann`` None). Gates judge rows; an image is kept only if all its infants pass."""

    image_ids: list  # per row: the image it belongs to
    anns: list  # SyntheticAnnotation or None
    kps: np.ndarray  # (N, 17, 3)
    size: np.ndarray  # (N, 2) w, h
    bbox: np.ndarray  # (N, 4)
    poses: np.ndarray  # (N, 24, 3), NaN rows without a body pose
    shapes: list  # per image: list of floats or None
    models: list  # body model name or None
    Ks: list  # (3, 3) intrinsics of the image's camera or None


def dataset_samples(coco) -> Samples:
    """The rows of a loaded COCO file (``coco.KeypointFile``), images in file order."""
    per_image: dict = {}
    for ann in read_synthetic(coco):
        per_image.setdefault(ann.image_id, []).append(ann)
    rows = [(iid, ann) for iid in coco.images for ann in (per_image.get(iid) or [None])]
    ids = [iid for iid, _ in rows]
    n = len(rows)
    kps = np.zeros((n, 17, 3))
    size = np.zeros((n, 2))
    bbox = np.zeros((n, 4))
    poses = np.full((n, 24, 3), np.nan)
    shapes, models, anns, Ks = [], [], [], []
    for i, (iid, ann) in enumerate(rows):
        img = coco.images[iid]
        anns.append(ann)
        cam = img.get("camera") if isinstance(img.get("camera"), dict) else {}
        Ks.append(cam.get("K"))
        size[i] = img.get("width") or 0, img.get("height") or 0
        shapes.append(ann.shape if ann else None)
        models.append(ann.body_model if ann else None)
        if ann is None:
            continue
        kps[i] = ann.keypoints
        bbox[i] = ann.bbox or [0, 0, 0, 0]
        if ann.pose is not None:
            poses[i] = ann.pose
    return Samples(ids, anns, kps, size, bbox, poses, shapes, models, Ks)


def fit_samples(records: list[FitRecord]) -> Samples | None:
    """The ok fit records with a pose and their mirror images as samples of the pose gates
    (None if there are none)."""
    import torch

    from syrip_gen.body.pose_space import flip_pose

    ok = [r for r in records if r.ok and r.pose is not None]
    try:
        poses = np.asarray([r.pose for r in ok], dtype=np.float64).reshape(-1, 24, 3)
    except ValueError:
        return None
    if not len(poses):
        return None
    poses = np.concatenate([poses, flip_pose(torch.as_tensor(poses)).numpy()])
    shapes = [r.shape for r in ok] * 2
    models = [r.body for r in ok] * 2
    n = len(poses)
    return Samples([None] * n, [None] * n, np.zeros((n, 17, 3)), np.zeros((n, 2)), np.zeros((n, 4)), poses,
                   shapes, models, [None] * n)
