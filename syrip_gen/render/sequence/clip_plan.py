"""A clip's plan: its scene (one ``VariantSpec``: 1-3 infants), each infant's movement over the
frames, and the camera path; vertices made again per chunk of frames when drawn.

Why: the planning is the part of a clip that decides how it moves (``render.motion``) and where
it sits; drawing (``clip_render``) then only renders and labels. The pelvis is held where the
fit put it: only the slow turn towards another fit lifts the body (smoothly), so limbs move
without bouncing the trunk; a movement whose limbs press more than ``max_sink_m`` into the
support is scaled down; one that moves less than ``min_movement_m`` is drawn again, then the clip
is dropped ("too still").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# ``ClipConfig`` (render.clips) appears in annotations only: no import back up

CHUNK = 16  # frames per body forward when planning and rendering (memory: a chunk, not a clip)


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
    from syrip_gen.render.sequence.motion import animate, draw_motion, plan_motion

    rng = np.random.default_rng([cfg.render.seed, fit.index, variant, 7] + ([k] if k else []))  # the clip's own draws
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


def plan_clip(fit, variant: int, body, cfg: ClipConfig, checker, pool,
              n_backgrounds: int = 0) -> tuple[ClipPlan | None, str | None]:
    """Draw a clip of ``fit``: its scene (a variant spec, as a still's: further infants with
    ``sampling.multi_share``, user backgrounds when ``n_backgrounds``, shadows with
    ``render.shadows``), each infant's movement, the camera path. None and why when no view
    frames it or it would move less than ``cfg.min_movement_m`` (the clip gate for still clips)."""
    from syrip_gen.geometry import Camera
    from syrip_gen.render.sequence.motion import orbit_camera, smoothstep
    from syrip_gen.geometry import frame_camera
    from syrip_gen.render.world.variants import sample_variants

    r = cfg.render
    s = sample_variants([(fit, variant)], body, r.sampling, r.seed, r.width, r.height, checker=checker,
                        n_backgrounds=n_backgrounds, shadow_prob=r.shadows, pool=pool)
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
    rng = np.random.default_rng([r.seed, fit.index, variant, 8])
    fy = spec.camera.K[1, 1]
    fov = math.degrees(2 * math.atan(r.height / 2 / fy))
    fill = float(rng.uniform(*r.sampling.fill))
    cam, reason = frame_camera(sub.reshape(-1, 3), spec.camera.R, r.width, r.height, fov, fill,
                               r.sampling.margin_px)
    if cam is None:
        return None, reason
    orbit = float(rng.uniform(*cfg.camera_orbit_deg)) if rng.uniform() < cfg.moving_camera_prob else 0.0
    pivot = (sub[0].min(0) + sub[0].max(0)) / 2
    cameras = []
    for t in times:
        a = math.radians(orbit) * float(smoothstep(np.array(t / max(times[-1], 1e-9))))
        R, tt = orbit_camera(cam.R, cam.t, pivot, a)
        cameras.append(Camera(K=cam.K.copy(), R=R, t=tt, width=r.width, height=r.height))
    m = r.sampling.margin_px
    inside = all(((uv := c.project(v)[0])[:, 0].min() >= m - 0.5) and uv[:, 1].min() >= m - 0.5
                 and uv[:, 0].max() <= r.width - 0.5 - m and uv[:, 1].max() <= r.height - 0.5 - m
                 for c, v in zip(cameras, sub))
    if not inside:  # the drift would carry the infant out of the frame: stand still instead
        orbit, cameras = 0.0, [Camera(K=cam.K.copy(), R=cam.R.copy(), t=cam.t.copy(), width=r.width,
                                      height=r.height) for _ in times]
    flat = sub.reshape(-1, 3)
    return ClipPlan(spec=spec, poses=np.stack([mv[0] for mv in moved], 1), shifts=np.stack([mv[1] for mv in moved], 1),
                    keypoints=np.stack([mv[2] for mv in moved], 1), box=np.stack([flat.min(0), flat.max(0)]),
                    cameras=cameras, motions=[mv[4] for mv in moved],
                    movement_m=[round(mv[5], 4) for mv in moved], orbit_deg=round(orbit, 3)), None
