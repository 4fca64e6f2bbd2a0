"""Fits -> short clips of a moving infant: frames, per-frame COCO with track ids, an MP4 preview.

Why: the people this tool serves film infants; trackers and temporal smoothers need labelled
video. A clip reuses the single-image path unchanged: :func:`sample_variants` draws one
:class:`VariantSpec` (view, lights, support, background, sensor, appearance), :mod:`motion`
moves the pose from the fit's through plausible infant movement, and each frame is that spec
with the frame's pose and camera, rendered by :class:`ImageMaker` and labelled by
:func:`annotate_image`. Within a clip lights, background, support, texture and sensor chain
stay as drawn; the body is re-seated on its support every frame (lowest vertex on the plane:
no sinking, no hovering); the camera is framed on all frames' vertices together and either
stands or drifts slowly around the infant (``camera_orbit_deg``).

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

Ids: clip id = clip index + 1; image and annotation id = clip id x 10000 + frame + 1.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from syrip_gen.coco import check_split
from syrip_gen.config import check_ranges, from_mapping
from syrip_gen.errors import UserError
from syrip_gen.render.config import MAX_IMAGE_SIDE
from syrip_gen.render.motion import MotionConfig
from syrip_gen.render.sensor import SensorConfig
from syrip_gen.render.variants import VariantConfig

# frames per clip: a clip's per-frame records stay in memory until it is written (~30 kB a frame; the
# frames themselves are streamed from disk into the MP4s); 3000 = 5 min at 10 fps, 100 s at 30 fps
MAX_FRAMES = 3000
TRACK_ID = 0  # one infant per clip; PoseTrack numbers tracks from 0 within a video


def _clip_sampling() -> VariantConfig:
    return VariantConfig(fill=(0.45, 0.7))  # room for moving limbs and a drifting camera


@dataclass(frozen=True)
class ClipConfig:
    """The ``sequence`` stage's settings (CLI flags / pipeline YAML)."""

    clips: int = field(default=4, metadata={"min": 1, "max": 99999})
    seconds: float = field(default=3.0, metadata={"min": 0.1})
    fps: float = field(default=10.0, metadata={"min": 1.0, "max": 120.0})
    width: int = field(default=320, metadata={"min": 16, "max": MAX_IMAGE_SIDE})
    height: int = field(default=240, metadata={"min": 16, "max": MAX_IMAGE_SIDE})
    seed: int = field(default=0, metadata={"min": 0})
    # total turn of the camera about the infant over a clip (degrees, drawn uniformly); 0, 0 = fixed
    camera_orbit_deg: tuple[float, float] = field(default=(-10.0, 10.0), metadata={"min": -180.0, "max": 180.0})
    moving_camera_prob: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    body: str = field(default="anny", metadata={"choices": ("anny", "smil", "smpl")})
    body_path: str | None = None
    keypoints: str | None = None  # learned keypoints.npz; None = the body's own
    limit: int | None = field(default=None, metadata={"min": 1})  # only the first N usable fits
    split: str = "train"
    preview: bool = True  # MP4 per clip with the keypoints drawn
    video: bool = True  # MP4 per clip of the frames as rendered (what `predict` takes)
    gate: bool = True  # run filter's gates per frame and keep whole clips
    force: bool = False
    msaa: int = field(default=0, metadata={"choices": (0, 2, 4)})
    texture_size: int = field(default=512, metadata={"min": 64})
    motion: MotionConfig = field(default_factory=MotionConfig)
    sampling: VariantConfig = field(default_factory=_clip_sampling)
    sensor: SensorConfig = field(default_factory=SensorConfig)

    def __post_init__(self):
        check_ranges(self, "sequence config")
        check_split(self.split, "sequence config")
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
    def from_dict(cls, d: dict | None) -> "ClipConfig":
        return from_mapping(cls, d, "sequence config")

    def render_config(self):
        """The single-image render settings each frame is made with."""
        from syrip_gen.dataset import RenderConfig

        return RenderConfig(variants=1, seed=self.seed, width=self.width, height=self.height, workers=1,
                            body=self.body, body_path=self.body_path, keypoints=self.keypoints, msaa=self.msaa,
                            texture_size=self.texture_size, contact_sheet=False, sampling=self.sampling,
                            sensor=self.sensor)

    def keyed(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("force", "preview", "video"):
            d.pop(k)
        return d


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


def clip_name(clip_id: int) -> str:
    return f"clip_{clip_id:05d}"


def frame_id(clip_id: int, frame: int) -> int:
    return clip_id * 10000 + frame + 1


def _run_key(fits_path: Path, cfg: ClipConfig) -> str:
    from syrip_gen.codehash import code_version

    h = hashlib.sha256(fits_path.read_bytes())
    h.update(json.dumps(cfg.keyed(), sort_keys=True, default=str).encode())
    h.update(code_version("sequence").encode())
    return h.hexdigest()[:16]


def _clip_maker(maker):
    """The worker's :class:`ImageMaker` for the frames of clips: the same renderer and settings,
    but the body texture, the support (sized on all frames' vertices) and the background are
    made once per clip and reused, so they cannot change between frames."""
    from syrip_gen.render.compose import ImageMaker

    class ClipImageMaker(ImageMaker):
        def begin_clip(self, all_vertices: np.ndarray) -> None:
            self._clip_box = np.stack([all_vertices.min(0), all_vertices.max(0)])
            self._cache = {}

        def texture(self, spec, photo_texture=None, k: int = 0):
            if ("texture", k) not in self._cache:  # unreadable files are counted on the first frame only
                self._cache[("texture", k)] = super().texture(spec, photo_texture, k)
                return self._cache[("texture", k)]
            tex, desc, _ = self._cache[("texture", k)]
            return tex, desc, 0

        def support(self, spec, vertices):
            if "support" not in self._cache:
                self._cache["support"] = super().support(spec, self._clip_box)
            return self._cache["support"]

        def background(self, spec, camera, support):
            from syrip_gen.render.renderer import support_covers_frame

            if support_covers_frame(camera, support):
                return None, {"kind": "hidden (the support fills the frame)"}, 0
            if "background" not in self._cache:
                self._cache["background"] = super().background(spec, camera, support)
                return self._cache["background"]
            img, desc, _ = self._cache["background"]
            return img, desc, 0

    clip = ClipImageMaker.__new__(ClipImageMaker)
    clip.__dict__.update(maker.__dict__)  # shares the worker's renderer (one GL context per thread)
    clip._cache, clip._clip_box = {}, None
    return clip


def limit_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``fit.limits``' bounds ``(24, 3)`` as float64 arrays (radians; joint 0 unbounded)."""
    from syrip_gen.fit.limits import limit_table

    lo, hi = limit_table()
    return lo.double().numpy(), hi.double().numpy()


@dataclass
class ClipPlan:
    """One clip before rendering: its spec (frame 0), per-frame poses, vertices, keypoints, cameras."""

    spec: object
    poses: np.ndarray  # (F, 24, 3)
    vertices: np.ndarray  # (F, V, 3) world, re-seated on the support
    keypoints: np.ndarray  # (F, 17, 3) world
    cameras: list
    motion: dict
    orbit_deg: float


def plan_clip(fit, variant: int, body, cfg: ClipConfig, checker, pool) -> tuple[ClipPlan | None, str | None]:
    """Draw a clip of ``fit``: its scene (a variant spec), its movement, its camera path."""
    import torch

    from syrip_gen.body.pose_space import flip_pose
    from syrip_gen.geometry import Camera
    from syrip_gen.render.motion import draw_motion, orbit_camera, plan_motion, smoothstep
    from syrip_gen.render.variants import frame_camera, sample_variants

    s = sample_variants([(fit, variant)], body, cfg.sampling, cfg.seed, cfg.width, cfg.height, checker=checker,
                        pool=pool)
    if not s.specs:
        return None, s.rejected_jobs[0][2] if s.rejected_jobs else "no view"
    spec = s.specs[0]
    rng = np.random.default_rng([cfg.seed, fit.index, variant, 7])  # the clip's own draws
    others = [g for g in (pool or {}).get(fit.posture, []) if g.index != fit.index]
    target = None
    if others:
        target = others[int(rng.integers(len(others)))].pose.copy()
        if spec.mirror:
            target = flip_pose(torch.tensor(target[None], dtype=torch.float64))[0].numpy()
    motion = draw_motion(rng, cfg.motion, target is not None)
    times = np.arange(cfg.frames) / cfg.fps
    base = np.asarray(spec.pose, np.float64)
    planned = plan_motion(base, times, motion, cfg.motion, checker.accept if checker else None, target,
                          limit_arrays())
    shape = torch.tensor(np.repeat(np.asarray(spec.shape, np.float32)[None], len(times), 0))
    with torch.no_grad():
        out = body(torch.tensor(planned.poses, dtype=torch.float32), shape, with_vertices=True)
    verts, kps = out.vertices.numpy().astype(np.float64), out.keypoints.numpy().astype(np.float64)
    lift = verts[:, :, 1].min(1) - spec.support_y  # re-seat on the support: lowest vertex on the plane
    verts[:, :, 1] -= lift[:, None]
    kps[:, :, 1] -= lift[:, None]
    fy = spec.camera.K[1, 1]
    fov = math.degrees(2 * math.atan(cfg.height / 2 / fy))
    fill = float(rng.uniform(*cfg.sampling.fill))
    every = verts[:, ::7].reshape(-1, 3)
    cam, reason = frame_camera(every, spec.camera.R, cfg.width, cfg.height, fov, fill, cfg.sampling.margin_px)
    if cam is None:
        return None, reason
    orbit = float(rng.uniform(*cfg.camera_orbit_deg)) if rng.uniform() < cfg.moving_camera_prob else 0.0
    pivot = (verts[0].min(0) + verts[0].max(0)) / 2
    cameras = []
    for f, t in enumerate(times):
        a = math.radians(orbit) * float(smoothstep(np.array(t / max(times[-1], 1e-9))))
        R, tt = orbit_camera(cam.R, cam.t, pivot, a)
        cameras.append(Camera(K=cam.K.copy(), R=R, t=tt, width=cfg.width, height=cfg.height))
    m = cfg.sampling.margin_px
    inside = all(((uv := c.project(v[::7])[0])[:, 0].min() >= m - 0.5) and uv[:, 1].min() >= m - 0.5
                 and uv[:, 0].max() <= cfg.width - 0.5 - m and uv[:, 1].max() <= cfg.height - 0.5 - m
                 for c, v in zip(cameras, verts))
    if not inside:  # the drift would carry the infant out of the frame: stand still instead
        orbit, cameras = 0.0, [Camera(K=cam.K.copy(), R=cam.R.copy(), t=cam.t.copy(), width=cfg.width,
                                      height=cfg.height) for _ in times]
    return ClipPlan(spec=spec, poses=planned.poses, vertices=verts, keypoints=kps, cameras=cameras,
                    motion={**planned.motion.to_json(), "scales": planned.scales}, orbit_deg=round(orbit, 3)), None


def clip_stats(images: list[dict], anns: list[dict], fps: float) -> dict:
    """Per-clip numbers: frames, visible share, keypoint speed and acceleration (px/s, px/s²;
    median over keypoints of the per-frame values, max over frames) from the annotations."""
    from syrip_gen.render.motion import acceleration

    kp = np.array([a["keypoints"] for a in anns], np.float64).reshape(len(anns), 17, 3)
    xy = kp[..., :2]
    speed = np.linalg.norm(np.diff(xy, axis=0), axis=-1) * fps
    acc = acceleration(xy, fps) if len(xy) >= 3 else np.zeros((0, 17))
    diag = float(np.median([math.hypot(a["bbox"][2], a["bbox"][3]) for a in anns]))
    return {"frames": len(images), "visible_share": round(float((kp[..., 2] == 2).mean()), 4),
            "box_diagonal_px": round(diag, 2),
            "speed_px_s": {"median": round(float(np.median(speed)), 3), "max": round(float(speed.max()), 3)},
            "acceleration_px_s2": {"median": round(float(np.median(acc)), 3), "max": round(float(acc.max()), 3)}}


def render_clip(clip_id: int, plan: ClipPlan, fit, cfg: ClipConfig, state, maker, out: Path, key: str) -> dict:
    """Render, label and write one clip; returns its manifest (also written as its done marker)."""
    import torch

    from syrip_gen.annotate import annotate_image
    from syrip_gen.coco import atomic_write_bytes, atomic_write_json
    from syrip_gen.posture import posture_labels

    name = clip_name(clip_id)
    maker.begin_clip(plan.vertices.reshape(-1, 3))
    postures = posture_labels(torch.from_numpy(plan.keypoints.astype(np.float32)), torch.tensor([0.0, 1.0, 0.0]))
    images, anns, reason = [], [], None
    F = len(plan.cameras)
    for f in range(F):
        # the frame's pose; its contact record (of the first frame's pose) would be stale: clips are
        # re-seated on the support every frame and not contact-gated per frame
        spec = dataclasses.replace(plan.spec.replace_body(0, pose=tuple(tuple(float(x) for x in p) for p in plan.poses[f]),
                                                          contact=None), camera=plan.cameras[f])
        r = maker.render(spec, plan.vertices[f].astype(np.float32))
        file_name = f"{name}/{f:06d}.jpg"
        prov = {"fit_id": fit.id, "source_image_id": fit.source_image_id, "source_file": fit.source_file,
                **r.provenance, "lights": [dict(x) for x in spec.lights], "ambient": spec.ambient,
                "shadows": spec.shadows, "seed": list(spec.seed), "pose_check": state.checker.kind,
                "clip": {"name": name, "motion": plan.motion, "camera_orbit_deg": plan.orbit_deg}}
        if f == 0:
            prov["spec"] = spec.to_json()  # the clip's scene; later frames differ in pose and camera only
        res = annotate_image(frame_id(clip_id, f), file_name, spec, plan.keypoints[f], r.mask, r.body_depth,
                             postures[f], prov)
        if res.annotation is None:
            reason = f"{res.reason} at frame {f}"
            break
        res.image.update({"frame_id": f, "vid_id": clip_id, "clip_id": clip_id, "nframes": F, "fps": cfg.fps,
                          "is_labeled": True})
        res.annotation["track_id"] = TRACK_ID
        atomic_write_bytes(out / "images" / file_name, r.jpeg)
        images.append(res.image)
        anns.append(res.annotation)
    manifest = {"run_key": key, "clip_id": clip_id, "name": name, "fit_id": fit.id, "frames": F, "fps": cfg.fps,
                "motion": plan.motion, "camera_orbit_deg": plan.orbit_deg, "dropped": reason,
                "images": images if reason is None else [], "annotations": anns if reason is None else []}
    if reason is None:
        manifest["stats"] = clip_stats(images, anns, cfg.fps)
        write_videos(out, manifest, cfg)
    atomic_write_json(out / "annotations" / "clips" / f"{name}.json", manifest)  # last: the done marker
    return manifest


def _frames_from_disk(out: Path, manifest: dict, preview: bool):
    """The clip's written frames, one at a time (decoded from its JPEGs; with ``preview``, with
    the keypoints drawn): what the MP4 writers take, so no clip is ever held in memory whole."""
    import cv2

    from syrip_gen.video import draw_pose

    for img, ann in zip(manifest["images"], manifest["annotations"]):
        frame = cv2.imread(str(out / "images" / img["file_name"]), cv2.IMREAD_COLOR)
        if preview:
            kp = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
            frame = draw_pose(frame, kp, box=np.asarray(ann["bbox"]), label=f"track {ann['track_id']}")
        yield frame


def write_videos(out: Path, manifest: dict, cfg: ClipConfig) -> bool:
    """Write the MP4s ``cfg`` asks for that the clip lacks (``videos/``: the frames as rendered;
    ``previews/``: with keypoints), streamed from its frames on disk; records them in
    ``manifest``. Returns whether anything was written (a rerun asking for MP4s after a
    ``--no-video`` run makes them from the frames already there, without rendering again)."""
    from syrip_gen.video import write_mp4

    wrote = False
    for want, key, sub in ((cfg.video, "video", "videos"), (cfg.preview, "preview", "previews")):
        rel = f"{sub}/{manifest['name']}.mp4"
        if want and (manifest.get(key) != rel or not (out / rel).is_file()):
            write_mp4(out / rel, _frames_from_disk(out, manifest, key == "preview"), cfg.fps)
            manifest[key] = rel
            wrote = True
    return wrote


def _done(out: Path, clip_id: int, key: str, cfg: ClipConfig) -> dict | None:
    """The finished clip ``clip_id`` of run ``key``, or None to render it (again): not made yet,
    made by another run, or a frame of it deleted or emptied since. MP4s it lacks (deleted, or
    a rerun now asks for them) are made from its frames."""
    p = out / "annotations" / "clips" / f"{clip_name(clip_id)}.json"
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("run_key") != key:
        return None
    for img in m.get("images", []):
        f = out / "images" / img["file_name"]
        if not f.is_file() or f.stat().st_size == 0:
            return None
    if m.get("images") and write_videos(out, m, cfg):
        from syrip_gen.coco import atomic_write_json

        atomic_write_json(p, m)
    return m


def render_clips(fits_path: str | Path, out_dir: str | Path, cfg: ClipConfig, log=print) -> ClipSummary:
    """Render ``cfg.clips`` clips (fits taken in turn), resume finished ones, merge, gate per clip."""
    from tqdm import tqdm

    from syrip_gen.coco import annotation_path, atomic_write_json, write_coco
    from syrip_gen.fits import fits_file, usable_fits
    from syrip_gen.dataset import one_torch_thread, worker_state
    from syrip_gen.render.variants import posture_pool, prepare_fits
    from syrip_gen.runfolder import check_writable, claim, locked, record

    t0 = time.perf_counter()
    path = fits_file(fits_path)
    out = Path(out_dir)
    check_writable(out)
    key = _run_key(path, cfg)
    claim(out, key, cfg.force, "sequence")
    rcfg = cfg.render_config()
    state = worker_state(rcfg)
    records, _ = usable_fits(path, len(state.body.shape_names), cfg.limit, body=cfg.body)
    if not records:
        raise UserError(f"{path}: no usable fits to make clips of")
    with one_torch_thread():
        infos = prepare_fits(records, state.body)
    for info, r in zip(infos, records):
        info.source_image_id, info.source_file = r.get("image_id"), r.get("file_name")
    pool = posture_pool(infos)
    maker = _clip_maker(state.maker)
    manifests, rendered, render_s = [], 0, 0.0
    with locked(out, "sequence"):
        other = claim(out, key, cfg.force, "sequence")
        if other is not None:  # --force: a different run's clips go
            import shutil

            for sub in ("images", "annotations", "previews", "videos", "filter"):
                shutil.rmtree(out / sub, ignore_errors=True)
        record(out, key, "sequence", config=cfg.keyed(), fits=str(path))
        with tqdm(total=cfg.clips * cfg.frames, unit="frame", desc="sequence") as bar:
            for c in range(cfg.clips):
                clip_id, fit = c + 1, infos[c % len(infos)]
                m = _done(out, clip_id, key, cfg)
                if m is None:
                    with one_torch_thread():
                        plan, reason = plan_clip(fit, c // len(infos), state.body, cfg, state.checker, pool)
                    if plan is None:
                        m = {"run_key": key, "clip_id": clip_id, "name": clip_name(clip_id), "fit_id": fit.id,
                             "dropped": reason, "images": [], "annotations": []}
                        atomic_write_json(out / "annotations" / "clips" / f"{clip_name(clip_id)}.json", m)
                    else:
                        t_clip = time.perf_counter()
                        m = render_clip(clip_id, plan, fit, cfg, state, maker, out, key)
                        render_s += time.perf_counter() - t_clip
                        rendered += len(m["images"])
                manifests.append(m)
                bar.update(cfg.frames)
        images = [img for m in manifests for img in m["images"]]
        anns = [a for m in manifests for a in m["annotations"]]
        if not images:
            raise UserError("every clip was dropped (" + ", ".join(sorted({str(m["dropped"]) for m in manifests}))
                            + "); widen --fill (pipeline: sampling.fill) or check the fits")
        videos = [{"id": m["clip_id"], "name": m["name"], "nframes": m["frames"], "fps": m["fps"]}
                  for m in manifests if m["images"]]
        ann_path = annotation_path(out, cfg.split)
        write_coco(ann_path, images, anns, videos=videos,
                   info={"description": "syrip-gen synthetic infant clips", "run_key": key, "config": cfg.keyed(),
                         "fits": os.path.relpath(path.resolve(), out.resolve())})
        gated = None
        if cfg.gate:
            from syrip_gen.clip_gates import gate_clips

            gated = gate_clips(ann_path, body=state.body)
        dropped: dict[str, int] = {}
        table = []
        for m in manifests:
            g = (gated or {}).get("clips", {}).get(m["clip_id"]) if m["images"] else None
            why = m.get("dropped") or (None if g is None or g["kept"] else
                                       "gates: " + ", ".join(f"{k} x{n}" for k, n in sorted(g["reasons"].items())))
            if why:
                short = why.split(":")[0].split(" at frame")[0]
                dropped[short] = dropped.get(short, 0) + 1
            table.append({k: m.get(k) for k in ("clip_id", "name", "fit_id", "frames", "motion", "camera_orbit_deg",
                                                "stats", "preview", "video")} | {"kept": why is None, "dropped": why,
                                                                        "gates": g})
        atomic_write_json(out / "clips.json", {"run_key": key, "clips": table})
    seconds = time.perf_counter() - t0
    kept = sum(t["kept"] for t in table)
    return ClipSummary(out_dir=str(out), annotation_path=str(ann_path),
                       filtered_path=gated["coco_out"] if gated else None, run_key=key, clips=cfg.clips,
                       clips_kept=kept, frames=len(images), frames_per_s=round(rendered / render_s, 3) if render_s else 0.0,
                       seconds=round(seconds, 3), dropped=dropped,
                       previews=[str(out / t["preview"]) for t in table if t.get("preview")])
