"""Video in, smoothed keypoints out: detect the infants, 2D pose top-down on each box, track infants
across frames, smooth each track in time, write per-frame JSON + CSV, an overlay MP4, a
skeleton-only MP4 and per-track movement summaries (what DeepLabCut's
``analyze_videos``/``filterpredictions``/``create_labeled_video`` give animal researchers).

Why it is fast enough for real time on two CPU cores: the detector runs every ``detect_every``
frames only (and on a frame where a track is lost or none is alive); in between each track's box
is carried from its own last keypoints (``tracking.box_from_keypoints``), a track counting as
lost when its mean keypoint score falls below ``lost_score`` of its score when last detected.
The crops of all infants of a frame go through the 2D model in one forward, without flip test
by default (it doubles the 2D work for little gain on video), under ``torch.inference_mode``
(float32, or bfloat16 autocast where measured faster). Frames are decoded in a thread of their
own and drawn and encoded in another (bounded queues), so decoding, the models and encoding
overlap; the models get the CPU cores less one (``inference_threads``): on two cores one runs
the models and the other decodes and encodes, which measured far faster than two OpenMP threads
per layer (those wait on each other whenever the other core is busy).

Why not ``detect_boxes``: that reads one box per image file; a video frame may hold several
infants, so the detector's centre heatmap is read for every local peak (3x3 max) scoring at
least ``min_box_score`` (at most ``max_infants``, overlapping boxes suppressed, boxes under
``min_box_side`` of the frame's shorter side dropped). A frame with no such peak has no infant:
nothing is made up, and the count of such frames is reported.

Records: one per frame and tracked infant: frame, time (s), track id, box, box score, raw and
smoothed keypoints (x, y, score in image pixels).
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pose_models.smoothing import OneEuro, OneEuroConfig
from pose_models.tracking import Tracker, TrackerConfig, box_from_keypoints, box_iou
from syrip_gen.atomic import atomic_write_bytes, atomic_write_json
from syrip_gen.coco import KEYPOINT_NAMES
from syrip_gen.errors import UserError

PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class VideoConfig:
    max_infants: int = field(default=3, metadata={"min": 1})
    min_box_score: float = field(default=0.3, metadata={"min": 0.0, "max": 1.0})
    min_box_side: float = field(default=0.04, metadata={"min": 0.0, "max": 1.0})  # of the frame's shorter side
    nms_iou: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    detect_every: int = field(default=5, metadata={"min": 1})  # 1: the detector on every frame
    lost_score: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    flip: bool = False  # flip test for the 2D model
    precision: str = field(default="float32", metadata={"choices": PRECISIONS})
    batch_crops: bool = True  # all infants of a frame in one 2D forward (off: one each; for comparison)
    threads: bool = True  # decode and encode in threads of their own (off: all in turn; for comparison)
    inference_threads: int | None = field(default=None, metadata={"min": 1})  # None: the CPU cores less one
    smooth: bool = True
    smoothing: OneEuroConfig = field(default_factory=OneEuroConfig)
    tracking: TrackerConfig = field(default_factory=TrackerConfig)
    max_frames: int | None = field(default=None, metadata={"min": 1})
    overlay: bool = True
    skeleton_video: bool = True
    movement: bool = True


@dataclass
class FrameRecord:
    frame: int
    time_s: float
    track_id: int
    box: list[float]  # x, y, w, h
    box_score: float
    keypoints_raw: list[list[float]]  # 17 x (x, y, score)
    keypoints: list[list[float]]  # 17 x (x, y, score), smoothed in time (= raw when smoothing is off)


def _autocast(precision: str, device) -> contextlib.AbstractContextManager:
    if precision == "bfloat16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to_tensor(crops: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3) uint8`` BGR -> ``(N, 3, H, W) float32`` RGB, ImageNet-normalised (as ``data.to_tensor``)."""
    from pose_models.data import MEAN, STD

    x = torch.from_numpy(np.ascontiguousarray(crops[..., ::-1])).float().div_(255.0)
    x = (x - torch.as_tensor(MEAN, dtype=torch.float32)) / torch.as_tensor(STD, dtype=torch.float32)
    return x.permute(0, 3, 1, 2).contiguous()


def _detector_input(frame: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    from pose_models.data import crop_affine

    h, w = frame.shape[:2]
    m = crop_affine(np.array([w / 2 - 0.5, h / 2 - 0.5]), np.array([max(w, h)] * 2, np.float64), (size, size))
    return cv2.warpAffine(frame, m[:2], (size, size), flags=cv2.INTER_AREA if max(w, h) > 2 * size else
                          cv2.INTER_LINEAR), np.linalg.inv(m)


@torch.inference_mode()
def detect_infants(model, frames: list[np.ndarray], device, cfg: VideoConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame: boxes ``(N, 4)`` x, y, w, h in frame pixels and scores ``(N,)``, best first;
    only peaks scoring at least ``min_box_score`` and boxes of at least ``min_box_side``."""
    size = model.cfg.input_size
    crops, invs = zip(*(_detector_input(f, size) for f in frames))
    with _autocast(cfg.precision, device):
        out, _ = model(_to_tensor(np.stack(crops)).to(device))
    out = out.float().cpu()
    heat = torch.sigmoid(out[:, 0])
    peaks = heat == F.max_pool2d(heat[:, None], 3, 1, 1)[:, 0]
    b, h, w = heat.shape
    res = []
    for i in range(b):
        min_side = cfg.min_box_side * min(frames[i].shape[:2])
        score = (heat[i] * peaks[i]).reshape(-1)
        top = torch.topk(score, min(len(score), 4 * cfg.max_infants))
        boxes, scores = [], []
        for s, k in zip(top.values.tolist(), top.indices.tolist()):
            if s < cfg.min_box_score or s <= 0:
                break
            f = out[i, :, k // w, k % w]
            cx, cy = (k % w + float(f[3])) * 4 + 1.5, (k // w + float(f[4])) * 4 + 1.5
            bw, bh = max(float(f[1]), 0.0) * w * 4, max(float(f[2]), 0.0) * h * 4
            inv = invs[i]
            lo = inv[:2, :2] @ np.array([cx - bw / 2, cy - bh / 2]) + inv[:2, 2]
            box = np.r_[lo, bw * inv[0, 0], bh * inv[1, 1]]
            if box[2] < max(min_side, 2) or box[3] < max(min_side, 2):
                continue
            if boxes and box_iou(box[None], np.stack(boxes)).max() > cfg.nms_iou:
                continue
            boxes.append(box)
            scores.append(s)
            if len(boxes) == cfg.max_infants:
                break
        res.append((np.array(boxes).reshape(-1, 4), np.array(scores)))
    return res


@torch.inference_mode()
def pose_on_boxes(model, frame: np.ndarray, boxes: np.ndarray, device, flip: bool, precision: str = "float32",
                  batch: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Top-down 2D pose on each box of one frame, all crops in one forward: keypoints ``(N, 17, 2)``
    frame pixels, scores ``(N, 17)``."""
    from pose_models.config import Augment
    from pose_models.data import crop_affine, fix_aspect
    from pose_models.heatmaps import decode

    if len(boxes) == 0:
        return np.zeros((0, 17, 2)), np.zeros((0, 17))
    h, w = model.cfg.input_h, model.cfg.input_w
    crops, invs = [], []
    margin = Augment().margin
    for box in boxes:
        c, s = fix_aspect(box, w / h, margin)
        m = crop_affine(c, s, (w, h))
        crops.append(cv2.warpAffine(frame, m[:2], (w, h), flags=cv2.INTER_LINEAR))
        invs.append(np.linalg.inv(m))
    x = _to_tensor(np.stack(crops)).to(device)
    with _autocast(precision, device):
        heat = (model.predict_heatmaps(x, flip) if batch else
                torch.cat([model.predict_heatmaps(x[i:i + 1], flip) for i in range(len(x))]))
    xy, sc = decode(heat.float(), "dark")  # decoded in float32 whatever the forward ran in
    xy = (xy * 4 + 1.5).cpu().double().numpy()
    inv = np.stack(invs)
    return np.einsum("nij,nkj->nki", inv[:, :2, :2], xy) + inv[:, None, :2, 2], sc.float().cpu().numpy()


def _carried_box(xy: np.ndarray, score: np.ndarray, det_wh: np.ndarray, frame_wh: tuple[int, int]) -> np.ndarray:
    """The next frame's box of a track: around its keypoints, its size kept within 3/4 to 4/3 of
    the box last detected (a few poor keypoints must not shrink or blow up the crop)."""
    box = box_from_keypoints(xy, score, frame_wh)
    c = box[:2] + box[2:] / 2
    wh = np.clip(box[2:], 0.75 * det_wh, 4 / 3 * det_wh)
    return np.r_[c - wh / 2, wh]


class _Sink:
    """Calls ``fn(item)`` for each item in a thread of its own (a bounded queue): drawing and
    encoding overlap with the models. The first error is raised by :meth:`put` or :meth:`close`."""

    def __init__(self, fn: Callable, maxsize: int = 16, thread: bool = True):
        self.fn, self.q, self.err = fn, queue.Queue(maxsize), None
        self.t = threading.Thread(target=self._work, name="video writer", daemon=True) if thread else None
        if self.t:
            self.t.start()

    def _work(self):
        while (item := self.q.get()) is not None:
            if self.err is None:
                try:
                    self.fn(item)
                except BaseException as err:  # handed to the producer
                    self.err = err

    def put(self, item) -> None:
        if self.err is not None:
            raise self.err
        if self.t is None:
            self.fn(item)
        else:
            self.q.put(item)

    def close(self) -> None:
        if self.t is not None:
            self.q.put(None)
            self.t.join()
        if self.err is not None:
            raise self.err


def predict_video(video: str | Path, detector, pose2d, cfg: VideoConfig = VideoConfig(), device="cpu",
                  log=print, on_frame: Callable | None = None) -> tuple[list[FrameRecord], dict]:
    """Records of every frame and tracked infant, and the video's facts (fps, frames, size, damaged
    frames, frames without an infant, detector runs). ``on_frame(index, frame, records)`` is called
    for every frame read, in a writer thread (frames skipped as damaged are not passed)."""
    from tqdm import tqdm

    from syrip_gen.video import FrameReader, video_info

    fps, n_frames, width, height = video_info(video)
    fps = fps if fps > 0 else 30.0
    tracker = Tracker(cfg.tracking)
    filters: dict[int, OneEuro] = {}
    records: list[FrameRecord] = []
    # track id -> box for the next frame, box score, mean keypoint score and box size when last detected
    carried: dict[int, tuple[np.ndarray, float, float, np.ndarray]] = {}
    need_detect, last_detect = True, -10 ** 9
    empty, detections = 0, 0
    reader = FrameReader(video, cfg.max_frames, thread=cfg.threads)
    sink = _Sink(lambda item: on_frame(*item), thread=cfg.threads) if on_frame else None
    total = min(n_frames, cfg.max_frames) if cfg.max_frames and n_frames else (cfg.max_frames or n_frames or None)
    threads_before, t_loop, c_loop = torch.get_num_threads(), time.perf_counter(), time.process_time()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(cfg.inference_threads or max(1, (os.cpu_count() or 2) - 1))
    try:
        for idx, frame in tqdm(reader, total=total, unit="frame", desc=f"predict {Path(video).name}", leave=False):
            detect = need_detect or not carried or idx - last_detect >= cfg.detect_every
            while True:
                if detect:
                    boxes, scores = detect_infants(detector, [frame], device, cfg)[0]
                    detections += 1
                else:
                    tids = list(carried)
                    boxes = np.stack([carried[t][0] for t in tids])
                    scores = np.array([carried[t][1] for t in tids])
                xy, kp_sc = pose_on_boxes(pose2d, frame, boxes, device, cfg.flip, cfg.precision, cfg.batch_crops)
                mean_sc = kp_sc.mean(1) if len(kp_sc) else np.zeros(0)
                if detect or not any(mean_sc[k] < cfg.lost_score * carried[t][2] for k, t in enumerate(tids)):
                    break
                detect = True  # a carried track lost its infant: detect on this very frame
            if detect:
                ids = tracker.update(idx, boxes, xy if len(xy) else None)
                refs = {t: (float(mean_sc[k]), boxes[k][2:]) for k, t in enumerate(ids)}
                last_detect = idx
            else:
                ids = tids
                tracker.carry(idx, ids, boxes, xy)
                refs = {t: carried[t][2:] for t in ids}
            carried = {t: (_carried_box(xy[k], kp_sc[k], refs[t][1], (width, height)), float(scores[k]), *refs[t])
                       for k, t in enumerate(ids)}
            need_detect = not carried
            empty += not len(ids)
            t = idx / fps
            frame_recs = []
            for k, tid in enumerate(ids):
                raw = np.c_[xy[k], kp_sc[k]]
                smooth = raw
                if cfg.smooth:
                    f = filters.setdefault(tid, OneEuro(cfg.smoothing))
                    smooth = np.c_[f(xy[k], t, kp_sc[k] > cfg.smoothing.min_score), kp_sc[k]]
                frame_recs.append(FrameRecord(idx, round(t, 6), int(tid), [round(float(v), 3) for v in boxes[k]],
                                              round(float(scores[k]), 4), np.round(raw, 3).tolist(),
                                              np.round(smooth, 3).tolist()))
            records += frame_recs
            if sink:
                sink.put((idx, frame, frame_recs))
    finally:
        torch.set_num_threads(threads_before)
        if sink:
            sink.close()
    loop_s, loop_cpu = time.perf_counter() - t_loop, time.process_time() - c_loop
    if reader.frames_read == 0:
        raise UserError(f"{video}: no frames could be read (an empty or damaged video)")
    return records, {"video": str(video), "fps": fps, "frames": reader.frames_read, "width": width, "height": height,
                     "damaged_frames": len(reader.damaged), "damaged_frame_indices": reader.damaged[:100],
                     "frames_without_infant": empty, "detector_runs": detections, "seconds": round(loop_s, 3),
                     "frames_per_s": round(reader.frames_read / max(loop_s, 1e-9), 2),
                     "cpu_seconds": round(loop_cpu, 3)}  # this process's CPU time (all threads) in the loop


def write_records_csv(path: str | Path, records: list[FrameRecord]) -> None:
    """One row per frame and infant: frame, time, track, box, box score, then x, y, score of each
    keypoint (smoothed) and the raw x, y."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    kp_cols = [f"{n}_{c}" for n in KEYPOINT_NAMES for c in ("x", "y", "score")]
    raw_cols = [f"{n}_raw_{c}" for n in KEYPOINT_NAMES for c in ("x", "y")]
    w.writerow(["frame", "time_s", "track_id", "box_x", "box_y", "box_w", "box_h", "box_score"] + kp_cols + raw_cols)
    for r in records:
        w.writerow([r.frame, r.time_s, r.track_id, *r.box, r.box_score]
                   + [v for p in r.keypoints for v in p] + [v for p in r.keypoints_raw for v in p[:2]])
    atomic_write_bytes(path, buf.getvalue().encode())


class _VideoOutputs:
    """The overlay and skeleton-only MP4s of one video, written frame by frame (a frame lost as
    damaged is filled with the one before, so times stay right)."""

    def __init__(self, paths: dict, fps: float, size: tuple[int, int]):
        from syrip_gen.video import Mp4Writer

        self.size, self.writers, self.last = size, {}, {}
        try:
            for kind in ("overlay", "skeleton"):
                if kind in paths:
                    self.writers[kind] = Mp4Writer(paths[kind], fps, size)
        except BaseException:
            self.discard()
            raise
        self.next = 0

    def __call__(self, idx: int, frame: np.ndarray, recs: list[FrameRecord]) -> None:
        from syrip_gen.video import TRACK_COLOURS, draw_pose

        out = {}
        if "overlay" in self.writers:
            img = frame
            for r in recs:
                img = draw_pose(img, np.asarray(r.keypoints), TRACK_COLOURS[r.track_id % len(TRACK_COLOURS)],
                                f"infant {r.track_id}", np.asarray(r.box))
            out["overlay"] = img
        if "skeleton" in self.writers:
            img = np.zeros((self.size[1], self.size[0], 3), np.uint8)
            for r in recs:
                img = draw_pose(img, np.asarray(r.keypoints), TRACK_COLOURS[r.track_id % len(TRACK_COLOURS)],
                                f"infant {r.track_id}", None)
            out["skeleton"] = img
        for kind, img in out.items():
            for _ in range(self.next, idx):  # damaged frames: repeat the last one
                self.writers[kind].write(self.last.get(kind, np.zeros_like(img)))
            self.writers[kind].write(img)
            self.last[kind] = img
        self.next = idx + 1

    def close(self) -> None:
        for w in self.writers.values():
            w.close()

    def discard(self) -> None:
        for w in self.writers.values():
            w.discard()


def output_paths(stem: Path, cfg: VideoConfig) -> dict[str, str]:
    """Every file predict writes for one video, by kind (``stem`` + ``.json``, ``.csv``,
    ``_overlay.mp4``, ``_skeleton.mp4``, ``_movement.json``, ``_movement.png``)."""
    paths = {"json": f"{stem}.json", "csv": f"{stem}.csv"}
    if cfg.overlay:
        paths["overlay"] = f"{stem}_overlay.mp4"
    if cfg.skeleton_video:
        paths["skeleton"] = f"{stem}_skeleton.mp4"
    if cfg.movement:
        paths["movement"] = f"{stem}_movement.json"
        paths["movement_plot"] = f"{stem}_movement.png"
    return paths


def _is_predict_result(path: Path) -> bool:
    """``path`` is a JSON that predict wrote for a video (its siblings are predict's too)."""
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and "records" in d and "keypoint_names" in d and "video" in d


def plan_outputs(videos: list[Path], out: Path, cfg: VideoConfig) -> list[dict[str, str]]:
    """Output paths per video, checked before any work: a place that can be written, no two
    videos writing the same files, no output that is an input, and no file the user did not name
    replaced (a file beside ``X.json`` is replaced only when ``X.json`` is predict's own result)."""
    from syrip_gen.runfolder import check_writable

    single = out.suffix.lower() == ".json"
    if single and len(videos) > 1:
        raise UserError(f"--out {out}: {len(videos)} videos need a folder, not a .json file")
    if not single and out.is_file():
        raise UserError(f"--out {out} is an existing file; give X.json (one video) or a folder")
    check_writable(out, folder=not single)
    plans, seen = [], {}
    inputs = {v.resolve(): v for v in videos}
    for v in videos:
        stem = out.with_suffix("") if single else out / v.stem
        if stem.resolve() in seen:
            raise UserError(f"{seen[stem.resolve()]} and {v} would both write {stem}.*: give them different "
                            "--out folders (or rename one)")
        seen[stem.resolve()] = v
        paths = output_paths(stem, cfg)
        for p in paths.values():
            if Path(p).resolve() in inputs:
                raise UserError(f"--out {out} would write {p}, which is the input video {inputs[Path(p).resolve()]}; "
                                "choose another --out")
        own = _is_predict_result(Path(paths["json"]))
        for kind, p in paths.items():
            if kind != "json" and Path(p).exists() and not own:
                raise UserError(f"--out {out} would replace {p}, which predict did not write; move it or choose "
                                "another --out")
        plans.append(paths)
    return plans


def run_videos(videos: list[Path], detector: str | Path, pose2d: str | Path, out: str | Path,
               cfg: VideoConfig = VideoConfig(), device: str = "auto", log=print,
               warn=lambda m: print(m, file=sys.stderr)) -> list[dict]:
    """Predict on each video; writes ``<out>.json``/``.csv``/``_overlay.mp4``/``_skeleton.mp4``/
    ``_movement.json``/``_movement.png`` when ``out`` ends in ``.json`` (one video), else the same
    per video as ``out/<video stem>...``. Inputs and outputs are checked before any work; a video
    with no infant or damaged frames is a one-line warning and counted in its summary."""
    from pose_models import movement
    from pose_models.checkpoint import load_model
    from pose_models.device import resolve_device
    from syrip_gen.video import check_video

    out = Path(out)
    videos = [Path(v) for v in videos]
    for v in videos:
        check_video(v)
    plans = plan_outputs(videos, out, cfg)
    dev = resolve_device(device)
    det, _ = load_model(detector, expect="detector", device=dev)
    pose, _ = load_model(pose2d, expect="pose2d", device=dev)
    done = []
    for v, paths in zip(videos, plans):
        fps, _, w, h = check_video(v)
        writers = _VideoOutputs(paths, fps if fps > 0 else 30.0, (w, h))
        try:
            records, info = predict_video(v, det, pose, cfg, dev, log, writers if writers.writers else None)
        except BaseException:
            writers.discard()
            raise
        writers.close()
        tracks = sorted({r.track_id for r in records})
        rec_dicts = [asdict(r) for r in records]
        if cfg.movement:  # made before anything is written: a failure here leaves no partial results
            summary, png = movement.summarise(rec_dicts, info), movement.plot(rec_dicts)
        write_records_csv(paths["csv"], records)
        if cfg.movement:
            atomic_write_json(paths["movement"], summary)
            atomic_write_bytes(paths["movement_plot"], png)
        atomic_write_json(paths["json"], {**info, "detector": str(detector), "pose2d": str(pose2d),
                                          "config": asdict(cfg), "tracks": tracks, "outputs": paths,
                                          "keypoint_names": KEYPOINT_NAMES, "records": rec_dicts})
        if not records:
            warn(f"warning: {v}: no infant found in any of its {info['frames']} frames (detector score below "
                 f"--min-box-score {cfg.min_box_score}); the results hold no records")
        elif info["frames_without_infant"]:
            warn(f"warning: {v}: no infant found in {info['frames_without_infant']} of {info['frames']} frames")
        if info["damaged_frames"]:
            warn(f"warning: {v}: {info['damaged_frames']} damaged frames could not be decoded and were skipped "
                 f"(first: frame {info['damaged_frame_indices'][0]}); the others were read")
        done.append({**{k: val for k, val in info.items() if k != "damaged_frame_indices"},
                     "records": len(records), "tracks": len(tracks), **paths})
    return done
