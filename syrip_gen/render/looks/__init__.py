"""How things look: procedural textures (``appearance``, ``face_hair``, the UV layout ``uv`` with
the per-topology ``TopologyMaps``), textures baked from photos (``bake``, ``photo_textures``),
backgrounds and support textures (``background``, ``image_folder``) and the photo statistics the
renders are matched to (``photo_stats``)."""
