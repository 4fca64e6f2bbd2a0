"""The embedded Anny infant: growth-chart lengths, head proportion, gradients, fast keypoints,
and the common pose-space mapping.

Issue 2."""
import math

import pytest
import torch

from syrip_gen.body.anthropometry import body_length, head_height
from syrip_gen.body.pose_space import JOINT

COCO = {n: i for i, n in enumerate(["nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"])}


def t_pose(body, months):
    shape = body.shape_for_age(torch.tensor(months, dtype=torch.float32))
    return body(torch.zeros(len(months), 24, 3), shape, with_vertices=True)


def test_lengths_match_growth_chart_medians(anny_body):
    out = t_pose(anny_body, [0.0, 6.0, 12.0])
    lengths = body_length(out.vertices)
    for got, want in zip(lengths.tolist(), [0.50, 0.67, 0.75]):
        assert abs(got - want) <= 0.05, (got, want)
    assert lengths[0] < lengths[1] < lengths[2]


def test_head_is_a_quarter_of_length(anny_body):
    out = t_pose(anny_body, [0.0, 6.0, 12.0])
    ratio = head_height(out.vertices, out.keypoints) / body_length(out.vertices)
    assert torch.all((ratio >= 0.23) & (ratio <= 0.27)), ratio


def test_age_months_round_trip(anny_body):
    months = torch.tensor([0.0, 3.0, 6.0, 9.0, 12.0])
    assert torch.allclose(anny_body.age_months(anny_body.shape_for_age(months)), months, atol=1e-4)


def test_output_shapes_and_dtypes(anny_body):
    out = t_pose(anny_body, [6.0, 6.0])
    assert out.keypoints.shape == (2, 17, 3) and out.keypoints.dtype == torch.float32
    assert out.joints.shape == (2, 24, 3)
    assert out.vertices.shape[0] == 2 and out.vertices.shape[2] == 3
    assert torch.allclose(out.joints[:, 0], torch.zeros(2, 3), atol=1e-6)  # pelvis at origin


def test_keypoints_only_equals_full_mesh_regression(anny_body):
    import anny

    g = torch.Generator().manual_seed(0)
    pose = 0.4 * torch.randn(4, 24, 3, generator=g)
    shape = anny_body.shape_for_age(torch.tensor([0.0, 4.0, 8.0, 12.0]))
    shape[:, 2] = torch.rand(4, generator=g)
    fast = anny_body(pose, shape).keypoints
    full = anny_body(pose, shape, with_vertices=True).vertices
    reg = anny.KeypointsRegressor.coco(anny_body.anny).regression_weights[:17]
    slow = torch.einsum("kv,bvd->bkd", reg, full)
    assert (fast - slow).abs().max() < 1e-5


def test_gradients_reach_pose_and_shape(anny_body):
    pose = torch.zeros(2, 24, 3, requires_grad=True)
    shape = anny_body.shape_for_age(torch.tensor([3.0, 9.0])).requires_grad_(True)
    out = anny_body(pose, shape)
    (out.keypoints ** 2).sum().backward()
    assert pose.grad.abs().sum() > 0 and torch.isfinite(pose.grad).all()
    assert shape.grad[:, 0].abs().sum() > 0  # age changes keypoints


def test_zero_pose_is_t_pose(anny_body):
    k = t_pose(anny_body, [6.0]).keypoints[0]
    for side in ("left", "right"):
        shoulder, wrist = k[COCO[f"{side}_shoulder"]], k[COCO[f"{side}_wrist"]]
        arm = wrist - shoulder
        assert abs(arm[1]) < 0.25 * arm.norm() and abs(arm[2]) < 0.25 * arm.norm()
    assert k[COCO["left_wrist"], 0] > 0.1 and k[COCO["right_wrist"], 0] < -0.1  # x = body's left
    assert k[COCO["nose"], 2] > k[COCO["left_ear"], 2]  # facing +z


def _rotate(body, joint, rotvec):
    pose = torch.zeros(2, 24, 3)
    pose[1, JOINT[joint]] = torch.tensor(rotvec)
    shape = body.shape_for_age(torch.tensor([6.0, 6.0]))
    return body(pose, shape).keypoints


def test_knee_flexion_bends_shin_backwards(anny_body):
    k = _rotate(anny_body, "left_knee", [math.pi / 2, 0, 0])
    shin_rest = k[0, COCO["left_ankle"]] - k[0, COCO["left_knee"]]
    shin_bent = k[1, COCO["left_ankle"]] - k[1, COCO["left_knee"]]
    assert shin_rest[1] < -0.08  # hangs down
    assert shin_bent[2] < -0.08 and abs(shin_bent[1]) < 0.04  # now points backwards
    assert torch.allclose(k[0, COCO["right_ankle"]], k[1, COCO["right_ankle"]], atol=1e-6)


def test_hip_flexion_lifts_thigh_forward(anny_body):
    k = _rotate(anny_body, "right_hip", [-math.pi / 2, 0, 0])
    thigh = k[1, COCO["right_knee"]] - k[1, COCO["right_hip"]]
    assert thigh[2] > 0.08 and abs(thigh[1]) < 0.04


def test_elbow_flexion_bends_forearm_forward(anny_body):
    k = _rotate(anny_body, "left_elbow", [0, -math.pi / 2, 0])
    fore = k[1, COCO["left_wrist"]] - k[1, COCO["left_elbow"]]
    assert fore[2] > 0.05 and abs(fore[0]) < 0.03


def test_global_orientation_rotates_whole_body(anny_body):
    k = _rotate(anny_body, "pelvis", [-math.pi / 2, 0, 0])
    rest_up = k[0, COCO["nose"]]
    lying = k[1, COCO["nose"]]
    # Rx(-90°) maps +y (up) to -z, and +z (forward) to +y (facing up, supine)
    assert torch.allclose(lying, torch.stack([rest_up[0], rest_up[2], -rest_up[1]]), atol=1e-5)


def test_tabulated_coefficients_equal_annys_own(anny_body):
    g = torch.Generator().manual_seed(1)
    shape = anny_body.shape_lower + torch.rand(64, 5, generator=g) * (anny_body.shape_upper - anny_body.shape_lower)
    fast = anny_body._coefficients(shape)
    slow = anny_body._anny_coefficients(shape)
    assert fast.shape == slow.shape
    assert (fast - slow).abs().max() < 1e-5
