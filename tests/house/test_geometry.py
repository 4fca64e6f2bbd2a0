"""One geometry (syrip_gen.geometry, syrip_gen.raster): every projection, its torch twin, the
rotations and the one mesh rasteriser agree with independent references on random cases.

Issue 24."""
import numpy as np
import pytest
import torch

from syrip_gen import geometry, raster


def random_cameras(rng, n):
    """``n`` random pinhole cameras (fx != fy, off-centre) and points in front of each."""
    K = geometry.intrinsics_matrix(rng.uniform(200, 2000, n), rng.uniform(200, 2000, n),
                                   rng.uniform(0, 640, n), rng.uniform(0, 480, n))
    R = geometry.rotvec_to_matrix(rng.normal(0, 1.5, (n, 3)))
    t = rng.normal(0, 0.3, (n, 3)) + [0, 0, 2.0]
    pts = rng.normal(0, 0.4, (n, 17, 3))
    return K, R, t, pts


def test_project_matches_opencv_on_random_cameras():
    import cv2

    rng = np.random.default_rng(0)
    K, R, t, pts = random_cameras(rng, 20)
    cam = np.einsum("nij,nkj->nki", R, pts) + t[:, None]
    batched = geometry.project(cam, K)  # one K per camera
    for i in range(20):
        ref, _ = cv2.projectPoints(pts[i], geometry.matrix_to_rotvec(R[i]), t[i], K[i], None)
        assert np.abs(batched[i] - ref[:, 0]).max() < 1e-6
        uv, z = geometry.Camera(K[i], R[i], t[i], 640, 480).project(pts[i])
        assert np.abs(uv - ref[:, 0]).max() < 1e-6 and np.abs(z - cam[i, :, 2]).max() < 1e-12


def test_the_fitters_torch_twin_agrees_including_the_depth_clamp():
    from syrip_gen.fit.camera import project as torch_project

    rng = np.random.default_rng(1)
    n = 12
    focal, centre = rng.uniform(300, 1500, n), rng.uniform(50, 600, (n, 2))
    cam = rng.normal(0, 0.5, (n, 17, 3)) + [0, 0, 0.3]  # some behind the camera: clamped at 1 cm
    assert (cam[..., 2] < 0.01).any()
    ours = geometry.project(cam, geometry.intrinsics_matrix(focal, focal, centre[:, 0], centre[:, 1]), min_depth=0.01)
    twin = torch_project(torch.from_numpy(cam), torch.from_numpy(focal), torch.from_numpy(centre)).numpy()
    assert np.abs(ours - twin).max() < 1e-9 * np.abs(ours).max()


def test_learned_keypoint_errors_project_through_geometry():
    from syrip_gen.body.keypoints import Samples, point_errors

    rng = np.random.default_rng(2)
    n = 6
    pts = rng.normal(0, 0.2, (n, 17, 3)) + [0, 0, 1.5]
    focal, centre = rng.uniform(300, 900, n), rng.uniform(100, 300, (n, 2))
    target = rng.uniform(0, 400, (n, 17, 2))
    weight = (rng.random((n, 17)) > 0.2).astype(float)
    diag = rng.uniform(100, 300, n)
    s = Samples(pts, np.zeros((n, 1, 3)), focal, centre, target, weight, diag)
    # reference: pinhole by hand, u = f x / z + c
    px = focal[:, None, None] * pts[..., :2] / pts[..., 2:] + centre[:, None]
    ref = np.linalg.norm(px - target, axis=-1) / diag[:, None]
    err = point_errors(s, pts)
    assert np.array_equal(np.isnan(err), weight == 0)
    assert np.nanmax(np.abs(err - np.where(weight > 0, ref, np.nan))) < 1e-9


def test_synthetic_pose_data_keypoints_are_the_projection_of_their_3d(tmp_path):
    import json

    from pose_models.synthetic import make_dataset

    root = make_dataset(tmp_path, n=4)
    data = json.loads((root / "annotations" / "person_keypoints_train_infant.json").read_text())
    K = {im["id"]: np.array(im["camera"]["K"]) for im in data["images"]}
    for a in data["annotations"]:
        kp = np.array(a["keypoints"]).reshape(17, 3)
        uv = geometry.project(np.array(a["keypoints_3d"]), K[a["image_id"]])
        seen = kp[:, 2] > 0
        assert np.abs(kp[seen, :2] - uv[seen]).max() < 1e-9


def test_lifter_views_project_through_a_pinhole_at_the_hips_distance():
    from pose_models.lifter import LHIP, RHIP, random_view
    from pose_models.synthetic import TEMPLATE

    kp3d = TEMPLATE + [0.1, 0.0, 1.3]
    uv, rel = random_view(kp3d, np.random.default_rng(0), focal=(800.0, 800.0), keep_original=1.0)
    d = np.linalg.norm(kp3d[[LHIP, RHIP]].mean(0))
    ref = 800.0 * rel[:, :2] / (rel[:, 2:] + d) + 500.0  # by hand
    assert np.abs(uv - ref).max() < 1e-9


# ---- rotations ---------------------------------------------------------------------------

def test_axis_rotations_are_right_handed_and_batched():
    assert np.allclose(geometry.rot_z(90) @ [1, 0, 0], [0, 1, 0])
    assert np.allclose(geometry.rot_y(90) @ [0, 0, 1], [1, 0, 0])
    assert np.allclose(geometry.axis_rotation(0, np.pi / 2) @ [0, 1, 0], [0, 0, 1])
    angles = np.linspace(-3, 3, 7)
    many = geometry.axis_rotation("y", angles)
    assert many.shape == (7, 3, 3)
    assert np.allclose(many[2], geometry.rot_y(np.degrees(angles[2])))


def test_look_at_rotation_looks_at_the_origin_from_yaw_and_elevation():
    rng = np.random.default_rng(3)
    for yaw, elev, roll in rng.uniform(-80, 80, (20, 3)):
        R = geometry.look_at_rotation(yaw, elev, roll)
        assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1)
        y, e = np.radians(yaw), np.radians(elev)
        eye = np.array([np.cos(e) * np.sin(y), np.sin(e), np.cos(e) * np.cos(y)])
        assert np.allclose(R[2], -eye)  # forward row: towards the origin
        if abs(roll) < 1e-9:
            assert abs(R[0, 1]) < 1e-12  # no roll: image right stays horizontal


@pytest.mark.parametrize("b", [[0.0, 1.0, 0.0], [0.3, -0.2, 0.9], [-1.0, 0.0, 0.0]])
def test_rotation_between_takes_a_onto_b(b):
    a = np.array([1.0, 0.0, 0.0])
    R = geometry.rotation_between(a, np.array(b))
    assert np.allclose(R @ a, np.array(b) / np.linalg.norm(b))
    assert np.allclose(R @ R.T, np.eye(3))


# ---- the rasteriser -----------------------------------------------------------------------

def square(x0, y0, x1, y1):
    """Two triangles of an axis-aligned square in pixel coordinates, ``(2, 3, 2)``."""
    return np.array([[[x0, y0], [x1, y0], [x1, y1]], [[x0, y0], [x1, y1], [x0, y1]]], np.float64)


def test_the_nearer_square_covers_the_farther_whatever_the_drawing_order():
    px = np.concatenate([square(2, 2, 12, 12), square(7, 7, 17, 17)])  # faces 0-1 and 2-3
    for depth in ([5.0, 5.0, 1.0, 1.0], [1.0, 1.0, 5.0, 5.0]):
        ids = raster.triangle_ids(px, np.array(depth), 20, 20)
        near = 1 if depth[2] > depth[0] else 3  # ids of the nearer square's faces
        overlap = ids[8:12, 8:12]
        assert ((overlap == near - 1) | (overlap == near)).all()
        assert (ids[3, 3] in (0, 1)) and (ids[15, 15] in (2, 3)) and ids[0, 19] == -1
    assert (raster.triangle_ids(px, np.ones(4), 20, 20, keep=np.array([1, 1, 0, 0], bool))[15, 15]) == -1


def test_paint_colours_the_drawn_triangles_only():
    ids = np.array([[-1, 0], [1, 1]], np.int32)
    img = raster.paint(ids, np.array([[10, 20, 30], [40, 50, 60]], np.uint8), np.full(3, 7, np.uint8))
    assert img.tolist() == [[[7, 7, 7], [10, 20, 30]], [[40, 50, 60], [40, 50, 60]]]


def test_zbuffer_of_a_tilted_plane_is_the_ray_plane_depth():
    W = H = 64
    K = geometry.intrinsics(W, H, 60)
    # a quad on the plane z = 2 + 0.5 x, spanning x, y in [-0.5, 0.5]
    xy = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    verts = np.concatenate([xy, 2 + 0.5 * xy[:, :1]], 1)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    depth = raster.zbuffer(verts, faces, K, W, H)
    rows, cols = np.nonzero(np.isfinite(depth))
    corners = geometry.project(verts, K)  # the drawn area is the projected quad's, to its rim
    x, y = corners[:, 0], corners[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))  # shoelace
    rim = np.linalg.norm(np.roll(corners, 1, 0) - corners, axis=1).sum()
    assert abs(len(rows) - area) < 0.5 * rim
    assert corners[:, 0].min() - 1 < cols.min() and cols.max() < corners[:, 0].max() + 1
    ray_x = (cols - K[0, 2]) / K[0, 0]
    z = 2 / (1 - 0.5 * ray_x)  # z = 2 + 0.5 x with x = ray_x z
    # rim pixels whose centre lies just off the quad keep to its depth span [1.75, 2.25]
    assert np.abs(depth[rows, cols] - np.clip(z, 1.75, 2.25)).max() < 1e-9
    behind = raster.zbuffer(verts * [1, 1, -1], faces, K, W, H)
    assert np.isinf(behind).all()
