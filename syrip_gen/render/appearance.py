"""Procedural body textures (skin tones and infant clothing) in the body's UV layout.

Nothing licence-restricted ships: every texture is painted from a seeded generator. Skin
tones span Fitzpatrick I-VI; clothing (diaper, onesie, sleepsuit, shirt + trousers, socks,
or none) comes in solid, striped, dotted or printed patterns. A user may instead give a
folder of texture images made for the body's UV layout (:class:`TextureFolder`).

How garments follow the body: once per (topology, size) the UV triangles are rasterised into
a texel -> (triangle, barycentric weights) map (:func:`uv_raster`). A garment is a set of
body parts (Anny bone names: 'spine03', 'upperleg01.L', 'foot.R', ...); its per-vertex
indicator is smoothed over the mesh (so edges are smooth curves on the surface, continuous
across UV seams), interpolated to texels and thresholded (:func:`garment_mask`, cached).
Per sample only colours and patterns are painted.

Texture image convention: row 0 = v 1 (the top of the UV square), as pyrender expects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from syrip_gen.body.base import MeshTopology
from syrip_gen.errors import UserError
from syrip_gen.render.image_folder import ImageFolder


# sRGB skin tones from light (Fitzpatrick I) to dark (VI); a sample interpolates neighbours.
SKIN_PALETTE = np.array([
    (246, 214, 190), (236, 192, 160), (218, 168, 128), (196, 140, 100),
    (164, 108, 72), (124, 80, 54), (88, 58, 40),
], dtype=np.float32)
EYE_COLOURS = np.array([(60, 40, 28), (40, 30, 24), (70, 80, 95), (35, 30, 30)], dtype=np.float32)
# infant hair: black, dark/mid/light brown, auburn, blond (sRGB)
HAIR_COLOURS = np.array([(28, 22, 20), (52, 36, 26), (92, 64, 42), (140, 104, 70), (128, 70, 40), (196, 160, 108)],
                        dtype=np.float32)
HAIR_WEIGHTS = (0.3, 0.25, 0.2, 0.1, 0.05, 0.1)

# body regions by Anny bone name (rig anny-notoes-nohands)
TORSO = ("spine04", "spine03", "spine02", "spine01", "clavicle.L", "clavicle.R", "shoulder01.L", "shoulder01.R")
HIPS = ("root", "spine05", "pelvis.L", "pelvis.R")
UPPER_ARMS = ("upperarm01.L", "upperarm01.R", "upperarm02.L", "upperarm02.R")
LOWER_ARMS = ("lowerarm01.L", "lowerarm01.R", "lowerarm02.L", "lowerarm02.R")
THIGHS = ("upperleg01.L", "upperleg01.R", "upperleg02.L", "upperleg02.R")
SHINS = ("lowerleg01.L", "lowerleg01.R", "lowerleg02.L", "lowerleg02.R")
FEET = ("foot.L", "foot.R")
EYES = ("eye.L", "eye.R")

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
    p_hair: float = 0.85  # with a scalp map (:func:`scalp_indicator`): chance of painted hair
    skin_noise: float = 0.05  # relative amplitude of blotchy skin variation
    fabric_noise: float = 0.04

    def __post_init__(self):
        bad = [o for o in self.outfits if o not in OUTFITS] + [p for p in self.patterns if p not in PATTERNS]
        if bad:
            raise UserError(f"unknown outfit/pattern {bad}; outfits: {', '.join(OUTFITS)}; "
                            f"patterns: {', '.join(PATTERNS)}")
        if len(self.outfits) != len(self.outfit_weights) or len(self.patterns) != len(self.pattern_weights):
            raise UserError("appearance config: one weight per outfit and per pattern")


# ---- UV geometry (cached per topology and size) -------------------------------------------

@dataclass
class UVRaster:
    """Texel -> render triangle and barycentric weights; every texel is filled (texels off
    the UV islands copy their nearest island texel, so sampling near seams never reads
    black)."""

    size: int
    triangle: np.ndarray  # (S, S) int32, index into topology.faces
    bary: np.ndarray  # (S, S, 3) float32
    on_island: np.ndarray  # (S, S) bool
    masks: dict = field(default_factory=dict)  # garment mask cache


_RASTERS: dict = {}


def uv_raster(topology: MeshTopology, size: int) -> UVRaster:
    """Rasterise the UV triangles of ``topology`` at ``size x size`` (cached, ~0.3 s once)."""
    import cv2
    from scipy import ndimage

    key = (id(topology), size)
    if key in _RASTERS and _RASTERS[key][1] is topology:
        return _RASTERS[key][0]
    uv = np.asarray(topology.uvs, np.float64)
    px = np.stack([uv[:, 0] * size - 0.5, (1.0 - uv[:, 1]) * size - 0.5], 1)  # texel-centre coords
    tri = np.full((size, size), -1, np.int32)
    pts = np.round(px * 16).astype(np.int32)[np.asarray(topology.faces)]
    for i in range(len(pts)):
        cv2.fillConvexPoly(tri, pts[i], int(i), lineType=cv2.LINE_8, shift=4)
    on_island = tri >= 0
    _, (iy, ix) = ndimage.distance_transform_edt(~on_island, return_indices=True)
    tri = tri[iy, ix]
    rows, cols = np.mgrid[0:size, 0:size]
    p = np.stack([cols[iy, ix], rows[iy, ix]], -1).astype(np.float64)  # nearest island texel
    corners = px[np.asarray(topology.faces)[tri]]  # (S, S, 3, 2)
    a, b, c = corners[..., 0, :], corners[..., 1, :], corners[..., 2, :]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[..., 0] * v1[..., 1] - v1[..., 0] * v0[..., 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    wb = (v2[..., 0] * v1[..., 1] - v1[..., 0] * v2[..., 1]) / den
    wc = (v0[..., 0] * v2[..., 1] - v2[..., 0] * v0[..., 1]) / den
    bary = np.clip(np.stack([1 - wb - wc, wb, wc], -1), 0, 1)
    bary /= np.maximum(bary.sum(-1, keepdims=True), 1e-9)
    raster = UVRaster(size=size, triangle=tri, bary=bary.astype(np.float32), on_island=on_island)
    _RASTERS[key] = (raster, topology)
    return raster


def _vertex_smoother(topology: MeshTopology):
    """Row-normalised (V, V) sparse averaging over each vertex and its mesh neighbours."""
    from scipy import sparse

    f = np.asarray(topology.body_faces)
    n = len(topology.part_of_vertex) if topology.part_of_vertex is not None else int(f.max()) + 1
    i = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0], np.arange(n)])
    j = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2], np.arange(n)])
    a = sparse.csr_matrix((np.ones(len(i), np.float32), (i, j)), shape=(n, n))
    a.data[:] = 1.0  # duplicates summed -> 1
    return sparse.diags(1.0 / np.asarray(a.sum(1)).ravel()) @ a


def garment_mask(topology: MeshTopology, size: int, parts: tuple[str, ...],
                 threshold: float = 0.5, smooth: int = 6) -> np.ndarray:
    """``(size, size) bool`` texels covered by a garment over body ``parts`` (cached).

    The 0/1 indicator of the parts' vertices is averaged ``smooth`` times over mesh
    neighbours, interpolated per texel and compared with ``threshold`` (lower = larger
    garment).
    """
    raster = uv_raster(topology, size)
    key = (tuple(sorted(parts)), round(threshold, 3), smooth)
    if key in raster.masks:
        return raster.masks[key]
    names = list(topology.part_names)
    ids = [names.index(p) for p in parts if p in names]
    ind = np.isin(np.asarray(topology.part_of_vertex), ids).astype(np.float32)
    if smooth:
        if "smoother" not in raster.masks:
            raster.masks["smoother"] = _vertex_smoother(topology)
        for _ in range(smooth):
            ind = raster.masks["smoother"] @ ind
    per_render_vertex = ind[np.asarray(topology.render_vertex_index)]
    corner = per_render_vertex[np.asarray(topology.faces)[raster.triangle]]  # (S, S, 3)
    mask = np.einsum("ijk,ijk->ij", corner, raster.bary) >= threshold
    raster.masks[key] = mask
    return mask


# ---- painting ------------------------------------------------------------------------------

def _solid(size: int, colour) -> np.ndarray:
    """``(size, size, 3) uint8`` filled with ``colour`` (cv2 fill: ~4x faster than numpy's)."""
    import cv2

    img = np.empty((size, size, 3), np.uint8)
    cv2.rectangle(img, (0, 0), (size, size), tuple(int(c) for c in np.clip(colour, 0, 255)), -1)
    return img


def _lowfreq_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise ``(size, size) float32`` in about [-1, 1] (bicubic upsampled grid)."""
    import cv2

    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


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


def _head_and_eyes(topology: MeshTopology) -> tuple[np.ndarray, np.ndarray, list[int]] | None:
    """Part id per vertex ``(V,)``, the head's vertices ``(V,) bool`` and the eye parts' ids of a
    topology; None without part labels or a head."""
    if topology.part_of_vertex is None or "head" not in topology.part_names:
        return None
    names = list(topology.part_names)
    part = np.asarray(topology.part_of_vertex)
    return part, part == names.index("head"), [names.index(e) for e in EYES if e in names]


def scalp_indicator(topology: MeshTopology, rest_vertices: np.ndarray) -> np.ndarray | None:
    """``(V,) float32`` how far up the scalp each body vertex is (> 0: where hair grows; ~0
    at the hairline), from the body's rest pose ``rest_vertices (V, 3)`` (y up, z forward):
    the head's vertices above a hairline that runs across the forehead well above the eyes
    and drops to the nape behind the ears. None without part labels."""
    labels = _head_and_eyes(topology)
    if labels is None:
        return None
    part, head, eye_ids = labels
    v = np.asarray(rest_vertices, np.float64)
    eyes = np.isin(part, eye_ids)
    if not head.any() or not eyes.any():
        return None
    _FACES[id(topology)] = (face_maps(topology, v), topology)  # made from the same rest pose (make_texture)
    y_eye, z_eye = v[eyes, 1].mean(), v[eyes, 2].mean()
    top, back = v[head, 1].max(), v[head, 2].min()
    depth = np.clip((z_eye - v[:, 2]) / max(z_eye - back, 1e-6), 0, 1)  # 0 at the eyes' plane, 1 at the back
    hairline = y_eye + (top - y_eye) * (0.45 - 0.85 * depth)  # forehead high, nape low
    return np.where(head, (v[:, 1] - hairline) / max(top - y_eye, 1e-6), -1.0).astype(np.float32)


_FACES: dict = {}  # id(topology) -> (face_maps, topology), filled by scalp_indicator
FACE_MAPS = ("brow", "lid", "mouth", "pupil", "iris")


def face_maps(topology: MeshTopology, rest_vertices: np.ndarray) -> np.ndarray | None:
    """``(V, 5) float32`` soft masks in [0, 1] of the face's features per body vertex, in the
    order of :data:`FACE_MAPS`, from the rest pose ``rest_vertices (V, 3)`` (y up, z forward),
    placed by infant proportions relative to the two eyes (interocular distance ``d``): brows
    0.45 d above the eye centres, an upper-lid line just above each eye, the mouth ~1 d below,
    slightly smiling; pupil and iris on the front of each eyeball (computed, not painted:
    the eyeball UVs overlap, see :func:`paint_face`).
    Painted in UV space by :func:`paint_face`, so they follow the mesh wherever its UV
    islands lie. None without head and eye labels."""
    labels = _head_and_eyes(topology)
    if labels is None:
        return None
    part, head, eye_ids = labels
    v = np.asarray(rest_vertices, np.float64)
    if len(eye_ids) != 2 or not head.any():
        return None
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    centres = [v[part == i].mean(0) for i in eye_ids]
    d = float(abs(centres[0][0] - centres[1][0]))
    y_eye, z_eye = float(np.mean([c[1] for c in centres])), float(np.mean([c[2] for c in centres]))
    front = head & (z > z_eye - 0.35 * d)  # the face, not the cheeks' sides or the scalp
    out = np.zeros((len(v), 5), np.float32)
    for c, i in zip(centres, eye_ids):
        dx = (x - c[0]) / (0.42 * d)
        arc = c[1] + 0.45 * d + 0.06 * d * (1 - dx ** 2)
        out[:, 0] = np.maximum(out[:, 0], np.clip(1 - dx ** 4, 0, 1) * np.exp(-((y - arc) / (0.07 * d)) ** 2) * front)
        lx = (x - c[0]) / (0.3 * d)
        lid = c[1] + 0.13 * d * np.clip(1 - lx ** 2, 0, 1) + 0.02 * d
        out[:, 1] = np.maximum(out[:, 1], np.clip(1 - lx ** 4, 0, 1) * np.exp(-((y - lid) / (0.03 * d)) ** 2) * front)
        ball = part == i
        r_ball = float(np.max(np.hypot(v[ball, 0] - c[0], v[ball, 1] - c[1])))
        r = np.hypot(x - c[0], y - c[1]) / max(r_ball, 1e-9)
        ahead = ball & (z > c[2])
        out[:, 3] = np.maximum(out[:, 3], ahead * np.clip((0.3 - r) / 0.06, 0, 1))
        out[:, 4] = np.maximum(out[:, 4], ahead * np.clip((0.65 - r) / 0.08, 0, 1))
    mx = x / (0.33 * d)
    mouth_y = y_eye - 1.0 * d + 0.07 * d * mx ** 2  # corners a little up
    out[:, 2] = np.clip(1 - mx ** 4, 0, 1) * np.exp(-((y - mouth_y) / (0.05 * d)) ** 2) * front
    return out


def paint_face(tex: np.ndarray, topology: MeshTopology, maps: np.ndarray, skin: np.ndarray,
               eye_colour: np.ndarray, brow_colour: np.ndarray) -> None:
    """Paint brows, lid lines and lips from :func:`face_maps` ``maps (V, 5)`` into ``tex (S, S, 3)
    uint8`` in place: each feature's colour blended in by its soft mask interpolated per texel,
    so at ~100 px a head shows dark eyes under lash lines, faint brows and a mouth instead of
    flat paint. ``eye_colour`` is unused for now (see the note below). No random draws."""
    size = tex.shape[0]
    raster = uv_raster(topology, size)
    corner = maps[np.asarray(topology.render_vertex_index)][np.asarray(topology.faces)[raster.triangle]]  # (S,S,3,5)
    m = np.einsum("ijkc,ijk->ijc", corner, raster.bary)  # (S, S, 5)
    if not (m[..., :3] > 0.02).any():
        return
    ys, xs = np.nonzero((m[..., :3] > 0.02).any(-1))
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1  # the face's texels only
    sub = tex[y0:y1, x0:x1].astype(np.float32)
    mm = m[y0:y1, x0:x1]
    skin = np.asarray(skin, np.float32)
    paints = ((mm[..., 0] * 0.6, np.asarray(brow_colour, np.float32)),
              (mm[..., 1] * 0.55, skin * 0.45),
              (mm[..., 2] * 0.8, skin * np.float32([0.78, 0.52, 0.52])),
              )
    for alpha, colour in paints:
        sub = sub * (1 - alpha[..., None]) + colour * alpha[..., None]
    # the eyeballs keep their solid iris colour: Anny's eyeball UVs overlap (front and back
    # share texels), so a pupil painted in UV space lands on the white of the other side
    tex[y0:y1, x0:x1] = np.clip(sub, 0, 255).astype(np.uint8)


def _paint_hair(tex: np.ndarray, topology: MeshTopology, scalp: np.ndarray, rng: np.random.Generator,
                config: AppearanceConfig) -> dict | None:
    """Paint hair over the scalp: a random hairline height and colour, a soft, wispy hairline,
    strand-like shading and thin spots where the skin shows through (a textured cap, not a
    solid helmet); the texture is changed in place. Returns its description, or None when
    this infant is bald."""
    import cv2

    if rng.uniform() >= config.p_hair:
        return None
    size = tex.shape[0]
    raster = uv_raster(topology, size)
    level = float(rng.uniform(-0.1, 0.25))  # higher = less hair
    corner = scalp[np.asarray(topology.render_vertex_index)][np.asarray(topology.faces)[raster.triangle]]
    height = np.einsum("ijk,ijk->ij", corner, raster.bary)  # how far up the scalp each texel is
    colour = HAIR_COLOURS[int(rng.choice(len(HAIR_COLOURS), p=np.float64(HAIR_WEIGHTS)))]
    colour = colour * np.float32(rng.uniform(0.85, 1.15))
    streaks = cv2.resize(rng.standard_normal((max(4, size // 8), max(4, size // 64))).astype(np.float32),
                         (size, size), interpolation=cv2.INTER_LINEAR)
    # strands: fine noise stretched along one UV axis (thin dark and light lines), plus
    # clumps at a coarser scale; infant hair is thin, so the skin shows through near the
    # hairline and between clumps
    strands = cv2.resize(rng.standard_normal((max(4, size // 2), max(4, size // 24))).astype(np.float32),
                         (size, size), interpolation=cv2.INTER_LINEAR)
    clumps = _lowfreq_noise(rng, size, 12)
    density = float(rng.uniform(0.7, 1.0))
    fade = float(rng.uniform(0.08, 0.2))  # width of the soft hairline, in scalp units
    edge = level + 0.04 * clumps  # a wispy, uneven hairline
    alpha = np.clip((height - edge) / fade, 0, 1) * np.clip(density + 0.25 * strands + 0.15 * clumps, 0, 1)
    mask = alpha > 0.02
    shade = 1.0 + 0.12 * streaks + 0.2 * strands + 0.1 * clumps  # strand highlights and shadows
    shade *= 0.8 + 0.2 * np.clip(height / max(level + 0.6, 1e-3), 0, 1)  # a little darker near the hairline
    hair = colour[None, None] * shade[..., None]
    painted = tex.astype(np.float32) * (1 - alpha[..., None]) + hair * alpha[..., None]
    cv2.copyTo(np.clip(painted, 0, 255).astype(np.uint8), mask.view(np.uint8), tex)
    return {"colour": [int(c) for c in np.clip(colour, 0, 255)], "level": round(level, 3)}


def make_texture(topology: MeshTopology, rng: np.random.Generator, size: int = 1024,
                 config: AppearanceConfig | None = None, scalp: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """A body texture ``(size, size, 3) uint8`` in ``topology``'s UV layout and a JSON-able
    description of what was drawn (skin tone, outfit, garments and patterns, hair, or the file).

    Same generator state -> same bytes. With ``config.textures`` a file from that folder is
    used (probability ``config.p_folder``). ``scalp`` (:func:`scalp_indicator`): where hair
    may grow; without it no hair is painted. With it the face is painted too (eyes, brows,
    lids, mouth: :func:`paint_face`, from the face maps :func:`scalp_indicator` made from the
    same rest pose).
    """
    config = config or AppearanceConfig()
    if config.textures and rng.uniform() < config.p_folder:
        return _folder(config.textures).sample(rng, size)
    if topology.part_of_vertex is None:
        raise UserError("this body model has no body-part labels; procedural clothing needs them")
    import cv2

    skin, darkness = sample_skin(rng)
    tex = _solid(size, skin)
    eyes = garment_mask(topology, size, EYES, threshold=0.5, smooth=0)
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
        mask = garment_mask(topology, size, parts, threshold=threshold)
        cv2.copyTo(fabric, mask.view(np.uint8), tex)  # ~50x faster than np.copyto(where=)
        clothed |= mask
        desc["garments"].append({"name": name, **gdesc})
    # shading detail: blotchy skin (slightly redder where darker), fine grain on skin and fabric;
    # one multiplicative map in saturating uint8 arithmetic (x / 128), cheap at 1024^2
    half = size // 2  # the shading map is made at half size and upsampled (4x fewer float ops)
    blotch = _lowfreq_noise(rng, half, 24)
    grain = rng.standard_normal((half, half)).astype(np.float32)
    skin_amp = np.where(cv2.resize(clothed.view(np.uint8), (half, half), interpolation=cv2.INTER_NEAREST) > 0,
                        np.float32(0), np.float32(config.skin_noise))
    shade = 128.0 * (1.0 + skin_amp * blotch + 0.5 * np.maximum(skin_amp, config.fabric_noise) * grain)
    red = shade + skin_amp * 40.0 * np.clip(blotch, 0, None)
    shade3 = np.clip(np.stack([red, shade, shade], -1), 0, 255).astype(np.uint8)
    shade3 = cv2.resize(shade3, (size, size), interpolation=cv2.INTER_LINEAR)
    tex = cv2.multiply(tex, shade3, scale=1.0 / 128.0)
    if scalp is not None:  # last: its draws leave everything else as without a scalp map
        desc["hair"] = _paint_hair(tex, topology, scalp, rng, config)
        face = _FACES.get(id(topology))
        if face is not None and face[1] is topology and face[0] is not None:  # no draws: same stream
            hair = desc["hair"]["colour"] if desc["hair"] else skin * 0.55
            paint_face(tex, topology, face[0], skin, eye_colour, np.float32(hair) * 0.9 + skin * 0.1)
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
