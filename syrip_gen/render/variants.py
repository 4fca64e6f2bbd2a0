"""Seeded sampling of image variants from body fits: world placement, view, age, pose, scene.

One fit of a real photo becomes many images. For each (fit index, variant index) a generator
seeded from (run seed, fit index, variant index, attempt) draws everything the image needs, so
any image can be reproduced alone. The result is a :class:`VariantSpec` (frozen, JSON-ready),
recorded in the annotation's provenance.

Geometry (world: metres, y up, pelvis of the body at the origin before the support is placed):
- ``R_fit`` is the fit's global orientation (body frame of the fit camera). The fit's posture
  (record field, else its ``hypothesis``, else :func:`posture_labels` with the body frame's up)
  gives, through :func:`up_for_posture`, the direction that was 'up' in the photo (for a supine
  baby, its chest normal); ``R_align`` turns that onto +y.
- A variant's global orientation is ``Ry(yaw) · R_align · R_fit``: rotations are composed as
  matrices, never added as axis-angle components. Mirroring is ``flip_pose`` of that world
  pose: the body mirrored through the world's x = 0 plane, with its own (correct) labels.
- The support plane sits at the lowest vertex along +y (mats/beds for lying infants, a floor
  for sitting/standing ones). The camera looks at the body's box centre from an elevation
  drawn per posture (from above for lying infants), rolls in-plane, then is re-centred on the
  body's projection and moved to the drawn fill fraction; a body that still leaves the frame is
  rejected with the reason ``out_of_frame``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from syrip_gen.geometry import Camera, matrix_to_rotvec, rot_y, rot_z, rotation_between, rotvec_to_matrix

LYING = ("supine", "prone", "side")
LYING_SUPPORTS = ("mattress", "blanket", "rug")  # kinds of render.scene.Support
UPRIGHT_SUPPORTS = ("floor", "rug")


@dataclass(frozen=True)
class VariantConfig:
    """How variants are drawn (angles in degrees; ranges are uniform ``(low, high)``)."""

    yaw_deg: tuple[float, float] = (-180.0, 180.0)  # about world up
    lying_elevation_deg: tuple[float, float] = (50.0, 88.0)  # camera above the support plane
    upright_elevation_deg: tuple[float, float] = (-5.0, 35.0)
    roll_deg: tuple[float, float] = (-15.0, 15.0)  # in-plane camera roll
    fov_deg: tuple[float, float] = (40.0, 65.0)  # vertical field of view
    fill: tuple[float, float] = (0.55, 0.85)  # body box / image size (sets the distance)
    mirror_prob: float = 0.5
    pose_sigma: float = 0.05  # rad, Gaussian perturbation of each non-root joint
    max_nll_increase: float = 8.0  # reject perturbations raising the prior NLL more
    age_months: tuple[float, float] = (0.0, 12.0)
    shape_jitter: float = 0.5  # x shape_std for weight / muscle / height; gender uniform
    margin_px: float = 2.0  # body box must stay this far inside the frame
    max_attempts: int = 3  # redraws of a variant whose body leaves the frame
    lights: tuple[int, int] = (1, 4)  # number of directional lights (uniform, inclusive)
    light_intensity: tuple[float, float] = (2.0, 4.0)  # all lights together (pyrender directional units)
    fill_ratio: tuple[float, float] = (0.15, 0.5)  # each further light's intensity / the key's
    light_kelvin: tuple[float, float] = (2700.0, 7500.0)  # colour temperature of each light
    key_elevation_deg: tuple[float, float] = (35.0, 85.0)  # key light above the horizon
    fill_elevation_deg: tuple[float, float] = (10.0, 80.0)
    ambient: tuple[float, float] = (0.2, 0.5)  # grey ambient light


@dataclass(frozen=True)
class VariantSpec:
    """Everything that defines one image. JSON-ready through :meth:`to_json`."""

    fit_id: str
    fit_index: int
    variant_index: int
    seed: list  # [run seed, fit index, variant index, attempt] -> np.random.default_rng(seed)
    body: str
    pose: tuple  # 24x3 axis-angle, common space; joint 0 = world orientation
    shape: tuple  # S body-shape numbers
    age_months: float
    mirror: bool
    source_posture: str  # posture of the fit that set the world's up
    world_rotation: tuple  # 3x3: Ry(yaw) R_align, applied before the mirror
    perturbed: bool  # pose perturbation kept (False: the fitted pose was used)
    camera: Camera
    width: int
    height: int
    support_y: float  # height of the support plane (lowest body point)
    support_kind: str  # a render.scene.Support kind: mattress/blanket/rug (lying), floor/rug
    appearance_seed: int
    support_seed: int
    background: dict  # {"kind": "procedural" | "file", "seed": s} (file: picked from the folder by s)
    lights: tuple  # dicts: {"kind", "direction" [3] (where light travels), "intensity", "kelvin", "color" [3]}
    ambient: float
    shadows: bool  # directional shadows (GL shadow maps; slower)
    sensor: dict  # {"seed": s}: render.sensor.apply_sensor draws its chain from default_rng(s)

    def to_json(self) -> dict:
        d = asdict(self)
        d["camera"] = self.camera.to_dict()
        d["pose"] = [list(p) for p in self.pose]
        d["shape"] = list(self.shape)
        d["world_rotation"] = [list(r) for r in self.world_rotation]
        d["lights"] = [dict(light) for light in self.lights]
        return d


@dataclass
class FitInfo:
    """A fit prepared for sampling: its pose, shape and the rotation taking its 'up' to +y."""

    index: int
    id: str
    pose: np.ndarray  # (24, 3) float64
    shape: np.ndarray  # (S,) float64
    posture: str
    align: np.ndarray  # (3, 3) float64, R_align
    source_image_id: object = None  # of the real photo the fit came from
    source_file: str | None = None


@dataclass
class Sampled:
    """Specs of a batch of jobs, with their world vertices, and the rejections."""

    specs: list[VariantSpec]
    vertices: np.ndarray  # (B, V, 3) float32, world frame (support at specs[i].support_y)
    keypoints: np.ndarray  # (B, 17, 3) float32, world frame
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count (and redraws)
    rejected_jobs: list[tuple[int, int, str]] = field(default_factory=list)


# ---- fits -> FitInfo ----------------------------------------------------------------------
def prepare_fits(records: list[dict], body) -> list[FitInfo]:
    """Turn fit records (``status == "ok"``, already validated) into :class:`FitInfo`: posture
    from the record, else its hypothesis, else labelled from the fitted body with +y up."""
    import torch

    from syrip_gen.posture import posture_labels, up_for_posture

    if not records:
        return []
    pose = torch.tensor(np.array([r["pose"] for r in records]), dtype=torch.float32)
    shape = torch.tensor(np.array([r["shape"] for r in records]), dtype=torch.float32)
    with torch.no_grad():
        kp = body(pose, shape).keypoints  # body frame with the fit's global orientation
    postures = [(r.get("posture") or r.get("hypothesis") or "").lower() or None for r in records]
    missing = [i for i, p in enumerate(postures) if p is None]
    if missing:
        labels = posture_labels(kp[missing], torch.tensor([0.0, 1.0, 0.0]))
        for i, lab in zip(missing, labels):
            postures[i] = lab
    ups = up_for_posture(kp, postures).double().numpy()
    y = np.array([0.0, 1.0, 0.0])
    return [FitInfo(index=int(r["_index"]), id=str(r["id"]), pose=np.asarray(r["pose"], np.float64),
                    shape=np.asarray(r["shape"], np.float64), posture=postures[i],
                    align=rotation_between(ups[i], y)) for i, r in enumerate(records)]


# ---- draws --------------------------------------------------------------------------------
@dataclass
class _Draw:
    """Raw random draws of one attempt (always drawn in the same order)."""

    rng_seed: list
    mirror: bool
    age: float
    shape_noise: np.ndarray  # (3,) standard normal
    gender: float
    pose_noise: np.ndarray  # (23, 3) standard normal
    yaw: float
    elevation_u: float
    roll: float
    fov: float
    fill: float
    ints: np.ndarray  # (6,) appearance, support, background, sensor seeds, (unused), support kind
    light: np.ndarray  # (4, 4) uniforms per light: azimuth, elevation, colour temperature, intensity
    scene: np.ndarray  # (3,) uniforms: number of lights, ambient, shadows


def _draw(rng: np.random.Generator, cfg: VariantConfig, seed: list) -> _Draw:
    u = rng.uniform
    return _Draw(
        rng_seed=seed, mirror=bool(u() < cfg.mirror_prob), age=float(u(*cfg.age_months)),
        shape_noise=rng.standard_normal(3), gender=float(u()), pose_noise=rng.standard_normal((23, 3)),
        yaw=float(u(*cfg.yaw_deg)), elevation_u=float(u()), roll=float(u(*cfg.roll_deg)),
        fov=float(u(*cfg.fov_deg)), fill=float(u(*cfg.fill)), ints=rng.integers(0, 2**31 - 1, 6),
        light=rng.uniform(size=(4, 4)), scene=rng.uniform(size=3))


def _lerp(r: tuple[float, float], t: float) -> float:
    return float(r[0] + (r[1] - r[0]) * t)


def _shapes(body, draws: list[_Draw], cfg: VariantConfig) -> np.ndarray:
    """Infant shapes ``(B, S)``: mean shape of the drawn age, gender uniform, weight / muscle /
    height jittered by ``shape_jitter`` standard deviations, all clamped to the body's range."""
    import torch

    months = torch.tensor([d.age for d in draws], dtype=torch.float32)
    shape = body.shape_for_age(months).clone()
    lo, hi, std = body.shape_lower, body.shape_upper, body.shape_std
    names = list(getattr(body, "shape_names", ()))
    if "gender" in names:
        g = names.index("gender")
        shape[:, g] = lo[g] + (hi[g] - lo[g]) * torch.tensor([d.gender for d in draws])
    jittered = [names.index(n) for n in ("weight", "muscle", "height") if n in names]
    noise = torch.tensor(np.array([d.shape_noise for d in draws]), dtype=torch.float32)
    for k, j in enumerate(jittered):
        shape[:, j] += cfg.shape_jitter * std[j] * noise[:, k]
    return body.clamp_shape(shape).double().numpy()


class PoseChecker:
    """Rejects pose perturbations that the pose prior / joint limits dislike.

    Uses ``syrip_gen.fit.prior.default_prior()`` and ``syrip_gen.fit.limits`` when they exist;
    without them only the perturbation size (``pose_sigma``) bounds the change, and
    ``self.kind`` says so (recorded in the render summary).
    """

    def __init__(self, max_nll_increase: float):
        self.max_increase = max_nll_increase
        self.prior = self.limits = None
        try:
            from syrip_gen.fit.prior import default_prior

            self.prior = default_prior()
        except Exception:  # noqa: BLE001 - the fit stage may not provide a prior yet
            self.prior = None
        try:
            from syrip_gen.fit.limits import joint_limit_violation

            self.limits = joint_limit_violation
        except Exception:  # noqa: BLE001
            self.limits = None
        self.kind = "+".join(k for k, v in (("prior", self.prior), ("limits", self.limits)) if v) or "none"

    def accept(self, base: np.ndarray, new: np.ndarray) -> np.ndarray:
        """``(B,)`` bool: keep perturbed pose ``new (B, 24, 3)`` against fitted ``base``."""
        import torch

        ok = np.ones(len(new), dtype=bool)
        b = torch.tensor(base, dtype=torch.float32)
        n = torch.tensor(new, dtype=torch.float32)
        with torch.no_grad():
            if self.prior is not None:
                inc = (self.prior.nll(n) - self.prior.nll(b)).reshape(-1).numpy()
                ok &= inc <= self.max_increase
            if self.limits is not None:
                vb = torch.as_tensor(self.limits(b)).reshape(len(new), -1).sum(-1).numpy()
                vn = torch.as_tensor(self.limits(n)).reshape(len(new), -1).sum(-1).numpy()
                ok &= vn <= vb + 1e-6
        return ok


def _world_poses(fits: list[FitInfo], draws: list[_Draw], cfg: VariantConfig,
                 checker: PoseChecker | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World poses ``(B, 24, 3)``, world rotations ``(B, 3, 3)`` and perturbation flags."""
    from syrip_gen.body.pose_space import flip_pose

    base = np.stack([f.pose for f in fits])
    new = base.copy()
    new[:, 1:] += cfg.pose_sigma * np.stack([d.pose_noise for d in draws])
    kept = checker.accept(base, new) if checker is not None else np.ones(len(fits), bool)
    pose = np.where(kept[:, None, None], new, base)
    world = np.stack([rot_y(d.yaw) @ f.align for f, d in zip(fits, draws)])
    glob = world @ rotvec_to_matrix(base[:, 0])  # R_sample · R_fit, composed as matrices
    pose[:, 0] = matrix_to_rotvec(glob)
    mirror = np.array([d.mirror for d in draws])
    if mirror.any():
        import torch

        flipped = flip_pose(torch.tensor(pose[mirror], dtype=torch.float64)).numpy()
        pose[mirror] = flipped
    return pose, world, kept


def place_camera(verts: np.ndarray, width: int, height: int, elevation: float, roll: float,
                 fov: float, fill: float, margin: float) -> tuple[Camera | None, str | None]:
    """Camera looking at world vertices ``verts (V, 3)`` from ``elevation`` degrees above the
    horizon (azimuth 0: from +z), rolled in-plane, re-centred and distanced so the body's box
    covers ``fill`` of the frame. Returns (camera, None) or (None, reason)."""
    lo, hi = verts.min(0), verts.max(0)
    target = (lo + hi) / 2
    e = math.radians(elevation)
    back = np.array([0.0, math.sin(e), math.cos(e)])  # from target towards the camera
    fwd = -back
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = rot_z(roll) @ np.stack([right, down, fwd])
    fy = (height / 2) / math.tan(math.radians(fov) / 2)
    fx, cx, cy = fy, (width - 1) / 2, (height - 1) / 2  # pixel centres at integers (OpenCV)
    radius = float(np.linalg.norm(hi - lo) / 2)
    dist = radius / math.tan(math.radians(fov) / 2 * fill) + radius
    t = -R @ (target + dist * back)
    for _ in range(3):
        cam = R @ verts.T + t[:, None]  # (3, V)
        if cam[2].min() <= 1e-3:
            t[2] += radius
            continue
        u = fx * cam[0] / cam[2] + cx
        v = fy * cam[1] / cam[2] + cy
        zc = float(np.median(cam[2]))
        # shift sideways so the projected box is centred, then move along the axis to fill
        t[0] -= ((u.min() + u.max()) / 2 - cx) * zc / fx
        t[1] -= ((v.min() + v.max()) / 2 - cy) * zc / fy
        extent = max((u.max() - u.min()) / width, (v.max() - v.min()) / height)
        t[2] += zc * (extent / fill - 1.0)
    cam = R @ verts.T + t[:, None]
    if cam[2].min() <= 1e-3:
        return None, "camera_inside_body"
    u = fx * cam[0] / cam[2] + cx
    v = fy * cam[1] / cam[2] + cy
    lo_u, lo_v = margin - 0.5, margin - 0.5
    if u.min() < lo_u or v.min() < lo_v or u.max() > width - 0.5 - margin or v.max() > height - 0.5 - margin:
        return None, "out_of_frame"
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)
    camera = Camera(K=K, R=R.copy(), t=t.copy(), width=int(width), height=int(height))
    return camera, None


def _lights(d: _Draw, cfg: VariantConfig) -> tuple:
    """1-4 directional lights (``cfg.lights``): a key light from above and weaker fills from
    anywhere above the horizon, each with its own colour temperature (``scene.kelvin_to_rgb``).
    Their intensities add up to a draw from ``light_intensity`` (more lights, not a brighter
    picture). ``direction`` is where the light travels (world frame, y up)."""
    from syrip_gen.render.scene import kelvin_to_rgb

    lo, hi = cfg.lights
    n = lo + min(hi - lo, int(d.scene[0] * (hi - lo + 1)))
    out = []
    weights = [1.0] + [_lerp(cfg.fill_ratio, d.light[k, 3]) for k in range(1, n)]
    key_intensity = _lerp(cfg.light_intensity, d.light[0, 3]) / sum(weights)
    for k in range(n):
        u = d.light[k]
        az = 2 * math.pi * u[0]
        el = math.radians(_lerp(cfg.key_elevation_deg if k == 0 else cfg.fill_elevation_deg, u[1]))
        to_light = np.array([math.cos(el) * math.cos(az), math.sin(el), math.cos(el) * math.sin(az)])
        kelvin = round(_lerp(cfg.light_kelvin, u[2]), 1)
        intensity = key_intensity * weights[k]
        out.append({"kind": "directional", "direction": [round(float(x), 6) for x in -to_light],
                    "intensity": round(float(intensity), 4), "kelvin": kelvin,
                    "color": [round(float(c), 4) for c in kelvin_to_rgb(kelvin)]})
    return tuple(out)


def sample_variants(jobs: list[tuple[FitInfo, int]], body, cfg: VariantConfig, run_seed: int,
                    width: int, height: int, checker: PoseChecker | None = None,
                    n_backgrounds: int = 0, shadow_prob: float = 0.0) -> Sampled:
    """Draw the specs of ``jobs`` ((fit, variant index) pairs) with one batched body forward
    per attempt; variants whose body leaves the frame are redrawn up to ``max_attempts``.
    ``n_backgrounds`` > 0: backgrounds come from the user's folder (picked by the background
    seed); ``shadow_prob``: chance of shadows per image."""
    import torch

    specs: dict[int, VariantSpec] = {}
    verts_out: dict[int, np.ndarray] = {}
    kps_out: dict[int, np.ndarray] = {}
    rejected: dict[str, int] = {}
    last_reason: dict[int, str] = {}
    pending = list(range(len(jobs)))
    for attempt in range(cfg.max_attempts):
        if not pending:
            break
        fits = [jobs[i][0] for i in pending]
        draws = []
        for i in pending:
            seed = [int(run_seed), jobs[i][0].index, int(jobs[i][1]), attempt]
            draws.append(_draw(np.random.default_rng(seed), cfg, seed))
        pose, world, kept = _world_poses(fits, draws, cfg, checker)
        shape = _shapes(body, draws, cfg)
        with torch.no_grad():
            out = body(torch.tensor(pose, dtype=torch.float32), torch.tensor(shape, dtype=torch.float32),
                       with_vertices=True)
        verts = out.vertices.numpy()
        kps = out.keypoints.numpy()
        still = []
        for k, i in enumerate(pending):
            f, d = fits[k], draws[k]
            lying = f.posture in LYING
            el_range = cfg.lying_elevation_deg if lying else cfg.upright_elevation_deg
            camera, reason = place_camera(verts[k].astype(np.float64), width, height,
                                          _lerp(el_range, d.elevation_u), d.roll, d.fov, d.fill,
                                          cfg.margin_px)
            if camera is None:
                key = f"redrawn ({reason})"
                rejected[key] = rejected.get(key, 0) + 1
                last_reason[i] = reason
                still.append(i)
                continue
            specs[i] = VariantSpec(
                fit_id=f.id, fit_index=f.index, variant_index=int(jobs[i][1]), seed=d.rng_seed,
                body=getattr(body, "name", "body"),
                pose=tuple(tuple(float(x) for x in p) for p in pose[k]),
                shape=tuple(float(x) for x in shape[k]),
                age_months=float(body.age_months(torch.tensor(shape[k:k + 1], dtype=torch.float32))[0]),
                mirror=d.mirror, source_posture=f.posture,
                world_rotation=tuple(tuple(float(x) for x in r) for r in world[k]),
                perturbed=bool(kept[k]), camera=camera, width=int(width), height=int(height),
                support_y=float(verts[k][:, 1].min()),
                support_kind=(LYING_SUPPORTS[int(d.ints[5] % len(LYING_SUPPORTS))] if lying
                              else UPRIGHT_SUPPORTS[int(d.ints[5] % len(UPRIGHT_SUPPORTS))]),
                appearance_seed=int(d.ints[0]), support_seed=int(d.ints[1]),
                background={"kind": "file" if n_backgrounds else "procedural", "seed": int(d.ints[2])},
                lights=_lights(d, cfg), ambient=round(_lerp(cfg.ambient, d.scene[1]), 4),
                shadows=bool(d.scene[2] < shadow_prob), sensor={"seed": int(d.ints[3])})
            verts_out[i], kps_out[i] = verts[k], kps[k]
        pending = still
    for i in pending:
        rejected[last_reason[i]] = rejected.get(last_reason[i], 0) + 1
    done = sorted(specs)
    V = verts_out[done[0]].shape[0] if done else 0
    return Sampled(
        specs=[specs[i] for i in done],
        vertices=np.stack([verts_out[i] for i in done]) if done else np.zeros((0, V, 3), np.float32),
        keypoints=np.stack([kps_out[i] for i in done]) if done else np.zeros((0, 17, 3), np.float32),
        rejected=rejected,
        rejected_jobs=[(jobs[i][0].index, int(jobs[i][1]), last_reason[i]) for i in pending])
