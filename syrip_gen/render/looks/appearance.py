"""Procedural body textures (skin tones and infant clothing) in the body's UV layout.

Nothing licence-restricted ships: every texture is painted from a seeded generator. Skin
tones span Fitzpatrick I-VI; clothing (diaper, onesie, sleepsuit, shirt + trousers, socks,
or none) comes in solid, striped, dotted or printed patterns. A user may instead give a
folder of texture images made for the body's UV layout (:class:`TextureFolder`).

Garments follow the body through its UV layout (:mod:`~syrip_gen.render.looks.uv`: the texel
raster and garment masks, made once per topology on its
:class:`~syrip_gen.render.looks.uv.TopologyMaps`); per sample only colours and patterns are
painted. Hair and the face's features are painted by :mod:`~syrip_gen.render.looks.face_hair`.

Texture image convention: row 0 = v 1 (the top of the UV square), as pyrender expects.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from syrip_gen.errors import UserError
from syrip_gen.render.looks.face_hair import EYES, face_features, lowfreq_noise, paint_face, paint_hair, scalp_map
from syrip_gen.render.looks.image_folder import ImageFolder
from syrip_gen.render.looks.uv import TopologyMaps, garment_mask


# sRGB skin tones from light (Fitzpatrick I) to dark (VI); a sample interpolates neighbours.
SKIN_PALETTE = np.array([
    (246, 214, 190), (236, 192, 160), (218, 168, 128), (196, 140, 100),
    (164, 108, 72), (124, 80, 54), (88, 58, 40),
], dtype=np.float32)
EYE_COLOURS = np.array([(60, 40, 28), (40, 30, 24), (70, 80, 95), (35, 30, 30)], dtype=np.float32)

# body regions by Anny bone name (rig anny-notoes-nohands)
TORSO = ("spine04", "spine03", "spine02", "spine01", "clavicle.L", "clavicle.R", "shoulder01.L", "shoulder01.R")
HIPS = ("root", "spine05", "pelvis.L", "pelvis.R")
UPPER_ARMS = ("upperarm01.L", "upperarm01.R", "upperarm02.L", "upperarm02.R")
LOWER_ARMS = ("lowerarm01.L", "lowerarm01.R", "lowerarm02.L", "lowerarm02.R")
THIGHS = ("upperleg01.L", "upperleg01.R", "upperleg02.L", "upperleg02.R")
SHINS = ("lowerleg01.L", "lowerleg01.R", "lowerleg02.L", "lowerleg02.R")
FEET = ("foot.L", "foot.R")

OUTFITS = ("none", "diaper", "onesie", "sleepsuit", "shirt_trousers")
PATTERNS = ("solid", "striped", "dotted", "printed")


@dataclass(frozen=True)
class AppearanceConfig:
    """How textures are sampled. ``textures``: folder of UV texture images; when given, a
    file is used with probability ``p_folder`` (else a procedural texture)."""

    textures: str | None = None
    p_folder: float = 1.0
    outfits: tuple[str, ...] = OUTFITS
    # the real photos show mostly clothed infants, often in full sleepsuits with long sleeves
    outfit_weights: tuple[float, ...] = (0.08, 0.17, 0.2, 0.35, 0.2)
    patterns: tuple[str, ...] = PATTERNS
    pattern_weights: tuple[float, ...] = (0.4, 0.25, 0.2, 0.15)
    p_socks: float = 0.3
    p_long_sleeves: float = 0.7
    p_hair: float = 0.85  # with a scalp map (``face_hair.scalp_map``): chance of painted hair
    skin_noise: float = 0.05  # relative amplitude of blotchy skin variation
    fabric_noise: float = 0.04

    def __post_init__(self):
        bad = [o for o in self.outfits if o not in OUTFITS] + [p for p in self.patterns if p not in PATTERNS]
        if bad:
            raise UserError(f"unknown outfit/pattern {bad}; outfits: {', '.join(OUTFITS)}; "
                            f"patterns: {', '.join(PATTERNS)}")
        if len(self.outfits) != len(self.outfit_weights) or len(self.patterns) != len(self.pattern_weights):
            raise UserError("appearance config: one weight per outfit and per pattern")


# ---- painting ------------------------------------------------------------------------------

def _solid(size: int, colour) -> np.ndarray:
    """``(size, size, 3) uint8`` filled with ``colour`` (cv2 fill: ~4x faster than numpy's)."""
    import cv2

    img = np.empty((size, size, 3), np.uint8)
    cv2.rectangle(img, (0, 0), (size, size), tuple(int(c) for c in np.clip(colour, 0, 255)), -1)
    return img


def sample_skin(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A skin tone ``(3,) float32`` sRGB and its position on the palette (0 light .. 1 dark)."""
    x = float(rng.uniform(0, len(SKIN_PALETTE) - 1))
    i = min(int(x), len(SKIN_PALETTE) - 2)
    tone = SKIN_PALETTE[i] * (1 - (x - i)) + SKIN_PALETTE[i + 1] * (x - i)
    tone = tone * np.float32(rng.uniform(0.95, 1.05)) + np.float32([rng.uniform(-4, 8), 0, 0])  # pinker/redder
    return np.clip(tone, 0, 255).astype(np.float32), x / (len(SKIN_PALETTE) - 1)


def _fabric_colour(rng: np.random.Generator) -> np.ndarray:
    """A baby-clothes colour ``(3,) float32``: mostly pastels and whites, some strong ones."""
    import colorsys

    kind = rng.choice(["pastel", "white", "strong", "dark"], p=[0.45, 0.2, 0.25, 0.1])
    h = rng.uniform()
    s, v = {"pastel": (rng.uniform(0.15, 0.45), rng.uniform(0.8, 1.0)),
            "white": (rng.uniform(0.0, 0.08), rng.uniform(0.85, 1.0)),
            "strong": (rng.uniform(0.5, 0.9), rng.uniform(0.5, 0.95)),
            "dark": (rng.uniform(0.2, 0.7), rng.uniform(0.15, 0.4))}[str(kind)]
    return np.float32(colorsys.hsv_to_rgb(h, s, v)) * 255


def paint_pattern(rng: np.random.Generator, size: int, base: np.ndarray, pattern: str) -> tuple[np.ndarray, dict]:
    """A ``(size, size, 3) uint8`` fabric of colour ``base (3,)`` with ``pattern`` painted in UV
    space (stripes, dots, small printed shapes); returns it and its description."""
    import cv2

    img = _solid(size, base)
    second = _fabric_colour(rng)
    desc = {"pattern": pattern, "colour": [int(c) for c in base]}
    if pattern == "striped":
        period = int(rng.integers(max(4, size // 64), max(8, size // 16)))
        width = max(1, int(period * rng.uniform(0.25, 0.6)))
        angle = int(rng.choice([0, 90, 45, -45], p=[0.5, 0.3, 0.1, 0.1]))
        a, b = {0: (0, 1), 90: (1, 0), 45: (1, 1), -45: (1, -1)}[angle]  # integer stripe direction
        t = np.arange(size, dtype=np.int32)[None, :] * a + np.arange(size, dtype=np.int32)[:, None] * b
        cv2.copyTo(_solid(size, second), ((t % period) < width).view(np.uint8), img)
        desc.update(period_texels=period, angle=angle)
    elif pattern == "dotted":
        step = int(rng.integers(max(6, size // 48), max(10, size // 16)))
        radius = max(1, int(step * rng.uniform(0.15, 0.35)))
        colour = tuple(int(c) for c in second)
        for y in range(step // 2, size, step):
            off = step // 2 if (y // step) % 2 else 0
            for x in range(off, size, step):
                cv2.circle(img, (x, y), radius, colour, -1, lineType=cv2.LINE_AA)
        desc.update(step_texels=step)
    elif pattern == "printed":
        n = int(rng.integers(size * size // 3000, size * size // 1200))
        colours = [_fabric_colour(rng) for _ in range(3)]
        xs, ys = rng.integers(0, size, n), rng.integers(0, size, n)
        shapes, sizes = rng.integers(0, 3, n), rng.integers(max(2, size // 200), max(4, size // 80), n)
        which = rng.integers(0, 3, n)
        for x, y, s, r, k in zip(xs, ys, shapes, sizes, which):
            colour = tuple(int(c) for c in colours[k])
            if s == 0:
                cv2.circle(img, (int(x), int(y)), int(r), colour, -1, lineType=cv2.LINE_AA)
            elif s == 1:
                cv2.rectangle(img, (int(x - r), int(y - r)), (int(x + r), int(y + r)), colour, -1)
            else:
                tri = np.int32([[x, y - r], [x - r, y + r], [x + r, y + r]])
                cv2.fillConvexPoly(img, tri, colour, lineType=cv2.LINE_AA)
        desc.update(shapes=n)
    if pattern != "solid":
        desc["second_colour"] = [int(c) for c in second]
    return img, desc


def _outfit_garments(outfit: str, rng: np.random.Generator, p_long: float = 0.5) -> list[tuple[str, tuple[str, ...], float]]:
    """(garment name, body parts, threshold) layers, bottom first."""
    long_arms = bool(rng.uniform() < p_long)
    arms = UPPER_ARMS + (LOWER_ARMS if long_arms else ())
    if outfit == "diaper":
        return [("diaper", HIPS + ("spine04", "upperleg01.L", "upperleg01.R"), 0.6)]
    if outfit == "onesie":
        return [("onesie", TORSO + HIPS + arms, 0.5)]
    if outfit == "sleepsuit":
        feet = FEET if rng.uniform() < 0.6 else ()
        return [("sleepsuit", TORSO + HIPS + arms + THIGHS + SHINS + feet, 0.5)]
    if outfit == "shirt_trousers":
        legs = THIGHS + (SHINS if rng.uniform() < 0.6 else ())
        return [("trousers", HIPS + legs, 0.5), ("shirt", TORSO + arms, 0.5)]
    return []


def make_texture(maps: TopologyMaps, rng: np.random.Generator, size: int = 1024,
                 config: AppearanceConfig | None = None) -> tuple[np.ndarray, dict]:
    """A body texture ``(size, size, 3) uint8`` in the UV layout of ``maps.topology`` and a
    JSON-able description of what was drawn (skin tone, outfit, garments and patterns, hair,
    or the file).

    Same generator state and topology -> same bytes. With ``config.textures`` a file from that
    folder is used (probability ``config.p_folder``). When ``maps`` has a rest pose with a head
    and eyes (``face_hair.scalp_map``), hair may grow on the scalp and the face is painted
    (brows, lids, mouth: ``face_hair.paint_face``); without one, neither is.
    """
    config = config or AppearanceConfig()
    if config.textures and rng.uniform() < config.p_folder:
        return _folder(config.textures).sample(rng, size)
    topology = maps.topology
    if topology.part_of_vertex is None:
        raise UserError("this body model has no body-part labels; procedural clothing needs them")
    import cv2

    skin, darkness = sample_skin(rng)
    tex = _solid(size, skin)
    eyes = garment_mask(maps, size, EYES, threshold=0.5, smooth=0)
    eye_colour = EYE_COLOURS[int(rng.integers(len(EYE_COLOURS)))]
    cv2.copyTo(_solid(size, eye_colour), eyes.view(np.uint8), tex)
    outfit = str(rng.choice(config.outfits, p=np.float64(config.outfit_weights) / sum(config.outfit_weights)))
    garments = _outfit_garments(outfit, rng, config.p_long_sleeves)
    if rng.uniform() < config.p_socks and outfit != "sleepsuit":
        garments.append(("socks", FEET, 0.45))
    desc = {"kind": "procedural", "skin_rgb": [int(c) for c in skin], "skin_darkness": round(darkness, 3),
            "outfit": outfit, "garments": []}
    clothed = np.zeros((size, size), bool)
    for name, parts, threshold in garments:
        pattern = str(rng.choice(config.patterns, p=np.float64(config.pattern_weights) / sum(config.pattern_weights)))
        fabric, gdesc = paint_pattern(rng, size, _fabric_colour(rng), pattern)
        mask = garment_mask(maps, size, parts, threshold=threshold)
        cv2.copyTo(fabric, mask.view(np.uint8), tex)  # ~50x faster than np.copyto(where=)
        clothed |= mask
        desc["garments"].append({"name": name, **gdesc})
    # shading detail: blotchy skin (slightly redder where darker), fine grain on skin and fabric;
    # one multiplicative map in saturating uint8 arithmetic (x / 128), cheap at 1024^2
    half = size // 2  # the shading map is made at half size and upsampled (4x fewer float ops)
    blotch = lowfreq_noise(rng, half, 24)
    grain = rng.standard_normal((half, half)).astype(np.float32)
    skin_amp = np.where(cv2.resize(clothed.view(np.uint8), (half, half), interpolation=cv2.INTER_NEAREST) > 0,
                        np.float32(0), np.float32(config.skin_noise))
    shade = 128.0 * (1.0 + skin_amp * blotch + 0.5 * np.maximum(skin_amp, config.fabric_noise) * grain)
    red = shade + skin_amp * 40.0 * np.clip(blotch, 0, None)
    shade3 = np.clip(np.stack([red, shade, shade], -1), 0, 255).astype(np.uint8)
    shade3 = cv2.resize(shade3, (size, size), interpolation=cv2.INTER_LINEAR)
    tex = cv2.multiply(tex, shade3, scale=1.0 / 128.0)
    scalp = scalp_map(maps)
    if scalp is not None:  # last: its draws leave everything else as without a scalp map
        desc["hair"] = paint_hair(tex, maps, scalp, rng, config.p_hair)
        face = face_features(maps)
        if face is not None:  # no draws: same stream
            hair = desc["hair"]["colour"] if desc["hair"] else skin * 0.55
            paint_face(tex, maps, face, skin, eye_colour, np.float32(hair) * 0.9 + skin * 0.1)
            desc["face"] = "painted"
    return tex, desc


# ---- user textures -------------------------------------------------------------------------

class TextureFolder(ImageFolder):
    """Texture images made for the body's UV layout, sampled at random (see ImageFolder)."""

    def __init__(self, path: str | Path):
        super().__init__(path, "texture")

    def sample(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict]:
        """A random readable texture ``(size, size, 3) uint8`` and ``{"kind": "file", "file"}``."""
        import cv2

        path, img = self.read_random(rng)
        if img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(img[..., ::-1]), {"kind": "file", "file": path.name}


_FOLDERS: dict[str, TextureFolder] = {}


def texture_folder(path: str) -> TextureFolder:
    """The (cached) :class:`TextureFolder` that :func:`make_texture` uses for ``path`` (so a
    caller can read its ``unreadable`` counts)."""
    return _folder(path)


def _folder(path: str) -> TextureFolder:
    if path not in _FOLDERS:
        _FOLDERS[path] = TextureFolder(path)
    return _FOLDERS[path]
