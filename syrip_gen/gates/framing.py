"""Framing and visibility numbers of annotated samples (pure NumPy, batched over samples).

Why: a render whose infant is half out of the frame, tiny, or filling the whole picture, or
whose keypoints are mostly hidden, teaches a pose model little; these numbers let the filter
say so with a value.
"""
from __future__ import annotations

import numpy as np

from syrip_gen.geometry import project


def pixels_in_front(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels ``(N, J, 2)`` of ``(N, J, 3) float`` camera-frame points through ``(N, 3, 3)``
    intrinsics (``geometry.project``); points behind the camera get NaN (count as outside)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = project(points_cam, K)
    return np.where(points_cam[..., 2:3] > 1e-6, uv, np.nan)


def outside_share(xy: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Share ``(N,)`` of keypoints ``xy (N, J, 2)`` outside images of ``size (N, 2)`` = (w, h);
    NaN coordinates (behind the camera, unknown) count as outside."""
    w, h = size[:, None, 0], size[:, None, 1]
    x, y = xy[..., 0], xy[..., 1]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    return 1.0 - inside.mean(axis=1)


def outside_share_from_visibility(kps: np.ndarray) -> np.ndarray:
    """Fallback without 3D keypoints and camera: share ``(N,)`` of v=0 keypoints of ``kps (N, 17, 3)``
    (the dataset format marks keypoints outside the frame with v=0)."""
    return (kps[..., 2] <= 0).mean(axis=1)


def box_size(bbox: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Body size ``(N,)`` relative to the image: sqrt(box area / image area) for boxes
    ``(N, 4)`` x, y, w, h and image sizes ``(N, 2)``; 0 for empty boxes."""
    area = np.clip(bbox[:, 2], 0, None) * np.clip(bbox[:, 3], 0, None)
    return np.sqrt(area / (size[:, 0] * size[:, 1]))


def visible_count(kps: np.ndarray) -> np.ndarray:
    """Number ``(N,)`` of keypoints labelled in the image (v >= 1) in ``kps (N, 17, 3)``.

    v=1 counts: the renders mark a keypoint hidden by the body itself v=1 (36 % of render labels),
    where SyRIP's annotators mark such keypoints v=2 (98.4 % of their labels are v=2, none of
    train200's images has fewer than 6); counting only v=2 rejected renders (2.2 % of a default
    render) that people would have labelled in full, and 2D training weighs v=1 and v=2 alike."""
    return (kps[..., 2] >= 1).sum(axis=1)
