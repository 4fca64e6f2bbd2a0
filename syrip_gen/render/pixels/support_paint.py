"""The support plane drawn without GL: where each pixel's ray meets it, whether it covers the
frame, pyrender's shading of it and its mipmapped texture warp (pure numpy + OpenCV).

Why: on llvmpipe the support's per-pixel PBR shading was ~60 % of a frame. With
``analytic_support=True`` and no shadows, :class:`~syrip_gen.render.pixels.renderer.Renderer` lets
GL draw the body alone and :func:`paint_support` draws the plane under it here; the result
matches GL's to a few grey levels (tests/render/test_render_core.py). :func:`plane_depth` also lets a
single colour pass tell body from support, and :func:`support_covers_frame` tells the image
maker when no background is needed.
"""
from __future__ import annotations

import numpy as np

from syrip_gen.geometry import Camera
from syrip_gen.render.world.scene import Scene, Support

def plane_depth(camera: Camera, support: Support) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel's ray meets the support rectangle: camera depth ``(H, W) float32``
    and a hit mask ``(H, W) bool`` (rays that miss the rectangle or hit it behind the camera
    are False). Pure numpy; lets one colour pass tell body from support (see ``render``).

    A ray's world direction is affine in the pixel (u, v), so each component is a row vector
    plus a column vector (``(1, W) + (H, 1)``): ~1 ms at 640x480 instead of a (H, W, 3) matmul."""
    H, W = camera.height, camera.width
    kinv = np.linalg.inv(camera.K)
    A = camera.R.T @ kinv  # pixel (u, v, 1) -> world direction of its ray (camera z = 1)
    u = np.arange(W, dtype=np.float64)[None, :]
    v = np.arange(H, dtype=np.float64)[:, None]
    d = [(A[k, 0] * u).astype(np.float32) + (A[k, 1] * v + A[k, 2]).astype(np.float32) for k in range(3)]
    c = -camera.R.T @ camera.t
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.float32(support.height - c[1]) / d[1]  # = camera depth, since ray z = 1
    (cx, cz), (sx, sz) = support.center, support.size
    x = np.float32(c[0] - cx) + s * d[0]
    z = np.float32(c[2] - cz) + s * d[2]
    hit = (s > 0) & (np.abs(x) <= sx / 2) & (np.abs(z) <= sz / 2)
    return np.where(hit, s, np.float32(0)), hit


def plane_depth_slope(camera: Camera, support: Support, z_plane: np.ndarray) -> np.ndarray:
    """``(H, W) float32`` |d z / d u| + |d z / d v| (metres per pixel) of the support plane's
    camera depth ``z_plane`` (from :func:`plane_depth`). With z = k / (a u + b v + c) the
    derivatives are -z^2 (a, b) / k: exact, no finite differences across the rectangle's edge."""
    A = camera.R.T @ np.linalg.inv(camera.K)
    k = float(support.height - (-camera.R.T @ camera.t)[1])
    if abs(k) < 1e-12:
        return np.zeros_like(z_plane)
    return z_plane * z_plane * np.float32((abs(A[1, 0]) + abs(A[1, 1])) / abs(k))


def support_covers_frame(camera: Camera, support: Support) -> bool:
    """True when every pixel's ray meets the support rectangle in front of the camera (then
    nothing of the background can show). The pixels whose rays hit a convex planar region in
    front of the camera form a convex set, so checking the four frame corners is enough."""
    W, H = camera.width, camera.height
    corners = np.array([[-0.5, -0.5, 1], [W - 0.5, -0.5, 1], [-0.5, H - 0.5, 1], [W - 0.5, H - 0.5, 1]])
    d = corners @ np.linalg.inv(camera.K).T @ camera.R  # world ray directions (camera z = 1)
    c = -camera.R.T @ camera.t
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (support.height - c[1]) / d[:, 1]
    if not np.all(np.isfinite(s) & (s > 0)):
        return False
    (cx, cz), (sx, sz) = support.center, support.size
    x, z = c[0] + s * d[:, 0] - cx, c[2] + s * d[:, 2] - cz
    return bool(np.all((np.abs(x) <= sx / 2) & (np.abs(z) <= sz / 2)))


_SRGB_TO_LINEAR = None  # (256,) float32, pyrender's srgb_to_linear per uint8 value
_LINEAR_TO_OUT = None  # (65536,) uint8, pyrender's output pow(x, 1/2.2) of x = i / 65535


def _colour_luts() -> tuple[np.ndarray, np.ndarray]:
    global _SRGB_TO_LINEAR, _LINEAR_TO_OUT
    if _SRGB_TO_LINEAR is None:
        x = np.arange(256) / 255.0
        _SRGB_TO_LINEAR = np.where(x < 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)
        _LINEAR_TO_OUT = np.round(255 * (np.arange(65536) / 65535.0) ** (1 / 2.2)).astype(np.uint8)
    return _SRGB_TO_LINEAR, _LINEAR_TO_OUT


def support_lighting(scene: Scene, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pyrender's metallic-roughness shading of the up-facing support at world ``points (N, 3)``
    (metallic 0, roughness ``support.roughness``, no shadows): the linear colour there is
    ``base_linear * diffuse + specular`` with ``diffuse, specular (N, 3) float64``. Same terms
    as pyrender's ``mesh.frag`` (Cook-Torrance GGX, Schlick Fresnel, f0 = 0.04)."""
    roughness = float(np.clip(scene.support.roughness, 0.04, 1.0))
    cam_pos = -scene.camera.R.T @ scene.camera.t
    view = cam_pos - points
    view /= np.linalg.norm(view, axis=1, keepdims=True)
    nv = np.clip(np.abs(view[:, 1]), 0.001, 1.0)
    k = (roughness + 1.0) ** 2 / 8.0
    a2 = roughness ** 4
    diffuse = np.tile(np.asarray(scene.ambient, np.float64), (len(points), 1))
    specular = np.zeros_like(diffuse)
    for light in scene.lights:
        if light.kind == "directional":
            to_light = np.broadcast_to(-light.direction, points.shape)
            radiance = np.full(len(points), float(light.intensity))
        else:
            to_light = light.position - points
            dist2 = np.sum(to_light ** 2, axis=1)
            to_light = to_light / np.sqrt(dist2)[:, None]
            radiance = float(light.intensity) / dist2
        h = to_light + view
        h /= np.linalg.norm(h, axis=1, keepdims=True)
        nl = np.clip(to_light[:, 1], 0.001, 1.0)
        nh = np.clip(h[:, 1], 0.0, 1.0)
        vh = np.clip(np.sum(view * h, axis=1), 0.0, 1.0)
        F = 0.04 + 0.96 * (1.0 - vh) ** 5
        G = nv / (nv * (1 - k) + k) * nl / (nl * (1 - k) + k)
        D = a2 / (np.pi * (nh ** 2 * (a2 - 1.0) + 1.0) ** 2)
        rad = radiance[:, None] * np.asarray(light.color, np.float64)[None]
        diffuse += (nl * (1.0 - F) * 0.96 / np.pi)[:, None] * rad
        specular += (nl * F * G * D / (4.0 * nl * nv + 0.001))[:, None] * rad
    return diffuse, specular


def _warp_mipmapped(tex: np.ndarray, M: np.ndarray, W: int, H: int, uu: np.ndarray, vv: np.ndarray,
                    hit: np.ndarray, full: tuple[int, int]) -> np.ndarray:
    """``tex`` warped to ``(H, W, 3) uint8`` by ``M`` (pixel -> texel, wrapping), filtered like
    GL's trilinear mipmapping: the mip level lambda = log2(texel footprint of a pixel) is
    found on the grid ``uu, vv`` (cell centres), box-filtered levels are warped and blended by
    lambda. When lambda hardly varies over the support (top views) one level is enough."""
    import cv2

    def texel(u, v):
        m = M @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
        return m[:2] / m[2]

    base = texel(uu, vv)
    foot = np.maximum(np.linalg.norm(texel(uu + 1, vv) - base, axis=0),
                      np.linalg.norm(texel(uu, vv + 1) - base, axis=0)).reshape(uu.shape)
    on = hit[np.clip(vv.astype(int), 0, H - 1), np.clip(uu.astype(int), 0, W - 1)]
    max_level = int(np.log2(max(1, min(tex.shape[:2]))))
    lam = np.clip(np.log2(np.maximum(np.nan_to_num(foot, nan=1.0, posinf=1e6), 1e-6)), 0, max_level)
    lam_on = lam[on] if on.any() else lam.ravel()
    lo, hi = np.percentile(lam_on, [5, 95])
    if hi - lo < 0.75:
        levels = [int(np.floor(np.median(lam_on) + 0.5))]
    else:
        levels = list(range(int(np.floor(lo)), min(int(np.ceil(hi)), max_level) + 1))[:4]
    pyramid, mats, m = [tex], [M], M
    for _ in range(levels[-1]):
        t = pyramid[-1]
        pyramid.append(cv2.resize(t, (max(1, t.shape[1] // 2), max(1, t.shape[0] // 2)),
                                  interpolation=cv2.INTER_AREA))
        m = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1]]) @ m  # texel centres of the half size
        mats.append(m)

    def warp(k, x0=0, y0=0, x1=W, y1=H):  # the destination window [y0:y1, x0:x1] only
        shift = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])
        return cv2.warpPerspective(pyramid[k], mats[k] @ shift, (x1 - x0, y1 - y0),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_WRAP)

    if len(levels) == 1:
        return warp(levels[0])
    lam_full = cv2.resize(np.where(on, lam, np.median(lam_on)).astype(np.float32), full,
                          interpolation=cv2.INTER_LINEAR)[:H, :W]
    lam_full = np.clip(lam_full, levels[0], levels[-1])
    acc = np.zeros((H, W, 3), np.float32)
    for k in levels:  # each level only where its weight is > 0 (a band of rows on a floor)
        w = np.clip(1.0 - np.abs(lam_full - k), 0.0, 1.0)
        rows, cols = np.flatnonzero(w.any(1)), np.flatnonzero(w.any(0))
        if not len(rows):
            continue
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        acc[y0:y1, x0:x1] += warp(k, x0, y0, x1, y1).astype(np.float32) * w[y0:y1, x0:x1, None]
    acc += 0.5
    return acc.astype(np.uint8)


def paint_support(scene: Scene, under: np.ndarray, step: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The support drawn without GL over ``under (H, W, 3) uint8`` (the filled background):
    returns ``rgb (H, W, 3) uint8``, the support's camera depth ``(H, W) float32`` (0 off it)
    and its hit mask ``(H, W) bool``.

    The texture is mapped by the plane's homography (``cv2.warpPerspective``, wrapping tiles)
    with trilinear-like mipmapping (:func:`_warp_mipmapped`; one level for top views). Lighting is
    :func:`support_lighting` on a grid every ``step`` pixels, upsampled (it varies smoothly
    over a plane). Matches the GL support to a few grey levels (tests/render/test_render_core.py) at
    ~10 ms instead of ~60 ms of llvmpipe shading. Valid without shadows only.
    """
    import cv2

    cam, sup = scene.camera, scene.support
    H, W = cam.height, cam.width
    z_plane, hit = plane_depth(cam, sup)
    if not hit.any():
        return under, z_plane, hit
    tex = np.ascontiguousarray(sup.texture)
    th, tw = tex.shape[:2]
    (cx, cz), (sx, sz) = sup.center, sup.size
    tu, tv = (sup.tile, sup.tile) if sup.tile else (sx, sz)
    # plane (x, z, 1) -> pixel; plane -> texel (col, row) as pyrender samples it (rows flipped)
    R, t = cam.R, cam.t
    img_from_plane = cam.K @ np.stack([R[:, 0], R[:, 2], R[:, 1] * sup.height + t], 1)
    tex_from_plane = np.array([[tw / tu, 0, -(cx - sx / 2) * tw / tu - 0.5],
                               [0, th / tv, -(cz + sz / 2) * th / tv - 0.5], [0, 0, 1]])
    M = tex_from_plane @ np.linalg.inv(img_from_plane)  # pixel -> texel
    # grid of cell centres (every ``step`` px): mip level and lighting are computed there
    gh, gw = -(-H // step), -(-W // step)
    gu = (np.arange(gw) + 0.5) * step - 0.5
    gv = (np.arange(gh) + 0.5) * step - 0.5
    uu, vv = np.meshgrid(gu, gv)
    full = (gw * step, gh * step)
    warped = _warp_mipmapped(tex, M, W, H, uu, vv, hit, full)
    # lighting on the coarse grid, bilinear up to full size
    rays = np.stack([uu.ravel(), vv.ravel(), np.ones(uu.size)], 1) @ np.linalg.inv(cam.K).T @ R
    c = -R.T @ t
    with np.errstate(divide="ignore", invalid="ignore"):
        s_ray = (sup.height - c[1]) / rays[:, 1]
    s_ray = np.where(np.isfinite(s_ray) & (s_ray > 0), s_ray, 1e3)  # off-plane cells: any point
    points = c + s_ray[:, None] * rays
    diffuse, specular = support_lighting(scene, points)
    diffuse = cv2.resize(diffuse.reshape(gh, gw, 3).astype(np.float32), full, interpolation=cv2.INTER_LINEAR)[:H, :W]
    specular = cv2.resize(specular.reshape(gh, gw, 3).astype(np.float32), full, interpolation=cv2.INTER_LINEAR)[:H, :W]
    to_linear, to_out = _colour_luts()
    lin = to_linear[warped]
    lin *= diffuse
    lin += specular
    np.clip(lin, 0.0, 1.0, out=lin)
    lin *= 65535.0
    lin += 0.5
    out = to_out[lin.astype(np.uint16)]
    rgb = under.copy()
    cv2.copyTo(out, hit.view(np.uint8), rgb)
    return rgb, z_plane, hit


def support_quad(support: Support) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positions ``(4, 3)``, normals ``(4, 3)``, UVs ``(4, 2)`` float32 and faces ``(2, 3)`` of an
    up-facing rectangle (counter-clockwise seen from above)."""
    (cx, cz), (sx, sz) = support.center, support.size
    x0, x1, z0, z1 = cx - sx / 2, cx + sx / 2, cz - sz / 2, cz + sz / 2
    pos = np.array([[x0, support.height, z1], [x1, support.height, z1],
                    [x1, support.height, z0], [x0, support.height, z0]], np.float32)
    tile = support.tile or None
    ru, rv = (sx / tile, sz / tile) if tile else (1.0, 1.0)
    uv = np.array([[0, 0], [ru, 0], [ru, rv], [0, rv]], np.float32)
    normals = np.tile(np.array([[0, 1, 0]], np.float32), (4, 1))
    return pos, normals, uv, np.array([[0, 1, 2], [0, 2, 3]], np.int64)
