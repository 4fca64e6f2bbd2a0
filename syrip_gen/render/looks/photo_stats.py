"""Measurements of what a photo's frame looks like, to make renders match real photos.

Why: the renders should not be noisier, more compressed, or framed differently than the
photos they stand in for, and their backgrounds must not show what no real photo shows
(empty corners, burnt-in captions). Each function measures one thing on one ``(H, W, 3)
uint8`` image (RGB or BGR: the measures are channel-order free unless said) and is pure
(OpenCV and numpy only), so the same code measures the real set and the renders:

- :func:`noise_sigma`: sensor noise, luma and chroma, from the finest wavelet band (MAD).
- :func:`jpeg_quality`: the libjpeg quality a JPEG file was saved at, from its tables.
- :func:`letterbox_bands`: uniform black or white bands along the frame's edges.
- :func:`is_studio`: a near-white, nearly uniform surround (stock photos on white).
- :func:`text_boxes`: caption text or logos burnt into the frame.
- :func:`empty_corners`: corners left black/uniform or stretched by a warp.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# libjpeg's standard luminance quantisation table (quality 50), in zig-zag-free row order
_STD_LUMA_Q = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64)


@dataclass(frozen=True)
class Noise:
    """Noise standard deviations in grey levels: ``luma`` (Y of YCrCb), ``chroma`` (mean of Cr
    and Cb) and ``per_channel (3,)`` in the image's channel order."""

    luma: float
    chroma: float
    per_channel: tuple[float, float, float]


def _mad_sigma(channel: np.ndarray, edge_mask: np.ndarray | None = None) -> float:
    """Noise sigma from the finest diagonal Haar band (Donoho's wavelet estimate; the band is
    ~pure noise on natural images; ``edge_mask`` ``(H//2, W//2) bool`` drops strong edges)."""
    c = channel.astype(np.float32)
    h, w = (c.shape[0] // 2) * 2, (c.shape[1] // 2) * 2
    a, b = c[0:h:2, 0:w:2], c[0:h:2, 1:w:2]
    d, e = c[1:h:2, 0:w:2], c[1:h:2, 1:w:2]
    hh = np.abs(a - b - d + e) / 2.0
    if edge_mask is not None and (~edge_mask).sum() > 100:
        hh = hh[~edge_mask]
    # mean, not median: after JPEG most |HH| of a uint8 image are exactly 0 and the median
    # says nothing; for Gaussian noise E|x| = sigma sqrt(2 / pi)
    return float(hh.mean() * np.sqrt(np.pi / 2))


def noise_sigma(img: np.ndarray) -> Noise:
    """Robust noise level of ``img (H, W, 3) uint8`` (assumed BGR for the luma/chroma split;
    ``per_channel`` is order-free). Texture edges are excluded (Sobel magnitude above its 90th
    percentile), so a flat wall and a busy carpet with the same sensor read alike."""
    import cv2

    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    mag = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    mag = cv2.resize(mag[:h, :w], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    edges = mag > np.percentile(mag, 90)
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
    per = tuple(round(_mad_sigma(img[..., k], edges), 3) for k in range(3))
    return Noise(luma=round(_mad_sigma(ycc[..., 0], edges), 3),
                 chroma=round((_mad_sigma(ycc[..., 1], edges) + _mad_sigma(ycc[..., 2], edges)) / 2, 3),
                 per_channel=per)


def jpeg_quality(path) -> int | None:
    """libjpeg quality (1-100) a JPEG file was most likely saved at, from its luminance
    quantisation table scaled against the standard one; None for non-JPEG files."""
    from PIL import Image

    with Image.open(path) as im:
        tables = getattr(im, "quantization", None)
        if not tables:
            return None
        q = np.asarray(tables[0], np.float64)
    if q.size != 64:
        return None
    # PIL gives the table in zig-zag order for some versions, natural order for others: the
    # scale is a mean ratio either way only if both are sorted alike; sort both
    scale = float(np.median(np.sort(q) * 100.0 / np.sort(_STD_LUMA_Q)))
    quality = (200.0 - scale) / 2.0 if scale <= 100 else 5000.0 / scale
    return int(np.clip(round(quality), 1, 100))


@dataclass(frozen=True)
class Bands:
    """Uniform bands along the frame's edges, in pixels, and their colour (``"black"`` |
    ``"white"`` | ``"none"``)."""

    top: int
    bottom: int
    left: int
    right: int
    colour: str

    @property
    def any(self) -> bool:
        return self.colour != "none"


def _band_length(lines: np.ndarray, level: str, tol: float) -> int:
    """How many leading lines (rows of ``lines (N, L, 3)``) are uniform and dark/light."""
    mean = lines.reshape(len(lines), -1).mean(1)
    spread = lines.reshape(len(lines), -1).std(1)
    ok = (spread < tol) & ((mean < 24) if level == "black" else (mean > 232))
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if len(bad) else len(lines)


def letterbox_bands(img: np.ndarray, min_share: float = 0.03, tol: float = 6.0) -> Bands:
    """Letterbox/pillarbox bands of ``img (H, W, 3) uint8``: runs of uniform (std < ``tol``)
    near-black or near-white rows at the top and bottom (or columns left and right) that are
    each at least ``min_share`` of the side. Both bands of a pair must be there (a letterbox
    is centred); a white studio floor along one edge is not a band."""
    H, W = img.shape[:2]
    f = img.astype(np.float32)

    def edge_is_sharp(lines: np.ndarray, n: int) -> bool:
        """The line after a band holds picture across most of its length (a letterbox's
        edge), not more backdrop around a subject (a studio photo's white surround)."""
        if n == 0 or n >= len(lines):
            return False
        band = lines[:n].reshape(-1, 3).mean(0)
        return bool((np.abs(lines[min(n + 1, len(lines) - 1)] - band).max(-1) > 30).mean() > 0.5)

    for level in ("black", "white"):
        by_side = {}
        for side, lines in (("top", f), ("bottom", f[::-1]), ("left", f.transpose(1, 0, 2)),
                            ("right", f.transpose(1, 0, 2)[::-1])):
            n = _band_length(lines, level, tol)
            by_side[side] = n if edge_is_sharp(lines, n) else 0
        top, bottom, left, right = by_side["top"], by_side["bottom"], by_side["left"], by_side["right"]
        rows = top >= min_share * H and bottom >= min_share * H and top + bottom < H
        cols = left >= min_share * W and right >= min_share * W and left + right < W
        if rows or cols:
            return Bands(top if rows else 0, bottom if rows else 0, left if cols else 0, right if cols else 0, level)
    return Bands(0, 0, 0, 0, "none")


def crop_bands(img: np.ndarray, bands: Bands | None = None) -> np.ndarray:
    """``img`` without its letterbox bands (:func:`letterbox_bands` unless given)."""
    b = bands or letterbox_bands(img)
    H, W = img.shape[:2]
    return img[b.top:H - b.bottom, b.left:W - b.right]


def is_studio(img: np.ndarray, ring: float = 0.12, bright: float = 200.0, share: float = 0.7) -> bool:
    """Whether ``img (H, W, 3) uint8`` (letterbox bands removed first) is shot on white: at
    least ``share`` of a ``ring``-wide border around the frame is bright (grey > ``bright``),
    unsaturated and smooth (a seamless studio backdrop, not a white crib with bars)."""
    import cv2

    img = crop_bands(img)
    H, W = img.shape[:2]
    if H < 8 or W < 8:
        return False
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    grey = hsv[..., 2].astype(np.float32)
    smooth = np.abs(cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), 1.0), cv2.CV_32F)) < 4
    ok = (grey > bright) & (hsv[..., 1] < 40) & smooth
    r_h, r_w = max(1, int(ring * H)), max(1, int(ring * W))
    border = np.zeros((H, W), bool)
    border[:r_h], border[-r_h:], border[:, :r_w], border[:, -r_w:] = True, True, True, True
    return bool(ok[border].mean() >= share)


def text_boxes(img: np.ndarray, min_chars: int = 4) -> list[tuple[int, int, int, int]]:
    """Boxes ``(x, y, w, h)`` of text lines burnt into ``img (H, W, 3) uint8`` (captions,
    watermarks, logos with lettering).

    A caption line is a row of ``min_chars`` or more small, similar-height, high-contrast
    blobs (glyphs) side by side: MSER finds the glyph candidates, then candidates of similar
    height whose centres lie on one line with character-sized gaps are chained. Natural
    texture (carpet, leaves, fabric) rarely gives such a regular chain; printed patterns can,
    so the chain must also be high-contrast against its surround."""
    import cv2

    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    H, W = grey.shape
    mser = cv2.MSER_create(delta=5, min_area=max(6, H * W // 200000), max_area=max(60, H * W // 300))
    regions, rects = mser.detectRegions(grey)
    cands = []
    for pts, (x, y, w, h) in zip(regions, rects):
        if not (0.006 * H <= h <= 0.12 * H and 0.1 <= w / max(h, 1) <= 1.5):
            continue
        fill = len(pts) / float(w * h)
        if not 0.15 <= fill <= 0.95:  # glyph strokes: neither a dot-free blob nor a thin line
            continue
        inside = grey[pts[:, 1], pts[:, 0]].astype(np.float32).mean()
        x0, y0, x1, y1 = max(0, x - 2), max(0, y - 2), min(W, x + w + 2), min(H, y + h + 2)
        around = grey[y0:y1, x0:x1].astype(np.float32)
        if abs(inside - around.mean()) < 25 and around.std() < 30:
            continue  # low contrast: texture, not print
        cands.append((x, y, w, h, inside, float(inside > around.mean())))
    cands = sorted(set(cands))
    boxes = []
    for polarity in (0.0, 1.0):  # light-on-dark and dark-on-light print, each chained alone
        same = [cd[:5] for cd in cands if cd[5] == polarity]
        if len(same) >= min_chars:
            boxes += _chain_glyphs(np.array(same, np.float32), min_chars)
    return boxes


def _chain_glyphs(c: np.ndarray, min_chars: int) -> list[tuple[int, int, int, int]]:
    """Text-line boxes from glyph candidates ``c (N, 5)``: x, y, w, h, mean grey."""
    tone = c[:, 4]
    cx, cy, hh = c[:, 0] + c[:, 2] / 2, c[:, 1] + c[:, 3] / 2, c[:, 3]
    # link glyphs: similar height, same baseline band, horizontal gap under ~1.5 heights
    n = len(c)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = np.argsort(cx)
    for a_i, a in enumerate(order):
        for b in order[a_i + 1:]:
            gap = c[b, 0] - (c[a, 0] + c[a, 2])
            if gap > 1.5 * max(hh[a], hh[b]):
                break
            if abs(cy[a] - cy[b]) < 0.35 * max(hh[a], hh[b]) and 0.6 < hh[a] / hh[b] < 1.6 and gap > -0.5 * hh[a]:
                parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    boxes = []
    for members in groups.values():
        # distinct glyphs: nested MSER regions of one glyph share their x-centre
        xs = np.sort(cx[members])
        distinct = 1 + int((np.diff(xs) > 0.3 * float(np.median(hh[members]))).sum())
        if distinct < min_chars:
            continue
        m = c[members]
        x0, y0 = m[:, 0].min(), m[:, 1].min()
        x1, y1 = (m[:, 0] + m[:, 2]).max(), (m[:, 1] + m[:, 3]).max()
        if (x1 - x0) < 2.5 * (y1 - y0):
            continue  # a text line is long and flat
        if np.std(tone[members]) > 30:
            continue  # glyphs of one line are printed in one ink; grass blades are not
        # a caption stands alone: few other glyph candidates just above and below it
        lh = y1 - y0
        mid = np.abs(cy - (y0 + y1) / 2)
        near = (cx > x0) & (cx < x1) & (mid < 1.5 * lh) & (mid > 0.6 * lh)
        if near.sum() > 0.5 * len(members):
            continue
        boxes.append((int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
    return boxes


@dataclass(frozen=True)
class Corners:
    """What :func:`empty_corners` found: the corners (``"tl" | "tr" | "bl" | "br"``) that are
    empty (black or one flat colour over a wedge) or stretched (smeared: no detail across,
    detail along), and each corner's measures."""

    empty: tuple[str, ...]
    stretched: tuple[str, ...]
    measures: dict

    @property
    def ok(self) -> bool:
        return not self.empty and not self.stretched


def empty_corners(img: np.ndarray, size: float = 0.12, flat_std: float = 0.75,
                  dark: float = 12.0, smear_ratio: float = 12.0) -> Corners:
    """Check the four corners of ``img (H, W, 3) uint8`` for what a warp leaves behind.

    Each corner's square (``size`` of the shorter side) is split into the wedge at the very
    corner (its corner quarter square) and the rest. Empty: most of the wedge is black
    (grey < ``dark``) while the rest is not, or the wedge is one flat colour (std <
    ``flat_std`` grey levels) while the rest of the square is not (a constant border fill).
    Stretched: the square's gradients all run one way (BORDER_REPLICATE smears a single row
    or column into streaks: energy across / along > ``smear_ratio``) while there is texture,
    and most neighbouring lines across the streaks differ (median difference across > 3x
    along + 0.5), unlike one straight edge crossing the square.
    A whole frame of one flat colour (a studio backdrop, a letterbox band) is not flagged:
    only a corner that differs from the rest of its square is."""
    import cv2

    img = crop_bands(img) if img.ndim == 3 else img  # a letterbox band is a frame, not a hole
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32) if img.ndim == 3 else img.astype(np.float32)
    H, W = grey.shape
    s = max(4, int(size * min(H, W)))
    yy, xx = np.mgrid[0:s, 0:s]
    wedge = (xx < max(2, s // 4)) & (yy < max(2, s // 4))  # the corner's own pixels
    empty, stretched, measures = [], [], {}
    for name, sl in (("tl", (slice(0, s), slice(0, s))), ("tr", (slice(0, s), slice(W - s, W))),
                     ("bl", (slice(H - s, H), slice(0, s))), ("br", (slice(H - s, H), slice(W - s, W)))):
        sq = grey[sl]
        sq = sq[:, ::-1] if name[1] == "r" else sq
        sq = sq[::-1] if name[0] == "b" else sq  # corner pixel now at (0, 0)
        w_px, rest = sq[wedge], sq[~wedge]
        gx, gy = cv2.Sobel(sq, cv2.CV_32F, 1, 0), cv2.Sobel(sq, cv2.CV_32F, 0, 1)
        ex, ey = float((gx ** 2).mean()), float((gy ** 2).mean())
        ratio = max(ex, ey) / max(min(ex, ey), 1e-3)
        # streaks change between most neighbouring lines across them and hardly along them;
        # one straight edge through the square (a mat's border) changes at one line only
        dx, dy = np.abs(np.diff(sq, axis=1)), np.abs(np.diff(sq, axis=0))
        across, along = (np.median(dx), np.median(dy)) if ex > ey else (np.median(dy), np.median(dx))
        m = {"wedge_black": round(float((w_px < dark).mean()), 3), "wedge_mean": round(float(w_px.mean()), 2), "wedge_std": round(float(w_px.std()), 2),
             "rest_std": round(float(rest.std()), 2), "gradient_ratio": round(ratio, 1),
             "across": round(float(across), 2), "along": round(float(along), 2)}
        measures[name] = m
        # sensor noise and JPEG leave a few grey levels of std even on a constant fill
        black = (w_px < dark).mean() > 0.6 and (rest >= dark + 10).mean() > 0.02  # a hole, not a dark photo
        flat = (w_px.std() < flat_std and rest.std() > 8 and abs(w_px.mean() - rest.mean()) > 8
                and w_px.mean() < 245)  # clipped highlights are flat in real photos too
        if black or flat:
            empty.append(name)
        elif ratio > smear_ratio and max(ex, ey) > 50.0 and across > 3 * along + 0.5:
            stretched.append(name)
    return Corners(tuple(empty), tuple(stretched), measures)


PERSPECTIVES = ("floor", "room")


@dataclass(frozen=True)
class Perspective:
    """How a photo crop was seen: ``kind`` "floor" (a floor, mat or blanket from above: no
    horizon) or "room" (a room from the side: walls over a floor), and the two measures it
    was decided on."""

    kind: str
    vertical_share: float  # share of long straight edges within 12 deg of vertical
    top_bottom: float  # Lab distance between the mean colours of the top and bottom thirds

    def record(self) -> dict:
        return {"perspective": self.kind, "vertical_share": round(self.vertical_share, 3),
                "top_bottom": round(self.top_bottom, 2)}


def perspective(img: np.ndarray, min_top_bottom: float = 18.0, min_vertical: float = 0.2) -> Perspective:
    """Whether ``img (H, W, 3) uint8`` BGR shows a floor from above or a room from the side.

    A room seen from the side has a horizon: its top (wall, furniture) differs from its
    bottom (floor) in colour, and its verticals (door frames, table legs, sofa sides) stay
    vertical, so long straight edges bunch near 90 deg. A floor or mat seen from above has
    one surface top to bottom and edges in every direction. "room" needs both signs
    (``top_bottom`` Lab distance >= ``min_top_bottom`` and ``vertical_share`` >=
    ``min_vertical``), or a strong horizon (1.7x the colour distance) alone; anything else is
    "floor". Cheap (a 320 px Canny + Hough) and deliberately conservative about calling a
    crop a floor only when it is one surface: a room photo must never become a floor."""
    import cv2

    s = 320.0 / max(img.shape[:2])
    small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img
    H, W = small.shape[:2]
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)
    third = max(1, H // 3)
    top_bottom = float(np.linalg.norm(lab[:third].reshape(-1, 3).mean(0) - lab[-third:].reshape(-1, 3).mean(0)))
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (0, 0), 1.2)
    edges = cv2.Canny(grey, 50, 150)
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=40, minLineLength=max(12, int(0.15 * min(H, W))),
                            maxLineGap=4)
    vertical = 0.0
    seg = np.zeros((0, 4)) if lines is None else np.asarray(lines, np.float32).reshape(-1, 4)
    if len(seg) >= 3:
        d = seg[:, 2:] - seg[:, :2]
        length = np.hypot(d[:, 0], d[:, 1])
        angle = np.degrees(np.arctan2(np.abs(d[:, 1]), np.abs(d[:, 0])))  # 90 = vertical
        vertical = float(length[angle > 78].sum() / max(length.sum(), 1e-6))
    room = (top_bottom >= min_top_bottom and vertical >= min_vertical) or top_bottom >= 1.7 * min_top_bottom
    return Perspective("room" if room else "floor", vertical, top_bottom)
