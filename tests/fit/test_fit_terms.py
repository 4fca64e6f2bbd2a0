"""Pure pieces of the fitter: robust loss, joint limits, hyperextension, penetration, the GMM
prior, the folded Anny kinematics, the camera guesses.

Issue 3."""
import math

import numpy as np
import pytest
import torch

from syrip_gen.body.pose_space import JOINT, flip_pose
from syrip_gen.errors import UserError
from syrip_gen.fit.limits import hyperextension, joint_limit_violation
from syrip_gen.fit.losses import geman_mcclure, robust_reprojection
from syrip_gen.fit.penetration import capsule_penetration, segment_distance
from syrip_gen.fit.prior import PosePrior, default_prior, fit_gmm


def test_geman_mcclure_quadratic_then_saturating():
    sigma = 0.05
    small = geman_mcclure(torch.tensor([0.001, 0.002]), sigma)
    assert small[1] / small[0] == pytest.approx(4.0, rel=1e-2)  # quadratic near 0
    assert geman_mcclure(torch.tensor(sigma), sigma) == pytest.approx(0.5)
    assert geman_mcclure(torch.tensor(100.0), sigma) < 1.0 and geman_mcclure(torch.tensor(100.0), sigma) > 0.99


def test_reprojection_is_scale_free():
    target = torch.rand(2, 17, 2) * 100
    pred = target + 3.0
    w = torch.ones(2, 17)
    a = robust_reprojection(pred, target, w, torch.tensor([100.0, 100.0]), 0.05)
    b = robust_reprojection(10 * pred, 10 * target, w, torch.tensor([1000.0, 1000.0]), 0.05)
    assert a.shape == (2,) and torch.allclose(a, b)


def _pose(**deg):
    p = torch.zeros(1, 24, 3)
    for key, val in deg.items():
        joint, comp = key.rsplit("_", 1)
        p[0, JOINT[joint], "xyz".index(comp)] = math.radians(val)
    return p


def test_hyperextended_knee_is_penalised_flexion_is_not():
    assert hyperextension(_pose(left_knee_x=60)).item() == 0.0
    assert joint_limit_violation(_pose(left_knee_x=60)).item() == 0.0
    bad = _pose(left_knee_x=-30)
    assert hyperextension(bad).item() == pytest.approx(math.radians(30), rel=1e-5)
    assert joint_limit_violation(bad).item() == pytest.approx(math.radians(25), rel=1e-4)
    # elbows: left flexes -y, right +y (mirror images)
    assert hyperextension(_pose(left_elbow_y=-90, right_elbow_y=90)).item() == 0.0
    assert hyperextension(_pose(left_elbow_y=20)).item() > 0.3
    assert hyperextension(_pose(right_elbow_y=-20)).item() > 0.3


def test_limits_are_mirror_symmetric_and_infant_wide():
    g = torch.Generator().manual_seed(0)
    pose = 0.8 * torch.randn(64, 24, 3, generator=g)
    assert torch.allclose(joint_limit_violation(pose), joint_limit_violation(flip_pose(pose)), atol=1e-5)
    assert torch.allclose(hyperextension(pose), hyperextension(flip_pose(pose)), atol=1e-6)
    # frog-legged infant: hips flexed 90, abducted 60, externally rotated 60: allowed
    frog = _pose(left_hip_x=-90, left_hip_z=60, left_hip_y=60, right_hip_x=-90, right_hip_z=-60, right_hip_y=-60)
    assert joint_limit_violation(frog).item() == 0.0
    assert joint_limit_violation(_pose(left_hip_x=40)).item() > 0  # hip hyper-extended 40 degrees


def test_segment_distance_closed_form():
    a0, a1 = torch.tensor([[0.0, 0, 0]]), torch.tensor([[1.0, 0, 0]])
    assert segment_distance(a0, a1, torch.tensor([[0.5, 1.0, 0]]), torch.tensor([[0.5, 2.0, 0]])).item() == pytest.approx(1.0)
    assert segment_distance(a0, a1, torch.tensor([[2.0, 0, 0]]), torch.tensor([[3.0, 0, 0]])).item() == pytest.approx(1.0)
    assert segment_distance(a0, a1, torch.tensor([[0.5, -1, 1]]), torch.tensor([[0.5, 1, 1]])).item() == pytest.approx(1.0)


def test_penetration_zero_at_rest_positive_when_limbs_cross(anny_body):
    shape = anny_body.shape_for_age(torch.tensor([6.0]))
    rest = anny_body(torch.zeros(1, 24, 3), shape).joints
    assert capsule_penetration(rest).item() == 0.0
    crossed = rest.clone()
    # put the left shin right through the right thigh
    mid = (crossed[:, JOINT["right_hip"]] + crossed[:, JOINT["right_knee"]]) / 2
    crossed[:, JOINT["left_ankle"]] = mid + torch.tensor([[-0.05, 0.0, 0.0]])
    crossed[:, JOINT["left_knee"]] = mid + torch.tensor([[0.08, 0.0, 0.0]])
    pen = capsule_penetration(crossed)
    assert pen.shape == (1,) and pen.item() > 0.02


def test_gmm_recovers_known_mixture():
    g = torch.Generator().manual_seed(1)
    means = torch.zeros(2, 24, 3)
    means[0, 1:] = 0.5
    means[1, 1:] = -0.5
    x = torch.cat([means[0] + 0.05 * torch.randn(300, 24, 3, generator=g),
                   means[1] + 0.05 * torch.randn(100, 24, 3, generator=g)])
    prior = fit_gmm(x, 2, seed=0, reg=1e-4)
    order = np.argsort(prior.weights)[::-1]
    assert prior.weights[order] == pytest.approx([0.75, 0.25], abs=0.01)
    assert np.abs(prior.means[order[0]] - 0.5).max() < 0.03
    assert np.abs(prior.means[order[1]] + 0.5).max() < 0.03
    var = np.diagonal(prior.covariances[order[0]]).mean()
    assert var == pytest.approx(0.05 ** 2 + 1e-4, rel=0.2)
    # a pose from the mixture is more likely than one far away
    nll = prior.nll(torch.stack([means[0], torch.zeros(24, 3)]))
    assert nll.shape == (2,) and nll[0] < nll[1]
    assert fit_gmm(x, 2, seed=0, reg=1e-4).means.tobytes() == prior.means.tobytes()  # seeded


def test_prior_save_load_sample(tmp_path):
    prior = default_prior()
    path = tmp_path / "p.npz"
    prior.save(path)
    again = PosePrior.load(path)
    g = torch.Generator().manual_seed(0)
    s = again.sample(5, g)
    assert s.shape == (5, 24, 3) and s.dtype == torch.float32 and torch.all(s[:, 0] == 0)
    assert torch.allclose(prior.nll(s), again.nll(s))
    assert torch.equal(again.sample(5, torch.Generator().manual_seed(0)), s)
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(UserError):
        PosePrior.load(tmp_path / "bad.npz")


def test_bundled_prior_prefers_infant_poses_over_nonsense():
    prior = default_prior()
    g = torch.Generator().manual_seed(0)
    good = prior.sample(50, g)
    nonsense = 1.2 * torch.randn(50, 24, 3, generator=g)
    assert prior.nll(good).median() < prior.nll(nonsense).median()
    assert (joint_limit_violation(good) < 0.2).float().mean() > 0.8


def test_folded_kinematics_match_exact_body(anny_body):
    from syrip_gen.fit.kinematics import FoldedAnny

    model = FoldedAnny(anny_body)
    g = torch.Generator().manual_seed(0)
    pose = 0.5 * torch.randn(6, 24, 3, generator=g)
    shape = anny_body.shape_for_age(torch.tensor([0.0, 2.0, 6.0, 7.0, 10.0, 12.0]))
    kp, joints = model(pose, shape)
    out = anny_body(pose, shape)
    assert kp.shape == (6, 17, 3) and joints.shape == (6, 24, 3) and kp.dtype == torch.float32
    assert (kp - out.keypoints).abs().max() < 5e-4  # at mean build: interpolation only
    assert (joints - out.joints).abs().max() < 5e-4
    shape[:, 1:] += 0.15
    kp, _ = model(pose, shape)
    assert (kp - anny_body(pose, shape).keypoints).abs().max() < 3e-3  # first-order in build


def test_initial_depth_from_torso(anny_body):
    from syrip_gen.fit.camera import focal_from_fov, initial_translation, project, to_camera

    shape = anny_body.shape_for_age(torch.tensor([6.0]))
    kp = anny_body(torch.zeros(1, 24, 3), shape).keypoints
    t = torch.tensor([[0.05, -0.02, 1.1]])
    f = focal_from_fov(torch.tensor([1000.0]), torch.tensor([800.0]), 60.0)
    c = torch.tensor([[500.0, 400.0]])
    px = project(to_camera(kp, t), f, c)
    t0 = initial_translation(px, torch.ones(1, 17), kp, f, c)
    assert t0[0, 2].item() == pytest.approx(1.1, rel=0.03)
    assert f.item() == pytest.approx(500 / math.tan(math.radians(30)))
