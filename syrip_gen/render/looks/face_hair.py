"""The face and hair painted onto a procedural body texture: where the scalp is and where the
face's features lie on the body (from its rest pose), and how both are painted in UV space.

Both maps are made once per topology from the rest pose kept on
:class:`~syrip_gen.render.looks.uv.TopologyMaps` (:func:`scalp_map`, :func:`face_features`), so a
texture depends on its generator and the topology, never on what was called before.
"""
from __future__ import annotations

import numpy as np

from syrip_gen.body.base import MeshTopology
from syrip_gen.render.looks.uv import TopologyMaps

# infant hair: black, dark/mid/light brown, auburn, blond (sRGB)
HAIR_COLOURS = np.array([(28, 22, 20), (52, 36, 26), (92, 64, 42), (140, 104, 70), (128, 70, 40), (196, 160, 108)],
                        dtype=np.float32)
HAIR_WEIGHTS = (0.3, 0.25, 0.2, 0.1, 0.05, 0.1)
EYES = ("eye.L", "eye.R")  # the eyeballs' part names (rig anny-notoes-nohands)
FACE_MAPS = ("brow", "lid", "mouth", "pupil", "iris")


def lowfreq_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise ``(size, size) float32`` in about [-1, 1] (bicubic upsampled grid)."""
    import cv2

    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


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
    y_eye, z_eye = v[eyes, 1].mean(), v[eyes, 2].mean()
    top, back = v[head, 1].max(), v[head, 2].min()
    depth = np.clip((z_eye - v[:, 2]) / max(z_eye - back, 1e-6), 0, 1)  # 0 at the eyes' plane, 1 at the back
    hairline = y_eye + (top - y_eye) * (0.45 - 0.85 * depth)  # forehead high, nape low
    return np.where(head, (v[:, 1] - hairline) / max(top - y_eye, 1e-6), -1.0).astype(np.float32)




def scalp_map(maps: TopologyMaps) -> np.ndarray | None:
    """:func:`scalp_indicator` of ``maps``' rest pose, made once; None without a rest pose."""
    if maps.rest_vertices is None:
        return None
    return maps.memo("scalp", lambda: scalp_indicator(maps.topology, maps.rest_vertices))


def face_features(maps: TopologyMaps) -> np.ndarray | None:
    """:func:`face_maps` of ``maps``' rest pose, made once; None without a rest pose."""
    if maps.rest_vertices is None:
        return None
    return maps.memo("face", lambda: face_maps(maps.topology, maps.rest_vertices))


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


def paint_face(tex: np.ndarray, maps: TopologyMaps, features: np.ndarray, skin: np.ndarray,
               eye_colour: np.ndarray, brow_colour: np.ndarray) -> None:
    """Paint brows, lid lines and lips from :func:`face_maps` ``features (V, 5)`` into ``tex (S, S, 3)
    uint8`` in place: each feature's colour blended in by its soft mask interpolated per texel,
    so at ~100 px a head shows dark eyes under lash lines, faint brows and a mouth instead of
    flat paint. ``eye_colour`` is unused for now (see the note below). No random draws."""
    size, topology = tex.shape[0], maps.topology
    raster = maps.raster(size)
    corner = features[np.asarray(topology.render_vertex_index)][np.asarray(topology.faces)[raster.triangle]]  # (S,S,3,5)
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


def paint_hair(tex: np.ndarray, maps: TopologyMaps, scalp: np.ndarray, rng: np.random.Generator,
               p_hair: float) -> dict | None:
    """Paint hair over the scalp: a random hairline height and colour, a soft, wispy hairline,
    strand-like shading and thin spots where the skin shows through (a textured cap, not a
    solid helmet); the texture is changed in place. ``scalp``: :func:`scalp_map`; ``p_hair``:
    the chance of any hair. Returns its description, or None when this infant is bald."""
    import cv2

    if rng.uniform() >= p_hair:
        return None
    size, topology = tex.shape[0], maps.topology
    raster = maps.raster(size)
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
    clumps = lowfreq_noise(rng, size, 12)
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
