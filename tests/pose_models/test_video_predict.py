"""Video in, keypoints out: the One-Euro filter, the tracker, and `predict` on a rendered clip
(tiny models trained a few steps) writing one record per frame and infant, an overlay and a
skeleton-only MP4 and the movement summary; two infants tracked; the video faults of issue 34
(C05, C07, C09, C15-C19), each checked before any work where it can be."""
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

    torch.set_num_threads(1)  # two OpenMP threads on a shared 2-core machine run many times slower
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
    from helpers.clips import plausible_fits

    from syrip_gen.render.sequence.clips import ClipConfig, render_clips

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
                 str(checkpoints["pose2d"]), "--out", str(tmp_path / "p.json"), "--device", "cpu", "--max-infants", "1",
                 "--min-box-score", "0", "--min-box-side", "0"])  # a detector trained 4 steps: ~0.1, tiny boxes
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
    assert 2 <= res["detector_runs"] < 10  # every 5 frames (or on a lost track); boxes carried in between
    # the skeleton-only video: same size, rate and length; nothing of the infant's pixels, its skeleton drawn
    frames = list(read_frames(tmp_path / "p_skeleton.mp4"))
    assert len(frames) == 10 and frames[0].shape == (96, 128, 3)
    first = next(iter(read_frames(video)))
    lit = frames[0].max(-1) > 60
    assert 0 < lit.mean() < 0.3  # a drawing on black, not the frame
    assert frames[0][~lit].mean() < 8 and first.mean() > 20
    # the movement summary and its plot
    mv = json.loads((tmp_path / "p_movement.json").read_text())
    t0 = mv["tracks"]["0"]
    assert mv["fps"] == pytest.approx(10.0) and t0["frames"] == 10
    for limb in ("left_wrist", "right_wrist", "left_ankle", "right_ankle"):
        st = t0["limbs"][limb]["speed_px_s"]
        assert st is None or (st["n"] <= 9 and 0 <= st["median"] <= st["max"])
    assert set(t0["symmetry"]) == {"arms", "legs"} and "mean_speed_px_s" in t0["quantity_of_motion"]
    assert (tmp_path / "p_movement.png").read_bytes()[:4] == b"\x89PNG"
    assert res["outputs"]["skeleton"].endswith("p_skeleton.mp4")


def test_predict_video_options_and_errors(checkpoints, clip_video, tmp_path):
    from pose_models.video import VideoConfig, run_videos
    from syrip_gen.errors import UserError

    video, _ = clip_video
    done = run_videos([video], checkpoints["detector"], checkpoints["pose2d"], tmp_path / "out",
                      VideoConfig(smooth=False, overlay=False, skeleton_video=False, movement=False, max_frames=4,
                                  max_infants=2, min_box_score=0.0, min_box_side=0.0, detect_every=1), device="cpu")
    res = json.loads((tmp_path / "out" / "clip_00001.json").read_text())
    assert done[0]["frames"] == 4 and "overlay" not in done[0] and done[0]["detector_runs"] == 4
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip_00001.csv", "clip_00001.json"]
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


# ---- two infants -----------------------------------------------------------------------------------
class StickDetector:
    """A stand-in detector with the CenterDetector interface that finds the stick infants of
    ``video_fixtures`` by their line colour: predict's multi-infant path (detection every k frames,
    boxes carried between, all crops in one forward, tracking) is tested apart from how well a
    toy-trained detector separates two infants."""

    kind = "detector"

    def __init__(self, size: int = 128):
        from pose_models.detector import DetectorConfig

        self.cfg = DetectorConfig(input_size=size)
        self.calls = 0

    def __call__(self, images):
        import cv2

        from pose_models.data import MEAN, STD

        self.calls += 1
        b, _, s, _ = images.shape
        h = w = s // 4
        out = torch.full((b, 5, h, w), -20.0)
        rgb = (images.permute(0, 2, 3, 1).numpy() * STD + MEAN) * 255
        for i in range(b):
            mask = ((rgb[i, ..., 0] > 170) & (rgb[i, ..., 1] > 140) & (rgb[i, ..., 2] < 130)).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(mask, np.ones((7, 7), np.uint8), iterations=2))
            for x, y, bw, bh, area in stats[1:]:
                if area < 20:
                    continue
                cx, cy = (x + bw / 2 - 1.5) / 4, (y + bh / 2 - 1.5) / 4
                col, row = int(cx), int(cy)
                out[i, :, row, col] = torch.tensor([20.0, bw / (w * 4), bh / (h * 4), cx - col, cy - row])
        return out, None


def test_two_infants_side_by_side_give_two_stable_tracks(checkpoints, tmp_path):
    from pose_models.stickvideo import stick_clip

    from pose_models.checkpoint import load_model
    from pose_models.video import VideoConfig, detect_infants, predict_video

    video = tmp_path / "two.mp4"
    gt = stick_clip(video, frames=24, size=(192, 96), infants=2)
    det = StickDetector()
    pose, _ = load_model(checkpoints["pose2d"], expect="pose2d")
    first = next(iter(__import__("syrip_gen.video", fromlist=["x"]).read_frames(video)))
    (boxes, _), = detect_infants(det, [first], "cpu", VideoConfig())
    assert len(boxes) == 2  # both infants found, not one box between them
    records, info = predict_video(video, det, pose, VideoConfig(detect_every=4), "cpu", log=lambda *_: None)
    assert info["frames"] == 24 and info["frames_without_infant"] == 0
    assert det.calls < 24  # not on every frame
    by_track = {}
    for r in records:
        by_track.setdefault(r.track_id, []).append(r)
    assert len(by_track) == 2 and all(len(v) == 24 for v in by_track.values())  # two tracks, every frame
    for recs in by_track.values():  # each track stays on its own infant (left or right half)
        cx = np.array([r.box[0] + r.box[2] / 2 for r in recs])
        side = cx > 96
        assert side.all() or not side.any()
        truth = gt[:, int(side[0])].mean(1)[:, 0]
        assert np.abs(cx - truth).max() < 30


# ---- faults of issue 34 (tour 3) -------------------------------------------------------------------
def _predict(args, capsys):
    from syrip_gen.cli import main

    code = main(["predict", *map(str, args), "--device", "cpu"])
    return code, capsys.readouterr()


def test_c05_damaged_frames_do_not_cut_the_video_short(checkpoints, tmp_path, capsys):
    import cv2
    from pose_models.stickvideo import stick_clip

    clip = tmp_path / "clip.mp4"
    stick_clip(clip, frames=5, size=(160, 120))
    good, bad = clip.read_bytes(), tmp_path / "midcorrupt.mp4"
    for frac in np.linspace(0.3, 0.9, 25):  # 800 bytes overwritten where a frame inside becomes undecodable
        b = bytearray(good)
        n = int(len(b) * frac)
        b[n:n + 800] = b"Z" * 800
        bad.write_bytes(bytes(b))
        cap = cv2.VideoCapture(str(bad))
        reads = [cap.read()[0] for _ in range(5)]
        cap.release()
        if not all(reads[:4]) and reads[-1]:
            break
    readable = sum(reads)
    assert not all(reads[:4]) and reads[-1]  # damaged inside, readable after
    code, cap_out = _predict([bad, "--detector", checkpoints["detector"], "--pose2d", checkpoints["pose2d"],
                              "--out", tmp_path / "p.json", "--min-box-score", "0", "--min-box-side", "0"], capsys)
    assert code == 0
    res = json.loads((tmp_path / "p.json").read_text())
    assert res["frames"] == readable > 1 and res["damaged_frames"] == 5 - readable
    assert sorted({r["frame"] for r in res["records"]}) == [i for i, ok in enumerate(reads) if ok]
    assert "damaged frames" in cap_out.err
    from syrip_gen.video import read_frames
    assert len(list(read_frames(tmp_path / "p_skeleton.mp4"))) == 5  # times kept: damaged frames filled


def test_c07_a_one_pixel_video_is_one_line_before_any_work(tmp_path, capsys):
    import cv2

    v = tmp_path / "onepx.avi"
    w = cv2.VideoWriter(str(v), cv2.VideoWriter_fourcc(*"MJPG"), 10, (1, 1))
    for _ in range(5):
        w.write(np.full((1, 1, 3), 100, np.uint8))
    w.release()
    code, out = _predict([v, "--detector", tmp_path / "no.pt", "--pose2d", tmp_path / "no.pt",
                          "--out", tmp_path / "p.json"], capsys)
    assert code == 2 and "too small" in out.err and len(out.err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [v]


def test_c09_a_video_without_an_infant_gets_no_infant_and_a_warning(checkpoints, tmp_path, capsys):
    import cv2

    v = tmp_path / "plain.mp4"
    w = cv2.VideoWriter(str(v), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for _ in range(12):
        w.write(np.full((120, 160, 3), (60, 120, 200), np.uint8))
    w.release()
    code, out = _predict([v, "--detector", checkpoints["detector"], "--pose2d", checkpoints["pose2d"],
                          "--min-box-score", "1.0", "--out", tmp_path / "p.json"], capsys)
    assert code == 0
    res = json.loads((tmp_path / "p.json").read_text())
    assert res["records"] == [] and res["tracks"] == [] and res["frames_without_infant"] == 12
    assert len([line for line in out.err.splitlines() if "no infant found" in line]) == 1
    summary = json.loads(out.out.strip().splitlines()[-1])
    assert summary["records"] == 0 and summary["frames_without_infant"] == 12


@pytest.fixture
def small_clip(tmp_path):
    from pose_models.stickvideo import stick_clip

    v = tmp_path / "in" / "clip.mp4"
    stick_clip(v, frames=3, size=(64, 48))
    return v


NO_MODEL = ["--detector", "/nonexistent/d.pt", "--pose2d", "/nonexistent/p.pt"]  # checks come before loading


def test_c15_a_read_only_out_is_one_line_before_any_work(small_clip, tmp_path, capsys, monkeypatch):
    import errno
    import tempfile

    ro = tmp_path / "ro"
    ro.mkdir()
    real = tempfile.mkstemp

    def mkstemp(*a, dir=None, **k):  # a read-only mount, as root can write through chmod
        if dir is not None and str(dir).startswith(str(ro)):
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    code, out = _predict([small_clip, *NO_MODEL, "--out", ro / "c1.json"], capsys)
    assert code == 2 and "read-only" in out.err and "nonexistent" not in out.err


def test_c16_predict_does_not_replace_a_csv_nobody_named(small_clip, tmp_path, capsys):
    (tmp_path / "results.csv").write_text("a,b,c\n")
    code, out = _predict([small_clip, *NO_MODEL, "--out", tmp_path / "results.json"], capsys)
    assert code == 2 and "results.csv" in out.err and "did not write" in out.err
    assert (tmp_path / "results.csv").read_text() == "a,b,c\n"


def test_c16_a_rerun_replaces_predicts_own_files(checkpoints, small_clip, tmp_path, capsys):
    args = [small_clip, "--detector", checkpoints["detector"], "--pose2d", checkpoints["pose2d"],
            "--out", tmp_path / "r.json", "--min-box-score", "0", "--min-box-side", "0", "--no-overlay",
            "--no-skeleton-video"]
    assert _predict(args, capsys)[0] == 0
    assert _predict(args, capsys)[0] == 0


def test_c17_predict_never_writes_over_its_input(small_clip, tmp_path, capsys):
    v = tmp_path / "ov" / "baby_overlay.mp4"
    v.parent.mkdir()
    v.write_bytes(small_clip.read_bytes())
    before = v.read_bytes()
    code, out = _predict([v, *NO_MODEL, "--out", tmp_path / "ov" / "baby.json"], capsys)
    assert code == 2 and "input video" in out.err
    assert v.read_bytes() == before


def test_c18_two_videos_of_one_name_into_one_folder_are_refused(small_clip, tmp_path, capsys):
    for d in ("day1", "day2"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "clip.mp4").write_bytes(small_clip.read_bytes())
    code, out = _predict([tmp_path / "day1" / "clip.mp4", tmp_path / "day2" / "clip.mp4", *NO_MODEL,
                          "--out", tmp_path / "samestem"], capsys)
    assert code == 2 and "both write" in out.err and not (tmp_path / "samestem").exists()


def test_c19_out_an_existing_non_json_file_is_one_line(small_clip, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("notes\n")
    code, out = _predict([small_clip, *NO_MODEL, "--out", notes], capsys)
    assert code == 2 and "existing file" in out.err and notes.read_text() == "notes\n"


def test_movement_summary_measures_known_limb_motion():
    from pose_models.movement import summarise

    recs = []
    for f in range(20):
        kp = np.tile([[50.0, 50.0, 1.0]], (17, 1))
        kp[[5, 6, 11, 12], 0] += [0, 10, 0, 10]
        kp[[11, 12], 1] += 40  # torso 40 px
        kp[:, 0] += 3 * f  # the whole body drifting: not limb movement
        kp[9, 0] += 10 * f  # the left wrist moves 10 px a frame relative to the trunk
        recs.append({"frame": f, "time_s": f / 10, "track_id": 7, "keypoints": kp.tolist()})
    t = summarise(recs, {"video": "v", "fps": 10, "frames": 20})["tracks"]["7"]
    assert t["torso_px"] == pytest.approx(40.0)
    assert t["limbs"]["left_wrist"]["speed_px_s"]["median"] == pytest.approx(100.0)
    assert t["limbs"]["left_wrist"]["speed_torso_s"]["median"] == pytest.approx(2.5)
    assert t["limbs"]["right_wrist"]["speed_px_s"]["max"] == pytest.approx(0.0)
    assert t["limbs"]["left_wrist"]["acceleration_px_s2"]["max"] == pytest.approx(0.0, abs=1e-6)
    assert t["symmetry"]["arms"]["ratio"] == 0.0
