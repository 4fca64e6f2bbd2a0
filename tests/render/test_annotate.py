"""annotate.py: projection, visibility from depth, mask box / RLE (pure NumPy, no GL).

Issue 4."""
import numpy as np
from pycocotools import mask as mask_utils

from syrip_gen.annotate import body_length, depth_tolerance, encode_mask, keypoint_visibility
from syrip_gen.geometry import project, to_camera


def _disc_scene(H=60, W=80):
    """A body mask (disc) whose surface lies at 1.0 m."""
    yy, xx = np.mgrid[:H, :W]
    mask = (xx - 40) ** 2 + (yy - 30) ** 2 <= 15 ** 2
    depth = np.where(mask, 1.0, 0.0).astype(np.float32)
    return mask, depth


def test_visibility_codes():
    mask, depth = _disc_scene()
    uv = np.array([[40.0, 30.0], [40.2, 29.7], [70.0, 5.0], [-3.0, 10.0], [40.0, 30.0], [79.4, 59.4]])
    z = np.array([1.03, 0.99, 1.0, 1.0, 1.2, 1.0])
    v = keypoint_visibility(uv, z, mask, depth, tolerance=0.04)
    # inside within tolerance / in front: 2; off the mask: 1; outside: 0; far behind: 1
    assert v.tolist() == [2, 2, 1, 0, 1, 1]
    assert v.dtype == np.int64


def test_frame_edges_follow_pixel_centres():
    mask = np.ones((10, 10), bool)
    depth = np.ones((10, 10), np.float32)
    uv = np.array([[-0.49, 0.0], [-0.51, 0.0], [9.49, 9.49], [9.51, 0.0]])
    v = keypoint_visibility(uv, np.ones(4), mask, depth, 0.03)
    assert v.tolist() == [2, 0, 2, 0]


def test_bbox_and_rle_agree_with_pycocotools():
    rng = np.random.default_rng(0)
    mask = np.zeros((37, 51), bool)
    mask[5:20, 7:30] = True
    mask[rng.integers(0, 37, 20), rng.integers(0, 51, 20)] = True
    rle, box, area = encode_mask(mask)
    assert isinstance(rle["counts"], str)
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert np.array_equal(decoded.astype(bool), mask)
    ys, xs = np.nonzero(mask)
    assert box == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1] and area == mask.sum()
    assert encode_mask(np.zeros((4, 4), bool))[1:] == (None, 0.0)


def test_projection_matches_opencv():
    import cv2

    rng = np.random.default_rng(1)
    pts = rng.uniform(-0.3, 0.3, (17, 3)) + [0, 0, 1.5]
    K = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
    rvec = np.array([0.1, -0.2, 0.05])
    R = cv2.Rodrigues(rvec)[0]
    t = np.array([0.02, -0.01, 0.1])
    uv = project(to_camera(pts, R, t), K)
    ref, _ = cv2.projectPoints(pts, rvec, t, K, None)
    assert np.abs(uv - ref[:, 0]).max() < 1e-9
    batched = project(np.stack([to_camera(pts, R, t)] * 2), np.stack([K, 2 * K]))
    assert np.abs(batched[0] - uv).max() == 0 and batched.shape == (2, 17, 2)


def test_depth_tolerance_tied_to_body_size():
    kp = np.zeros((17, 3))
    kp[0] = [0, 0.3, 0]
    kp[5], kp[6] = [0.08, 0.2, 0], [-0.08, 0.2, 0]
    kp[11], kp[12] = [0.05, 0.0, 0], [-0.05, 0.0, 0]
    kp[13], kp[14] = [0.05, -0.15, 0], [-0.05, -0.15, 0]
    kp[15], kp[16] = [0.05, -0.3, 0], [-0.05, -0.3, 0]
    assert abs(body_length(kp) - 0.6) < 1e-9
    assert abs(depth_tolerance(kp) - 0.033) < 1e-9
    assert depth_tolerance(kp * 3) == 0.05 and depth_tolerance(kp * 0.1) == 0.03
