"""Faults from the third tour of bad inputs (issue 34; reproductions in ../shared/faults/tour-3.md by case
id): pipeline steps that must never reuse an old run's work, spec validation before any work, filter on
clips, stats on empty sets, benchmark and learn-prior inputs. Each test failed before its fix."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from syrip_gen import pipeline
from syrip_gen.errors import UserError


def _write_spec(tmp_path: Path, body: str, name: str = "spec.yaml") -> Path:
    spec = tmp_path / name
    spec.write_text(f"name: t\nout: {tmp_path / 'run'}\nsteps:\n{body}")
    return spec


def _quiet(spec, **kw):
    return pipeline.run(spec, echo=lambda s: None, **kw)


# ---- C50: a new step key never resumes an old run's checkpoints ---------------------------------------
@pytest.fixture()
def resuming_train(monkeypatch):
    """A train stage that, like pose_models.train, continues from the latest checkpoint in its
    folder; records what it found there, and fails after its checkpoint when asked to."""
    seen = []

    def stage(config, inputs, out):
        ckpts = out / "checkpoints"
        seen.append(sorted(p.name for p in ckpts.glob("*.pt")))
        ckpts.mkdir(exist_ok=True)
        (ckpts / f"step_{config['max_steps']:07d}.pt").write_text(json.dumps(config))
        if stage.crash:
            stage.crash = False
            raise KeyboardInterrupt
        return {"checkpoint": str(ckpts / f"step_{config['max_steps']:07d}.pt")}

    stage.crash = False
    monkeypatch.setitem(pipeline.STAGES, "train", stage)
    return stage, seen


def _train_spec(tmp_path, data, steps=2):
    return _write_spec(tmp_path, f"  - {{name: train, kind: train, inputs: {{real: {data}}}, "
                                 f"config: {{task: lifter, max_steps: {steps}}}}}\n")


def _data(tmp_path, n=2):
    data = tmp_path / "data" / "annotations"
    data.mkdir(parents=True, exist_ok=True)
    (data / "person_keypoints_train_infant.json").write_text(json.dumps({"images": list(range(n))}))
    return tmp_path / "data"


def test_c50_changed_training_data_retrains_from_scratch(tmp_path, resuming_train):
    stage, seen = resuming_train
    spec = _train_spec(tmp_path, _data(tmp_path))
    _quiet(pipeline.load_spec(spec))
    _data(tmp_path, n=1)  # the training data changed: a new step key
    records = _quiet(pipeline.load_spec(spec))
    assert records[0]["status"] == "ran"
    assert seen == [[], []], "the new key resumed the old run's checkpoint"


def test_c50_an_interrupted_step_resumes_its_own_work_but_not_after_its_key_changed(tmp_path, resuming_train):
    stage, seen = resuming_train
    data = _data(tmp_path)
    stage.crash = True
    with pytest.raises(KeyboardInterrupt):
        _quiet(pipeline.load_spec(_train_spec(tmp_path, data)))
    _quiet(pipeline.load_spec(_train_spec(tmp_path, data)))  # same key: resumes its own checkpoint
    assert seen == [[], ["step_0000002.pt"]]
    stage.crash = True
    with pytest.raises(KeyboardInterrupt):
        _quiet(pipeline.load_spec(_train_spec(tmp_path, data, steps=5)))
    assert seen[-1] == []  # the finished key-2 run's checkpoints were not continued
    _quiet(pipeline.load_spec(_train_spec(tmp_path, data, steps=3)))  # interrupted key-5 work: not continued
    assert seen[-1] == []
    assert sorted(p.name for p in (tmp_path / "run" / "train" / "checkpoints").iterdir()) == ["step_0000003.pt"]
    aside = sorted(p.relative_to(tmp_path / "run" / ".superseded").as_posix()
                   for p in (tmp_path / "run" / ".superseded").rglob("*.pt"))
    assert len(aside) == 2 and {a.rsplit("/", 1)[1] for a in aside} == {"step_0000002.pt", "step_0000005.pt"}, aside


def test_c50_a_train_folder_of_unrecorded_files_is_refused_not_resumed_or_deleted(tmp_path, resuming_train):
    stage, seen = resuming_train
    mine = tmp_path / "run" / "train" / "checkpoints" / "step_0000009.pt"
    mine.parent.mkdir(parents=True)
    mine.write_text("someone's model")
    with pytest.raises(UserError, match="refusing to resume or delete them"):
        _quiet(pipeline.load_spec(_train_spec(tmp_path, _data(tmp_path))))
    assert seen == [] and mine.read_text() == "someone's model"


def test_c50_real_train_step_retrains_when_its_data_changed(tmp_path, capsys):
    """The real train adapter (a small lifter): the reproduction of tour-3 C50 said "resuming ... at
    step 2", did 0 steps and kept the old checkpoint."""
    from pose_models.synthetic import make_dataset

    data = make_dataset(tmp_path / "data", n=8)
    spec = _write_spec(tmp_path, f"""  - {{name: train, kind: train, inputs: {{real: {data}}},
     config: {{task: lifter, lifter_hidden: 16, batch_size: 4, max_steps: 2, warmup_steps: 1, workers: 0,
               device: cpu, ckpt_every: 2}}}}
""")
    _quiet(pipeline.load_spec(spec))
    ckpt = tmp_path / "run" / "train" / "checkpoints" / "step_0000002.pt"
    before = ckpt.read_bytes()
    ann = data / "annotations" / "person_keypoints_train_infant.json"
    d = json.loads(ann.read_text())
    keep = {im["id"] for im in d["images"][:4]}
    d["images"] = [im for im in d["images"] if im["id"] in keep]
    d["annotations"] = [a for a in d["annotations"] if a["image_id"] in keep]
    ann.write_text(json.dumps(d))
    capsys.readouterr()
    records = _quiet(pipeline.load_spec(spec))
    assert records[0]["status"] == "ran"
    assert "resuming" not in capsys.readouterr().out
    assert ckpt.read_bytes() != before


# ---- C42-C47, C51: spec validation before any work (also --dry), one line each --------------------------
def _dry(spec: Path, capsys, *extra) -> str:
    """`pipeline run SPEC --dry`: asserts exit code 2 with one error line and no traceback; returns it."""
    from syrip_gen.cli import main

    try:
        code = main(["pipeline", "run", str(spec), "--dry", *extra])
    except BaseException as err:  # noqa: BLE001 - a traceback is the failure being tested
        code = f"raised {type(err).__name__}: {err}"
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("syrip-gen pipeline: error:")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, (code, err[-2000:])
    return lines[0]


@pytest.fixture()
def sub(tmp_path):
    """A tiny dataset folder for the steps' inputs."""
    return _data(tmp_path).parent / "data"


@pytest.mark.parametrize("text, expected", [
    ("output: ../elsewhere\n", "unknown spec key(s) output"),
    ("steps:\n  - {name: s, kind: stats, inputs: {dataset: DATA}, configs: {x: 1}}\n", "unknown step key(s) configs"),
])
def test_c42_unknown_spec_and_step_keys_are_refused(tmp_path, sub, capsys, text, expected):
    spec = tmp_path / "typo.yaml"
    body = text.replace("DATA", str(sub))
    if not body.startswith("steps"):
        body = f"name: t\n{body}steps:\n  - {{name: s, kind: stats, inputs: {{dataset: {sub}}}}}\n"
    spec.write_text(body)
    assert expected in _dry(spec, capsys)
    assert not (tmp_path / "runs").exists()


def test_c42_x_keys_stay_the_users_own(tmp_path, sub):
    spec = tmp_path / "x.yaml"
    spec.write_text(f"name: t\nx-data: &d {sub}\nout: {tmp_path / 'run'}\nsteps:\n"
                    f"  - {{name: s, kind: stats, inputs: {{dataset: *d}}, x-note: mine}}\n")
    assert [s.name for s in pipeline.load_spec(spec).steps] == ["s"]


@pytest.mark.parametrize("name, expected", [
    ("1", "name must be text"),               # C44: an int from YAML (TypeError before)
    ('"."', "not a plain folder name"),       # C45: the run's own folder ("in use by another run")
    ("../userdata", "not a plain folder name"),  # C43: wrote into the user's dataset
    ('"a/b"', "not a plain folder name"),
    ('".."', "not a plain folder name"),
])
def test_c43_c44_c45_step_names_are_plain_folder_names(tmp_path, sub, capsys, name, expected):
    user = tmp_path / "userdata"
    user.mkdir()
    spec = _write_spec(tmp_path, f"  - {{name: {name}, kind: stats, inputs: {{dataset: {sub}}}}}\n")
    assert expected in _dry(spec, capsys)
    from syrip_gen.cli import main

    assert main(["pipeline", "run", str(spec)]) == 2
    assert list(user.iterdir()) == [] and not (tmp_path / "run").exists()


def test_c47_a_reversed_range_fails_the_dry_run(tmp_path, capsys):
    fits = tmp_path / "fits"
    fits.mkdir()
    (fits / "fits.jsonl").write_text("")
    spec = _write_spec(tmp_path, f"  - {{name: render, kind: render, inputs: {{fits: {fits}}}, "
                                 "config: {limit: 2, variants: 1, width: 160, height: 120}}\n")
    line = _dry(spec, capsys, "--set", "render.sampling={age_months: [12, 0]}")
    assert "sampling.age_months" in line and "low must not exceed high" in line
    from syrip_gen.config import from_mapping
    from syrip_gen.render.world.variants import VariantConfig

    assert from_mapping(VariantConfig, {"age_months": [3, 3]}).age_months == (3.0, 3.0)  # one value is a range


def test_c51_an_evaluate_step_takes_a_train_out_folder_or_says_it_has_no_model(tmp_path, sub, capsys, monkeypatch):
    folder = tmp_path / "ck_pose"
    folder.mkdir()
    spec = _write_spec(tmp_path, f"  - {{name: evaluate, kind: evaluate, inputs: {{model: {folder}, dataset: {sub}}}}}\n")
    assert "no checkpoints" in _dry(spec, capsys)
    (folder / "checkpoints").mkdir()
    for step in (1, 2):
        (folder / "checkpoints" / f"step_{step:07d}.pt").write_text(f"model {step}")
    seen = []
    import pose_models.evaluate as ev

    monkeypatch.setattr(ev, "evaluate", lambda ckpt, data, **kw: seen.append(Path(ckpt)) or {"AP": 0.5})
    records = _quiet(pipeline.load_spec(spec))
    assert records[0]["status"] == "ran" and seen == [folder / "checkpoints" / "step_0000002.pt"]
    assert {r["status"] for r in _quiet(pipeline.load_spec(spec))} == {"skipped"}
    (folder / "checkpoints" / "step_0000002.pt").write_text("model 3")  # retrained in place: same name and size
    assert _quiet(pipeline.load_spec(spec))[0]["status"] == "ran"


# ---- C31, C40: filter on clips and on multi-infant images --------------------------------------------
def _clip_set(root: Path, clips: int = 3, frames: int = 5) -> Path:
    """A `sequence`-like output: clips of near-identical consecutive frames (images carry
    clip_id, frame_id); the last frame of the last clip leaves the image. Its clip gates' outputs
    (the whole-clip file, filter/report.json) are there as sequence leaves them."""
    import numpy as np
    from helpers.filter_fixtures import sample, skeleton_2d_samples, write_dataset

    base = skeleton_2d_samples(clips)
    samples = []
    for c in range(clips):
        for f in range(frames):
            s = dict(base[c])
            shift = 2.0 if (c == clips - 1 and f == frames - 1) else 0.002 * f
            samples.append(sample((np.asarray(s["kp3d"]) - s["t"]) @ s["R"], roll=0.0,
                                  t=(shift, 0.0, 1.7), fit_id=f"f{c}"))
    path = write_dataset(root, samples)
    d = json.loads(path.read_text())
    for i, img in enumerate(d["images"]):
        img.update(clip_id=i // frames + 1, vid_id=i // frames + 1, frame_id=i % frames, nframes=frames)
    d["videos"] = [{"id": c + 1} for c in range(clips)]
    path.write_text(json.dumps(d))
    (path.parent / "person_keypoints_train_filtered_infant.json").write_text('{"clip-level": true}')
    (root / "filter").mkdir()
    (root / "filter" / "report.json").write_text('{"clip gates": true}')
    return root


def test_c31_filter_on_clips_keeps_or_drops_whole_clips_and_leaves_the_clip_files(tmp_path, capsys):
    from syrip_gen.cli import main

    root = _clip_set(tmp_path / "seq")
    cfg = tmp_path / "gates.yaml"
    cfg.write_text("gates: [out_of_frame, duplicate]\n")
    assert main(["filter", str(root), "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert (root / "annotations" / "person_keypoints_train_filtered_infant.json").read_text() == '{"clip-level": true}'
    assert (root / "filter" / "report.json").read_text() == '{"clip gates": true}'
    written = root / "annotations" / "person_keypoints_train_filtered_gates_infant.json"
    assert str(written) in out
    d = json.loads(written.read_text())
    frames: dict = {}
    for img in d["images"]:
        frames.setdefault(img["clip_id"], []).append(img["frame_id"])
    assert frames == {1: [0, 1, 2, 3, 4], 2: [0, 1, 2, 3, 4]}, frames  # no holes; clip 3 dropped whole
    assert [v["id"] for v in d["videos"]] == [1, 2]
    report = json.loads((root / "filter_gates" / "report.json").read_text())
    assert report["rejected_by"] == {"out_of_frame": 1, "clip": 4}


def test_c31_pipeline_filter_step_on_clips_has_no_holes(tmp_path):
    from syrip_gen.coco import load_coco
    from syrip_gen.filter import FilterConfig, filter_dataset

    root = _clip_set(tmp_path / "seq")
    r = filter_dataset(root, FilterConfig(gates=("duplicate", "out_of_frame")), out=tmp_path / "step" / "f.json",
                       out_dir=tmp_path / "step", whole_clips=True)
    assert r.n_kept == 10 and "duplicate" not in r.failed
    kept = load_coco(tmp_path / "step" / "f.json").images.values()
    assert sorted({im["clip_id"] for im in kept}) == [1, 2]


def test_c40_multi_infant_filter_logs_images_and_infants_apart(tmp_path, caplog):
    import logging

    from helpers.filter_fixtures import skeleton_2d_samples, write_dataset

    from syrip_gen.filter import FilterConfig, filter_dataset

    path = write_dataset(tmp_path / "multi", skeleton_2d_samples(4))
    d = json.loads(path.read_text())
    d["annotations"] += [{**a, "id": a["id"] + 100, "track_id": 1} for a in d["annotations"]]
    path.write_text(json.dumps(d))
    with caplog.at_level(logging.INFO, logger="syrip_gen.filter"):
        r = filter_dataset(tmp_path / "multi", FilterConfig(gates=("out_of_frame",)))
    assert r.n_images == 4 and r.n_infants == 8
    line = [rec.getMessage() for rec in caplog.records if "kept" in rec.getMessage()][0]
    assert f"kept {r.n_kept} of 4 images, {r.n_infants_kept} of 8 infants" in line, line


# ---- C53: stats on an empty or unlabelled set -------------------------------------------------------
def _cli(argv: list, capsys, command: str) -> str:
    """Run the CLI in this process; assert exit code 2 with one error line, no traceback; return it."""
    from syrip_gen.cli import main

    try:
        code = main([str(a) for a in argv])
    except BaseException as err:  # noqa: BLE001 - a traceback is the failure being tested
        code = f"raised {type(err).__name__}: {err}"
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith(f"syrip-gen {command}: error:")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, (code, err[-2000:])
    return lines[0]


def test_c53_stats_on_a_set_without_annotations_is_one_line(tmp_path, capsys):
    from helpers.filter_fixtures import skeleton_2d_samples, write_dataset

    good = write_dataset(tmp_path / "good", skeleton_2d_samples(4))
    empty = write_dataset(tmp_path / "zero_ann", skeleton_2d_samples(3))
    d = json.loads(empty.read_text())
    d["annotations"] = []
    empty.write_text(json.dumps(d))
    assert "no infant poses to describe (3 images, no annotations)" in _cli(
        ["stats", tmp_path / "zero_ann", "--out", tmp_path / "st7"], capsys, "stats")
    assert "zero_ann" in _cli(["stats", good.parent.parent, "--compare", tmp_path / "zero_ann",
                               "--out", tmp_path / "st2"], capsys, "stats")


# ---- C61, C62 and the note: learn-prior checks its settings and --out first, like learn-keypoints -------
@pytest.fixture()
def few_fits(tmp_path):
    path = tmp_path / "fits" / "fits.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps({"id": f"f{i}", "status": "ok", "pose": [[0.01 * i, 0.0, 0.0]] * 24}) + "\n"
                            for i in range(12)))
    return path.parent


@pytest.mark.parametrize("components", ["0", "-3"])
def test_c61_learn_prior_refuses_fewer_than_one_component(few_fits, tmp_path, capsys, components):
    out = tmp_path / "lp" / "c.npz"
    line = _cli(["learn-prior", few_fits, "--components", components, "--out", out], capsys, "learn-prior")
    assert "--components must be at least 1" in line and not out.exists()


def test_c62_learn_prior_out_a_folder_or_an_existing_file(few_fits, tmp_path, capsys):
    from syrip_gen.cli import main

    folder = tmp_path / "lpdir"
    folder.mkdir()
    assert "is a folder" in _cli(["learn-prior", few_fits, "--out", folder], capsys, "learn-prior")
    mine = tmp_path / "prior.npz"
    mine.write_bytes(b"my own prior")
    assert "pass --force" in _cli(["learn-prior", few_fits, "--components", "2", "--out", mine], capsys,
                                  "learn-prior")
    assert mine.read_bytes() == b"my own prior"
    assert main(["learn-prior", str(few_fits), "--components", "2", "--out", str(mine), "--force"]) == 0
    assert mine.read_bytes() != b"my own prior"


# ---- C55-C58: benchmark report inputs ---------------------------------------------------------------
@pytest.fixture()
def bench(tmp_path):
    """A copy of the recorded results, and a recorded report in --out that must survive a bad run."""
    import shutil

    from syrip_gen.paths import REPO_ROOT

    res = tmp_path / "bres"
    res.mkdir()
    for name in ("fit_real.json", "body_forward.json"):
        shutil.copy(REPO_ROOT / "benchmarks" / "results" / name, res / name)
    out = tmp_path / "bout"
    out.mkdir()
    (out / "report.md").write_text("the recorded report\n")
    none = tmp_path / "none"
    return res, out, ["--ablation", none, "--mediapipe", tmp_path / "none.json", "--test-set", none]


def test_c55_a_truncated_results_file_is_an_error_not_not_measured(bench, capsys):
    res, out, rest = bench
    (res / "fit_real.json").write_bytes((res / "fit_real.json").read_bytes()[:200])
    line = _cli(["benchmark", "--results", res, "--out", out, *rest], capsys, "benchmark")
    assert "fit_real.json: not valid JSON" in line
    assert (out / "report.md").read_text() == "the recorded report\n"


def test_c56_a_mistyped_results_folder_leaves_the_recorded_report(bench, tmp_path, capsys):
    res, out, rest = bench
    assert "no such folder" in _cli(["benchmark", "--results", tmp_path / "reslts", "--out", out, *rest], capsys,
                                    "benchmark")
    (tmp_path / "empty").mkdir()
    assert "holds none of the result files" in _cli(["benchmark", "--results", tmp_path / "empty", "--out", out,
                                                     *rest], capsys, "benchmark")
    assert (out / "report.md").read_text() == "the recorded report\n"


def test_c57_c58_non_json_mediapipe_and_out_an_existing_file(bench, tmp_path, capsys):
    res, out, rest = bench
    mp = tmp_path / "mp.json"
    mp.write_text("hello\n")
    line = _cli(["benchmark", "--results", res, "--out", tmp_path / "bout5", "--ablation", tmp_path / "none",
                 "--mediapipe", mp, "--test-set", tmp_path], capsys, "benchmark")
    assert "--mediapipe" in line and "not valid JSON" in line and not (tmp_path / "bout5").exists()
    f = tmp_path / "f.json"
    f.write_text("x\n")
    assert "is a file; give a folder" in _cli(["benchmark", "--results", res, "--out", f, *rest], capsys, "benchmark")
    assert f.read_text() == "x\n"
