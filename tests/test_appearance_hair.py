"""Procedural hair: it grows on the scalp (crown and back of the head), never on the face."""
from __future__ import annotations

import numpy as np
import torch


def test_hair_covers_the_scalp_not_the_face(anny_body):
    from syrip_gen.render.appearance import AppearanceConfig, make_texture, scalp_indicator, uv_raster

    topo = anny_body.topology()
    with torch.no_grad():
        rest = anny_body(torch.zeros(1, 24, 3), anny_body.shape_mean[None], with_vertices=True).vertices[0].double().numpy()
    scalp = scalp_indicator(topo, rest)
    names = list(topo.part_names)
    part = np.asarray(topo.part_of_vertex)
    head = part == names.index("head")
    eyes = np.isin(part, [names.index("eye.L"), names.index("eye.R")])
    crown = head & (rest[:, 1] > rest[head, 1].max() - 0.01)
    assert (scalp[crown] > 0.3).all() and (scalp[eyes] < 0).all() and (scalp[~head] < 0).all()

    size = 256
    cfg = AppearanceConfig(p_hair=1.0)
    bald, d0 = make_texture(topo, np.random.default_rng(4), size, cfg)
    hairy, d1 = make_texture(topo, np.random.default_rng(4), size, cfg, scalp=scalp)
    assert "hair" not in d0 and d1["hair"] is not None
    raster = uv_raster(topo, size)
    vert = np.asarray(topo.render_vertex_index)[np.asarray(topo.faces)[raster.triangle]]  # (S, S, 3)
    changed = np.abs(hairy.astype(int) - bald.astype(int)).max(-1) > 0
    on_crown = crown[vert].all(-1) & raster.on_island
    on_eyes = eyes[vert].all(-1) & raster.on_island
    assert changed[on_crown].mean() > 0.9
    assert not changed[on_eyes].any()
