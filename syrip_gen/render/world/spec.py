"""A render scene's spec as plain, JSON-ready data: the bodies, camera, support, lighting, sensor.

Why its own module: the spec is what sampling (``render/world/variants.py``) draws, what the image
maker (``render/image/compose.py``) and clips (``render/clip_*.py``) read, and what an annotation's
provenance records (``to_json``/``from_json``), so a record's spec redraws its image alone.
Kubric's scene: a list of assets (``bodies``: 1-3 :class:`BodySpec`), a camera, lights. A
further body (a fourth infant, or another asset) is one more list element.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from syrip_gen.geometry import Camera

LYING = ("supine", "prone", "side")  # postures that lie on a mattress/blanket/rug (the rest stand on a floor)


@dataclass(frozen=True)
class BodySpec:
    """One infant of a scene: its pose, shape, texture and place (JSON-ready via ``to_json``).

    World vertices = body(pose, shape) + ``offset``: the first body of a scene sits where its
    pose puts it (pelvis at the origin, offset 0); further bodies are moved on the support
    plane by :func:`syrip_gen.render.world.placement.place_bodies`."""

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
    kind: str  # a render.world.scene.Support kind: mattress/blanket/rug (lying), floor/rug
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
    redraws its image alone. The image is named after the first body's fit (``fit_index``)."""

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
