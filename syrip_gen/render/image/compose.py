"""Scene composition: a variant spec + posed world vertices -> a finished image (Kubric's line:
the scene is built here, the dataset writer only stores what comes back).

:class:`ImageMaker` draws the body texture, the support, the background and the lights a spec
names, hands the :class:`~syrip_gen.render.world.scene.Scene` to the GL renderer, softens the body's
outline, applies the sensor chain and encodes the JPEG. The shard worker that drives it
(one body, image maker and pose checker per process and thread) is ``dataset.render_shard``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from syrip_gen.geometry import camera_elevation
from syrip_gen.render.world.spec import LYING

if TYPE_CHECKING:
    from syrip_gen.render.image.config import RenderConfig

@dataclass
class Rendered:
    """One finished image and what annotation needs of the render."""

    jpeg: bytes
    labels: np.ndarray  # (H, W) int8 infant seen per pixel (spec.bodies index), -1 off the bodies
    body_depth: np.ndarray  # (H, W) float32, body surface depth (m), 0 off the body
    depth_mm: np.ndarray | None  # (H, W) uint16 scene depth in mm (0 = background)
    parts: np.ndarray | None  # (H, W) uint8 part id + 1 (0 = not body)
    provenance: dict  # texture, background, support, sensor: what was drawn
    skipped: dict = field(default_factory=dict)  # reason -> count (unreadable user files)
    textures: list = field(default_factory=list)  # each infant's texture description (provenance)

    @property
    def mask(self) -> np.ndarray:
        """``(H, W) bool``: the visible body pixels (any infant)."""
        return self.labels >= 0


def make_image_maker(cfg: RenderConfig, body):
    """The object that turns (spec, vertices) into a :class:`Rendered`. Makes the body's one
    :class:`~syrip_gen.render.looks.uv.TopologyMaps` (with its rest pose when it has part labels:
    hair and face are painted from it)."""
    from syrip_gen.render.looks.uv import TopologyMaps, rest_vertices

    topology = body.topology()
    if len(topology.uvs) == 0:  # SMIL/SMPL without a UV layout: one flat texel (skin colour)
        topology = dataclasses.replace(topology, uvs=np.zeros((len(topology.render_vertex_index), 2), np.float32))
    rest = rest_vertices(body) if topology.part_of_vertex is not None else None
    return ImageMaker(cfg, TopologyMaps(topology, rest))


def support_texture_size(kind: str, texels_per_m: int) -> int:
    """Side of a support texture: the power of two nearest to ``texels_per_m`` x its tile."""
    from syrip_gen.render.looks.background import SUPPORT_TILE_M

    return int(2 ** max(3, round(float(np.log2(texels_per_m * SUPPORT_TILE_M[kind])))))


def check_folders(cfg: RenderConfig) -> int:
    """Validate ``--textures`` / ``--backgrounds`` up front (UserError when missing or empty);
    returns the number of background images (0: procedural backgrounds)."""
    from syrip_gen.render.looks.appearance import TextureFolder
    from syrip_gen.render.looks.background import BackgroundFolder

    if cfg.textures:
        TextureFolder(cfg.textures)
    return len(BackgroundFolder(cfg.backgrounds).files) if cfg.backgrounds else 0


class ImageMaker:
    """Spec + world vertices -> finished JPEG: procedural (or folder) body texture, support
    texture, lights, background, GL render, sensor effects, JPEG. One per worker (holds the
    process's Renderer). Every draw comes from a generator seeded by the spec, so an image
    depends on its spec only.

    Speed (llvmpipe): the support is drawn in numpy under the GL body (``analytic_support``)
    unless the image has shadows; the background is only made when the support leaves part
    of the frame uncovered, at half size (it is smooth) and upsampled. With ``msaa=0`` the
    body's outline is anti-aliased in 2D: its alpha is feathered over one pixel
    (:func:`soften_edges`) before compositing.
    """

    def __init__(self, cfg: RenderConfig, maps):
        """``maps``: the body's :class:`~syrip_gen.render.looks.uv.TopologyMaps` (its topology, UV
        rasters and, with a rest pose, scalp and face maps)."""
        from syrip_gen.render.looks.appearance import AppearanceConfig
        from syrip_gen.render.looks.background import BackgroundFolder
        from syrip_gen.render.pixels.renderer import Renderer

        self.cfg = cfg
        self.maps = maps
        self.topology = topology = maps.topology
        self.renderer = Renderer(cfg.width, cfg.height, topology, msaa=cfg.msaa, analytic_support=True)
        self.appearance = AppearanceConfig(textures=cfg.textures)
        self.backgrounds = BackgroundFolder(cfg.backgrounds) if cfg.backgrounds else None
        self._clip: dict | None = None  # the reuse scope of the clip being drawn (:meth:`clip_scope`)

    @contextlib.contextmanager
    def clip_scope(self, box: np.ndarray):
        """Within it, the frames of one clip: each infant's texture, the support (sized on
        ``box (2, 3)``, the low and high corners of every frame's vertices) and the background
        are made on the first frame and reused, so they cannot change between frames; files
        found unreadable are counted once. Outside it (every still image) nothing is reused."""
        self._clip = {"box": np.asarray(box, np.float64)}
        try:
            yield self
        finally:
            self._clip = None

    def _reuse(self, key, make):
        """``make()``'s result, once per clip scope (later frames report 0 unreadable files)."""
        if key in self._clip:
            *value, _ = self._clip[key]
            return (*value, 0)
        self._clip[key] = make()
        return self._clip[key]

    def texture(self, spec, photo_texture: str | None = None, k: int = 0) -> tuple[np.ndarray, dict, int]:
        """Infant ``k``'s texture, its description and how many unreadable texture files were
        skipped. ``photo_texture``: a baked photo texture (PNG) to wear instead of a drawn one."""
        if self._clip is not None:
            return self._reuse(("texture", k), lambda: self._texture(spec, photo_texture, k))
        return self._texture(spec, photo_texture, k)

    def _texture(self, spec, photo_texture: str | None, k: int) -> tuple[np.ndarray, dict, int]:
        from syrip_gen.render.looks.appearance import make_texture, texture_folder
        from syrip_gen.render.looks.photo_textures import load_texture

        if photo_texture is not None:
            return load_texture(photo_texture, self.cfg.texture_size), {"kind": "photo", "file": Path(photo_texture).name}, 0

        folder = texture_folder(self.cfg.textures) if self.cfg.textures else None
        before = sum(folder.unreadable.values()) if folder else 0
        tex, desc = make_texture(self.maps, np.random.default_rng(spec.bodies[k].appearance_seed),
                                 self.cfg.texture_size,
                                 self.appearance)
        return tex, desc, (sum(folder.unreadable.values()) - before if folder else 0)

    def support(self, spec, vertices: np.ndarray):
        """The support under the bodies (``vertices (N, V, 3)``): a
        mattress/blanket/rug sized to them for lying infants, a floor reaching far away for upright ones; textured by ``support_texture``
        repeating every ``tile_m`` metres. With background photos, a lying infant lies on one
        of them instead (chance ``photo_support``; floor photos only): the photo covers a square
        1.5-3 body lengths wide, about the scale of the floor around an infant in a photo, and
        repeats mirrored beyond it up to the frame's edges (no slab edge, no black corner)."""
        if self._clip is not None:  # sized on every frame's vertices, made once
            if "support" not in self._clip:
                self._clip["support"] = self._support(spec, self._clip["box"])
            return self._clip["support"]
        return self._support(spec, vertices)

    def _support(self, spec, vertices: np.ndarray):
        from syrip_gen.render.looks.background import support_texture
        from syrip_gen.render.world.scene import Support

        vertices = np.asarray(vertices).reshape(-1, 3)
        lo, hi = vertices.min(0), vertices.max(0)
        span = float(max(hi[0] - lo[0], hi[2] - lo[2]))
        center = (float((lo[0] + hi[0]) / 2), float((lo[2] + hi[2]) / 2))
        rng = np.random.default_rng([spec.support.seed, 1])
        lying = spec.bodies[0].source_posture in LYING  # every infant of a scene is of one kind
        # seen from low, a support photo reads as a tilted slab beside a foreign photo: lying
        # infants seen from below ``floor_below_deg`` lie on a procedural floor reaching far
        low = camera_elevation(spec.camera.R) < self.cfg.floor_below_deg
        if self.backgrounds is not None and lying and rng.uniform() < self.cfg.photo_support and not low:
            from syrip_gen.render.looks.background import mirror_tiled

            size = support_texture_size("rug", self.cfg.support_texels_per_m)
            tex, desc = self.backgrounds.sample(size, size, rng, perspectives=("floor",))  # never a room as a floor
            if tex is not None:  # the photo covers ``side`` metres, mirrored beyond: no edge, no corner
                side = float(rng.uniform(1.5, 3.0)) * span + 0.3
                reach = max(8.0, 4 * span + 0.5)
                support = Support(kind="photo", height=spec.support.y - 0.002, size=(reach, reach), center=center,
                                  texture=mirror_tiled(tex), tile=2 * side)
                return support, {**desc, "kind": "photo", "photo_kind": desc["kind"], "size_m": round(side, 3),
                                 "texture_size": size}
        size = support_texture_size(spec.support.kind, self.cfg.support_texels_per_m)
        tex, desc = support_texture(spec.support.kind, np.random.default_rng(spec.support.seed), size)
        side = 4 * span + 0.5 if lying and not low else max(8.0, 4 * span + 0.5)
        support = Support(kind=spec.support.kind, height=spec.support.y - 0.002, size=(side, side),
                          center=center, texture=tex, tile=float(desc["tile_m"]))
        return support, {**desc, "size_m": round(side, 3), "texture_size": size}

    def background(self, spec, camera, support) -> tuple[np.ndarray | None, dict, int]:
        """Background image (None when the support covers the frame), description, and how
        many unreadable background files were skipped."""
        from syrip_gen.render.pixels.support_paint import support_covers_frame

        if support_covers_frame(camera, support):
            return None, {"kind": "hidden (the support fills the frame)"}, 0
        if self._clip is not None:  # a drifting camera: drawn once, for the first frame that shows it
            return self._reuse("background", lambda: self._background(spec, camera))
        return self._background(spec, camera)

    def _background(self, spec, camera) -> tuple[np.ndarray | None, dict, int]:
        import cv2

        from syrip_gen.render.looks.background import perspectives_for_view, procedural_background, procedural_kind_for_view

        rng = np.random.default_rng(spec.support.background["seed"])
        w, h = self.cfg.width, self.cfg.height
        elevation = camera_elevation(camera.R)
        if spec.support.background["kind"] == "file" and self.backgrounds is not None:
            before = sum(self.backgrounds.unreadable.values())
            img, desc = self.backgrounds.sample(w, h, rng, perspectives_for_view(elevation))
            if img is not None:
                return img, desc, sum(self.backgrounds.unreadable.values()) - before
        img, desc = procedural_background(max(8, w // 2), max(8, h // 2), rng,
                                          procedural_kind_for_view(elevation, rng))
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR), {**desc, "scale": 0.5}, 0

    def scene(self, spec, vertices, textures, support, background):
        """The :class:`~syrip_gen.render.world.scene.Scene` of ``spec``: bodies ``vertices (N, V, 3)``
        wearing ``textures`` (one each), the support, the spec's lights and camera."""
        from syrip_gen.render.world.scene import BodyMesh, Light, Scene

        lights = tuple(Light(kind=x["kind"], color=np.asarray(x["color"], np.float32), intensity=x["intensity"],
                             direction=np.asarray(x["direction"], np.float64)) for x in spec.lighting.lights)
        verts = np.asarray(vertices, np.float32)
        return Scene(bodies=tuple(BodyMesh(v, t) for v, t in zip(verts, textures)), camera=spec.camera,
                     support=support, lights=lights, ambient=(spec.lighting.ambient,) * 3, background=background,
                     shadows=spec.lighting.shadows)

    def contact_shadow(self, r, scene) -> np.ndarray:
        """The frame with the body's soft contact shadow on the support (render.world.contact)."""
        from syrip_gen.render.world.contact import contact_shadow

        if scene.support is None or self.cfg.contact.shadow <= 0:
            return r.rgb
        on_support = (r.depth > 0) & ~r.mask
        bodies = np.concatenate([b.vertices for b in scene.bodies])  # every infant's
        return contact_shadow(r.rgb, scene.camera, scene.support.height, on_support, bodies,
                              self.cfg.contact)

    def render(self, spec, vertices, timer: "StageTimer | None" = None,
               photo_textures: list | None = None) -> Rendered:
        """The finished image of ``spec`` with its bodies' world ``vertices (N, V, 3)`` (one per
        ``spec.bodies``); ``photo_textures``: a baked texture (PNG path, or None: drawn) per
        infant, None: every texture drawn."""
        from syrip_gen.render.pixels.sensor import apply_sensor, encode_jpeg

        timer = timer or StageTimer()
        vertices = np.asarray(vertices)
        photos = list(photo_textures) if photo_textures is not None else [None] * len(vertices)
        with timer("body texture"):
            made = [self.texture(spec, photos[k], k) for k in range(len(vertices))]
        textures, tex_descs = [m[0] for m in made], [m[1] for m in made]
        bad_tex = sum(m[2] for m in made)
        tex_desc = tex_descs[0]
        with timer("support texture"):
            support, support_desc = self.support(spec, vertices)
        scene = self.scene(spec, vertices, textures, support, None)
        with timer("background"):
            background, bg_desc, bad_bg = self.background(spec, scene.camera, support)
        if background is not None:
            scene = dataclasses.replace(scene, background=background)
        with timer("GL render + support + composite"):
            r = self.renderer.render(scene, parts=self.cfg.parts)
        with timer("contact shadow + depth of field"):
            rgb = self.contact_shadow(r, scene)
            if self.cfg.depth_of_field > 0:
                from syrip_gen.render.pixels.optics import depth_of_field

                rgb = depth_of_field(rgb, r.depth, r.mask, sigma=self.cfg.depth_of_field)
        with timer("edges + sensor effects"):
            rgb = rgb if self.cfg.msaa else soften_edges(rgb, r.mask, r.body_depth)
            rgb, sensor_rec = apply_sensor(rgb, np.random.default_rng(spec.sensor["seed"]), self.cfg.sensor)
        timer.start("jpeg")
        jpeg = encode_jpeg(rgb, sensor_rec["jpeg_quality"])
        timer.stop()
        parts = None if r.parts is None else (r.parts.astype(np.int32) + 1).clip(0, 255).astype(np.uint8)
        depth_mm = np.clip(np.round(r.depth * 1000.0), 0, 65535).astype(np.uint16) if self.cfg.depth else None
        skipped = {k: n for k, n in (("texture file unreadable (skipped)", bad_tex),
                                     ("background file unreadable (skipped)", bad_bg)) if n}
        prov = {"texture": tex_desc, "background": bg_desc, "support": support_desc, "sensor": sensor_rec}
        return Rendered(jpeg=jpeg, labels=r.labels, body_depth=r.body_depth, depth_mm=depth_mm, parts=parts,
                        provenance=prov, skipped=skipped, textures=tex_descs)


def soften_edges(rgb: np.ndarray, mask: np.ndarray, depth: np.ndarray | None = None, sigma: float = 0.7,
                 jump: float = 0.01) -> np.ndarray:
    """Anti-alias a render made without multisampling: pixels within one pixel of the body
    mask's border ``(H, W) bool``, or of a depth jump above ``jump`` metres in ``depth (H, W)
    float32`` (a limb or the chin in front of the body), take a Gaussian blur (``sigma`` px)
    of ``rgb (H, W, 3) uint8``; elsewhere the image is unchanged. ~3 ms at 640x480, against
    ~40 ms for 4x MSAA on llvmpipe."""
    import cv2

    kernel = np.ones((3, 3), np.uint8)
    m = mask.view(np.uint8)
    band = cv2.dilate(m, kernel) - cv2.erode(m, kernel)
    if depth is not None:
        spread = cv2.dilate(depth, kernel) - cv2.erode(depth, kernel)
        band |= (spread > jump).view(np.uint8) & m
    out = rgb.copy()
    cv2.copyTo(cv2.GaussianBlur(rgb, (3, 3), sigma), band, out)
    return out


class StageTimer:
    """Wall seconds per named stage (``with timer("name"):`` or ``start``/``stop``), summed."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._open: tuple[str, float] | None = None

    def start(self, name: str) -> None:
        self.stop()
        self._open = (name, time.perf_counter())

    def stop(self) -> None:
        if self._open is not None:
            name, t0 = self._open
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
            self._open = None

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
