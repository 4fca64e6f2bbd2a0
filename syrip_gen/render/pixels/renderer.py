"""Turn a :class:`~syrip_gen.render.world.scene.Scene` into pixels with pyrender on EGL.

With :mod:`~syrip_gen.render.pixels.gl` (the EGL context) the only modules that import pyrender/OpenGL
(lazily). The support plane drawn without GL is :mod:`~syrip_gen.render.pixels.support_paint`; body
quick-looks are :mod:`~syrip_gen.render.pixels.preview`.

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

- one EGL context per process (:mod:`~syrip_gen.render.pixels.gl`), shared by all ``Renderer``s;
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

import logging
from collections.abc import MutableSet
from dataclasses import dataclass

import numpy as np

from syrip_gen.body.base import MeshTopology
from syrip_gen.geometry import Camera
from syrip_gen.render.pixels.gl import LOCK, import_pyrender, offscreen, use_msaa
from syrip_gen.render.world.scene import Light, Scene, Support, vertex_normals
from syrip_gen.render.pixels.support_paint import paint_support, plane_depth, plane_depth_slope, support_quad

log = logging.getLogger(__name__)

# OpenCV camera axes (x right, y down, z forward) -> OpenGL camera axes (y up, z backward)
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])
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
        self._gl = offscreen(self.width, self.height)
        self._pr = import_pyrender()
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
        with LOCK:
            return self._render(scene, parts)

    def _render(self, scene: Scene, parts: bool) -> RenderResult:
        pr = self._pr
        gl = offscreen(self.width, self.height)
        use_msaa(gl, self.msaa)
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
        use_msaa(gl, 0)
        try:
            seg, _ = gl.render(self._scene, flags=self._pr.RenderFlags.SEG, seg_node_map=colours)
        finally:
            use_msaa(gl, self.msaa)
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
