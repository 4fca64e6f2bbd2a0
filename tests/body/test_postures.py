"""The project's own posture library: loading, labels, anatomy, notation signs, the bundled
skeleton file and its deterministic regeneration.

Issue 7."""
import json
import math

import numpy as np
import pytest
import roma
import torch

from syrip_gen.body.pose_space import JOINT
from syrip_gen.coco import POSTURES, keypoint_problem, load_coco
from syrip_gen.errors import UserError
from syrip_gen.posture_label import posture_labels
from syrip_gen.posture_library import (SKELETONS_PATH, SkeletonConfig, euler_to_rotvec, hinge_angles,
                                       keypoint_visibility, label_weights, load_library, make_skeletons, posture_pose,
                                       sample_library_poses)
from syrip_gen.geometry import look_at_rotation, project, to_camera

UP = torch.tensor([0.0, 1.0, 0.0])


@pytest.fixture(scope="module")
def library():
    return load_library()


@pytest.fixture(scope="module")
def posed(library, anny_body):
    """Keypoints ``(N, 17, 3)`` of every posture at the middle of its age range."""
    poses = torch.stack([p.pose for p in library])
    months = torch.tensor([sum(p.age_months) / 2 for p in library])
    with torch.no_grad():
        return anny_body(poses, anny_body.shape_for_age(months)).keypoints


def test_library_loads(library):
    assert len(library) >= 50
    names = [p.name for p in library]
    assert len(set(names)) == len(names)
    assert {p.label for p in library} == set(POSTURES)
    for p in library:
        assert p.pose.shape == (24, 3) and p.pose.dtype == torch.float32
        assert 0 <= p.age_months[0] <= p.age_months[1] <= 12
    assert torch.equal(posture_pose(library[3].name, library), library[3].pose)


def test_classifier_agrees_with_every_label(library, posed):
    got = posture_labels(posed, UP)
    wrong = [(p.name, p.label, g) for p, g in zip(library, got) if p.label != g]
    assert not wrong, wrong


def test_knees_and_elbows_stay_anatomical(library, posed):
    angles = hinge_angles(torch.stack([p.pose for p in library]), posed)
    for key, values in angles.items():
        for p, v in zip(library, values.tolist()):
            if key.endswith("flexion"):
                assert -10 <= v <= 155, (p.name, key, v)  # no hyperextension, no over-bending
            else:
                assert abs(v) <= 25, (p.name, key, v)  # hinges stay near their plane


def _kp(body, **rot):
    pose = torch.zeros(2, 24, 3)
    for joint, deg in rot.items():
        pose[1, JOINT[joint]] = euler_to_rotvec(deg)
    with torch.no_grad():
        return body(pose, body.shape_for_age(torch.tensor([6.0, 6.0]))).keypoints


def test_notation_signs_on_the_body(anny_body):
    """The signs the YAML header documents, checked on Anny (x = left, y = up, z = forward)."""
    k = _kp(anny_body, left_shoulder={"z": -90})[1]
    assert (k[9] - k[5])[1] < -0.1  # left arm down
    k = _kp(anny_body, left_shoulder={"y": -90})[1]
    assert (k[9] - k[5])[2] > 0.1  # left arm forward
    k = _kp(anny_body, left_hip={"x": -90})[1]
    assert (k[13] - k[11])[2] > 0.08  # hip flexion: thigh forward
    k = _kp(anny_body, left_hip={"z": 45})[1]
    assert (k[15] - k[11])[0] > 0.1  # hip abduction: foot out to the left
    k = _kp(anny_body, spine1={"x": 45})[1]
    assert k[0, 2] > 0.15  # spine flexion: head forward
    k = _kp(anny_body, head={"y": 40})[1]
    assert (k[0] - (k[3] + k[4]) / 2)[0] > 0.03  # head turned to the left
    # extrinsic x, then z, then y: shoulder twist before lowering and swinging forward
    rot = roma.rotvec_to_rotmat(euler_to_rotvec({"x": 10, "y": 20, "z": 30}).double())
    want = roma.euler_to_rotmat("xzy", [10, 30, 20], degrees=True, dtype=torch.float64)
    assert torch.allclose(rot, want, atol=1e-6)


def test_group_keys_mirror_the_right_side(tmp_path, anny_body):
    path = tmp_path / "lib.yaml"
    path.write_text("postures:\n  - {name: a, posture: standing, age_months: [9, 12], global: {x: 0},\n"
                    "     joints: {shoulders: {z: -80, y: -20}, knees: {x: 30}}}\n")
    pose = load_library(path)[0].pose[None]
    with torch.no_grad():
        k = anny_body(pose, anny_body.shape_for_age(torch.tensor([10.0]))).keypoints[0]
    mirror = torch.tensor([-1.0, 1.0, 1.0])
    for left, right in ((9, 10), (15, 16), (7, 8)):
        assert torch.allclose(k[left] * mirror, k[right], atol=0.01), (left, k[left], k[right])


@pytest.mark.parametrize("text, message", [
    ("postures:\n  - {name: a, posture: lying, age_months: [0, 3], global: {x: 0}}\n", "label"),
    ("postures:\n  - {name: a, posture: prone, age_months: [0, 3], global: {x: 0}, joints: {elbowz: {x: 1}}}\n",
     "unknown joint"),
    ("postures:\n  - {name: a, posture: prone, age_months: [0, 3], global: {x: 0},"
     " joints: {knees: {x: 1}, left_knee: {x: 2}}}\n", "twice"),
    ("postures:\n  - {name: a, posture: prone, age_months: [0, 3], global: {w: 0}}\n", "axes"),
    ("postures:\n  - {name: a, posture: prone, age_months: [0, 3], global: {x: 0}}\n"
     "  - {name: a, posture: prone, age_months: [0, 3], global: {x: 0}}\n", "duplicate"),
    ("postures: [\n", "YAML"),
])
def test_bad_library_is_a_one_line_user_error(tmp_path, text, message):
    path = tmp_path / "lib.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as err:
        load_library(path)
    assert "\n" not in str(err.value)


def test_sample_library_poses(library):
    a = sample_library_poses(256, torch.Generator().manual_seed(1), jitter_deg=8.0, library=library)
    b = sample_library_poses(256, torch.Generator().manual_seed(1), jitter_deg=8.0, library=library)
    assert a.pose.shape == (256, 24, 3) and a.pose.dtype == torch.float32
    assert torch.equal(a.pose, b.pose) and torch.equal(a.index, b.index)
    assert 0.3 < a.mirrored.float().mean() < 0.7
    lo = torch.tensor([library[i].age_months[0] for i in a.index])
    hi = torch.tensor([library[i].age_months[1] for i in a.index])
    assert torch.all((a.age_months >= lo) & (a.age_months <= hi))
    # unmirrored samples sit within a few jitter widths of their source pose (body joints only)
    keep = ~a.mirrored
    src = torch.stack([p.pose for p in library])[a.index[keep]]
    diff = roma.rotmat_geodesic_distance(roma.rotvec_to_rotmat(a.pose[keep, 1:]),
                                         roma.rotvec_to_rotmat(src[:, 1:]))
    mean = math.degrees(diff.mean())
    assert 8.0 < mean < 20.0, mean  # |N(0, 8°)³| has mean ~12.8°
    assert torch.allclose(a.pose[keep, 0], src[:, 0], atol=1e-5)  # global untouched by default


def test_visibility_rule(anny_body):
    """Seen from behind, the face and the hands in front of the chest are hidden (v=1)."""
    pose = torch.zeros(1, 24, 3)
    for side, sign in (("left", 1), ("right", -1)):
        pose[0, JOINT[f"{side}_shoulder"]] = euler_to_rotvec({"z": -60 * sign, "y": -60 * sign})
        pose[0, JOINT[f"{side}_elbow"]] = euler_to_rotvec({"y": -60 * sign})
    with torch.no_grad():
        kp = anny_body(pose, anny_body.shape_for_age(torch.tensor([9.0]))).keypoints[0].double().numpy()
    K = np.array([[400.0, 0, 320], [0, 400, 240], [0, 0, 1]])
    cfg = SkeletonConfig()
    vis = {}
    for yaw in (0.0, 180.0):
        R = look_at_rotation(yaw, 0.0)
        t = np.array([0, 0, 1.2])
        cam = to_camera(kp, R, t)
        uv = project(cam, K)
        vis[yaw] = keypoint_visibility(uv, cam, K, 640, 480, cfg)
    assert vis[0.0][:5].tolist() == [2] * 5 and vis[0.0][9:11].tolist() == [2, 2]
    assert vis[180.0][[0, 1, 2]].tolist() == [1, 1, 1]  # face hidden behind the head
    assert vis[180.0][[9, 10]].tolist() == [1, 1]  # hands hidden behind the torso
    cam = to_camera(kp, look_at_rotation(0.0, 0.0), np.array([0.9, 0, 1.2]))
    uv = project(cam, K)
    v = keypoint_visibility(uv, cam, K, 640, 480, cfg)
    assert uv[9, 0] > 640 and v[9] == 0 and v[10] == 2  # the left hand left the frame


def test_bundled_skeleton_file_is_valid(library):
    kf = load_coco(SKELETONS_PATH)
    names = {p.name: p for p in library}
    assert len(kf.annotations) >= 60
    assert {img["posture_name"] for img in kf.images.values()} == set(names)
    for ann in kf.annotations:
        img = kf.images[ann["image_id"]]
        assert keypoint_problem(ann["keypoints"], img["width"], img["height"]) is None, ann["id"]
        assert ann["id"] > 0 and img["source"] == "posture-library"
        assert img["posture"] == names[img["posture_name"]].label.capitalize()
        kp = kf.keypoints(ann)
        assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum())
        x, y, w, h = ann["bbox"]
        used = kp[kp[:, 2] > 0, :2]
        assert x <= used[:, 0].min() and used[:, 0].max() <= x + w + 1e-6
        assert y <= used[:, 1].min() and used[:, 1].max() <= y + h + 1e-6


def test_regeneration_is_deterministic(library, anny_body):
    subset = library[::19]
    cfg = SkeletonConfig(views_per_posture=2)
    a = make_skeletons(anny_body, subset, torch.Generator().manual_seed(5), cfg)
    b = make_skeletons(anny_body, subset, torch.Generator().manual_seed(5), cfg)
    c = make_skeletons(anny_body, subset, torch.Generator().manual_seed(6), cfg)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.dumps(a, sort_keys=True) != json.dumps(c, sort_keys=True)
    assert len(a["annotations"]) == 2 * len(subset)


def test_bundled_file_matches_the_library(library, anny_body):
    """The committed skeletons.json is what the script makes from the committed library (seed 0):
    rerun scripts/make_posture_skeletons.py after editing library.yaml."""
    stored = json.loads(SKELETONS_PATH.read_text())
    made = make_skeletons(anny_body, library, torch.Generator().manual_seed(stored["info"]["seed"]),
                          SkeletonConfig(views_per_posture=stored["info"]["views_per_posture"]))
    assert len(made["annotations"]) == len(stored["annotations"])
    for m, s in zip(made["annotations"], stored["annotations"]):
        assert np.allclose(m["keypoints"], s["keypoints"], atol=0.25), s["id"]


def test_label_weights_reproduce_shares(library):
    shares = {"supine": 0.35, "prone": 0.45, "sitting": 0.17, "standing": 0.03}
    w = label_weights(library, shares)
    s = sample_library_poses(20000, torch.Generator().manual_seed(0), library=library, weights=w)
    labels = [library[i].label for i in s.index.tolist()]
    for label in POSTURES:
        assert abs(labels.count(label) / len(labels) - shares.get(label, 0.0)) < 0.015, label
    with pytest.raises(UserError):
        label_weights([p for p in library if p.label != "side"], {"side": 1.0})
