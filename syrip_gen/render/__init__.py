"""Rendering: scene description (``scene``), procedural appearance (``appearance``, with
``face_hair`` and the UV layout ``uv``, whose ``TopologyMaps`` keeps what is derived per topology),
backgrounds and support textures (``background``), sensor effects (``sensor``) and the
pyrender/EGL renderer (``renderer`` and its context ``gl``, the only modules importing
pyrender; imported lazily), the support plane without GL (``support_paint``) and body
quick-looks (``preview``).

Importing this package never imports pyrender or OpenGL.
"""
from syrip_gen.geometry import Camera, look_at
from syrip_gen.render.scene import Light, Scene, Support, kelvin_to_rgb, vertex_normals

__all__ = ["Camera", "Light", "Scene", "Support", "kelvin_to_rgb", "look_at", "vertex_normals"]
