"""Photo textures: bake the infant of a real photo onto its fitted body's UV map.

Why: procedural skin and clothes do not look like the photos a pose model will meet; every
user already owns photos of real infants whose bodies :mod:`syrip_gen.fit` has fitted. Each
texel of the body's UV layout is a point on the fitted surface; projected through the fit
camera it lands on the photo pixel that shows it, when it is visible.

Steps (pure NumPy/OpenCV, no GL, deterministic for a given seed):

1. texel -> surface point and normal (barycentric in the fitted mesh, on the UV raster of the
   topology's :class:`~syrip_gen.render.looks.uv.TopologyMaps`);
2. visibility: a z-buffer of the fitted mesh in the photo camera (painter's algorithm with
   ``cv2.fillConvexPoly`` over triangle ids, then each pixel's depth on its triangle's plane);
   a texel is seen when its depth is within ``depth_tol`` of the z-buffer and its normal
   faces the camera; its weight grows with the cosine of the viewing angle;
3. the person, not the floor: OpenCV GrabCut seeded by the fitted silhouette (eroded
   silhouette = sure foreground, outside the grown box = sure background); texels landing
   outside the segmentation are dropped. A photo where it keeps < ``min_kept`` of the fitted
   silhouette is rejected with its reason;
4. fill what was never seen: the left/right mirror texel (the body's rest pose is symmetric
   about x = 0), else copies of the same part's seen texels folded over the part's UV box
   (:func:`copy_from_part`: patterns and shading continue), else (a part seen on neither
   side) the part's mean colour; seams between the sources are blended with ``cv2.inpaint``.

A baked texture holds pieces of the user's photo: it is their data and lives with the run
(``DATASET/photo_textures/``), never in a repository.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from syrip_gen import geometry
from syrip_gen.raster import zbuffer
from syrip_gen.render.world.scene import vertex_normals
from syrip_gen.render.looks.uv import TopologyMaps


@dataclass(frozen=True)
class BakeConfig:
    """How a photo is baked. Lengths in pixels are at the working size (``work_side``)."""

    size: int = 512  # texture side (texels)
    work_side: int = 1024  # the photo is shrunk to at most this long side first
    grabcut_side: int = 320  # GrabCut runs on the grown box shrunk to this long side
    grabcut_iters: int = 4
    grabcut_relax_iters: int = 2  # further iterations with the sure foreground's rim made probable
    relax_px: int = 12  # width of that rim (working-size pixels)
    box_grow: float = 0.15  # the silhouette's box grows this fraction of its size per side
    sure_fg_erode: float = 0.03  # sure foreground: silhouette eroded by this x box diagonal
    edge_px: int = 2  # the segmentation is eroded this much before sampling (no background bleed)
    min_cos: float = 0.15  # texels seen at a cosine below this are not used
    full_cos: float = 0.5  # weight 1 from this cosine on
    depth_tol: float = 0.006  # metres: a texel this far behind the z-buffer is hidden
    min_kept: float = 0.3  # reject when the segmentation keeps less of the fitted silhouette
    seam_px: int = 3  # texels each side of a fill seam that are inpainted
    copy_fill: bool = True  # fill texels seen on neither side from the part's seen texels (not its mean)


@dataclass
class BakeResult:
    """A baked texture ``(size, size, 3) uint8`` RGB (row 0 = v 1) and how it was made.

    ``status``: "ok" or "rejected" (then ``texture`` is None and ``reason`` says why).
    ``observed``: fraction of on-island texels taken from the photo; ``mirrored``, ``copied``,
    ``mean``: fractions filled from the mirror texel, from copies of the same part's seen
    texels (:func:`copy_from_part`) and from the part's mean colour; ``kept``: fraction
    of the fitted silhouette the segmentation kept; ``weight`` and ``source`` per texel."""

    status: str
    texture: np.ndarray | None = None
    reason: str | None = None
    kept: float = 0.0
    observed: float = 0.0
    mirrored: float = 0.0
    mean: float = 0.0
    copied: float = 0.0
    weight: np.ndarray | None = None  # (S, S) float64, 0 = not taken from the photo
    source: np.ndarray | None = None  # (S, S) uint8: 0 photo, 1 mirror texel, 2 part mean, 3 copied

    def record(self) -> dict:
        return {"status": self.status, "reason": self.reason, "kept": round(self.kept, 4),
                "observed": round(self.observed, 4), "mirrored": round(self.mirrored, 4),
                "mean": round(self.mean, 4), "copied": round(self.copied, 4)}


# ---- geometry ------------------------------------------------------------------------------

def texel_surface(vertices: np.ndarray, maps: TopologyMaps, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Surface point ``(S, S, 3) float64`` and unit normal ``(S, S, 3) float64`` of every
    texel on the body ``vertices (V, 3)`` of ``maps.topology`` (texels off the UV islands take
    their nearest island texel's point)."""
    topology, raster = maps.topology, maps.raster(size)
    faces = np.asarray(topology.body_faces)[raster.triangle]  # (S, S, 3) body vertex ids
    v = np.asarray(vertices, np.float64)
    bary = raster.bary.astype(np.float64)[..., None]
    points = (v[faces] * bary).sum(-2)
    n = vertex_normals(v, np.asarray(topology.body_faces)).astype(np.float64)
    normals = (n[faces] * bary).sum(-2)
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    return points, normals


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points ``(..., 3)`` -> pixels ``(..., 2)`` by ``geometry.project``, depth
    clamped at 1 micron (points behind the camera land far outside)."""
    return geometry.project(np.concatenate([points_cam[..., :2], np.maximum(points_cam[..., 2:], 1e-6)], -1), K)


# ---- symmetry ------------------------------------------------------------------------------

def mirror_texels(maps: TopologyMaps, size: int) -> np.ndarray:
    """``(S, S) int64`` flat index of each texel's left/right mirror texel: the on-island
    texel nearest to its surface point mirrored through x = 0 of the (symmetric) rest pose
    ``maps.rest_vertices`` (made once per size and kept on ``maps``, ~1 s)."""
    return maps.memo(("mirror", size), lambda: _mirror_texels(maps, size))


def _mirror_texels(maps: TopologyMaps, size: int) -> np.ndarray:
    from scipy.spatial import cKDTree

    if maps.rest_vertices is None:
        raise ValueError("mirror texels need the body's rest pose (TopologyMaps(topology, rest_vertices))")
    raster = maps.raster(size)
    points, _ = texel_surface(maps.rest_vertices, maps, size)
    flat = points.reshape(-1, 3)
    island = np.flatnonzero(raster.on_island.ravel())
    _, nearest = cKDTree(flat[island]).query(flat * np.array([-1.0, 1.0, 1.0]))
    return island[nearest].reshape(size, size)


def texel_parts(maps: TopologyMaps, size: int) -> np.ndarray:
    """``(S, S) int`` body-part id of each texel (its triangle's heaviest corner); zeros when
    the body has no part labels."""
    topology, raster = maps.topology, maps.raster(size)
    if topology.part_of_vertex is None:
        return np.zeros((size, size), np.int64)
    corner = np.argmax(raster.bary, -1)
    vert = np.take_along_axis(np.asarray(topology.body_faces)[raster.triangle], corner[..., None], -1)[..., 0]
    return np.asarray(topology.part_of_vertex, np.int64)[vert]


def mirror_part_ids(names: tuple[str, ...]) -> np.ndarray:
    """Part id -> the id of its mirror part ('upperarm01.L' <-> 'upperarm01.R'; itself when
    unpaired)."""
    index = {n: i for i, n in enumerate(names)}
    swap = {".L": ".R", ".R": ".L"}
    return np.array([index.get(n[:-2] + swap[n[-2:]], i) if n[-2:] in swap else i
                     for i, n in enumerate(names)], np.int64)


# ---- segmentation --------------------------------------------------------------------------

def segment_person(photo: np.ndarray, silhouette: np.ndarray, cfg: BakeConfig, seed: int = 0) -> np.ndarray:
    """``(H, W) bool`` infant pixels of ``photo (H, W, 3) uint8`` by GrabCut, seeded by the
    fitted ``silhouette (H, W) bool``: eroded silhouette = sure foreground, the rest of the
    silhouette = probable foreground, the grown box around it = probable background, outside
    = sure background; then a few iterations with the rim of the sure foreground made probable,
    so that floor under a fit that is a little off is dropped too. Runs on the grown box shrunk to ``cfg.grabcut_side``; OpenCV's
    generator is seeded with ``seed`` (GrabCut's k-means draws from it)."""
    import cv2

    H, W = silhouette.shape
    rows, cols = np.nonzero(silhouette)
    if len(rows) == 0:
        return np.zeros((H, W), bool)
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    bh, bw = y1 - y0, x1 - x0
    gy, gx = int(np.ceil(cfg.box_grow * bh)), int(np.ceil(cfg.box_grow * bw))
    # the crop reaches one more grow-band beyond the box: that band is sure background
    cy0, cy1 = max(0, y0 - 2 * gy), min(H, y1 + 2 * gy)
    cx0, cx1 = max(0, x0 - 2 * gx), min(W, x1 + 2 * gx)
    crop = photo[cy0:cy1, cx0:cx1]
    sil = silhouette[cy0:cy1, cx0:cx1].view(np.uint8)
    mask = np.full(sil.shape, cv2.GC_BGD, np.uint8)
    mask[max(0, y0 - gy - cy0):y1 + gy - cy0, max(0, x0 - gx - cx0):x1 + gx - cx0] = cv2.GC_PR_BGD
    mask[sil > 0] = cv2.GC_PR_FGD
    r = max(1, int(round(cfg.sure_fg_erode * float(np.hypot(bh, bw)))))
    sure = cv2.erode(sil, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    mask[sure > 0] = cv2.GC_FGD
    s = min(1.0, cfg.grabcut_side / max(crop.shape[:2]))
    small = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else crop
    small_mask = cv2.resize(mask, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    if not ((small_mask == cv2.GC_BGD) | (small_mask == cv2.GC_PR_BGD)).any():
        small_mask[[0, -1], :] = cv2.GC_PR_BGD  # GrabCut needs background samples
    if not ((small_mask == cv2.GC_FGD) | (small_mask == cv2.GC_PR_FGD)).any():
        return np.zeros((H, W), bool)
    cv2.setRNGSeed(int(seed) % 2**31)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    small = np.ascontiguousarray(small)
    cv2.grabCut(small, small_mask, None, bgd, fgd, cfg.grabcut_iters, cv2.GC_INIT_WITH_MASK)
    # the seed is only as good as the fit: let the colour models overrule it where the
    # eroded silhouette still covers floor (a fit a little too big or off)
    core = cv2.erode((small_mask == cv2.GC_FGD).view(np.uint8), np.ones((3, 3), np.uint8),
                     iterations=max(1, int(round(cfg.relax_px * s))))
    small_mask[(small_mask == cv2.GC_FGD) & (core == 0)] = cv2.GC_PR_FGD
    cv2.grabCut(small, small_mask, None, bgd, fgd, cfg.grabcut_relax_iters, cv2.GC_EVAL)
    fg = ((small_mask == cv2.GC_FGD) | (small_mask == cv2.GC_PR_FGD)).astype(np.uint8)
    fg = cv2.resize(fg * 255, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR) >= 128
    out = np.zeros((H, W), bool)
    out[cy0:cy1, cx0:cx1] = fg
    return out


# ---- baking --------------------------------------------------------------------------------

def shrink_photo(photo: np.ndarray, K: np.ndarray, work_side: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo shrunk to at most ``work_side`` pixels on its long side and the camera
    matrix for it (pixel centres follow ``cv2.resize``: x' = (x + 0.5) s - 0.5)."""
    import cv2

    s = min(1.0, work_side / max(photo.shape[:2]))
    if s >= 1.0:
        return photo, np.asarray(K, np.float64)
    small = cv2.resize(photo, (round(photo.shape[1] * s), round(photo.shape[0] * s)), interpolation=cv2.INTER_AREA)
    sx, sy = small.shape[1] / photo.shape[1], small.shape[0] / photo.shape[0]
    K2 = np.asarray(K, np.float64).copy()
    K2[0, 0], K2[1, 1] = K2[0, 0] * sx, K2[1, 1] * sy
    K2[0, 2], K2[1, 2] = (K2[0, 2] + 0.5) * sx - 0.5, (K2[1, 2] + 0.5) * sy - 0.5
    return small, K2


def bake(photo: np.ndarray, verts_cam: np.ndarray, K: np.ndarray, maps: TopologyMaps,
         cfg: BakeConfig | None = None, seed: int = 0) -> BakeResult:
    """Bake ``photo (H, W, 3) uint8`` RGB onto the UV map of the fitted body whose vertices
    in the photo's camera frame are ``verts_cam (V, 3)`` (OpenCV axes) with intrinsics ``K``.
    ``maps``: the body's topology with its symmetric rest pose (for the mirror texels).
    Same inputs and seed -> same bytes."""
    import cv2

    cfg = cfg or BakeConfig()
    S = cfg.size
    img, Kw = shrink_photo(np.ascontiguousarray(photo), K, cfg.work_side)
    H, W = img.shape[:2]
    topology = maps.topology
    depth = zbuffer(verts_cam, np.asarray(topology.body_faces), Kw, W, H)
    silhouette = np.isfinite(depth)
    if not silhouette.any():
        return BakeResult("rejected", reason="the fitted body is not in the photo")
    person = segment_person(img, silhouette, cfg, seed)
    kept = float((person & silhouette).sum() / silhouette.sum())
    if kept < cfg.min_kept:
        return BakeResult("rejected", reason=f"segmentation kept {kept:.0%} of the fitted silhouette "
                          f"(< {cfg.min_kept:.0%})", kept=kept)
    usable = cv2.erode(person.view(np.uint8), np.ones((2 * cfg.edge_px + 1,) * 2, np.uint8)) > 0

    raster = maps.raster(S)
    points, normals = texel_surface(verts_cam, maps, S)
    uv = project(points, Kw)
    cos = -(normals * points).sum(-1) / np.maximum(np.linalg.norm(points, axis=-1), 1e-12)
    ix = np.clip(np.round(uv[..., 0]).astype(np.int64), 0, W - 1)
    iy = np.clip(np.round(uv[..., 1]).astype(np.int64), 0, H - 1)
    inside = (uv[..., 0] >= 0) & (uv[..., 0] <= W - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= H - 1)
    visible = inside & (points[..., 2] <= depth[iy, ix] + cfg.depth_tol) & usable[iy, ix]
    weight = np.where(visible, np.clip((cos - cfg.min_cos) / (cfg.full_cos - cfg.min_cos), 0, 1), 0.0)
    seen = weight > 0
    to_photo = uv.astype(np.float32)
    colour = cv2.remap(img, to_photo[..., 0], to_photo[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    colour = colour.astype(np.float64)

    # fallbacks: the mirror texel where it was seen, else the part's (or its mirror part's) mean
    mirror = mirror_texels(maps, S)
    m_seen = seen.ravel()[mirror]
    m_colour = colour.reshape(-1, 3)[mirror]
    parts = texel_parts(maps, S)
    n_parts = int(parts.max()) + 1
    island_seen = seen & raster.on_island
    w_sum = np.bincount(parts[island_seen], weights=weight[island_seen], minlength=n_parts)
    c_sum = np.stack([np.bincount(parts[island_seen], weights=weight[island_seen] * colour[..., c][island_seen],
                                  minlength=n_parts) for c in range(3)], 1)
    overall = c_sum.sum(0) / max(w_sum.sum(), 1e-9)
    names = topology.part_names or tuple(str(i) for i in range(n_parts))
    pair = mirror_part_ids(tuple(names))[:n_parts] if len(names) >= n_parts else np.arange(n_parts)
    part_mean = np.where(w_sum[:, None] > 0, c_sum / np.maximum(w_sum, 1e-9)[:, None],
                         np.where(w_sum[pair][:, None] > 0, c_sum[pair] / np.maximum(w_sum[pair], 1e-9)[:, None],
                                  overall[None]))
    fallback = np.where(m_seen.reshape(S, S)[..., None], m_colour.reshape(S, S, 3), part_mean[parts])
    w = weight[..., None]
    tex = np.clip(np.round(w * colour + (1 - w) * fallback), 0, 255).astype(np.uint8)
    source = np.where(seen, 0, np.where(m_seen.reshape(S, S), 1, 2)).astype(np.uint8)
    if cfg.copy_fill:  # the part's own seen texels, not its flat mean, where the mirror was unseen too
        m_weight = weight.ravel()[mirror].reshape(S, S)
        sure = (weight >= 0.5) | ((source == 1) & (m_weight >= 0.5))  # donors seen squarely: no edge bleed
        sure = cv2.erode(sure.view(np.uint8), np.ones((5, 5), np.uint8)) > 0  # and not at a seen region's rim
        tex, source = copy_from_part(tex, source, parts, raster.on_island, pair, sure)

    # blend the seams between observed, mirrored, copied and mean-filled texels
    k = np.ones((3, 3), np.uint8)
    seam = (cv2.dilate(source, k) != cv2.erode(source, k)).view(np.uint8)
    if cfg.seam_px > 1:
        seam = cv2.dilate(seam, np.ones((cfg.seam_px, cfg.seam_px), np.uint8))
    seam &= (source > 0).view(np.uint8)  # observed texels keep their colour
    if seam.any():
        tex = cv2.inpaint(tex, seam, cfg.seam_px, cv2.INPAINT_TELEA)
    on = raster.on_island
    n_on = max(int(on.sum()), 1)
    return BakeResult("ok", texture=tex, kept=kept, observed=float((seen & on).sum() / n_on),
                      mirrored=float(((source == 1) & on).sum() / n_on), mean=float(((source == 2) & on).sum() / n_on),
                      copied=float(((source == 3) & on).sum() / n_on), weight=weight, source=source)


def _fold(i: np.ndarray, n: int) -> np.ndarray:
    """Indices ``i`` folded back and forth into ``[0, n)`` (mirror tiling)."""
    i = np.mod(i, 2 * n)
    return np.where(i >= n, 2 * n - 1 - i, i)


def copy_from_part(tex: np.ndarray, source: np.ndarray, parts: np.ndarray, on_island: np.ndarray,
                   pair: np.ndarray, donor_ok: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fill the texels still at their part's mean colour (``source == 2``) with copies of the
    same part's seen texels (``source`` 0 or 1; else those of its mirror part ``pair``), so a
    striped sleeve stays striped and skin keeps its shading instead of one flat colour.

    The part's seen texels span a box in UV space; each unseen texel is folded into that box
    (mirror tiling: neighbours stay neighbours, so patterns continue) and takes the colour of
    the seen texel of the part nearest to where it lands. ``tex (S, S, 3) uint8``, ``source
    (S, S) uint8``, ``parts (S, S) int``, ``on_island (S, S) bool``, ``pair (P,) int``;
    ``donor_ok (S, S) bool``: texels that may be copied (e.g. seen squarely). Returns the new texture and ``source`` with copied texels marked 3. Deterministic."""
    from scipy import ndimage

    tex, source = tex.copy(), source.copy()
    seen_all = on_island & (source <= 1) & (True if donor_ok is None else donor_ok)
    todo = on_island & (source == 2)
    for p in np.unique(parts[todo]):
        holes = todo & (parts == p)
        donors = seen_all & (parts == p)
        if not donors.any():
            donors = seen_all & (parts == pair[p]) if p < len(pair) else donors
        if not donors.any():
            continue  # a part never seen on either side keeps the mean
        # no outliers (a few texels of floor or shadow bled in at the silhouette): each channel
        # within the part's 1st-99th percentile (a pattern's minority colour is kept)
        vals = tex[donors].astype(np.float32)
        lo, hi = np.percentile(vals, 1, axis=0), np.percentile(vals, 99, axis=0)
        keep = ((vals >= lo) & (vals <= hi)).all(-1)
        if keep.any():
            dy, dx = np.nonzero(donors)
            donors = np.zeros_like(donors)
            donors[dy[keep], dx[keep]] = True
        ys, xs = np.nonzero(donors)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        # nearest donor of every texel of the box (the exact Euclidean transform's indices)
        _, (ny, nx) = ndimage.distance_transform_edt(~donors[y0:y1, x0:x1], return_indices=True)
        hy, hx = np.nonzero(holes)
        fy = _fold(hy - y0, y1 - y0)
        fx = _fold(hx - x0, x1 - x0)
        sy, sx = y0 + ny[fy, fx], x0 + nx[fy, fx]
        tex[hy, hx] = tex[sy, sx]
        source[hy, hx] = 3
    return tex, source
