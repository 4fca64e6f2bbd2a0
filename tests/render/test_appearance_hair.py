"""Procedural hair: it grows on the scalp (crown and back of the head), never on the face.

Issue 13."""
from __future__ import annotations

import numpy as np
import torch


def rest_body(body) -> tuple:
    """The body's topology and its rest-pose vertices ``(V, 3) float64`` at the mean shape."""
    with torch.no_grad():
        out = body(torch.zeros(1, 24, 3), body.shape_mean[None], with_vertices=True)
    return body.topology(), out.vertices[0].double().numpy()


def test_hair_covers_the_scalp_not_the_face(anny_body):
    from syrip_gen.render.looks.appearance import AppearanceConfig, make_texture
    from syrip_gen.render.looks.face_hair import scalp_indicator
    from syrip_gen.render.looks.uv import TopologyMaps

    topo, rest = rest_body(anny_body)
    tmaps = TopologyMaps(topo, rest)
    scalp = scalp_indicator(topo, rest)
    names = list(topo.part_names)
    part = np.asarray(topo.part_of_vertex)
    head = part == names.index("head")
    eyes = np.isin(part, [names.index("eye.L"), names.index("eye.R")])
    crown = head & (rest[:, 1] > rest[head, 1].max() - 0.01)
    assert (scalp[crown] > 0.3).all() and (scalp[eyes] < 0).all() and (scalp[~head] < 0).all()

    size = 256
    cfg = AppearanceConfig(p_hair=1.0)
    # the same draws with and without hair (the face is painted in both: it draws nothing)
    bald, d0 = make_texture(tmaps, np.random.default_rng(4), size, AppearanceConfig(p_hair=0.0))
    hairy, d1 = make_texture(tmaps, np.random.default_rng(4), size, cfg)
    assert d0["hair"] is None and d1["hair"] is not None
    raster = tmaps.raster(size)
    vert = np.asarray(topo.render_vertex_index)[np.asarray(topo.faces)[raster.triangle]]  # (S, S, 3)
    changed = np.abs(hairy.astype(int) - bald.astype(int)).max(-1) > 0
    on_crown = crown[vert].all(-1) & raster.on_island
    on_eyes = eyes[vert].all(-1) & raster.on_island
    assert changed[on_crown].mean() > 0.9
    assert not changed[on_eyes].any()


def test_face_has_eyes_brows_and_mouth_on_the_face_and_hair_is_soft(anny_body):
    """With the rest-pose maps the face is painted: brows and a mouth darker than the cheeks
    between them, all on the front of the head; the hair is blended in over a soft hairline
    (many partial texels), not one solid colour."""
    from syrip_gen.render.looks.appearance import AppearanceConfig, make_texture
    from syrip_gen.render.looks.face_hair import face_maps, scalp_indicator
    from syrip_gen.render.looks.uv import TopologyMaps

    topo, rest = rest_body(anny_body)
    maps = face_maps(topo, rest)
    names = list(topo.part_names)
    part = np.asarray(topo.part_of_vertex)
    head = part == names.index("head")
    assert maps.shape == (len(rest), 5) and (maps >= 0).all() and (maps <= 1).all()
    brow, lid, mouth, pupil, iris = maps.T
    eyes_y = rest[np.isin(part, [names.index("eye.L"), names.index("eye.R")]), 1].mean()
    assert (brow > 0.5).sum() > 4 and (mouth > 0.5).sum() > 4 and (pupil > 0.5).sum() > 2
    assert rest[brow > 0.5, 1].min() > eyes_y and rest[mouth > 0.5, 1].max() < eyes_y  # brows up, mouth down
    assert head[(brow > 0.5) | (mouth > 0.5)].all()

    size = 256
    scalp = scalp_indicator(topo, rest)
    cfg = AppearanceConfig(p_hair=1.0, outfits=("none",), outfit_weights=(1.0,))
    tmaps = TopologyMaps(topo, rest)
    tex, desc = make_texture(tmaps, np.random.default_rng(5), size, cfg)
    assert desc["face"] == "painted"
    raster = tmaps.raster(size)
    corner = maps[np.asarray(topo.render_vertex_index)][np.asarray(topo.faces)[raster.triangle]]
    m = np.einsum("ijkc,ijk->ijc", corner, raster.bary) * raster.on_island[..., None]
    grey = tex.astype(float).mean(-1)
    vert = np.asarray(topo.render_vertex_index)[np.asarray(topo.faces)[raster.triangle]]
    cheek_maps = maps[vert].max(-1).max(-1) < 0.01
    cheek = head[vert].all(-1) & raster.on_island & cheek_maps & (scalp[vert].max(-1) < -0.2)
    def top(k, n=12):  # the n texels where feature k is strongest
        return m[..., k] >= np.sort(m[..., k].ravel())[-n]

    assert grey[top(2, 30)].mean() < grey[cheek].mean() - 10  # lips darker than cheeks
    assert grey[top(0, 30)].mean() < grey[cheek].mean() - 10  # brows too
    # soft hair: a band of partly covered texels between skin and full hair
    hair = np.asarray(desc["hair"]["colour"], float)
    skin = np.asarray(desc["skin_rgb"], float)
    on_head = head[vert].all(-1) & raster.on_island & (scalp[vert].min(-1) > -0.3)
    t = np.clip(((tex[on_head].astype(float) - skin) @ (hair - skin)) / max((hair - skin) @ (hair - skin), 1e-6), 0, 1)
    assert ((t > 0.15) & (t < 0.85)).mean() > 0.05


def test_make_texture_does_not_depend_on_call_order(anny_body):
    """Scalp and face maps come from the rest pose kept on the TopologyMaps, not from a side
    effect of an earlier ``scalp_indicator`` call: a texture made first thing for a new
    topology object has its face and hair, and equals one made after both maps were computed."""
    import dataclasses

    from syrip_gen.render.looks.appearance import AppearanceConfig, make_texture
    from syrip_gen.render.looks.face_hair import face_features, face_maps, scalp_indicator, scalp_map
    from syrip_gen.render.looks.uv import TopologyMaps

    topo, rest = rest_body(anny_body)
    cfg = AppearanceConfig(p_hair=1.0)
    first, d_first = make_texture(TopologyMaps(dataclasses.replace(topo), rest), np.random.default_rng(3), 128, cfg)
    assert d_first["face"] == "painted" and d_first["hair"] is not None
    other = dataclasses.replace(topo)
    scalp_indicator(other, rest), face_maps(other, rest)
    maps = TopologyMaps(other, rest)
    assert scalp_map(maps) is not None and face_features(maps) is not None
    after, d_after = make_texture(maps, np.random.default_rng(3), 128, cfg)
    assert first.tobytes() == after.tobytes() and d_first == d_after
    bare, d_bare = make_texture(TopologyMaps(other), np.random.default_rng(3), 128, cfg)  # no rest pose
    assert "face" not in d_bare and "hair" not in d_bare
