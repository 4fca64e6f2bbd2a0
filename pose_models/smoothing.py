"""Keypoint smoothing in time: the One-Euro filter (Casiez, Roussel & Vogel, CHI 2012).

Why: a per-frame pose model jitters by a pixel or two from frame to frame even on a still
infant, which makes speed and acceleration measures (what movement assessment needs) noisy.
A fixed low-pass filter trades that jitter for lag on fast kicks; the One-Euro filter adapts its
cut-off to the signal's speed: ``fc = min_cutoff + beta * |dx/dt|``, so slow motion is smoothed
hard and fast motion follows with little lag. Pure NumPy; one filter state per track.

Missing or unreliable points (score below ``min_score``, NaN) are not fed: the filter holds its
state and the output keeps the raw value for that frame, so a lost wrist does not drag its
smoothed track to the origin.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    """One-Euro parameters (in the units of the signal: pixels, seconds)."""

    min_cutoff: float = field(default=1.0, metadata={"min": 1e-6})  # Hz: cut-off at rest (lower: smoother)
    beta: float = field(default=0.01, metadata={"min": 0.0})  # speed coefficient (higher: less lag when fast)
    d_cutoff: float = field(default=1.0, metadata={"min": 1e-6})  # Hz: cut-off of the speed estimate
    min_score: float = field(default=0.0, metadata={"min": 0.0})  # points at or below are not fed


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    """Exponential smoothing factor ``alpha`` of a first-order low-pass at ``cutoff`` Hz for a
    step of ``dt`` seconds: ``r / (r + 1)`` with ``r = 2 pi fc dt``."""
    r = 2 * math.pi * np.asarray(cutoff, np.float64) * dt
    return r / (r + 1)


class OneEuro:
    """One-Euro filter over arrays of any shape ``(..., D)`` (e.g. ``(17, 2)`` keypoints): each
    element filtered independently, the speed measured per point over its last axis."""

    def __init__(self, cfg: OneEuroConfig = OneEuroConfig()):
        self.cfg = cfg
        self.x: np.ndarray | None = None  # last filtered value
        self.dx: np.ndarray | None = None  # last filtered derivative
        self.t: float | None = None

    def __call__(self, x: np.ndarray, t: float, valid: np.ndarray | None = None) -> np.ndarray:
        """Filtered ``x (..., D)`` at time ``t`` (seconds). ``valid (...,)``: points to feed
        (others are returned raw and leave the state unchanged)."""
        x = np.asarray(x, np.float64)
        valid = np.isfinite(x).all(-1) if valid is None else (np.asarray(valid, bool) & np.isfinite(x).all(-1))
        if self.x is None:
            self.x = np.where(valid[..., None], x, np.nan)
            self.dx = np.zeros_like(x)
            self.t = t
            return x.copy()
        dt = t - self.t
        if dt <= 0:
            raise ValueError(f"One-Euro filter: time must increase (got {t} after {self.t})")
        self.t = t
        fresh = valid & ~np.isfinite(self.x).all(-1)  # first valid sample of a point: start there
        prev = np.where(fresh[..., None], x, self.x)
        dx = (x - prev) / dt
        a_d = smoothing_factor(self.cfg.d_cutoff, dt)
        dx_hat = a_d * dx + (1 - a_d) * self.dx
        speed = np.linalg.norm(dx_hat, axis=-1, keepdims=True)
        a = smoothing_factor(self.cfg.min_cutoff + self.cfg.beta * speed, dt)
        x_hat = a * x + (1 - a) * prev
        keep = valid[..., None]
        self.x = np.where(keep, x_hat, self.x)
        self.dx = np.where(keep, dx_hat, self.dx)
        return np.where(keep, x_hat, x)


def smooth_track(xy: np.ndarray, times: np.ndarray, cfg: OneEuroConfig = OneEuroConfig(),
                 scores: np.ndarray | None = None) -> np.ndarray:
    """One track's keypoints ``xy (F, K, D)`` at ``times (F,)`` seconds, filtered forward in time;
    ``scores (F, K)`` below ``cfg.min_score`` are not fed."""
    f = OneEuro(cfg)
    out = np.empty_like(np.asarray(xy, np.float64))
    for i in range(len(xy)):
        valid = None if scores is None else scores[i] > cfg.min_score
        out[i] = f(xy[i], float(times[i]), valid)
    return out


def jitter(xy: np.ndarray) -> float:
    """Mean norm of the second difference of ``xy (F, K, D)`` over frames and points: the
    frame-to-frame shake of a track (0 for motion at constant speed)."""
    xy = np.asarray(xy, np.float64)
    if len(xy) < 3:
        return 0.0
    return float(np.nanmean(np.linalg.norm(xy[2:] - 2 * xy[1:-1] + xy[:-2], axis=-1)))
