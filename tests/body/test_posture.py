"""Posture labels from 3D keypoints of posed Anny bodies.

Issue 4."""
import math

import roma
import torch

from syrip_gen.body.pose_space import JOINT
from syrip_gen.posture_label import posture_labels, up_for_posture

UP = torch.tensor([0.0, 1.0, 0.0])


def _pose(**rot):
    pose = torch.zeros(1, 24, 3)
    for joint, vec in rot.items():
        pose[0, JOINT[joint]] = torch.tensor(vec)
    return pose


def test_labels_of_canonical_poses(anny_body):
    h = math.pi / 2
    poses = {
        "standing": _pose(),
        "supine": _pose(pelvis=[-h, 0, 0]),
        "prone": _pose(pelvis=[h, 0, 0]),
        # side-lying: lie supine (head towards -z), then roll 90° about the long (z) axis
        "side": _pose(pelvis=roma.rotmat_to_rotvec(
            roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, h]))
            @ roma.rotvec_to_rotmat(torch.tensor([-h, 0.0, 0.0]))).tolist()),
        "sitting": _pose(left_hip=[-h, 0, 0], right_hip=[-h, 0, 0]),
    }
    pose = torch.cat(list(poses.values()))
    kp = anny_body(pose, anny_body.shape_for_age(torch.full((len(poses),), 6.0))).keypoints
    assert posture_labels(kp, UP) == list(poses)


def test_up_for_posture_recovers_up(anny_body):
    h = math.pi / 2
    pose = torch.cat([_pose(pelvis=[-h, 0, 0]), _pose(pelvis=[h, 0, 0]), _pose()])
    kp = anny_body(pose, anny_body.shape_for_age(torch.full((3,), 6.0))).keypoints
    up = up_for_posture(kp, ["supine", "prone", "standing"])
    assert torch.all((up * UP).sum(-1) > 0.9)
