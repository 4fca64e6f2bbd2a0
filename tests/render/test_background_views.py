"""Backgrounds that fit the camera's view (floors from above, rooms from the side), photo
supports that reach the frame's edges, and the studio backdrop (render/looks/background.py).

Issue 26."""
import cv2
import numpy as np
import pytest

from syrip_gen.geometry import Camera, camera_elevation
from syrip_gen.render.looks import background as bg
from syrip_gen.render.looks.photo_stats import perspective


def _look(elevation_deg: float) -> Camera:
    """A camera 1 m from the origin looking at it from ``elevation_deg`` above the horizon."""
    e = np.radians(elevation_deg)
    forward = np.array([0.0, -np.sin(e), np.cos(e)])  # world y up
    right = np.array([1.0, 0.0, 0.0])
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])  # rows: camera x (right), y (down), z (forward)
    centre = -forward
    K = np.array([[200.0, 0, 80], [0, 200.0, 60], [0, 0, 1]])
    return Camera(K=K, R=R, t=-R @ centre, width=160, height=120)


def test_camera_elevation_and_the_perspectives_that_fit():
    for e in (0.0, 20.0, 45.0, 80.0):
        assert abs(camera_elevation(_look(e).R) - e) < 1e-6
    assert bg.perspectives_for_view(80) == ("floor",)
    assert bg.perspectives_for_view(10) == ("room",)
    assert set(bg.perspectives_for_view(40)) == {"floor", "room"}
    index = {"a.jpg": "floor", "b.jpg": "room", "c.jpg": "any"}
    assert bg.backgrounds_for_view(85, index) == ["a.jpg", "c.jpg"]
    assert bg.backgrounds_for_view(5, index) == ["b.jpg", "c.jpg"]
    rng = np.random.default_rng(0)
    top = {bg.procedural_kind_for_view(85, rng, studio_share=0.0) for _ in range(40)}
    low = {bg.procedural_kind_for_view(5, rng, studio_share=0.0) for _ in range(40)}
    assert "room" not in top and "shapes" not in top and "fabric" not in low and "room" in low
    shares = [bg.procedural_kind_for_view(60, rng, studio_share=0.25) == "studio" for _ in range(400)]
    assert 0.18 < np.mean(shares) < 0.32


def test_perspective_tells_procedural_rooms_from_supports():
    """Support textures (floors seen from above) are never called rooms; most procedural room
    backgrounds (wall over floor) are."""
    floors = [bg.support_texture(k, np.random.default_rng(i), 256)[0] for k in bg.SUPPORT_TILE_M for i in range(6)]
    assert all(perspective(np.ascontiguousarray(t[..., ::-1])).kind == "floor" for t in floors)
    rooms = [bg.procedural_background(320, 240, np.random.default_rng(i), "room")[0] for i in range(12)]
    assert np.mean([perspective(np.ascontiguousarray(r[..., ::-1])).kind == "room" for r in rooms]) >= 0.6


def test_folder_samples_only_backgrounds_that_fit_the_view(tmp_path):
    room = bg.procedural_background(320, 240, np.random.default_rng(3), "room")[0]
    floor = bg.support_texture("rug", np.random.default_rng(0), 256)[0]
    assert perspective(np.ascontiguousarray(room[..., ::-1])).kind == "room"
    cv2.imwrite(str(tmp_path / "room.png"), room[..., ::-1])
    cv2.imwrite(str(tmp_path / "floor.png"), floor[..., ::-1])
    folder = bg.BackgroundFolder(tmp_path)
    rng = np.random.default_rng(0)
    assert {folder.sample(80, 60, rng, ("floor",))[1]["file"] for _ in range(8)} == {"floor.png"}
    assert {folder.sample(80, 60, rng, ("room",))[1]["file"] for _ in range(8)} == {"room.png"}
    assert {folder.sample(80, 60, rng)[1]["file"] for _ in range(16)} == {"floor.png", "room.png"}
    (tmp_path / "floor.png").unlink()
    img, desc = bg.BackgroundFolder(tmp_path).sample(80, 60, rng, ("floor",))
    assert img is None and desc["kind"] == "none fits"


def test_mirror_tiled_repeats_without_seams():
    img = np.random.default_rng(0).integers(0, 255, (8, 10, 3), dtype=np.uint8)
    t = bg.mirror_tiled(img)
    assert t.shape == (16, 20, 3)
    # wrapping around (as the support's texture does) meets the same pixel: no seam anywhere
    assert (t[:, 0] == t[:, -1]).all() and (t[0] == t[-1]).all()
    assert (t[:, 9] == t[:, 10]).all() and (t[7] == t[8]).all()


def test_studio_background_is_near_white_and_plain():
    from syrip_gen.render.looks.photo_stats import is_studio

    for i in range(4):
        img, desc = bg.procedural_background(160, 120, np.random.default_rng(i), "studio")
        assert desc["kind"] == "studio" and img.mean() > 200 and is_studio(img)
    with pytest.raises(Exception, match="unknown background kind"):
        bg.procedural_background(16, 12, np.random.default_rng(0), "nope")
