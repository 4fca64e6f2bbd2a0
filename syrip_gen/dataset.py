"""Fits -> a synthetic COCO dataset in SyRIP layout: shards, seeds, resume, merge.

One shard function reads top to bottom: config -> worker state (body, renderer: one per
process/thread, created there, never pickled) -> variants (one batched body forward) -> render
-> annotate -> write images (temp + rename) -> ``shard.json`` last, by atomic rename: the done
marker, holding the run key. A rerun skips shards whose ``shard.json`` is valid and redoes the
rest, so a killed run resumes to the same bytes as an uninterrupted one.

Layout::

    DATASET/run.json                                   run key + config (refuse a different run)
    DATASET/shards/NNNNN/{*.jpg, [*_depth.png, *_parts.png], shard.json}
    DATASET/images/*.jpg                               hard links to the shard images
    DATASET/annotations/person_keypoints_<split>_infant.json
    DATASET/contact_sheet.jpg                          up to 64 images with keypoints drawn

Image ids and file names come from (fit index, variant index) only: id = fit * 10000 + variant
+ 1, ``NNNNNN_VVVV.jpg``. The run key hashes the fits file, the render config (less the
execution-only fields) and the code of the stages involved.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np

from syrip_gen.errors import UserError
from syrip_gen.render.sensor import SensorConfig
from syrip_gen.render.variants import LYING, FitInfo, VariantConfig

MAX_VARIANTS = 10000
EXECUTION_ONLY = ("workers", "backend", "scheduler", "force", "contact_sheet", "gl_threads")
CODE_FILES = ("syrip_gen/dataset.py", "syrip_gen/annotate.py", "syrip_gen/posture.py", "syrip_gen/coco.py")
CODE_DIRS = ("syrip_gen/render", "syrip_gen/body")


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
    256 for mattresses/blankets, 512 for rugs/floors at the default).
    """

    variants: int = 10
    seed: int = 0
    width: int = 640
    height: int = 480
    workers: int = 2
    backend: str = "joblib"  # joblib | dask
    scheduler: str | None = None  # dask scheduler address; None = a LocalCluster
    backgrounds: str | None = None  # folder of background photos; None = procedural
    photo_support: float = 0.7  # with backgrounds: chance a lying infant lies on one of the photos
    textures: str | None = None  # folder of UV textures for the body; None = procedural
    shadows: float = 0.0  # probability per image
    split: str = "train"
    depth: bool = False  # write DATASET/shards/.../*_depth.png (uint16 mm)
    parts: bool = False  # write part-segmentation PNGs (uint8 part id + 1, 0 = not body)
    force: bool = False  # replace a different run's shards
    limit: int | None = None  # render only the first N usable fits
    shard_size: int = 50
    body: str = "anny"
    body_path: str | None = None  # the user's SMIL/SMPL model file (--body smil|smpl)
    texture_size: int = 512
    support_texels_per_m: int = 512
    msaa: int = 0
    gl_threads: int | None = None
    contact_sheet: bool = True
    sampling: VariantConfig = field(default_factory=VariantConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)

    def __post_init__(self):
        if isinstance(self.shadows, bool):
            object.__setattr__(self, "shadows", 1.0 if self.shadows else 0.0)
        problems = []
        if not 0.0 <= float(self.photo_support) <= 1.0:
            problems.append(f"photo_support must be a probability in [0, 1], got {self.photo_support}")
        if not 0.0 <= float(self.shadows) <= 1.0:
            problems.append(f"shadows must be a probability in [0, 1] (or true/false), got {self.shadows}")
        if self.msaa not in (0, 2, 4):
            problems.append(f"msaa must be 0, 2 or 4, got {self.msaa}")
        if self.workers < 1 or self.shard_size < 1:
            problems.append("workers and shard_size must be >= 1")
        if self.width < 16 or self.height < 16:
            problems.append(f"image size {self.width}x{self.height} is too small")
        if self.gl_threads is not None and self.gl_threads < 1:
            problems.append("gl_threads must be >= 1")
        if problems:
            raise UserError("render config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d: dict | None) -> "RenderConfig":
        """From a pipeline spec's ``config:`` mapping (``sampling:`` / ``sensor:`` may be
        mappings of :class:`VariantConfig` / ``SensorConfig`` fields); unknown keys are a
        one-line :class:`UserError`."""
        d = dict(d or {})
        _check_keys("render", d, cls)
        for key, sub in (("sampling", VariantConfig), ("sensor", SensorConfig)):
            if isinstance(d.get(key), dict):
                _check_keys(f"render {key}", d[key], sub)
                d[key] = sub(**{k: tuple(v) if isinstance(v, list) else v for k, v in d[key].items()})
        return cls(**d)

    def keyed(self) -> dict:
        """The fields that change the output (the run key's part of the config)."""
        d = asdict(self)
        for k in EXECUTION_ONLY:
            d.pop(k)
        return d


def _check_keys(what: str, d: dict, cls) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise UserError(f"{what} config: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


@dataclass
class RenderSummary:
    """What a render run did."""

    out_dir: str
    annotation_path: str
    run_key: str
    images: int
    shards: int
    shards_resumed: int
    fits_used: int
    fits_skipped: dict[str, int]
    rejected: dict[str, int]  # final rejections of variants by reason (+ redraws)
    pose_check: str
    seconds: float
    images_per_s: float
    contact_sheet: str | None = None
    warnings: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # worker wall seconds per stage, summed
    cpu_seconds: float = 0.0  # CPU time of the shard work in all workers (worker start-up excluded)


# ---- fits ---------------------------------------------------------------------------------
def fits_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "fits.jsonl"
    if not path.exists():
        raise UserError(f"{path}: no fits file; run `syrip-gen fit` first or pass FITS/fits.jsonl")
    return path


def load_fits(path: str | Path, body_shape_size: int, limit: int | None = None) -> tuple[list[dict], dict[str, int]]:
    """Usable fit records (``status == "ok"``, well-formed) in file order, each given
    ``_index`` (its position among them), and the skips counted by reason."""
    path = fits_file(path)
    records, skipped = [], {}
    lines = path.read_text().splitlines()
    if not any(line.strip() for line in lines):
        raise UserError(f"{path}: the fits file is empty; run `syrip-gen fit` on your keypoint file first")

    def skip(reason):
        skipped[reason] = skipped.get(reason, 0) + 1

    for line in lines:
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            skip("not valid JSON")
            continue
        if not isinstance(r, dict):
            skip("not a JSON object")
            continue
        if r.get("status") != "ok":
            skip("fit not ok")
            continue
        try:
            pose = np.asarray(r["pose"], np.float64)
            shape = np.asarray(r["shape"], np.float64)
            ok = pose.shape == (24, 3) and shape.shape == (body_shape_size,) and np.isfinite(pose).all() \
                and np.isfinite(shape).all() and "id" in r
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            skip("malformed pose/shape/id")
            continue
        if limit is not None and len(records) >= limit:
            skip("beyond --limit")
            continue
        r["_index"] = len(records)
        records.append(r)
    if not records:
        detail = ", ".join(f"{n} {k}" for k, n in sorted(skipped.items()))
        raise UserError(f"{path}: no usable fits ({detail}); every fit was rejected — check `syrip-gen fit`'s summary")
    return records, skipped


# ---- run key ------------------------------------------------------------------------------
def code_version() -> str:
    """Hash of the source of the stages that shape the output."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = [root / f for f in CODE_FILES]
    for d in CODE_DIRS:
        files += sorted((root / d).glob("*.py"))
    for f in sorted(set(files)):
        if f.exists():
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def run_key(fits_path: Path, cfg: RenderConfig) -> str:
    h = hashlib.sha256()
    h.update(fits_path.read_bytes())
    h.update(json.dumps(cfg.keyed(), sort_keys=True).encode())
    h.update(code_version().encode())
    return h.hexdigest()[:20]


# ---- worker state -------------------------------------------------------------------------
_STATE: dict = {}
_STATE_LOCK = threading.Lock()


@dataclass
class WorkerState:
    body: object
    maker: object  # has .render(spec, vertices) -> Rendered
    checker: object


@dataclass
class Rendered:
    """One finished image and what annotation needs of the render."""

    jpeg: bytes
    mask: np.ndarray  # (H, W) bool, visible body pixels
    body_depth: np.ndarray  # (H, W) float32, body surface depth (m), 0 off the body
    depth_mm: np.ndarray | None  # (H, W) uint16 scene depth in mm (0 = background)
    parts: np.ndarray | None  # (H, W) uint8 part id + 1 (0 = not body)
    provenance: dict  # texture, background, support, sensor: what was drawn
    skipped: dict = field(default_factory=dict)  # reason -> count (unreadable user files)


def make_image_maker(cfg: RenderConfig, body):
    """The object that turns (spec, vertices) into a :class:`Rendered`."""
    topology = body.topology()
    if len(topology.uvs) == 0:  # SMIL/SMPL without a UV layout: one flat texel (skin colour)
        topology = dataclasses.replace(topology, uvs=np.zeros((len(topology.render_vertex_index), 2), np.float32))
    return ImageMaker(cfg, topology)


def support_texture_size(kind: str, texels_per_m: int) -> int:
    """Side of a support texture: the power of two nearest to ``texels_per_m`` x its tile."""
    from syrip_gen.render.background import SUPPORT_TILE_M

    return int(2 ** max(3, round(float(np.log2(texels_per_m * SUPPORT_TILE_M[kind])))))


def check_folders(cfg: RenderConfig) -> int:
    """Validate ``--textures`` / ``--backgrounds`` up front (UserError when missing or empty);
    returns the number of background images (0: procedural backgrounds)."""
    from syrip_gen.render.appearance import TextureFolder
    from syrip_gen.render.background import BackgroundFolder

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

    def __init__(self, cfg: RenderConfig, topology):
        from syrip_gen.render.appearance import AppearanceConfig
        from syrip_gen.render.background import BackgroundFolder
        from syrip_gen.render.renderer import Renderer

        self.cfg = cfg
        self.topology = topology
        self.renderer = Renderer(cfg.width, cfg.height, topology, msaa=cfg.msaa, analytic_support=True)
        self.appearance = AppearanceConfig(textures=cfg.textures)
        self.backgrounds = BackgroundFolder(cfg.backgrounds) if cfg.backgrounds else None

    def texture(self, spec) -> tuple[np.ndarray, dict, int]:
        """Body texture, its description and how many unreadable texture files were skipped."""
        from syrip_gen.render.appearance import make_texture, texture_folder

        folder = texture_folder(self.cfg.textures) if self.cfg.textures else None
        before = sum(folder.unreadable.values()) if folder else 0
        tex, desc = make_texture(self.topology, np.random.default_rng(spec.appearance_seed), self.cfg.texture_size,
                                 self.appearance)
        return tex, desc, (sum(folder.unreadable.values()) - before if folder else 0)

    def support(self, spec, vertices: np.ndarray):
        """The support under the body: a mattress/blanket/rug sized to the body for lying
        infants, a floor reaching far away for upright ones; textured by ``support_texture``
        repeating every ``tile_m`` metres. With background photos, a lying infant lies on one
        of them instead (chance ``photo_support``): the photo stretched once over a square
        1.5-3 body lengths wide, about the scale of the floor around an infant in a photo."""
        from syrip_gen.render.background import support_texture
        from syrip_gen.render.scene import Support

        lo, hi = vertices.min(0), vertices.max(0)
        span = float(max(hi[0] - lo[0], hi[2] - lo[2]))
        center = (float((lo[0] + hi[0]) / 2), float((lo[2] + hi[2]) / 2))
        rng = np.random.default_rng([spec.support_seed, 1])
        lying = spec.source_posture in LYING
        if self.backgrounds is not None and lying and rng.uniform() < self.cfg.photo_support:
            size = support_texture_size("rug", self.cfg.support_texels_per_m)
            tex, desc = self.backgrounds.sample(size, size, rng)
            side = float(rng.uniform(1.5, 3.0)) * span + 0.3
            support = Support(kind="photo", height=spec.support_y - 0.002, size=(side, side), center=center,
                              texture=tex, tile=None)
            return support, {**desc, "kind": "photo", "photo_kind": desc["kind"], "size_m": round(side, 3),
                             "texture_size": size}
        size = support_texture_size(spec.support_kind, self.cfg.support_texels_per_m)
        tex, desc = support_texture(spec.support_kind, np.random.default_rng(spec.support_seed), size)
        side = 4 * span + 0.5 if lying else max(8.0, 4 * span + 0.5)
        support = Support(kind=spec.support_kind, height=spec.support_y - 0.002, size=(side, side),
                          center=center, texture=tex, tile=float(desc["tile_m"]))
        return support, {**desc, "size_m": round(side, 3), "texture_size": size}

    def background(self, spec, camera, support) -> tuple[np.ndarray | None, dict, int]:
        """Background image (None when the support covers the frame), description, and how
        many unreadable background files were skipped."""
        import cv2

        from syrip_gen.render.background import procedural_background
        from syrip_gen.render.renderer import support_covers_frame

        if support_covers_frame(camera, support):
            return None, {"kind": "hidden (the support fills the frame)"}, 0
        rng = np.random.default_rng(spec.background["seed"])
        w, h = self.cfg.width, self.cfg.height
        if spec.background["kind"] == "file" and self.backgrounds is not None:
            before = sum(self.backgrounds.unreadable.values())
            img, desc = self.backgrounds.sample(w, h, rng)
            return img, desc, sum(self.backgrounds.unreadable.values()) - before
        img, desc = procedural_background(max(8, w // 2), max(8, h // 2), rng)
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR), {**desc, "scale": 0.5}, 0

    def scene(self, spec, vertices, texture, support, background):
        from syrip_gen.render.scene import Camera, Light, Scene

        cam = spec.camera
        lights = tuple(Light(kind=x["kind"], color=np.asarray(x["color"], np.float32), intensity=x["intensity"],
                             direction=np.asarray(x["direction"], np.float64)) for x in spec.lights)
        return Scene(vertices=np.asarray(vertices, np.float32), texture=texture,
                     camera=Camera(K=cam.K, R=cam.R_np, t=cam.t_np, width=spec.width, height=spec.height),
                     support=support, lights=lights, ambient=(spec.ambient,) * 3, background=background,
                     shadows=spec.shadows)

    def render(self, spec, vertices, timer: "StageTimer | None" = None) -> Rendered:
        from syrip_gen.render.sensor import apply_sensor, encode_jpeg

        timer = timer or StageTimer()
        with timer("body texture"):
            texture, tex_desc, bad_tex = self.texture(spec)
        with timer("support texture"):
            support, support_desc = self.support(spec, vertices)
        scene = self.scene(spec, vertices, texture, support, None)
        with timer("background"):
            background, bg_desc, bad_bg = self.background(spec, scene.camera, support)
        if background is not None:
            scene = dataclasses.replace(scene, background=background)
        with timer("GL render + support + composite"):
            r = self.renderer.render(scene, parts=self.cfg.parts)
        with timer("edges + sensor effects"):
            rgb = r.rgb if self.cfg.msaa else soften_edges(r.rgb, r.mask, r.body_depth)
            rgb, sensor_rec = apply_sensor(rgb, np.random.default_rng(spec.sensor["seed"]), self.cfg.sensor)
        timer.start("jpeg")
        jpeg = encode_jpeg(rgb, sensor_rec["jpeg_quality"])
        timer.stop()
        parts = None if r.parts is None else (r.parts.astype(np.int32) + 1).clip(0, 255).astype(np.uint8)
        depth_mm = np.clip(np.round(r.depth * 1000.0), 0, 65535).astype(np.uint16) if self.cfg.depth else None
        skipped = {k: n for k, n in (("texture file unreadable (skipped)", bad_tex),
                                     ("background file unreadable (skipped)", bad_bg)) if n}
        prov = {"texture": tex_desc, "background": bg_desc, "support": support_desc, "sensor": sensor_rec}
        return Rendered(jpeg=jpeg, mask=r.mask, body_depth=r.body_depth,
                        depth_mm=depth_mm, parts=parts, provenance=prov, skipped=skipped)


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


def gl_threads(cfg: RenderConfig) -> int:
    """llvmpipe (and OpenCV) threads per worker: ``cfg.gl_threads`` or the CPUs shared out
    among workers (benchmarks/results/render_pipeline.md compares 1-2 workers x 1-2 threads)."""
    return int(cfg.gl_threads or max(1, (os.cpu_count() or 1) // max(1, cfg.workers)))


def worker_state(cfg: RenderConfig) -> WorkerState:
    """One body + renderer per process and thread (EGL contexts are thread-bound)."""
    key = (os.getpid(), threading.get_ident(), json.dumps(cfg.keyed(), sort_keys=True))
    with _STATE_LOCK:
        state = _STATE.get(key)
        if state is None:
            from syrip_gen.body import load_body
            from syrip_gen.render.variants import PoseChecker

            if cfg.gl_threads or cfg.workers > 1:  # before this process's GL context exists
                import cv2

                os.environ.setdefault("LP_NUM_THREADS", str(gl_threads(cfg)))
                cv2.setNumThreads(gl_threads(cfg))  # OpenCV's pool too: no oversubscription
            body = _STATE.get(("body", os.getpid(), cfg.body)) or load_body(cfg.body, cfg.body_path)
            _STATE[("body", os.getpid(), cfg.body)] = body
            state = WorkerState(body=body, maker=make_image_maker(cfg, body),
                                checker=PoseChecker(cfg.sampling.max_nll_increase))
            _STATE[key] = state
    return state


# ---- files --------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    from syrip_gen.coco import atomic_write_bytes as write

    write(path, data)


def image_id(fit_index: int, variant_index: int) -> int:
    return fit_index * MAX_VARIANTS + variant_index + 1


def image_name(fit_index: int, variant_index: int) -> str:
    return f"{fit_index:06d}_{variant_index:04d}.jpg"


def shard_dir(out: Path, shard: int) -> Path:
    return out / "shards" / f"{shard:05d}"


def read_shard(out: Path, shard: int, key: str) -> dict | None:
    """The shard's manifest when the shard is complete for run ``key``, else None."""
    path = shard_dir(out, shard) / "shard.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("run_key") != key:
        return None
    d = path.parent
    if not all((d / f).is_file() and (d / f).stat().st_size > 0 for f in data.get("files", [])):
        return None
    return data


# ---- one shard ----------------------------------------------------------------------------
def render_shard(shard: int, jobs: list[tuple[int, int]], fits: dict[int, FitInfo], cfg: RenderConfig,
                 out_dir: str, key: str, n_backgrounds: int = 0) -> dict:
    """Render, annotate and write one shard; returns its manifest (also in ``shard.json``)."""
    out = Path(out_dir)
    done = read_shard(out, shard, key)
    if done is not None:
        return {**done, "resumed": True}
    d = shard_dir(out, shard)
    d.mkdir(parents=True, exist_ok=True)
    with one_torch_thread():
        return _render_shard(shard, jobs, fits, cfg, out, d, key, n_backgrounds)


@contextlib.contextmanager
def one_torch_thread():
    """Run torch single-threaded: results must not depend on the thread count (same bytes
    whether a shard runs in a worker, in this process, or on a Dask thread)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _render_shard(shard, jobs, fits, cfg, out, d, key, n_backgrounds) -> dict:
    import torch

    from syrip_gen.annotate import annotate_image
    from syrip_gen.coco import atomic_write_json
    from syrip_gen.posture import posture_labels
    from syrip_gen.render.variants import posture_pool, sample_variants

    timer = StageTimer()
    state = worker_state(cfg)  # start-up (body load, GL context) once per worker: not timed
    cpu0 = time.process_time()  # this process's CPU, llvmpipe's threads included
    with timer("sample variants (body forward)"):
        sampled = sample_variants([(fits[f], v) for f, v in jobs], state.body, cfg.sampling, cfg.seed,
                                  cfg.width, cfg.height, checker=state.checker, n_backgrounds=n_backgrounds,
                                  shadow_prob=cfg.shadows, pool=posture_pool(fits.values()))
        postures = (posture_labels(torch.from_numpy(sampled.keypoints), torch.tensor([0.0, 1.0, 0.0]))
                    if sampled.specs else [])
    images, anns, files = [], [], []
    rejected = dict(sampled.rejected)
    for k, spec in enumerate(sampled.specs):
        r = state.maker.render(spec, sampled.vertices[k], timer)
        for why, n in r.skipped.items():
            rejected[why] = rejected.get(why, 0) + n
        name = image_name(spec.fit_index, spec.variant_index)
        fit = fits[spec.fit_index]
        with timer("annotate"):
            prov = {"fit_id": fit.id, "source_image_id": fit.source_image_id, "source_file": fit.source_file,
                    **r.provenance, "lights": [dict(x) for x in spec.lights], "ambient": spec.ambient,
                    "shadows": spec.shadows, "seed": list(spec.seed), "pose_check": state.checker.kind,
                    "spec": spec.to_json()}
            res = annotate_image(image_id(spec.fit_index, spec.variant_index), name, spec, sampled.keypoints[k],
                                 r.mask, r.body_depth, postures[k], prov)
        if res.annotation is None:
            rejected[res.reason] = rejected.get(res.reason, 0) + 1
            continue
        timer.start("write")
        atomic_write_bytes(d / name, r.jpeg)
        files.append(name)
        if cfg.depth:
            files.append(_write_png(d / name.replace(".jpg", "_depth.png"), r.depth_mm))
            res.image["depth_file"] = files[-1]
        if cfg.parts and r.parts is not None:
            files.append(_write_png(d / name.replace(".jpg", "_parts.png"), r.parts))
            res.image["parts_file"] = files[-1]
        images.append(res.image)
        anns.append(res.annotation)
        timer.stop()
    manifest = {"run_key": key, "shard": shard, "jobs": [list(j) for j in jobs], "images": images,
                "annotations": anns, "files": files, "rejected": rejected,
                "rejected_jobs": [list(x) for x in sampled.rejected_jobs]}
    with timer("write"):
        atomic_write_json(d / "shard.json", manifest)  # last: the done marker
    timing = {"stage_seconds": timer.seconds, "cpu_seconds": time.process_time() - cpu0}
    return {**manifest, "resumed": False, **timing}  # timing: not in shard.json (same bytes on rerun)


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


def _write_png(path: Path, array: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", array)
    if not ok:  # pragma: no cover - cv2 failure
        raise RuntimeError(f"could not encode {path.name}")
    atomic_write_bytes(path, buf.tobytes())
    return path.name


# ---- the run ------------------------------------------------------------------------------
def _prepare_out(out: Path, key: str, cfg: RenderConfig, fits_path: Path) -> None:
    """Refuse an output directory holding a different run (unless ``force``); record this run."""
    from syrip_gen.coco import atomic_write_json

    run_file = out / "run.json"
    other = None
    if run_file.exists():
        try:
            other = json.loads(run_file.read_text()).get("run_key")
        except (OSError, json.JSONDecodeError, AttributeError):
            other = "unreadable"
    elif (out / "shards").exists() and any((out / "shards").iterdir()):
        other = "unknown"
    if other is not None and other != key:
        if not cfg.force:
            raise UserError(f"{out} holds a different render run (key {other}, this run {key}); "
                            "choose another --out, or pass --force to replace it")
        for sub in ("shards", "images", "annotations"):
            shutil.rmtree(out / sub, ignore_errors=True)
        (out / "contact_sheet.jpg").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_file, {"run_key": key, "config": cfg.keyed(), "fits": str(fits_path),
                                 "code_version": code_version()})


def _run_shards(tasks: list[tuple[int, list]], fits: dict, cfg: RenderConfig, out: Path, key: str,
                n_backgrounds: int):
    """Yield shard manifests as they finish (any order), with the chosen backend."""
    args = (fits, cfg, str(out), key, n_backgrounds)
    if cfg.backend == "dask":
        yield from _run_dask(tasks, args, cfg)
    elif cfg.backend != "joblib":
        raise UserError(f"unknown --backend {cfg.backend!r}; choose joblib or dask")
    elif cfg.workers <= 1:
        for shard, jobs in tasks:
            yield render_shard(shard, jobs, *args)
    else:
        from joblib import Parallel, delayed

        par = Parallel(n_jobs=cfg.workers, backend="loky", return_as="generator_unordered")
        yield from par(delayed(render_shard)(shard, jobs, *args) for shard, jobs in tasks)


def _run_dask(tasks, args, cfg: RenderConfig):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UserError("--backend dask needs dask[distributed]: pip install 'dask[distributed]'") from None
    cluster = None
    if cfg.scheduler:
        client = Client(cfg.scheduler)
    else:
        procs = cfg.workers > 1  # one worker: in this process (threads), no extra interpreter
        cluster = LocalCluster(n_workers=max(1, cfg.workers), threads_per_worker=1, processes=procs,
                               dashboard_address=None, **({"host": "127.0.0.1"} if procs else {}))
        client = Client(cluster)
    try:
        futures = [client.submit(render_shard, shard, jobs, *args, pure=False) for shard, jobs in tasks]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def merge(out: Path, n_shards: int, key: str, cfg: RenderConfig) -> Path:
    """Combine the shards into one COCO file and link their images into ``images/``."""
    from syrip_gen.coco import write_coco

    images, anns = [], []
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    for shard in range(n_shards):
        data = read_shard(out, shard, key)
        if data is None:
            raise RuntimeError(f"shard {shard} is incomplete after rendering")
        for name in data["files"]:
            _link(shard_dir(out, shard) / name, img_dir / name)
        images += data["images"]
        anns += data["annotations"]
    images.sort(key=lambda r: r["id"])
    anns.sort(key=lambda r: r["id"])
    path = out / "annotations" / f"person_keypoints_{cfg.split}_infant.json"
    write_coco(path, images, anns, info={"description": "syrip-gen synthetic infant renders",
                                         "run_key": key, "config": cfg.keyed()})
    return path


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        if os.path.samefile(src, dst):
            return
        dst.unlink()
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def render_dataset(fits_path: str | Path, out_dir: str | Path, cfg: RenderConfig,
                   on_shard_done: Callable[[int], None] | None = None) -> RenderSummary:
    """Render the whole dataset (resuming finished shards) and merge it into one COCO file.

    ``on_shard_done(shard)`` is called in this process after each shard's manifest arrives
    (tests use it to simulate a kill).
    """
    from tqdm import tqdm

    from syrip_gen.body import load_body
    from syrip_gen.render.variants import prepare_fits

    if not 1 <= cfg.variants <= MAX_VARIANTS:
        raise UserError(f"--variants must be between 1 and {MAX_VARIANTS}, got {cfg.variants}")
    t0 = time.perf_counter()
    path = fits_file(fits_path)
    out = Path(out_dir)
    body = load_body(cfg.body, cfg.body_path)
    records, fits_skipped = load_fits(path, len(body.shape_names), cfg.limit)
    n_bg = check_folders(cfg)
    with one_torch_thread():
        infos = prepare_fits(records, body)
    for info, r in zip(infos, records):
        info.source_image_id = r.get("image_id")
        info.source_file = r.get("file_name")
    fits = {f.index: f for f in infos}
    key = run_key(path, cfg)
    _prepare_out(out, key, cfg, path)
    jobs = [(f.index, v) for f in infos for v in range(cfg.variants)]
    tasks = [(s, jobs[i:i + cfg.shard_size]) for s, i in enumerate(range(0, len(jobs), cfg.shard_size))]
    rejected: dict[str, int] = {}
    stages: dict[str, float] = {}
    cpu = 0.0
    resumed = n_images = 0
    with tqdm(total=len(jobs), unit="img", desc="render", smoothing=0.1) as bar:
        for manifest in _run_shards(tasks, fits, cfg, out, key, n_bg):
            resumed += bool(manifest.get("resumed"))
            n_images += len(manifest["images"])
            for reason, n in manifest["rejected"].items():
                rejected[reason] = rejected.get(reason, 0) + n
            cpu += manifest.get("cpu_seconds", 0.0)
            for stage, sec in manifest.get("stage_seconds", {}).items():
                stages[stage] = stages.get(stage, 0.0) + sec
            bar.update(len(manifest["jobs"]))
            if on_shard_done is not None:
                on_shard_done(manifest["shard"])
    ann_path = merge(out, len(tasks), key, cfg)
    sheet = None
    if cfg.contact_sheet:
        sheet = str(write_contact_sheet(ann_path, out / "contact_sheet.jpg", seed=cfg.seed))
    seconds = time.perf_counter() - t0
    summary = RenderSummary(
        out_dir=str(out), annotation_path=str(ann_path), run_key=key, images=n_images, shards=len(tasks),
        shards_resumed=resumed, fits_used=len(infos), fits_skipped=fits_skipped, rejected=rejected,
        pose_check=_pose_check_kind(), seconds=round(seconds, 3),
        images_per_s=round(n_images / seconds, 3) if seconds > 0 else 0.0, contact_sheet=sheet,
        stage_seconds={k: round(v, 3) for k, v in sorted(stages.items())}, cpu_seconds=round(cpu, 3))
    if n_images == 0:
        raise UserError(f"every variant was rejected ({rejected}); widen --fill/--fov or check the fits")
    return summary


def _pose_check_kind() -> str:
    from syrip_gen.render.variants import PoseChecker

    return PoseChecker(0.0).kind


# ---- contact sheet ------------------------------------------------------------------------
def write_contact_sheet(ann_path: Path, dst: Path, seed: int = 0, n: int = 64, tile_w: int = 200,
                        quality: int = 85) -> Path:
    """A grid of up to ``n`` randomly chosen images with their keypoints drawn (green: visible,
    orange: occluded) and the mask's box, for a person to look at."""
    import cv2

    from syrip_gen.coco import SKELETON

    data = json.loads(Path(ann_path).read_text())
    imgs = {r["id"]: r for r in data["images"]}
    anns = data["annotations"]
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(anns), size=min(n, len(anns)), replace=False).tolist())
    if not pick:
        return dst
    first = imgs[anns[pick[0]]["image_id"]]
    tile_h = int(round(tile_w * first["height"] / first["width"]))
    cols = int(np.ceil(np.sqrt(len(pick))))
    rows = int(np.ceil(len(pick) / cols))
    sheet = np.full((rows * tile_h, cols * tile_w, 3), 255, np.uint8)
    root = Path(ann_path).parent.parent / "images"
    for slot, i in enumerate(pick):
        ann = anns[i]
        img = cv2.imread(str(root / imgs[ann["image_id"]]["file_name"]))
        if img is None:
            continue
        s = tile_w / img.shape[1]
        img = cv2.resize(img, (tile_w, tile_h), interpolation=cv2.INTER_AREA)
        kp = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
        pts = [(int(round(x * s)), int(round(y * s))) for x, y, _ in kp]
        for a, b in SKELETON:
            if kp[a - 1, 2] > 0 and kp[b - 1, 2] > 0:
                cv2.line(img, pts[a - 1], pts[b - 1], (255, 200, 0), 1, cv2.LINE_AA)
        for (x, y), v in zip(pts, kp[:, 2]):
            if v > 0:
                cv2.circle(img, (x, y), 2, (0, 220, 0) if v == 2 else (0, 140, 255), -1, cv2.LINE_AA)
        bx, by, bw, bh = ann["bbox"]
        cv2.rectangle(img, (int(bx * s), int(by * s)), (int((bx + bw) * s), int((by + bh) * s)), (255, 0, 255), 1)
        cv2.putText(img, ann.get("posture", ""), (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        r, c = divmod(slot, cols)
        sheet[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w] = img
    ok, buf = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, quality])
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dst, buf.tobytes())
    return dst


def summary_json(summary: RenderSummary) -> dict:
    return {f.name: getattr(summary, f.name) for f in fields(summary)}
