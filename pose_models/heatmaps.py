"""Heatmap maths: Gaussian targets, sub-pixel decoding, flip handling. Pure functions.

Coordinate convention everywhere in pose_models: pixel centres sit at integer coordinates (as in
cv2.warpAffine). A heatmap with stride ``s`` (4) relates to its input by ``u = s * v + (s - 1) / 2``,
which keeps horizontal flips exact: flipping the input about ``(W-1)/2`` flips the heatmap about ``(w-1)/2``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from syrip_gen.coco import FLIP_INDEX


def gaussian_targets(kps: np.ndarray, vis: np.ndarray, size_hw: tuple[int, int], sigma: float = 2.0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Render Gaussian heatmaps.

    kps: ``(J, 2) float`` heatmap-pixel coordinates; vis: ``(J,)`` COCO visibility (0 = unlabelled).
    Returns targets ``(J, H, W) float32`` (peak 1) and weights ``(J,) float32``: 0 for v=0 and for
    joints whose Gaussian lies wholly outside the map, else 1.
    """
    h, w = size_hw
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    target = np.zeros((len(kps), h, w), np.float32)
    weight = (np.asarray(vis) > 0).astype(np.float32)
    for j, (x, y) in enumerate(kps):
        if weight[j] == 0:
            continue
        if x < -3 * sigma or y < -3 * sigma or x > w - 1 + 3 * sigma or y > h - 1 + 3 * sigma:
            weight[j] = 0
            continue
        target[j] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    return target, weight


def argmax_2d(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """heatmaps ``(B, J, H, W)`` -> integer peak ``(B, J, 2) float32`` (x, y) and peak values ``(B, J)``."""
    b, j, h, w = heatmaps.shape
    val, idx = heatmaps.reshape(b, j, -1).max(-1)
    xy = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], -1).float()
    return xy, val


def decode_quarter(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SimpleBaselines rule: argmax moved a quarter pixel towards the higher neighbour.
    heatmaps ``(B, J, H, W) float32`` -> xy ``(B, J, 2)`` in heatmap pixels, scores ``(B, J)``."""
    xy, val = argmax_2d(heatmaps)
    b, j, h, w = heatmaps.shape
    hm = heatmaps.reshape(b * j, h, w)
    x, y = xy.reshape(-1, 2).long().unbind(-1)
    r = torch.arange(b * j)
    xl, xr = (x - 1).clamp(0, w - 1), (x + 1).clamp(0, w - 1)
    yu, yd = (y - 1).clamp(0, h - 1), (y + 1).clamp(0, h - 1)
    dx = torch.sign(hm[r, y, xr] - hm[r, y, xl]) * ((x > 0) & (x < w - 1))
    dy = torch.sign(hm[r, yd, x] - hm[r, yu, x]) * ((y > 0) & (y < h - 1))
    return xy + 0.25 * torch.stack([dx, dy], -1).reshape(b, j, 2).float(), val


def decode_dark(heatmaps: torch.Tensor, blur_kernel: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """DARK (Zhang et al. 2020): second-order Taylor step on the log-heatmap around the argmax.
    Exact for a Gaussian peak; ``blur_kernel`` (odd, 0 = off) smooths noisy network output first.
    heatmaps ``(B, J, H, W) float32`` -> xy ``(B, J, 2)``, scores ``(B, J)`` (of the raw maps)."""
    xy, val = argmax_2d(heatmaps)
    hm = heatmaps.float()
    if blur_kernel > 1:
        k = blur_kernel
        sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
        g = torch.exp(-(torch.arange(k, dtype=hm.dtype) - k // 2) ** 2 / (2 * sigma ** 2))
        g = (g[:, None] * g[None, :]) / g.sum() ** 2
        b, j, h, w = hm.shape
        peak = hm.amax((-1, -2), keepdim=True)
        hm = F.conv2d(F.pad(hm.reshape(-1, 1, h, w), [k // 2] * 4, mode="replicate"), g[None, None])
        hm = hm.reshape(b, j, h, w)
        hm = hm * peak / hm.amax((-1, -2), keepdim=True).clamp_min(1e-10)
    b, j, h, w = hm.shape
    lg = torch.log(hm.clamp_min(1e-10)).reshape(b * j, h, w)
    x, y = xy.reshape(-1, 2).long().unbind(-1)
    r = torch.arange(b * j)
    ok = (x > 0) & (x < w - 1) & (y > 0) & (y < h - 1)
    x, y = x.clamp(1, w - 2), y.clamp(1, h - 2)
    c = lg[r, y, x]
    dx = 0.5 * (lg[r, y, x + 1] - lg[r, y, x - 1])
    dy = 0.5 * (lg[r, y + 1, x] - lg[r, y - 1, x])
    dxx = lg[r, y, x + 1] - 2 * c + lg[r, y, x - 1]
    dyy = lg[r, y + 1, x] - 2 * c + lg[r, y - 1, x]
    dxy = 0.25 * (lg[r, y + 1, x + 1] - lg[r, y + 1, x - 1] - lg[r, y - 1, x + 1] + lg[r, y - 1, x - 1])
    det = dxx * dyy - dxy ** 2
    good = ok & (det.abs() > 1e-8) & (dxx < 0) & (dyy < 0)
    det = torch.where(good, det, torch.ones_like(det))
    ox = -(dyy * dx - dxy * dy) / det
    oy = -(dxx * dy - dxy * dx) / det
    off = torch.stack([ox, oy], -1) * good[:, None]
    off = off.clamp(-1, 1)
    return xy + off.reshape(b, j, 2), val


def decode(heatmaps: torch.Tensor, method: str = "dark") -> tuple[torch.Tensor, torch.Tensor]:
    """``method``: ``dark`` (Taylor, with a 5x5 blur for network output) or ``quarter``."""
    return decode_dark(heatmaps, 5) if method == "dark" else decode_quarter(heatmaps)


def flip_heatmaps(heatmaps: torch.Tensor) -> torch.Tensor:
    """Mirror ``(B, 17, H, W)`` heatmaps horizontally and swap left/right channels (FLIP_INDEX)."""
    return heatmaps.flip(-1)[:, FLIP_INDEX]


def flip_test(forward, images: torch.Tensor) -> torch.Tensor:
    """Average ``forward(images)`` with the mirrored-back, left/right-swapped ``forward(images.flip(-1))``.
    forward: ``(B, 3, H, W)`` -> ``(B, 17, h, w)``; returns ``(B, 17, h, w) float32``."""
    both = forward(torch.cat([images, images.flip(-1)])).float()  # one batched pass (BatchNorm is in eval mode)
    n = images.shape[0]
    return 0.5 * (both[:n] + flip_heatmaps(both[n:]))
