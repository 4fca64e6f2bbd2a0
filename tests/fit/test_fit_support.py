"""The support terms (fit/support.py): zero for a body resting on its plane, positive when it
sinks, hovers, lies on the wrong side or is seen from below; and a synthetic fit where the
support term recovers the plane and the depth of the limbs better than the fit without it.

Issue 23."""
from __future__ import annotations

import math

import pytest
import torch

from syrip_gen.body.pose_space import JOINT
from syrip_gen.fit import support as sup

UP = torch.tensor([[0.0, 1.0, 0.0]])
# world (y up) -> body frame seen from straight above by the fit camera, which looks along the body
# frame's -z (R = diag(1, -1, -1)): world up becomes body +z
LOOK_DOWN = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@pytest.fixture(scope="module")
def supine_joints(anny_body):
    """Joints ``(1, 24, 3)`` of a 6-month Anny lying on its back (world y up), legs and arms bent."""
    from syrip_gen.posture_library import posture_pose

    pose = posture_pose("supine_hands_to_mouth")[None]
    return anny_body(pose, anny_body.shape_for_age(torch.tensor([6.0]))).joints


def _rows(posture, n=1):
    return sup.support_rows([posture] * n, 30.0, sup.MAX_TILT_DEG)


def test_probes_shapes_and_torso_frame(supine_joints):
    centres, radius = sup.probes(supine_joints)
    assert centres.shape == (1, sup.NUM_PROBES, 3) and radius.shape == (1, sup.NUM_PROBES)
    assert centres.dtype == torch.float32 and bool((radius >= 0).all())
    fwd, up = sup.torso_frame(supine_joints)
    assert fwd[0, 1].item() > 0.9  # lying on its back: the belly faces the sky
    assert abs(up[0, 1].item()) < 0.4
    # back probes lie below their joints, front probes above
    assert bool((centres[0, sup.P_BACK:sup.P_FRONT, 1] < centres[0, sup.P_FRONT - 1, 1] + 0.2).all())
    back_pelvis, front_pelvis = centres[0, sup.P_BACK, 1], centres[0, sup.P_FRONT, 1]
    assert back_pelvis < supine_joints[0, JOINT["pelvis"], 1] < front_pelvis


def test_contact_zero_at_rest_positive_when_sinking_or_hovering(supine_joints):
    rows = _rows("supine")
    centres, radius = sup.probes(supine_joints)
    offset = sup.best_offset(centres, radius, UP, rows.contact)
    h = sup.heights(centres, radius, UP, offset)
    assert h.shape == (1, sup.NUM_PROBES)
    # resting: the lowest contact probes touch, nothing goes through
    assert sup.support_contact(h, rows.carry, rows.k).item() == pytest.approx(0.0, abs=2e-3)
    assert sup.support_penetration(h).item() < 2e-3
    for dy, name in ((-0.02, "sinking"), (0.02, "hovering")):
        moved = sup.heights(centres + torch.tensor([0.0, dy, 0.0]), radius, UP, offset)
        assert sup.support_contact(moved, rows.carry, rows.k).item() == pytest.approx(0.02, abs=3e-3), name
    sunk = sup.heights(centres - torch.tensor([0.0, 0.02, 0.0]), radius, UP, offset)
    assert sup.support_penetration(sunk).item() > 0.02 * 3  # at least the three contact probes
    hover = sup.heights(centres + torch.tensor([0.0, 0.02, 0.0]), radius, UP, offset)
    assert sup.support_penetration(hover).item() == 0.0


def test_terms_zero_resting_supine_seen_from_above(supine_joints):
    """In the camera frame (camera 0.8 m straight above): every term zero; the same body turned
    over (lying on its front on a supine label) or the camera under the plane costs."""
    cam = (supine_joints @ LOOK_DOWN.T) * torch.tensor([1.0, -1.0, -1.0]) + torch.tensor([0.0, 0.0, 0.8])
    normal = -cam[:, JOINT["pelvis"]] / cam[:, JOINT["pelvis"]].norm()  # pointing at the camera
    rows = _rows("supine")
    terms = sup.support_terms(cam, normal, None, rows)
    assert set(terms) == {"support_penetration", "support_contact", "support_side", "camera_elevation"}
    assert terms["support_contact"].item() < 2e-3  # the back touches
    assert all(v.shape == (1,) for v in terms.values())
    assert terms["support_penetration"].item() < 2e-3
    assert terms["support_side"].item() == 0.0 and terms["camera_elevation"].item() == 0.0
    prone_rows = _rows("prone")  # the label says it lies on its front: this body shows the wrong side
    assert sup.support_terms(cam, normal, None, prone_rows)["support_side"].item() > 1.0
    below = sup.support_terms(cam, -normal, None, rows)  # a plane above the body, camera under it
    assert below["camera_elevation"].item() > 0.5


def test_elevation_sine_and_prior():
    anchor = torch.tensor([[0.0, 0.0, 1.0]])
    above = torch.tensor([[0.0, 0.0, -1.0]])  # plane normal towards the camera, camera 1 m above
    assert sup.elevation_sine(above, torch.tensor([1.0]), anchor).item() == pytest.approx(1.0)
    level = torch.tensor([[0.0, -1.0, 0.0]])  # plane containing the optical axis: camera level with it
    assert sup.elevation_sine(level, torch.tensor([0.0]), anchor).item() == pytest.approx(0.0, abs=1e-6)
    sin_min = torch.tensor([math.sin(math.radians(30.0))])
    assert sup.camera_elevation(torch.tensor([1.0]), sin_min).item() == 0.0
    assert sup.camera_elevation(torch.tensor([0.0]), sin_min).item() == pytest.approx(0.5)
    assert sup.camera_elevation(torch.tensor([-0.2]), sin_min).item() == pytest.approx(0.7)


def test_support_rows_by_posture():
    rows = sup.support_rows(["supine", "prone", "sitting", "standing", None], 30.0, sup.MAX_TILT_DEG)
    front, back = slice(sup.P_FRONT, sup.P_BOTTOM), slice(sup.P_BACK, sup.P_FRONT)
    assert not rows.contact[0, front].any() and rows.contact[0, back].all()
    assert not rows.contact[1, back].any() and rows.contact[1, front].all()
    assert rows.contact[2].all() and rows.contact[4].all()
    assert rows.contact[3].sum().item() == 4 and rows.k[3].item() == 2  # ankles and feet
    assert rows.sin_min[0].item() == pytest.approx(0.5) and rows.sin_min[1:].abs().max().item() == 0.0
    assert rows.side.tolist() == [1, 2, 3, 3, 0] and rows.cos_max[4].item() == -1.0
    assert rows.k.tolist() == [3, 1, 2, 2, 1] and not rows.carry[1].any() and not rows.carry[4].any()
    assert rows.carry[0, back].all() and rows[torch.tensor([0, 0])].k.tolist() == [3, 3]


def _scene(anny_body, names, elevations, yaws, distance=0.9):
    """Library postures lying on a floor (world y up) photographed from ``elevations`` degrees: the
    fit-frame pose ``(N, 24, 3)`` (all rotation in the global orientation), shape, translation, the
    true plane normal in the camera frame ``(N, 3)`` and the camera-frame joints."""
    import roma

    from syrip_gen.fit.camera import R_FIT, to_camera
    from syrip_gen.geometry import look_at_rotation
    from syrip_gen.posture_library import posture_pose

    n = len(names)
    pose = torch.stack([posture_pose(nm) for nm in names])
    cams = torch.stack([torch.tensor(look_at_rotation(y, e), dtype=torch.float32) for y, e in zip(yaws, elevations)])
    pose[:, 0] = roma.rotmat_to_rotvec(R_FIT @ cams @ roma.rotvec_to_rotmat(pose[:, 0]))
    shape = anny_body.shape_for_age(torch.full((n,), 6.0))
    t = torch.tensor([0.0, 0.0, distance]).expand(n, 3).clone()
    with torch.no_grad():
        out = anny_body(pose, shape)
    return pose, shape, t, cams @ torch.tensor([0.0, 1.0, 0.0]), to_camera(out.joints, t), to_camera(out.keypoints, t)


def test_support_tells_raised_legs_from_their_depth_mirror(anny_body):
    """Two bodies with the same 2D: legs raised towards the camera (the truth) and the same leg
    pixels mirrored in depth about the hips (the other solution a 2D fit cannot rule out): the
    support terms, and only they, rule out the mirror — its legs go through the floor."""
    _, _, _, normal, joints, _ = _scene(anny_body, ["supine_legs_up_straight"], [70.0], [30.0])
    legs = [JOINT[f"{s}_{j}"] for s in ("left", "right") for j in ("knee", "ankle", "foot")]
    hip_z = joints[:, [JOINT["left_hip"], JOINT["right_hip"]], 2].mean()
    mirror = joints.clone()
    z_new = 2 * hip_z - joints[:, legs, 2]
    mirror[:, legs] = joints[:, legs] * (z_new / joints[:, legs, 2])[..., None]  # same pixels, other depth
    assert bool((joints[:, legs, 2] < hip_z - 0.03).all())  # the truth: feet well above the hips
    px = lambda x: x[..., :2] / x[..., 2:]  # noqa: E731
    assert torch.allclose(px(mirror), px(joints), atol=1e-6)
    rows = _rows("supine")
    true_terms = sup.support_terms(joints, normal, None, rows)
    mirror_terms = sup.support_terms(mirror, normal, None, rows)
    assert true_terms["support_penetration"].item() < 0.015  # the back resting: a few mm at most
    assert true_terms["support_contact"].item() < 0.01
    # the floor under the mirrored legs leaves the back hovering
    assert mirror_terms["support_contact"].item() > 0.05
    # no plane under the mirrored body does better: turned to keep its legs up, the back lifts off
    # (or the side and elevation priors pay)
    best = min(_weighted(sup.support_terms(mirror, n, None, rows)) for n in _normals_around(normal))
    assert best > _weighted(true_terms) + 0.1


def _weighted(terms) -> float:
    from syrip_gen.fit.fitter import FitConfig

    c = FitConfig(support=True)
    return float(c.support_weight * terms["support_penetration"] + c.contact_weight * terms["support_contact"]
                 + c.side_weight * terms["support_side"]
                 + c.elevation_weight * terms["camera_elevation"])


def _normals_around(normal, steps=24):
    """Unit normals ``(1, 3)`` on a grid of the half sphere around ``normal``."""
    out = []
    for a in range(steps):
        for b in range(steps // 2):
            theta, phi = 2 * math.pi * a / steps, 0.5 * math.pi * b / (steps // 2)
            v = torch.tensor([[math.cos(theta) * math.sin(phi), math.sin(theta) * math.sin(phi), math.cos(phi)]])
            out.append(v)
    # rotate the grid's pole onto the normal
    import roma

    z = torch.tensor([0.0, 0.0, 1.0])
    axis = torch.cross(z, normal[0], dim=-1)
    angle = torch.atan2(axis.norm(), (z * normal[0]).sum())
    rot = roma.rotvec_to_rotmat(axis / axis.norm().clamp_min(1e-9) * angle)
    return [v @ rot.T for v in out]


def test_fit_recovers_the_floor_and_the_camera_elevation(anny_body):
    """Supine bodies on a floor seen from 50-80 degrees: the support fit puts its plane within a
    few tens of degrees of the true floor and reads the camera's elevation over it; the plane and
    elevation are recorded, and the fit without the option records none."""
    from syrip_gen.fit.camera import focal_from_fov, project
    from syrip_gen.fit.fitter import FitConfig, fit_batch, skeleton_noise
    from syrip_gen.fit.kinematics import keypoint_model
    from syrip_gen.fit.prior import default_prior

    names = ["supine_kicking", "supine_legs_up_straight", "supine_hands_to_mouth", "supine_frog_legged"]
    elev = [50.0, 65.0, 80.0, 60.0]
    _, _, _, normal, _, kps = _scene(anny_body, names, elev, [20.0, 110.0, 200.0, 290.0])
    n = len(names)
    w, h = torch.full((n,), 1024.0), torch.full((n,), 768.0)
    f = focal_from_fov(w, h, 60.0)
    kp = torch.cat([project(kps, f, torch.stack([w, h], 1) / 2), torch.full((n, 17, 1), 2.0)], 2)
    args = (anny_body, keypoint_model(anny_body), default_prior(), kp, w, h, ["supine"] * n)
    noise = skeleton_noise([str(i) for i in range(n)], 0)
    res = fit_batch(*args, FitConfig(overlays=False, support=True), noise, focal=f)
    assert res.support_normal.shape == (n, 3) and res.camera_elevation_deg.shape == (n,)
    angle = torch.rad2deg(torch.acos((res.support_normal * normal).sum(-1).clamp(-1, 1)))
    assert angle.median() < 25.0, angle
    assert (res.camera_elevation_deg - torch.tensor(elev)).abs().median() < 20.0, res.camera_elevation_deg
    assert res.error_norm.mean(1).median() < 0.02
    assert "support_penetration" in res.losses[0]
    off = fit_batch(*args, FitConfig(overlays=False), noise, focal=f)
    assert off.support_normal is None and "support_penetration" not in off.losses[0]


def test_support_config_checks_and_run_key():
    from syrip_gen.errors import UserError
    from syrip_gen.fit.fitter import SUPPORT_FIELDS, FitConfig

    with pytest.raises(UserError, match="support_from_stage"):
        FitConfig(support=True, support_from_stage=4)
    with pytest.raises(UserError, match="prune_after"):
        FitConfig(prune_after=3)
    assert not set(SUPPORT_FIELDS) & set(FitConfig().keyed())  # default off: run keys as before
    assert set(SUPPORT_FIELDS) <= set(FitConfig(support=True).keyed())
