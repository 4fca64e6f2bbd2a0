"""Backgrounds behind the scene and textures of the surface the infant lies on.

Backgrounds: a user folder of photos (:class:`BackgroundFolder`, random crop + resize to the
output size) or, by default, procedural ones (:func:`procedural_background`: gradients,
room-like wall + floor, blurred shapes, fabric-like noise). Support textures
(:func:`support_texture`: mattress, blanket, rug, wooden floor) are procedural too. All
randomness comes from the ``np.random.Generator`` passed in (same seed, same bytes); all
images are ``(H, W, 3) uint8`` RGB.
"""
from __future__ import annotations

import colorsys
import logging
from pathlib import Path

import numpy as np

from syrip_gen.errors import UserError
from syrip_gen.render.looks.image_folder import ImageFolder

log = logging.getLogger(__name__)


BACKGROUND_KINDS = ("gradient", "room", "shapes", "fabric", "studio")
# what each procedural kind looks like from where (see :func:`perspectives_for_view`)
PROCEDURAL_PERSPECTIVE = {"gradient": "any", "room": "room", "shapes": "room", "fabric": "floor", "studio": "any"}
# a camera looking down more steeply than this sees a floor behind the infant, one flatter
# than LOW_VIEW_DEG a room; in between either fits
TOP_VIEW_DEG, LOW_VIEW_DEG = 50.0, 30.0
SUPPORT_TILE_M = {"mattress": 0.6, "blanket": 0.5, "rug": 1.0, "floor": 1.2}  # suggested Support.tile


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.float32(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))) * 255


def _room_colour(rng: np.random.Generator) -> np.ndarray:
    """Muted interior colour ``(3,) float32`` (walls, sheets, furniture)."""
    return _hsv(rng.uniform(), rng.uniform(0.03, 0.35), rng.uniform(0.35, 0.95))


def _noise(rng: np.random.Generator, h: int, w: int, cells: int, anisotropy: float = 1.0,
           periodic: bool = False) -> np.ndarray:
    """Smooth noise ``(h, w) float32`` around [-1, 1]; ``anisotropy`` > 1 stretches it along x.
    ``periodic``: it wraps around at the edges (for textures that repeat on a support)."""
    import cv2

    gh, gw = max(2, cells), max(2, int(cells / anisotropy))
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    if not periodic:
        return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    big = cv2.resize(np.tile(grid, (3, 3)), (3 * w, 3 * h), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[h:2 * h, w:2 * w])


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0, 255).astype(np.uint8)


def procedural_background(width: int, height: int, rng: np.random.Generator,
                          kind: str | None = None) -> tuple[np.ndarray, dict]:
    """A background ``(height, width, 3) uint8`` and its description ``{"kind", ...}``.

    ``kind``: one of ``BACKGROUND_KINDS`` or None (sampled).
    """
    import cv2

    kind = kind or str(rng.choice(BACKGROUND_KINDS))
    if kind not in BACKGROUND_KINDS:
        raise UserError(f"unknown background kind {kind!r}; choose from {', '.join(BACKGROUND_KINDS)}")
    h, w = height, width
    if kind == "gradient":
        a, b = _room_colour(rng), _room_colour(rng)
        angle = rng.uniform(0, 2 * np.pi)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (x / w - 0.5) * np.cos(angle) + (y / h - 0.5) * np.sin(angle) + 0.5
        t = np.clip(t, 0, 1)[..., None]
        img = a * (1 - t) + b * t
    elif kind == "room":
        wall, floor = _room_colour(rng), _room_colour(rng) * rng.uniform(0.6, 1.0)
        horizon = int(h * rng.uniform(0.3, 0.7))
        img = np.empty((h, w, 3), np.float32)
        img[:horizon] = wall
        img[horizon:] = floor
        board = max(2, int(h * rng.uniform(0.01, 0.04)))
        img[max(0, horizon - board):horizon] = _room_colour(rng)
        # a window or picture: a lighter rectangle on the wall
        if rng.uniform() < 0.6 and horizon > 20:
            x0, y0 = int(rng.uniform(0, 0.7) * w), int(rng.uniform(0.05, 0.4) * horizon)
            x1, y1 = x0 + int(rng.uniform(0.1, 0.3) * w), min(horizon - 2, y0 + int(rng.uniform(0.2, 0.5) * horizon))
            cv2.rectangle(img, (x0, y0), (x1, y1), tuple(float(c) for c in np.minimum(wall * 1.3 + 30, 255)), -1)
        # soft light falloff
        img *= (1.0 + 0.15 * _noise(rng, h, w, 3))[..., None]
    elif kind == "shapes":
        img = np.empty((h, w, 3), np.float32)
        img[:] = _room_colour(rng)
        for _ in range(int(rng.integers(4, 14))):
            c = tuple(float(x) for x in _room_colour(rng))
            centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            if rng.uniform() < 0.5:
                axes = (int(rng.uniform(0.05, 0.4) * w), int(rng.uniform(0.05, 0.4) * h))
                cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, c, -1)
            else:
                size = (int(rng.uniform(0.05, 0.4) * w), int(rng.uniform(0.05, 0.4) * h))
                cv2.rectangle(img, centre, (centre[0] + size[0], centre[1] + size[1]), c, -1)
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(2, 0.03 * max(w, h) + 2)))
    elif kind == "studio":  # a seamless white backdrop: stock photos on white
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.4, 0.8) * h
        r2 = ((x - cx) / w) ** 2 + ((y - cy) / h) ** 2
        level = rng.uniform(225, 252)
        img = np.repeat((level - rng.uniform(5, 30) * r2)[..., None], 3, axis=2)  # soft vignette
        img *= np.float32(1.0 + rng.uniform(-0.02, 0.02, 3))  # a faint colour cast
    else:  # fabric
        base = _room_colour(rng)
        img = base * (1.0 + 0.12 * _noise(rng, h, w, 6))[..., None]
        img *= (1.0 + 0.06 * _noise(rng, h, w, max(h, w) // 4))[..., None]
        if rng.uniform() < 0.5:  # folds: long soft bands
            folds = _noise(rng, h, w, 4, anisotropy=4.0)
            img *= (1.0 + 0.1 * np.sin(folds * 4))[..., None]
    return _to_u8(img), {"kind": kind}


def perspectives_for_view(elevation_deg: float, top_deg: float = TOP_VIEW_DEG,
                          low_deg: float = LOW_VIEW_DEG) -> tuple[str, ...]:
    """Background perspectives that fit a camera looking down ``elevation_deg``: a top view
    sees floor behind the infant ("floor"), a low view sees a room ("room"), in between
    either. A background of perspective "any" (a studio backdrop) fits every view."""
    if elevation_deg >= top_deg:
        return ("floor",)
    if elevation_deg <= low_deg:
        return ("room",)
    return ("floor", "room")


def backgrounds_for_view(elevation_deg: float, perspectives: dict[str, str], top_deg: float = TOP_VIEW_DEG,
                         low_deg: float = LOW_VIEW_DEG) -> list[str]:
    """The names in ``perspectives`` (name -> "floor" | "room" | "any", e.g. a background
    folder's index, or :data:`PROCEDURAL_PERSPECTIVE`) whose perspective fits a camera
    looking down ``elevation_deg`` (:func:`perspectives_for_view`), sorted; empty when none does."""
    fits = set(perspectives_for_view(elevation_deg, top_deg, low_deg)) | {"any"}
    return sorted(name for name, kind in perspectives.items() if kind in fits)


def procedural_kind_for_view(elevation_deg: float, rng: np.random.Generator, studio_share: float = 0.11) -> str:
    """A procedural background kind that fits the view: a studio backdrop with chance
    ``studio_share`` (11 % of SyRIP train200's photos are on white, see
    benchmarks/results/realism_scene.md), else one of the kinds whose perspective fits."""
    if rng.uniform() < studio_share:
        return "studio"
    names = [k for k in backgrounds_for_view(elevation_deg, PROCEDURAL_PERSPECTIVE) if k != "studio"]
    return str(rng.choice(names))


class BackgroundFolder(ImageFolder):
    """User photos used as backgrounds: letterbox bands cut off, then a random crop (25-100% of
    the largest crop with the output's aspect) resized to the output size.

    Each file's perspective ("floor" | "room") comes from the folder's ``backgrounds.json``
    (written by ``syrip-gen backgrounds``) or, for other folders, is measured on first use
    (:func:`syrip_gen.render.looks.photo_stats.perspective`). Unreadable files are skipped, warned
    about once and counted (see ImageFolder).
    """

    def __init__(self, path: str | Path):
        super().__init__(path, "background")
        self.perspective: dict[str, str] = {}
        try:
            import json

            items = json.loads((self.path / "backgrounds.json").read_text())["items"]
            self.perspective = {i["file"]: i["perspective"] for i in items if "perspective" in i}
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def _measured(self) -> dict[str, str]:
        """Every file's perspective, measured once for files the index does not cover (a folder
        made by ``syrip-gen backgrounds`` has them all in its index; others are read once here)."""
        from syrip_gen.atomic import read_image
        from syrip_gen.render.looks.photo_stats import perspective

        for p in self.files:
            if p.name not in self.perspective and p.name not in self.unreadable:
                img = read_image(p)
                if img is None:
                    log.warning("background %s unreadable; skipped", p)
                    self.unreadable[p.name] = 1
                    continue
                self.perspective[p.name] = perspective(img).kind
        return self.perspective

    def sample(self, width: int, height: int, rng: np.random.Generator,
               perspectives: tuple[str, ...] | None = None) -> tuple[np.ndarray, dict] | tuple[None, dict]:
        """``(height, width, 3) uint8`` crop and ``{"kind": "file", "file", "crop": [x, y, w, h],
        "perspective"}``. ``perspectives`` (e.g. ``("floor",)``, see :func:`perspectives_for_view`):
        only files seen that way; ``(None, {"kind": "none fits", ...})`` when no file is."""
        import cv2

        subset = None
        if perspectives is not None:
            kinds = self._measured()
            subset = [i for i, p in enumerate(self.files) if kinds.get(p.name) in perspectives]
            if not subset:
                return None, {"kind": "none fits", "perspectives": list(perspectives)}
        from syrip_gen.render.looks.photo_stats import crop_bands

        path, img = self.read_random(rng, subset)
        img = crop_bands(img)  # a letterbox band warped onto a support is a black corner
        H, W = img.shape[:2]
        aspect = width / height
        cw, ch = (W, int(round(W / aspect))) if W / H < aspect else (int(round(H * aspect)), H)
        s = float(np.sqrt(rng.uniform(0.25, 1.0)))
        cw, ch = max(1, int(cw * s)), max(1, int(ch * s))
        x0, y0 = int(rng.integers(0, W - cw + 1)), int(rng.integers(0, H - ch + 1))
        crop = img[y0:y0 + ch, x0:x0 + cw]
        interp = cv2.INTER_AREA if cw > width else cv2.INTER_LINEAR
        out = cv2.resize(crop, (width, height), interpolation=interp)[..., ::-1]
        if rng.uniform() < 0.5:
            out = out[:, ::-1]
        desc = {"kind": "file", "file": path.name, "crop": [x0, y0, cw, ch]}
        if path.name in self.perspective:
            desc["perspective"] = self.perspective[path.name]
        return np.ascontiguousarray(out), desc


def mirror_tiled(img: np.ndarray) -> np.ndarray:
    """``img (H, W, 3)`` beside and under its mirror images, ``(2H, 2W, 3)``: a tile that repeats
    without seams, so a photo laid on a support can reach past the frame's corners without
    a hard edge, a black corner or a stretched border (the plane is textured with wrapping)."""
    top = np.concatenate([img, img[:, ::-1]], axis=1)
    return np.ascontiguousarray(np.concatenate([top, top[::-1]], axis=0))


# ---- support surfaces --------------------------------------------------------------------------

def support_texture(kind: str, rng: np.random.Generator, size: int = 512) -> tuple[np.ndarray, dict]:
    """Texture ``(size, size, 3) uint8`` of a support surface ("mattress", "blanket", "rug",
    "floor") and its description (with ``tile_m``, a suggested ``Support.tile`` in metres:
    the texture is drawn to repeat seamlessly-enough at that period)."""
    import cv2

    s = size
    if kind == "mattress":
        base = _hsv(rng.uniform(), rng.uniform(0.0, 0.25), rng.uniform(0.8, 1.0))
        img = base * (1.0 + 0.03 * _noise(rng, s, s, 8, periodic=True))[..., None]
        style = str(rng.choice(["plain", "quilted", "piped"]))
        if style == "quilted":  # diamond stitching, slightly darker
            step = s // int(rng.integers(3, 7))
            for off in range(-s, 2 * s, step):
                cv2.line(img, (off, 0), (off + s, s), tuple(float(c) for c in base * 0.85), 2, cv2.LINE_AA)
                cv2.line(img, (off, s), (off + s, 0), tuple(float(c) for c in base * 0.85), 2, cv2.LINE_AA)
        elif style == "piped":
            step = s // int(rng.integers(4, 10))
            img[:, ::step] *= 0.9
        desc = {"kind": kind, "style": style}
    elif kind == "blanket":
        a, b = _hsv(rng.uniform(), rng.uniform(0.1, 0.6), rng.uniform(0.6, 1.0)), _room_colour(rng)
        style = str(rng.choice(["plain", "striped", "checked", "dotted"]))
        img = np.empty((s, s, 3), np.float32)
        img[:] = a
        n = int(rng.integers(3, 12))
        cell = s // n
        idx = np.arange(s) // max(1, cell // 2)
        if style == "striped":
            img[(idx % 2).astype(bool)] = b
        elif style == "checked":
            img[((idx[:, None] + idx[None, :]) % 2).astype(bool)] = b
        elif style == "dotted":
            for y in range(cell // 2, s, cell):
                for x in range(cell // 2, s, cell):
                    cv2.circle(img, (x, y), max(2, cell // 5), tuple(float(c) for c in b), -1, cv2.LINE_AA)
        img *= (1.0 + 0.05 * rng.standard_normal((s, s)).astype(np.float32)
                + 0.08 * _noise(rng, s, s, 5, periodic=True))[..., None]  # weave + soft folds
        desc = {"kind": kind, "style": style}
    elif kind == "rug":
        base = _room_colour(rng)
        img = base * (1.0 + 0.1 * _noise(rng, s, s, 16, periodic=True) + 0.12 * rng.standard_normal((s, s)).astype(np.float32))[..., None]
        img = cv2.GaussianBlur(img, (0, 0), 0.8)  # wool
        desc = {"kind": kind, "style": "wool"}
    elif kind == "floor":
        tone = _hsv(rng.uniform(0.05, 0.11), rng.uniform(0.3, 0.7), rng.uniform(0.35, 0.85))
        planks = int(rng.integers(4, 9))
        img = np.empty((s, s, 3), np.float32)
        width = s // planks
        for i in range(planks):
            x0, x1 = i * width, s if i == planks - 1 else (i + 1) * width
            img[:, x0:x1] = tone * rng.uniform(0.8, 1.15)
        grain = _noise(rng, s, s, 4, anisotropy=1 / 20, periodic=True)  # 4 cells along y, 80 across: long streaks along the planks
        img *= (1.0 + 0.08 * grain + 0.03 * rng.standard_normal((s, s)).astype(np.float32))[..., None]
        img[:, ::width] *= 0.55  # gaps between planks
        desc = {"kind": kind, "style": "planks", "planks": planks}
    else:
        raise UserError(f"unknown support kind {kind!r}; choose from mattress, blanket, rug, floor")
    desc["tile_m"] = SUPPORT_TILE_M[kind]
    return _to_u8(img), desc
