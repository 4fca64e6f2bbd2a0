"""Video in, smoothed keypoints out: detect every infant per frame, 2D pose top-down on each box,
track infants across frames, smooth each track in time, write per-frame JSON + CSV and an
overlay MP4 (what DeepLabCut's ``analyze_videos``/``filterpredictions``/``create_labeled_video``
give animal researchers).

Why not ``detect_boxes``: that reads one box per image file; a video frame may hold several
infants, so the detector's centre heatmap is read for every local peak (3x3 max) above
``min_box_score`` (at most ``max_infants``, overlapping boxes suppressed), the best peak kept
even below the score (``keep_best``: a video given here is taken to show at least one infant).
Frames are decoded once and cropped in memory with the same affine crops the models trained on
(``pose_models.data``).

Records: one per frame and tracked infant: frame, time (s), track id, box, box score, raw and
smoothed keypoints (x, y, score in image pixels).
"""
from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pose_models.smoothing import OneEuro, OneEuroConfig
from pose_models.tracking import Tracker, TrackerConfig, box_iou
from syrip_gen.coco import KEYPOINT_NAMES, atomic_write_bytes, atomic_write_json
from syrip_gen.errors import UserError


@dataclass(frozen=True)
class VideoConfig:
    max_infants: int = field(default=3, metadata={"min": 1})
    min_box_score: float = field(default=0.3, metadata={"min": 0.0, "max": 1.0})
    keep_best: bool = True  # the best box of a frame is kept even below min_box_score
    nms_iou: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    flip: bool = True  # flip test for the 2D model
    smooth: bool = True
    smoothing: OneEuroConfig = field(default_factory=OneEuroConfig)
    tracking: TrackerConfig = field(default_factory=TrackerConfig)
    batch_frames: int = field(default=8, metadata={"min": 1})
    max_frames: int | None = field(default=None, metadata={"min": 1})
    overlay: bool = True


@dataclass
class FrameRecord:
    frame: int
    time_s: float
    track_id: int
    box: list[float]  # x, y, w, h
    box_score: float
    keypoints_raw: list[list[float]]  # 17 x (x, y, score)
    keypoints: list[list[float]]  # 17 x (x, y, score), smoothed in time (= raw when smoothing is off)


def _detector_input(frame: np.ndarray, size: int) -> tuple[torch.Tensor, np.ndarray]:
    from pose_models.data import crop_affine, to_tensor

    h, w = frame.shape[:2]
    m = crop_affine(np.array([w / 2 - 0.5, h / 2 - 0.5]), np.array([max(w, h)] * 2, np.float64), (size, size))
    return to_tensor(cv2.warpAffine(frame, m[:2], (size, size), flags=cv2.INTER_LINEAR)), np.linalg.inv(m)


@torch.no_grad()
def detect_infants(model, frames: list[np.ndarray], device, cfg: VideoConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame: boxes ``(N, 4)`` x, y, w, h in frame pixels and scores ``(N,)``, best first."""
    size = model.cfg.input_size
    xs, invs = zip(*(_detector_input(f, size) for f in frames))
    out, _ = model(torch.stack(xs).to(device))
    out = out.float().cpu()
    heat = torch.sigmoid(out[:, 0])
    peaks = heat == F.max_pool2d(heat[:, None], 3, 1, 1)[:, 0]
    b, h, w = heat.shape
    res = []
    for i in range(b):
        score = (heat[i] * peaks[i]).reshape(-1)
        top = torch.topk(score, min(len(score), 4 * cfg.max_infants))
        cand = [(float(s), int(k)) for s, k in zip(top.values, top.indices)]
        boxes, scores = [], []
        for s, k in cand:
            if boxes and s < cfg.min_box_score:
                break
            if not boxes and s < cfg.min_box_score and not cfg.keep_best:
                break
            f = out[i, :, k // w, k % w]
            cx, cy = (k % w + float(f[3])) * 4 + 1.5, (k // w + float(f[4])) * 4 + 1.5
            bw, bh = max(float(f[1]), 0.0) * w * 4, max(float(f[2]), 0.0) * h * 4
            inv = invs[i]
            lo = inv[:2, :2] @ np.array([cx - bw / 2, cy - bh / 2]) + inv[:2, 2]
            box = np.r_[lo, bw * inv[0, 0], bh * inv[1, 1]]
            if box[2] < 2 or box[3] < 2:
                continue
            if boxes and box_iou(box[None], np.stack(boxes)).max() > cfg.nms_iou:
                continue
            boxes.append(box)
            scores.append(s)
            if len(boxes) == cfg.max_infants:
                break
        res.append((np.array(boxes).reshape(-1, 4), np.array(scores)))
    return res


@torch.no_grad()
def pose_on_boxes(model, frame: np.ndarray, boxes: np.ndarray, device, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Top-down 2D pose on each box of one frame: keypoints ``(N, 17, 2)`` frame pixels, scores ``(N, 17)``."""
    from pose_models.config import Augment
    from pose_models.data import crop_affine, fix_aspect, to_tensor

    if len(boxes) == 0:
        return np.zeros((0, 17, 2)), np.zeros((0, 17))
    h, w = model.cfg.input_h, model.cfg.input_w
    crops, invs = [], []
    for box in boxes:
        c, s = fix_aspect(box, w / h, Augment().margin)
        m = crop_affine(c, s, (w, h))
        crops.append(to_tensor(cv2.warpAffine(frame, m[:2], (w, h), flags=cv2.INTER_LINEAR)))
        invs.append(np.linalg.inv(m))
    xy, sc = model.predict_keypoints(torch.stack(crops).to(device), flip, "dark")
    xy = xy.float().cpu().double().numpy()
    inv = np.stack(invs)
    return np.einsum("nij,nkj->nki", inv[:, :2, :2], xy) + inv[:, None, :2, 2], sc.float().cpu().numpy()


def predict_video(video: str | Path, detector, pose2d, cfg: VideoConfig = VideoConfig(), device="cpu",
                  log=print) -> tuple[list[FrameRecord], dict]:
    """Records of every frame and tracked infant, and the video's facts (fps, frames, size)."""
    from tqdm import tqdm

    from syrip_gen.video import read_frames, video_info

    fps, n_frames, width, height = video_info(video)
    fps = fps if fps > 0 else 30.0
    tracker = Tracker(cfg.tracking)
    filters: dict[int, OneEuro] = {}
    records: list[FrameRecord] = []
    batch: list[np.ndarray] = []
    frame_no = 0

    def flush():
        nonlocal frame_no
        for frame, (boxes, scores) in zip(batch, detect_infants(detector, batch, device, cfg)):
            xy, kp_sc = pose_on_boxes(pose2d, frame, boxes, device, cfg.flip)
            ids = tracker.update(frame_no, boxes, xy if len(xy) else None)
            t = frame_no / fps
            for k, tid in enumerate(ids):
                raw = np.c_[xy[k], kp_sc[k]]
                smooth = raw
                if cfg.smooth:
                    f = filters.setdefault(tid, OneEuro(cfg.smoothing))
                    smooth = np.c_[f(xy[k], t, kp_sc[k] > cfg.smoothing.min_score), kp_sc[k]]
                records.append(FrameRecord(frame_no, round(t, 6), int(tid), [round(float(v), 3) for v in boxes[k]],
                                           round(float(scores[k]), 4), np.round(raw, 3).tolist(),
                                           np.round(smooth, 3).tolist()))
            frame_no += 1
        batch.clear()

    total = min(n_frames, cfg.max_frames) if cfg.max_frames and n_frames else (cfg.max_frames or n_frames or None)
    for frame in tqdm(read_frames(video, cfg.max_frames), total=total, unit="frame", desc=f"predict {Path(video).name}",
                      leave=False):
        batch.append(frame)
        if len(batch) == cfg.batch_frames:
            flush()
    if batch:
        flush()
    if frame_no == 0:
        raise UserError(f"{video}: no frames could be read")
    return records, {"video": str(video), "fps": fps, "frames": frame_no, "width": width, "height": height}


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


def write_overlay(video: str | Path, records: list[FrameRecord], out: str | Path, fps: float,
                  max_frames: int | None = None) -> int:
    """The video with each tracked infant's smoothed skeleton, box and track id drawn (MP4)."""
    from syrip_gen.video import TRACK_COLOURS, draw_pose, read_frames, write_mp4

    by_frame: dict[int, list[FrameRecord]] = {}
    for r in records:
        by_frame.setdefault(r.frame, []).append(r)

    def frames():
        for i, frame in enumerate(read_frames(video, max_frames)):
            for r in by_frame.get(i, []):
                frame = draw_pose(frame, np.asarray(r.keypoints), TRACK_COLOURS[r.track_id % len(TRACK_COLOURS)],
                                  f"infant {r.track_id}", np.asarray(r.box))
            yield frame

    return write_mp4(out, frames(), fps)


def run_videos(videos: list[Path], detector: str | Path, pose2d: str | Path, out: str | Path,
               cfg: VideoConfig = VideoConfig(), device: str = "auto", log=print) -> list[dict]:
    """Predict on each video; writes ``<out>.json``/``.csv``/``_overlay.mp4`` when ``out`` ends in
    ``.json`` (one video), else ``out/<video stem>.json``/``.csv``/``_overlay.mp4``."""
    from pose_models.checkpoint import load_model
    from pose_models.device import resolve_device

    out = Path(out)
    single = out.suffix.lower() == ".json"
    if single and len(videos) > 1:
        raise UserError(f"--out {out}: {len(videos)} videos need a folder, not a .json file")
    dev = resolve_device(device)
    det, _ = load_model(detector, expect="detector", device=dev)
    pose, _ = load_model(pose2d, expect="pose2d", device=dev)
    done = []
    for v in videos:
        stem = out.with_suffix("") if single else out / Path(v).stem
        records, info = predict_video(v, det, pose, cfg, dev, log)
        paths = {"json": str(stem) + ".json", "csv": str(stem) + ".csv"}
        if cfg.overlay:
            paths["overlay"] = str(stem) + "_overlay.mp4"
            write_overlay(v, records, paths["overlay"], info["fps"], cfg.max_frames)
        tracks = sorted({r.track_id for r in records})
        atomic_write_json(paths["json"], {**info, "detector": str(detector), "pose2d": str(pose2d),
                                          "config": asdict(cfg), "tracks": tracks,
                                          "keypoint_names": KEYPOINT_NAMES, "records": [asdict(r) for r in records]})
        write_records_csv(paths["csv"], records)
        done.append({**info, "records": len(records), "tracks": len(tracks), **paths})
    return done
