"""Turn a :class:`~syrip_gen.render.scene.Scene` into pixels with pyrender on EGL.

The only module that imports pyrender/OpenGL (lazily, inside :func:`_create_offscreen`).

Contract of :meth:`Renderer.render` (H, W = the renderer's size):

- ``rgb (H, W, 3) uint8``: body and support, lit, composited over the background (the
  scene's background resized to cover the frame and centre-cropped; mid grey when None);
- ``depth (H, W) float32``: metres along the camera z of the front-most surface, 0 where
  nothing was drawn;
- ``body_depth (H, W) float32``: the same for the body alone (0 off the body), so a
  self-occluded or support-occluded keypoint can be told from a visible one;
- ``mask (H, W) bool``: pixels where a body is the visible front-most surface;
- ``labels (H, W) int8``: which infant (index into ``scene.bodies``) each mask pixel shows, -1
  elsewhere; with several infants from one extra flat-colour (segmentation) pass, so each
  infant's own mask is ``labels == k``;
- ``parts (H, W) int16`` (only with ``parts=True``): body-part id (index into
  ``topology.part_names``) of each mask pixel, -1 elsewhere.

Speed (a 2-core CPU with Mesa llvmpipe is the target; see benchmarks/render_core.py):

- one EGL context per process (module-level :data:`_GL`), shared by all ``Renderer``s;
- the body primitive (index buffer, UVs), the support quad and their textures stay on the
  GL side between frames. When the vertices change, only the interleaved vertex buffer
  (positions, normals, UVs; 32 bytes x render vertex) is rewritten with ``glBufferSubData``
  into pyrender's own buffer (``Primitive._buffers[0]``, layout fixed by
  ``Primitive._add_to_context``); rebuilding the pyrender mesh instead would re-create the
  VAO and all buffers every frame. The primitive's ``positions``/``normals`` are kept in
  sync too, so should pyrender ever re-add the primitive (another scene rendered in between)
  it uploads the right data;
- a new texture of the same size goes in with ``glTexSubImage2D`` into the existing GL
  texture (plus mipmaps); a different size replaces the pyrender ``Texture``;
- normals are computed here with numpy (``scene.vertex_normals``), not through trimesh;
- ``body_depth`` comes from a second, depth-only pass with the support hidden (cheaper than
  a segmentation pass: no colour attachment is read back); the mask is where the full
  depth equals the body depth;
- with ``analytic_support=True`` (what the dataset writer uses) and no shadows, GL draws the
  body alone and :func:`paint_support` draws the support plane in numpy (homography texture
  warp + pyrender's own shading terms on a coarse grid): the support's per-pixel PBR shading
  was ~60 % of a llvmpipe frame; the result matches GL's to a few grey levels, and the mask is
  exact (GL's one-pass mask reads one MSAA sample's depth, so its tolerance grows with the
  plane's depth slope, :func:`plane_depth_slope`);
- ``parts`` are found without GL: visible body pixels are lifted to 3D with ``body_depth``
  and given the part of the nearest body vertex (scipy cKDTree).

GPU: the same code runs on an NVIDIA GPU through the NVIDIA EGL driver (no Mesa assumption);
``EGL_DEVICE_ID`` picks the GPU (pyrender's variable, default 0; on a machine with several
EGL devices, e.g. NVIDIA + Mesa, check which index is the GPU). Do not fork a process after
a Renderer exists (EGL contexts do not survive fork); create it inside each worker process.
Renders from several threads of one process are serialised by a lock (one context).
"""
from __future__ import annotations

import ctypes.util
import logging
import os
import threading
from collections.abc import MutableSet
from dataclasses import dataclass

import numpy as np

from syrip_gen.body.base import MeshTopology
from syrip_gen.errors import UserError
from syrip_gen.geometry import Camera, look_at
from syrip_gen.render.scene import Light, Scene, Support, vertex_normals

log = logging.getLogger(__name__)

# OpenCV camera axes (x right, y down, z forward) -> OpenGL camera axes (y up, z backward)
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])
_GL = None  # the process's one pyrender.OffscreenRenderer (one EGL context per process)
_LOCK = threading.RLock()  # the one context can be current in one thread at a time
_MSAA_SAMPLES = 4  # multisampling of the offscreen framebuffer (see _import_pyrender)
_BODY_MASK_TOL = 1e-3  # metres: depth within this of the support plane (or body) counts as on it


@dataclass
class RenderResult:
    """One rendered frame; see the module docstring for the contract."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32, metres, 0 = nothing
    body_depth: np.ndarray  # (H, W) float32, metres, 0 = no body
    mask: np.ndarray  # (H, W) bool
    parts: np.ndarray | None = None  # (H, W) int16, -1 off the body
    labels: np.ndarray | None = None  # (H, W) int8 index of the infant seen (scene.bodies), -1 off the bodies


# ---- the GL context ----------------------------------------------------------------------

def _import_pyrender():
    """Import pyrender for headless EGL rendering (PYOPENGL_PLATFORM must be set first)."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    # pyrender 0.1.45 uses ``np.infty`` (mesh bounds), an alias numpy 2.0 removed; restore it
    # (same value) rather than pinning numpy < 2.
    if not hasattr(np, "infty"):
        np.infty = np.inf
    import pyrender
    import pyrender.renderer as pr_renderer

    if not getattr(pr_renderer, "_syrip_msaa_patch", False):
        # pyrender hard-codes 4x MSAA for its offscreen framebuffer; route the call through
        # _MSAA_SAMPLES so a Renderer can choose (on llvmpipe 4x costs ~2-3x the shading time).
        storage = pr_renderer.glRenderbufferStorageMultisample

        def storage_with_our_samples(target, _samples, *rest):
            return storage(target, _MSAA_SAMPLES, *rest)

        pr_renderer.glRenderbufferStorageMultisample = storage_with_our_samples
        pr_renderer._syrip_msaa_patch = True
    return pyrender


def _create_offscreen(width: int, height: int):
    """A new ``pyrender.OffscreenRenderer`` (raises whatever pyrender/PyOpenGL/EGL raise)."""
    pyrender = _import_pyrender()
    return pyrender.OffscreenRenderer(width, height)


def _missing_gl_libraries() -> list[str]:
    wanted = {"EGL": "libEGL.so.1", "GL": "libGL.so.1"}
    return [lib for name, lib in wanted.items() if ctypes.util.find_library(name) is None]


def egl_error_message(err: BaseException) -> str:
    """One line: why no EGL context could be made and how to get one."""
    missing = _missing_gl_libraries()
    what = f"{', '.join(missing)} not found" if missing else f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    platform = os.environ.get("PYOPENGL_PLATFORM", "egl")
    return (f"cannot open an offscreen OpenGL context (PYOPENGL_PLATFORM={platform}; {what}); "
            "install EGL + Mesa (Debian/Ubuntu: `sudo apt-get install libegl1 libgl1-mesa-dri`) "
            "or, on an NVIDIA GPU, the NVIDIA driver with its EGL library (libEGL_nvidia)")


def _offscreen(width: int, height: int):
    """The process's offscreen renderer, sized ``width x height`` (created on first use)."""
    global _GL
    if _GL is None:
        try:
            _GL = _create_offscreen(width, height)
        except UserError:
            raise
        except Exception as err:  # any failure here is an environment problem
            raise UserError(egl_error_message(err)) from err
    _GL.viewport_width, _GL.viewport_height = int(width), int(height)
    return _GL


def _use_msaa(gl, samples: int) -> None:
    """Switch the shared framebuffer to ``samples``x multisampling (rebuilt on the next frame)."""
    global _MSAA_SAMPLES
    if samples != _MSAA_SAMPLES:
        _MSAA_SAMPLES = int(samples)
        if gl._renderer is not None and gl._renderer._main_fb is not None:
            gl._platform.make_current()
            gl._renderer._delete_main_framebuffer()


# ---- pure helpers --------------------------------------------------------------------------

def camera_pose_gl(camera: Camera) -> np.ndarray:
    """OpenCV world->camera ``(R, t)`` -> pyrender camera-to-world pose ``(4, 4)`` (GL axes)."""
    pose = np.eye(4)
    pose[:3, :3] = camera.R.T
    pose[:3, 3] = -camera.R.T @ camera.t
    return pose @ _CV_TO_GL


def fill_background(image: np.ndarray | None, width: int, height: int) -> np.ndarray:
    """Background ``(h, w, 3) uint8`` resized to cover ``width x height`` and centre-cropped;
    None -> mid grey. Returns ``(height, width, 3) uint8``."""
    if image is None:
        return np.full((height, width, 3), 128, np.uint8)
    import cv2

    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    s = max(width / w, height / h)
    nw, nh = max(width, round(w * s)), max(height, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    big = cv2.resize(image, (nw, nh), interpolation=interp)
    y0, x0 = (nh - height) // 2, (nw - width) // 2
    return big[y0:y0 + height, x0:x0 + width]


def composite(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Premultiplied ``rgba (H, W, 4) uint8`` (pyrender's resolved MSAA over a transparent
    clear colour) over ``background (H, W, 3) uint8`` -> ``(H, W, 3) uint8``.

    ``rgb + background * (255 - alpha) / 255`` in saturating uint8 OpenCV arithmetic
    (~1 ms at 640x480; the float32 numpy version took ~10x longer)."""
    import cv2

    inv_alpha = cv2.cvtColor(np.ascontiguousarray(255 - rgba[..., 3]), cv2.COLOR_GRAY2RGB)
    return cv2.add(np.ascontiguousarray(rgba[..., :3]), cv2.multiply(background, inv_alpha, scale=1.0 / 255.0))


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
    over a plane). Matches the GL support to a few grey levels (tests/test_render_core.py) at
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


def light_pose(light: Light) -> np.ndarray:
    """pyrender node pose ``(4, 4)`` of a light: directional lights shine along the node's -z."""
    pose = np.eye(4)
    if light.kind == "point":
        pose[:3, 3] = light.position
        return pose
    z = -light.direction
    helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    return pose


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


# ---- the renderer ----------------------------------------------------------------------------

class _OrderedNodeSet(MutableSet):
    """A set that iterates in insertion order. pyrender keeps a scene's light nodes in plain
    sets, iterated in hash (memory address) order, and the shader sums the lights in that
    order: the same scene's pixels then differ by a grey level depending on what the process
    drew before (whether lights were made early or late). With this order they depend on
    the scene alone."""

    def __init__(self, items=()):
        self._items = dict.fromkeys(items)

    def __contains__(self, item):
        return item in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def add(self, item):
        self._items[item] = None

    def discard(self, item):
        self._items.pop(item, None)


class _BodySlot:
    """One infant's GL mesh: its vertex buffer, texture, material, node, last uploads."""

    vbuf: np.ndarray  # (n, 8) float32 interleaved position, normal, texcoord
    tex: object
    mat: object
    prim: object
    mesh: object
    node: object
    last_vertices: np.ndarray | None = None  # the array object uploaded last (kept alive: identity test)
    last_texture: np.ndarray | None = None


class Renderer:
    """Renders scenes of one body topology at one size, reusing GL buffers between frames.

    ``Renderer(width, height, topology)``; ``render(scene, parts=False) -> RenderResult``.
    Raises :class:`UserError` at creation when no EGL context can be made.
    """

    def __init__(self, width: int, height: int, topology: MeshTopology,
                 znear: float = 0.02, zfar: float = 20.0, msaa: int = 4, analytic_support: bool = False):
        """``msaa``: multisampling per pixel, 0 (jagged edges, fastest), 2 or 4.
        ``analytic_support``: draw the support with :func:`paint_support` (numpy) instead of GL
        whenever that is exact enough: no shadows, camera and body above the support plane
        (then the body always hides the plane, never the reverse). On llvmpipe this removes
        the support's per-pixel shading, ~60 % of a frame."""
        if msaa not in (0, 2, 4):
            raise ValueError(f"msaa must be 0, 2 or 4, got {msaa}")
        self.width, self.height = int(width), int(height)
        self.topology = topology
        self.analytic_support = bool(analytic_support)
        self.znear, self.zfar, self.msaa = znear, zfar, int(msaa)
        self._gl = _offscreen(self.width, self.height)
        self._pr = _import_pyrender()
        pr = self._pr
        self._rvi = np.asarray(topology.render_vertex_index)
        self._body_faces = np.asarray(topology.body_faces)
        self._num_vertices = int(max(self._body_faces.max(), self._rvi.max())) + 1
        self._scene = pr.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(0.25, 0.25, 0.25))
        for attr in ("_point_light_nodes", "_spot_light_nodes", "_directional_light_nodes"):
            setattr(self._scene, attr, _OrderedNodeSet())  # lights summed in a fixed order
        self._slots: list[_BodySlot] = [self._new_slot()]  # one GL mesh per infant, made when first needed
        self._cam_node = self._scene.add(pr.IntrinsicsCamera(1, 1, 0, 0, znear=znear, zfar=zfar))
        self._support_node = None
        self._support_key = None
        self._support_tex = None
        self._light_nodes: list = []
        self._light_kinds: list[str] = []
        self._last_support_texture = None

    def _new_slot(self) -> "_BodySlot":
        pr = self._pr
        n = len(self._rvi)
        slot = _BodySlot()
        # interleaved vertex data as pyrender lays it out: position 3, normal 3, texcoord 2
        slot.vbuf = np.zeros((n, 8), np.float32)
        slot.vbuf[:, 6:8] = self.topology.uvs
        slot.tex = pr.Texture(source=np.full((4, 4, 3), 200, np.uint8), source_channels="RGB")
        slot.mat = pr.MetallicRoughnessMaterial(baseColorTexture=slot.tex, metallicFactor=0.0, roughnessFactor=0.7)
        slot.prim = pr.Primitive(positions=slot.vbuf[:, :3].copy(), normals=np.tile([[0, 1, 0]], (n, 1)),
                                 texcoord_0=self.topology.uvs, indices=np.asarray(self.topology.faces),
                                 material=slot.mat)
        slot.mesh = pr.Mesh([slot.prim])
        slot.node = self._scene.add(slot.mesh)
        return slot

    # -- uploads --------------------------------------------------------------------------
    def _set_vertices(self, slot: "_BodySlot", vertices: np.ndarray) -> None:
        if vertices is slot.last_vertices:
            return
        v = np.asarray(vertices, np.float32)
        if v.shape != (self._num_vertices, 3):
            raise ValueError(f"vertices must be ({self._num_vertices}, 3) for this topology, got {v.shape}")
        normals = vertex_normals(v, self._body_faces)
        slot.vbuf[:, 0:3] = v[self._rvi]
        slot.vbuf[:, 3:6] = normals[self._rvi]
        prim = slot.prim
        prim._positions = np.ascontiguousarray(slot.vbuf[:, 0:3])  # keep pyrender's copy in sync
        prim._normals = np.ascontiguousarray(slot.vbuf[:, 3:6])
        prim._bounds = None
        slot.mesh._bounds = None
        self._scene._bounds = None  # pyrender caches bounds (used to aim directional shadows)
        if prim._in_context():
            from OpenGL import GL

            self._gl._platform.make_current()
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, prim._buffers[0])
            GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, slot.vbuf.nbytes, slot.vbuf)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        slot.last_vertices = vertices

    def _set_texture(self, pr_texture, image: np.ndarray):
        """Put ``image (H, W, 3) uint8`` into ``pr_texture``; returns the texture now in use
        (a new one when the size changed)."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"a texture must be (H, W, 3) uint8, got {image.shape}")
        if pr_texture is not None and pr_texture._in_context() and pr_texture.source.shape == image.shape:
            from OpenGL import GL

            self._gl._platform.make_current()
            GL.glBindTexture(GL.GL_TEXTURE_2D, pr_texture._texid)
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
            GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, image.shape[1], image.shape[0], GL.GL_RGB,
                               GL.GL_UNSIGNED_BYTE, np.ascontiguousarray(image[::-1]))  # GL rows: bottom up
            GL.glGenerateMipmap(GL.GL_TEXTURE_2D)
            GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
            pr_texture._source = image
            return pr_texture
        return self._pr.Texture(source=image, source_channels="RGB")  # default sampler: repeat, mipmaps

    def _set_bodies(self, scene: Scene) -> None:
        """Upload each infant into its own mesh (made on first use); hide the unused ones."""
        bodies = scene.bodies
        while len(self._slots) < len(bodies):
            self._slots.append(self._new_slot())
        for k, slot in enumerate(self._slots):
            slot.mesh.is_visible = k < len(bodies)
            if k >= len(bodies):
                continue
            b = bodies[k]
            self._set_vertices(slot, b.vertices)
            if b.texture is not slot.last_texture:
                tex = self._set_texture(slot.tex, b.texture)
                if tex is not slot.tex:
                    slot.mat.baseColorTexture = tex
                    slot.tex = tex
                slot.last_texture = b.texture
            slot.mat.roughnessFactor = float(scene.skin_roughness)

    def _set_support(self, support: Support | None) -> None:
        pr = self._pr
        if support is None:
            if self._support_node is not None:
                self._support_node.mesh.is_visible = False
            return
        key = (support.height, tuple(support.size), tuple(support.center), support.tile)
        if self._support_node is None or key != self._support_key:
            pos, normals, uv, faces = support_quad(support)
            if self._support_tex is None:
                self._support_tex = self._set_texture(None, support.texture)
                self._last_support_texture = support.texture
            mat = pr.MetallicRoughnessMaterial(baseColorTexture=self._support_tex, metallicFactor=0.0,
                                               roughnessFactor=float(support.roughness))
            mesh = pr.Mesh([pr.Primitive(positions=pos, normals=normals, texcoord_0=uv, indices=faces,
                                         material=mat)])
            if self._support_node is not None:
                self._scene.remove_node(self._support_node)
            self._support_node = self._scene.add(mesh)
            self._support_key = key
        mesh = self._support_node.mesh
        mesh.is_visible = True
        mat = mesh.primitives[0].material
        mat.roughnessFactor = float(support.roughness)
        if support.texture is not self._last_support_texture:
            tex = self._set_texture(self._support_tex, support.texture)
            if tex is not self._support_tex:
                mat.baseColorTexture = tex
                self._support_tex = tex
            self._last_support_texture = support.texture

    def _set_lights(self, scene: Scene) -> None:
        pr = self._pr
        kinds = [light.kind for light in scene.lights]
        if kinds != self._light_kinds:  # same kinds as last frame: reuse nodes (and shadow maps)
            for node in self._light_nodes:
                self._scene.remove_node(node)
            self._light_nodes = [
                self._scene.add(pr.PointLight() if k == "point" else pr.DirectionalLight()) for k in kinds]
            self._light_kinds = kinds
        for node, light in zip(self._light_nodes, scene.lights):
            node.light.color = light.color
            node.light.intensity = float(light.intensity)
            self._scene.set_pose(node, light_pose(light))
        self._scene.ambient_light = np.asarray(scene.ambient, np.float64)

    def _set_camera(self, camera: Camera) -> None:
        if (camera.width, camera.height) != (self.width, self.height):
            raise ValueError(f"camera is {camera.width}x{camera.height}, renderer {self.width}x{self.height}")
        K = camera.K
        # OpenCV pixel centres are integers; GL's are at +0.5 -> shift the principal point
        cam = self._cam_node.camera
        cam.fx, cam.fy, cam.cx, cam.cy = K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5
        self._scene.set_pose(self._cam_node, camera_pose_gl(camera))

    # -- frame ----------------------------------------------------------------------------
    def render(self, scene: Scene, parts: bool = False) -> RenderResult:
        """Render one frame; see the module docstring for the returned arrays.

        Thread-safe (frames from several threads are serialised: they share one context)."""
        with _LOCK:
            return self._render(scene, parts)

    def _render(self, scene: Scene, parts: bool) -> RenderResult:
        pr = self._pr
        gl = _offscreen(self.width, self.height)
        _use_msaa(gl, self.msaa)
        flat = self.analytic_support and not scene.shadows and self._above_support(scene)
        self._set_bodies(scene)
        self._set_support(None if flat else scene.support)
        self._set_lights(scene)
        self._set_camera(scene.camera)
        flags = pr.RenderFlags.RGBA
        if scene.shadows:
            flags |= pr.RenderFlags.SHADOWS_DIRECTIONAL
        rgba, depth = gl.render(self._scene, flags=flags)
        background = fill_background(scene.background, self.width, self.height)
        if flat:  # GL drew the body alone; the support goes under it here
            mask = depth > 0
            body_depth = depth
            background, z_plane, _ = paint_support(scene, background)
            depth = np.where(mask, depth, z_plane)
        else:
            body_depth, mask = self._body_depth_and_mask(gl, scene, depth)
        rgb = composite(rgba, background)
        labels = self._labels(gl, scene, mask)
        part_map = self.part_map(scene, body_depth, labels) if parts else None
        return RenderResult(rgb=rgb, depth=depth.astype(np.float32, copy=False),
                            body_depth=body_depth.astype(np.float32, copy=False), mask=mask, parts=part_map,
                            labels=labels)

    def _labels(self, gl, scene: Scene, mask: np.ndarray) -> np.ndarray:
        """``(H, W) int8``: which infant each visible body pixel shows (index into
        ``scene.bodies``), -1 off the bodies. One body: the mask itself, no extra pass. Several:
        one flat-colour pass (pyrender's segmentation mode, no multisampling, support hidden);
        the depth test in it keeps the nearest infant, as in the frame."""
        labels = np.where(mask, 0, -1).astype(np.int8)
        n = len(scene.bodies)
        if n == 1 or not mask.any():
            return labels
        colours = {self._slots[k].node: np.array([k + 1, 0, 0], np.float64) for k in range(n)}
        support = self._support_node
        visible = support is not None and support.mesh.is_visible
        if visible:
            support.mesh.is_visible = False
        _use_msaa(gl, 0)
        try:
            seg, _ = gl.render(self._scene, flags=self._pr.RenderFlags.SEG, seg_node_map=colours)
        finally:
            _use_msaa(gl, self.msaa)
            if visible:
                support.mesh.is_visible = True
        k = seg[..., 0].astype(np.int16) - 1  # 0..n-1, -1 where no body was drawn
        # a mask pixel the flat pass missed by a sub-pixel edge takes the nearest labelled pixel
        hit = mask & (k >= 0) & (k < n)
        labels[hit] = k[hit]
        miss = mask & ~hit
        if miss.any() and hit.any():
            import cv2

            _, idx = cv2.distanceTransformWithLabels((~hit).view(np.uint8), cv2.DIST_L2, 3,
                                                    labelType=cv2.DIST_LABEL_PIXEL)
            rows, cols = np.nonzero(hit)
            lut = np.zeros(idx.max() + 1, np.int8)
            lut[idx[rows, cols]] = labels[rows, cols]
            labels[miss] = lut[idx[miss]]
        return labels

    def _body_depth_and_mask(self, gl, scene: Scene, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Body depth and visible-body mask.

        Without a support the body is all there is. With the camera and the whole body above
        the support plane, the plane can hide no part of the body, so the body is every drawn
        pixel that is not on the plane (``plane_depth``, pure numpy, ~5 ms) and its depth is
        the frame's depth there: no second GL pass. Otherwise (camera or body below the
        plane) a depth-only pass with the support hidden gives the body depth (~+40% time).
        """
        sup = scene.support
        if sup is None:
            return depth.copy(), depth > 0
        if self._above_support(scene):
            z_plane, hit = plane_depth(scene.camera, sup)
            # the resolved MSAA depth is one sample's, up to ~0.6 px off the pixel centre: at
            # oblique views the plane's depth changes by more than the tolerance over that
            tol = _BODY_MASK_TOL + 0.6 * plane_depth_slope(scene.camera, sup, z_plane)
            mask = (depth > 0) & ~(hit & (np.abs(depth - z_plane) <= tol))
            return np.where(mask, depth, 0).astype(np.float32), mask
        self._support_node.mesh.is_visible = False
        try:
            body_depth = gl.render(self._scene, flags=self._pr.RenderFlags.DEPTH_ONLY)
        finally:
            self._support_node.mesh.is_visible = True
        mask = (body_depth > 0) & (depth > 0) & (depth >= body_depth - _BODY_MASK_TOL)
        return body_depth, mask

    @staticmethod
    def _above_support(scene: Scene) -> bool:
        """Camera and whole body above the support plane: the plane cannot hide the body."""
        sup = scene.support
        if sup is None:
            return False
        cam_y = float((-scene.camera.R.T @ scene.camera.t)[1])
        low = min(float(np.min(np.asarray(b.vertices)[:, 1])) for b in scene.bodies)
        return cam_y > sup.height and low >= sup.height - _BODY_MASK_TOL

    def part_map(self, scene: Scene, body_depth: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``(H, W) int16`` part id (nearest vertex of the infant seen there, ``labels (H, W)``
        as :meth:`_labels` gives; a bool mask for one body) per body pixel, -1 elsewhere."""
        from scipy.spatial import cKDTree

        labels = np.where(labels, 0, -1) if labels.dtype == bool else labels
        out = np.full(labels.shape, -1, np.int16)
        if self.topology.part_of_vertex is None or not (labels >= 0).any():
            return out
        cam = scene.camera
        for k, b in enumerate(scene.bodies):
            rows, cols = np.nonzero(labels == k)
            if not len(rows):
                continue
            z = body_depth[rows, cols].astype(np.float64)
            xy = (np.stack([cols, rows], 1) - cam.K[[0, 1], [2, 2]]) / cam.K[[0, 1], [0, 1]] * z[:, None]
            world = (np.concatenate([xy, z[:, None]], 1) - cam.t) @ cam.R
            _, nearest = cKDTree(np.asarray(b.vertices, np.float64)).query(world)
            out[rows, cols] = np.asarray(self.topology.part_of_vertex)[nearest]
        return out


# ---- quick looks -----------------------------------------------------------------------------

_VIEWS = {  # view -> direction from the body towards the camera (body frame: x left, y up, z forward)
    "front": (0.0, 0.0, 1.0), "back": (0.0, 0.0, -1.0), "side": (1.0, 0.0, 0.0),
    "right": (-1.0, 0.0, 0.0), "top": (0.0, 1.0, 0.0),
}
_VIEW_RENDERERS: dict = {}


def body_view_cameras(vertices: np.ndarray, size: int, views: tuple[str, ...]) -> list:
    """The cameras of :func:`render_body_views` (one per view), e.g. to draw points on its panels."""
    v = np.asarray(vertices, np.float32)
    lo, hi = v.min(0), v.max(0)
    centre, radius = (lo + hi) / 2, np.linalg.norm(hi - lo) / 2
    fov = 40.0
    distance = radius / np.sin(np.radians(fov) / 2) * 1.05
    return [look_at(centre + np.asarray(_VIEWS[view]) * distance, centre,
                    up=(0, 1, 0) if view != "top" else (0, 0, -1), width=size, height=size, fov_deg=fov)
            for view in views]


def render_body_views(vertices: np.ndarray, topology: MeshTopology, texture: np.ndarray | None = None,
                      size: int = 512, views: tuple[str, ...] = ("front", "side")) -> np.ndarray:
    """Quick look at a body: ``vertices (V, 3)`` (body frame) seen from each of ``views``
    ("front", "back", "side" (its left), "right", "top"), side by side on white.

    Returns ``(size, size * len(views), 3) uint8``. Without a texture the skin is plain beige.
    """
    from syrip_gen.render.scene import kelvin_to_rgb

    unknown = [v for v in views if v not in _VIEWS]
    if unknown:
        raise UserError(f"unknown view(s) {unknown}; choose from {sorted(_VIEWS)}")
    key = (size, id(topology))
    if key not in _VIEW_RENDERERS:
        _VIEW_RENDERERS[key] = (Renderer(size, size, topology), topology)  # topology kept alive
    renderer = _VIEW_RENDERERS[key][0]
    v = np.asarray(vertices, np.float32)
    if texture is None:
        texture = np.empty((8, 8, 3), np.uint8)
        texture[:] = (224, 180, 150)
    background = np.full((size, size, 3), 255, np.uint8)
    panels = []
    for cam in body_view_cameras(v, size, views):
        key_dir = cam.R.T @ np.array([0.3, 0.6, 1.0])  # from over the camera's shoulder
        lights = (Light("directional", kelvin_to_rgb(6000), 3.0, direction=key_dir),)
        scene = Scene(vertices=v, texture=texture, camera=cam, lights=lights, ambient=(0.35, 0.35, 0.35),
                      background=background)
        panels.append(renderer.render(scene).rgb)
    return np.concatenate(panels, axis=1)
