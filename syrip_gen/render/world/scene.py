"""A render scene as plain data: camera, lights, support surface, the bodies (vertices and texture).

Kubric's habit: the scene is data and the backend is separate. Nothing here imports pyrender
or OpenGL; ``renderer.py`` turns a :class:`Scene` into pixels. The camera is
:class:`syrip_gen.geometry.Camera` (the one used from variant sampling to annotation).

World frame = the body/scene frame of docs/architecture.md: metres, y up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from syrip_gen.geometry import Camera

LIGHT_KINDS = ("directional", "point")
SUPPORT_KINDS = ("mattress", "blanket", "rug", "floor", "photo")  # photo: a background photo, stretched once


@dataclass(frozen=True, eq=False)
class Light:
    """A directional light (``direction``: where the light travels, world frame) or a point
    light (``position``, world frame). ``color (3,)`` linear RGB in [0, 1] (see
    :func:`kelvin_to_rgb`); ``intensity`` in pyrender units (directional: lux-like, ~2-5 for a
    bright room; point: candela-like, falls off with the squared distance)."""

    kind: str
    color: np.ndarray  # (3,) float32
    intensity: float
    direction: np.ndarray | None = None  # (3,) float64, directional only
    position: np.ndarray | None = None  # (3,) float64, point only

    def __post_init__(self):
        if self.kind not in LIGHT_KINDS:
            raise ValueError(f"Light.kind must be one of {LIGHT_KINDS}, got {self.kind!r}")
        vec = self.direction if self.kind == "directional" else self.position
        if vec is None or np.asarray(vec).shape != (3,):
            field = "direction" if self.kind == "directional" else "position"
            raise ValueError(f"a {self.kind} light needs a {field} of shape (3,)")
        object.__setattr__(self, "color", np.asarray(self.color, dtype=np.float32).reshape(3))
        if self.direction is not None:
            d = np.asarray(self.direction, dtype=np.float64)
            object.__setattr__(self, "direction", d / np.linalg.norm(d))
        if self.position is not None:
            object.__setattr__(self, "position", np.asarray(self.position, dtype=np.float64))


@dataclass(frozen=True, eq=False)
class Support:
    """A horizontal textured rectangle the infant lies on, facing up (+y).

    ``height``: its y in the world; ``size``: (x extent, z extent) metres, centred at
    ``center`` (x, z); ``texture (H, W, 3) uint8`` repeats every ``tile`` metres (None: once
    over the whole rectangle). Put it a millimetre or so under the body's lowest vertex.
    """

    kind: str
    height: float
    size: tuple[float, float]
    texture: np.ndarray  # (H, W, 3) uint8
    center: tuple[float, float] = (0.0, 0.0)
    tile: float | None = None
    roughness: float = 0.9

    def __post_init__(self):
        if self.kind not in SUPPORT_KINDS:
            raise ValueError(f"Support.kind must be one of {SUPPORT_KINDS}, got {self.kind!r}")
        tex = np.asarray(self.texture)
        if tex.ndim != 3 or tex.shape[2] != 3 or tex.dtype != np.uint8:
            raise ValueError(f"Support.texture must be (H, W, 3) uint8, got {tex.shape} {tex.dtype}")


@dataclass(frozen=True, eq=False)
class BodyMesh:
    """One infant of a scene: ``vertices (V, 3) float32`` posed in the world (V = body vertices,
    not the seam-split render vertices), ``texture (T, T, 3) uint8`` in the body's UV layout
    (image row 0 = v 1, as ``appearance.make_texture`` paints it). Every body of a scene has
    the same topology."""

    vertices: np.ndarray
    texture: np.ndarray


@dataclass(frozen=True, eq=False)
class Scene:
    """Everything one frame needs (Kubric's scene: a list of assets, a camera, lights).

    ``bodies``: the infants (:class:`BodyMesh`), in the spec's order (``spec.bodies``).
    ``ambient (3,)`` linear RGB.
    ``background (H, W, 3) uint8`` is resized/cropped to fill the frame; None = mid grey.
    Arrays are treated as immutable: to change vertices or a texture, pass a new array (the
    renderer re-uploads only what is a different object than last frame).
    """

    bodies: tuple[BodyMesh, ...]
    camera: Camera
    support: Support | None = None
    lights: tuple[Light, ...] = ()
    ambient: tuple[float, float, float] = (0.25, 0.25, 0.25)
    background: np.ndarray | None = None
    shadows: bool = False
    skin_roughness: float = 0.7


# ---- pure helpers ------------------------------------------------------------------------

def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """Colour of a black body at ``kelvin`` (1000-40000 K) as ``(3,) float32`` RGB, max 1.

    Tanner Helland's fit to the CIE black-body table; 6500 K is near white, 2700 K warm
    tungsten, 9000 K blue-ish shade.
    """
    t = float(np.clip(kelvin, 1000.0, 40000.0)) / 100.0
    if t <= 66:
        r = 255.0
        g = 99.4708025861 * np.log(t) - 161.1195681661
        b = 0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307
    else:
        r = 329.698727446 * (t - 60) ** -0.1332047592
        g = 288.1221695283 * (t - 60) ** -0.0755148492
        b = 255.0
    rgb = np.clip(np.array([r, g, b], dtype=np.float64), 0, 255) / 255.0
    return (rgb / rgb.max()).astype(np.float32)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``(V, 3) float32`` of ``vertices (V, 3)``,
    ``faces (F, 3) int`` (counter-clockwise = outside). Vectorised: three ``bincount``s."""
    v = np.asarray(vertices, dtype=np.float32)
    tri = v[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3), length = 2 x area
    idx = faces.reshape(-1)
    n = np.stack([np.bincount(idx, weights=np.repeat(fn[:, c], 3), minlength=len(v))
                  for c in range(3)], axis=1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n.astype(np.float32)
