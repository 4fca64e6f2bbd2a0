"""Rendering core: scene helpers, the renderer's output contract, appearance, backgrounds, sensor.

Issue 4."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from syrip_gen.errors import UserError
from syrip_gen.geometry import look_at
from syrip_gen.render.world.scene import BodyMesh, Light, Scene, Support, kelvin_to_rgb, vertex_normals

W, H = 320, 240


@pytest.fixture(scope="module")
def supine(anny_body):
    """A 6-month-old lying on its back (face up, head towards -z), lowest point at y = 0."""
    pose = torch.zeros(1, 24, 3)
    pose[:, 0] = torch.tensor([-np.pi / 2, 0.0, 0.0])
    out = anny_body(pose, anny_body.shape_for_age(torch.tensor([6.0])), with_vertices=True)
    v = out.vertices[0].detach().numpy()
    lift = -v[:, 1].min()
    v = v + np.float32([0, lift, 0])
    joints = out.joints[0].detach().numpy() + np.float32([0, lift, 0])
    return v.astype(np.float32), joints, anny_body.topology()


@pytest.fixture(scope="module")
def renderer(supine):
    from syrip_gen.render.pixels.renderer import Renderer

    return Renderer(W, H, supine[2])


def _skin(value=(220, 180, 150), size=64):
    tex = np.empty((size, size, 3), np.uint8)
    tex[:] = value
    return tex


def _scene(v, support=True, texture=None, background=None, shadows=False, camera=None):
    cam = camera or look_at((0.0, 1.0, 0.3), (0.0, 0.0, 0.0), width=W, height=H)
    sup = None
    if support:
        floor = np.zeros((32, 32, 3), np.uint8)
        floor[:] = (90, 140, 200)
        sup = Support("mattress", -0.001, (1.5, 1.5), floor, tile=0.3)
    lights = (Light("directional", kelvin_to_rgb(5500), 3.0, direction=(0.2, -1.0, 0.1)),
              Light("point", kelvin_to_rgb(3200), 2.0, position=(0.4, 1.2, 0.4)))
    return Scene(bodies=(BodyMesh(v, _skin() if texture is None else texture),), camera=cam, support=sup,
                 lights=lights, background=background, shadows=shadows)


# ---- scene helpers ---------------------------------------------------------------------------

def test_look_at_projects_target_to_centre_and_up_is_up():
    cam = look_at((0.0, 0.0, 2.0), (0.0, 0.0, 0.0), width=W, height=H)
    uv, z = cam.project(np.array([[0.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.5, 0.0, 0.0]]))
    np.testing.assert_allclose(uv[0], [(W - 1) / 2, (H - 1) / 2], atol=1e-9)
    np.testing.assert_allclose(z[0], 2.0)
    assert uv[1, 1] < uv[0, 1]  # world up is image up
    assert uv[2, 0] > uv[0, 0]  # world +x is image right, seen from +z
    np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
    # straight down: head (-z) at the top of the image
    top = look_at((0.0, 1.0, 0.0), (0.0, 0.0, 0.0), width=W, height=H)
    uv, _ = top.project(np.array([[0.0, 0.0, -0.2], [0.0, 0.0, 0.2]]))
    assert uv[0, 1] < uv[1, 1]


def test_kelvin_to_rgb_warm_to_cool():
    warm, day, cool = kelvin_to_rgb(2700), kelvin_to_rgb(6500), kelvin_to_rgb(10000)
    assert warm.shape == (3,) and warm.dtype == np.float32
    assert warm[0] > warm[2] and cool[2] > cool[0]
    assert np.ptp(day) < 0.1 and day.max() == pytest.approx(1.0)


def test_vertex_normals_of_a_box_point_outwards():
    import trimesh

    box = trimesh.creation.box()
    n = vertex_normals(box.vertices, box.faces)
    assert n.shape == (8, 3) and n.dtype == np.float32
    assert np.all(np.sum(n * box.vertices, axis=1) > 0)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-6)


def test_light_needs_its_vector():
    with pytest.raises(ValueError):
        Light("point", (1, 1, 1), 1.0, direction=(0, -1, 0))
    with pytest.raises(ValueError):
        Light("spot", (1, 1, 1), 1.0, direction=(0, -1, 0))


# ---- renderer contract -----------------------------------------------------------------------

def test_render_contract_and_mask_where_the_body_is(renderer, supine):
    v, joints, topo = supine
    scene = _scene(v)
    res = renderer.render(scene, parts=True)
    assert res.rgb.shape == (H, W, 3) and res.rgb.dtype == np.uint8
    for name in ("depth", "body_depth"):
        arr = getattr(res, name)
        assert arr.shape == (H, W) and arr.dtype == np.float32
    assert res.mask.shape == (H, W) and res.mask.dtype == bool
    assert res.parts.shape == (H, W) and res.parts.dtype == np.int16
    # the support fills the frame, so depth is everywhere; the body is a blob in the middle
    assert (res.depth > 0).all()
    assert 0.03 < res.mask.mean() < 0.5
    u, vv = scene.camera.project(joints[:1])[0][0]
    assert res.mask[int(round(vv)), int(round(u))]  # pelvis
    assert not res.mask[2, 2] and not res.mask[H - 3, W - 3]  # corners: mattress
    assert np.all(res.body_depth[~res.mask] == 0)
    # parts: every body pixel has one, none elsewhere; the head is the head
    assert np.all(res.parts[res.mask] >= 0) and np.all(res.parts[~res.mask] == -1)
    head = scene.camera.project(joints[15:16])[0][0]
    assert topo.part_names[res.parts[int(round(head[1])), int(round(head[0]))]] in ("head", "neck01", "neck02", "neck03")


def test_body_depth_is_the_camera_z_of_front_vertices(renderer, supine):
    v, _, topo = supine
    scene = _scene(v)
    res = renderer.render(scene)
    uv, z = scene.camera.project(v)
    # the nearest vertices facing the camera cannot be hidden (nor sit on a silhouette)
    to_cam = -scene.camera.R.T @ scene.camera.t - v
    to_cam /= np.linalg.norm(to_cam, axis=1, keepdims=True)
    facing = np.sum(vertex_normals(v, topo.body_faces) * to_cam, axis=1) > 0.8
    front = np.nonzero(facing)[0][np.argsort(z[facing])[:200]]
    cols, rows = np.round(uv[front]).astype(int).T
    err = np.abs(res.body_depth[rows, cols] - z[front])
    assert np.all(res.mask[rows, cols])
    assert np.median(err) < 2e-3 and err.max() < 1e-2


def test_mask_with_support_equals_body_alone(renderer, supine):
    """The one-pass mask (support told apart analytically) matches the body rendered alone."""
    v, _, _ = supine
    with_support = renderer.render(_scene(v))
    alone = renderer.render(_scene(v, support=False))
    assert (alone.mask == (alone.depth > 0)).all()
    differ = with_support.mask != alone.mask
    assert differ.sum() <= 0.01 * alone.mask.sum()
    both = with_support.mask & alone.mask
    np.testing.assert_allclose(with_support.body_depth[both], alone.body_depth[both], atol=1e-4)


def test_second_pass_fallback_when_the_support_cuts_the_body(renderer, supine):
    """Support raised to mid-body: it hides the lower half, the body depth still has it."""
    v, _, _ = supine
    scene = _scene(v)
    mid = float(np.median(v[:, 1]))
    raised = Support("blanket", mid, (1.5, 1.5), scene.support.texture)
    res = renderer.render(Scene(bodies=(BodyMesh(v, scene.bodies[0].texture),), camera=scene.camera, support=raised,
                                lights=scene.lights))
    body = res.body_depth > 0
    assert res.mask.any() and (res.mask & ~body).sum() == 0
    assert res.mask.sum() < 0.9 * body.sum()
    np.testing.assert_allclose(res.depth[res.mask], res.body_depth[res.mask], atol=1e-3)


def test_moving_vertices_updates_the_gpu_buffer(renderer, supine):
    v, _, _ = supine
    first = renderer.render(_scene(v))
    shifted = renderer.render(_scene(v + np.float32([0.1, 0.0, 0.0])))
    cam = _scene(v).camera
    expected = cam.K[0, 0] * 0.1 / np.mean(first.body_depth[first.mask])
    moved = np.nonzero(shifted.mask)[1].mean() - np.nonzero(first.mask)[1].mean()
    assert moved == pytest.approx(expected, rel=0.15)
    again = renderer.render(_scene(v.copy()))
    assert (again.mask == first.mask).all()
    np.testing.assert_array_equal(again.rgb, first.rgb)


def test_texture_swap_and_background_fill(renderer, supine):
    v, _, _ = supine
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    red = renderer.render(_scene(v, support=False, texture=_skin((230, 40, 40)), background=background))
    blue = renderer.render(_scene(v, support=False, texture=_skin((40, 40, 230)), background=background))
    assert red.rgb[red.mask].mean(0)[0] > red.rgb[red.mask].mean(0)[2] + 40
    assert blue.rgb[blue.mask].mean(0)[2] > blue.rgb[blue.mask].mean(0)[0] + 40
    import cv2

    # nothing drawn within 2 px (edge pixels blend body and background: antialiasing)
    empty = cv2.dilate((red.depth > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
    assert empty.mean() > 0.5
    np.testing.assert_array_equal(red.rgb[empty], background[empty])
    # a background of another size is scaled to cover the frame
    small = np.zeros((60, 100, 3), np.uint8)
    small[:] = (10, 200, 30)
    res = renderer.render(_scene(v, support=False, background=small))
    assert (res.rgb[empty] == (10, 200, 30)).all()


def _shadowed_share(renderer, v) -> float:
    """Share of the support's pixels that shadows make clearly darker."""
    plain = renderer.render(_scene(v, shadows=False))
    shadowed = renderer.render(_scene(v, shadows=True))
    support = ~plain.mask
    darker = shadowed.rgb[support].astype(int).sum(1) < plain.rgb[support].astype(int).sum(1) - 30
    return float(darker.mean())


def test_shadows_darken_the_support_next_to_the_body(renderer, supine):
    v, _, _ = supine
    assert 0.005 < _shadowed_share(renderer, v) < 0.5


def test_egl_failure_is_one_line_user_error(monkeypatch, supine):
    from syrip_gen.render.pixels import gl
    from syrip_gen.render.pixels import renderer as r

    def broken(width, height):
        raise ImportError("Unable to load EGL library: libEGL.so.1: cannot open shared object file")

    monkeypatch.setattr(gl, "_GL", None)
    monkeypatch.setattr(gl, "_create_offscreen", broken)
    with pytest.raises(UserError) as err:
        r.Renderer(W, H, supine[2])
    msg = str(err.value)
    assert "\n" not in msg and "libegl1" in msg and "EGL" in msg and "NVIDIA" in msg


def test_render_body_views(supine):
    from syrip_gen.render.pixels.preview import render_body_views

    v, _, topo = supine
    img = render_body_views(v, topo, size=128, views=("front", "side", "top"))
    assert img.shape == (128, 384, 3) and img.dtype == np.uint8
    for i in range(3):
        panel = img[:, 128 * i:128 * (i + 1)]
        assert 0.02 < (panel.min(2) < 250).mean() < 0.9  # something drawn on white
    with pytest.raises(UserError):
        render_body_views(v, topo, views=("sideways",))


# ---- appearance ------------------------------------------------------------------------------

def test_make_texture_is_seeded_and_json_described(supine):
    import json

    from syrip_gen.render.looks.appearance import make_texture
    from syrip_gen.render.looks.uv import TopologyMaps

    maps = TopologyMaps(supine[2])
    a, desc_a = make_texture(maps, np.random.default_rng(7), 256)
    b, desc_b = make_texture(TopologyMaps(supine[2]), np.random.default_rng(7), 256)
    c, _ = make_texture(maps, np.random.default_rng(8), 256)
    assert a.shape == (256, 256, 3) and a.dtype == np.uint8
    assert a.tobytes() == b.tobytes() and desc_a == desc_b
    assert a.tobytes() != c.tobytes()
    json.dumps(desc_a, sort_keys=True)
    assert desc_a["outfit"] in ("none", "diaper", "onesie", "sleepsuit", "shirt_trousers")


def test_skin_tones_span_light_to_dark():
    from syrip_gen.render.looks.appearance import sample_skin

    rng = np.random.default_rng(0)
    lum = np.array([sample_skin(rng)[0].mean() for _ in range(200)])
    assert lum.min() < 90 and lum.max() > 200


def test_garment_masks_follow_body_parts(supine):
    from syrip_gen.render.looks.appearance import FEET, TORSO
    from syrip_gen.render.looks.uv import TopologyMaps, garment_mask

    topo = supine[2]
    maps = TopologyMaps(topo)
    raster = maps.raster(256)
    names = list(topo.part_names)
    corner_parts = np.asarray(topo.part_of_vertex)[np.asarray(topo.render_vertex_index)][np.asarray(topo.faces)]
    tri_part = corner_parts[raster.triangle]  # (S, S, 3)
    inside = raster.on_island
    for parts in (TORSO, FEET):
        ids = [names.index(p) for p in parts]
        core = inside & np.isin(tri_part, ids).all(-1)
        away = inside & ~np.isin(tri_part, ids).any(-1)
        mask = garment_mask(maps, 256, parts)
        assert mask[core].mean() > 0.9
        assert mask[away].mean() < 0.1


def test_texture_folder(tmp_path):
    import cv2

    from syrip_gen.render.looks.appearance import AppearanceConfig, TextureFolder, make_texture

    with pytest.raises(UserError):
        TextureFolder(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    folder = TextureFolder(tmp_path)
    with pytest.raises(UserError):
        folder.sample(np.random.default_rng(0), 64)
    assert folder.unreadable == {"broken.png": 1}
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., 2] = 255  # BGR red
    cv2.imwrite(str(tmp_path / "red.png"), img)
    folder = TextureFolder(tmp_path)
    for seed in range(4):
        tex, desc = folder.sample(np.random.default_rng(seed), 64)
        assert tex.shape == (64, 64, 3) and desc == {"kind": "file", "file": "red.png"}
        assert (tex[..., 0] == 255).all()  # RGB
    tex, desc = make_texture(None, np.random.default_rng(0), 64, AppearanceConfig(textures=str(tmp_path)))
    assert desc["file"] == "red.png"


# ---- backgrounds and supports ------------------------------------------------------------------

def test_procedural_backgrounds_and_support_textures_are_seeded():
    from syrip_gen.render.looks.background import BACKGROUND_KINDS, procedural_background, support_texture

    for kind in BACKGROUND_KINDS:
        a, desc = procedural_background(120, 90, np.random.default_rng(3), kind)
        b, _ = procedural_background(120, 90, np.random.default_rng(3), kind)
        assert a.shape == (90, 120, 3) and a.dtype == np.uint8 and desc["kind"] == kind
        assert a.tobytes() == b.tobytes() and a.std() > 1
    for kind in ("mattress", "blanket", "rug", "floor"):
        a, desc = support_texture(kind, np.random.default_rng(5), 128)
        b, _ = support_texture(kind, np.random.default_rng(5), 128)
        assert a.shape == (128, 128, 3) and a.tobytes() == b.tobytes()
        assert desc["kind"] == kind and desc["tile_m"] > 0
    with pytest.raises(UserError):
        support_texture("trampoline", np.random.default_rng(0))
    with pytest.raises(UserError):
        procedural_background(10, 10, np.random.default_rng(0), "space")


def test_periodic_noise_wraps():
    from syrip_gen.render.looks.background import _noise

    n = _noise(np.random.default_rng(0), 64, 64, 6, periodic=True)
    step = np.abs(np.diff(n, axis=1)).mean()
    assert np.abs(n[:, 0] - n[:, -1]).mean() < 2 * step
    assert np.abs(n[0] - n[-1]).mean() < 2 * np.abs(np.diff(n, axis=0)).mean()


def test_background_folder(tmp_path):
    import cv2

    from syrip_gen.render.looks.background import BackgroundFolder

    with pytest.raises(UserError):
        BackgroundFolder(tmp_path)
    (tmp_path / "a_broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(UserError):
        BackgroundFolder(tmp_path).sample(64, 48, np.random.default_rng(0))
    photo = np.zeros((300, 500, 3), np.uint8)
    photo[:, :250] = (255, 0, 0)  # BGR blue left half
    cv2.imwrite(str(tmp_path / "b_photo.png"), photo)
    folder = BackgroundFolder(tmp_path)
    blue_seen = False
    for seed in range(5):
        img, desc = folder.sample(64, 48, np.random.default_rng(seed))
        assert img.shape == (48, 64, 3) and desc["file"] == "b_photo.png"
        assert img[..., :2].max() == 0  # RGB order: the blue half has no red or green
        blue_seen |= bool(img[..., 2].max() > 200)
    assert blue_seen
    assert folder.unreadable == {"a_broken.jpg": 1}  # counted once, then skipped


# ---- sensor ------------------------------------------------------------------------------------

def test_sensor_effects():
    import cv2

    from syrip_gen.render.pixels import sensor

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(sensor.color_jitter(img), img)
    assert sensor.color_jitter(img, brightness=0.5).mean() < 0.6 * img.mean()
    grey = np.full((100, 100, 3), 128, np.uint8)
    noisy = sensor.gaussian_noise(grey, np.random.default_rng(1), 5.0)
    assert 4.5 < noisy.astype(float).std() < 5.5
    assert sensor.poisson_noise(grey, np.random.default_rng(1), 50.0).std() > sensor.poisson_noise(
        grey, np.random.default_rng(1), 5000.0).std()
    stripes = np.zeros((32, 32, 3), np.uint8)
    stripes[:, ::2] = 255
    blurred = sensor.motion_blur(stripes, 6, 0.0)
    assert blurred.std() < 0.3 * stripes.std() and abs(blurred.mean() - stripes.mean()) < 3
    assert sensor.motion_blur(stripes, 6, 90.0).std() > 0.9 * stripes.std()  # along the stripes
    a, da = sensor.apply_sensor(img, np.random.default_rng(9))
    b, db = sensor.apply_sensor(img, np.random.default_rng(9))
    assert a.tobytes() == b.tobytes() and da == db and 60 <= da["jpeg_quality"] <= 95
    decoded = cv2.imdecode(np.frombuffer(sensor.encode_jpeg(img, 90), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == img.shape


# ---- the support drawn without GL (analytic_support) ---------------------------------------------

@pytest.fixture(scope="module")
def analytic(supine):
    from syrip_gen.render.pixels.renderer import Renderer

    return Renderer(W, H, supine[2], analytic_support=True)


def _patterned_support(height=-0.001):
    from syrip_gen.render.looks.background import support_texture

    tex = np.zeros((64, 64, 3), np.uint8)  # asymmetric: a flipped or shifted mapping shows
    tex[..., 0] = np.arange(64)[None] * 4
    tex[..., 1] = np.arange(64)[:, None] * 4
    tex[:10, :20, 2] = 255
    return [Support("mattress", height, (2.0, 1.6), tex, center=(0.1, -0.2), tile=0.3),
            Support("blanket", height, (2.0, 1.6), support_texture("blanket", np.random.default_rng(3), 128)[0],
                    tile=0.5)]


@pytest.mark.parametrize("eye", [(0.0, 1.0, 0.3), (0.5, 0.6, 0.6), (0.9, 0.3, 0.7)])
def test_analytic_support_matches_the_gl_support(renderer, analytic, supine, eye):
    """Same scene, support shaded by GL vs by paint_support: same mask and depth, colours
    within a few grey levels (texture filtering differs: one mip level vs per-pixel)."""
    import cv2

    v, _, _ = supine
    cam = look_at(eye, (0.0, 0.05, 0.0), width=W, height=H, fov_deg=55)
    lights = (Light("directional", kelvin_to_rgb(5500), 2.5, direction=(0.2, -1.0, 0.1)),
              Light("directional", kelvin_to_rgb(8000), 1.0, direction=(-0.5, -0.4, -0.3)),
              Light("point", kelvin_to_rgb(3200), 1.5, position=(0.4, 1.2, 0.4)))
    for i, sup in enumerate(_patterned_support()):
        scene = Scene(bodies=(BodyMesh(v, _skin()),), camera=cam, support=sup, lights=lights,
                      ambient=(0.3, 0.3, 0.3), background=np.full((H, W, 3), (20, 220, 40), np.uint8))
        gl, flat = renderer.render(scene), analytic.render(scene)
        assert (gl.mask != flat.mask).sum() <= 0.03 * gl.mask.sum()  # GL: body within ~3 mm of the plane = plane
        np.testing.assert_allclose(flat.body_depth[flat.mask & gl.mask], gl.body_depth[flat.mask & gl.mask], atol=1e-4)
        on_support = (gl.depth > 0) & ~gl.mask
        np.testing.assert_allclose(flat.depth[on_support & ~flat.mask], gl.depth[on_support & ~flat.mask], rtol=1e-2)
        away = ~cv2.dilate(gl.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        diff = np.abs(gl.rgb.astype(int) - flat.rgb.astype(int))[away]
        assert diff.mean() < (0.5 if i == 0 else 1.5), diff.mean()  # smooth / noisy weave texture
        assert np.percentile(diff, 99) <= 12  # texture edges and tile seams
        # the body itself is GL's in both paths: identical pixels 2 px inside both masks (its
        # edge blends with the support under GL's multisampling, with the background when flat)
        inside = cv2.erode((gl.mask & flat.mask).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert inside.sum() > 0.5 * gl.mask.sum()
        np.testing.assert_array_equal(flat.rgb[inside], gl.rgb[inside])


def test_analytic_support_falls_back_to_gl_when_needed(analytic, supine):
    """Shadows, or a support cutting the body: GL draws the support (same as before)."""
    v, _, _ = supine
    assert 0.005 < _shadowed_share(analytic, v) < 0.5
    scene = _scene(v)
    raised = Support("blanket", float(np.median(v[:, 1])), (1.5, 1.5), scene.support.texture)
    res = analytic.render(Scene(bodies=(BodyMesh(v, scene.bodies[0].texture),), camera=scene.camera, support=raised,
                                lights=scene.lights))
    assert res.mask.sum() < 0.9 * (res.body_depth > 0).sum()


def test_support_covers_frame():
    from syrip_gen.render.pixels.support_paint import plane_depth, support_covers_frame

    tex = np.zeros((4, 4, 3), np.uint8)
    above = look_at((0.0, 1.0, 0.01), (0.0, 0.0, 0.0), width=W, height=H)
    grazing = look_at((0.0, 0.3, 1.0), (0.0, 0.2, 0.0), width=W, height=H)
    for cam in (above, grazing):
        for size in (0.3, 3.0, 50.0):
            sup = Support("rug", 0.0, (size, size), tex)
            assert support_covers_frame(cam, sup) == bool(plane_depth(cam, sup)[1].all())
    assert support_covers_frame(above, Support("rug", 0.0, (3.0, 3.0), tex))
    assert not support_covers_frame(grazing, Support("rug", 0.0, (50.0, 50.0), tex))  # horizon
