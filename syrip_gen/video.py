"""Video files through OpenCV: frames in, MP4 out (atomic), and keypoint overlays.

Why: clips are written as frames plus an MP4 preview, and ``predict`` reads MP4/AVI and writes
an overlay MP4; both go through the same few calls. MP4s use the ``mp4v`` codec, which every
OpenCV build with FFmpeg writes and reads back.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from syrip_gen.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v")


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def video_info(path: str | Path) -> tuple[float, int, int, int]:
    """``(fps, frames, width, height)`` as the container states them (frames may be 0: unknown);
    one-line UserError when OpenCV cannot open the file."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise UserError(f"{path}: not a video OpenCV can read")
        return (float(cap.get(cv2.CAP_PROP_FPS) or 0.0), int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
                int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()


def read_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """BGR frames ``(H, W, 3) uint8`` of a video, in order."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise UserError(f"{path}: not a video OpenCV can read")
    try:
        n = 0
        while max_frames is None or n < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            yield frame
    finally:
        cap.release()


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Write BGR frames (all one size) to an MP4 (``mp4v``) through a temporary file renamed
    into place: a reader never sees half a video. Returns the number of frames written."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")  # the suffix picks the container
    writer, n = None, 0
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
                if not writer.isOpened():
                    raise UserError(f"{path}: OpenCV cannot write MP4 (mp4v) here")
            writer.write(np.ascontiguousarray(frame))
            n += 1
    finally:
        if writer is not None:
            writer.release()
    if n:
        os.replace(tmp, path)
    else:
        tmp.unlink(missing_ok=True)
    return n


def draw_pose(img: np.ndarray, kp: np.ndarray, colour=(0, 255, 0), label: str | None = None,
              box: np.ndarray | None = None, min_score: float = 0.0) -> np.ndarray:
    """``img`` with one infant's skeleton drawn (``kp (17, 3)`` x, y, v-or-score; points at or
    below ``min_score`` left out), its box ``(x, y, w, h)`` and a label (e.g. the track id)."""
    import cv2

    from syrip_gen.coco import SKELETON

    out = img.copy()
    th = max(1, int(round(max(img.shape[:2]) / 320)))
    ok = kp[:, 2] > min_score
    for a, b in SKELETON:
        if ok[a - 1] and ok[b - 1]:
            cv2.line(out, tuple(int(round(v)) for v in kp[a - 1, :2]), tuple(int(round(v)) for v in kp[b - 1, :2]),
                     colour, th, cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(out, (int(round(kp[j, 0])), int(round(kp[j, 1]))), 2 * th, (0, 0, 255) if j % 2 else (255, 0, 0),
                   -1, cv2.LINE_AA)
    if box is not None:
        x, y, w, h = (int(round(v)) for v in box)
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, th)
        if label:
            cv2.putText(out, label, (x, max(10, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * th, colour, th)
    return out


# distinct BGR colours for track ids
TRACK_COLOURS = [(0, 255, 0), (255, 128, 0), (0, 128, 255), (255, 0, 255), (0, 255, 255), (255, 255, 0)]
