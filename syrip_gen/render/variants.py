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

Several infants (``multi_share``, off by default): the spec is a scene in parts (bodies, camera,
support, lighting, sensor); further infants are fits of the same kind (lying / upright) drawn
from a generator of their own and placed beside the first on its support
(:mod:`syrip_gen.render.placement`); the camera frames them all.

Views and poses near reality (shares of the variants, drawn per image; own and posture views on
by default, blends off: they lowered coverage precision and recall in benchmarks/poses_real.py):
- ``own_view_share``: the camera of the fit's own photo, turned by a small random rotation
  (``own_view_jitter_deg``), re-centred and distanced like any other camera.
- ``posture_view_share``: the photo camera of a random fit of the same posture (the view
  distribution of the real photos of that posture), jittered by ``posture_view_jitter_deg``.
  Cameras transfer between fits through each fit's canonical world (:func:`canonical_world`).
- ``blend_share``: the pose blended (per joint, along the shortest rotation) towards a random fit
  of the same posture by a weight from ``blend_weight``, before the prior-checked perturbation.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from syrip_gen.geometry import Camera, camera_elevation, matrix_to_rotvec, raise_camera, project, to_camera, rot_y, rot_z, rotation_between, rotvec_to_matrix

LYING = ("supine", "prone", "side")
LYING_SUPPORTS = ("mattress", "blanket", "rug")  # kinds of render.scene.Support
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
    settle_max_tilt_deg: float = 30.0  # tilt a hovering body onto its contact part (0: never; render.contact)
    contact_tolerance_m: float = 0.01  # a contact part this close to the support touches it
    # several infants in one image (issue 24): the share of images with more than one, how many
    multi_share: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    infants: tuple[int, int] = (2, 3)  # infants in a multi-infant image (uniform, inclusive; at most 3)
    body_gap_m: float = field(default=0.015, metadata={"min": 0.0})  # least vertex distance between infants

    def __post_init__(self):
        from syrip_gen.config import check_ranges
        from syrip_gen.errors import UserError

        check_ranges(self, "sampling config")
        lo, hi = self.infants
        if not 2 <= lo <= hi <= MAX_INFANTS:
            raise UserError(f"sampling.infants must be (low, high) with 2 <= low <= high <= {MAX_INFANTS}, "
                            f"got {self.infants}")


@dataclass(frozen=True)
class BodySpec:
    """One infant of a scene: its pose, shape, texture and place (JSON-ready via ``to_json``).

    World vertices = body(pose, shape) + ``offset``: the first body of a scene sits where its
    pose puts it (pelvis at the origin, offset 0); further bodies are moved on the support
    plane by :func:`syrip_gen.render.placement.place_bodies`."""

    fit_id: str
    fit_index: int
    body: str
    pose: tuple  # 24x3 axis-angle, common space; joint 0 = world orientation
    shape: tuple  # S body-shape numbers
    age_months: float
    mirror: bool
    source_posture: str  # posture of the fit that set the world's up
    world_rotation: tuple  # 3x3: Ry(yaw) R_align, applied before the mirror
    perturbed: bool  # pose perturbation kept (False: the fitted pose was used)
    appearance_seed: int
    blend: dict | None = None  # {"fit_id", "weight"} when the pose was blended towards another fit
    contact: dict | None = None  # {"part", "gap_m", "margin_m", "tilt_deg"}: how the body meets its support (render.contact)
    offset: tuple = (0.0, 0.0, 0.0)  # world translation (m) of the posed vertices
    track_id: int = 0  # the infant's index in the scene (COCO ``track_id``)

    def to_json(self) -> dict:
        d = asdict(self)
        for key in ("blend", "contact"):
            if d[key] is None:
                d.pop(key)
        d["pose"] = [list(p) for p in self.pose]
        d["shape"] = list(self.shape)
        d["world_rotation"] = [list(r) for r in self.world_rotation]
        d["offset"] = list(self.offset)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "BodySpec":
        return cls(**{**d, "pose": tuple(tuple(p) for p in d["pose"]), "shape": tuple(d["shape"]),
                      "world_rotation": tuple(tuple(r) for r in d["world_rotation"]),
                      "offset": tuple(d.get("offset", (0.0, 0.0, 0.0)))})


@dataclass(frozen=True)
class SupportSpec:
    """What the bodies rest on and what lies behind it."""

    y: float  # height of the support plane (lowest body point)
    kind: str  # a render.scene.Support kind: mattress/blanket/rug (lying), floor/rug
    seed: int
    background: dict  # {"kind": "procedural" | "file", "seed": s} (file: picked from the folder by s)


@dataclass(frozen=True)
class LightingSpec:
    """The scene's lights."""

    lights: tuple  # dicts: {"kind", "direction" [3] (where light travels), "intensity", "kelvin", "color" [3]}
    ambient: float
    shadows: bool  # directional shadows (GL shadow maps; slower)


@dataclass(frozen=True)
class VariantSpec:
    """Everything that defines one image, in its parts (Kubric's scene: assets, camera, lights):
    ``bodies`` (1-3 infants), the camera and its view, the support, the lighting and the sensor.
    JSON-ready through :meth:`to_json`; :meth:`from_json` reads it back, so a record's spec
    redraws its image alone. The image is named after the first body's fit (``fit_index``).

    The first body's fields (``pose``, ``shape``, ``mirror``...) and the parts' fields
    (``support_y``, ``lights``...) are readable on the spec itself as before the split."""

    fit_id: str
    fit_index: int
    variant_index: int
    seed: list  # [run seed, fit index, variant index, attempt] -> np.random.default_rng(seed)
    bodies: tuple  # BodySpec, ...
    camera: Camera
    width: int
    height: int
    support: SupportSpec
    lighting: LightingSpec
    sensor: dict  # {"seed": s}: render.sensor.apply_sensor draws its chain from default_rng(s)
    view: str = "drawn"  # drawn (elevation/yaw ranges) | own (the photo's camera) | posture (another photo's)
    view_from: str | None = None  # fit id whose photo camera was used

    # the first body and the parts, read flat (callers written before the split)
    body = property(lambda self: self.bodies[0].body)
    pose = property(lambda self: self.bodies[0].pose)
    shape = property(lambda self: self.bodies[0].shape)
    age_months = property(lambda self: self.bodies[0].age_months)
    mirror = property(lambda self: self.bodies[0].mirror)
    source_posture = property(lambda self: self.bodies[0].source_posture)
    world_rotation = property(lambda self: self.bodies[0].world_rotation)
    perturbed = property(lambda self: self.bodies[0].perturbed)
    appearance_seed = property(lambda self: self.bodies[0].appearance_seed)
    blend = property(lambda self: self.bodies[0].blend)
    contact = property(lambda self: self.bodies[0].contact)
    support_y = property(lambda self: self.support.y)
    support_kind = property(lambda self: self.support.kind)
    support_seed = property(lambda self: self.support.seed)
    background = property(lambda self: self.support.background)
    lights = property(lambda self: self.lighting.lights)
    ambient = property(lambda self: self.lighting.ambient)
    shadows = property(lambda self: self.lighting.shadows)

    def replace_body(self, k: int, **changes) -> "VariantSpec":
        """This spec with body ``k``'s fields changed (``dataclasses.replace`` on one body)."""
        from dataclasses import replace

        bodies = list(self.bodies)
        bodies[k] = replace(bodies[k], **changes)
        return replace(self, bodies=tuple(bodies))

    def to_json(self) -> dict:
        d = {"fit_id": self.fit_id, "fit_index": self.fit_index, "variant_index": self.variant_index,
             "seed": list(self.seed), "bodies": [b.to_json() for b in self.bodies],
             "camera": self.camera.to_dict(), "width": self.width, "height": self.height,
             "support": asdict(self.support),
             "lighting": {**asdict(self.lighting), "lights": [dict(x) for x in self.lighting.lights]},
             "sensor": dict(self.sensor)}
        if self.view != "drawn":  # the defaults leave the record as short as before these existed
            d["view"], d["view_from"] = self.view, self.view_from
        return d

    @classmethod
    def from_json(cls, d: dict) -> "VariantSpec":
        """The spec of a :meth:`to_json` record (an annotation's ``provenance["spec"]``)."""
        lighting = d["lighting"]
        return cls(fit_id=d["fit_id"], fit_index=d["fit_index"], variant_index=d["variant_index"],
                   seed=list(d["seed"]), bodies=tuple(BodySpec.from_json(b) for b in d["bodies"]),
                   camera=Camera(K=d["camera"]["K"], R=d["camera"]["R"], t=d["camera"]["t"], width=d["width"],
                                 height=d["height"]), width=d["width"], height=d["height"],
                   support=SupportSpec(**d["support"]),
                   lighting=LightingSpec(lights=tuple(dict(x) for x in lighting["lights"]),
                                         ambient=lighting["ambient"], shadows=lighting["shadows"]),
                   sensor=dict(d["sensor"]), view=d.get("view", "drawn"), view_from=d.get("view_from"))


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
    photo_texture: str | None = None  # its baked photo texture (render --photo-textures), if any
    canonical: np.ndarray | None = None  # (3, 3) body frame -> canonical world (canonical_world)
    camera: np.ndarray | None = None  # (3, 3) the photo camera's rotation in the canonical world
    fill: float | None = None  # the fitted body's box / the photo's size (photo views frame alike)
    fov: float | None = None  # the photo camera's vertical field of view, degrees


@dataclass
class Sampled:
    """Specs of a batch of jobs, with their world vertices, and the rejections."""

    specs: list[VariantSpec]
    vertices: np.ndarray  # (B, V, 3) float32: each spec's first body, world frame (support at support_y)
    keypoints: np.ndarray  # (B, 17, 3) float32, world frame
    scene_vertices: list[np.ndarray] = field(default_factory=list)  # per spec (N, V, 3): all its bodies
    scene_keypoints: list[np.ndarray] = field(default_factory=list)  # per spec (N, 17, 3)
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count (and redraws)
    rejected_jobs: list[tuple[int, int, str]] = field(default_factory=list)


# ---- fits -> FitInfo ----------------------------------------------------------------------
def canonical_world(align: np.ndarray, axis: np.ndarray, front: np.ndarray) -> np.ndarray:
    """``(3, 3)`` body frame -> canonical world: ``R_align`` (posture's up onto +y), then a turn
    about +y that puts the horizontal part of (torso axis + chest normal) onto +z. Lying
    infants then lie head to +z, upright ones face +z, so one photo's camera, expressed in its
    fit's canonical world, can be placed around another fit of the same posture."""
    h = align @ (axis + front)
    heading = math.degrees(math.atan2(h[0], h[2])) if math.hypot(h[0], h[2]) > 1e-9 else 0.0
    return rot_y(-heading) @ align


def posture_pool(fits) -> dict[str, list[FitInfo]]:
    """Fits by posture (the sources of posture views and pose blends), in index order."""
    pool: dict[str, list[FitInfo]] = {}
    for f in sorted(fits, key=lambda f: f.index):
        pool.setdefault(f.posture, []).append(f)
    return pool


def prepare_fits(records: list[dict], body) -> list[FitInfo]:
    """Turn fit records (``status == "ok"``, already validated; a record's position is its fit
    index, as :func:`~syrip_gen.fits.usable_fits` returns them) into :class:`FitInfo`: posture
    from the record, else its hypothesis, else labelled from the fitted body with +y up."""
    import torch

    from syrip_gen.posture import posture_labels, torso_frame, up_for_posture

    if not records:
        return []
    pose = torch.tensor(np.array([r["pose"] for r in records]), dtype=torch.float32)
    shape = torch.tensor(np.array([r["shape"] for r in records]), dtype=torch.float32)
    with torch.no_grad():
        out = body(pose, shape, with_vertices=True)
    kp = out.keypoints  # body frame with the fit's global orientation
    verts = out.vertices.double().numpy()
    postures = [(r.get("posture") or r.get("hypothesis") or "").lower() or None for r in records]
    missing = [i for i, p in enumerate(postures) if p is None]
    if missing:
        labels = posture_labels(kp[missing], torch.tensor([0.0, 1.0, 0.0]))
        for i, lab in zip(missing, labels):
            postures[i] = lab
    ups = up_for_posture(kp, postures).double().numpy()
    axis, front = (t.double().numpy() for t in torso_frame(kp))
    y = np.array([0.0, 1.0, 0.0])
    infos = []
    for i, r in enumerate(records):
        align = rotation_between(ups[i], y)
        canon = canonical_world(align, axis[i], front[i])
        cam = (r.get("camera") or {}).get("R") if isinstance(r.get("camera"), dict) else None
        cam_rot = np.asarray(cam, np.float64) @ canon.T if cam is not None else None  # X_cam = R_c X_body
        fill, fov = photo_framing(r, verts[i])
        infos.append(FitInfo(index=i, id=str(r["id"]), pose=np.asarray(r["pose"], np.float64),
                             shape=np.asarray(r["shape"], np.float64), posture=postures[i], align=align,
                             canonical=canon, camera=cam_rot, fill=fill, fov=fov))
    return infos


def photo_framing(record: dict, verts: np.ndarray) -> tuple[float | None, float | None]:
    """How the photo framed its infant: the fitted body's projected box over the image size
    (``max(w / W, h / H)``, the render's ``fill``) and the camera's vertical field of view in
    degrees; (None, None) when the record has no usable camera."""
    cam, W, H = record.get("camera"), record.get("width"), record.get("height")
    if not isinstance(cam, dict) or not W or not H or "t" not in cam:
        return None, None
    K = np.array([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1]], np.float64)
    xc = to_camera(verts, np.asarray(cam["R"], np.float64), np.asarray(cam["t"], np.float64))
    if (xc[:, 2] <= 1e-6).any():
        return None, None
    uv = project(xc, K)
    extent = max(np.ptp(uv[:, 0]) / W, np.ptp(uv[:, 1]) / H)
    return float(extent), float(np.degrees(2 * math.atan(H / 2 / cam["fy"])))


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


class PoseChecker:
    """Rejects pose perturbations that the pose prior (``fit.prior.default_prior()``) or the
    joint limits (``fit.limits``) dislike; ``kind`` names the checks (recorded per image)."""

    kind = "prior+limits"

    def __init__(self, max_nll_increase: float):
        from syrip_gen.fit.limits import joint_limit_violation
        from syrip_gen.fit.prior import default_prior

        self.max_increase = max_nll_increase
        self.prior = default_prior()
        self.limits = joint_limit_violation

    def accept(self, base: np.ndarray, new: np.ndarray) -> np.ndarray:
        """``(B,)`` bool: keep perturbed pose ``new (B, 24, 3)`` against fitted ``base``."""
        import torch

        ok = np.ones(len(new), dtype=bool)
        b = torch.tensor(base, dtype=torch.float32)
        n = torch.tensor(new, dtype=torch.float32)
        with torch.no_grad():
            inc = (self.prior.nll(n) - self.prior.nll(b)).reshape(-1).numpy()
            ok &= inc <= self.max_increase
            vb = torch.as_tensor(self.limits(b)).reshape(len(new), -1).sum(-1).numpy()
            vn = torch.as_tensor(self.limits(n)).reshape(len(new), -1).sum(-1).numpy()
            ok &= vn <= vb + 1e-6
        return ok


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


def place_camera(verts: np.ndarray, width: int, height: int, elevation: float, roll: float,
                 fov: float, fill: float, margin: float) -> tuple[Camera | None, str | None]:
    """Camera looking at world vertices ``verts (V, 3)`` from ``elevation`` degrees above the
    horizon (azimuth 0: from +z), rolled in-plane, re-centred and distanced so the body's box
    covers ``fill`` of the frame. Returns (camera, None) or (None, reason)."""
    e = math.radians(elevation)
    fwd = -np.array([0.0, math.sin(e), math.cos(e)])  # from the camera towards the target
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    return frame_camera(verts, rot_z(roll) @ np.stack([right, down, fwd]), width, height, fov, fill, margin)


def frame_camera(verts: np.ndarray, R: np.ndarray, width: int, height: int, fov: float, fill: float,
                 margin: float) -> tuple[Camera | None, str | None]:
    """Camera with rotation ``R (3, 3)`` (world -> camera) looking at world vertices ``verts (V, 3)``,
    re-centred and distanced so the body's box covers ``fill`` of the frame."""
    lo, hi = verts.min(0), verts.max(0)
    target = (lo + hi) / 2
    back = -R[2]  # from target towards the camera
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


def _coarse_parts(body) -> np.ndarray | None:
    """Coarse part per vertex (gates.penetration) of ``body``, None without part labels."""
    topo = body.topology() if hasattr(body, "topology") else None
    if topo is None or topo.part_of_vertex is None:
        return None
    from syrip_gen.gates.penetration import coarse_parts

    return coarse_parts(np.asarray(topo.part_of_vertex), tuple(topo.part_names))


def _settle(fits: list[FitInfo], verts: np.ndarray, kps: np.ndarray, pose: np.ndarray, world: np.ndarray,
            cfg: VariantConfig, parts: np.ndarray | None) -> tuple[list[dict | None], np.ndarray]:
    """Tilt each hovering body onto its posture's contact part (``render.contact.settle``), in
    place: vertices, keypoints, the global orientation ``pose[:, 0]`` and the world rotation
    (all about the pelvis at the origin). Returns each body's contact record (None without
    part labels) and the tilts ``(B, 3, 3)``."""
    from syrip_gen.render.contact import ContactConfig, contact_mask, contact_record, settle

    tilts = np.tile(np.eye(3), (len(fits), 1, 1))
    if parts is None:
        return [None] * len(fits), tilts
    ccfg = ContactConfig(settle=cfg.settle_max_tilt_deg > 0, max_tilt_deg=max(cfg.settle_max_tilt_deg, 1e-6),
                         tolerance=cfg.contact_tolerance_m)
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
        out.append(contact_record(verts[k], mask, f.posture, cfg.contact_tolerance_m, angle))
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
                    pool: dict[str, list[FitInfo]] | None = None) -> Sampled:
    """Draw the specs of ``jobs`` ((fit, variant index) pairs) with one batched body forward
    per attempt; variants whose bodies leave the frame (or find no room beside each other) are
    redrawn up to ``max_attempts``. ``n_backgrounds`` > 0: backgrounds come from the user's
    folder (picked by the background seed); ``shadow_prob``: chance of shadows per image;
    ``pool``: :func:`posture_pool` of all the run's fits (posture views, pose blends and the
    further infants of multi-infant images; without it every view is drawn and further
    infants repeat the job's own fit)."""
    from syrip_gen.render.placement import place_bodies

    specs: dict[int, VariantSpec] = {}
    contact_parts = _coarse_parts(body)
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
        contacts, tilts = _settle(fits, verts, kps, pose, world, cfg, contact_parts)
        # further infants: every job's in one batch
        more = [_more_bodies(f, seed, cfg, pool) for f, seed in zip(fits, seeds)]
        m_fits = [g for m in more for g in m.fits]
        if m_fits:
            m_draws = [d for m in more for d in m.draws]
            m_pose, m_world, m_kept = _world_poses(m_fits, m_draws, cfg, checker)
            m_shape = _shapes(body, m_draws, cfg)
            m_verts, m_kps = _forward(body, m_pose, m_shape)
            m_contacts, _ = _settle(m_fits, m_verts, m_kps, m_pose, m_world, cfg, contact_parts)
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
    V = verts_out[done[0]].shape[1] if done else 0
    return Sampled(
        specs=[specs[i] for i in done],
        vertices=np.stack([verts_out[i][0] for i in done]) if done else np.zeros((0, V, 3), np.float32),
        keypoints=np.stack([kps_out[i][0] for i in done]) if done else np.zeros((0, 17, 3), np.float32),
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
