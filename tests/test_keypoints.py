"""Learned keypoint regressors: the maths, the file, both bodies, and learn-keypoints recovering a
planted labelling convention (hips moved outwards, nose onto the skin) from synthetic skeletons."""
import numpy as np
import pytest
import torch

from syrip_gen.body import with_keypoints
from syrip_gen.body.keypoints import (LearnedKeypoints, mirror_map, project_simplex, solve_simplex_qp)
from syrip_gen.errors import UserError
from syrip_gen.fit.fitter import FitConfig, fit_skeletons
from syrip_gen.fit.io import Skeleton
from syrip_gen.fit.kinematics import keypoint_model
from syrip_gen.fit.learn_keypoints import RoundsConfig, learn_rounds, rest_geometry
from syrip_gen.fit.prior import default_prior
from syrip_gen.fit.synthetic import synthetic_skeletons

FAST = FitConfig(overlays=False, threads=1)


def test_simplex_projection_and_qp():
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = project_simplex(rng.normal(0, 1, 7))
        assert w.min() >= 0 and abs(w.sum() - 1) < 1e-12
    assert np.allclose(project_simplex(np.array([0.2, 0.5, 0.3])), [0.2, 0.5, 0.3])
    # min ||w - target||² with the target inside the simplex is the target; λ pulls towards w0
    target, w0 = np.array([0.1, 0.6, 0.3]), np.array([1.0, 0.0, 0.0])
    A = np.eye(3) - np.outer(target, np.ones(3))  # A w = w - target on the simplex (Σw = 1)
    w = solve_simplex_qp(A.T @ A, 0.0, w0, 500)
    assert np.allclose(w, target, atol=1e-4)
    w_reg = solve_simplex_qp(A.T @ A, 10.0, w0, 500)
    assert w_reg[0] > 0.9


def test_mirror_map_of_a_symmetric_cloud():
    rng = np.random.default_rng(1)
    half = rng.normal(0, 1, (50, 3))
    half[:, 0] = np.abs(half[:, 0]) + 0.1
    pts = np.concatenate([half, half * [-1, 1, 1], [[0.0, 2.0, 0.0]]])
    m = mirror_map(pts)
    assert np.array_equal(m[:50], np.arange(50, 100)) and np.array_equal(m[50:100], np.arange(50))
    assert m[100] == 100 and np.array_equal(m[m], np.arange(101))


def _learned(V, body="anny", alpha=None, entries=()):
    w = np.zeros((17, V))
    for k, v, x in entries:
        w[k, v] = x
    return LearnedKeypoints(body=body, body_hash="", num_vertices=V,
                            alpha=np.ones(17) if alpha is None else alpha, weights=w)


def test_file_round_trip_and_one_line_errors(tmp_path):
    a = np.ones(17)
    a[11] = 0.25
    lk = _learned(100, alpha=a, entries=[(11, 7, 0.5), (11, 9, 0.25)])
    lk.source = {"fits": "x", "n_fits": 3}
    lk.heldout_before = np.linspace(0.01, 0.02, 17)
    lk.save(tmp_path / "k.npz")
    back = LearnedKeypoints.load(tmp_path / "k.npz")
    assert np.array_equal(back.weights, lk.weights) and np.array_equal(back.alpha, lk.alpha)
    assert back.source == lk.source and back.heldout_after is None
    assert np.allclose(back.heldout_before, lk.heldout_before) and back.body == "anny"
    assert np.allclose(back.regressor(np.full((17, 100), 0.01)).sum(1)[11], 0.25 + 0.75)
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(UserError, match="not a keypoints file"):
        LearnedKeypoints.load(tmp_path / "other.npz")
    np.savez(tmp_path / "v9.npz", format=np.array("syrip-gen keypoints"), format_version=np.array(9))
    with pytest.raises(UserError, match="version 9"):
        LearnedKeypoints.load(tmp_path / "v9.npz")
    with pytest.raises(UserError, match="no keypoints file"):
        LearnedKeypoints.load(tmp_path / "missing.npz")
    with pytest.raises(UserError, match="learned on body anny"):
        lk.check_body("smil", "abc", 100)
    with pytest.raises(UserError, match="100 vertices"):
        lk.check_body("anny", "", 6890)


def test_smil_learned_keypoints_are_the_weighted_posed_vertices():
    from tests.test_body_smpl import FACE_IDS, S, tiny_model

    from syrip_gen.body.smpl_body import SmplBody

    body = SmplBody(tiny_model(), face_vertex_ids=FACE_IDS)
    V = body.smpl.v_template.shape[0]
    a = np.ones(17)
    a[[0, 11]] = 0.0, 0.5
    learned = with_keypoints(body, _learned(V, "smil", a, [(0, 5, 0.75), (0, 40, 0.25), (11, 100, 0.5)]))
    g = torch.Generator().manual_seed(0)
    pose, shape = 0.4 * torch.randn(3, 24, 3, generator=g), 0.5 * torch.randn(3, S, generator=g)
    d = body(pose, shape, with_vertices=True)
    k = learned(pose, shape).keypoints
    assert torch.allclose(k[:, 0], 0.75 * d.vertices[:, 5] + 0.25 * d.vertices[:, 40], atol=1e-5)
    assert torch.allclose(k[:, 11], 0.5 * d.keypoints[:, 11] + 0.5 * d.vertices[:, 100], atol=1e-5)
    assert torch.allclose(k[:, 1:11], d.keypoints[:, 1:11], atol=1e-6)
    with pytest.raises(UserError, match="learned on body anny"):
        with_keypoints(body, _learned(V, "anny"))


def test_anny_learned_regressor_folds_into_both_forward_paths(anny_body):
    V = anny_body.anny.template_vertices.shape[0]
    a = np.ones(17)
    a[[0, 12]] = 0.5, 0.0
    learned = with_keypoints(anny_body, _learned(V, "anny", a, [(0, 10, 0.5), (12, 2000, 1.0)]))
    g = torch.Generator().manual_seed(1)
    pose, shape = 0.3 * torch.randn(2, 24, 3, generator=g), anny_body.shape_for_age(torch.tensor([3.0, 9.0]))
    d = anny_body(pose, shape, with_vertices=True)
    k = learned(pose, shape).keypoints
    assert torch.allclose(k[:, 0], 0.5 * d.keypoints[:, 0] + 0.5 * d.vertices[:, 10], atol=1e-5)
    assert torch.allclose(k[:, 12], d.vertices[:, 2000], atol=1e-5)
    assert torch.allclose(k[:, 1:12], d.keypoints[:, 1:12], atol=1e-5)
    fast, _ = keypoint_model(learned)(pose, shape)  # the fitter's folded path follows
    assert (fast - k).abs().max() < 1e-3


# ---- learn-keypoints on synthetic skeletons with a planted convention -------------------------

def _planted(body):
    """Hips ~3 cm outwards and 1 cm down, nose 1.5 cm forward onto the skin: where a made-up
    annotator clicks. A vertex combination the learner can represent (alpha 0.3 on the default)."""
    rest_v, rest_kp = rest_geometry(body)
    mirror = mirror_map(rest_v)
    nearest = lambda p: int(np.argmin(np.linalg.norm(rest_v - p, axis=1)))  # noqa: E731
    hip = nearest(rest_kp[11] + [0.03, -0.01, 0.0])
    nose = nearest(rest_kp[0] + [0.0, -0.005, 0.015])
    a = np.ones(17)
    a[[0, 11, 12]] = 0.3
    lk = _learned(rest_v.shape[0], body.name, a, [(11, hip, 0.7), (12, mirror[hip], 0.7),
                                                  (0, nose, 0.35), (0, mirror[nose], 0.35)])
    return lk, rest_v, rest_kp


def _skeletons(kp, synth):
    return [Skeleton(id=f"s{i}", source="synthetic", keypoints=kp[i].double().numpy(),
                     width=float(synth.width[i]), height=float(synth.height[i])) for i in range(len(kp))]


@pytest.fixture(scope="module")
def planted_fits(anny_body):
    lk, rest_v, rest_kp = _planted(anny_body)
    planted_body = with_keypoints(anny_body, lk)
    synth = synthetic_skeletons(planted_body, default_prior(), 40, torch.Generator().manual_seed(5),
                                pixel_noise=0.001)
    skels = _skeletons(synth.keypoints, synth)
    prior = default_prior()
    default_fits = fit_skeletons(skels, anny_body, keypoint_model(anny_body), prior, FAST)
    clean_fits = fit_skeletons(skels, planted_body, keypoint_model(planted_body), prior, FAST)
    return lk, rest_v, rest_kp, default_fits, clean_fits


def test_learn_keypoints_recovers_a_planted_hip_and_nose_shift(anny_body, planted_fits):
    lk, rest_v, rest_kp, default_fits, clean_fits = planted_fits
    cfg = RoundsConfig(rounds=2, heldout_share=0.3, min_fits=30)
    res = learn_rounds(default_fits, anny_body, FAST, cfg, progress=False)
    held = {r["id"] for r in default_fits} - set()
    from syrip_gen.fit.learn_keypoints import error_summary, heldout_mask

    mask = heldout_mask([r["id"] for r in clean_fits], cfg.heldout_share)
    clean = error_summary([r for r, h in zip(clean_fits, mask) if h])
    assert held and res.before["n"] == clean["n"] >= 8
    planted_rest = lk.keypoints(rest_kp[None], rest_v[None])[0]
    learned_rest = res.learned.keypoints(rest_kp[None], rest_v[None])[0]
    shift = np.linalg.norm(planted_rest - rest_kp, axis=1)
    miss = np.linalg.norm(learned_rest - planted_rest, axis=1)
    print("before", res.before["median"], "after", res.after["median"], "clean", clean["median"],
          "shift", shift[[0, 11, 12]], "miss", miss[[0, 11, 12]])
    assert shift[11] > 0.02 and shift[0] > 0.01
    assert (miss[[0, 11, 12]] < 0.4 * shift[[0, 11, 12]]).all()  # the planted points are found ...
    assert miss[1:11].max() < 0.01 and miss[13:].max() < 0.01  # ... and the others stay put
    # held-out error falls back to the clean level (labels and body in the same convention)
    assert res.before["median"] > 1.5 * clean["median"]
    assert res.after["median"] <= 1.15 * clean["median"]
    for k in (0, 11, 12):
        assert res.after["per_joint"][k] < res.before["per_joint"][k]


def test_learn_keypoints_bad_input(anny_body, planted_fits):
    _, _, _, default_fits, _ = planted_fits
    with pytest.raises(UserError, match="only 20 ok fits"):
        learn_rounds(default_fits[:20], anny_body, FAST, RoundsConfig(), progress=False)
    other = [{**r, "body": "smil"} for r in default_fits]
    with pytest.raises(UserError, match="fits are of body smil"):
        learn_rounds(other, anny_body, FAST, RoundsConfig(), progress=False)
