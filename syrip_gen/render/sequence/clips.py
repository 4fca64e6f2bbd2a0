"""Fits -> short clips of moving infants (the ``sequence`` stage): frames, per-frame COCO with
track ids, MP4s, per-clip gates.

Why: trackers, smoothers and movement assessment need labelled video of infants. A clip is one
scene drawn by the stills' own spine: a :class:`VariantSpec` from :func:`sample_variants` (1-3
infants, user backgrounds, baked photo textures...), moved frame by frame (:mod:`clip_plan`),
drawn by the worker's :class:`ImageMaker` in its clip scope and labelled with per-frame contact
(:mod:`clip_render`). Settings: the clip's fields here, image settings in ``ClipConfig.render``.

Layout (PoseTrack-like: images carry ``frame_id``, ``vid_id``/``clip_id``, ``nframes``;
annotations carry ``track_id``)::

    OUT/run.json
    OUT/images/clip_NNNNN/FFFFFF.jpg
    OUT/annotations/clips/clip_NNNNN.json          one clip's images + annotations (its done marker)
    OUT/annotations/person_keypoints_<split>_infant.json           all clips ("videos" lists them)
    OUT/annotations/person_keypoints_<split>_filtered_infant.json  clips whose every frame passed the gates
    OUT/previews/clip_NNNNN.mp4                    frames with their keypoints drawn
    OUT/videos/clip_NNNNN.mp4                      the frames as rendered (input for `predict`)
    OUT/clips.json                                 per clip: movement, stats, kept/dropped and why

Ids: clip id = clip index + 1; image id = clip id x 10000 + frame + 1 (annotations: per infant).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from syrip_gen.annotate import synthetic_info
from syrip_gen.config import RUN_ONLY, RunConfig, check_ranges, from_mapping, keyed, moved
from syrip_gen.errors import UserError
from syrip_gen.render.sequence.clip_plan import ClipPlan, limit_arrays, plan_clip  # noqa: F401  (the API)
from syrip_gen.render.sequence.clip_render import clip_name, clip_table, finished_clip, frame_id, render_clip  # noqa: F401
from syrip_gen.render.image.config import RenderConfig
from syrip_gen.render.sequence.motion import MotionConfig
from syrip_gen.render.world.variants import VariantConfig

# frames per clip: a clip's per-frame records stay in memory until it is written (~80 kB a frame at
# 320x240; the frames are streamed from disk into the MP4s); 3000 = 5 min at 10 fps, 100 s at 30 fps
MAX_FRAMES = 3000
# a clip's image settings unlike a still's: one process, smaller frames, room for moving limbs
CLIP_RENDER = {"variants": 1, "width": 320, "height": 240, "contact_sheet": False,
               "sampling": {"fill": (0.45, 0.7)}, "run": {"workers": 1}}
SECTIONS = {"sampling": VariantConfig, "run": RunConfig}  # CLIP_RENDER's nested sections: merged key by key


def _clip_render(**image) -> RenderConfig:
    """A clip's image settings: :data:`CLIP_RENDER` under ``image`` (RenderConfig fields)."""
    return RenderConfig(**{**CLIP_RENDER, **{k: cls(**CLIP_RENDER[k]) for k, cls in SECTIONS.items()}, **image})


@dataclass(frozen=True)
class ClipConfig:
    """The ``sequence`` stage's settings (CLI flags / pipeline YAML): the clip's own fields, and
    ``render``, every frame's image settings (flat image keys go there: ``width: 160``)."""

    clips: int = field(default=4, metadata={"min": 1, "max": 99999})
    seconds: float = field(default=3.0, metadata={"min": 0.1})
    fps: float = field(default=10.0, metadata={"min": 1.0, "max": 120.0})
    # total turn of the camera about the infant over a clip (degrees, drawn uniformly); 0, 0 = fixed
    camera_orbit_deg: tuple[float, float] = field(default=(-10.0, 10.0), metadata={"min": -180.0, "max": 180.0})
    moving_camera_prob: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    # the clip gate for still clips: some keypoint of every infant gets this far (m) from its frame-0
    # place, else the movement is drawn again (3 tries) and then the clip is dropped ("too still")
    min_movement_m: float = field(default=0.03, metadata={"min": 0.0})
    # moving limbs may press this far (m) into the (soft) support; deeper movements are scaled down
    max_sink_m: float = field(default=0.015, metadata={"min": 0.0})
    preview: bool = field(default=True, metadata=RUN_ONLY)  # MP4 per clip with the keypoints drawn
    # MP4 per clip of the frames as rendered (what `predict` takes)
    video: bool = field(default=True, metadata=RUN_ONLY)
    gate: bool = True  # run filter's gates per frame and keep whole clips
    motion: MotionConfig = field(default_factory=MotionConfig)
    render: RenderConfig = field(default_factory=_clip_render)

    def __post_init__(self):
        check_ranges(self, "sequence config")
        lo, hi = self.camera_orbit_deg
        if lo > hi:
            raise UserError(f"sequence config: camera_orbit_deg must be (low, high) with low <= high, got ({lo}, {hi})")
        if self.frames > MAX_FRAMES:
            raise UserError(f"sequence config: seconds x fps = {self.frames} frames; at most {MAX_FRAMES}")
        if self.frames < 3:
            raise UserError(f"sequence config: seconds x fps = {self.frames} frames; a clip needs at least 3")

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.fps))

    @classmethod
    def of(cls, **kw) -> "ClipConfig":
        """In Python: clip fields and image fields (``width=160``, ``sampling=VariantConfig(...)``) side by side."""
        own = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in kw.items() if k in own}, render=_clip_render(**{k: v for k, v in kw.items()
                                                                                       if k not in own}))

    @classmethod
    def from_dict(cls, d: dict | None, name=None) -> "ClipConfig":
        """From a mapping; image keys given flat go into ``render`` (over the clip's defaults,
        :data:`CLIP_RENDER`). ``name``: key path -> what the user typed (a CLI flag)."""
        d = dict(d or {}) if isinstance(d, dict) or d is None else d
        if isinstance(d, dict):
            render = d.pop("render", None) or {}
            if not isinstance(render, dict):
                raise UserError(f"sequence config: render must be a mapping, got {render!r}")
            own = {f.name for f in dataclasses.fields(cls)}
            image = {f.name for f in dataclasses.fields(RenderConfig)} | {k for k in RenderConfig.MOVED if "." not in k}
            flat = {k: d.pop(k) for k in list(d) if k not in own and k in image}
            both = sorted(set(flat) & set(render))
            if both:
                raise UserError(f"sequence config: {', '.join(both)} given both flat and under render:")
            given = moved(RenderConfig, {**flat, **render}, "sequence config")  # old keys first (workers: run.workers)
            render = {**CLIP_RENDER, **given}
            for k in SECTIONS:  # the clip's defaults under the user's values, key by key
                if given.get(k) is None or isinstance(given[k], dict):
                    render[k] = {**CLIP_RENDER[k], **(given.get(k) or {})}
            d["render"] = render
        return from_mapping(cls, d, "sequence config", name=name)

    def keyed(self) -> dict:
        """The fields that change the output (the run key's part of the config; field metadata
        decides, see :func:`syrip_gen.config.keyed`)."""
        return keyed(self)


@dataclass
class ClipSummary:
    out_dir: str
    annotation_path: str
    filtered_path: str | None
    run_key: str
    clips: int
    clips_kept: int
    frames: int
    frames_per_s: float  # frames rendered, labelled and written per second of clip rendering (set-up and gates aside)
    seconds: float
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> clips
    previews: list[str] = field(default_factory=list)
    photo_textures: dict[str, int] = field(default_factory=dict)  # fits by bake outcome (--photo-textures)


def _run_key(fits_path: Path, cfg: ClipConfig, extra: str = "") -> str:
    from syrip_gen.codehash import code_version

    h = hashlib.sha256(fits_path.read_bytes())
    h.update(extra.encode())
    h.update(json.dumps(cfg.keyed(), sort_keys=True, default=str).encode())
    h.update(code_version("sequence").encode())
    return h.hexdigest()[:16]


def _bake(records, infos, body, out: Path, rcfg: RenderConfig, path: Path) -> dict:
    """With ``photo_textures``: each fit's photo baked onto its body (``render.looks.photo_textures``)."""
    from syrip_gen.render.looks.bake import BakeConfig
    from syrip_gen.render.looks.photo_textures import TEXTURE_DIR, bake_fits
    from syrip_gen.render.image.worker import one_torch_thread

    with one_torch_thread():
        photo = bake_fits(records, body, out / TEXTURE_DIR, BakeConfig(size=rcfg.texture_size), fits_path=path)
    for info in infos:
        info.photo_texture = photo.paths.get(info.index)
    return dict(sorted(photo.counts.items()))


def render_clips(fits_path: str | Path, out_dir: str | Path, cfg: ClipConfig, log=print) -> ClipSummary:
    """Render ``cfg.clips`` clips (fits taken in turn), resume finished ones, merge, gate per clip."""
    from tqdm import tqdm

    from syrip_gen.atomic import atomic_write_json
    from syrip_gen.coco import annotation_path, write_coco
    from syrip_gen.fits import fits_file, usable_fits
    from syrip_gen.render.image.compose import check_folders
    from syrip_gen.render.world.sources import posture_pool, prepare_fits
    from syrip_gen.render.image.worker import one_torch_thread, worker_state
    from syrip_gen.runfolder import check_writable, claim, locked, record

    t0, rcfg = time.perf_counter(), cfg.render
    path = fits_file(fits_path)
    out = Path(out_dir)
    check_writable(out)
    from syrip_gen.render.looks.photo_textures import photo_signature

    key = _run_key(path, cfg, photo_signature(path, rcfg.photo_textures, rcfg.max_missing_photos))  # before any work
    claim(out, key, rcfg.run.force, "sequence")
    n_bg = check_folders(rcfg)
    state = worker_state(rcfg)
    records, _ = usable_fits(path, len(state.body.shape_names), rcfg.limit, body=rcfg.body.name)
    if not records:
        raise UserError(f"{path}: no usable fits to make clips of")
    with one_torch_thread():
        infos = prepare_fits(records, state.body)
    pool, by_index = posture_pool(infos), {f.index: f for f in infos}
    manifests, rendered, render_s, baked = [], 0, 0.0, {}
    with locked(out, "sequence"):
        if claim(out, key, rcfg.run.force, "sequence") is not None:  # --force: a different run's clips go
            import shutil

            for sub in ("images", "annotations", "previews", "videos", "filter"):
                shutil.rmtree(out / sub, ignore_errors=True)
        record(out, key, "sequence", config=cfg.keyed(), fits=str(path))
        if rcfg.photo_textures:
            baked = _bake(records, infos, state.body, out, rcfg, path)
        with tqdm(total=cfg.clips * cfg.frames, unit="frame", desc="sequence") as bar:
            for c in range(cfg.clips):
                clip_id, fit = c + 1, infos[c % len(infos)]
                m = finished_clip(out, clip_id, key, cfg)
                if m is None:
                    with one_torch_thread():
                        plan, reason = plan_clip(fit, c // len(infos), state.body, cfg, state.checker, pool, n_bg)
                    if plan is None:
                        m = {"run_key": key, "clip_id": clip_id, "name": clip_name(clip_id), "fit_id": fit.id,
                             "dropped": reason, "images": [], "annotations": []}
                        atomic_write_json(out / "annotations" / "clips" / f"{clip_name(clip_id)}.json", m)
                    else:
                        t_clip = time.perf_counter()
                        m = render_clip(clip_id, plan, by_index, cfg, state, state.maker, out, key)
                        render_s += time.perf_counter() - t_clip
                        rendered += len(m["images"])
                manifests.append(m)
                bar.update(cfg.frames)
        images = [img for m in manifests for img in m["images"]]
        anns = [a for m in manifests for a in m["annotations"]]
        if not images:
            raise UserError("every clip was dropped (" + ", ".join(sorted({str(m["dropped"]) for m in manifests}))
                            + "); widen --fill (pipeline: sampling.fill) or check the fits")
        videos = [{"id": m["clip_id"], "name": m["name"], "nframes": m["frames"], "fps": m["fps"],
                   "infants": m["infants"]} for m in manifests if m["images"]]
        ann_path = annotation_path(out, rcfg.split)
        write_coco(ann_path, images, anns, videos=videos,
                   info=synthetic_info("syrip-gen synthetic infant clips", run_key=key, config=cfg.keyed(),
                                       fits=os.path.relpath(path.resolve(), out.resolve())))
        gated = None
        if cfg.gate:
            from syrip_gen.clip_gates import gate_clips

            gated = gate_clips(ann_path, body=state.body)
        table, dropped = clip_table(manifests, gated)
        atomic_write_json(out / "clips.json", {"run_key": key, "clips": table})
    return ClipSummary(out_dir=str(out), annotation_path=str(ann_path),
                       filtered_path=gated["coco_out"] if gated else None, run_key=key, clips=cfg.clips,
                       clips_kept=sum(t["kept"] for t in table), frames=len(images),
                       frames_per_s=round(rendered / render_s, 3) if render_s else 0.0,
                       seconds=round(time.perf_counter() - t0, 3), dropped=dropped,
                       previews=[str(out / t["preview"]) for t in table if t.get("preview")], photo_textures=baked)
