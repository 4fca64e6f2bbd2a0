"""The batched fitter end to end: synthetic round trip, determinism, resume after a crash,
bad input, OpenPose input, the CLI (fit -> learn-prior -> refit) and real SyRIP skeletons.

Issue 3."""
import json
import math

import numpy as np
import pytest
import torch

from syrip_gen.coco import write_coco
from syrip_gen.errors import UserError
from syrip_gen.fit.fitter import FitConfig, fit_batch, fit_file, skeleton_noise
from syrip_gen.fit.kinematics import keypoint_model
from syrip_gen.fit.prior import default_prior
from syrip_gen.fit.synthetic import pa_mpjpe, synthetic_skeletons

FAST = FitConfig(overlays=False)


@pytest.fixture(scope="module")
def synth(anny_body):
    g = torch.Generator().manual_seed(3)
    return synthetic_skeletons(anny_body, default_prior(), 6, g)


def _coco_file(path, synth, n=None, extra_anns=()):
    n = n or synth.keypoints.shape[0]
    images = [{"id": i + 1, "file_name": f"s{i}.jpg", "width": float(synth.width[i]),
               "height": float(synth.height[i]), "posture": "Supine"} for i in range(n)]
    anns = [{"id": i + 1, "image_id": i + 1, "keypoints": synth.keypoints[i].flatten().tolist()} for i in range(n)]
    write_coco(path, images, anns + list(extra_anns))
    return path


def test_round_trip_recovers_2d_and_3d(anny_body, synth):
    model = keypoint_model(anny_body)
    ids = [str(i) for i in range(6)]
    res = fit_batch(anny_body, model, default_prior(), synth.keypoints, synth.width, synth.height,
                    [None] * 6, FAST, skeleton_noise(ids, 0))
    assert res.keypoints_3d.shape == (6, 17, 3) and res.error_norm.shape == (6, 17)
    assert res.pose.shape == (6, 24, 3) and res.shape.shape == (6, 5)
    mean_err = res.error_norm.mean(1)
    assert mean_err.median() < 0.02, mean_err
    pa = pa_mpjpe(res.keypoints_3d, synth.keypoints_3d)
    assert pa.median() < 0.03, pa  # metres
    assert torch.all((res.age_months >= -1e-3) & (res.age_months <= 12 + 1e-3))


def test_final_hypotheses_refines_only_the_best_in_the_last_stage(anny_body, synth):
    """``final_hypotheses=1`` prunes again before the last stage: one row per skeleton is refined,
    it is one of the three kept, and the run key changes only when the option does something."""
    ids = [str(i) for i in range(6)]
    args = (anny_body, keypoint_model(anny_body), default_prior(), synth.keypoints, synth.width, synth.height,
            [None] * 6)
    three = fit_batch(*args, FAST, skeleton_noise(ids, 0))
    one = fit_batch(*args, FitConfig(overlays=False, final_hypotheses=1), skeleton_noise(ids, 0))
    assert all(len(h) == 3 for h in three.hypotheses_final) and all(len(h) == 1 for h in one.hypotheses_final)
    assert all(set(o) <= set(t) for o, t in zip(one.hypotheses_final, three.hypotheses_final))
    assert one.error_norm.mean(1).median() < 0.02
    assert "final_hypotheses" not in FAST.keyed()
    assert FitConfig(final_hypotheses=1).keyed()["final_hypotheses"] == 1


def test_fit_file_records_and_determinism(tmp_path, anny_body, synth):
    src = _coco_file(tmp_path / "in.json", synth, n=3)
    a = fit_file(src, tmp_path / "a", FAST, body=anny_body, progress=False)
    fit_file(src, tmp_path / "b", FAST, body=anny_body, progress=False)
    la = (tmp_path / "a" / "fits.jsonl").read_text()
    assert la == (tmp_path / "b" / "fits.jsonl").read_text()  # same seed, same bytes
    recs = [json.loads(x) for x in la.splitlines()]
    assert [r["id"] for r in recs] == ["1", "2", "3"] and a.counts == {"ok": 3}
    r = recs[0]
    for key in ("pose", "shape", "age_months", "camera", "keypoints_3d", "reproj_error_px", "reproj_error_norm",
                "mean_error_norm", "losses", "hypothesis", "hypotheses", "posture", "body", "keypoints_2d"):
        assert key in r, key
    assert r["posture"] == "supine" and r["body"] == "anny"
    assert np.array(r["pose"]).shape == (24, 3) and np.array(r["camera"]["R"]).tolist() == [[1, 0, 0], [0, -1, 0], [0, 0, -1]]
    assert len(r["hypotheses"]) >= 4 and r["hypothesis"] in r["hypotheses"]
    assert set(r["losses"]) >= {"data", "pose_prior", "shape_prior", "hyperextension", "joint_limits", "penetration"}
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["counts"] == {"ok": 3} and 0 < summary["error"]["median"] < 0.05
    fit_file(src, tmp_path / "c", FitConfig(overlays=False, seed=1), body=anny_body, progress=False)
    assert (tmp_path / "c" / "fits.jsonl").read_text() != la  # the seed matters


def test_resume_after_truncated_jsonl_gives_same_fits(tmp_path, anny_body, synth):
    src = _coco_file(tmp_path / "in.json", synth, n=3)
    cfg = FitConfig(overlays=False, batch_size=2)
    fit_file(src, tmp_path / "full", cfg, body=anny_body, progress=False)
    full = (tmp_path / "full" / "fits.jsonl").read_text().splitlines()
    crashed = tmp_path / "crash"
    crashed.mkdir()
    (crashed / "fits.jsonl").write_text(full[0] + "\n" + full[1][: len(full[1]) // 2])  # died mid-write
    (crashed / "run.json").write_bytes((tmp_path / "full" / "run.json").read_bytes())  # written before fitting
    s = fit_file(src, crashed, cfg, body=anny_body, progress=False)
    assert s.skipped_existing == 1 and s.fitted == 2
    again = (crashed / "fits.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in again] == ["1", "2", "3"]
    assert again == full  # the resumed batch is refitted with the same companions: same bytes
    s = fit_file(src, crashed, cfg, body=anny_body, progress=False)  # nothing left to do
    assert s.fitted == 0 and s.skipped_existing == 3


def test_bad_input_is_skipped_with_reasons(tmp_path, anny_body, synth):
    kp = synth.keypoints[0].clone()
    few = kp.clone()
    few[5:, 2] = 0
    nan = kp.clone()
    nan[3, 0] = float("nan")
    far = kp.clone()
    far[:, 0] += 10_000
    extra = [{"id": 10 + i, "image_id": 1, "keypoints": k.flatten().tolist()} for i, k in enumerate((few, nan, far))]
    extra.append({"id": 20, "image_id": 99, "keypoints": kp.flatten().tolist()})
    extra.append({"id": 21, "image_id": 1, "keypoints": [1, 2, 3]})
    src = _coco_file(tmp_path / "in.json", synth, n=1, extra_anns=extra)
    s = fit_file(src, tmp_path / "out", FitConfig(overlays=True), body=anny_body, progress=False)
    recs = {r["id"]: r for r in map(json.loads, (tmp_path / "out" / "fits.jsonl").read_text().splitlines())}
    assert recs["1"]["status"] == "ok"
    assert recs["10"]["status"] == "rejected: only 5 labelled keypoints (need 6)"
    assert recs["11"]["status"] == "rejected: NaN or infinite keypoint coordinates"
    assert recs["12"]["status"] == "rejected: keypoints far outside the image"
    assert "no image record" in recs["20"]["status"]
    assert recs["21"]["status"].startswith("rejected: keypoints must hold 17x3")
    assert sum(s.counts.values()) == 6 and s.counts["ok"] == 1
    # the photo does not exist: the overlay is still drawn (on grey) and the reason recorded
    assert s.overlays["written"] == 1 and any("image missing" in k for k in s.overlays["skipped"])
    assert (tmp_path / "out" / "overlays" / "1.png").exists() and (tmp_path / "out" / "contact_sheet.jpg").exists()
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        fit_file(tmp_path / "broken.json", tmp_path / "o2", FAST, body=anny_body, progress=False)
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(UserError, match="not a COCO keypoint file"):
        fit_file(tmp_path / "other.json", tmp_path / "o3", FAST, body=anny_body, progress=False)


def test_openpose_input_maps_to_coco(tmp_path, anny_body, synth):
    from PIL import Image

    from syrip_gen.fit.io import OPENPOSE19_TO_COCO, load_skeletons

    kp = synth.keypoints[0].numpy()
    op = np.zeros((19, 3))
    for coco_i, op_i in enumerate(OPENPOSE19_TO_COCO):
        op[op_i] = [kp[coco_i, 0], kp[coco_i, 1], 0.9]
    op[OPENPOSE19_TO_COCO[0], 2] = 0.1  # low confidence nose -> occluded
    (tmp_path / "baby_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": op.flatten().tolist()}]}))
    Image.new("RGB", (int(synth.width[0]), int(synth.height[0]))).save(tmp_path / "baby.jpg")
    (tmp_path / "no_people.json").write_text(json.dumps({"people": []}))
    sks = {s.id: s for s in load_skeletons(tmp_path)}
    good = sks["baby_keypoints"]
    assert good.problem is None and good.width == float(synth.width[0])
    assert np.allclose(good.keypoints[:, :2], kp[:, :2]) and good.keypoints[0, 2] == 1 and good.keypoints[5, 2] == 2
    assert sks["no_people"].problem == "no people[0].pose_keypoints_2d"
    s = fit_file(tmp_path, tmp_path / "out", FAST, body=anny_body, progress=False)
    assert s.counts.get("ok") == 1 and sum(s.counts.values()) == 2


def test_cli_fit_learn_prior_refit(tmp_path, anny_body, synth, monkeypatch, capsys):
    import syrip_gen.body
    from syrip_gen import cli

    monkeypatch.setattr(syrip_gen.body, "load_body", lambda *a, **k: anny_body)
    src = _coco_file(tmp_path / "in.json", synth)
    out = tmp_path / "fits"
    assert cli.main(["fit", str(src), "--out", str(out), "--no-overlays", "--limit", "5"]) == 0
    assert "fitted 5" in capsys.readouterr().out
    assert cli.main(["learn-prior", str(out), "--out", str(tmp_path / "p.npz"), "--components", "2"]) == 0
    assert cli.main(["fit", str(src), "--out", str(tmp_path / "fits2"), "--no-overlays", "--limit", "2",
                     "--pose-prior", str(tmp_path / "p.npz")]) == 0
    assert cli.main(["learn-prior", str(out), "--out", str(tmp_path / "q.npz"), "--components", "8"]) == 2
    assert "ok fits" in capsys.readouterr().err


def test_real_syrip_skeletons(tmp_path, anny_body, syrip_train):
    s = fit_file(syrip_train, tmp_path / "real", FitConfig(limit=10, overlays=False), body=anny_body,
                 progress=False)
    assert s.counts.get("ok", 0) >= 8, s.counts
    assert s.error["median"] < 0.03, s.error


def test_given_focal_is_used(tmp_path, anny_body, synth):
    from syrip_gen.fit.io import load_skeletons

    src = _coco_file(tmp_path / "in.json", synth, n=1)
    data = json.loads(src.read_text())
    data["images"][0]["camera"] = {"K": [[700.0, 0, 512], [0, 700.0, 384], [0, 0, 1]]}
    src.write_text(json.dumps(data))
    assert load_skeletons(src)[0].focal == 700.0
    fit_file(src, tmp_path / "out", FAST, body=anny_body, progress=False)
    rec = json.loads((tmp_path / "out" / "fits.jsonl").read_text())
    assert rec["camera"]["fx"] == pytest.approx(700.0)
