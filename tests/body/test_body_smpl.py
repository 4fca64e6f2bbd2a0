"""SMIL/SMPL through smplx on a tiny SMPL-format model built here (no licensed file): chumpy
pickles read without chumpy, .npz conversion, all shape components, keypoints, the common
pose space, age from length, and one-line errors for bad files.

Issue 2."""
from __future__ import annotations

import math
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from syrip_gen.body.pose_space import JOINT, PARENTS
from syrip_gen.errors import UserError

COCO = {n: i for i, n in enumerate(["nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"])}
# infant-sized T-pose joint centres (metres; x = left, y = up, z = forward)
JOINTS = np.array([
    [0, 0, 0], [.05, -.04, 0], [-.05, -.04, 0], [0, .05, 0], [.05, -.17, 0], [-.05, -.17, 0],
    [0, .10, 0], [.05, -.29, 0], [-.05, -.29, 0], [0, .15, 0], [.05, -.31, .03], [-.05, -.31, .03],
    [0, .20, 0], [.03, .18, 0], [-.03, .18, 0], [0, .25, 0], [.07, .19, 0], [-.07, .19, 0],
    [.15, .19, 0], [-.15, .19, 0], [.22, .19, 0], [-.22, .19, 0], [.25, .19, 0], [-.25, .19, 0]],
    dtype=np.float64)
PER_JOINT = 12
S = 20
# head cluster (joint 15) vertices: the builder puts these face points first in that cluster
FACE_IDS = {"nose": 15 * PER_JOINT, "left_eye": 15 * PER_JOINT + 1, "right_eye": 15 * PER_JOINT + 2,
            "left_ear": 15 * PER_JOINT + 3, "right_ear": 15 * PER_JOINT + 4}


def tiny_model(seed: int = 0) -> dict:
    """A 288-vertex, 24-joint SMPL-format model: a vertex cluster rigid to each joint, the joint
    regressor = cluster means, 20 shape components (0 = overall size), 207 pose blend shapes."""
    rng = np.random.default_rng(seed)
    verts, weights, faces = [], np.zeros((24 * PER_JOINT, 24)), []
    for j, c in enumerate(JOINTS):
        off = rng.normal(0, 0.01, (PER_JOINT // 2, 3))
        cluster = c + np.concatenate([off, -off])  # symmetric: mean is the joint exactly
        if j == 15:  # face points, symmetric pairs around the head centre
            cluster[:6] = c + np.array([[0, .01, .05], [.02, .02, .04], [-.02, .02, .04],
                                        [.05, .01, 0], [-.05, .01, 0], [0, -.06, 0]])
            cluster[6:] = c + np.array([[0, -.01, -.05], [-.02, -.02, -.04], [.02, -.02, -.04],
                                        [-.05, -.01, 0], [.05, -.01, 0], [0, .06, 0]])
        verts.append(cluster)
        weights[j * PER_JOINT:(j + 1) * PER_JOINT, j] = 1.0
        base = j * PER_JOINT
        faces += [[base + i, base + i + 1, base + i + 2] for i in range(0, PER_JOINT - 2, 2)]
    v = np.concatenate(verts)
    V = len(v)
    jreg = np.zeros((24, V))
    for j in range(24):
        jreg[j, j * PER_JOINT:(j + 1) * PER_JOINT] = 1.0 / PER_JOINT
    shapedirs = rng.normal(0, 0.002, (V, 3, S))
    shapedirs[:, :, 0] = 0.05 * v  # beta0 grows the whole body by 5% per unit
    posedirs = rng.normal(0, 0.001, (V, 3, 207))
    kintree = np.array([[4294967295] + PARENTS[1:], list(range(24))], dtype=np.int64)
    return {"v_template": v, "shapedirs": shapedirs, "posedirs": posedirs, "J_regressor": jreg,
            "weights": weights, "kintree_table": kintree, "f": np.array(faces, dtype=np.uint32),
            "bs_style": "lbs", "vert_sym_idxs": np.arange(V)}


class _FakeChumpy:
    """Registers modules ``chumpy`` / ``chumpy.ch`` with a ``Ch`` class while pickling, so the
    file really references chumpy classes (then removes them: loading must not need them)."""

    def __enter__(self):
        ch = types.ModuleType("chumpy.ch")

        class Ch:  # state in __dict__['x'], like chumpy's Ch
            def __init__(self, x):
                self.x = x
                self._dirty_vars = set()
                self.label = None

        class Select:  # custom __reduce__ with a (dict, slots) state
            def __init__(self, x):
                self.x = x

            def __reduce__(self):
                return (Select, (), ({"x": self.x, "idxs": None}, None))

        for cls in (Ch, Select):
            cls.__module__ = "chumpy.ch"
            cls.__qualname__ = cls.__name__
            setattr(ch, cls.__name__, cls)
        root = types.ModuleType("chumpy")
        root.ch = ch
        self.saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
        sys.modules.update({"chumpy": root, "chumpy.ch": ch})
        return ch

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def write_chumpy_pickle(model: dict, path, protocol: int = 2) -> None:
    import scipy.sparse

    with _FakeChumpy() as ch:
        data = dict(model)
        for k in ("v_template", "shapedirs", "weights"):
            data[k] = ch.Ch(model[k])
        data["posedirs"] = ch.Select(model["posedirs"])
        data["J_regressor"] = scipy.sparse.csc_matrix(model["J_regressor"])
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=protocol)
    assert b"chumpy" in path.read_bytes()


def load(path):
    from syrip_gen.body.smpl_body import SmplBody

    return SmplBody.from_file(path, kind="smil", face_vertex_ids=FACE_IDS)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("smil")
    model = tiny_model()
    write_chumpy_pickle(model, d / "tiny.pkl")
    write_chumpy_pickle(model, d / "tiny_p0.pkl", protocol=0)
    return d, model


@pytest.fixture(scope="module")
def body(files):
    return load(files[0] / "tiny.pkl")


def _random_inputs(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.4 * torch.randn(n, 24, 3, generator=g), 0.8 * torch.randn(n, S, generator=g)


def test_pickle_without_chumpy_equals_npz_and_source(files, body):
    from syrip_gen.cli import main

    d, model = files
    assert "chumpy" not in sys.modules
    assert main(["body", "convert", str(d / "tiny.pkl"), "--out", str(d / "tiny.npz")]) == 0
    from_npz, from_p0 = load(d / "tiny.npz"), load(d / "tiny_p0.pkl")
    pose, shape = _random_inputs(3)
    a = body(pose, shape, with_vertices=True)
    for other in (from_npz, from_p0):
        b = other(pose, shape, with_vertices=True)
        assert torch.equal(a.vertices, b.vertices) and torch.equal(a.keypoints, b.keypoints)
    with np.load(d / "tiny.npz") as z:
        assert np.allclose(z["J_regressor"], model["J_regressor"], atol=1e-7)  # sparse -> dense
        assert np.allclose(z["posedirs"], model["posedirs"], atol=1e-7)  # (dict, slots) state
        assert z["kintree_table"][0, 0] == 4294967295 and z["f"].dtype == np.int64


def test_all_twenty_shape_components_are_used(body):
    assert body.smpl.num_betas == S and body.smpl.shapedirs.shape[-1] == S
    assert len(body.shape_names) == S and body.shape_mean.shape == (S,)
    shape = torch.zeros(2, S)
    shape[1, 15] = 2.0
    out = body(torch.zeros(2, 24, 3), shape, with_vertices=True)
    assert (out.vertices[1] - out.vertices[0]).abs().max() > 1e-3
    assert (out.keypoints[1] - out.keypoints[0]).abs().max() > 1e-4


def test_outputs_shapes_and_keypoints_only_path_equals_mesh(body):
    pose, shape = _random_inputs(4, seed=1)
    fast = body(pose, shape)
    full = body(pose, shape, with_vertices=True)
    assert fast.keypoints.shape == (4, 17, 3) and fast.keypoints.dtype == torch.float32
    assert fast.joints.shape == (4, 24, 3) and fast.vertices is None
    assert full.vertices.shape == (4, 24 * PER_JOINT, 3)
    assert torch.isfinite(fast.keypoints).all()
    assert torch.allclose(fast.joints[:, 0], torch.zeros(4, 3), atol=1e-6)  # pelvis at origin
    ids = torch.tensor([FACE_IDS[k] for k in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")])
    assert (fast.keypoints[:, :5] - full.vertices[:, ids]).abs().max() < 1e-5
    # joints and mesh agree with smplx's own forward (global orientation about the pelvis)
    ref = body.smpl(betas=shape, body_pose=pose[:, 1:].reshape(4, -1), global_orient=pose[:, 0])
    ref_j = ref.joints[:, :24] - ref.joints[:, :1]
    assert (fast.joints - ref_j).abs().max() < 1e-5
    assert (full.vertices - (ref.vertices - ref.joints[:, :1])).abs().max() < 1e-5


def test_gradients_reach_pose_and_shape(body):
    pose = torch.zeros(2, 24, 3, requires_grad=True)
    shape = torch.zeros(2, S, requires_grad=True)
    out = body(pose, shape)
    (out.keypoints ** 2).sum().backward()
    assert torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0
    assert torch.isfinite(shape.grad).all() and shape.grad[:, 0].abs().sum() > 0


def _rotate(body, joint, rotvec):
    pose = torch.zeros(2, 24, 3)
    pose[1, JOINT[joint]] = torch.tensor(rotvec)
    return body(pose, torch.zeros(1, S)).keypoints


def test_knee_flexion_bends_shin_backwards(body):
    k = _rotate(body, "left_knee", [math.pi / 2, 0, 0])
    shin_rest = k[0, COCO["left_ankle"]] - k[0, COCO["left_knee"]]
    shin_bent = k[1, COCO["left_ankle"]] - k[1, COCO["left_knee"]]
    assert shin_rest[1] < -0.08  # hangs down
    assert shin_bent[2] < -0.08 and abs(shin_bent[1]) < 0.02  # now points backwards
    assert torch.allclose(k[0, COCO["right_ankle"]], k[1, COCO["right_ankle"]], atol=1e-6)


def test_global_orientation_turns_about_pelvis(body):
    k = _rotate(body, "pelvis", [-math.pi / 2, 0, 0])
    up, lying = k[0, COCO["nose"]], k[1, COCO["nose"]]
    assert torch.allclose(lying, torch.stack([up[0], up[2], -up[1]]), atol=1e-5)  # supine


def test_hip_keypoints_sit_outside_and_below_hip_joints(body):
    out = body(torch.zeros(1, 24, 3), torch.zeros(1, S))
    for side, sign in (("left", 1), ("right", -1)):
        kp, joint = out.keypoints[0, COCO[f"{side}_hip"]], out.joints[0, JOINT[f"{side}_hip"]]
        width = 0.10  # tiny model's hip-joint distance
        assert torch.allclose(kp - joint, torch.tensor([sign * 0.25 * width, -0.10 * width, 0]), atol=1e-5)
    # rigid with the thigh: hip flexion keeps the keypoint's distance to the knee
    k = _rotate(body, "left_hip", [-math.pi / 2, 0, 0])
    d = (k[:, COCO["left_knee"]] - k[:, COCO["left_hip"]]).norm(dim=-1)
    assert torch.allclose(d[0], d[1], atol=1e-5) and k[1, COCO["left_knee"], 2] > 0.08


def test_age_from_length_round_trip(body):
    months = torch.tensor([2.0, 6.0, 10.0])
    shape = body.shape_for_age(months)
    assert torch.allclose(body.age_months(shape), months, atol=0.05)
    assert torch.all(shape.abs() <= 3.0)
    assert body.age_months(shape)[0] < body.age_months(shape)[2]


def test_topology_without_and_with_uv_obj(body, files, tmp_path):
    from syrip_gen.body.smpl_body import SmplBody

    topo = body.topology()
    assert topo.uvs.shape == (0, 2) and topo.faces.shape[1] == 3
    assert topo.part_of_vertex[FACE_IDS["nose"]] == JOINT["head"]
    V = 24 * PER_JOINT
    v = body(torch.zeros(1, 24, 3), torch.zeros(1, S), with_vertices=True).vertices[0]
    lines = [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in v.tolist()]
    lines += [f"vt {i / V:.5f} 0.5" for i in range(V)] + ["vt 0.9 0.9"]
    faces = topo.body_faces
    lines += [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{V + 1}" for a, b, c in faces]  # a seam
    (tmp_path / "uv.obj").write_text("\n".join(lines) + "\n")
    textured = SmplBody.from_file(files[0] / "tiny.pkl", face_vertex_ids=FACE_IDS, uv_obj=tmp_path / "uv.obj")
    t = textured.topology()
    assert np.array_equal(t.render_vertex_index[t.faces], faces)
    assert len(t.uvs) == len(t.render_vertex_index) > V - 24  # vertices split at the seam
    assert np.allclose(t.uvs[t.faces[:, 2]], 0.9)


def _bad(path, match):
    with pytest.raises(UserError, match=match) as err:
        load(path)
    assert "\n" not in str(err.value)


def test_bad_files_give_one_line_errors(files, tmp_path):
    import os

    d, model = files
    _bad(tmp_path / "absent.pkl", "not found")
    rng = np.random.default_rng(0)
    for i in range(40):  # junk makes the unpickler fail in many ways: all become one line
        (tmp_path / "junk.pkl").write_bytes(bytes([0x80, 2]) * (i % 2) + rng.bytes(300))
        _bad(tmp_path / "junk.pkl", "not a readable SMIL/SMPL model pickle")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 broken zip")
    _bad(tmp_path / "junk.npz", "not a readable .npz")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    _bad(tmp_path / "list.pkl", "holds a list")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"v_template": os.getcwd}))
    _bad(tmp_path / "evil.pkl", "refusing to load class")
    partial = {k: v for k, v in model.items() if k != "posedirs"}
    (tmp_path / "nopose.pkl").write_bytes(pickle.dumps(partial))
    _bad(tmp_path / "nopose.pkl", "'posedirs' is missing")
    wrong = dict(model, weights=model["weights"][:, :20])
    np.savez(tmp_path / "wrong.npz", **{k: v for k, v in wrong.items() if isinstance(v, np.ndarray)})
    _bad(tmp_path / "wrong.npz", "'weights' has shape 288x20, expected 288x24")
    tree = dict(model, kintree_table=np.array([[0] * 24, list(range(24))]))
    (tmp_path / "tree.pkl").write_bytes(pickle.dumps(tree))
    _bad(tmp_path / "tree.pkl", "kintree_table")
    from syrip_gen.body.smpl_body import SmplBody

    with pytest.raises(UserError, match="face keypoint vertices"):  # SMPL's ids on a tiny mesh
        SmplBody.from_file(d / "tiny.pkl")
