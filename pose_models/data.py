"""Data: COCO records -> cached crops -> augmented tensors for the detector, the 2D model and the lifter.

Images are decoded once (cv2, reduced-resolution JPEG decoding when the crop needs fewer pixels) into a
small cached crop held in memory, so epochs never re-decode 2048x1536 JPEGs. Randomness: the batch
sampler hands each item a seed derived from (run seed, epoch, position), so augmentation is the same with
0 or 2 workers and a resumed run replays exactly.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from pose_models.config import Augment as AugmentConfig
from syrip_gen.atomic import read_image
from syrip_gen.coco import FLIP_INDEX, NUM_KEYPOINTS, image_posture, load_coco
from syrip_gen.errors import UserError

MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # ImageNet RGB statistics (torchvision weights expect them)
STD = np.array([0.229, 0.224, 0.225], np.float32)
UPPER = list(range(11))  # head, shoulders, arms: half-body augmentation groups
LOWER = list(range(11, 17))

cv2.setNumThreads(1)  # torch owns the cores; cv2's own pool only fights it on 2-core machines


@dataclass
class Record:
    """One annotated person: what every dataset needs, independent of the COCO layout."""

    image_path: Path
    image_id: int
    ann_id: int
    width: int
    height: int
    box: np.ndarray            # (4,) float64 x, y, w, h in image pixels
    keypoints: np.ndarray      # (17, 3) float64 x, y, v
    is_synthetic: bool
    posture: str | None
    kp3d: np.ndarray | None    # (17, 3) float64 metres, camera coordinates, or None
    source: int = 0            # index of the data source it came from


@dataclass
class Loaded:
    records: list[Record]
    skipped: Counter = field(default_factory=Counter)  # reason -> count


def load_records(path: str | Path, source: int = 0, need_image: bool = True) -> Loaded:
    """Read a COCO keypoint file (JSON or dataset dir). Annotations that can't be used are skipped and
    counted by reason: wrong keypoint length, no labelled keypoints, missing image record or file."""
    kf = load_coco(path)
    image_dir = kf.image_dir()
    out = Loaded([])
    for ann in kf.annotations:
        if ann.get("iscrowd", 0):
            out.skipped["crowd annotation"] += 1
            continue
        img = kf.images.get(ann["image_id"])
        if img is None:
            out.skipped["annotation refers to a missing image record"] += 1
            continue
        raw = ann.get("keypoints", [])
        if not isinstance(raw, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            out.skipped["keypoints not a list of numbers"] += 1
            continue
        kps = np.asarray(raw, np.float64)
        if kps.size != NUM_KEYPOINTS * 3:
            out.skipped[f"keypoints not 17x3 numbers ({kps.size})"] += 1
            continue
        kps = kps.reshape(NUM_KEYPOINTS, 3)
        lab = kps[:, 2] > 0
        if not lab.any() or not np.isfinite(kps[lab]).all():
            out.skipped["no usable labelled keypoints"] += 1
            continue
        ipath = image_dir / img.get("file_name", "")
        if need_image and not ipath.is_file():
            out.skipped["image file missing"] += 1
            continue
        box = np.asarray(ann.get("bbox") or [0, 0, 0, 0], np.float64)
        if box.size != 4 or box[2] <= 1 or box[3] <= 1 or not np.isfinite(box).all():
            xy = kps[lab, :2]
            box = np.r_[xy.min(0), xy.max(0) - xy.min(0)]
        kp3d = ann.get("keypoints_3d")
        kp3d = np.asarray(kp3d, np.float64) if kp3d is not None else None
        if kp3d is not None and kp3d.shape != (NUM_KEYPOINTS, 3):
            out.skipped["keypoints_3d not 17x3 (3D ignored)"] += 1
            kp3d = None
        out.records.append(Record(ipath, img["id"], ann.get("id", len(out.records)), int(img.get("width", 0)),
                                  int(img.get("height", 0)), box, kps, bool(img.get("is_synthetic", False)),
                                  image_posture(img), kp3d, source))
    return out


def report_skips(skipped: Counter, what: str) -> str:
    """One line naming every skip reason with its count ('' when nothing was skipped)."""
    if not skipped:
        return ""
    return f"{what}: skipped " + ", ".join(f"{n} ({r})" for r, n in sorted(skipped.items()))


# ---------------------------------------------------------------- geometry (3x3 homogeneous affines)

def crop_affine(center: np.ndarray, size_wh: np.ndarray, out_wh: tuple[int, int], rot_deg: float = 0.0,
                flip: bool = False) -> np.ndarray:
    """``(3, 3)`` matrix mapping image pixels to output pixels: the ``size_wh`` region around ``center``
    fills the ``out_wh`` output, rotated by ``rot_deg`` and mirrored about the output's centre line."""
    ow, oh = out_wh
    s = ow / size_wh[0]
    a = math.radians(rot_deg)
    c, sn = math.cos(a), math.sin(a)
    m = np.array([[s * c, -s * sn, 0], [s * sn, s * c, 0], [0, 0, 1.0]])
    m[:2, 2] = -m[:2, :2] @ center + [(ow - 1) / 2, (oh - 1) / 2]
    if flip:
        m = np.array([[-1, 0, ow - 1], [0, 1, 0], [0, 0, 1.0]]) @ m
    return m


def fix_aspect(box: np.ndarray, aspect_wh: float, margin: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """Box ``[x, y, w, h]`` -> centre ``(2,)`` and size ``(2,)`` grown to ``aspect_wh`` (w/h), times ``margin``."""
    x, y, w, h = box
    center = np.array([x + w / 2, y + h / 2])
    if w > aspect_wh * h:
        h = w / aspect_wh
    else:
        w = h * aspect_wh
    return center, np.array([w, h]) * margin


def apply_affine(m: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """m ``(3, 3)`` or ``(2, 3)``; xy ``(..., 2)`` -> ``(..., 2)``."""
    return xy @ m[:2, :2].T + m[:2, 2]


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``(H, W, 3) uint8`` BGR -> ``(3, H, W) float32`` RGB, ImageNet-normalised."""
    x = (img[:, :, ::-1].astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def colour_jitter(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation each scaled by a factor in ``[1 - strength, 1 + strength]``."""
    if strength <= 0:
        return img
    x = img.astype(np.float32)
    b, c, s = rng.uniform(1 - strength, 1 + strength, 3)
    x = x * b
    x = (x - x.mean()) * c + x.mean()
    grey = x.mean(-1, keepdims=True)
    x = (x - grey) * s + grey
    return np.clip(x, 0, 255).astype(np.uint8)


def read_cropped(path: Path, m_img_to_out: np.ndarray, out_wh: tuple[int, int]) -> np.ndarray | None:
    """Decode ``path`` (at 1/2, 1/4 or 1/8 resolution when the crop is that much smaller) and warp it
    with ``m_img_to_out`` ``(3, 3)`` into an ``(h, w, 3) uint8`` image; None if unreadable."""
    scale = math.sqrt(abs(np.linalg.det(m_img_to_out[:2, :2])))
    k = next((k for k in (8, 4, 2) if scale * k <= 0.9), 1)
    flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}[k]
    img = read_image(path, flag)
    if img is None:
        return None
    m = m_img_to_out @ np.diag([k, k, 1.0])  # reduced pixels -> full pixels -> output
    return cv2.warpAffine(img, m[:2], out_wh, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


# ---------------------------------------------------------------- 2D pose crops

class CropCache:
    """Decode each record's image once into a crop around its box, kept in memory.

    The cached region is the margin box grown by ``room`` (space for scale/rotation augmentation) at
    ``oversample`` x the model input resolution; later crops warp this small image, never the JPEG."""

    def __init__(self, records: list[Record], boxes: list[np.ndarray], input_hw: tuple[int, int],
                 margin: float, room: float, oversample: float = 2.0, desc: str = "decoding images"):
        h, w = input_hw
        self.crops: list[np.ndarray | None] = []
        self.mats: list[np.ndarray] = []  # image -> cached crop
        self.skipped: Counter = Counter()
        cw, ch = int(round(w * oversample)), int(round(h * oversample))
        for rec, box in tqdm(list(zip(records, boxes)), desc=desc, leave=False, mininterval=2):
            center, size = fix_aspect(box, w / h, margin * room)
            m = crop_affine(center, size, (cw, ch))
            if m[0, 0] > 1:  # never upsample in the cache: keep the region at its native resolution
                m = crop_affine(center, size, (max(1, int(size[0])), max(1, int(size[1]))))
            out_wh = (max(1, int(round(size[0] * m[0, 0]))), max(1, int(round(size[1] * m[0, 0]))))
            crop = read_cropped(rec.image_path, m, out_wh)
            if crop is None:
                self.skipped["image unreadable or corrupt"] += 1
            self.crops.append(crop)
            self.mats.append(m)


class Pose2DDataset(Dataset):
    """Top-down 2D samples. Items are keyed ``(index, seed)``; ``seed < 0`` means no augmentation.

    Returns a dict: ``image (3, H, W) float32``, ``target (17, H/4, W/4) float32``, ``weight (17,)``,
    ``domain ()`` (1 = synthetic), ``index ()`` long, ``inv (2, 3) float64`` (input px -> image px)."""

    def __init__(self, records: list[Record], input_hw: tuple[int, int], sigma: float = 2.0,
                 augment: AugmentConfig = AugmentConfig(), boxes: list[np.ndarray] | None = None):
        self.input_hw = input_hw
        self.sigma = sigma
        self.aug = augment
        boxes = boxes if boxes is not None else [r.box for r in records]
        room = (1 + augment.scale) * 1.2
        cache = CropCache(records, boxes, input_hw, augment.margin, room)
        keep = [i for i, c in enumerate(cache.crops) if c is not None]
        self.skipped = cache.skipped
        self.records = [records[i] for i in keep]
        self.boxes = [np.asarray(boxes[i], np.float64) for i in keep]
        self.crops = [cache.crops[i] for i in keep]
        self.mats = [cache.mats[i] for i in keep]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        from pose_models.heatmaps import gaussian_targets

        i, seed = key if isinstance(key, tuple) else (key, -1)
        rec = self.records[i]
        h, w = self.input_hw
        kps = rec.keypoints.copy()
        box = self.boxes[i]
        rot, sf, flip = 0.0, 1.0, False
        rng = np.random.default_rng(seed) if seed >= 0 else None
        if rng is not None:
            a = self.aug
            if rng.random() < a.half_body:
                box = _half_body_box(kps, rng, box)
            sf = float(np.clip(rng.normal(1, a.scale / 2), 1 - a.scale, 1 + a.scale))
            rot = float(np.clip(rng.normal(0, a.rotation / 2), -a.rotation, a.rotation)) if rng.random() < 0.6 else 0.0
            flip = bool(rng.random() < a.flip)
        center, size = fix_aspect(box, w / h, self.aug.margin)
        m = crop_affine(center, size * sf, (w, h), rot, flip)
        img = cv2.warpAffine(self.crops[i], (m @ np.linalg.inv(self.mats[i]))[:2], (w, h), flags=cv2.INTER_LINEAR)
        if rng is not None:
            img = colour_jitter(img, rng, self.aug.colour)
        hm = np.array([[0.25, 0, -0.375], [0, 0.25, -0.375], [0, 0, 1]]) @ m  # input px -> heatmap px
        xy = apply_affine(hm, kps[:, :2])
        vis = kps[:, 2].copy()
        if flip:
            xy, vis = xy[FLIP_INDEX], vis[FLIP_INDEX]
        target, weight = gaussian_targets(xy, vis, (h // 4, w // 4), self.sigma)
        return {"image": to_tensor(img), "target": torch.from_numpy(target), "weight": torch.from_numpy(weight),
                "domain": torch.tensor(float(rec.is_synthetic)), "index": torch.tensor(i),
                "inv": torch.from_numpy(np.linalg.inv(m)[:2])}


def _half_body_box(kps: np.ndarray, rng: np.random.Generator, box: np.ndarray) -> np.ndarray:
    """Box around the labelled upper- or lower-body joints (x1.5), or ``box`` if too few are labelled."""
    lab = kps[:, 2] > 0
    groups = [g for g in (UPPER, LOWER) if lab[g].sum() >= 3]
    if lab.sum() < 8 or not groups:
        return box
    g = groups[int(rng.integers(len(groups)))]
    xy = kps[g][lab[g], :2]
    lo, hi = xy.min(0), xy.max(0)
    c, s = (lo + hi) / 2, np.maximum(hi - lo, 4.0) * 1.5
    return np.r_[c - s / 2, s]


# ---------------------------------------------------------------- detector (whole image, letterboxed)

MAX_OBJECTS = 3  # infants per image the detector learns (renders hold 1-3, SyRIP 1)


class DetectionDataset(Dataset):
    """Whole images letterboxed to ``size x size``, every infant's box a target. Items keyed ``(index, seed)``.

    Returns ``image (3, S, S) float32``, ``center (1, S/4, S/4) float32`` (a Gaussian per box, peak exactly
    1 at each box centre cell), ``size (M, 2)`` (box w/h as fractions of the map), ``offset (M, 2)``, ``ind
    (M,)`` long, ``obj (M,) float32`` (1 for a real box, 0 for padding; M = MAX_OBJECTS), ``index ()``,
    ``inv (2, 3) float64`` (input px -> image px). ``records``: one per image (its first infant);
    ``boxes[i] (n, 4)``: all of image i's boxes (beyond MAX_OBJECTS: skipped, counted)."""

    def __init__(self, records: list[Record], size: int, augment: AugmentConfig = AugmentConfig()):
        self.size = size
        self.aug = augment
        self.records, self.images, self.mats, self.boxes = [], [], [], []
        self.skipped: Counter = Counter()
        by_image: dict[Path, list[Record]] = {}
        for rec in records:
            by_image.setdefault(rec.image_path, []).append(rec)
        for path, recs in tqdm(by_image.items(), desc="decoding images", leave=False, mininterval=2):
            rec = recs[0]
            if len(recs) > MAX_OBJECTS:
                self.skipped[f"infant beyond the {MAX_OBJECTS} per image the detector learns"] += len(recs) - MAX_OBJECTS
            wh = np.array([rec.width, rec.height], np.float64)
            if wh.min() <= 0:
                probe = read_image(rec.image_path, cv2.IMREAD_REDUCED_COLOR_8)
                wh = np.array(probe.shape[1::-1], np.float64) * 8 if probe is not None else wh
            m = crop_affine(wh / 2 - 0.5, np.array([wh.max(), wh.max()]), (size, size))
            img = read_cropped(rec.image_path, m, (size, size)) if wh.min() > 0 else None
            if img is None:
                self.skipped["image unreadable or corrupt"] += 1
                continue
            self.records.append(rec)
            self.images.append(img)
            self.mats.append(m)
            self.boxes.append(np.stack([r.box for r in recs[:MAX_OBJECTS]]))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        i, seed = key if isinstance(key, tuple) else (key, -1)
        s, hs = self.size, self.size // 4
        a = np.eye(3)
        img = self.images[i]
        rng = np.random.default_rng(seed) if seed >= 0 else None
        if rng is not None:
            sf = rng.uniform(1 - self.aug.scale, 1 + self.aug.scale)
            t = rng.uniform(-0.1, 0.1, 2) * s
            a = crop_affine(np.array([(s - 1) / 2, (s - 1) / 2]) - t, np.array([s / sf, s / sf]), (s, s),
                            0.0, bool(rng.random() < self.aug.flip))
            img = colour_jitter(cv2.warpAffine(img, a[:2], (s, s), flags=cv2.INTER_LINEAR), rng, self.aug.colour)
        m = a @ self.mats[i]
        yy, xx = np.mgrid[0:hs, 0:hs]
        center = np.zeros((hs, hs), np.float32)
        size = np.zeros((MAX_OBJECTS, 2), np.float32)
        offset = np.zeros((MAX_OBJECTS, 2), np.float32)
        ind = np.zeros(MAX_OBJECTS, np.int64)
        obj = np.zeros(MAX_OBJECTS, np.float32)
        for k, (x, y, w, h) in enumerate(self.boxes[i]):
            corners = apply_affine(m, np.array([[x, y], [x + w, y + h]]))
            lo, hi = corners.min(0).clip(0, s - 1), corners.max(0).clip(0, s - 1)
            c = ((lo + hi) / 2 - 1.5) / 4
            cell = np.clip(np.floor(c + 0.5), 0, hs - 1)
            bw, bh = (hi - lo) / 4
            sigma = max(0.8, math.sqrt(max(bw * bh, 1.0)) / 6)
            g = np.exp(-((xx - cell[0]) ** 2 + (yy - cell[1]) ** 2) / (2 * sigma ** 2)).astype(np.float32)
            center = np.maximum(center, g)
            size[k], offset[k] = (bw / hs, bh / hs), c - cell
            ind[k], obj[k] = int(cell[1] * hs + cell[0]), 1.0
        return {"image": to_tensor(img), "center": torch.from_numpy(center[None]),
                "size": torch.from_numpy(size), "offset": torch.from_numpy(offset),
                "ind": torch.from_numpy(ind), "obj": torch.from_numpy(obj), "index": torch.tensor(i),
                "inv": torch.from_numpy(np.linalg.inv(m)[:2])}


# ---------------------------------------------------------------- lifter (3D keypoints, random cameras)

class LiftingDataset(Dataset):
    """2D/3D pairs from ``keypoints_3d``. Training items (seed >= 0) re-project the body through a random
    camera (lifter.random_view); evaluation items (seed < 0) use the annotated 2D keypoints as they are.

    Returns ``kp2d (17, 2) float32`` (normalised), ``kp3d (17, 3) float32`` (pelvis-relative metres),
    ``index ()``."""

    def __init__(self, records: list[Record]):
        self.records = [r for r in records if r.kp3d is not None and np.isfinite(r.kp3d).all()]
        self.skipped = Counter({"no keypoints_3d": len(records) - len(self.records)} if len(records) > len(self.records)
                               else {})

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        from pose_models.lifter import normalise_2d, pelvis_relative, random_view

        i, seed = key if isinstance(key, tuple) else (key, -1)
        rec = self.records[i]
        if seed >= 0:
            uv, rel = random_view(rec.kp3d, np.random.default_rng(seed))
            vis = np.ones(NUM_KEYPOINTS)
        else:
            uv, vis, rel = rec.keypoints[:, :2], rec.keypoints[:, 2], pelvis_relative(rec.kp3d)
        return {"kp2d": torch.from_numpy(normalise_2d(uv, vis)), "kp3d": torch.from_numpy(rel.astype(np.float32)),
                "index": torch.tensor(i)}


# ---------------------------------------------------------------- sampling

class SeededBatches:
    """Batch sampler over one or several sources mixed by weight; yields lists of ``(index, aug_seed)``.

    Epoch ``e`` is fully determined by ``(seed, e)``; ``start_step`` skips the batches a resumed run
    already trained on, so resuming replays exactly. With one source (or ``weights`` None) an epoch is a
    permutation; with several, each draw picks a source by weight, then an item uniformly."""

    def __init__(self, sources: list[list[int]], weights: list[float] | None, batch_size: int, seed: int,
                 start_step: int = 0, shuffle: bool = True, epoch_size: int | None = None):
        self.sources = [s for s in sources]
        self.weights = None if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
        self.batch_size = batch_size
        self.seed = seed
        self.start_step = start_step
        self.shuffle = shuffle
        n = sum(len(s) for s in sources)
        self.epoch_size = epoch_size or n
        if n == 0:
            raise UserError("no usable training samples (see the skip counts above)")

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.epoch_size // self.batch_size) if self.shuffle else math.ceil(self.epoch_size / self.batch_size)

    def epoch_items(self, epoch: int) -> list[int]:
        allidx = [i for s in self.sources for i in s]
        if not self.shuffle:
            return allidx
        rng = np.random.default_rng([self.seed, epoch])
        if self.weights is None or len(self.sources) == 1:
            perm = rng.permutation(len(allidx))
            reps = math.ceil(self.epoch_size / len(allidx))
            return [allidx[p] for p in np.tile(perm, reps)[: self.epoch_size]]
        live = [k for k, s in enumerate(self.sources) if s]
        w = self.weights[live] / self.weights[live].sum()
        pick = rng.choice(len(live), size=self.epoch_size, p=w)
        return [self.sources[live[k]][int(rng.integers(len(self.sources[live[k]])))] for k in pick]

    def __iter__(self):
        step = self.start_step
        while True:
            epoch, b = divmod(step, self.steps_per_epoch)
            items = self.epoch_items(epoch)
            base = np.random.SeedSequence([self.seed, epoch, 7]).generate_state(1)[0]
            batch = items[b * self.batch_size:(b + 1) * self.batch_size]
            pos = b * self.batch_size
            yield [(i, (int(base) + pos + k) % (2 ** 31) if self.shuffle else -1) for k, i in enumerate(batch)]
            step += 1
            if not self.shuffle and step >= self.steps_per_epoch:
                return

    def __len__(self) -> int:
        return self.steps_per_epoch
