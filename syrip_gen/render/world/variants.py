"""Seeded sampling of image variants from body fits: world placement, view, age, pose, scene.

One fit of a real photo becomes many images. For each (fit index, variant index) a generator
seeded from (run seed, fit index, variant index, attempt) draws everything the image needs, so
any image can be reproduced alone. The result is a :class:`~syrip_gen.render.world.spec.VariantSpec`
(frozen, JSON-ready), recorded in the annotation's provenance. The fits come prepared
(:mod:`syrip_gen.render.world.sources`), the camera is framed by :func:`syrip_gen.geometry.frame_camera`
and perturbed poses are checked by :class:`syrip_gen.gates.pose.PoseChecker`.

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

Several infants (``multi_share``, off by default): the spec is a scene in parts (bodies, camera,
support, lighting, sensor); further infants are fits of the same kind (lying / upright) drawn
from a generator of their own and placed beside the first on its support
(:mod:`syrip_gen.render.world.placement`); the camera frames them all.

Views and poses near reality (shares of the variants, drawn per image; own and posture views on
by default, blends off: they lowered coverage precision and recall in benchmarks/poses_real.py):
- ``own_view_share``: the camera of the fit's own photo, turned by a small random rotation
  (``own_view_jitter_deg``), re-centred and distanced like any other camera.
- ``posture_view_share``: the photo camera of a random fit of the same posture (the view
  distribution of the real photos of that posture), jittered by ``posture_view_jitter_deg``.
  Cameras transfer between fits through each fit's canonical world (:func:`syrip_gen.render.world.sources.canonical_world`).
- ``blend_share``: the pose blended (per joint, along the shortest rotation) towards a random fit
  of the same posture by a weight from ``blend_weight``, before the prior-checked perturbation.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from syrip_gen.geometry import Camera, frame_camera, matrix_to_rotvec, place_camera, raise_camera, rot_y, rotvec_to_matrix
from syrip_gen.render.world.sources import FitInfo
from syrip_gen.render.world.spec import LYING, BodySpec, LightingSpec, SupportSpec, VariantSpec

if TYPE_CHECKING:
    from syrip_gen.gates.pose import PoseChecker

LYING_SUPPORTS = ("mattress", "blanket", "rug")  # kinds of render.world.scene.Support
UPRIGHT_SUPPORTS = ("floor", "rug")
MAX_INFANTS = 3


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
    # Views as the photos have them (issue 26): 30 % from the fit's own photo camera, 50 % from another
    # photo's of the same posture (the per-posture view distribution of the user's photos, sampled with
    # jitter), 20 % drawn freely for diversity. Coverage of validate100 by filtered renders, k-NN
    # precision / recall: 0.77 / 0.59 with drawn views only, 0.78 / 0.71 with these (benchmarks/results/realism_ablation.md)
    own_view_share: float = 0.3  # variants seen from the photo's own camera (jittered)
    own_view_jitter_deg: float = 5.0  # std of the rotation angle per axis
    posture_view_share: float = 0.5  # variants seen from another real photo's camera of the same posture
    posture_view_jitter_deg: float = 10.0
    blend_share: float = 0.0  # variants whose pose is blended towards a fit of the same posture
    blend_weight: tuple[float, float] = (0.2, 0.5)  # share of the other fit's joint rotations
    photo_framing: bool = True  # photo views also take their photo's fill and field of view
    photo_fill_jitter: float = 0.1  # std of the log of the photo fill's jitter factor
    photo_fill: tuple[float, float] = (0.3, 0.9)  # photo fills are clipped into this range
    photo_fov_deg: tuple[float, float] = (20.0, 80.0)  # and photo fields of view into this one
    photo_min_elevation_deg: float = 10.0  # lying infants' photo views are raised to at least this
    # several infants in one image (issue 24): the share of images with more than one, how many
    multi_share: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    infants: tuple[int, int] = (2, 3)  # infants in a multi-infant image (uniform, inclusive; at most 3)
    body_gap_m: float = field(default=0.015, metadata={"min": 0.0})  # least vertex distance between infants

    def __post_init__(self):
        from syrip_gen.config import check_ranges
        from syrip_gen.errors import UserError

        check_ranges(self, "sampling config")
        if not 0 < self.fill[0] <= self.fill[1] <= 1:  # a share of the frame (the CLI's --fill too)
            raise UserError(f"sampling.fill must be (low, high) with 0 < low <= high <= 1, got {self.fill}")
        lo, hi = self.infants
        if not 2 <= lo <= hi <= MAX_INFANTS:
            raise UserError(f"sampling.infants must be (low, high) with 2 <= low <= high <= {MAX_INFANTS}, "
                            f"got {self.infants}")


@dataclass
class Sampled:
    """Specs of a batch of jobs, with their world vertices, and the rejections."""

    specs: list[VariantSpec]
    scene_vertices: list[np.ndarray]  # per spec (N, V, 3) float32: its bodies, world frame (support at support.y)
    scene_keypoints: list[np.ndarray]  # per spec (N, 17, 3) float32, world frame
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count (and redraws)
    rejected_jobs: list[tuple[int, int, str]] = field(default_factory=list)


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
    near: np.ndarray  # (5,) uniforms: view kind, view source pick, blend?, blend source pick, blend weight
    view_noise: np.ndarray  # (3,) standard normal: the view's jitter rotation
    frame_noise: float  # standard normal: the photo fill's jitter


def _draw(rng: np.random.Generator, cfg: VariantConfig, seed: list) -> _Draw:
    u = rng.uniform
    return _Draw(
        rng_seed=seed, mirror=bool(u() < cfg.mirror_prob), age=float(u(*cfg.age_months)),
        shape_noise=rng.standard_normal(3), gender=float(u()), pose_noise=rng.standard_normal((23, 3)),
        yaw=float(u(*cfg.yaw_deg)), elevation_u=float(u()), roll=float(u(*cfg.roll_deg)),
        fov=float(u(*cfg.fov_deg)), fill=float(u(*cfg.fill)), ints=rng.integers(0, 2**31 - 1, 6),
        light=rng.uniform(size=(4, 4)), scene=rng.uniform(size=3),
        near=rng.uniform(size=5), view_noise=rng.standard_normal(3),  # drawn last: earlier draws unchanged
        frame_noise=float(rng.standard_normal()))


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


def blend_rotations(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """Axis-angle rotations ``a (J, 3)`` turned towards ``b (J, 3)`` by the share ``w`` of the
    shortest rotation between them, per joint (``w`` = 0: ``a``; 1: ``b``)."""
    from scipy.spatial.transform import Rotation

    ra, rb = Rotation.from_rotvec(a), Rotation.from_rotvec(b)
    return (ra * Rotation.from_rotvec((ra.inv() * rb).as_rotvec() * w)).as_rotvec()


def _pick(fits: list[FitInfo], u: float) -> FitInfo:
    return fits[min(int(u * len(fits)), len(fits) - 1)]


@dataclass
class _Near:
    """What one job takes from real fits: its view's source and camera, its pose blend."""

    view: str = "drawn"
    source: FitInfo | None = None
    camera: np.ndarray | None = None  # (3, 3) world -> camera rotation for own/posture views
    fill: float | None = None  # photo views: the photo's framing (``photo_framing``)
    fov: float | None = None
    blend: dict | None = None


def _near(f: FitInfo, d: _Draw, cfg: VariantConfig, pool: dict[str, list[FitInfo]] | None) -> _Near:
    """The view kind and pose blend of one job from its draws (see the module docstring)."""
    out = _Near()
    same = [g for g in (pool or {}).get(f.posture, []) if g.camera is not None]
    if d.near[0] < cfg.own_view_share and f.camera is not None:
        out.view, out.source, jitter = "own", f, cfg.own_view_jitter_deg
    elif d.near[0] < cfg.own_view_share + cfg.posture_view_share and same:
        out.view, out.source, jitter = "posture", _pick(same, d.near[1]), cfg.posture_view_jitter_deg
    if out.source is not None:
        out.camera = rotvec_to_matrix(np.radians(jitter) * d.view_noise) @ out.source.camera
        if d.mirror:  # the mirrored body seen by the mirrored camera: the mirror image of the view
            flip = np.diag([-1.0, 1.0, 1.0])
            out.camera = flip @ out.camera @ flip
        if f.posture in LYING:
            out.camera = raise_camera(out.camera, cfg.photo_min_elevation_deg)
        if cfg.photo_framing and out.source.fill is not None:
            out.fill = float(np.clip(out.source.fill * math.exp(cfg.photo_fill_jitter * d.frame_noise), *cfg.photo_fill))
            out.fov = float(np.clip(out.source.fov, *cfg.photo_fov_deg))
    others = (pool or {}).get(f.posture, [])
    if d.near[2] < cfg.blend_share and others:
        g = _pick(others, d.near[3])
        out.blend = {"fit_id": g.id, "weight": round(_lerp(cfg.blend_weight, d.near[4]), 4), "pose": g.pose}
    return out


def _world_poses(fits: list[FitInfo], draws: list[_Draw], cfg: VariantConfig,
                 checker: PoseChecker | None, near: list[_Near] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World poses ``(B, 24, 3)``, world rotations ``(B, 3, 3)`` and perturbation flags."""
    from syrip_gen.body.pose_space import flip_pose

    near = near or [_Near() for _ in fits]
    base = np.stack([f.pose for f in fits])
    for k, n in enumerate(near):
        if n.blend is not None:
            base[k, 1:] = blend_rotations(base[k, 1:], n.blend["pose"][1:], n.blend["weight"])
    new = base.copy()
    new[:, 1:] += cfg.pose_sigma * np.stack([d.pose_noise for d in draws])
    kept = checker.accept(base, new) if checker is not None else np.ones(len(fits), bool)
    pose = np.where(kept[:, None, None], new, base)
    world = np.stack([f.canonical if n.view != "drawn" else rot_y(d.yaw) @ f.align
                      for f, d, n in zip(fits, draws, near)])
    glob = world @ rotvec_to_matrix(base[:, 0])  # R_sample · R_fit, composed as matrices
    pose[:, 0] = matrix_to_rotvec(glob)
    mirror = np.array([d.mirror for d in draws])
    if mirror.any():
        import torch

        flipped = flip_pose(torch.tensor(pose[mirror], dtype=torch.float64)).numpy()
        pose[mirror] = flipped
    return pose, world, kept


def _lights(d: _Draw, cfg: VariantConfig) -> tuple:
    """1-4 directional lights (``cfg.lights``): a key light from above and weaker fills from
    anywhere above the horizon, each with its own colour temperature (``scene.kelvin_to_rgb``).
    Their intensities add up to a draw from ``light_intensity`` (more lights, not a brighter
    picture). ``direction`` is where the light travels (world frame, y up)."""
    from syrip_gen.render.world.scene import kelvin_to_rgb

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


def _settle(fits: list[FitInfo], verts: np.ndarray, kps: np.ndarray, pose: np.ndarray, world: np.ndarray,
            ccfg: "ContactConfig", parts: np.ndarray | None) -> tuple[list[dict | None], np.ndarray]:
    """Tilt each hovering body onto its posture's contact part (``render.world.contact.settle``), in
    place: vertices, keypoints, the global orientation ``pose[:, 0]`` and the world rotation
    (all about the pelvis at the origin). Returns each body's contact record (None without
    part labels) and the tilts ``(B, 3, 3)``."""
    from syrip_gen.render.world.contact import contact_mask, contact_record, settle

    tilts = np.tile(np.eye(3), (len(fits), 1, 1))
    if parts is None:
        return [None] * len(fits), tilts
    out = []
    for k, f in enumerate(fits):
        mask = contact_mask(parts, f.posture)
        tilt, angle = settle(verts[k], mask, ccfg)
        tilts[k] = tilt
        if angle > 0:
            verts[k] = verts[k] @ tilt.T.astype(verts.dtype)
            kps[k] = kps[k] @ tilt.T.astype(kps.dtype)
            pose[k, 0] = matrix_to_rotvec(tilt @ rotvec_to_matrix(pose[k, 0]))
            world[k] = tilt @ world[k]
        out.append(contact_record(verts[k], mask, f.posture, ccfg.tolerance, angle))
    return out, tilts


@dataclass
class _More:
    """The further infants of one job (drawn from a generator of their own, so the first
    body's draws, and single-infant images, do not change with ``multi_share``)."""

    fits: list[FitInfo]
    draws: list[_Draw]
    directions: list[float]  # radians on the support plane


def _more_bodies(f: FitInfo, seed: list, cfg: VariantConfig, pool: dict[str, list[FitInfo]] | None) -> _More:
    """How many further infants a job gets (``multi_share``, ``infants``) and their draws: each
    a fit of the same kind (lying / upright: one support for all) from the run's fits."""
    rng = np.random.default_rng([*seed, 1])
    u = rng.uniform(size=2)
    if cfg.multi_share <= 0 or u[0] >= cfg.multi_share:
        return _More([], [], [])
    lo, hi = cfg.infants
    n = lo + min(hi - lo, int(u[1] * (hi - lo + 1))) - 1
    lying = f.posture in LYING
    same = [g for fits in (pool or {}).values() for g in fits if (g.posture in LYING) == lying] or [f]
    out = _More([], [], [])
    for j in range(n):
        sub = np.random.default_rng([*seed, 1, j + 1])
        out.fits.append(_pick(same, float(sub.uniform())))
        out.directions.append(float(sub.uniform(0.0, 2 * math.pi)))
        out.draws.append(_draw(sub, cfg, seed))
    return out


def _forward(body, pose: np.ndarray, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World vertices ``(B, V, 3) float32`` and keypoints ``(B, 17, 3) float32`` of world poses."""
    import torch

    with torch.no_grad():
        out = body(torch.tensor(pose, dtype=torch.float32), torch.tensor(shape, dtype=torch.float32),
                   with_vertices=True)
    return out.vertices.numpy(), out.keypoints.numpy()


def _body_spec(body, f: FitInfo, d: _Draw, pose: np.ndarray, shape: np.ndarray, world: np.ndarray,
               kept: bool, blend: dict | None, offset=(0.0, 0.0, 0.0), track_id: int = 0,
               contact: dict | None = None) -> BodySpec:
    import torch

    return BodySpec(
        fit_id=f.id, fit_index=f.index, body=getattr(body, "name", "body"),
        pose=tuple(tuple(float(x) for x in p) for p in pose), shape=tuple(float(x) for x in shape),
        age_months=float(body.age_months(torch.tensor(shape[None], dtype=torch.float32))[0]),
        mirror=d.mirror, source_posture=f.posture, world_rotation=tuple(tuple(float(x) for x in r) for r in world),
        perturbed=bool(kept), appearance_seed=int(d.ints[0]),
        blend={key: v for key, v in blend.items() if key != "pose"} if blend else None,
        offset=tuple(float(x) for x in offset), track_id=int(track_id), contact=contact)


def sample_variants(jobs: list[tuple[FitInfo, int]], body, cfg: VariantConfig, run_seed: int,
                    width: int, height: int, checker: PoseChecker | None = None,
                    n_backgrounds: int = 0, shadow_prob: float = 0.0,
                    pool: dict[str, list[FitInfo]] | None = None, contact: "ContactConfig | None" = None) -> Sampled:
    """Draw the specs of ``jobs`` ((fit, variant index) pairs) with one batched body forward
    per attempt; variants whose bodies leave the frame (or find no room beside each other) are
    redrawn up to ``max_attempts``. ``n_backgrounds`` > 0: backgrounds come from the user's
    folder (picked by the background seed); ``shadow_prob``: chance of shadows per image;
    ``pool``: :func:`posture_pool` of all the run's fits (posture views, pose blends and the
    further infants of multi-infant images; without it every view is drawn and further
    infants repeat the job's own fit); ``contact``: how bodies settle on their support (the
    render config's ``contact``; None: the defaults)."""
    from syrip_gen.gates.penetration import body_parts
    from syrip_gen.render.world.contact import ContactConfig
    from syrip_gen.render.world.placement import place_bodies

    contact = contact or ContactConfig()
    specs: dict[int, VariantSpec] = {}
    contact_parts = body_parts(body)
    verts_out: dict[int, np.ndarray] = {}
    kps_out: dict[int, np.ndarray] = {}
    rejected: Counter = Counter()  # reason -> count (and redraws)
    last_reason: dict[int, str] = {}
    pending = list(range(len(jobs)))
    for attempt in range(cfg.max_attempts):
        if not pending:
            break
        fits = [jobs[i][0] for i in pending]
        draws, seeds = [], []
        for i in pending:
            seeds.append([int(run_seed), jobs[i][0].index, int(jobs[i][1]), attempt])
            draws.append(_draw(np.random.default_rng(seeds[-1]), cfg, seeds[-1]))
        near = [_near(f, d, cfg, pool) for f, d in zip(fits, draws)]
        pose, world, kept = _world_poses(fits, draws, cfg, checker, near)
        shape = _shapes(body, draws, cfg)
        verts, kps = _forward(body, pose, shape)
        contacts, tilts = _settle(fits, verts, kps, pose, world, contact, contact_parts)
        # further infants: every job's in one batch
        more = [_more_bodies(f, seed, cfg, pool) for f, seed in zip(fits, seeds)]
        m_fits = [g for m in more for g in m.fits]
        if m_fits:
            m_draws = [d for m in more for d in m.draws]
            m_pose, m_world, m_kept = _world_poses(m_fits, m_draws, cfg, checker)
            m_shape = _shapes(body, m_draws, cfg)
            m_verts, m_kps = _forward(body, m_pose, m_shape)
            m_contacts, _ = _settle(m_fits, m_verts, m_kps, m_pose, m_world, contact, contact_parts)
        still = []
        first_more = 0
        for k, i in enumerate(pending):
            f, d, n, m = fits[k], draws[k], near[k], more[k]
            rows = list(range(first_more, first_more + len(m.fits)))
            first_more += len(m.fits)
            support_y = float(verts[k][:, 1].min())
            offsets = place_bodies(verts[k], [m_verts[r] for r in rows], m.directions, support_y,
                                   gap=cfg.body_gap_m) if rows else []
            camera, reason = None, "no_room"
            if offsets is not None:
                scene_verts = np.concatenate([verts[k]] + [m_verts[r] + o for r, o in zip(rows, offsets)])
                camera, reason = _camera(scene_verts.astype(np.float64), f, d, n, cfg, width, height, tilts[k])
            if camera is None:
                rejected[f"redrawn ({reason})"] += 1
                last_reason[i] = reason
                still.append(i)
                continue
            lying = f.posture in LYING
            bodies = [_body_spec(body, f, d, pose[k], shape[k], world[k], kept[k], n.blend, contact=contacts[k])]
            bodies += [_body_spec(body, m_fits[r], m_draws[r], m_pose[r], m_shape[r], m_world[r], m_kept[r], None,
                                  offset=o, track_id=j + 1, contact=m_contacts[r])
                       for j, (r, o) in enumerate(zip(rows, offsets))]
            specs[i] = VariantSpec(
                fit_id=f.id, fit_index=f.index, variant_index=int(jobs[i][1]), seed=d.rng_seed,
                bodies=tuple(bodies), camera=camera, width=int(width), height=int(height),
                support=SupportSpec(
                    y=support_y,
                    kind=(LYING_SUPPORTS[int(d.ints[5] % len(LYING_SUPPORTS))] if lying
                          else UPRIGHT_SUPPORTS[int(d.ints[5] % len(UPRIGHT_SUPPORTS))]),
                    seed=int(d.ints[1]),
                    background={"kind": "file" if n_backgrounds else "procedural", "seed": int(d.ints[2])}),
                lighting=LightingSpec(lights=_lights(d, cfg), ambient=round(_lerp(cfg.ambient, d.scene[1]), 4),
                                      shadows=bool(d.scene[2] < shadow_prob)),
                sensor={"seed": int(d.ints[3])},
                view=n.view, view_from=n.source.id if n.source is not None else None)
            verts_out[i] = np.stack([verts[k]] + [(m_verts[r] + o).astype(np.float32) for r, o in zip(rows, offsets)])
            kps_out[i] = np.stack([kps[k]] + [(m_kps[r] + o).astype(np.float32) for r, o in zip(rows, offsets)])
        pending = still
    for i in pending:
        rejected[last_reason[i]] += 1
    done = sorted(specs)
    return Sampled(
        specs=[specs[i] for i in done],
        scene_vertices=[verts_out[i] for i in done], scene_keypoints=[kps_out[i] for i in done],
        rejected=dict(rejected),
        rejected_jobs=[(jobs[i][0].index, int(jobs[i][1]), last_reason[i]) for i in pending])


def _camera(verts: np.ndarray, f: FitInfo, d: _Draw, n: _Near, cfg: VariantConfig, width: int, height: int,
            tilt: np.ndarray | None = None) -> tuple[Camera | None, str | None]:
    """The job's camera around all of the scene's world vertices ``verts (V, 3)``: the borrowed
    view's rotation (turned with the first body's settling ``tilt``: a photo's view is of the
    body) and framing, else one drawn per posture."""
    if n.camera is not None:
        R = n.camera if tilt is None else n.camera @ tilt.T
        return frame_camera(verts, R, width, height, n.fov or d.fov, n.fill or d.fill, cfg.margin_px)
    el_range = cfg.lying_elevation_deg if f.posture in LYING else cfg.upright_elevation_deg
    return place_camera(verts, width, height, _lerp(el_range, d.elevation_u), d.roll, d.fov, d.fill, cfg.margin_px)
