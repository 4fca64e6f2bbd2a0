"""The render stage's settings: one frozen dataclass (CLI flags / pipeline YAML), defaults here.

Its own module so that scene composition (``render/image/compose.py``) and the shard worker
(``render/run.py``) both read it without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from syrip_gen.body import BODY_MOVED, BodyConfig
from syrip_gen.coco import check_split
from syrip_gen.config import RUN_ONLY, RunConfig, check_ranges, from_mapping, keyed, run_moved
from syrip_gen.render.world.contact import ContactConfig
from syrip_gen.render.pixels.sensor import SensorConfig
from syrip_gen.render.world.variants import VariantConfig

MAX_VARIANTS = 10000
MAX_IMAGE_SIDE = 16384  # GL_MAX_RENDERBUFFER_SIZE and GL_MAX_VIEWPORT_DIMS of Mesa llvmpipe (and most GPUs)
RUN_FIELDS = ("workers", "backend", "scheduler", "gl_threads", "force")  # render's fields of RunConfig


def _with_photo_textures(cfg) -> bool:
    return cfg.photo_textures


@dataclass(frozen=True)
class RenderConfig:
    """The render stage's settings (CLI flags / pipeline YAML); defaults live here.

    ``shadows``: probability that an image gets directional shadows (0 = never, 1 = always;
    True/False are read as 1/0). Shadows need GL shadow maps and the support drawn by GL:
    about 3x slower per shadowed image on llvmpipe. ``msaa``: GL multisampling (0, 2 or 4);
    0 is ~40 % faster on llvmpipe, the body's silhouette is then softened by compositing
    (see :class:`ImageMaker`). ``run``: how it runs (``workers``, ``backend``, ``scheduler``,
    ``gl_threads``: llvmpipe threads per worker process, ``LP_NUM_THREADS``, None = CPUs //
    workers, ignored on a GPU and when the variable is set already; ``force``). ``texture_size``:
    body texture side (texels); ``support_texels_per_m``: support texture density (its side is the power of two nearest to density x tile length:
    256 for mattresses/blankets, 512 for rugs/floors at the default). ``photo_textures``: each
    fit's photo is baked onto its body once (``DATASET/photo_textures/``, the user's data); an
    image wears its own fit's texture (chance ``own_photo_texture``) or another baked fit's;
    fits without a usable photo stay procedural (counted in the summary and warned about); when
    more than ``max_missing_photos`` of the fits' photos are not found at all (moved, or the
    fits read from elsewhere) the run stops before any work.
    """

    variants: int = field(default=10, metadata={"min": 1, "max": MAX_VARIANTS})
    seed: int = field(default=0, metadata={"min": 0})
    width: int = field(default=640, metadata={"min": 16, "max": MAX_IMAGE_SIDE})
    height: int = field(default=480, metadata={"min": 16, "max": MAX_IMAGE_SIDE})
    backgrounds: str | None = None  # folder of background photos; None = procedural
    # with backgrounds: chance a lying infant lies on one of the photos
    photo_support: float = field(default=0.7, metadata={"min": 0.0, "max": 1.0})
    textures: str | None = None  # folder of UV textures for the body; None = procedural
    # bodies wear textures baked from the fits' own photos (see render.looks.bake); off: not keyed (no effect)
    photo_textures: bool = field(default=False, metadata={"keyed_when": _with_photo_textures})
    # with photo_textures: chance an image wears its own fit's photo
    own_photo_texture: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0,
                                                            "keyed_when": _with_photo_textures})
    # with photo_textures: the largest share of fits whose photo may be missing (rendered procedurally)
    max_missing_photos: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0, **RUN_ONLY})
    shadows: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})  # probability per image
    # blur (px at 240 rows) of what lies twice as far as the infant and beyond (render.pixels.optics); 0: all sharp
    depth_of_field: float = field(default=1.6, metadata={"min": 0.0})
    # lying infants seen from lower than this (degrees above the support) get a far-reaching floor, never a photo
    floor_below_deg: float = field(default=40.0, metadata={"min": -90.0, "max": 90.0})
    split: str = "train"
    depth: bool = False  # write DATASET/shards/.../*_depth.png (uint16 mm)
    parts: bool = False  # write part-segmentation PNGs (uint8 part id + 1, 0 = not body)
    limit: int | None = field(default=None, metadata={"min": 1})  # render only the first N usable fits
    shard_size: int = field(default=50, metadata={"min": 1})
    body: BodyConfig = field(default_factory=BodyConfig)  # the fits' body model, its file, learned keypoints
    texture_size: int = field(default=512, metadata={"min": 64})  # smaller: too few texels for the garment patterns
    support_texels_per_m: int = field(default=512, metadata={"min": 32})  # a support texture of >= 16 texels
    msaa: int = field(default=0, metadata={"choices": (0, 2, 4)})
    contact_sheet: bool = field(default=True, metadata=RUN_ONLY)
    sampling: VariantConfig = field(default_factory=VariantConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)
    # how bodies meet their support (render.world.contact): settling tilt, contact tolerance, contact shadow
    contact: ContactConfig = field(default_factory=ContactConfig)
    # how and where it runs: workers, backend, scheduler, gl_threads; force: replace a different run's shards
    run: RunConfig = field(default_factory=RunConfig, metadata=RUN_ONLY)

    # keys read from older specs (with a warning): old path -> new path
    MOVED = {**BODY_MOVED, "contact_shadow": "contact.shadow", "sampling.settle_max_tilt_deg": "contact.max_tilt_deg",
             "sampling.contact_tolerance_m": "contact.tolerance", **run_moved(*RUN_FIELDS)}

    def __post_init__(self):
        if isinstance(self.shadows, bool):
            object.__setattr__(self, "shadows", 1.0 if self.shadows else 0.0)
        check_ranges(self, "render config")
        self.run.check_used(RUN_FIELDS, "render config")
        check_split(self.split, "render config")

    @classmethod
    def from_dict(cls, d: dict | None) -> "RenderConfig":
        """From a pipeline spec's ``config:`` mapping (``sampling:`` / ``sensor:`` / ``contact:``
        may be mappings of :class:`VariantConfig` / ``SensorConfig`` / ``ContactConfig``
        fields; the old keys of :attr:`MOVED` are read with a warning); unknown keys, wrong
        types and values out of range are a one-line :class:`UserError`."""
        d = dict(d or {}) if isinstance(d, dict) or d is None else d
        if isinstance(d, dict) and isinstance(d.get("shadows"), bool):  # true/false = always/never
            d["shadows"] = 1.0 if d["shadows"] else 0.0
        return from_mapping(cls, d, "render config")

    def keyed(self) -> dict:
        """The fields that change the output (the run key's part of the config; field metadata
        decides, see :func:`syrip_gen.config.keyed`)."""
        d = keyed(self)
        if not self.sampling.multi_share:  # single-infant runs (to become VariantConfig's keyed_when)
            for k in ("multi_share", "infants", "body_gap_m"):
                d["sampling"].pop(k)
        return d

