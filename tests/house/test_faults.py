"""Faults and misuse around the output folders (issue 22): foreign, busy, read-only and full
folders, failed starts, empty input. Each case: a one-line error (exit code 2, no traceback)
and nothing left behind that blocks the corrected rerun.

The read-only and full disks come from ``tests/helpers/faults.py`` (a real tiny tmpfs where this
process may mount one, else monkeypatched writes); renders use the numpy stand-in for GL."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers.faults import deny_writes, full_folder, read_only_folder
from helpers.render_data import use_fake_maker, write_fits

from syrip_gen.errors import UserError
from syrip_gen.paths import REPO_ROOT

SKELETONS = REPO_ROOT / "assets" / "postures" / "skeletons.json"
LOCK = ".syrip-gen.lock"


def _tree(folder: Path, skip: Path | None = None) -> dict:
    """Every file under ``folder`` (but ``skip``) with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and (skip is None or skip not in p.parents)}


def _cli(argv: list[str], capsys) -> tuple[object, str]:
    """Run the CLI in this process: (exit code, or what it raised; its stderr)."""
    from syrip_gen.cli import main

    try:
        code = main([str(a) for a in argv])
    except BaseException as err:  # noqa: BLE001 - a traceback is the failure being tested
        code = f"raised {type(err).__name__}: {err}"
    return code, capsys.readouterr().err


def _one_line_error(code, err: str, command: str) -> str:
    """Assert exit code 2 and one error line, no traceback; return that line."""
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.startswith(f"syrip-gen {command}: error:")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, (code, err[-2000:])
    return lines[0]


@pytest.fixture
def one_body(anny_body, monkeypatch):
    """Commands get the session's Anny body instead of loading their own (seconds each)."""
    monkeypatch.setattr("syrip_gen.body.load_body", lambda *a, **k: anny_body)
    return anny_body


def _photos(root: Path, n: int = 2) -> Path:
    """A COCO file of ``n`` small photos, one person box each (input of `backgrounds`)."""
    import cv2

    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(1, n + 1):
        img = np.full((120, 160, 3), 40 * i, np.uint8)
        img[20:50, 20:50] = (0, 0, 255)
        ok, buf = cv2.imencode(".png", img)
        (root / "images" / f"{i}.png").write_bytes(buf.tobytes())
        images.append({"id": i, "file_name": f"{i}.png", "width": 160, "height": 120})
        anns.append({"id": i, "image_id": i, "category_id": 1, "bbox": [20, 20, 30, 30],
                     "keypoints": [25, 25, 2] * 17, "num_keypoints": 17, "iscrowd": 0})
    path = root / "annotations" / "person_keypoints_train.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    return path


def _dataset(root: Path) -> Path:
    from helpers.filter_fixtures import skeleton_2d_samples, write_dataset

    write_dataset(root, skeleton_2d_samples(6))
    return root


# ---- 1. backgrounds and stats never write into a folder they did not make -------------------
def test_backgrounds_never_writes_into_a_users_folder(tmp_path, capsys):
    from syrip_gen.backgrounds import BackgroundsConfig, extract_backgrounds

    coco = _photos(tmp_path / "data")
    theirs = tmp_path / "userbg"
    theirs.mkdir()
    (theirs / "backgrounds.json").write_text('{"my": "own index"}')
    (theirs / "bg_00000001.jpg").write_bytes(b"my own photo")
    before = _tree(theirs)
    code, err = _cli(["backgrounds", coco, theirs], capsys)
    assert "not made by `syrip-gen backgrounds`" in _one_line_error(code, err, "backgrounds")
    assert _tree(theirs) == before
    # a new folder, its rerun (other settings replace that run's files), and a folder
    # written before runs were keyed (no run.json) are fine
    out = tmp_path / "bg"
    assert extract_backgrounds(coco, out).n_backgrounds == 2
    assert extract_backgrounds(coco, out, BackgroundsConfig(margin=0.5)).n_backgrounds == 2
    (out / "run.json").unlink()
    assert extract_backgrounds(coco, out).n_backgrounds == 2
    assert sorted(p.name for p in out.iterdir() if p.name != LOCK) == \
        ["backgrounds.json", "bg_00000001.jpg", "bg_00000002.jpg", "run.json"]


def test_stats_out_never_writes_into_a_foreign_folder(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds")
    theirs = tmp_path / "report"
    theirs.mkdir()
    (theirs / "poses.png").write_bytes(b"my own picture")
    before = _tree(theirs)
    code, err = _cli(["stats", ds, "--out", theirs], capsys)
    assert "not made by `syrip-gen stats`" in _one_line_error(code, err, "stats")
    assert _tree(theirs) == before
    for _ in range(2):  # the default DATASET/stats, and its rerun
        code, err = _cli(["stats", ds], capsys)
        assert code == 0, err
    assert (ds / "stats" / "stats.json").is_file()


# ---- 5. one run at a time per folder: an OS lock, gone with the process that held it --------
def _hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock (as a running command would)."""
    folder.mkdir(parents=True, exist_ok=True)
    code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)")
    p = subprocess.Popen([sys.executable, "-c", code, str(folder / LOCK)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def _kill(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)


def test_a_second_render_into_a_folder_in_use_is_refused_until_the_first_ends(anny_body, tmp_path, capsys,
                                                                              monkeypatch):
    from test_safety import CFG

    from syrip_gen.render.run import render_dataset

    use_fake_maker(monkeypatch)
    fits = write_fits(anny_body, tmp_path / "fits" / "fits.jsonl", n=2)
    out = tmp_path / "ds"
    holder = _hold_lock(out)
    try:
        with pytest.raises(UserError, match=f"{out} is in use by another syrip-gen run"):
            render_dataset(fits, out, CFG)
        assert sorted(p.name for p in out.iterdir()) == [LOCK]  # nothing written
    finally:
        _kill(holder)  # the holder dies (SIGKILL): the OS drops its lock, nothing stale is left
    assert render_dataset(fits, out, CFG).images == 4


@pytest.mark.parametrize("command", ["fit", "filter", "train", "pipeline"])
def test_fit_filter_train_pipeline_refuse_a_folder_in_use(command, tmp_path, capsys, one_body):
    if command == "fit":
        out = tmp_path / "fits"
        argv = ["fit", SKELETONS, "--out", out, "--limit", "1", "--no-overlays"]
    elif command == "filter":
        ds = _dataset(tmp_path / "ds")
        out = ds / "filter"
        argv = ["filter", ds]
    elif command == "train":
        out = tmp_path / "train"
        argv = ["train", _train_yaml(tmp_path), "--out", out]
    else:
        out = tmp_path / "run"
        argv = ["pipeline", "run", _stats_spec(tmp_path), "--out", out]
    holder = _hold_lock(out)
    try:
        code, err = _cli(argv, capsys)
        assert "is in use by another syrip-gen run" in _one_line_error(code, err, command)
    finally:
        _kill(holder)


# ---- 7. a failed start leaves nothing that blocks the corrected rerun -------------------------
def _fast_fit_config(**kw):
    from syrip_gen.fit.fitter import FitConfig, Stage

    return FitConfig(overlays=False, limit=1, batch_size=1,
                     stages=(Stage(3, 0.2, 0.05), Stage(3, 0.1, 0.02), Stage(3, 0.05, 0.01)), **kw)


def test_a_failed_fit_start_leaves_nothing_that_blocks_the_rerun(anny_body, tmp_path):
    from syrip_gen.body import BodyConfig
    from syrip_gen.body.keypoints import LearnedKeypoints
    from syrip_gen.fit.fitter import fit_file

    smil = tmp_path / "smil_kp.npz"
    LearnedKeypoints(body="smil", body_hash="abc", num_vertices=6890, alpha=np.ones(17),
                     weights=np.zeros((17, 6890))).save(smil)
    out = tmp_path / "F"
    with pytest.raises(UserError, match="smil"):
        fit_file(SKELETONS, out, _fast_fit_config(body=BodyConfig(keypoints=str(smil))), progress=False)
    assert not (out / "run.json").exists()
    s = fit_file(SKELETONS, out, _fast_fit_config(), body=anny_body, progress=False)  # the corrected rerun
    assert s.fitted == 1


def test_a_run_that_wrote_only_its_run_json_is_replaced_without_force(anny_body, tmp_path):
    """Whatever made a start fail after run.json was written: a folder holding only run.json
    has no results to lose, so a run with another key takes it over."""
    from syrip_gen.fit.fitter import fit_file

    out = tmp_path / "F"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"run_key": "an-earlier-start", "command": "fit"}))
    assert fit_file(SKELETONS, out, _fast_fit_config(), body=anny_body, progress=False).fitted == 1


# ---- 9 and 13. learn-keypoints checks its output before any work, and overwrites only with --force
def _fake_learning(monkeypatch, anny_body):
    """learn-keypoints without the rounds (seconds each): a result that lowers the error."""
    from syrip_gen.body.keypoints import LearnedKeypoints
    from syrip_gen.fit import learn_keypoints as lk

    n = int(anny_body.topology().body_faces.max()) + 1

    def rounds(records, body, fit_cfg, cfg, source=None, body_hash="", progress=True):
        learned = LearnedKeypoints(body="anny", body_hash="", num_vertices=n, alpha=np.ones(17),
                                   weights=np.zeros((17, n)),
                                   source={"n_train": 1, "n_fits": 2})
        summary = {"n": 2, "median": 0.02, "per_joint": [0.02] * 17}
        return lk.RoundsResult(learned=learned, before={**summary, "median": 0.03}, after=summary, rounds=[],
                               refits=[])

    monkeypatch.setattr(lk, "learn_rounds", rounds)


def test_learn_keypoints_checks_its_output_first_and_overwrites_only_with_force(anny_body, one_body, tmp_path,
                                                                               capsys, monkeypatch):
    from syrip_gen.fit import learn_keypoints as lk

    fits = write_fits(anny_body, tmp_path / "fits" / "fits.jsonl", n=2).parent
    monkeypatch.setattr(lk, "learn_rounds", lambda *a, **k: pytest.fail("learning started"))
    code, err = _cli(["learn-keypoints", fits, "--out", tmp_path], capsys)  # a folder
    assert "is a folder" in _one_line_error(code, err, "learn-keypoints")
    _fake_learning(monkeypatch, anny_body)
    out = tmp_path / "k.npz"
    code, err = _cli(["learn-keypoints", fits, "--out", out], capsys)
    assert code == 0, err
    first = out.read_bytes()
    monkeypatch.setattr(lk, "learn_rounds", lambda *a, **k: pytest.fail("learning started"))
    code, err = _cli(["learn-keypoints", fits, "--out", out], capsys)
    assert "exists" in _one_line_error(code, err, "learn-keypoints") and "--force" in err
    assert out.read_bytes() == first
    _fake_learning(monkeypatch, anny_body)
    code, err = _cli(["learn-keypoints", fits, "--out", out, "--force"], capsys)
    assert code == 0, err


def test_learn_keypoints_on_too_few_fits_names_the_reason(anny_body):
    from syrip_gen.fit.learn_keypoints import RoundsConfig, heldout_mask, learn_rounds

    fits = [{"id": f"s{i}", "status": "ok", "body": "anny", "pose": [[0.0] * 3] * 24} for i in range(12)]
    held = int(heldout_mask([r["id"] for r in fits], 0.25).sum())
    assert held < 5  # enough fits for --min-fits 10, too few of them held out
    with pytest.raises(UserError) as err:
        learn_rounds(fits, anny_body, _fast_fit_config(), RoundsConfig(min_fits=10), progress=False)
    msg = str(err.value)
    assert "needs at least 10" not in msg and f"{held} held out" in msg and "--heldout" in msg


# ---- 10. a read-only --out: one line before any work, for every command ----------------------
def _train_yaml(tmp_path: Path) -> Path:
    from pose_models.synthetic import make_dataset

    data = tmp_path / "tiny" if (tmp_path / "tiny").is_dir() else make_dataset(tmp_path / "tiny", n=8)
    path = tmp_path / "train.yaml"
    path.write_text(f"task: lifter\ntrain: [{{path: {data}}}]\nout_dir: {tmp_path / 'unused'}\n"
                    "max_steps: 2\nbatch_size: 4\nlifter_hidden: 8\nlifter_blocks: 1\ndevice: cpu\nworkers: 0\n")
    return path


def _stats_spec(tmp_path: Path) -> Path:
    ds = tmp_path / "ds" if (tmp_path / "ds").is_dir() else _dataset(tmp_path / "ds")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: t\nout: {tmp_path / 'unused'}\nsteps:\n"
                    f"  - {{name: stats, kind: stats, inputs: {{dataset: {ds}}}}}\n")
    return spec


def _lifter_checkpoint(path: Path) -> Path:
    import torch

    from pose_models.checkpoint import save_checkpoint
    from pose_models.models import build_model

    model = build_model("lifter", {"hidden": 8, "blocks": 1, "dropout": 0.0})
    return save_checkpoint(path, model, torch.optim.SGD(model.parameters(), lr=0.1), 1, 0, {"batch_size": 4}, {})


COMMANDS = ["fit", "render", "learn-keypoints", "backgrounds", "filter", "stats", "train", "evaluate", "pipeline"]


def _argv(command: str, tmp_path: Path, ro: Path, anny_body) -> list:
    """A command line that would succeed with a writable output place, writing under ``ro``."""
    if command == "fit":
        return ["fit", SKELETONS, "--out", ro / "fits", "--limit", "1", "--no-overlays"]
    if command == "render":
        fits = write_fits(anny_body, tmp_path / "fits" / "fits.jsonl", n=2)
        return ["render", fits, "--out", ro, "--variants", "1", "--width", "64", "--height", "48",
                "--workers", "1", "--texture-size", "64"]
    if command == "learn-keypoints":
        fits = write_fits(anny_body, tmp_path / "fits" / "fits.jsonl", n=2)
        return ["learn-keypoints", fits.parent, "--out", ro / "keypoints.npz"]
    if command == "backgrounds":
        return ["backgrounds", _photos(tmp_path / "photos"), ro / "bg"]
    if command == "filter":
        cfg = tmp_path / "filter.yaml"
        cfg.write_text("gates: [out_of_frame]\n")
        return ["filter", _dataset(tmp_path / "ds"), "--config", cfg, "--out", ro / "filtered.json"]
    if command == "stats":
        return ["stats", _dataset(tmp_path / "ds"), "--out", ro]
    if command == "train":
        return ["train", _train_yaml(tmp_path), "--out", ro / "train"]
    if command == "evaluate":
        from pose_models.synthetic import make_dataset

        data = make_dataset(tmp_path / "tiny", n=8)
        return ["evaluate", _lifter_checkpoint(tmp_path / "model.pt"), data, "--device", "cpu",
                "--out", ro / "metrics.json"]
    return ["pipeline", "run", _stats_spec(tmp_path), "--out", ro / "run"]


@pytest.mark.parametrize("command", COMMANDS)
def test_read_only_out_is_one_line_before_any_work(command, tmp_path, capsys, monkeypatch, one_body):
    from syrip_gen.fit import learn_keypoints as lk

    use_fake_maker(monkeypatch)
    _fake_learning(monkeypatch, one_body)
    ro = tmp_path / "ro"
    argv = _argv(command, tmp_path, ro, one_body)
    before = _tree(tmp_path, skip=ro)
    with read_only_folder(ro, monkeypatch) as make_writable:
        monkeypatch.setattr(lk, "learn_rounds", lambda *a, **k: pytest.fail("learning started"))
        code, err = _cli(argv, capsys)
        line = _one_line_error(code, err, command)
        assert "read-only" in line and str(ro) in line, line
        assert _tree(tmp_path, skip=ro) == before  # nothing written anywhere: nothing blocks the rerun
        make_writable()
        _fake_learning(monkeypatch, one_body)
        code, err = _cli(argv, capsys)  # the same command, now that it can write
        assert code == 0, err[-3000:]


# ---- 11. a full disk: one line naming the place, nothing lost, the rerun resumes -------------
def test_disk_full_during_render_is_one_line_and_the_rerun_resumes(anny_body, tmp_path, capsys, monkeypatch):
    use_fake_maker(monkeypatch)
    fits = write_fits(anny_body, tmp_path / "fits" / "fits.jsonl", n=2)
    argv = ["render", fits, "--variants", "2", "--width", "160", "--height", "120", "--workers", "1",
            "--shard-size", "1", "--texture-size", "64", "--seed", "3"]
    code, err = _cli(argv + ["--out", tmp_path / "clean"], capsys)
    assert code == 0, err
    disk = tmp_path / "disk"
    with full_folder(disk, monkeypatch, free=24 << 10, size=512 << 10) as free_space:
        code, err = _cli(argv + ["--out", disk / "ds"], capsys)
        line = _one_line_error(code, err, "render")
        assert "disk full at" in line and str(disk) in line and "rerun" in line, line
        free_space()
        code, err = _cli(argv + ["--out", disk / "ds"], capsys)
        assert code == 0, err
        ann = "annotations/person_keypoints_train_infant.json"
        a, b = (json.loads((root / ann).read_text()) for root in (disk / "ds", tmp_path / "clean"))
        assert (a["images"], a["annotations"]) == (b["images"], b["annotations"])
        assert _tree(disk / "ds" / "images") == _tree(tmp_path / "clean" / "images")


def test_disk_full_at_the_contact_sheet_is_one_line(anny_body, tmp_path, capsys, monkeypatch):
    use_fake_maker(monkeypatch)
    fits = write_fits(anny_body, tmp_path / "fits" / "fits.jsonl", n=2)
    out = tmp_path / "ds"
    deny_writes(monkeypatch, out, errno.ENOSPC, match="contact_sheet")
    code, err = _cli(["render", fits, "--out", out, "--variants", "1", "--width", "64", "--height", "48",
                      "--workers", "1", "--texture-size", "64"], capsys)
    line = _one_line_error(code, err, "render")
    assert f"disk full at {out / 'contact_sheet.jpg'}" in line and "nothing lost" in line, line


def test_disk_full_at_the_fit_overlays_is_one_line(tmp_path, capsys, monkeypatch, one_body):
    out = tmp_path / "F"
    deny_writes(monkeypatch, out / "overlays", errno.ENOSPC, match=".png")
    code, err = _cli(["fit", SKELETONS, "--out", out, "--limit", "1"], capsys)
    line = _one_line_error(code, err, "fit")
    assert "disk full at" in line and str(out / "overlays") in line and "FileNotFoundError" not in err, line
    assert (out / "fits.jsonl").is_file()  # the fits are kept


def test_disk_full_while_training_is_one_line(tmp_path, capsys, monkeypatch):
    """torch.save reports a full disk as a RuntimeError ("unexpected pos"): still one line."""
    cfg = _train_yaml(tmp_path)
    with full_folder(tmp_path / "disk", monkeypatch, free=4 << 10, size=256 << 10):
        code, err = _cli(["train", cfg, "--out", tmp_path / "disk" / "train"], capsys)
        line = _one_line_error(code, err, "train")
        assert "disk full at" in line and str(tmp_path / "disk") in line, line


def test_images_are_written_or_an_error_is_raised(tmp_path, monkeypatch):
    """cv2.imwrite returns False instead of raising: every image writer must raise instead."""
    from syrip_gen.drawing import contact_sheet

    src = tmp_path / "a.png"
    src.write_bytes(__import__("cv2").imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    deny_writes(monkeypatch, tmp_path / "out", errno.ENOSPC)
    with pytest.raises(OSError) as err:
        contact_sheet([src], tmp_path / "out" / "sheet.jpg")
    assert err.value.errno == errno.ENOSPC


# ---- 12. empty input is an error, not "fitted 0" ----------------------------------------------
def test_fit_on_an_empty_coco_file_is_an_error(tmp_path, capsys, one_body):
    empty = tmp_path / "empty.json"
    empty.write_text('{"images": [], "annotations": [], "categories": []}')
    code, err = _cli(["fit", empty, "--out", tmp_path / "F"], capsys)
    assert "no skeletons" in _one_line_error(code, err, "fit")
    assert not (tmp_path / "F").exists()


# ---- 13. the small ones ---------------------------------------------------------------------
def test_fit_summary_groups_rejections_by_reason(tmp_path):
    from syrip_gen.fit.fitter import FitConfig, summarise
    from syrip_gen.fits import FitRecord

    recs = [FitRecord.from_json(r) for r in [{"id": "a", "status": "ok", "mean_error_norm": 0.01},
            {"id": "b", "status": "rejected: mean reprojection error 12.3% of the box diagonal (limit 10%)"},
            {"id": "c", "status": "rejected: mean reprojection error 17.9% of the box diagonal (limit 10%)"},
            {"id": "d", "status": "rejected: only 3 labelled keypoints (need 6)"},
            {"id": "e", "status": "rejected: only 5 labelled keypoints (need 6)"}]]
    s = summarise(recs, tmp_path, 5, 0, 1.0, "cpu", FitConfig())
    assert s.counts == {"ok": 1, "rejected: mean reprojection error N% of the box diagonal (limit 10%)": 2,
                        "rejected: only N labelled keypoints (need 6)": 2}
    assert s.rejected["rejected: only N labelled keypoints (need 6)"] == ["d", "e"]


def test_train_refusal_names_the_no_resume_flag(tmp_path, capsys):
    out = tmp_path / "train"
    _lifter_checkpoint(out / "checkpoints" / "step_0000001.pt")  # hidden 8; the config asks for 16
    cfg = _train_yaml(tmp_path)
    cfg.write_text(cfg.read_text().replace("lifter_hidden: 8", "lifter_hidden: 16"))
    code, err = _cli(["train", cfg, "--out", out], capsys)
    line = _one_line_error(code, err, "train")
    assert "--no-resume" in line, line


def test_yaml_syntax_errors_give_the_line(tmp_path):
    from syrip_gen.yamlfile import read_yaml

    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: 2\nc: [3, 4\nd: 5\n")
    with pytest.raises(UserError) as err:
        read_yaml(bad)
    assert f"{bad}, line " in str(err.value) and "\n" not in str(err.value), err.value


def test_evaluate_takes_a_training_folders_last_checkpoint(tmp_path, capsys):
    from pose_models.synthetic import make_dataset

    run = tmp_path / "train"
    _lifter_checkpoint(run / "checkpoints" / "step_0000001.pt")
    _lifter_checkpoint(run / "checkpoints" / "step_0000002.pt")
    data = make_dataset(tmp_path / "tiny", n=8)
    code, err = _cli(["evaluate", run, data, "--device", "cpu", "--out", tmp_path / "m.json"], capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["checkpoint"].endswith("step_0000002.pt") and m["step"] == 1
    code, err = _cli(["evaluate", tmp_path / "tiny", data, "--device", "cpu"], capsys)  # no checkpoints there
    assert "no checkpoints" in _one_line_error(code, err, "evaluate")
