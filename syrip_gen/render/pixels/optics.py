"""A camera's depth of field: what lies far behind the infant is softer than the infant.

Why: photos of infants are focused on the infant; the floor running away behind it and the room
beyond are soft. A rendered floor seen at a grazing angle instead stays sharp to the horizon,
where its texture smears into streaks a real lens never shows (issue 26's stretched corners).
Pure NumPy/OpenCV on the rendered frame: the body keeps its pixels, the support's pixels are
mixed with a blurred copy by how much farther than the body they lie, the background (no depth:
at infinity) takes the full blur.
"""
from __future__ import annotations

import numpy as np


def depth_of_field(rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray, sigma: float = 1.6,
                   full_at: float = 1.0) -> np.ndarray:
    """``rgb (H, W, 3) uint8`` with its non-body pixels blurred (Gaussian ``sigma`` px, scaled
    with the frame: ``sigma`` at 240 rows) by ``min(1, (z / z_body - 1) / full_at)``, where
    ``z_body`` is the median body depth; ``depth (H, W) float32`` (0: background, at infinity),
    ``mask (H, W) bool`` the body's pixels (kept sharp)."""
    import cv2

    if not mask.any() or sigma <= 0:
        return rgb
    z_body = float(np.median(depth[mask]))
    if z_body <= 0:
        return rgb
    weight = np.where(depth > 0, np.clip((depth / z_body - 1.0) / full_at, 0.0, 1.0), 1.0)
    weight[mask] = 0.0
    if not (weight > 0.02).any():
        return rgb
    s = sigma * rgb.shape[0] / 240.0
    soft = cv2.GaussianBlur(rgb, (0, 0), s)
    w = cv2.GaussianBlur(weight.astype(np.float32), (0, 0), s)[..., None]  # no hard seam at the body
    w[mask] = 0.0
    return np.clip(rgb * (1 - w) + soft * w + 0.5, 0, 255).astype(np.uint8)
