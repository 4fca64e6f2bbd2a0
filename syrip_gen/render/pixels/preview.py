"""Quick looks at a body: its vertices seen from a few fixed views, side by side on white
(``syrip-gen body preview``). Draws with the GL :class:`~syrip_gen.render.pixels.renderer.Renderer`;
:func:`syrip_gen.drawing.paint_views` is the OpenCV painter used when GL is missing."""
from __future__ import annotations

import numpy as np

from syrip_gen.body.base import MeshTopology
from syrip_gen.errors import UserError
from syrip_gen.geometry import look_at
from syrip_gen.render.pixels.renderer import Renderer
from syrip_gen.render.world.scene import BodyMesh, Light, Scene, kelvin_to_rgb

_VIEWS = {  # view -> direction from the body towards the camera (body frame: x left, y up, z forward)
    "front": (0.0, 0.0, 1.0), "back": (0.0, 0.0, -1.0), "side": (1.0, 0.0, 0.0),
    "right": (-1.0, 0.0, 0.0), "top": (0.0, 1.0, 0.0),
}
_RENDERERS: dict[int, Renderer] = {}  # size -> the last renderer made at that size (it holds its topology)


def body_view_cameras(vertices: np.ndarray, size: int, views: tuple[str, ...]) -> list:
    """The cameras of :func:`render_body_views` (one per view), e.g. to draw points on its panels."""
    v = np.asarray(vertices, np.float32)
    lo, hi = v.min(0), v.max(0)
    centre, radius = (lo + hi) / 2, np.linalg.norm(hi - lo) / 2
    fov = 40.0
    distance = radius / np.sin(np.radians(fov) / 2) * 1.05
    return [look_at(centre + np.asarray(_VIEWS[view]) * distance, centre,
                    up=(0, 1, 0) if view != "top" else (0, 0, -1), width=size, height=size, fov_deg=fov)
            for view in views]


def render_body_views(vertices: np.ndarray, topology: MeshTopology, texture: np.ndarray | None = None,
                      size: int = 512, views: tuple[str, ...] = ("front", "side")) -> np.ndarray:
    """Quick look at a body: ``vertices (V, 3)`` (body frame) seen from each of ``views``
    ("front", "back", "side" (its left), "right", "top"), side by side on white.

    Returns ``(size, size * len(views), 3) uint8``. Without a texture the skin is plain beige.
    """
    unknown = [v for v in views if v not in _VIEWS]
    if unknown:
        raise UserError(f"unknown view(s) {unknown}; choose from {sorted(_VIEWS)}")
    renderer = _RENDERERS.get(size)
    if renderer is None or renderer.topology is not topology:  # GL buffers are made per topology
        renderer = _RENDERERS[size] = Renderer(size, size, topology)
    v = np.asarray(vertices, np.float32)
    if texture is None:
        texture = np.empty((8, 8, 3), np.uint8)
        texture[:] = (224, 180, 150)
    background = np.full((size, size, 3), 255, np.uint8)
    panels = []
    for cam in body_view_cameras(v, size, views):
        key_dir = cam.R.T @ np.array([0.3, 0.6, 1.0])  # from over the camera's shoulder
        lights = (Light("directional", kelvin_to_rgb(6000), 3.0, direction=key_dir),)
        scene = Scene(bodies=(BodyMesh(v, texture),), camera=cam, lights=lights, ambient=(0.35, 0.35, 0.35),
                      background=background)
        panels.append(renderer.render(scene).rgb)
    return np.concatenate(panels, axis=1)
