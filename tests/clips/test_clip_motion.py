"""Clips that move like infants (issue 32 items 2-3): the pelvis held while the limbs move (no bounce),
every kept clip moves at least ``min_movement_m``, several infants per clip with ``sampling.multi_share``,
per-frame contact records, memory flat in clip length (issue 34 C35)."""
import json
import tracemalloc

import numpy as np
import pytest
from helpers.clips import plausible_fits

from syrip_gen.render.sequence.clips import ClipConfig, plan_clip, render_clips
from syrip_gen.render.sequence.motion import MotionConfig
from syrip_gen.render.world.variants import VariantConfig

ARMS_ONLY = MotionConfig(part_prob=1.0, kick_deg=(0.0, 0.0), head_deg=(0.0, 0.0), arm_deg=(35.0, 35.0),
                         arm_hz=(1.5, 1.5), blend_prob=0.0)


def _infos(body, path, library_pose=None, seed=1):
    """Fits of plausible supine poses, or all of the posture library's ``library_pose``."""
    from syrip_gen.fits import usable_fits
    from syrip_gen.posture_library import load_library, posture_pose
    from syrip_gen.render.world.sources import prepare_fits

    fits = plausible_fits(body, path, n=2, seed=seed)
    if library_pose:
        label = next(p.label for p in load_library() if p.name == library_pose)
        pose = posture_pose(library_pose).reshape(24, 3).tolist()
        lines = [json.loads(x) for x in fits.read_text().splitlines()]
        fits.write_text("".join(json.dumps({**r, "posture": label, "pose": pose}) + "\n" for r in lines))
    recs, _ = usable_fits(fits, len(body.shape_names))
    return fits, prepare_fits(recs, body)


def test_sitting_infant_waving_its_arms_keeps_its_hips_still(anny_body, tmp_path):
    from syrip_gen.gates.pose import PoseChecker
    from syrip_gen.render.world.sources import posture_pool

    # leaning forward on both hands: re-seating the body on its lowest vertex every frame (the old
    # way) bounced its hips 1.6-3 cm with the hands
    _, infos = _infos(anny_body, tmp_path / "fits.jsonl", library_pose="sitting_tripod")
    cfg = ClipConfig.of(seconds=2.0, fps=15, width=128, height=96, seed=0, motion=ARMS_ONLY, min_movement_m=0.0)
    worst = 0.0
    for variant in range(3):
        plan, reason = plan_clip(infos[0], variant, anny_body, cfg, PoseChecker(8.0), posture_pool(infos))
        assert reason is None
        kp = plan.keypoints.reshape(cfg.frames, -1, 17, 3)[:, 0]
        assert plan.spec.bodies[0].source_posture == "sitting"
        wrists = np.linalg.norm(kp[:, [9, 10]] - kp[:1, [9, 10]], axis=-1).max()
        assert wrists > 0.02  # the arms do move
        mid_hip = kp[:, [11, 12], 1].mean(1)
        worst = max(worst, float(mid_hip.max() - mid_hip.min()))
    assert worst < 0.01, worst  # < 1 cm up and down while only the arms move


def test_every_planned_clip_moves_at_least_the_minimum(anny_body, tmp_path):
    from syrip_gen.gates.pose import PoseChecker
    from syrip_gen.render.world.sources import posture_pool

    _, infos = _infos(anny_body, tmp_path / "fits.jsonl")
    tiny = MotionConfig(part_prob=1.0, kick_deg=(0.2, 0.2), arm_deg=(0.2, 0.2), head_deg=(0.2, 0.2), blend_prob=0.0)
    cfg = ClipConfig.of(seconds=1.0, fps=10, width=128, height=96, motion=tiny)
    plan, reason = plan_clip(infos[0], 0, anny_body, cfg, PoseChecker(8.0), posture_pool(infos))
    assert plan is None and reason.startswith("too still")
    moving = ClipConfig.of(seconds=1.0, fps=10, width=128, height=96, motion=MotionConfig(part_prob=1.0))
    plan, reason = plan_clip(infos[0], 0, anny_body, moving, PoseChecker(8.0), posture_pool(infos))
    assert reason is None and min(plan.movement_m) >= moving.min_movement_m


def test_multi_infant_clip_has_a_track_per_infant_with_per_frame_contact(anny_body, tmp_path):
    fits, _ = _infos(anny_body, tmp_path / "fits.jsonl")
    cfg = ClipConfig.of(clips=1, seconds=1.0, fps=6, width=128, height=96, texture_size=64, gate=False,
                     preview=False, camera_orbit_deg=(0.0, 0.0), min_movement_m=0.0,
                     sampling=VariantConfig(fill=(0.45, 0.7), multi_share=1.0, infants=(2, 2)))
    summary = render_clips(fits, tmp_path / "c", cfg, log=lambda *_: None)
    coco = json.loads((tmp_path / "c" / "annotations" / "person_keypoints_train_infant.json").read_text())
    assert summary.frames == cfg.frames == len(coco["images"])
    assert len(coco["annotations"]) == 2 * cfg.frames
    for img in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
        assert sorted(a["track_id"] for a in anns) == [0, 1]
        assert all({"gap_m", "margin_m", "sink_m"} <= set(a["contact"]) for a in anns)
    assert [i["track_id"] for i in coco["videos"][0]["infants"]] == [0, 1]


def _peak(fits, out, seconds):
    cfg = ClipConfig.of(clips=1, seconds=seconds, fps=8, width=320, height=240, texture_size=64, gate=False,
                     camera_orbit_deg=(0.0, 0.0), min_movement_m=0.0)
    tracemalloc.start()
    render_clips(fits, out, cfg, log=lambda *_: None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, cfg.frames


@pytest.mark.filterwarnings("ignore")
def test_clip_memory_does_not_grow_with_frames(anny_body, tmp_path):
    fits, _ = _infos(anny_body, tmp_path / "fits.jsonl")
    _peak(fits, tmp_path / "warm", 0.5)  # body, GL context and caches made once
    small, n_small = _peak(fits, tmp_path / "a", 2.5)
    large, n_large = _peak(fits, tmp_path / "b", 5.0)
    per_frame = (large - small) / (n_large - n_small)
    assert per_frame < 0.5 * 320 * 240 * 3, per_frame  # under half of one decoded frame per frame


def _photo_of(body, r: dict) -> np.ndarray:
    """A fit's photo as test_photo_textures makes one: the fitted body flat-lit in one colour."""
    import torch

    from syrip_gen.geometry import Camera
    from syrip_gen.render.pixels.renderer import Renderer
    from syrip_gen.render.world.scene import BodyMesh, Scene

    with torch.no_grad():
        v = body(torch.tensor([r["pose"]]), torch.tensor([r["shape"]]), with_vertices=True).vertices[0].double().numpy()
    cam = r["camera"]
    verts_cam = v @ np.asarray(cam["R"]).T + np.asarray(cam["t"])
    K = np.array([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1.0]])
    texture = np.zeros((64, 64, 3), np.uint8)
    texture[:] = (200, 60, 150)
    return Renderer(640, 480, body.topology()).render(Scene(
        bodies=(BodyMesh(verts_cam.astype(np.float32), texture),),
        camera=Camera(K=K, R=np.eye(3), t=np.zeros(3), width=640, height=480), lights=(), ambient=(1.0, 1.0, 1.0),
        background=np.full((480, 640, 3), 110, np.uint8))).rgb


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_clip_with_backgrounds_and_photo_textures_uses_both_and_carries_contact(anny_body, tmp_path, capsys):
    """Issue 33: a clip is a scene drawn by the stills' spine, so the render options reach it."""
    import cv2

    from syrip_gen.cli import main

    fits, _ = _infos(anny_body, tmp_path / "fits" / "fits.jsonl")
    records = [json.loads(x) for x in fits.read_text().splitlines()]
    for i, r in enumerate(records):  # each fit's "photo": its body, magenta, on a grey floor, at its camera
        cv2.imwrite(str(tmp_path / f"photo{i}.png"), _photo_of(anny_body, r)[..., ::-1])
        r["image_path"] = str(tmp_path / f"photo{i}.png")
    fits.write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "bg").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(tmp_path / "bg" / f"b{i}.jpg"), rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    out = tmp_path / "c"
    code = main(["sequence", str(fits), "--out", str(out), "--clips", "2", "--seconds", "0.5", "--fps", "6",
                 "--width", "96", "--height", "72", "--texture-size", "64", "--no-gate", "--no-preview",
                 "--backgrounds", str(tmp_path / "bg"), "--photo-textures"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["photo_textures"] == {"baked": 2}
    coco = json.loads((out / "annotations" / "person_keypoints_train_infant.json").read_text())
    provs = [a["provenance"] for a in coco["annotations"]]
    assert {p["texture"]["kind"] for p in provs} == {"photo"}  # every infant wears a baked photo texture
    used = {p["support"]["kind"] == "photo" or p["background"].get("kind") == "file" for p in provs}
    assert True in used  # the user's backgrounds: under the infant or behind it
    for clip in {p["clip"]["name"] for p in provs}:
        frames = [a for a in coco["annotations"] if a["provenance"]["clip"]["name"] == clip]
        assert len(frames) == 3 and all({"gap_m", "margin_m", "sink_m"} <= set(a["contact"]) for a in frames)
