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
+ 1, ``NNNNNN_VVVV.jpg``; an image of several infants holds one annotation each (ids:
``annotate.annotation_id``). The run key hashes the fits file, the render config (less the
execution-only fields) and the code of the stages involved.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from syrip_gen.annotate import synthetic_info
from syrip_gen.atomic import atomic_link, atomic_write_bytes, atomic_write_json
from syrip_gen.codehash import code_version
from syrip_gen.coco import annotation_path
from syrip_gen.errors import UserError
from syrip_gen.fits import fits_file, usable_fits
from syrip_gen.render.image.compose import StageTimer, check_folders
from syrip_gen.render.image.config import MAX_VARIANTS, RenderConfig
from syrip_gen.render.world.sources import FitInfo
from syrip_gen.render.image.worker import one_torch_thread, worker_state
from syrip_gen.runfolder import check_writable, claim, locked, record

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
    photo_textures: dict[str, int] = field(default_factory=dict)  # fits by bake outcome (--photo-textures)
    bake_seconds: float = 0.0  # of ``seconds``: baking (or reusing) the photo textures


# ---- run key ------------------------------------------------------------------------------
def run_key(fits_path: Path, cfg: RenderConfig, extra: str = "") -> str:
    """Hash of the fits file, the keyed config, the code and ``extra`` (with photo textures:
    the photos' names, sizes and times, :func:`~syrip_gen.render.looks.photo_textures.photo_signature`)."""
    h = hashlib.sha256()
    h.update(fits_path.read_bytes())
    h.update(extra.encode())
    h.update(json.dumps(cfg.keyed(), sort_keys=True).encode())
    h.update(code_version("render").encode())
    return h.hexdigest()[:20]


# ---- files --------------------------------------------------------------------------------
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
                 out_dir: str, key: str, n_backgrounds: int = 0, parent_pid: int | None = None) -> dict:
    """Render, annotate and write one shard; returns its manifest (also in ``shard.json``).
    ``parent_pid``: the run's process; a worker process exits as soon as it is gone."""
    if parent_pid is not None and parent_pid != os.getpid():
        exit_with(parent_pid)
    out = Path(out_dir)
    done = read_shard(out, shard, key)
    if done is not None:
        return {**done, "resumed": True}
    d = shard_dir(out, shard)
    d.mkdir(parents=True, exist_ok=True)
    with one_torch_thread():
        return _render_shard(shard, jobs, fits, cfg, out, d, key, n_backgrounds)


_WATCHED: set[int] = set()


def exit_with(parent_pid: int, every_s: float = 0.5) -> None:
    """In a worker process: end it within ``every_s`` once the run's process ``parent_pid`` (or
    the worker's own parent) is gone, e.g. killed with SIGKILL, instead of rendering on for
    minutes with nobody to merge the result. Safe at any moment: every file is written by
    temp + rename and ``shard.json`` last, so a resumed run redoes the unfinished shard."""
    if parent_pid in _WATCHED:
        return
    _WATCHED.add(parent_pid)
    own_parent = os.getppid()

    def watch():
        while True:
            time.sleep(every_s)
            try:
                os.kill(parent_pid, 0)
                alive = os.getppid() == own_parent
            except ProcessLookupError:
                alive = False
            except PermissionError:  # exists, owned by someone else: pid reused, ours is gone
                alive = False
            if not alive:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _remove_stale_temp_files(out: Path) -> None:
    """Temp files of writes cut short by a kill (``.<name>.*.tmp``, see atomic.atomic_write_bytes)."""
    for folder in (out, out / "images", out / "annotations", *sorted((out / "shards").glob("*"))):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def _render_shard(shard, jobs, fits, cfg, out, d, key, n_backgrounds) -> dict:
    """The shard worker, top to bottom: worker state -> variants (one batched body forward;
    each spec a scene of 1-3 infants) -> per image: render -> annotate (one annotation per
    infant) -> write -> ``shard.json`` last (the done marker)."""
    import numpy as np
    import torch

    from syrip_gen.annotate import annotate_scene, provenance_blocks
    from syrip_gen.posture_label import posture_labels
    from syrip_gen.render.looks.photo_textures import choose_texture
    from syrip_gen.render.pixels.sensor import encode_png
    from syrip_gen.render.world.sources import posture_pool
    from syrip_gen.render.world.variants import sample_variants

    # 1. worker state (body, GL renderer, pose checker): made once per worker, not timed
    timer = StageTimer()
    state = worker_state(cfg)
    cpu0 = time.process_time()  # this process's CPU, llvmpipe's threads included
    # 2. variants: every job's scene drawn from its own seed
    with timer("sample variants (body forward)"):
        sampled = sample_variants([(fits[f], v) for f, v in jobs], state.body, cfg.sampling, cfg.seed,
                                  cfg.width, cfg.height, checker=state.checker, n_backgrounds=n_backgrounds,
                                  shadow_prob=cfg.shadows, pool=posture_pool(fits.values()),
                                  contact=cfg.contact)
        all_kp = np.concatenate(sampled.scene_keypoints) if sampled.specs else np.zeros((0, 17, 3), np.float32)
        labels = posture_labels(torch.from_numpy(all_kp), torch.tensor([0.0, 1.0, 0.0])) if len(all_kp) else []
        ends = np.cumsum([len(k) for k in sampled.scene_keypoints])
        postures = [labels[e - len(k):e] for e, k in zip(ends, sampled.scene_keypoints)]  # per image, per infant
    images, anns, files = [], [], []
    rejected = Counter(sampled.rejected)
    photo_paths = {i: f.photo_texture for i, f in fits.items() if f.photo_texture}
    for k, spec in enumerate(sampled.specs):
        # 3. render
        photos = ([choose_texture(b.appearance_seed, b.fit_index, photo_paths, cfg.own_photo_texture)
                   for b in spec.bodies] if photo_paths else None)
        r = state.maker.render(spec, sampled.scene_vertices[k], timer, photo_textures=photos)
        rejected.update(r.skipped)
        # 4. annotate: one annotation per infant, visibility from the whole scene's depth
        name = image_name(spec.fit_index, spec.variant_index)
        with timer("annotate"):
            provs = provenance_blocks(r, spec, [fits[b.fit_index] for b in spec.bodies], state.checker.kind)
            res = annotate_scene(image_id(spec.fit_index, spec.variant_index), name, spec, sampled.scene_keypoints[k],
                                 r.labels, r.body_depth, postures[k], provs)
        if res.image is None:
            rejected[res.reason] += 1
            continue
        # 5. write the image (temp + rename) and its maps
        timer.start("write")
        atomic_write_bytes(d / name, r.jpeg)
        files.append(name)
        for field_, suffix, array in (("depth_file", "_depth.png", r.depth_mm if cfg.depth else None),
                                      ("parts_file", "_parts.png", r.parts if cfg.parts else None)):
            if array is not None:
                files.append(name.replace(".jpg", suffix))
                atomic_write_bytes(d / files[-1], encode_png(array))
                res.image[field_] = files[-1]
        images.append(res.image)
        anns.extend(res.annotations)
        timer.stop()
    # 6. mark done: the manifest last, by atomic rename
    manifest = {"run_key": key, "shard": shard, "jobs": [list(j) for j in jobs], "images": images,
                "annotations": anns, "files": files, "rejected": dict(rejected),
                "rejected_jobs": [list(x) for x in sampled.rejected_jobs]}
    with timer("write"):
        atomic_write_json(d / "shard.json", manifest)
    timing = {"stage_seconds": timer.seconds, "cpu_seconds": time.process_time() - cpu0}
    return {**manifest, "resumed": False, **timing}  # timing: not in shard.json (same bytes on rerun)


# ---- the run ------------------------------------------------------------------------------
def check_out(out: Path, key: str, cfg: RenderConfig) -> str | None:
    """Refuse, before any work, an ``--out`` this run may not write into (see
    :func:`syrip_gen.runfolder.claim`); returns another render run's key to replace, if any."""
    return claim(out, key, cfg.run.force, "render",
                 made_before_keys=lambda o: (o / "shards").is_dir() and any((o / "shards").iterdir()))


def _prepare_out(out: Path, key: str, cfg: RenderConfig, fits_path: Path, other: str | None) -> None:
    """Replace the files of ``other``, a different run that ``check_out`` allowed replacing; record this run."""
    if other is not None:
        for sub in ("shards", "images", "annotations"):
            shutil.rmtree(out / sub, ignore_errors=True)
        (out / "contact_sheet.jpg").unlink(missing_ok=True)
    record(out, key, "render", config=cfg.keyed(), fits=str(fits_path), code_version=code_version("render"))


def _run_shards(tasks: list[tuple[int, list]], fits: dict, cfg: RenderConfig, out: Path, key: str,
                n_backgrounds: int):
    """Yield shard manifests as they finish (any order), with the chosen backend."""
    args = (fits, cfg, str(out), key, n_backgrounds, os.getpid())
    if cfg.run.backend == "dask":
        yield from _run_dask(tasks, args, cfg)
    elif cfg.run.backend != "joblib":
        raise UserError(f"unknown --backend {cfg.run.backend!r}; choose joblib or dask")
    elif cfg.run.workers <= 1:
        for shard, jobs in tasks:
            yield render_shard(shard, jobs, *args)
    else:
        from joblib import Parallel, delayed

        par = Parallel(n_jobs=cfg.run.workers, backend="loky", return_as="generator_unordered")
        yield from par(delayed(render_shard)(shard, jobs, *args) for shard, jobs in tasks)


def _run_dask(tasks, args, cfg: RenderConfig):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UserError("--backend dask needs dask[distributed]: pip install 'dask[distributed]'") from None
    cluster = None
    if cfg.run.scheduler:
        client = Client(cfg.run.scheduler)
    else:
        procs = cfg.run.workers > 1  # one worker: in this process (threads), no extra interpreter
        cluster = LocalCluster(n_workers=max(1, cfg.run.workers), threads_per_worker=1, processes=procs,
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


def merge(out: Path, n_shards: int, key: str, cfg: RenderConfig, fits_path: Path) -> Path:
    """Combine the shards into one COCO file and link their images into ``images/``; ``info``
    names the fits file (relative to the dataset) so that ``filter`` needs only the dataset."""
    from syrip_gen.coco import write_coco

    images, anns = [], []
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    for shard in range(n_shards):
        data = read_shard(out, shard, key)
        if data is None:
            raise RuntimeError(f"shard {shard} is incomplete after rendering")
        for name in data["files"]:
            atomic_link(shard_dir(out, shard) / name, img_dir / name)
        images += data["images"]
        anns += data["annotations"]
    images.sort(key=lambda r: r["id"])
    anns.sort(key=lambda r: r["id"])
    path = annotation_path(out, cfg.split)
    write_coco(path, images, anns, info=synthetic_info("syrip-gen synthetic infant renders", run_key=key,
                                                       config=cfg.keyed(),
                                                       fits=os.path.relpath(fits_path.resolve(), out.resolve())))
    return path


def render_dataset(fits_path: str | Path, out_dir: str | Path, cfg: RenderConfig,
                   on_shard_done: Callable[[int], None] | None = None) -> RenderSummary:
    """Render the whole dataset (resuming finished shards) and merge it into one COCO file.

    ``on_shard_done(shard)`` is called in this process after each shard's manifest arrives
    (tests use it to simulate a kill).
    """
    from syrip_gen.render.world.sources import prepare_fits

    t0 = time.perf_counter()
    path = fits_file(fits_path)
    out = Path(out_dir)
    check_writable(out)
    from syrip_gen.render.looks.photo_textures import photo_signature

    key = run_key(path, cfg, photo_signature(path, cfg.photo_textures, cfg.max_missing_photos))  # before any work
    check_out(out, key, cfg)  # before any work
    body = cfg.body.load()
    records, fits_skipped = usable_fits(path, len(body.shape_names), cfg.limit, body=cfg.body.name)
    n_bg = check_folders(cfg)
    with one_torch_thread():
        infos = prepare_fits(records, body)
    with locked(out, "render"):  # one run at a time; claimed again under the lock
        _prepare_out(out, key, cfg, path, check_out(out, key, cfg))
        return _render_claimed(out, key, cfg, path, body, records, infos, fits_skipped, n_bg, t0, on_shard_done)


def _render_claimed(out: Path, key: str, cfg: RenderConfig, path: Path, body, records: list, infos: list,
                    fits_skipped: dict, n_bg: int, t0: float, on_shard_done) -> RenderSummary:
    """``render_dataset``'s work, in a folder it holds and has claimed."""
    from tqdm import tqdm

    from syrip_gen.drawing import write_contact_sheet
    from syrip_gen.gates.pose import PoseChecker

    _remove_stale_temp_files(out)
    photo, bake_seconds = None, 0.0
    if cfg.photo_textures:
        from syrip_gen.render.looks.bake import BakeConfig
        from syrip_gen.render.looks.photo_textures import TEXTURE_DIR, bake_fits

        t_bake = time.perf_counter()
        with one_torch_thread():
            photo = bake_fits(records, body, out / TEXTURE_DIR, BakeConfig(size=cfg.texture_size), fits_path=path)
        bake_seconds = time.perf_counter() - t_bake
        for info in infos:
            info.photo_texture = photo.paths.get(info.index)
    fits = {f.index: f for f in infos}
    jobs = [(f.index, v) for f in infos for v in range(cfg.variants)]
    tasks = [(s, jobs[i:i + cfg.shard_size]) for s, i in enumerate(range(0, len(jobs), cfg.shard_size))]
    rejected, stages = Counter(), Counter()  # reason -> images, stage -> seconds
    cpu = 0.0
    resumed = n_images = 0
    with tqdm(total=len(jobs), unit="img", desc="render", smoothing=0.1) as bar:
        for manifest in _run_shards(tasks, fits, cfg, out, key, n_bg):
            resumed += bool(manifest.get("resumed"))
            n_images += len(manifest["images"])
            rejected.update(manifest["rejected"])
            cpu += manifest.get("cpu_seconds", 0.0)
            stages.update(manifest.get("stage_seconds", {}))
            bar.update(len(manifest["jobs"]))
            if on_shard_done is not None:
                on_shard_done(manifest["shard"])
    ann_path = merge(out, len(tasks), key, cfg, path)
    sheet = None
    if cfg.contact_sheet:
        sheet = str(write_contact_sheet(ann_path, out / "contact_sheet.jpg", seed=cfg.seed))
    seconds = time.perf_counter() - t0
    rejected = dict(rejected)
    summary = RenderSummary(
        out_dir=str(out), annotation_path=str(ann_path), run_key=key, images=n_images, shards=len(tasks),
        shards_resumed=resumed, fits_used=len(infos), fits_skipped=fits_skipped, rejected=rejected,
        pose_check=PoseChecker.kind, seconds=round(seconds, 3),
        images_per_s=round(n_images / seconds, 3) if seconds > 0 else 0.0, contact_sheet=sheet,
        stage_seconds={k: round(v, 3) for k, v in sorted(stages.items())}, cpu_seconds=round(cpu, 3),
        photo_textures=dict(sorted(photo.counts.items())) if photo else {}, bake_seconds=round(bake_seconds, 3),
        warnings=[f"{n} fit record(s) skipped: {why}" for why, n in sorted(fits_skipped.items())
                  if why not in ("fit not ok", "beyond --limit")]
        + [f"{n} x {why}" for why, n in sorted(rejected.items()) if "unreadable" in why]
        + [f"{n} of {len(infos)} fits: {why}" for why, n in sorted(photo.counts.items() if photo else ())
           if why.startswith("photo ")])
    if n_images == 0:
        raise UserError(f"every variant was rejected ({rejected}); widen --fill/--fov or check the fits")
    return summary
