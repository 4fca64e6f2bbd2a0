"""Views and poses near the real ones: the photo's own camera, another photo's camera of the same
posture, pose blends between fits of one posture; with every share 0, variants are drawn as before.

Issue 26."""
from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from test_render_data import NOMOVE, H, W, fit_infos  # noqa: F401  (module fixture)

from syrip_gen.render.world.sources import posture_pool
from syrip_gen.render.world.variants import blend_rotations, sample_variants


def test_own_view_is_the_photo_camera(anny_body, fit_infos):  # noqa: F811
    cfg = replace(NOMOVE, own_view_share=1.0, own_view_jitter_deg=0.0, mirror_prob=0.0)
    s = sample_variants([(f, 0) for f in fit_infos], anny_body, cfg, 3, W, H, pool=posture_pool(fit_infos))
    assert len(s.specs) == len(fit_infos)
    for spec in s.specs:
        assert spec.view == "own" and spec.view_from == fit_infos[spec.fit_index].id
        # the camera sees the body as the photo's camera did: R_cam . R_world = R_photo (diag(1,-1,-1))
        assert np.allclose(spec.camera.R @ np.array(spec.bodies[0].world_rotation), np.diag([1.0, -1.0, -1.0]), atol=1e-9)
        assert spec.to_json()["view"] == "own"


def test_mirrored_own_view_is_the_mirror_image(anny_body, fit_infos):  # noqa: F811
    cfg = replace(NOMOVE, own_view_share=1.0, own_view_jitter_deg=0.0, mirror_prob=1.0)
    spec = sample_variants([(fit_infos[0], 0)], anny_body, cfg, 3, W, H).specs[0]
    flip = np.diag([-1.0, 1.0, 1.0])
    assert spec.bodies[0].mirror and np.allclose(flip @ spec.camera.R @ flip @ np.array(spec.bodies[0].world_rotation),
                                       np.diag([1.0, -1.0, -1.0]), atol=1e-9)


def test_posture_view_borrows_a_camera_of_the_same_posture(anny_body, fit_infos):  # noqa: F811
    pool = posture_pool(fit_infos)
    cfg = replace(NOMOVE, posture_view_share=1.0, posture_view_jitter_deg=0.0, mirror_prob=0.0)
    jobs = [(fit_infos[0], v) for v in range(4)]
    for spec in sample_variants(jobs, anny_body, cfg, 3, W, H, pool=pool).specs:
        source = next(f for f in fit_infos if f.id == spec.view_from)
        assert spec.view == "posture" and source.posture == fit_infos[0].posture
        assert np.allclose(spec.camera.R, source.camera, atol=1e-9)  # same camera in the canonical world
        assert np.allclose(np.array(spec.bodies[0].world_rotation), fit_infos[0].canonical, atol=1e-9)
    # jitter turns the camera by about the asked angle
    jit = replace(cfg, posture_view_jitter_deg=10.0)
    spec = sample_variants(jobs[:1], anny_body, jit, 3, W, H, pool=pool).specs[0]
    source = next(f for f in fit_infos if f.id == spec.view_from)
    angle = np.degrees(Rotation.from_matrix(spec.camera.R @ source.camera.T).magnitude())
    assert 0.5 < angle < 60


def test_without_a_pool_or_shares_views_are_drawn(anny_body, fit_infos):  # noqa: F811
    spec = sample_variants([(fit_infos[0], 0)], anny_body, NOMOVE, 3, W, H).specs[0]
    assert spec.view == "drawn" and spec.bodies[0].blend is None
    assert not {"view", "view_from", "blend"} & set(spec.to_json())  # records as before these existed
    spec = sample_variants([(fit_infos[0], 0)], anny_body, replace(NOMOVE, posture_view_share=1.0), 3, W, H).specs[0]
    assert spec.view == "drawn"  # no pool: nothing to borrow from


def test_blend_rotations():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.5, (5, 3)), rng.normal(0, 0.5, (5, 3))
    assert np.allclose(blend_rotations(a, b, 0.0), a) and np.allclose(
        Rotation.from_rotvec(blend_rotations(a, b, 1.0)).as_matrix(), Rotation.from_rotvec(b).as_matrix())
    half = Rotation.from_rotvec(blend_rotations(a, b, 0.5))
    ra, rb = Rotation.from_rotvec(a), Rotation.from_rotvec(b)
    assert np.allclose((ra.inv() * half).magnitude(), (half.inv() * rb).magnitude())


def test_blend_is_recorded(anny_body, fit_infos):  # noqa: F811
    cfg = replace(NOMOVE, blend_share=1.0, blend_weight=(0.3, 0.3))
    pool = {fit_infos[0].posture: list(fit_infos)}  # both fits as one posture's pool
    specs = sample_variants([(fit_infos[0], v) for v in range(6)], anny_body, cfg, 3, W, H, pool=pool).specs
    blends = [s.bodies[0].blend for s in specs]
    assert all(b is not None and b["weight"] == pytest.approx(0.3) for b in blends)
    other = [s.bodies[0] for s in specs if s.bodies[0].blend["fit_id"] != fit_infos[0].id]
    assert other and all(not np.allclose(np.array(s.pose)[1:], fit_infos[0].pose[1:]) for s in other)
