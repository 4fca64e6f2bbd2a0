"""Video files through OpenCV: frames in, MP4 out (atomic), and keypoint overlays.

Why: clips are written as frames plus an MP4 preview, and ``predict`` reads MP4/AVI and writes
an overlay MP4; both go through the same few calls. MP4s use the ``mp4v`` codec, which every
OpenCV build with FFmpeg writes and reads back. :class:`FrameReader` decodes in a thread of its
own (a bounded queue) and goes on past damaged frames, counting them (a damaged frame must not
end a video silently); :class:`Mp4Writer` streams frames to an MP4 that appears only when closed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from syrip_gen.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v")
MIN_SIDE = 16  # pixels: a smaller frame holds no infant a model can see (and mp4v cannot write it)


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


def check_video(path: str | Path) -> tuple[float, int, int, int]:
    """:func:`video_info` plus the checks to make before any work: a frame of at least
    ``MIN_SIDE`` pixels each way; one-line UserError otherwise."""
    fps, n, w, h = video_info(path)
    if w < MIN_SIDE or h < MIN_SIDE:
        raise UserError(f"{path}: frames of {w}x{h} pixels are too small to hold an infant (at least "
                        f"{MIN_SIDE}x{MIN_SIDE})")
    return fps, n, w, h


class FrameReader:
    """``(index, frame)`` of a video in order, decoded in a background thread (``prefetch``
    frames ahead). A frame OpenCV cannot decode is skipped and its index kept in ``damaged``
    (the reading goes on to the container's frame count: a damaged stretch does not cut the
    video short); indices stay the container's, so times stay right."""

    def __init__(self, path: str | Path, max_frames: int | None = None, prefetch: int = 16, thread: bool = True):
        self.path, self.max_frames, self.prefetch, self.thread = Path(path), max_frames, max(1, prefetch), thread
        self.damaged: list[int] = []
        self.frames_read = 0

    def _frames(self) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise UserError(f"{self.path}: not a video OpenCV can read")
        try:
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            i = 0
            while self.max_frames is None or i < self.max_frames:
                ok, frame = cap.read()
                if not ok or frame is None:
                    if i >= count:  # past the stated count (or none stated): the end
                        break
                    self.damaged.append(i)
                else:
                    self.frames_read += 1
                    yield i, frame
                i += 1
        finally:
            cap.release()

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        import queue
        import threading

        if not self.thread:
            yield from self._frames()
            return
        q: queue.Queue = queue.Queue(self.prefetch)
        stop = threading.Event()
        end = object()

        def work():
            try:
                for item in self._frames():
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            pass
                    if stop.is_set():
                        return
                q.put(end)
            except BaseException as err:  # handed to the consumer
                q.put(err)

        t = threading.Thread(target=work, name=f"read {self.path.name}", daemon=True)
        t.start()
        try:
            while True:
                item = q.get()
                if item is end:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            t.join()


class Mp4Writer:
    """Frames streamed to an MP4 (``mp4v``) through a temporary file renamed into place by
    :meth:`close`; :meth:`discard` drops it. Opened at once (``size`` known), so a place or size
    mp4v cannot write is a one-line UserError before any work."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        import cv2

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.{id(self)}.tmp.mp4")  # suffix: container
        self.frames = 0
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), tuple(size))
        if not self.writer.isOpened():
            self.tmp.unlink(missing_ok=True)
            raise UserError(f"{self.path}: OpenCV cannot write an MP4 (mp4v) of {size[0]}x{size[1]} here")

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> int:
        self.writer.release()
        os.replace(self.tmp, self.path)
        return self.frames

    def discard(self) -> None:
        self.writer.release()
        self.tmp.unlink(missing_ok=True)


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
