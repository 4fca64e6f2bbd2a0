"""Bodies rest on their support (issue 26): contact measures, settling tilt, contact shadow and
the filter's hovering / unbalanced gates."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_render_data import NOMOVE, H, W, fit_infos  # noqa: F401  (module fixture)

from syrip_gen.geometry import look_at, rotvec_to_matrix
from syrip_gen.render.world.contact import ContactConfig, contact_record, contact_shadow, settle
from syrip_gen.render.world.sources import posture_pool
from syrip_gen.render.world.variants import VariantConfig, sample_variants


def _slab(y: float, x0=-0.2, x1=0.2, z0=-0.1, z1=0.1, n=12) -> np.ndarray:
    xs, zs = np.meshgrid(np.linspace(x0, x1, n), np.linspace(z0, z1, n))
    return np.stack([xs.ravel(), np.full(xs.size, y), zs.ravel()], 1)


def test_a_slab_on_the_floor_rests_and_a_slab_on_one_post_does_not():
    flat = _slab(0.0)
    rec = contact_record(flat, np.ones(len(flat), bool), "supine")
    assert rec["gap_m"] == 0 and rec["margin_m"] > 0.05  # centre well inside the touching hull
    # the same slab 6 cm up on a post at its corner: the back hovers and the body would tip over
    post = np.array([[0.2, -0.06, 0.1], [0.19, -0.06, 0.1]])
    body = np.concatenate([flat, post])
    back = np.r_[np.ones(len(flat), bool), np.zeros(2, bool)]
    rec = contact_record(body, back, "supine")
    assert rec["gap_m"] == pytest.approx(0.06) and rec["margin_m"] < -0.1


def test_settle_tilts_a_propped_body_until_it_rests():
    body = np.concatenate([_slab(0.0), [[0.2, -0.03, 0.0]]])  # propped 3 cm on one side
    back = np.r_[np.ones(len(body) - 1, bool), False]
    cfg = ContactConfig(max_tilt_deg=30.0)
    tilt, angle = settle(body, back, cfg)
    assert 0 < angle <= 30.0 and np.allclose(tilt @ tilt.T, np.eye(3))
    rec = contact_record(body @ tilt.T, back, "supine")
    assert rec["gap_m"] <= cfg.tolerance and rec["margin_m"] >= 0
    # a body that rests is left alone; settling off leaves every body alone
    assert settle(_slab(0.0), np.ones(144, bool), cfg)[1] == 0.0
    assert settle(body, back, replace(cfg, settle=False))[1] == 0.0


def test_contact_shadow_darkens_the_support_under_a_touching_body_only():
    cam = look_at((0.0, 1.0, 0.01), (0.0, 0.0, 0.0), width=W, height=H, fov_deg=60.0)
    rgb = np.full((H, W, 3), 200, np.uint8)
    support = np.ones((H, W), bool)
    cfg = ContactConfig()
    low = contact_shadow(rgb, cam, 0.0, support, _slab(0.005, -0.05, 0.05, -0.05, 0.05), cfg)
    uv, _ = cam.project(np.array([[0.0, 0.0, 0.0]]))
    u, v = (int(round(x)) for x in uv[0])
    assert low[v, u].mean() < 200 * (1 - 0.5 * cfg.shadow)  # right under the body: dark
    assert low[2, 2].mean() > 195  # far away: untouched
    high = contact_shadow(rgb, cam, 0.0, support, _slab(0.6, -0.05, 0.05, -0.05, 0.05), cfg)
    assert high[v, u].mean() > 195  # a body far above casts no contact shadow
    none = contact_shadow(rgb, cam, 0.0, np.zeros((H, W), bool), _slab(0.005), cfg)
    assert (none == rgb).all()  # only the support's pixels change


def test_sampled_bodies_are_settled_consistently(anny_body, fit_infos):  # noqa: F811
    cfg = replace(NOMOVE, mirror_prob=0.0)
    s = sample_variants([(f, v) for f in fit_infos for v in range(3)], anny_body, cfg, 5, W, H)
    settled = sample_variants([(f, v) for f in fit_infos for v in range(3)], anny_body,
                              VariantConfig(pose_sigma=0.0, roll_deg=(0.0, 0.0), mirror_prob=0.0), 5, W, H)
    assert any(sp.bodies[0].contact["tilt_deg"] > 0 for sp in settled.specs)
    for spec, (verts,) in zip(settled.specs, settled.scene_vertices):
        sp = spec.bodies[0]
        # the recorded world pose redraws the settled body; its support is its lowest point
        out = anny_body(torch.tensor([sp.pose], dtype=torch.float32), torch.tensor([sp.shape], dtype=torch.float32),
                        with_vertices=True)
        assert np.abs(out.vertices[0].numpy() - verts).max() < 1e-4
        assert abs(spec.support.y - verts[:, 1].min()) < 1e-6
        assert set(sp.contact) == {"part", "gap_m", "margin_m", "tilt_deg"}
        assert sp.contact["tilt_deg"] <= 30.0 + 1e-6
    before = [sp.bodies[0].contact for sp in s.specs]
    after = [sp.bodies[0].contact for sp in settled.specs]
    bad = lambda c: max(c["gap_m"] - 0.01, 0) + max(-c["margin_m"], 0)  # noqa: E731
    assert sum(map(bad, after)) < sum(map(bad, before))


def test_a_photo_view_turns_with_the_settling_tilt(anny_body, fit_infos):  # noqa: F811
    cfg = VariantConfig(pose_sigma=0.0, roll_deg=(0.0, 0.0), mirror_prob=0.0, own_view_share=1.0,
                        own_view_jitter_deg=0.0)
    s = sample_variants([(f, 0) for f in fit_infos], anny_body, cfg, 3, W, H, pool=posture_pool(fit_infos))
    for spec in s.specs:
        # the camera still sees the body as the photo's camera did, tilted or not
        assert np.allclose(spec.camera.R @ np.array(spec.bodies[0].world_rotation), np.diag([1.0, -1.0, -1.0]), atol=1e-9)


def test_photo_views_take_the_photos_framing(anny_body, fit_infos):  # noqa: F811
    f = fit_infos[0]
    assert f.fill is not None and 0.05 < f.fill < 2 and 10 < f.fov < 120
    cfg = replace(NOMOVE, own_view_share=1.0, own_view_jitter_deg=0.0, photo_fill_jitter=0.0, mirror_prob=0.0,
                  photo_fill=(0.3, 0.6))
    spec = sample_variants([(f, 0) for f in fit_infos], anny_body, cfg, 3, W, H).specs[0]
    fov = np.degrees(2 * np.arctan(H / 2 / spec.camera.K[1, 1]))
    assert fov == pytest.approx(np.clip(f.fov, *cfg.photo_fov_deg), abs=1e-6)
    off = sample_variants([(f, 0)], anny_body, replace(cfg, photo_framing=False), 3, W, H).specs[0]
    assert not np.isclose(off.camera.K[1, 1], spec.camera.K[1, 1])


def test_filter_gates_hovering_and_unbalanced_renders(tmp_path, anny_body):
    from test_filter import planted_samples
    from helpers.filter_fixtures import write_dataset

    from syrip_gen.filter import FilterConfig, filter_dataset

    names, _, _, samples = planted_samples(anny_body)
    good = [s for n, s in zip(names, samples) if n.startswith("good")]
    root = write_dataset(tmp_path / "ds", good)
    path = next((tmp_path / "ds" / "annotations").glob("*.json"))
    coco = json.loads(path.read_text())
    contacts = [{"part": "supine", "gap_m": 0.0, "margin_m": 0.05, "tilt_deg": 0.0},
                {"part": "supine", "gap_m": 0.08, "margin_m": 0.02, "tilt_deg": 30.0},  # hovering
                {"part": "prone", "gap_m": 0.0, "margin_m": -0.09, "tilt_deg": 30.0},  # would tip over
                {"part": "sitting", "gap_m": 0.12, "margin_m": 0.01, "tilt_deg": 0.0}]  # seat not gated
    for ann, c in zip(coco["annotations"], contacts):
        ann["contact"] = c
    path.write_text(json.dumps(coco))
    report = filter_dataset(root, FilterConfig(gates=("hovering", "unbalanced")))
    why = {rec["image_id"]: [r["gate"] for r in rec["reasons"]] for rec in report.images}
    ids = [a["image_id"] for a in coco["annotations"]]
    assert [why[i] for i in ids] == [[], ["hovering"], ["unbalanced"], []]


def test_raise_camera_lifts_a_view_from_under_the_support():
    from syrip_gen.geometry import camera_elevation, raise_camera

    for el in (-40.0, -5.0, 3.0):
        R = look_at((0.0, np.sin(np.radians(el)), np.cos(np.radians(el))), (0.0, 0.0, 0.0), width=W, height=H).R
        assert camera_elevation(R) == pytest.approx(el, abs=1e-6)
        up = raise_camera(R, 10.0)
        assert camera_elevation(up) == pytest.approx(10.0, abs=1e-6) and np.allclose(up @ up.T, np.eye(3))
        assert np.allclose(up[0], R[0], atol=1e-9)  # a pitch: the right axis stays
    R = look_at((0.0, 1.0, 0.3), (0.0, 0.0, 0.0), width=W, height=H).R
    assert np.allclose(raise_camera(R, 10.0), R)  # already above: unchanged


def test_depth_of_field_keeps_the_body_sharp_and_softens_what_lies_far_behind():
    from syrip_gen.render.pixels.optics import depth_of_field

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (H, W, 3)).astype(np.uint8)
    mask = np.zeros((H, W), bool)
    mask[40:80, 60:100] = True
    depth = np.full((H, W), 1.0, np.float32)
    depth[:, :30] = 4.0  # far floor on the left
    depth[:, -20:] = 0.0  # background (infinity) on the right
    out = depth_of_field(rgb, depth, mask, sigma=2.0)
    assert (out[mask] == rgb[mask]).all()  # the body untouched
    assert np.abs(out[:, 35:50].astype(int) - rgb[:, 35:50]).mean() < 1.0  # as far as the body: sharp
    for far in (np.s_[:, :20], np.s_[:, -15:]):
        assert out[far].std() < 0.5 * rgb[far].std()  # far floor and background: blurred
    assert (depth_of_field(rgb, depth, mask, sigma=0.0) == rgb).all()
