"""Person-free background photos cut from the user's own annotated images.

Why: renders on procedural floors teach a from-scratch model little that carries over to
photos; the user's real photos show exactly the rooms, mats and blankets their test images
have. Each annotated person is removed: the largest person-free crop with the render's
aspect ratio is kept when it is big enough, otherwise each person box is refilled with the
photo around it, mirrored (real floor texture; never a second, unlabelled infant).
Letterbox bands are cut off first (a band warped onto a floor shows as a black corner);
crops with burnt-in caption text or logos are dropped (text mirrored on a floor is what no
photo shows); each kept crop's perspective ("floor" seen from above or "room" seen from the
side, :func:`syrip_gen.render.looks.photo_stats.perspective`) is recorded in the index, so that
top views get floors and low views rooms (:func:`syrip_gen.render.looks.background.backgrounds_for_view`).
The output is an ordinary background folder for ``render --backgrounds`` (and its photo
supports); it holds pieces of the user's images, so it stays with their data (e.g. under
``runs/``), never in a repository.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from syrip_gen.atomic import atomic_write_image, atomic_write_json, read_image
from syrip_gen.coco import load_coco
from syrip_gen.config import check_ranges, from_mapping
from syrip_gen.errors import UserError
from syrip_gen.runfolder import FOREIGN_OK, claim, record

INDEX = "backgrounds.json"


@dataclass(frozen=True)
class BackgroundsConfig:
    # width / height of the crops (the render size's aspect)
    aspect: float = field(default=4 / 3, metadata={"min": 0.05, "max": 20.0})
    # each person box grows by this fraction of its size per side
    margin: float = field(default=0.2, metadata={"min": 0.0})
    # smallest person-free crop kept, as a fraction of the image
    min_crop_area: float = field(default=0.2, metadata={"min": 0.0, "max": 1.0})
    # photos whose grown person boxes cover more than this are skipped
    max_masked: float = field(default=0.6, metadata={"min": 0.0, "max": 1.0})
    max_side: int = field(default=1024, metadata={"min": 16})  # output images are shrunk to at most this many pixels
    grid: int = field(default=48, metadata={"min": 1})  # resolution of the person mask the crop search runs on
    jpeg_quality: int = field(default=92, metadata={"min": 1, "max": 100})
    drop_text: bool = True  # drop crops with caption text or logos (photo_stats.text_boxes)

    def __post_init__(self):
        check_ranges(self, "backgrounds config")

    @classmethod
    def from_dict(cls, d: dict | None) -> "BackgroundsConfig":
        """From a YAML mapping; unknown keys, wrong types and values out of range are a one-line UserError."""
        return from_mapping(cls, d, "backgrounds config")


def grown_boxes(shape_hw: tuple[int, int], boxes: list[np.ndarray], margin: float) -> list[tuple[int, int, int, int]]:
    """Boxes ``[x, y, w, h]`` grown by ``margin`` of their size per side, as clipped pixel
    ranges ``(x0, y0, x1, y1)`` (exclusive ends)."""
    h, w = shape_hw
    out = []
    for x, y, bw, bh in boxes:
        x0, y0 = int(np.floor(x - margin * bw)), int(np.floor(y - margin * bh))
        x1, y1 = int(np.ceil(x + bw * (1 + margin))), int(np.ceil(y + bh * (1 + margin)))
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1, y1))
    return out


def person_mask(shape_hw: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """``(H, W) bool``: True inside any pixel box ``(x0, y0, x1, y1)``."""
    mask = np.zeros(shape_hw, bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def largest_free_crop(mask: np.ndarray, aspect: float, grid: int = 48) -> tuple[int, int, int, int] | None:
    """Largest ``(x, y, w, h)`` crop of width/height ``aspect`` that touches no True pixel of
    ``mask`` ``(H, W) bool``, searched on a ``grid``-cell coarse mask (a coarse cell counts as
    occupied when any pixel in it is); None when every cell is occupied."""
    import cv2

    H, W = mask.shape
    gh, gw = (grid, max(1, round(grid * W / H))) if H <= W else (max(1, round(grid * H / W)), grid)
    # INTER_AREA averages the fine pixels of each cell: > 0 means "any pixel occupied"
    coarse = cv2.resize(mask.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA) > 0
    integral = np.pad(coarse.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    cell_w, cell_h = W / gw, H / gh
    for ch in range(gh, 0, -1):  # largest height first; width follows from the aspect
        cw = int(np.floor(ch * cell_h * aspect / cell_w))
        if cw < 1 or cw > gw:
            continue
        sums = (integral[ch:, cw:] - integral[:-ch, cw:] - integral[ch:, :-cw] + integral[:-ch, :-cw])
        free = np.argwhere(sums == 0)
        if len(free):
            y, x = free[len(free) // 2]  # the middle candidate: away from the image border
            x0, y0 = int(np.ceil(x * cell_w)), int(np.ceil(y * cell_h))  # stay inside the free cells
            x1, y1 = int(np.floor((x + cw) * cell_w)), int(np.floor((y + ch) * cell_h))
            return x0, y0, x1 - x0, y1 - y0
    return None


def _fold(i: np.ndarray, n: int) -> np.ndarray:
    """Indices ``i >= 0`` folded back and forth into ``[0, n)`` (mirror tiling)."""
    i = np.mod(i, 2 * n)
    return np.where(i >= n, 2 * n - 1 - i, i)


def _mirror_fill_axis(img: np.ndarray, lo: int, hi: int, axis: int) -> np.ndarray | None:
    """The span ``[lo, hi)`` along ``axis`` (1 = columns, 0 = rows) refilled with the image
    beyond each of its edges, mirrored, the two halves cross-faded in the middle; None when
    neither side has free pixels. Returns the refilled span only."""
    n = img.shape[axis]
    before, after = lo, n - hi
    if before == 0 and after == 0:
        return None
    x = np.arange(lo, hi)
    from_before = lo - 1 - _fold(x - lo, before) if before else None
    from_after = hi + _fold(hi - 1 - x, after) if after else None
    take = lambda src: np.take(img, src, axis=axis).astype(np.float32)  # noqa: E731
    if from_before is None or from_after is None:
        return take(from_before if from_before is not None else from_after)
    mid, ramp = (lo + hi) / 2, max(2.0, (hi - lo) / 6)
    w = np.clip(0.5 - (x - mid) / (2 * ramp), 0, 1)  # 1 near lo, 0 near hi
    shape = [1, 1, 1]
    shape[axis] = len(x)
    w = w.reshape(shape)
    return w * take(from_before) + (1 - w) * take(from_after)


def fill_people(img: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """``img`` ``(H, W, 3) uint8`` with each box ``(x0, y0, x1, y1)`` (pixels, exclusive ends)
    replaced by the image around it, mirrored across the box's edges along the axis with more
    room (real carpet and floor texture, unlike inpainting's smears)."""
    out = img.copy()
    H, W = img.shape[:2]
    for x0, y0, x1, y1 in boxes:
        room_x, room_y = (x0 + W - x1) / max(1, x1 - x0), (y0 + H - y1) / max(1, y1 - y0)
        along_x, along_y = (out[y0:y1], x0, x1, 1), (out[:, x0:x1], y0, y1, 0)
        for args in ((along_x, along_y) if room_x >= room_y else (along_y, along_x)):
            span = _mirror_fill_axis(*args)
            if span is not None:
                out[y0:y1, x0:x1] = np.clip(span, 0, 255).astype(np.uint8)
                break
    return out


@dataclass
class PersonFree:
    """What became of one photo: ``image`` ``(h, w, 3) uint8`` (None when ``kind`` is
    "skipped"), how (``kind``: "crop" | "filled" | "skipped"), the crop ``(x, y, w, h)`` if
    one, and the share of the photo the grown person boxes cover."""

    image: np.ndarray | None
    kind: str
    masked_fraction: float
    crop: tuple[int, int, int, int] | None = None
    bands: tuple[int, int, int, int] = (0, 0, 0, 0)  # letterbox cut off first: top, bottom, left, right

    def record(self) -> dict:
        rec = {"kind": self.kind, "masked_fraction": self.masked_fraction}
        if any(self.bands):
            rec["bands"] = list(self.bands)
        return {**rec, "crop": list(self.crop)} if self.crop else rec


@dataclass
class BackgroundsSummary:
    source: str
    n_backgrounds: int
    kinds: dict[str, int]                                   # "crop" | "filled" -> count
    skipped: dict[str, int] = field(default_factory=dict)   # reason -> count
    config: dict = field(default_factory=dict)
    perspectives: dict[str, int] = field(default_factory=dict)  # "floor" | "room" -> count


def person_free_background(img: np.ndarray, boxes: list[np.ndarray], cfg: BackgroundsConfig) -> PersonFree:
    """One background from one photo: letterbox bands cut off, then the largest person-free
    crop if it covers at least ``min_crop_area`` of the image, else the whole photo with the
    people filled in from their surroundings (:func:`fill_people`); None when the people cover
    more than ``max_masked`` of it (too little floor left to fill them in with)."""
    from syrip_gen.render.looks.photo_stats import letterbox_bands

    b = letterbox_bands(img)
    band = (b.top, b.bottom, b.left, b.right)
    if any(band):  # boxes move with the cut
        img = img[b.top:img.shape[0] - b.bottom, b.left:img.shape[1] - b.right]
        boxes = [np.asarray(bx, np.float64) - np.array([b.left, b.top, 0, 0]) for bx in boxes]
    H, W = img.shape[:2]
    pixel_boxes = grown_boxes((H, W), boxes, cfg.margin)
    mask = person_mask((H, W), pixel_boxes)
    masked = round(float(mask.mean()), 3)
    if masked > cfg.max_masked:
        return PersonFree(None, "skipped", masked, bands=band)
    crop = largest_free_crop(mask, cfg.aspect, cfg.grid)
    if crop is not None and crop[2] * crop[3] >= cfg.min_crop_area * H * W:
        x, y, w, h = crop
        return PersonFree(img[y:y + h, x:x + w], "crop", masked, crop, band)
    return PersonFree(fill_people(img, pixel_boxes), "filled", masked, bands=band)


def extract_backgrounds(dataset: str | Path, out_dir: str | Path,
                        cfg: BackgroundsConfig = BackgroundsConfig()) -> BackgroundsSummary:
    """Write one person-free JPEG per image of the COCO ``dataset`` into ``out_dir`` (atomically)
    and an index (``backgrounds.json``). Unreadable photos, and photos the people fill, are
    skipped and counted by reason. ``out_dir`` must be new, empty or an earlier backgrounds run
    (:func:`syrip_gen.runfolder.claim`): a run from another input or settings is replaced (it is
    quick to remake: ~20 photos/s), a folder this command did not make is refused."""
    from syrip_gen.runfolder import check_writable, locked

    out = Path(out_dir)
    check_writable(out)
    kf = load_coco(dataset)
    key = backgrounds_key(kf.path, cfg)
    _claim(out, key)  # before any work
    with locked(out, "backgrounds"):
        _replace(out, _claim(out, key))
        record(out, key, "backgrounds", config=asdict(cfg))
        return _extract(kf, dataset, out, cfg)


def backgrounds_key(coco_path: Path, cfg: BackgroundsConfig) -> str:
    """Hash of the annotation file's content and the settings (not of the photos: they are
    named by it)."""
    import hashlib

    h = hashlib.sha256(Path(coco_path).read_bytes())
    h.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    return h.hexdigest()[:20]


def _claim(out: Path, key: str) -> str | None:
    return claim(out, key, True, "backgrounds", made_before_keys=_made_before_keys)


def _made_before_keys(out: Path) -> bool:
    """A folder written by this command before its runs were keyed: our index, and nothing but
    the files it lists (and temporary files of ours)."""
    index = _index_files(out)
    return index is not None and all(p.name in index or p.name in FOREIGN_OK or p.name.endswith(".tmp")
                                     for p in out.iterdir())


def _index_files(out: Path) -> set[str] | None:
    """The index and the files it lists, or None when ``out`` holds no index of ours."""
    try:
        items = json.loads((out / INDEX).read_text())["items"]
        names = {INDEX} | {item["file"] for item in items}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {n for n in names if isinstance(n, str) and n == Path(n).name}  # names in this folder only


def _replace(out: Path, other: str | None) -> None:
    """Remove the files of ``other``, an earlier backgrounds run in ``out`` (its index says which)."""
    if other is not None:
        for name in sorted(_index_files(out) or ()):
            (out / name).unlink(missing_ok=True)


def _extract(kf, dataset, out: Path, cfg: BackgroundsConfig) -> BackgroundsSummary:
    """``extract_backgrounds``' work, in a folder it holds and has claimed."""
    import cv2

    from syrip_gen.render.looks.photo_stats import PERSPECTIVES, perspective, text_boxes

    boxes: dict[int, list[np.ndarray]] = {}
    for ann in kf.annotations:
        box = np.asarray(ann.get("bbox") or [0, 0, 0, 0], np.float64)
        kps = np.asarray(ann.get("keypoints") or [], np.float64).reshape(-1, 3)
        lab = kps[kps[:, 2] > 0, :2] if len(kps) else np.zeros((0, 2))
        if len(lab):  # keypoints may reach outside the annotated box: cover both
            lo = np.minimum(lab.min(0), box[:2]) if box[2] > 0 else lab.min(0)
            hi = np.maximum(lab.max(0), box[:2] + box[2:]) if box[2] > 0 else lab.max(0)
            box = np.r_[lo, hi - lo]
        boxes.setdefault(ann["image_id"], []).append(box)
    image_dir = kf.image_dir()
    items, skipped = [], {}
    for image_id, rec in tqdm(sorted(kf.images.items()), desc="backgrounds", mininterval=2):
        img = read_image(image_dir / rec.get("file_name", ""), skipped=skipped, why="image unreadable or missing")
        if img is None:
            continue
        result = person_free_background(img, boxes.get(image_id, []), cfg)
        bg = result.image
        if bg is None:
            why = f"people cover more than {cfg.max_masked:.0%} of the photo"
            skipped[why] = skipped.get(why, 0) + 1
            continue
        if cfg.drop_text and text_boxes(_at_most(bg, 640)):
            why = "caption text or logo in the crop"
            skipped[why] = skipped.get(why, 0) + 1
            continue
        s = min(1.0, cfg.max_side / max(bg.shape[:2]))
        if s < 1.0:
            bg = cv2.resize(bg, (round(bg.shape[1] * s), round(bg.shape[0] * s)), interpolation=cv2.INTER_AREA)
        name = f"bg_{image_id:08d}.jpg"
        atomic_write_image(out / name, bg, (cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality))
        items.append({"file": name, "image_id": image_id, **result.record(), **perspective(bg).record()})
    if not items:
        raise UserError(f"{dataset}: no usable images to take backgrounds from (skipped: {skipped})")
    kinds = {k: sum(i["kind"] == k for i in items) for k in ("crop", "filled")}
    seen = {k: sum(i["perspective"] == k for i in items) for k in PERSPECTIVES}
    summary = BackgroundsSummary(str(dataset), len(items), kinds, skipped, asdict(cfg), seen)
    atomic_write_json(out / INDEX, {**asdict(summary), "items": items})
    return summary


def _at_most(img: np.ndarray, side: int) -> np.ndarray:
    """``img`` shrunk so its longer side is at most ``side`` (text is searched at ~render scale)."""
    import cv2

    s = side / max(img.shape[:2])
    return img if s >= 1 else cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
