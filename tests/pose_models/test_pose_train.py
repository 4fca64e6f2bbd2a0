"""Training: every model learns on a tiny drawn dataset; exact resume; evaluation and prediction end to end;
bad input gives counted skips or one-line errors.

Issue 6."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from pose_models.config import TrainConfig
from pose_models.synthetic import make_dataset
from syrip_gen.errors import UserError

NOAUG = {"flip": 0, "rotation": 0, "scale": 0, "colour": 0, "half_body": 0}
SMALL = {"batch_size": 16, "input_h": 64, "input_w": 64, "detector_size": 64, "deconv_channels": 64, "sigma": 1.0,
         "warmup_steps": 1, "min_lr_ratio": 1.0, "log_every": 1, "device": "cpu", "augment": NOAUG, "lr": 1e-3}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    torch.set_num_threads(2)
    return make_dataset(tmp_path_factory.mktemp("tiny"), n=16)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def _train(task, data, out, **extra):
    from pose_models.train import train

    cfg = TrainConfig.from_dict({"task": task, "train": [str(data)], "out_dir": str(out), **SMALL, **extra})
    return train(cfg, log=lambda *_: None), [r for r in csv.DictReader(open(out / "log.csv"))]


def _falls(values, factor=0.85):
    v = [float(x) for x in values]
    return np.mean(v[-2:]) < factor * np.mean(v[:2]), v


@pytest.fixture(scope="module")
def pose_ckpt(data, runs):
    return _train("pose2d", data, runs / "pose", max_steps=10)


@pytest.fixture(scope="module")
def det_ckpt(data, runs):
    return _train("detector", data, runs / "det", max_steps=10)


def test_pose2d_loss_falls(pose_ckpt):
    ok, v = _falls([r["pose"] for r in pose_ckpt[1]])
    assert ok, v


def test_detector_loss_falls(det_ckpt):
    ok, v = _falls([r["det"] for r in det_ckpt[1]])
    assert ok, v


def test_domain_adaptation_from_scratch_alternates_and_trains_every_layer(data, runs):
    from pose_models.checkpoint import load_model
    from pose_models.models import build_model
    from pose_models.train import model_args_from

    path, log = _train("pose2d", data, runs / "da", max_steps=16, domain_adaptation=True)
    stages = [float(r["stage"]) for r in log]
    assert stages[:4] == [1.0, 2.0, 1.0, 2.0]
    ok, v = _falls([r["pose"] for r in log if r["stage"] == "2"], 0.92)
    assert ok, v
    model, ck = load_model(path, expect="pose2d")
    assert ck["model_args"]["freeze_early"] is False  # never pretrained elsewhere: nothing frozen
    torch.manual_seed(0)  # the trainer's seed: the same initial weights
    fresh = build_model("pose2d", model_args_from(TrainConfig.from_dict(ck["config"])))
    assert not torch.equal(model.backbone.layer1[0].conv1.weight, fresh.backbone.layer1[0].conv1.weight)
    assert not torch.equal(model.backbone.layer4[0].conv1.weight, fresh.backbone.layer4[0].conv1.weight)


def test_domain_adaptation_from_outside_weights_freezes_early_stages(data, runs, tmp_path):
    """FiDIP's published protocol for ``init`` runs: the pretrained early layers stay as loaded."""
    from pose_models.checkpoint import load_model
    from pose_models.models import build_model
    from pose_models.train import model_args_from

    torch.manual_seed(123)
    donor = build_model("pose2d", model_args_from(TrainConfig.from_dict(
        {"task": "pose2d", "train": [str(data)], **SMALL})))
    init = tmp_path / "simplebaselines.pth"  # SimpleBaselines layout, as an outside checkpoint comes
    torch.save({k.removeprefix("backbone."): v for k, v in donor.state_dict().items()}, init)
    path, _ = _train("pose2d", data, runs / "da_init", max_steps=8, domain_adaptation=True, init=str(init))
    model, ck = load_model(path, expect="pose2d")
    assert ck["model_args"]["freeze_early"] is True
    assert torch.equal(model.backbone.layer1[0].conv1.weight, donor.backbone.layer1[0].conv1.weight)
    assert torch.equal(model.backbone.bn1.running_mean, donor.backbone.bn1.running_mean)
    assert not torch.equal(model.backbone.layer4[0].conv1.weight, donor.backbone.layer4[0].conv1.weight)
    explicit = TrainConfig.from_dict({"task": "pose2d", "train": [str(data)], "domain_adaptation": True,
                                      "init": str(init), "freeze_early": False})
    assert explicit.early_frozen is False


def test_lifter_learns_and_resumes_exactly(data, runs):
    from pose_models.checkpoint import read_checkpoint

    full, log = _train("lifter", data, runs / "lift_full", max_steps=16, lifter_hidden=64, dropout=0.1, lr=3e-3)
    ok, v = _falls([r["mpjpe_m"] for r in log], 0.9)
    assert ok, v
    _train("lifter", data, runs / "lift_resume", max_steps=7, lifter_hidden=64, dropout=0.1, lr=3e-3)
    resumed, _ = _train("lifter", data, runs / "lift_resume", max_steps=16, lifter_hidden=64, dropout=0.1, lr=3e-3)
    a, b = read_checkpoint(full)["model"], read_checkpoint(resumed)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_run_continues_in_the_path_of_its_first_part(data, runs, monkeypatch):
    """Issue 30: the first part trains in bfloat16 channels-last; the machine then says float32 (as a CPU
    without native bfloat16 would): the resumed part must continue, and record, bfloat16, and end with the
    same weights as one uninterrupted bfloat16 run. Two fresh runs of one config record the same path."""
    from pose_models.checkpoint import read_checkpoint

    kw = dict(max_steps=4, ckpt_every=2, deconv_channels=32)
    monkeypatch.setenv("SYRIP_PRECISION", "bfloat16")
    full, _ = _train("pose2d", data, runs / "path_full", **kw)
    _train("pose2d", data, runs / "path_resume", **{**kw, "max_steps": 2})
    monkeypatch.setenv("SYRIP_PRECISION", "float32")
    resumed, _ = _train("pose2d", data, runs / "path_resume", **kw)
    a, b = read_checkpoint(full), read_checkpoint(resumed)
    assert (b["precision"], b["channels_last"]) == ("bfloat16", True) == (a["precision"], a["channels_last"])
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    fresh = [read_checkpoint(_train("pose2d", data, runs / f"path_fresh{i}", **{**kw, "max_steps": 1})[0])
             for i in range(2)]
    assert {(c["precision"], c["channels_last"]) for c in fresh} == {("float32", False)}
    with pytest.raises(UserError, match="resumes only in that path"):
        _train("pose2d", data, runs / "path_resume", **{**kw, "max_steps": 6, "precision": "float32"})


def test_evaluate_with_gt_and_detected_boxes(data, pose_ckpt, det_ckpt):
    from pose_models.evaluate import evaluate

    m = evaluate(pose_ckpt[0], data, device="cpu", log=lambda *_: None)
    assert m["n"] == 16 and 0 <= m["oks"]["AP"] <= 1 and set(m["per_joint"]) >= {"nose", "left_ankle"}
    assert set(m["per_posture"]) == {"supine", "prone", "sitting", "standing"}
    json.dumps(m)
    md = evaluate(pose_ckpt[0], data, boxes="detector", detector=det_ckpt[0], device="cpu", log=lambda *_: None)
    assert md["boxes"] == "detector" and md["n"] == 16
    mb = evaluate(det_ckpt[0], data, device="cpu", log=lambda *_: None)
    assert 0 <= mb["bbox"]["AP"] <= 1
    mc = evaluate(pose_ckpt[0], data, device="cpu", bn_calibration=data, log=lambda *_: None)  # AdaBN
    assert mc["bn_calibration"]["images"] == 16 and 0 <= mc["oks"]["AP"] <= 1 and m["bn_calibration"] is None


def test_predict_writes_json_and_drawings(data, pose_ckpt, det_ckpt, runs, tmp_path):
    lift, _ = _train("lifter", data, runs / "lift_pred", max_steps=2, lifter_hidden=32)
    from syrip_gen.cli import main

    code = main(["predict", str(data / "images"), "--detector", str(det_ckpt[0]), "--pose2d", str(pose_ckpt[0]),
                 "--lifter", str(lift), "--out", str(tmp_path / "p.json"), "--vis", str(tmp_path / "vis"),
                 "--device", "cpu"])
    assert code == 0
    preds = json.loads((tmp_path / "p.json").read_text())["predictions"]
    assert len(preds) == 16 and np.asarray(preds[0]["keypoints_3d"]).shape == (17, 3)
    assert len(list((tmp_path / "vis").glob("*.png"))) == 16


def test_bad_input_is_counted_or_refused(data, det_ckpt, tmp_path):
    from pose_models.checkpoint import load_model
    from pose_models.data import Pose2DDataset, load_records
    from syrip_gen.coco import load_coco, write_coco

    kf = load_coco(data)
    images, anns = [dict(i) for i in kf.data["images"]], [dict(a) for a in kf.annotations]
    (tmp_path / "images").mkdir()
    for im in images[:5]:
        (tmp_path / "images" / im["file_name"]).write_bytes((data / "images" / im["file_name"]).read_bytes())
    (tmp_path / "images" / images[0]["file_name"]).write_bytes(b"not a jpeg")  # corrupt
    anns[1]["keypoints"] = anns[1]["keypoints"][:-3]                           # 16 keypoints
    anns[2]["image_id"] = 999                                                  # no image record
    write_coco(tmp_path / "annotations" / "person_keypoints_x_infant.json", images, anns)
    loaded = load_records(tmp_path)
    assert loaded.skipped["keypoints not 17x3 numbers (48)"] == 1
    assert loaded.skipped["annotation refers to a missing image record"] == 1
    assert loaded.skipped["image file missing"] == 11
    ds = Pose2DDataset(loaded.records, (64, 64))
    assert len(ds) == 2 and ds.skipped["image unreadable or corrupt"] == 1
    with pytest.raises(UserError, match="detector checkpoint, but a pose2d"):
        load_model(det_ckpt[0], expect="pose2d")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a readable"):
        load_model(tmp_path / "junk.pt")


def test_cuda_absent_is_one_line_error():
    from pose_models.device import resolve_device

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(UserError, match="no CUDA"):
        resolve_device("cuda")


def test_config_from_yaml_and_overrides(tmp_path):
    from syrip_gen.paths import PIPELINES

    for name in ("train_pose2d_cpu", "train_pose2d_gpu", "train_detector_cpu", "train_lifter"):
        cfg = TrainConfig.from_yaml(PIPELINES / f"{name}.yaml", ["max_steps=3", "augment.flip=0"])
        assert cfg.max_steps == 3 and cfg.augment.flip == 0
    cpu = TrainConfig.from_yaml(PIPELINES / "train_pose2d_cpu.yaml")
    assert (cpu.depth, cpu.input_h, cpu.input_w) == (18, 128, 96)
    gpu = TrainConfig.from_yaml(PIPELINES / "train_pose2d_gpu.yaml")
    assert (gpu.depth, gpu.input_h, gpu.input_w) == (50, 256, 192)
    with pytest.raises(UserError, match="unknown key.s. bogus"):
        TrainConfig.from_dict({"task": "pose2d", "train": ["x"], "bogus": 1})


def test_help_does_not_import_torch():
    code = ("import sys; from syrip_gen.cli import build_parser\n"
            "for c in ('train', 'evaluate', 'predict'): build_parser([c])\n"
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_evaluate_with_no_usable_annotation_is_an_error(data, det_ckpt, tmp_path):
    """Every image file missing: an error naming why, not AP 0 with exit code 0 (issue 16, item 6)."""
    from pose_models.evaluate import evaluate
    from syrip_gen.coco import load_coco, write_coco

    kf = load_coco(data)
    write_coco(tmp_path / "annotations" / "person_keypoints_x_infant.json", kf.data["images"], kf.annotations)
    with pytest.raises(UserError, match=r"no annotation can be evaluated on \(skipped: 16 image file missing\)"):
        evaluate(det_ckpt[0], tmp_path, device="cpu")


def test_lifter_on_reference_3d_of_unknown_units(data, runs, tmp_path):
    """A dataset with ``3d/keypoints_3d_corrected.json`` (LSP-14, any units and frame) and no
    ``keypoints_3d``: the lifter is scored in limb lengths after a similarity alignment."""
    import shutil

    from scipy.spatial.transform import Rotation

    from pose_models.evaluate import evaluate
    from syrip_gen.coco import find_keypoint_json
    from syrip_gen.pose3d import COCO_OF_LSP12

    lift, _ = _train("lifter", data, runs / "lift_ref", max_steps=4, lifter_hidden=32)
    coco = json.loads(find_keypoint_json(data).read_text())
    names = {img["id"]: img["file_name"] for img in coco["images"]}
    rot = Rotation.from_euler("xyz", [20, -40, 75], degrees=True).as_matrix()
    poses = {}
    for a in coco["annotations"]:
        k3 = np.asarray(a.pop("keypoints_3d"), float).reshape(17, 3)
        lsp = np.concatenate([k3[COCO_OF_LSP12], np.zeros((2, 3))])  # + neck, head top (unused)
        poses[names[a["image_id"]]] = (7.0 * lsp @ rot.T + 3.0).tolist()  # another scale, frame, origin
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "person_keypoints_test_infant.json").write_text(json.dumps(coco))
    (tmp_path / "3d").mkdir()
    (tmp_path / "3d" / "keypoints_3d_corrected.json").write_text(json.dumps({"poses": poses}))
    shutil.copytree(find_keypoint_json(data).parent.parent / "images", tmp_path / "images")
    m = evaluate(lift, tmp_path, device="cpu", log=lambda *_: None)
    r = m["reference_3d"]
    assert "mpjpe_mm" not in m and r["n"] == 16, m
    assert 0 < r["limb_error_mean"] < 5 and r["average_pose_mean"] > 0


def test_prune_keeps_the_last_and_every_keep_every_th_checkpoint(tmp_path):
    from pose_models.checkpoint import prune

    (tmp_path / "checkpoints").mkdir()
    for step in range(1, 8):
        (tmp_path / "checkpoints" / f"step_{step:07d}.pt").write_bytes(b"x")
    prune(tmp_path, keep=1, keep_every=3)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step_0000003.pt", "step_0000006.pt", "step_0000007.pt"]
    prune(tmp_path, keep=1)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_0000007.pt"]
