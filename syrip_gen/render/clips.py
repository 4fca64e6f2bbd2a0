"""Fits -> short clips of a moving infant: frames, per-frame COCO with track ids, an MP4 preview.

Why: the people this tool serves film infants; trackers and temporal smoothers need labelled
video. A clip reuses the single-image path: :func:`sample_variants` draws one
:class:`VariantSpec` (1-3 infants with ``sampling.multi_share``; view, lights, support,
background, sensor, appearance), :mod:`motion` moves each infant's pose from its fit's through
infant movement (kicks and arm waves at 1-3 Hz, head turns, a slow turn towards another fit),
and each frame is that spec with the frame's poses, contact records and camera, rendered by
:class:`ImageMaker` and labelled by :func:`annotate_scene`. Within a clip lights, background,
support, texture and sensor chain stay as drawn. The pelvis is held where the fit put it: only
the slow turn lifts the body (smoothly), so limbs move without bouncing the trunk, and a movement
whose limbs would press more than ``max_sink_m`` into the support is scaled down. A clip whose
infants move less than ``min_movement_m`` is drawn again, then dropped. The camera is framed on
all frames together and either stands or drifts slowly around the infants (``camera_orbit_deg``).

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
CHUNK = 16  # frames per body forward when planning and rendering (memory: a chunk, not a clip)


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
    # the clip gate for still clips: some keypoint of every infant gets this far (m) from its frame-0
    # place, else the movement is drawn again (3 tries) and then the clip is dropped ("too still")
    min_movement_m: float = field(default=0.03, metadata={"min": 0.0})
    # moving limbs may press this far (m) into the (soft) support; deeper movements are scaled down
    max_sink_m: float = field(default=0.015, metadata={"min": 0.0})
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
    """One clip before rendering: its scene (frame 0's spec, 1-3 infants) and per frame and infant
    the pose, the world shift of the posed body (its placement plus the clip's slow lift), the
    keypoints; the cameras. Vertices are made again in chunks when rendering (:meth:`vertices`):
    a clip's memory does not grow with its vertices x frames."""

    spec: object
    poses: np.ndarray  # (F, N, 24, 3)
    shifts: np.ndarray  # (F, N, 3) world translation added to body(pose, shape)
    keypoints: np.ndarray  # (F, N, 17, 3) world
    box: np.ndarray  # (2, 3) low and high corner of every frame's vertices
    cameras: list
    motions: list  # per infant: {**Motion.to_json(), "scales", "summary"}
    movement_m: list  # per infant: the farthest a keypoint gets from its frame-0 place
    orbit_deg: float

    @property
    def motion(self) -> dict:
        return self.motions[0]

    def vertices(self, body, chunk: int = CHUNK):
        """``(first frame, (c, N, V, 3) float32 world vertices)`` chunk by chunk."""
        shapes = [np.asarray(b.shape, np.float32) for b in self.spec.bodies]
        for start in range(0, len(self.poses), chunk):
            stop = min(start + chunk, len(self.poses))
            per = [_forward(body, self.poses[start:stop, k], shapes[k])[0]
                   + self.shifts[start:stop, k, None].astype(np.float32) for k in range(len(shapes))]
            yield start, np.stack(per, 1)



def _forward(body, poses: np.ndarray, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(F, V, 3)`` and keypoints ``(F, 17, 3)`` (float32) of ``poses (F, 24, 3)`` of one infant."""
    import torch

    with torch.no_grad():
        out = body(torch.tensor(poses, dtype=torch.float32),
                   torch.tensor(np.repeat(shape[None], len(poses), 0)), with_vertices=True)
    return out.vertices.numpy(), out.keypoints.numpy()


def _lowest(body, poses: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Per frame, the height of the body's lowest vertex ``(F,)``."""
    return np.concatenate([_forward(body, poses[i:i + CHUNK], shape)[0][:, :, 1].min(1)
                           for i in range(0, len(poses), CHUNK)])


def _move_infant(b, fit, k: int, body, cfg: ClipConfig, checker, pool, variant: int, times: np.ndarray):
    """One infant's movement: drawn (again, up to 3 times, while it moves less than
    ``cfg.min_movement_m``), held inside the joint limits and the prior, and kept out of the
    support. The pelvis is held: the body is lifted only with the slow turn towards another fit
    (the blend), never with the limbs, so a waving arm or a kick does not bounce the trunk.
    Returns ``(poses (F, 24, 3), shift (F, 3), keypoints (F, 17, 3), sub (F, v, 3), motion, movement)``."""
    import torch

    from syrip_gen.body.pose_space import flip_pose
    from syrip_gen.render.motion import animate, draw_motion, plan_motion

    rng = np.random.default_rng([cfg.seed, fit.index, variant, 7] + ([k] if k else []))  # the clip's own draws
    others = [g for g in (pool or {}).get(fit.posture, []) if g.index != fit.index]
    base, shape = np.asarray(b.pose, np.float64), np.asarray(b.shape, np.float32)
    limits, F = limit_arrays(), len(times)
    low0 = float(_lowest(body, base[None], shape)[0])
    best = None
    for _ in range(3):
        target = None
        if others:
            target = others[int(rng.integers(len(others)))].pose.copy()
            if b.mirror:
                target = flip_pose(torch.tensor(target[None], dtype=torch.float64))[0].numpy()
        slow: dict = {}

        def slow_low(m, target=target, slow=slow):  # lowest vertex of the slow part (the blend) alone
            w = round(float(m.blend_weight), 9)
            if w not in slow:
                slow[w] = (_lowest(body, animate(base, times, m.only("blend"), cfg.motion.ramp_s, target, limits),
                                   shape) if w else np.full(F, low0))
            return slow[w]

        def grounded(m, poses, slow_low=slow_low):  # limbs sink at most max_sink_m into the support
            return float((slow_low(m) - _lowest(body, poses, shape)).max()) <= cfg.max_sink_m

        motion = draw_motion(rng, cfg.motion, target is not None, max_hz=cfg.fps / 4)
        planned = plan_motion(base, times, motion, cfg.motion, checker.accept if checker else None, target,
                              limits, grounded)
        lift = slow_low(planned.motion) - low0
        shift = np.repeat(np.asarray(b.offset, np.float64)[None], F, 0)
        shift[:, 1] -= lift
        kps, sub = [], []
        for i in range(0, F, CHUNK):
            v, kp = _forward(body, planned.poses[i:i + CHUNK], shape)
            kps.append(kp + shift[i:i + CHUNK, None])
            sub.append((v[:, ::7] + shift[i:i + CHUNK, None]).astype(np.float32))
        kps = np.concatenate(kps).astype(np.float64)
        movement = float(np.linalg.norm(kps - kps[:1], axis=-1).max())
        record = {**planned.motion.to_json(), "scales": planned.scales, "summary": planned.motion.summary()}
        if best is None or movement > best[-1]:
            best = (planned.poses, shift, kps, np.concatenate(sub), record, movement)
        if movement >= cfg.min_movement_m:
            break
    return best


def plan_clip(fit, variant: int, body, cfg: ClipConfig, checker, pool) -> tuple[ClipPlan | None, str | None]:
    """Draw a clip of ``fit``: its scene (a variant spec; further infants with ``sampling.multi_share``),
    each infant's movement, the camera path. None and why when no view frames it or it would
    move less than ``cfg.min_movement_m`` (the clip gate for still clips)."""
    from syrip_gen.geometry import Camera
    from syrip_gen.render.motion import orbit_camera, smoothstep
    from syrip_gen.render.variants import frame_camera, sample_variants

    s = sample_variants([(fit, variant)], body, cfg.sampling, cfg.seed, cfg.width, cfg.height, checker=checker,
                        pool=pool)
    if not s.specs:
        return None, s.rejected_jobs[0][2] if s.rejected_jobs else "no view"
    spec = s.specs[0]
    by_index = {g.index: g for gs in (pool or {}).values() for g in gs}
    times = np.arange(cfg.frames) / cfg.fps
    moved = [_move_infant(b, by_index.get(b.fit_index, fit) if k else fit, k, body, cfg, checker, pool, variant,
                          times) for k, b in enumerate(spec.bodies)]
    still = [round(m[-1], 4) for m in moved if m[-1] < cfg.min_movement_m]
    if still:
        return None, f"too still (moves {min(still) * 100:.1f} cm < {cfg.min_movement_m * 100:.1f} cm)"
    sub = np.concatenate([m[3] for m in moved], 1)  # (F, N * v, 3)
    rng = np.random.default_rng([cfg.seed, fit.index, variant, 8])
    fy = spec.camera.K[1, 1]
    fov = math.degrees(2 * math.atan(cfg.height / 2 / fy))
    fill = float(rng.uniform(*cfg.sampling.fill))
    cam, reason = frame_camera(sub.reshape(-1, 3), spec.camera.R, cfg.width, cfg.height, fov, fill,
                               cfg.sampling.margin_px)
    if cam is None:
        return None, reason
    orbit = float(rng.uniform(*cfg.camera_orbit_deg)) if rng.uniform() < cfg.moving_camera_prob else 0.0
    pivot = (sub[0].min(0) + sub[0].max(0)) / 2
    cameras = []
    for t in times:
        a = math.radians(orbit) * float(smoothstep(np.array(t / max(times[-1], 1e-9))))
        R, tt = orbit_camera(cam.R, cam.t, pivot, a)
        cameras.append(Camera(K=cam.K.copy(), R=R, t=tt, width=cfg.width, height=cfg.height))
    m = cfg.sampling.margin_px
    inside = all(((uv := c.project(v)[0])[:, 0].min() >= m - 0.5) and uv[:, 1].min() >= m - 0.5
                 and uv[:, 0].max() <= cfg.width - 0.5 - m and uv[:, 1].max() <= cfg.height - 0.5 - m
                 for c, v in zip(cameras, sub))
    if not inside:  # the drift would carry the infant out of the frame: stand still instead
        orbit, cameras = 0.0, [Camera(K=cam.K.copy(), R=cam.R.copy(), t=cam.t.copy(), width=cfg.width,
                                      height=cfg.height) for _ in times]
    flat = sub.reshape(-1, 3)
    return ClipPlan(spec=spec, poses=np.stack([mv[0] for mv in moved], 1), shifts=np.stack([mv[1] for mv in moved], 1),
                    keypoints=np.stack([mv[2] for mv in moved], 1), box=np.stack([flat.min(0), flat.max(0)]),
                    cameras=cameras, motions=[mv[4] for mv in moved],
                    movement_m=[round(mv[5], 4) for mv in moved], orbit_deg=round(orbit, 3)), None


def clip_stats(images: list[dict], anns: list[dict], fps: float) -> dict:
    """Per-clip numbers: frames, visible share, keypoint speed and acceleration (px/s, px/s²;
    median over keypoints and infants of the per-frame values, max over frames) from the annotations."""
    from syrip_gen.render.motion import acceleration

    tracks = sorted({a["track_id"] for a in anns})
    kp = np.array([[a["keypoints"] for a in anns if a["track_id"] == t] for t in tracks], np.float64)
    kp = kp.reshape(len(tracks), -1, 17, 3)  # (N, F, 17, 3)
    xy = kp[..., :2]
    speed = np.linalg.norm(np.diff(xy, axis=1), axis=-1) * fps
    acc = np.stack([acceleration(x, fps) for x in xy]) if xy.shape[1] >= 3 else np.zeros((1, 0, 17))
    diag = float(np.median([math.hypot(a["bbox"][2], a["bbox"][3]) for a in anns]))
    return {"frames": len(images), "visible_share": round(float((kp[..., 2] == 2).mean()), 4),
            "box_diagonal_px": round(diag, 2),
            "speed_px_s": {"median": round(float(np.median(speed)), 3), "max": round(float(speed.max()), 3)},
            "acceleration_px_s2": {"median": round(float(np.median(acc)), 3), "max": round(float(acc.max()), 3)}}


def _frame_contact(b, verts: np.ndarray, mask, support_y: float, tol: float) -> dict | None:
    """Infant ``b``'s contact with the support at one frame (``render.contact.contact_record``
    against the support plane: a limb pressed into it counts as touching), plus ``sink_m``."""
    from syrip_gen.render.contact import contact_record

    if mask is None:
        return None
    v = np.asarray(verts, np.float64).copy()
    sink = max(0.0, support_y - float(v[:, 1].min()))
    v[:, 1] = np.maximum(v[:, 1], support_y)
    rec = contact_record(v, mask, b.source_posture, tol, (b.contact or {}).get("tilt_deg", 0.0))
    return {**rec, "sink_m": round(sink, 4)}


def render_clip(clip_id: int, plan: ClipPlan, fits: dict, cfg: ClipConfig, state, maker, out: Path, key: str) -> dict:
    """Render, label and write one clip, frame by frame (frames go to disk, then stream into the
    MP4s); returns its manifest (also written as its done marker)."""
    import torch

    from syrip_gen.annotate import annotate_scene
    from syrip_gen.coco import atomic_write_bytes, atomic_write_json
    from syrip_gen.posture import posture_labels
    from syrip_gen.render.contact import contact_mask
    from syrip_gen.render.variants import _coarse_parts

    name = clip_name(clip_id)
    maker.begin_clip(plan.box)
    F, N = plan.keypoints.shape[:2]
    flat = torch.from_numpy(plan.keypoints.reshape(F * N, 17, 3).astype(np.float32))
    postures = np.asarray(posture_labels(flat, torch.tensor([0.0, 1.0, 0.0])), object).reshape(F, N)
    parts = _coarse_parts(state.body)
    masks = [None if parts is None else contact_mask(parts, b.source_posture) for b in plan.spec.bodies]
    tol = cfg.sampling.contact_tolerance_m
    images, anns, reason = [], [], None
    for start, chunk in plan.vertices(state.body):
        for c, verts in enumerate(chunk):
            f = start + c
            spec = plan.spec
            for k, b in enumerate(plan.spec.bodies):
                spec = spec.replace_body(k, pose=tuple(tuple(float(x) for x in p) for p in plan.poses[f, k]),
                                         contact=_frame_contact(b, verts[k], masks[k], plan.spec.support_y, tol))
            spec = dataclasses.replace(spec, camera=plan.cameras[f])
            r = maker.render(spec, verts)
            file_name = f"{name}/{f:06d}.jpg"
            scene_prov = {**r.provenance, "lights": [dict(x) for x in spec.lights], "ambient": spec.ambient,
                          "shadows": spec.shadows, "seed": list(spec.seed), "pose_check": state.checker.kind}
            if f == 0:
                scene_prov["spec"] = spec.to_json()  # the clip's scene; later frames differ in poses and camera
            provs = [{"fit_id": b.fit_id, "source_image_id": getattr(fits.get(b.fit_index), "source_image_id", None),
                      "source_file": getattr(fits.get(b.fit_index), "source_file", None), **scene_prov,
                      "texture": r.textures[k] if k < len(r.textures) else r.provenance.get("texture"),
                      "clip": {"name": name, "motion": plan.motions[k], "camera_orbit_deg": plan.orbit_deg}}
                     for k, b in enumerate(spec.bodies)]
            seen = r.labels if r.labels is not None else np.where(r.mask, 0, -1).astype(np.int8)
            res = annotate_scene(frame_id(clip_id, f), file_name, spec, plan.keypoints[f], seen, r.body_depth,
                                 list(postures[f]), provs)
            if res.image is None:
                reason = f"{res.reason} at frame {f}"
                break
            res.image.update({"frame_id": f, "vid_id": clip_id, "clip_id": clip_id, "nframes": F, "fps": cfg.fps,
                              "is_labeled": True})
            atomic_write_bytes(out / "images" / file_name, r.jpeg)
            images.append(res.image)
            anns.extend(res.annotations)
        if reason is not None:
            break
    infants = [{"track_id": k, "fit_id": b.fit_id, "movement_m": plan.movement_m[k],
                "motion": plan.motions[k]["summary"]} for k, b in enumerate(plan.spec.bodies)]
    manifest = {"run_key": key, "clip_id": clip_id, "name": name, "fit_id": plan.spec.fit_id, "frames": F,
                "fps": cfg.fps,
                "motion": plan.motion, "infants": infants, "camera_orbit_deg": plan.orbit_deg, "dropped": reason,
                "images": images if reason is None else [], "annotations": anns if reason is None else []}
    if reason is None:
        manifest["stats"] = clip_stats(images, anns, cfg.fps)
        write_videos(out, manifest, cfg)
    atomic_write_json(out / "annotations" / "clips" / f"{name}.json", manifest)  # last: the done marker
    return manifest


def _frames_from_disk(out: Path, manifest: dict, preview: bool):
    """The clip's written frames, one at a time (decoded from its JPEGs; with ``preview``, with
    every infant's keypoints drawn): what the MP4 writers take, so no clip is held in memory whole."""
    import cv2

    from syrip_gen.video import draw_pose

    per_image: dict = {}
    for ann in manifest["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(ann)
    for img in manifest["images"]:
        frame = cv2.imread(str(out / "images" / img["file_name"]), cv2.IMREAD_COLOR)
        for ann in per_image.get(img["id"], []) if preview else []:
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
                        m = render_clip(clip_id, plan, {f.index: f for f in infos}, cfg, state, maker, out, key)
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
            table.append({k: m.get(k) for k in ("clip_id", "name", "fit_id", "frames", "motion", "infants",
                                                "camera_orbit_deg",
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
