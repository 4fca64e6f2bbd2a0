"""Video in, keypoints out: the One-Euro filter, the tracker, and `predict` on a rendered clip
(tiny models trained a few steps) writing one record per frame and infant and an overlay MP4."""
import csv
import json

import numpy as np
import pytest
import torch

from pose_models.smoothing import OneEuro, OneEuroConfig, jitter, smooth_track, smoothing_factor
from pose_models.tracking import Tracker, TrackerConfig, box_iou, oks
from test_pose_train import SMALL  # the tiny models' config of the training tests


# ---- One-Euro ----------------------------------------------------------------------------------
def test_smoothing_factor_is_the_first_order_low_pass():
    assert smoothing_factor(1.0, 0.0) == 0.0
    a = float(smoothing_factor(1.0, 1 / 30))
    r = 2 * np.pi / 30
    assert abs(a - r / (r + 1)) < 1e-12 and 0 < a < float(smoothing_factor(5.0, 1 / 30)) < 1


def test_one_euro_removes_jitter_on_a_still_point_and_keeps_a_constant():
    t = np.arange(120) / 30
    still = np.full((120, 17, 2), 50.0)
    assert np.allclose(smooth_track(still, t), 50.0)
    noisy = still + np.random.default_rng(0).normal(0, 2.0, still.shape)
    out = smooth_track(noisy, t, OneEuroConfig(min_cutoff=1.0, beta=0.0))
    assert jitter(out) < 0.2 * jitter(noisy)
    assert np.abs(out[30:] - 50).mean() < 0.5 * np.abs(noisy[30:] - 50).mean()


def test_one_euro_beta_cuts_the_lag_on_fast_motion():
    t = np.arange(60) / 30
    ramp = (300.0 * t)[:, None, None] * np.ones((1, 1, 2))  # 300 px/s
    lag_slow = np.abs(smooth_track(ramp, t, OneEuroConfig(min_cutoff=0.5, beta=0.0))[-1] - ramp[-1]).max()
    lag_fast = np.abs(smooth_track(ramp, t, OneEuroConfig(min_cutoff=0.5, beta=0.05))[-1] - ramp[-1]).max()
    assert lag_fast < 0.5 * lag_slow and lag_slow > 5


def test_one_euro_holds_missing_points_and_needs_increasing_time():
    f = OneEuro(OneEuroConfig(min_cutoff=0.5))
    f(np.array([[0.0, 0.0], [10.0, 10.0]]), 0.0)
    out = f(np.array([[1000.0, 1000.0], [11.0, 11.0]]), 0.1, valid=np.array([False, True]))
    assert np.allclose(out[0], 1000.0)  # returned raw, not fed
    out = f(np.array([[1.0, 1.0], [12.0, 12.0]]), 0.2)
    assert np.abs(out[0]).max() < 1.0  # the state did not move towards the outlier
    with pytest.raises(ValueError, match="increase"):
        f(np.zeros((2, 2)), 0.2)


# ---- tracking ----------------------------------------------------------------------------------
def test_iou_and_oks():
    assert np.allclose(box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]])),
                       [[1.0, 1 / 3, 0.0]])
    kp = np.random.default_rng(0).uniform(0, 100, (1, 17, 2))
    s = oks(kp, np.concatenate([kp, kp + 30]), np.array([10000.0]))
    assert s[0, 0] == pytest.approx(1.0) and s[0, 1] < 0.2


def test_tracker_keeps_ids_when_detections_come_in_any_order():
    tr = Tracker(TrackerConfig(max_age=2))
    a, b = np.array([0.0, 0, 40, 40]), np.array([100.0, 0, 40, 40])
    assert tr.update(0, np.stack([a, b])) == [0, 1]
    ids = []
    for f in range(1, 10):
        a, b = a + [3, 1, 0, 0], b - [2, -1, 0, 0]
        order = [b, a] if f % 2 else [a, b]
        got = tr.update(f, np.stack(order))
        ids.append(got if f % 2 == 0 else got[::-1])
    assert all(x == [0, 1] for x in ids)
    assert tr.update(10, np.array([[300.0, 300, 40, 40]])) == [2]  # far away: a new infant
    for f in range(11, 14):
        tr.update(f, np.zeros((0, 4)))
    assert tr.update(14, np.stack([a, b])) == [3, 4]  # old tracks ended after max_age; ids not reused


# ---- predict on a rendered clip -------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from pose_models.config import TrainConfig
    from pose_models.synthetic import make_dataset
    from pose_models.train import train

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("vidmodels")
    data = make_dataset(root / "tiny", n=16)
    out = {}
    for task in ("detector", "pose2d"):
        cfg = TrainConfig.from_dict({"task": task, "train": [str(data)], "out_dir": str(root / task), "max_steps": 4,
                                     **SMALL})
        out[task] = train(cfg, log=lambda *_: None)
    return out


@pytest.fixture(scope="module")
def clip_video(anny_body, tmp_path_factory):
    from test_clips_helpers import plausible_fits

    from syrip_gen.render.clips import ClipConfig, render_clips

    root = tmp_path_factory.mktemp("vidclip")
    fits = plausible_fits(anny_body, root / "fits.jsonl", n=1)
    cfg = ClipConfig.of(clips=1, seconds=1.0, fps=10, width=128, height=96, gate=False, preview=False)
    s = render_clips(fits, root / "clips", cfg, log=lambda *_: None)
    return root / "clips" / "videos" / "clip_00001.mp4", s


def test_predict_on_a_rendered_clip_writes_one_record_per_frame_and_infant(checkpoints, clip_video, tmp_path, capsys):
    from syrip_gen.cli import main
    from syrip_gen.video import read_frames

    video, summary = clip_video
    code = main(["predict", str(video), "--detector", str(checkpoints["detector"]), "--pose2d",
                 str(checkpoints["pose2d"]), "--out", str(tmp_path / "p.json"), "--device", "cpu", "--max-infants", "1"])
    assert code == 0
    res = json.loads((tmp_path / "p.json").read_text())
    recs = res["records"]
    assert res["frames"] == summary.frames == 10 and res["fps"] == pytest.approx(10.0)
    assert sorted(r["frame"] for r in recs) == list(range(10))  # one infant: one record per frame
    assert {r["track_id"] for r in recs} == {0} and res["tracks"] == [0]  # one stable track
    k = np.array([r["keypoints"] for r in recs])
    assert k.shape == (10, 17, 3) and np.isfinite(k).all()
    raw = np.array([r["keypoints_raw"] for r in recs])
    assert np.allclose(k[0], raw[0]) and not np.allclose(k[1:, :, :2], raw[1:, :, :2])  # smoothed after frame 0
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == 10 and {int(r["track_id"]) for r in rows} == {0}
    assert float(rows[3]["left_wrist_x"]) == pytest.approx(k[3, 9, 0], abs=1e-3)
    overlay = list(read_frames(tmp_path / "p_overlay.mp4"))
    assert len(overlay) == 10 and overlay[0].shape == (96, 128, 3)


def test_predict_video_options_and_errors(checkpoints, clip_video, tmp_path):
    from pose_models.video import VideoConfig, run_videos
    from syrip_gen.errors import UserError

    video, _ = clip_video
    done = run_videos([video], checkpoints["detector"], checkpoints["pose2d"], tmp_path / "out",
                      VideoConfig(smooth=False, overlay=False, max_frames=4, max_infants=2, min_box_score=0.0),
                      device="cpu")
    res = json.loads((tmp_path / "out" / "clip_00001.json").read_text())
    assert done[0]["frames"] == 4 and "overlay" not in done[0]
    frames = [r["frame"] for r in res["records"]]
    assert set(frames) == set(range(4)) and all(frames.count(f) <= 2 for f in range(4))
    assert all(r["keypoints"] == r["keypoints_raw"] for r in res["records"])
    with pytest.raises(UserError, match="not both"):
        from pose_models.predict import split_inputs
        split_inputs([str(video), str(tmp_path)])
    with pytest.raises(UserError, match="need a folder"):
        run_videos([video, video], checkpoints["detector"], checkpoints["pose2d"], tmp_path / "x.json", device="cpu")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(UserError, match="OpenCV"):
        run_videos([bad], checkpoints["detector"], checkpoints["pose2d"], tmp_path / "y.json", device="cpu")
