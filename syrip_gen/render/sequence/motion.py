"""Plausible infant movement from one fitted pose: kicking, arm waving, head turning and a slow
turn towards another fit of the same posture, as smooth joint-rotation curves in time.

Why: general-movement assessment and keypoint video tools work on moving infants, and a
pose model that tracks them needs clips whose labels move the way infants do, without
popping. Every joint curve is a rotation composed onto the fitted one (never added as
axis-angle numbers): ``R_j(t) = exp(d_j(t)) · slerp(R_fit_j, R_other_j, w(t))`` with ``d_j``
a sum of sines under a smooth ramp (zero and flat at t = 0, so frame 0 is the fitted pose)
and ``w`` a smoothstep. Rotations go through :class:`scipy.spatial.transform.Rotation`.

Pure NumPy/SciPy; the pose prior and joint limits come in as an ``accept(base, poses)``
callable (``gates.pose.PoseChecker.accept``): a movement whose frames it refuses is
scaled down (halved per try) until every frame passes, else the clip stands still.

Joint axes follow ``fit.limits`` (left side; the right side mirrors y and z): hip flexion -x,
knee flexion +x, shoulder adduction -z, elbow flexion -y, neck/head turning about y.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from syrip_gen.body.pose_space import JOINT, NUM_JOINTS

# (joint, component, sign of the right side relative to the left) per movement part
_KICK = (("left_hip", 0, -1.0, 0.0), ("left_knee", 0, 1.0, 0.0), ("right_hip", 0, -1.0, math.pi),
         ("right_knee", 0, 1.0, math.pi))  # joint, axis-angle component, sign, phase offset
_ARMS = (("left_shoulder", 2, -1.0, 0.0), ("left_elbow", 1, -1.0, 0.5), ("right_shoulder", 2, 1.0, 0.7),
         ("right_elbow", 1, 1.0, 1.2))
_HEAD = (("neck", 1, 1.0, 0.0), ("head", 1, 1.0, 0.0))


@dataclass(frozen=True)
class MotionConfig:
    """How clip movements are drawn (ranges uniform ``(low, high)``; degrees and Hz)."""

    kick_deg: tuple[float, float] = field(default=(10.0, 30.0), metadata={"min": 0.0, "max": 90.0})
    kick_hz: tuple[float, float] = field(default=(1.0, 3.0), metadata={"min": 0.0, "max": 5.0})
    arm_deg: tuple[float, float] = field(default=(10.0, 35.0), metadata={"min": 0.0, "max": 90.0})
    arm_hz: tuple[float, float] = field(default=(1.0, 3.0), metadata={"min": 0.0, "max": 5.0})
    head_deg: tuple[float, float] = field(default=(10.0, 30.0), metadata={"min": 0.0, "max": 90.0})
    head_hz: tuple[float, float] = field(default=(0.1, 0.4), metadata={"min": 0.0, "max": 5.0})
    part_prob: float = field(default=0.7, metadata={"min": 0.0, "max": 1.0})  # chance of each part moving
    blend_prob: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})  # turn towards another fit
    blend_weight: tuple[float, float] = field(default=(0.3, 0.7), metadata={"min": 0.0, "max": 1.0})
    ramp_s: float = field(default=0.5, metadata={"min": 0.0})  # movements fade in over this time
    max_tries: int = field(default=4, metadata={"min": 1})  # halvings before standing still
    # a wave's peak joint speed (amplitude x 2 pi hz) is held below this: fast kicks are small ones
    max_deg_s: float = field(default=240.0, metadata={"min": 1.0})

    def __post_init__(self):
        from syrip_gen.config import check_ranges
        from syrip_gen.errors import UserError

        check_ranges(self, "motion config")
        for f in ("kick_deg", "kick_hz", "arm_deg", "arm_hz", "head_deg", "head_hz", "blend_weight"):
            lo, hi = getattr(self, f)
            if lo > hi:
                raise UserError(f"motion config: {f} must be (low, high) with low <= high, got ({lo}, {hi})")


@dataclass(frozen=True)
class Wave:
    """One joint component's oscillation: ``amplitude * sin(2 pi hz t + phase)`` (radians)."""

    joint: int
    component: int
    amplitude: float
    hz: float
    phase: float
    part: str = ""


@dataclass(frozen=True)
class Motion:
    """A drawn movement: its waves, the blend target's weight (0: none) and the parts moving."""

    waves: tuple[Wave, ...]
    blend_weight: float = 0.0
    parts: tuple[str, ...] = ()

    def scaled(self, s: float | dict[str, float]) -> "Motion":
        """Amplitudes (and the blend weight) times ``s``, or times ``s[part]`` per part ("blend"
        for the blend; parts not named keep theirs)."""
        per = s if isinstance(s, dict) else {p: s for p in self.parts}
        return Motion(tuple(Wave(w.joint, w.component, w.amplitude * per.get(w.part, 1.0), w.hz, w.phase, w.part)
                            for w in self.waves), self.blend_weight * per.get("blend", 1.0), self.parts)

    def only(self, part: str) -> "Motion":
        return Motion(tuple(w for w in self.waves if w.part == part),
                      self.blend_weight if part == "blend" else 0.0, (part,))

    def summary(self) -> dict:
        """Per moving part: its rate (Hz) and largest joint amplitude (degrees), as kept."""
        out: dict = {}
        for w in self.waves:
            if w.part and abs(w.amplitude) > 0:
                p = out.setdefault(w.part, {"hz": round(w.hz, 3), "amplitude_deg": 0.0})
                p["amplitude_deg"] = round(max(p["amplitude_deg"], math.degrees(abs(w.amplitude))), 2)
        if self.blend_weight:
            out["blend"] = {"weight": round(self.blend_weight, 4)}
        return out

    def to_json(self) -> dict:
        return {"parts": list(self.parts), "blend_weight": round(self.blend_weight, 4),
                "waves": [{"joint": int(w.joint), "component": int(w.component), "part": w.part,
                           "amplitude_deg": round(math.degrees(w.amplitude), 3),
                           "hz": round(w.hz, 4), "phase": round(w.phase, 4)} for w in self.waves]}


def draw_motion(rng: np.random.Generator, cfg: MotionConfig, has_target: bool, max_hz: float = math.inf) -> Motion:
    """Random movement parts (at least one) with their amplitudes, rates (at most ``max_hz``: a
    clip's frame rate / 4, four frames a cycle) and phases; a wave's amplitude is capped so that
    its peak joint speed stays under ``max_deg_s`` (infants kick fast or wide, not both)."""
    parts = [(name, table, cfg_deg, cfg_hz) for name, table, cfg_deg, cfg_hz in
             (("kick", _KICK, cfg.kick_deg, cfg.kick_hz), ("arms", _ARMS, cfg.arm_deg, cfg.arm_hz),
              ("head", _HEAD, cfg.head_deg, cfg.head_hz))]
    on = rng.uniform(size=len(parts)) < cfg.part_prob
    if not on.any():
        on[int(rng.integers(len(parts)))] = True
    waves, names = [], []
    for (name, table, deg, hz), use in zip(parts, on):
        amp, rate, phase = math.radians(rng.uniform(*deg)), rng.uniform(*hz), rng.uniform(0, 2 * math.pi)
        if not use:
            continue
        rate = min(rate, max_hz)
        amp = min(amp, math.radians(cfg.max_deg_s) / (2 * math.pi * max(rate, 1e-9)))
        names.append(name)
        share = 1.0 / (2 if name == "head" else 1)  # neck + head share the turn
        for joint, comp, sign, offset in table:
            waves.append(Wave(JOINT[joint], comp, sign * amp * share, float(rate), float(phase + offset), name))
    w = float(rng.uniform(*cfg.blend_weight)) if has_target and rng.uniform() < cfg.blend_prob else 0.0
    return Motion(tuple(waves), w, tuple(names + (["blend"] if w else [])))


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 -> 1 with zero slope at both ends (C1): ``3x^2 - 2x^3`` on [0, 1], clamped."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def joint_offsets(motion: Motion, times: np.ndarray, ramp_s: float) -> np.ndarray:
    """Axis-angle offsets ``(F, 24, 3)`` of the waves at ``times (F,)`` seconds, faded in over
    ``ramp_s`` (zero at t = 0)."""
    out = np.zeros((len(times), NUM_JOINTS, 3))
    env = smoothstep(times / ramp_s) if ramp_s > 0 else np.ones_like(times)
    for w in motion.waves:
        out[:, w.joint, w.component] += w.amplitude * env * np.sin(2 * math.pi * w.hz * times + w.phase)
    return out


def soft_clamp(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, margin, margin_lo=None) -> np.ndarray:
    """``x`` kept inside ``[lo, hi]`` (broadcast; infinite bounds are open) smoothly: unchanged up
    to ``margin`` below ``hi`` (``margin_lo`` above ``lo``; default ``margin``), then bending onto
    the bound along a tanh (C1, never past it), so a joint swinging towards its limit slows down
    instead of stopping dead."""
    x = np.asarray(x, np.float64)
    m_hi = np.maximum(np.asarray(margin, np.float64), 1e-9)
    m_lo = m_hi if margin_lo is None else np.maximum(np.asarray(margin_lo, np.float64), 1e-9)
    with np.errstate(invalid="ignore"):
        top, bot = hi - m_hi, lo + m_lo
        out = np.where(x > top, top + m_hi * np.tanh((x - top) / m_hi), x)
        out = np.where(x < bot, bot - m_lo * np.tanh((bot - x) / m_lo), out)
    return np.where(np.isfinite(out), out, x)


def animate(base: np.ndarray, times: np.ndarray, motion: Motion, ramp_s: float,
            target: np.ndarray | None = None,
            limits: tuple[np.ndarray, np.ndarray] | None = None, margin: float = 0.15) -> np.ndarray:
    """Poses ``(F, 24, 3)`` from the fitted ``base (24, 3)`` (joint 0, the world orientation,
    kept): each body joint turned towards ``target (24, 3)`` by ``w(t) = blend_weight x
    smoothstep(t / T)`` along the shortest rotation, then by the waves' offsets (composed in
    the parent's frame, as ``fit.limits`` reads them). ``limits``: lower and upper bounds
    ``(24, 3)`` (``fit.limits.limit_table``); each component is held inside them by
    :func:`soft_clamp`, the box widened to take in the fitted value where the fit lies outside
    (a movement never makes a joint worse than the fit), its soft zone never reaching past the
    fitted value (frame 0 stays the fit)."""
    from scipy.spatial.transform import Rotation

    F = len(times)
    J = NUM_JOINTS - 1
    rb = Rotation.from_rotvec(np.repeat(base[None, 1:], F, 0).reshape(-1, 3))
    if target is not None and motion.blend_weight > 0:
        span = max(float(times[-1] - times[0]), 1e-9)
        w = motion.blend_weight * smoothstep((times - times[0]) / span)
        rel = (Rotation.from_rotvec(base[1:]).inv() * Rotation.from_rotvec(target[1:])).as_rotvec()  # (J, 3)
        rb = rb * Rotation.from_rotvec((w[:, None, None] * rel[None]).reshape(-1, 3))
    off = joint_offsets(motion, times, ramp_s)[:, 1:].reshape(-1, 3)
    poses = np.empty((F, NUM_JOINTS, 3))
    poses[:, 0] = base[0]
    poses[:, 1:] = (Rotation.from_rotvec(off) * rb).as_rotvec().reshape(F, J, 3)
    if limits is not None:
        lo, hi = np.minimum(limits[0], base)[1:], np.maximum(limits[1], base)[1:]
        m_hi = np.clip(hi - base[1:], 0.0, margin)  # the fitted value stays outside the soft zone
        m_lo = np.clip(base[1:] - lo, 0.0, margin)
        poses[:, 1:] = soft_clamp(poses[:, 1:], lo[None], hi[None], m_hi[None], m_lo[None])
    return poses


@dataclass
class Planned:
    poses: np.ndarray  # (F, 24, 3)
    motion: Motion  # the movement kept (drawn amplitudes x scales)
    scales: dict[str, float]  # share of each part's drawn amplitude kept (0: that part still)


def plan_motion(base: np.ndarray, times: np.ndarray, motion: Motion, cfg: MotionConfig,
                accept: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
                target: np.ndarray | None = None, limits: tuple[np.ndarray, np.ndarray] | None = None,
                accept_motion: Callable[[Motion, np.ndarray], bool] | None = None) -> Planned:
    """The drawn movement, each part's amplitude halved (up to ``max_tries`` times, then that part
    stands still) until ``accept(base (F, 24, 3), poses (F, 24, 3)) -> (F,) bool`` passes every
    frame with the part alone, then all parts halved together until the whole passes (the pose
    prior and the joint limits no worse than the fit's at every frame). ``accept_motion(motion,
    poses) -> bool``: a further test of the whole movement (a clip's: limbs stay out of the support)."""
    stack = np.repeat(base[None], len(times), 0)

    def ok(m: Motion) -> bool:
        poses = animate(base, times, m, cfg.ramp_s, target, limits)
        return ((accept is None or bool(np.all(accept(stack, poses))))
                and (accept_motion is None or bool(accept_motion(m, poses))))

    scales: dict[str, float] = {}
    for part in motion.parts:
        s = 1.0
        for _ in range(cfg.max_tries):
            if ok(motion.only(part).scaled(s)):
                break
            s /= 2
        else:
            s = 0.0
        scales[part] = s
    for _ in range(cfg.max_tries):
        if ok(motion.scaled(scales)):
            kept = motion.scaled(scales)
            return Planned(animate(base, times, kept, cfg.ramp_s, target, limits), kept, scales)
        scales = {p: s / 2 for p, s in scales.items()}
    return Planned(stack.copy(), motion.scaled(0.0), {p: 0.0 for p in scales})


def orbit_camera(R: np.ndarray, t: np.ndarray, pivot: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera (world -> camera ``R, t``) turned by ``angle`` radians about the world's vertical
    axis through ``pivot (3,)``: a camera drifting around the infant at the same height."""
    c, s = math.cos(angle), math.sin(angle)
    Ry = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    centre = -R.T @ t
    new_centre = pivot + Ry @ (centre - pivot)
    R2 = R @ Ry.T
    return R2, -R2 @ new_centre


def acceleration(track: np.ndarray, fps: float) -> np.ndarray:
    """Second differences of positions ``track (F, ..., D)`` per frame, as ``(F-2, ...)`` norms
    in units per second squared: how hard a keypoint changes speed (popping shows as a spike)."""
    a = track[2:] - 2 * track[1:-1] + track[:-2]
    return np.linalg.norm(a, axis=-1) * fps * fps
