"""Clips of a moving infant: smooth motion held inside the joint limits and the pose prior, body kept
on its support, per-frame COCO with frame/clip/track ids, MP4s OpenCV reads back, gates per clip.

Issue 25."""
import json

import numpy as np
import pytest
import torch
from helpers.clips import plausible_fits

from syrip_gen.render.sequence.clips import ClipConfig, limit_arrays, plan_clip, render_clips
from syrip_gen.render.sequence.motion import (Motion, MotionConfig, Wave, acceleration, animate, draw_motion, plan_motion,
                                     soft_clamp)

W, H = 128, 96
CFG = ClipConfig.of(clips=1, seconds=1.5, fps=24, width=W, height=H, seed=3, moving_camera_prob=1.0,
                 motion=MotionConfig(part_prob=1.0, blend_prob=1.0))


@pytest.fixture(scope="module")
def fits(anny_body, tmp_path_factory):
    return plausible_fits(anny_body, tmp_path_factory.mktemp("clipfits") / "fits.jsonl", n=2, seed=1)  # fits that rest


@pytest.fixture(scope="module")
def clip_run(fits, tmp_path_factory):
    out = tmp_path_factory.mktemp("clips") / "run"
    return render_clips(fits, out, CFG, log=lambda *_: None), out


def _frames(out):
    coco = json.loads((out / "annotations" / "person_keypoints_train_infant.json").read_text())
    images = sorted(coco["images"], key=lambda i: i["frame_id"])
    by_image = {a["image_id"]: a for a in coco["annotations"]}
    return coco, images, [by_image[i["id"]] for i in images]


def _max_second_difference(kp):
    """Largest per-frame second difference of the labelled 2D keypoints (pixels)."""
    return float(acceleration(kp, 1.0).max())


def test_three_second_clip_moves_smoothly_with_one_track(clip_run):
    summary, out = clip_run
    coco, images, anns = _frames(out)
    n = CFG.frames
    assert n == 36 and summary.frames == n and len(images) == n == len(coco["annotations"])
    assert [i["frame_id"] for i in images] == list(range(n))
    assert {(i["clip_id"], i["vid_id"], i["nframes"]) for i in images} == {(1, 1, n)}
    assert {a["track_id"] for a in anns} == {0}
    (video,) = coco["videos"]
    assert {k: video[k] for k in ("id", "name", "nframes", "fps")} == {"id": 1, "name": "clip_00001", "nframes": n,
                                                                      "fps": CFG.fps}
    (infant,) = video["infants"]  # amplitudes and rates recorded per clip, limbs at infant rates
    assert infant["movement_m"] >= CFG.min_movement_m
    for part in ("kick", "arms"):
        assert 1.0 <= infant["motion"][part]["hz"] <= 3.0 and infant["motion"][part]["amplitude_deg"] > 0
    kp = np.array([a["keypoints"] for a in anns]).reshape(n, 17, 3)[..., :2]
    diag = float(np.median([np.hypot(*a["bbox"][2:]) for a in anns]))
    travel = np.linalg.norm(kp - kp[0], axis=-1).max()
    assert travel > 0.1 * diag, travel  # it does move
    smooth = _max_second_difference(kp)
    assert smooth < 0.05 * diag, (smooth, diag)  # no popping: bounded frame-to-frame acceleration
    popped = kp.copy()
    popped[[10, 20]] = popped[[20, 10]]  # the same check fails on a clip with two frames swapped
    assert _max_second_difference(popped) > 0.05 * diag


def test_clip_frames_stay_inside_the_joint_limits_and_the_prior(clip_run):
    from syrip_gen.fit.limits import joint_limit_violation
    from syrip_gen.fit.prior import default_prior

    _, out = clip_run
    _, _, anns = _frames(out)
    poses = torch.tensor([a["body"]["pose"] for a in anns], dtype=torch.float32)
    assert float(joint_limit_violation(poses).max()) < 1e-6
    nll = default_prior().nll(poses).reshape(-1)
    assert float((nll - nll[0]).max()) <= CFG.render.sampling.max_nll_increase + 1e-3
    moved = (poses[1:] - poses[0]).abs().amax((1, 2))
    assert float(moved.max()) > np.radians(3)  # the movement was not scaled away
    clip = json.loads((out / "clips.json").read_text())["clips"][0]
    assert clip["kept"] and clip["gates"]["rejected_frames"] == 0 and clip["stats"]["frames"] == 36
    assert max(clip["motion"]["scales"].values()) > 0


def test_clip_files_read_back_and_whole_clips_are_kept(clip_run):
    import cv2

    from syrip_gen.video import read_frames

    summary, out = clip_run
    for sub in ("previews", "videos"):
        frames = list(read_frames(out / sub / "clip_00001.mp4"))
        assert len(frames) == CFG.frames and frames[0].shape == (H, W, 3)
    _, images, _ = _frames(out)
    img = cv2.imread(str(out / "images" / images[5]["file_name"]))
    assert img is not None and img.shape == (H, W, 3)
    filtered = json.loads(open(summary.filtered_path).read())
    assert summary.clips_kept == 1 and len(filtered["images"]) == CFG.frames


def test_plan_keeps_the_body_on_its_support_and_starts_at_the_fit(anny_body, fits):
    from syrip_gen.fits import usable_fits
    from syrip_gen.gates.pose import PoseChecker
    from syrip_gen.render.world.sources import posture_pool, prepare_fits

    recs, _ = usable_fits(fits, len(anny_body.shape_names))
    infos = prepare_fits(recs, anny_body)
    plan, reason = plan_clip(infos[0], 0, anny_body, CFG, PoseChecker(8.0), posture_pool(infos))
    assert reason is None
    chunks = list(plan.vertices(anny_body, chunk=16))
    assert [c[0] for c in chunks] == [0, 16, 32] and chunks[0][1].dtype == np.float32
    verts = np.concatenate([c[1] for c in chunks])[:, 0]  # (F, V, 3) of the one infant
    low = verts[:, :, 1].min(1)
    assert abs(low[0] - plan.spec.support.y) < 1e-5  # frame 0 rests on the plane
    assert (low >= plan.spec.support.y - CFG.max_sink_m - 1e-5).all()  # limbs press in at most max_sink_m
    assert np.allclose(plan.poses[0, 0], np.asarray(plan.spec.bodies[0].pose), atol=1e-6)
    for cam, v in zip(plan.cameras, verts):
        uv, z = cam.project(v[::5])
        assert z.min() > 0 and uv.min() >= 0 and uv[:, 0].max() < W and uv[:, 1].max() < H


def test_motion_is_smooth_zero_at_start_and_clamped_softly():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.1, (24, 3))
    m = draw_motion(np.random.default_rng(1), MotionConfig(part_prob=1.0), has_target=True)
    assert set(m.parts) == {"kick", "arms", "head", "blend"} and m.blend_weight > 0
    times = np.arange(60) / 30
    target = rng.normal(0, 0.1, (24, 3))
    poses = animate(base, times, m, 0.5, target, limit_arrays())
    assert np.allclose(poses[0], base, atol=1e-9) and np.allclose(poses[:, 0], base[0])
    lo, hi = limit_arrays()
    assert (poses[:, 1:] >= np.minimum(lo, base)[1:] - 1e-9).all() and (poses[:, 1:] <= np.maximum(hi, base)[1:] + 1e-9).all()
    x = np.linspace(-3, 3, 601)
    y = soft_clamp(x, -1.0, 1.0, 0.2)
    assert y.max() < 1.0 and y.min() > -1.0 and np.allclose(y[np.abs(x) < 0.8], x[np.abs(x) < 0.8])
    assert (np.diff(y) >= 0).all() and np.abs(np.diff(y, 2)).max() < 1e-3  # monotone, no kink


def test_plan_motion_halves_each_part_until_accepted():
    base = np.zeros((24, 3))
    wave = [Wave(1, 0, np.radians(40), 1.0, 0.0, "kick"), Wave(12, 1, np.radians(10), 0.5, 0.0, "head")]
    motion = Motion(tuple(wave), 0.0, ("kick", "head"))

    def accept(b, p):  # refuses hip swings beyond 12 degrees
        return np.abs(p[:, 1, 0]) <= np.radians(12)

    planned = plan_motion(base, np.arange(40) / 20, motion, MotionConfig(ramp_s=0.2), accept)
    assert planned.scales == {"kick": 0.25, "head": 1.0}
    assert np.abs(planned.poses[:, 1, 0]).max() <= np.radians(12)
    assert np.abs(planned.poses[:, 12, 1]).max() > np.radians(8)


def test_sequence_command_and_bad_config(fits, tmp_path, capsys):
    from syrip_gen.cli import main
    from syrip_gen.errors import UserError

    with pytest.raises(UserError, match="at least 3"):
        ClipConfig.of(seconds=0.1, fps=10)
    code = main(["sequence", str(fits), "--out", str(tmp_path / "c"), "--clips", "1", "--seconds", "0.5", "--fps", "6",
                 "--width", "96", "--height", "72", "--camera-orbit-deg", "0", "0", "--no-gate", "--no-preview"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 3 and summary["filtered_path"] is None
    assert (tmp_path / "c" / "videos" / "clip_00001.mp4").is_file()
    assert not (tmp_path / "c" / "previews").exists()
    clip = json.loads((tmp_path / "c" / "clips.json").read_text())["clips"][0]
    assert clip["camera_orbit_deg"] == 0.0


def test_pipeline_sequence_step_hands_its_kept_clips_on(fits, tmp_path):
    from syrip_gen import pipeline

    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""
name: clips
out: {tmp_path / 'run'}
steps:
  - {{name: clips, kind: sequence, inputs: {{fits: {fits.parent}}},
     config: {{clips: 1, seconds: 0.5, fps: 6, width: 96, height: 72, preview: false, video: false}}}}
  - {{name: stats, kind: stats, inputs: {{dataset: clips}}}}
""")
    records = pipeline.run(pipeline.load_spec(spec), echo=lambda s: None)
    assert [r["status"] for r in records] == ["ran", "ran"]
    assert records[0]["summary"]["frames"] == 3
    kept = json.loads((tmp_path / "run" / "clips" / "filtered.json").read_text())
    assert kept["coco"].endswith("person_keypoints_train_filtered_infant.json")
    assert pipeline._dataset_of(tmp_path / "run" / "clips") == type(tmp_path)(kept["coco"])
    assert {r["status"] for r in pipeline.run(pipeline.load_spec(spec), echo=lambda s: None)} == {"skipped"}
    bad = spec.read_text().replace("fps: 6", "fps: 0")
    spec.write_text(bad)
    with pytest.raises(Exception, match="fps"):
        pipeline.run(pipeline.load_spec(spec), echo=lambda s: None)
