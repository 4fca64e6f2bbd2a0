"""Rendering, in five rooms: ``world`` (what a picture holds: scene, spec, sources, variants,
contact), ``looks`` (textures, photo bakes, backgrounds), ``pixels`` (the pyrender/EGL renderer,
the support plane, optics and sensor), ``image`` (the render config and the image maker that
composes one annotated image) and ``sequence`` (clips: the same image maker, frame by frame).

Importing this package never imports pyrender or OpenGL.
"""
from syrip_gen.geometry import Camera, look_at
from syrip_gen.render.world.scene import Light, Scene, Support, kelvin_to_rgb, vertex_normals

__all__ = ["Camera", "Light", "Scene", "Support", "kelvin_to_rgb", "look_at", "vertex_normals"]
