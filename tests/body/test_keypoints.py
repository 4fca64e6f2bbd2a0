"""Learned keypoint regressors: the maths, the file, both bodies, and learn-keypoints recovering a
planted labelling convention (hips moved outwards, nose onto the skin) from synthetic skeletons.

Issue 12."""
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

FAST = FitConfig(overlays=False)


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
    from test_body_smpl import FACE_IDS, S, tiny_model

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
    """Hips ~2.5 cm outwards and down, nose ~1-2 cm down and forward onto the skin: where a made-up
    annotator clicks. Vertex combinations the learner can represent."""
    rest_v, rest_kp = rest_geometry(body)
    mirror = mirror_map(rest_v)
    nearest = lambda p: int(np.argmin(np.linalg.norm(rest_v - p, axis=1)))  # noqa: E731
    hip = nearest(rest_kp[11] + [0.03, -0.01, 0.0])
    nose = nearest(rest_kp[0] + [0.0, -0.015, 0.02])
    a = np.ones(17)
    a[[0, 11, 12]] = 0.0, 0.3, 0.3
    lk = _learned(rest_v.shape[0], body.name, a, [(11, hip, 0.7), (12, mirror[hip], 0.7),
                                                  (0, nose, 0.5), (0, mirror[nose], 0.5)])
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


@pytest.mark.slow
def test_learn_keypoints_recovers_a_planted_hip_and_nose_shift(anny_body, planted_fits):
    lk, rest_v, rest_kp, default_fits, clean_fits = planted_fits
    cfg = RoundsConfig(rounds=2, heldout_share=0.3, min_fits=30)
    res = learn_rounds(default_fits, anny_body, FAST, cfg, progress=False)
    from syrip_gen.fit.learn_keypoints import error_summary, heldout_mask

    mask = heldout_mask([r.id for r in clean_fits], cfg.heldout_share)
    clean = error_summary([r for r, h in zip(clean_fits, mask) if h])
    assert res.before["n"] == clean["n"] >= 8
    planted_rest = lk.keypoints(rest_kp[None], rest_v[None])[0]
    learned_rest = res.learned.keypoints(rest_kp[None], rest_v[None])[0]
    shift = np.linalg.norm(planted_rest - rest_kp, axis=1)
    miss = np.linalg.norm(learned_rest - planted_rest, axis=1)
    print("before", res.before["median"], "after", res.after["median"], "clean", clean["median"],
          "shift", shift[[0, 11, 12]], "miss", miss[[0, 11, 12]])
    assert shift[11] > 0.02 and shift[0] > 0.008
    assert (miss[[0, 11, 12]] < 0.4 * shift[[0, 11, 12]]).all()  # the planted points are found ...
    assert miss[1:11].max() < 0.01 and miss[13:].max() < 0.01  # ... and the others stay put
    # held-out error falls back to the clean level (labels and body in the same convention)
    assert res.before["median"] > 1.5 * clean["median"]
    assert res.after["median"] <= 1.25 * clean["median"]
    for k in (0, 11, 12):
        assert res.after["per_joint"][k] < res.before["per_joint"][k]


def test_learn_keypoints_bad_input(anny_body):
    default_fits = [{"id": f"s{i}", "status": "ok", "body": "anny", "pose": [[0.0] * 3] * 24} for i in range(40)]
    with pytest.raises(UserError, match="only 20 ok fits"):
        learn_rounds(default_fits[:20], anny_body, FAST, RoundsConfig(), progress=False)
    other = [{**r, "body": "smil"} for r in default_fits]
    with pytest.raises(UserError, match="fits are of body smil"):
        learn_rounds(other, anny_body, FAST, RoundsConfig(), progress=False)


@pytest.mark.slow
def test_learn_keypoints_refuses_a_regressor_that_is_worse(tmp_path, anny_body, planted_fits, monkeypatch, capsys):
    """A regressor that moves the hips to the feet must not be written; the error gives the numbers."""
    import json

    from syrip_gen.cli import main
    from syrip_gen.fit import learn_keypoints as lk_mod

    _, rest_v, rest_kp, default_fits, _ = planted_fits
    fits = tmp_path / "fits"
    fits.mkdir()
    (fits / "fits.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in default_fits))
    (fits / "summary.json").write_text(json.dumps({"config": FAST.record()}))
    foot = int(np.argmin(np.linalg.norm(rest_v - rest_kp[15], axis=1)))

    def bad_learn(train, heldout, rv, rk, cfg):
        a, w = np.ones(17), np.zeros((17, rv.shape[0]))
        a[[11, 12]] = 0.0
        w[11, foot] = w[12, foot] = 1.0
        return a, w, {}

    monkeypatch.setattr(lk_mod, "learn", bad_learn)
    monkeypatch.setattr("syrip_gen.body.load_body", lambda *a, **k: anny_body)
    out = tmp_path / "k.npz"
    assert main(["learn-keypoints", str(fits), "--out", str(out), "--rounds", "1"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bars
    assert last.startswith("syrip-gen learn-keypoints: error: the learned keypoints do not lower")
    assert "% ->" in last and "not written" in last
    assert not out.exists()


def test_cli_one_line_errors(tmp_path, capsys):
    from syrip_gen.cli import main

    assert main(["learn-keypoints", str(tmp_path / "none"), "--out", str(tmp_path / "k.npz")]) == 2
    assert "no fits file" in capsys.readouterr().err
    assert main(["learn-keypoints", str(tmp_path), "--out", str(tmp_path / "k.npz"), "--rounds", "0"]) == 2
    assert "--rounds" in capsys.readouterr().err
    np.savez(tmp_path / "other.npz", x=np.ones(2))
    assert main(["fit", str(tmp_path), "--out", str(tmp_path / "f"), "--keypoints", str(tmp_path / "other.npz")]) == 2
    assert "not a keypoints file" in capsys.readouterr().err


def test_render_key_filter_check_and_pipeline_wiring(tmp_path, monkeypatch):
    from syrip_gen import pipeline
    from syrip_gen.render import run as dataset
    from syrip_gen import steps as steps_face
    from syrip_gen.body.keypoints import check_labelled_with, file_hash
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.fit import fitter
    from syrip_gen.paths import REPO_ROOT

    kp = tmp_path / "keypoints.npz"
    _learned(10).save(kp)
    assert RenderConfig().keyed()["body"]["keypoints"] is None  # default: the body's own
    keyed = RenderConfig.from_dict({"body": {"keypoints": str(kp)}}).keyed()
    assert keyed["body"]["keypoints"] == file_hash(kp)
    check_labelled_with(keyed, kp, "d")
    check_labelled_with({"body": "anny", "keypoints": file_hash(kp)}, kp, "d")  # a dataset from before body:
    assert RenderConfig.from_dict({"keypoints": str(kp)}).body.keypoints == str(kp)  # the old flat key
    with pytest.raises(UserError, match="labelled with the body's own keypoints"):
        check_labelled_with(RenderConfig().keyed(), kp, "d")
    seen = {}
    monkeypatch.setattr(fitter, "fit_file", lambda src, out, cfg: seen.setdefault("fit", cfg))
    monkeypatch.setattr(dataset, "render_dataset", lambda fits, out, cfg: seen.setdefault("render", cfg))
    steps_face._fit({}, {"skeletons": tmp_path, "keypoints": tmp_path}, tmp_path / "o")
    steps_face._render({"variants": 1}, {"fits": tmp_path, "keypoints": tmp_path}, tmp_path / "o")
    assert seen["fit"].body.keypoints == seen["render"].body.keypoints == str(kp)
    for name in ("syrip.yaml", "ablation.yaml"):
        steps = pipeline.load_spec(REPO_ROOT / "pipelines" / name).steps
        kinds = [s.kind for s in steps]
        final_fit = max(i for i, k in enumerate(kinds) if k == "fit")
        assert kinds.index("learn_keypoints") < final_fit
        assert "keypoints" in steps[final_fit].inputs
        assert all("keypoints" in s.inputs for s in steps if s.kind in ("render", "filter"))
    from syrip_gen.fit.learn_keypoints import RoundsConfig

    assert RoundsConfig.from_dict({"rounds": 3, "radius": 0.04}).learn.radius == 0.04
    with pytest.raises(UserError, match="unknown key"):
        RoundsConfig.from_dict({"round": 3})
    for bad, match in (({"rounds": "abc"}, "rounds must be an integer"), ({"rounds": 0}, "rounds must be >= 1"),
                       ({"radius": 0.5}, "learn.radius must be <= 0.2"),
                       ({"heldout_share": 0.9}, "heldout_share must be <= 0.5")):
        with pytest.raises(UserError, match=match):
            RoundsConfig.from_dict(bad)


def test_body_preview_draws_the_learned_points(tmp_path, anny_body, capsys):
    import cv2

    from syrip_gen.cli import main

    V = anny_body.anny.template_vertices.shape[0]
    a = np.ones(17)
    a[11] = 0.0
    _learned(V, "anny", a, [(11, 100, 0.5), (11, 200, 0.5)]).save(tmp_path / "k.npz")
    plain, drawn = tmp_path / "plain.png", tmp_path / "drawn.png"
    assert main(["body", "preview", "--size", "96", "--out", str(plain)]) == 0
    assert main(["body", "preview", "--size", "96", "--out", str(drawn), "--keypoints", str(tmp_path / "k.npz")]) == 0
    a_img, b_img = cv2.imread(str(plain)), cv2.imread(str(drawn))
    assert a_img.shape == b_img.shape and (a_img != b_img).any(axis=2).sum() > 50
    _learned(V, "smil").save(tmp_path / "smil.npz")
    assert main(["body", "preview", "--out", str(drawn), "--keypoints", str(tmp_path / "smil.npz")]) == 2
    assert "learned on body smil" in capsys.readouterr().err
    # a mostly self-occluded render (v=1) still counts as labelled for the few_visible gate
    from syrip_gen.gates.framing import visible_count

    assert visible_count(np.array([[[0, 0, 2]] * 4 + [[0, 0, 1]] * 13])).tolist() == [17]


def _damaged(path, good, **changes):
    """``good``'s arrays with ``changes`` applied, written as another keypoints.npz."""
    arrays = {k: good[k] for k in good.files}
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("changes, message", [
    ({"num_vertices": np.array(5)}, r"vertex_index holds vertex 9, but num_vertices is 5"),
    ({"num_vertices": np.array(-3)}, r"num_vertices must be a positive integer, got -3"),
    ({"vertex_index": np.array([7, -1])}, r"vertex_index holds vertex -1, but num_vertices is 100"),
    ({"keypoint_index": np.array([11, 17])}, r"keypoint_index holds keypoint 17; COCO has 17 .0-16."),
    ({"weight": np.array([0.5])}, r"keypoint_index, vertex_index and weight must have one length, got 2, 2, 1"),
    ({"weight": np.array([0.5, np.nan])}, r"weight holds NaN or infinite values"),
    ({"weight": np.array([0.5, -0.25])}, r"weight holds negative values"),
    ({"alpha": np.ones(16)}, r"alpha must hold 17 numbers, got shape \(16,\)"),
    ({"alpha": np.full(17, np.inf)}, r"alpha holds NaN or infinite values"),
    ({"vertex_index": np.array([7.5, 9.0])}, r"vertex_index must hold integers, got float64"),
    ({"weight": np.array([0.5, 0.5])}, r"keypoint 11 \(left_hip\): its weights sum to 1.25, not 1"),
])
def test_a_damaged_keypoints_file_is_a_one_line_error_naming_it(tmp_path, changes, message):
    """A keypoints file of the right format with inconsistent arrays (a vertex count that does not
    match its indices: IndexError at load before) names the file and the mismatch on one line."""
    a = np.ones(17)
    a[11] = 0.25
    _learned(100, alpha=a, entries=[(11, 7, 0.5), (11, 9, 0.25)]).save(tmp_path / "k.npz")
    good = np.load(tmp_path / "k.npz")
    bad = _damaged(tmp_path / "bad.npz", good, **changes)
    with pytest.raises(UserError, match=message) as err:
        LearnedKeypoints.load(bad)
    assert str(err.value).startswith(f"{bad}: ") and "\n" not in str(err.value)
