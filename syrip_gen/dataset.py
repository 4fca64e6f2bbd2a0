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
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np

from syrip_gen.errors import UserError
from syrip_gen.render.variants import FitInfo, VariantConfig

log = logging.getLogger(__name__)

MAX_VARIANTS = 10000
EXECUTION_ONLY = ("workers", "backend", "scheduler", "force", "contact_sheet")
CODE_FILES = ("syrip_gen/dataset.py", "syrip_gen/annotate.py", "syrip_gen/posture.py", "syrip_gen/coco.py")
CODE_DIRS = ("syrip_gen/render", "syrip_gen/body")


@dataclass(frozen=True)
class RenderConfig:
    """The render stage's settings (CLI flags / pipeline YAML); defaults live here."""

    variants: int = 10
    seed: int = 0
    width: int = 640
    height: int = 480
    workers: int = 2
    backend: str = "joblib"  # joblib | dask
    scheduler: str | None = None  # dask scheduler address; None = a LocalCluster
    backgrounds: str | None = None  # folder of background photos; None = procedural
    textures: str | None = None  # folder of skin/clothing textures; None = procedural
    shadows: bool = False
    split: str = "train"
    depth: bool = False  # write DATASET/shards/.../*_depth.png (uint16 mm)
    parts: bool = False  # write part-segmentation PNGs (uint8 part id + 1, 0 = not body)
    force: bool = False  # replace a different run's shards
    limit: int | None = None  # render only the first N usable fits
    shard_size: int = 50
    body: str = "anny"
    texture_size: int = 512
    contact_sheet: bool = True
    sampling: VariantConfig = field(default_factory=VariantConfig)

    def keyed(self) -> dict:
        """The fields that change the output (the run key's part of the config)."""
        d = asdict(self)
        for k in EXECUTION_ONLY:
            d.pop(k)
        return d


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
    texture: dict | str  # description of the appearance
    background: dict | str  # description of the background


def make_image_maker(cfg: RenderConfig, body):
    """The object that turns (spec, vertices) into a :class:`Rendered`."""
    return ImageMaker(cfg, body.topology())


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_backgrounds(folder: str | Path) -> list[Path]:
    """Image files of a background folder (sorted); UserError when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--backgrounds {folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"--backgrounds {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
    return files


def check_textures(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise UserError(f"--textures {folder}: no texture images in it; pass a folder of .jpg/.png "
                        "textures or leave --textures out for procedural ones")
    return files


class ImageMaker:
    """Spec + world vertices -> finished JPEG: texture, support, lights, background, GL render,
    sensor effects. One per worker (holds the process's Renderer).

    Texture, background and sensor effects come from ``render.appearance``, ``render.background``
    and ``render.sensor``; where one of those is missing, a plain fallback is used and the
    image's provenance says so (``"fallback"``).
    """

    def __init__(self, cfg: RenderConfig, topology):
        from syrip_gen.render.renderer import Renderer

        self.cfg = cfg
        self.topology = topology
        self.renderer = Renderer(cfg.width, cfg.height, topology)
        self.backgrounds = list_backgrounds(cfg.backgrounds) if cfg.backgrounds else []

    def texture(self, spec):
        rng = np.random.default_rng(spec.appearance_seed)
        try:
            from syrip_gen.render import appearance
        except ImportError:
            appearance = None
        if appearance is not None:
            return appearance.make_texture(self.topology, rng, self.cfg.texture_size, self._appearance_cfg())
        tone = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
        tex = np.empty((8, 8, 3), np.uint8)
        tex[:] = tone
        return tex, {"kind": "fallback-plain", "rgb": list(tone)}

    def _appearance_cfg(self):
        from syrip_gen.render import appearance

        cls = getattr(appearance, "AppearanceConfig", None)
        if cls is None:
            return None
        try:
            return cls(textures=self.cfg.textures) if self.cfg.textures else cls()
        except TypeError:
            return cls()

    def support_texture(self, spec) -> tuple[np.ndarray, dict]:
        rng = np.random.default_rng(spec.support_seed)
        try:
            from syrip_gen.render.background import support_texture
        except ImportError:
            support_texture = None
        if support_texture is not None:
            out = support_texture(spec.support_kind, rng)
            return out if isinstance(out, tuple) else (out, {"kind": spec.support_kind})
        c1 = rng.integers(90, 250, 3)
        c2 = np.clip(c1 - rng.integers(10, 60, 3), 0, 255)
        n = int(rng.integers(2, 9))
        cells = (np.add.outer(np.arange(64) * n // 64, np.arange(64) * n // 64) % 2).astype(bool)
        tex = np.where(cells[..., None], c1, c2).astype(np.uint8)
        return tex, {"kind": f"fallback-check-{spec.support_kind}"}

    def background(self, spec) -> tuple[np.ndarray | None, dict]:
        import cv2

        bg = spec.background
        if bg["kind"] == "file" and self.backgrounds:
            path = self.backgrounds[bg["index"] % len(self.backgrounds)]
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is not None:
                return img[..., ::-1].copy(), {"kind": "file", "file": path.name}
            log.warning("background %s unreadable; using a procedural one", path)
            unreadable = path.name
        else:
            unreadable = None
        rng = np.random.default_rng(bg["seed"])
        try:
            from syrip_gen.render.background import procedural_background
        except ImportError:
            procedural_background = None
        if procedural_background is not None:
            out = procedural_background(self.cfg.width, self.cfg.height, rng)
            img, desc = out if isinstance(out, tuple) else (out, {"kind": "procedural"})
        else:
            top, bottom = rng.integers(40, 230, 3), rng.integers(40, 230, 3)
            ramp = np.linspace(0, 1, self.cfg.height)[:, None, None]
            img = np.broadcast_to((top * (1 - ramp) + bottom * ramp).astype(np.uint8),
                                  (self.cfg.height, self.cfg.width, 3)).copy()
            desc = {"kind": "fallback-gradient"}
        return img, ({**desc, "unreadable": unreadable} if unreadable else desc)

    def sensor(self, rgb: np.ndarray, spec) -> bytes:
        import cv2

        p = spec.sensor
        rng = np.random.default_rng(p["seed"])
        img = rgb
        if p["blur_sigma"] > 0.05:
            img = cv2.GaussianBlur(img, (0, 0), p["blur_sigma"])
        if p["noise_sigma"] > 0.05:
            noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(p["noise_sigma"])
            img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]),
                               [cv2.IMWRITE_JPEG_QUALITY, int(p["jpeg_quality"])])
        return buf.tobytes()

    def scene(self, spec, vertices, texture, support_tex, background):
        from syrip_gen.render.scene import Camera, Light, Scene, Support

        cam = spec.camera
        lo, hi = vertices.min(0), vertices.max(0)
        span = float(max(hi[0] - lo[0], hi[2] - lo[2]))
        support = Support(kind=spec.support_kind, height=spec.support_y - 0.002,
                          size=(4 * span + 0.5, 4 * span + 0.5),
                          center=(float((lo[0] + hi[0]) / 2), float((lo[2] + hi[2]) / 2)),
                          texture=support_tex, tile=0.5)
        lights = tuple(Light(kind=x["kind"], color=np.asarray(x["color"], np.float32), intensity=x["intensity"],
                             direction=np.asarray(x["direction"])) for x in spec.lights)
        return Scene(vertices=np.asarray(vertices, np.float32), texture=texture,
                     camera=Camera(K=cam.K, R=cam.R_np, t=cam.t_np, width=spec.width, height=spec.height),
                     support=support, lights=lights, ambient=(spec.ambient,) * 3, background=background,
                     shadows=self.cfg.shadows)

    def render(self, spec, vertices) -> Rendered:
        texture, tex_desc = self.texture(spec)
        support_tex, support_desc = self.support_texture(spec)
        background, bg_desc = self.background(spec)
        scene = self.scene(spec, vertices, texture, support_tex, background)
        r = self.renderer.render(scene, parts=self.cfg.parts)
        parts = None if r.parts is None else (r.parts.astype(np.int32) + 1).clip(0, 255).astype(np.uint8)
        depth_mm = np.clip(np.round(r.depth * 1000.0), 0, 65535).astype(np.uint16) if self.cfg.depth else None
        return Rendered(jpeg=self.sensor(r.rgb, spec), mask=r.mask, body_depth=r.body_depth, depth_mm=depth_mm,
                        parts=parts, texture=tex_desc, background={**bg_desc, "support": support_desc})


# plain skin tones (sRGB) for the fallback texture, light to dark
SKIN_TONES = ((241, 194, 167), (224, 172, 138), (198, 140, 104), (161, 106, 72), (120, 78, 52), (88, 57, 39))


def worker_state(cfg: RenderConfig) -> WorkerState:
    """One body + renderer per process and thread (EGL contexts are thread-bound)."""
    key = (os.getpid(), threading.get_ident(), cfg.width, cfg.height, cfg.body, cfg.backgrounds,
           cfg.textures, cfg.shadows, cfg.texture_size)
    with _STATE_LOCK:
        state = _STATE.get(key)
        if state is None:
            from syrip_gen.body import load_body
            from syrip_gen.render.variants import PoseChecker

            body = _STATE.get(("body", os.getpid(), cfg.body)) or load_body(cfg.body)
            _STATE[("body", os.getpid(), cfg.body)] = body
            state = WorkerState(body=body, maker=make_image_maker(cfg, body),
                                checker=PoseChecker(cfg.sampling.max_nll_increase))
            _STATE[key] = state
    return state


# ---- files --------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    from syrip_gen.render.variants import sample_variants

    state = worker_state(cfg)
    sampled = sample_variants([(fits[f], v) for f, v in jobs], state.body, cfg.sampling, cfg.seed,
                              cfg.width, cfg.height, checker=state.checker, n_backgrounds=n_backgrounds)
    postures = (posture_labels(torch.from_numpy(sampled.keypoints), torch.tensor([0.0, 1.0, 0.0]))
                if sampled.specs else [])
    images, anns, files = [], [], []
    rejected = dict(sampled.rejected)
    for k, spec in enumerate(sampled.specs):
        r = state.maker.render(spec, sampled.vertices[k])
        if isinstance(r.background, dict) and r.background.get("unreadable"):
            why = "background unreadable (skipped, procedural used)"
            rejected[why] = rejected.get(why, 0) + 1
        name = image_name(spec.fit_index, spec.variant_index)
        fit = fits[spec.fit_index]
        prov = {"fit_id": fit.id, "source_image_id": fit.source_image_id, "source_file": fit.source_file,
                "texture": r.texture, "background": r.background, "lights": [dict(x) for x in spec.lights],
                "seed": list(spec.seed), "pose_check": state.checker.kind, "spec": spec.to_json()}
        res = annotate_image(image_id(spec.fit_index, spec.variant_index), name, spec, sampled.keypoints[k],
                             r.mask, r.body_depth, postures[k], prov)
        if res.annotation is None:
            rejected[res.reason] = rejected.get(res.reason, 0) + 1
            continue
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
    manifest = {"run_key": key, "shard": shard, "jobs": [list(j) for j in jobs], "images": images,
                "annotations": anns, "files": files, "rejected": rejected,
                "rejected_jobs": [list(x) for x in sampled.rejected_jobs]}
    atomic_write_json(d / "shard.json", manifest)  # last: the done marker
    return {**manifest, "resumed": False}


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


def count_backgrounds(cfg: RenderConfig) -> int:
    if not cfg.backgrounds:
        return 0
    return len(list_backgrounds(cfg.backgrounds))


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
    body = load_body(cfg.body)
    records, fits_skipped = load_fits(path, len(body.shape_names), cfg.limit)
    n_bg = count_backgrounds(cfg)
    if cfg.textures:
        check_textures(cfg.textures)
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
    resumed = n_images = 0
    with tqdm(total=len(jobs), unit="img", desc="render", smoothing=0.1) as bar:
        for manifest in _run_shards(tasks, fits, cfg, out, key, n_bg):
            resumed += bool(manifest.get("resumed"))
            n_images += len(manifest["images"])
            for reason, n in manifest["rejected"].items():
                rejected[reason] = rejected.get(reason, 0) + n
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
        images_per_s=round(n_images / seconds, 3) if seconds > 0 else 0.0, contact_sheet=sheet)
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
