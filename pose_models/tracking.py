"""Infants followed across video frames: detections matched to tracks by box overlap and
keypoint similarity, one assignment per frame (Hungarian, ``scipy.optimize.linear_sum_assignment``).

Why: keypoint videos need one keypoint series per infant; per-frame detections come unordered.
The similarity of a track and a detection is the mean of their boxes' IoU and, when both have
keypoints, their OKS (COCO's keypoint similarity, the track's box area as scale): IoU alone
confuses two infants lying side by side, OKS alone fails when a pose model misses a limb.
Pairs below ``min_similarity`` are not matched; unmatched detections start new tracks; a track
unseen for ``max_age`` frames ends (ids are never reused). Between detections a video carries
each track's box from its last keypoints (:func:`box_from_keypoints`, :meth:`Tracker.carry`):
the detector need not run on every frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from syrip_gen.coco import SIGMAS


@dataclass(frozen=True)
class TrackerConfig:
    min_similarity: float = field(default=0.2, metadata={"min": 0.0, "max": 1.0})
    max_age: int = field(default=15, metadata={"min": 0})  # frames a track survives unseen
    oks_weight: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})  # the rest is IoU


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``(N, M)`` of boxes ``a (N, 4)`` and ``b (M, 4)`` given as x, y, w, h."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    union = a[:, None, 2:].prod(-1) + b[None, :, 2:].prod(-1) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def oks(a: np.ndarray, b: np.ndarray, area: np.ndarray) -> np.ndarray:
    """COCO object keypoint similarity ``(N, M)`` of keypoints ``a (N, 17, 2)`` against ``b
    (M, 17, 2)`` at object areas ``area (N,)`` (pixels²), every keypoint counted."""
    d2 = ((np.asarray(a, np.float64)[:, None] - np.asarray(b, np.float64)[None]) ** 2).sum(-1)  # (N, M, 17)
    var = (2 * SIGMAS) ** 2
    e = d2 / (var[None, None] * 2 * (np.asarray(area, np.float64)[:, None, None] + np.spacing(1)))
    return np.exp(-e).mean(-1)


def box_from_keypoints(xy: np.ndarray, score: np.ndarray, frame_wh: tuple[int, int], pad: float = 0.15,
                       rel_score: float = 0.5) -> np.ndarray:
    """Box ``(4,)`` x, y, w, h around one infant's keypoints ``xy (17, 2)``: the points scoring at
    least ``rel_score`` of the best (all when fewer than 4), grown by ``pad`` of its size on each
    side (keypoints lie inside the body's outline: the head's top and the feet reach beyond them),
    at least 8 px a side, clipped to the frame."""
    xy, score = np.asarray(xy, np.float64), np.asarray(score, np.float64)
    keep = score >= rel_score * score.max() if score.size and score.max() > 0 else np.ones(len(xy), bool)
    if keep.sum() < 4:
        keep = np.ones(len(xy), bool)
    lo, hi = xy[keep].min(0), xy[keep].max(0)
    size = np.maximum(hi - lo, 1.0)
    lo, hi = lo - pad * size, hi + pad * size
    c, size = (lo + hi) / 2, np.maximum(hi - lo, 8.0)
    w, h = frame_wh
    lo = np.clip(c - size / 2, 0, [w - 1, h - 1])
    hi = np.clip(c + size / 2, lo + 1, [w, h])
    return np.r_[lo, hi - lo]


@dataclass
class Track:
    id: int
    box: np.ndarray  # (4,) last matched box
    keypoints: np.ndarray | None  # (17, 2) last matched keypoints
    last_frame: int
    det_box: np.ndarray | None = None  # (4,) box at its last detection (a carried box may have drifted)


class Tracker:
    """Online tracker: :meth:`update` once per frame with that frame's detections."""

    def __init__(self, cfg: TrackerConfig = TrackerConfig()):
        self.cfg = cfg
        self.tracks: list[Track] = []
        self.next_id = 0

    def similarity(self, boxes: np.ndarray, keypoints: np.ndarray | None) -> np.ndarray:
        """``(T, N)`` similarity of the live tracks to ``N`` detections."""
        if not self.tracks or len(boxes) == 0:
            return np.zeros((len(self.tracks), len(boxes)))
        tb = np.stack([t.box for t in self.tracks])
        sim = box_iou(tb, boxes)
        db = np.stack([t.box if t.det_box is None else t.det_box for t in self.tracks])
        sim = np.maximum(sim, box_iou(db, boxes))  # a carried box that drifted still matches its detection
        if keypoints is not None and all(t.keypoints is not None for t in self.tracks) and self.cfg.oks_weight:
            area = tb[:, 2] * tb[:, 3]
            sim = (1 - self.cfg.oks_weight) * sim + self.cfg.oks_weight * oks(
                np.stack([t.keypoints for t in self.tracks]), keypoints, area)
        return sim

    def update(self, frame: int, boxes: np.ndarray, keypoints: np.ndarray | None = None) -> list[int]:
        """Track ids of the detections ``boxes (N, 4)`` (x, y, w, h) with ``keypoints (N, 17, 2)``
        seen at ``frame``, in their order."""
        from scipy.optimize import linear_sum_assignment

        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        ids = [-1] * len(boxes)
        sim = self.similarity(boxes, keypoints)
        if sim.size:
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols):
                if sim[r, c] >= self.cfg.min_similarity:
                    t = self.tracks[r]
                    t.box, t.det_box, t.last_frame = boxes[c], boxes[c], frame
                    t.keypoints = None if keypoints is None else np.asarray(keypoints[c], np.float64)
                    ids[c] = t.id
        for c in range(len(boxes)):
            if ids[c] < 0:
                t = Track(self.next_id, boxes[c], None if keypoints is None else np.asarray(keypoints[c], np.float64),
                          frame, boxes[c])
                self.next_id += 1
                self.tracks.append(t)
                ids[c] = t.id
        self.tracks = [t for t in self.tracks if frame - t.last_frame <= self.cfg.max_age]
        return ids

    def carry(self, frame: int, ids: list[int], boxes: np.ndarray, keypoints: np.ndarray) -> None:
        """Tracks ``ids`` seen at ``frame`` in ``boxes (N, 4)`` with ``keypoints (N, 17, 2)``, known
        without matching (their boxes were carried from their own last keypoints)."""
        by_id = {t.id: t for t in self.tracks}
        for tid, box, kp in zip(ids, np.asarray(boxes, np.float64).reshape(-1, 4), keypoints):
            t = by_id[tid]
            t.box, t.keypoints, t.last_frame = box, np.asarray(kp, np.float64), frame
