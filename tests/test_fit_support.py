"""The support terms (fit/support.py): zero for a body resting on its plane, positive when it
sinks, hovers, lies on the wrong side or is seen from below; and a synthetic fit where the
support term recovers the plane and the depth of the limbs better than the fit without it."""
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
    from syrip_gen.postures import posture_pose

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
    offset = sup.best_offset(centres, radius, UP, rows.contact, rows.k)
    h = sup.heights(centres, radius, UP, offset)
    assert h.shape == (1, sup.NUM_PROBES)
    # resting: the lowest contact probes touch, nothing goes through
    assert sup.support_contact(h, rows.contact, rows.k).item() == pytest.approx(0.0, abs=2e-3)
    assert sup.support_penetration(h).item() < 2e-3
    for dy, name in ((-0.02, "sinking"), (0.02, "hovering")):
        moved = sup.heights(centres + torch.tensor([0.0, dy, 0.0]), radius, UP, offset)
        assert sup.support_contact(moved, rows.contact, rows.k).item() == pytest.approx(0.02, abs=3e-3), name
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
    assert set(terms) == {"support_penetration", "support_side", "camera_elevation"}
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
    assert rows.sin_min[0].item() == pytest.approx(0.5) and rows.sin_min[2].item() == 0.0
    assert rows.side.tolist() == [1, 2, 3, 3, 0] and rows.cos_max[4].item() == -1.0
    assert rows[torch.tensor([1, 1])].k.tolist() == [3, 3]
