"""The render stage's settings: one frozen dataclass (CLI flags / pipeline YAML), defaults here.

Its own module so that scene composition (``render/image/compose.py``) and the shard worker
(``dataset.py``) both read it without importing each other.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from syrip_gen.body import BODY_MODELS
from syrip_gen.coco import check_split
from syrip_gen.config import check_ranges, from_mapping
from syrip_gen.render.pixels.sensor import SensorConfig
from syrip_gen.render.world.variants import VariantConfig

MAX_VARIANTS = 10000
MAX_IMAGE_SIDE = 16384  # GL_MAX_RENDERBUFFER_SIZE and GL_MAX_VIEWPORT_DIMS of Mesa llvmpipe (and most GPUs)
EXECUTION_ONLY = ("workers", "backend", "scheduler", "force", "contact_sheet", "gl_threads", "max_missing_photos")


@dataclass(frozen=True)
class RenderConfig:
    """The render stage's settings (CLI flags / pipeline YAML); defaults live here.

    ``shadows``: probability that an image gets directional shadows (0 = never, 1 = always;
    True/False are read as 1/0). Shadows need GL shadow maps and the support drawn by GL:
    about 3x slower per shadowed image on llvmpipe. ``msaa``: GL multisampling (0, 2 or 4);
    0 is ~40 % faster on llvmpipe, the body's silhouette is then softened by compositing
    (see :class:`ImageMaker`). ``gl_threads``: llvmpipe threads per worker process
    (``LP_NUM_THREADS``; None = CPUs // workers; ignored on a GPU and when the variable is
    set already). ``texture_size``: body texture side (texels); ``support_texels_per_m``:
    support texture density (its side is the power of two nearest to density x tile length:
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
    workers: int = field(default=2, metadata={"min": 1})
    backend: str = field(default="joblib", metadata={"choices": ("joblib", "dask")})
    scheduler: str | None = None  # dask scheduler address; None = a LocalCluster
    backgrounds: str | None = None  # folder of background photos; None = procedural
    # with backgrounds: chance a lying infant lies on one of the photos
    photo_support: float = field(default=0.7, metadata={"min": 0.0, "max": 1.0})
    textures: str | None = None  # folder of UV textures for the body; None = procedural
    photo_textures: bool = False  # bodies wear textures baked from the fits' own photos (see render.bake)
    # with photo_textures: chance an image wears its own fit's photo
    own_photo_texture: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    # with photo_textures: the largest share of fits whose photo may be missing (rendered procedurally)
    max_missing_photos: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
    shadows: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})  # probability per image
    # soft contact shadow under every body (render.contact): darkening where the body touches
    contact_shadow: float = field(default=0.55, metadata={"min": 0.0, "max": 1.0})
    # blur (px at 240 rows) of what lies twice as far as the infant and beyond (render.optics); 0: all sharp
    depth_of_field: float = field(default=1.6, metadata={"min": 0.0})
    # lying infants seen from lower than this (degrees above the support) get a far-reaching floor, never a photo
    floor_below_deg: float = field(default=40.0, metadata={"min": -90.0, "max": 90.0})
    split: str = "train"
    depth: bool = False  # write DATASET/shards/.../*_depth.png (uint16 mm)
    parts: bool = False  # write part-segmentation PNGs (uint8 part id + 1, 0 = not body)
    force: bool = False  # replace a different run's shards
    limit: int | None = field(default=None, metadata={"min": 1})  # render only the first N usable fits
    shard_size: int = field(default=50, metadata={"min": 1})
    body: str = field(default="anny", metadata={"choices": BODY_MODELS})
    body_path: str | None = None  # the user's SMIL/SMPL model file (--body smil|smpl)
    keypoints: str | None = None  # learned keypoints.npz (learn-keypoints); None = the body's own
    texture_size: int = field(default=512, metadata={"min": 64})  # smaller: too few texels for the garment patterns
    support_texels_per_m: int = field(default=512, metadata={"min": 32})  # a support texture of >= 16 texels
    msaa: int = field(default=0, metadata={"choices": (0, 2, 4)})
    gl_threads: int | None = field(default=None, metadata={"min": 1})
    contact_sheet: bool = True
    sampling: VariantConfig = field(default_factory=VariantConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)

    def __post_init__(self):
        if isinstance(self.shadows, bool):
            object.__setattr__(self, "shadows", 1.0 if self.shadows else 0.0)
        check_ranges(self, "render config")
        check_split(self.split, "render config")

    @classmethod
    def from_dict(cls, d: dict | None) -> "RenderConfig":
        """From a pipeline spec's ``config:`` mapping (``sampling:`` / ``sensor:`` may be
        mappings of :class:`VariantConfig` / ``SensorConfig`` fields); unknown keys, wrong
        types and values out of range are a one-line :class:`UserError`."""
        d = dict(d or {}) if isinstance(d, dict) or d is None else d
        if isinstance(d, dict) and isinstance(d.get("shadows"), bool):  # true/false = always/never
            d["shadows"] = 1.0 if d["shadows"] else 0.0
        return from_mapping(cls, d, "render config")

    def keyed(self) -> dict:
        """The fields that change the output (the run key's part of the config)."""
        d = asdict(self)
        for k in EXECUTION_ONLY:
            d.pop(k)
        if not self.photo_textures:  # off: no effect (and procedural runs keep their keys)
            d.pop("photo_textures")
            d.pop("own_photo_texture")
        if not self.sampling.multi_share:  # single-infant runs: keys as before several infants existed
            for k in ("multi_share", "infants", "body_gap_m"):
                d["sampling"].pop(k)
        if d["keypoints"] is None:  # the default: keys (and run keys) as before the option existed
            d.pop("keypoints")
        else:  # the file's content decides the labels, not its name
            from syrip_gen.body.keypoints import file_hash

            d["keypoints"] = file_hash(d["keypoints"]) if Path(d["keypoints"]).is_file() else d["keypoints"]
        return d
