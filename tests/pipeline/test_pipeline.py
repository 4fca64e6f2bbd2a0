"""The stage runner: plan, skip finished steps, rerun what a changed setting touches.

Issue 7."""
import json

import pytest

from syrip_gen import pipeline, steps
from syrip_gen.errors import UserError
from syrip_gen.paths import PIPELINES


@pytest.fixture()
def counting_stages(monkeypatch):
    calls = []

    def make(kind):
        def stage(config, inputs, out):
            calls.append(kind)
            (out / "result.json").write_text(json.dumps({"config": config, "inputs": sorted(inputs)}))
            return {"n": len(calls)}
        return stage

    monkeypatch.setattr(pipeline, "STAGES", {k: make(k) for k in ("fit", "render", "filter")})
    return calls


def _spec(tmp_path, render_variants=2):
    src = tmp_path / "skeletons.json"
    if not src.exists():
        src.write_text('{"images": [], "annotations": []}')
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""
name: t
out: {tmp_path / 'run'}
steps:
  - {{name: fit, kind: fit, inputs: {{skeletons: {src}}}}}
  - {{name: render, kind: render, inputs: {{fits: fit}}, config: {{variants: {render_variants}}}}}
  - {{name: filter, kind: filter, inputs: {{dataset: render}}}}
""")
    return spec


def test_rerun_of_finished_pipeline_does_nothing(tmp_path, counting_stages):
    spec = pipeline.load_spec(_spec(tmp_path))
    pipeline.run(spec, echo=lambda s: None)
    assert counting_stages == ["fit", "render", "filter"]
    records = pipeline.run(spec, echo=lambda s: None)
    assert counting_stages == ["fit", "render", "filter"]
    assert {r["status"] for r in records} == {"skipped"}


def test_changed_setting_reruns_that_step_and_later(tmp_path, counting_stages):
    pipeline.run(pipeline.load_spec(_spec(tmp_path)), echo=lambda s: None)
    counting_stages.clear()
    pipeline.run(pipeline.load_spec(_spec(tmp_path, render_variants=3)), echo=lambda s: None)
    assert counting_stages == ["render", "filter"]


def test_changed_input_file_reruns_everything(tmp_path, counting_stages):
    pipeline.run(pipeline.load_spec(_spec(tmp_path)), echo=lambda s: None)
    counting_stages.clear()
    (tmp_path / "skeletons.json").write_text('{"images": [], "annotations": [], "x": 1}')
    pipeline.run(pipeline.load_spec(_spec(tmp_path)), echo=lambda s: None)
    assert counting_stages == ["fit", "render", "filter"]


def test_overrides_and_dry_run(tmp_path, counting_stages):
    spec = pipeline.load_spec(_spec(tmp_path), overrides={"render": {"variants": 5}})
    assert spec.steps[1].config == {"variants": 5}
    records = pipeline.run(spec, dry=True, echo=lambda s: None)
    assert counting_stages == [] and {r["status"] for r in records} == {"planned"}


def test_failure_is_not_marked_done(tmp_path, counting_stages, monkeypatch):
    def boom(config, inputs, out):
        raise RuntimeError("render broke")

    monkeypatch.setitem(pipeline.STAGES, "render", boom)
    spec = pipeline.load_spec(_spec(tmp_path))
    records = pipeline.run(spec, keep_going=True, echo=lambda s: None)
    assert [r["status"][:6] for r in records] == ["ran", "failed", "blocke"]
    assert not (spec.out / "render" / pipeline.MANIFEST).exists()


def test_bad_specs_give_one_line_errors(tmp_path, counting_stages):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - {name: a, kind: teleport}\n")
    with pytest.raises(UserError, match="unknown kind 'teleport'"):
        pipeline.load_spec(bad)
    with pytest.raises(UserError, match="no such pipeline spec"):
        pipeline.load_spec(tmp_path / "missing.yaml")
    bad.write_text("steps:\n  - {name: a, kind: fit, inputs: {skeletons: nowhere.json}}\n")
    with pytest.raises(UserError, match="neither an earlier step nor an existing path"):
        pipeline.plan(pipeline.load_spec(bad))


def test_input_override_points_a_step_elsewhere(tmp_path, counting_stages):
    other = tmp_path / "mine.json"
    other.write_text('{"images": [], "annotations": []}')
    spec = pipeline.load_spec(_spec(tmp_path), input_overrides={"fit": {"skeletons": str(other)}})
    assert pipeline.plan(spec)[0].inputs["skeletons"] == other


def test_code_version_is_per_stage_kind(monkeypatch, tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 1\n")
    import syrip_gen.codehash as codehash

    monkeypatch.setattr(codehash, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(codehash, "STAGE_CODE", {"fit": ("a.py",), "train": ("b.py",)})
    fit, train = codehash.code_version("fit"), codehash.code_version("train")
    (tmp_path / "a.py").write_text("x = 2\n")
    assert codehash.code_version("fit") != fit
    assert codehash.code_version("train") == train


def test_a_domain_adapted_checkpoint_starts_a_plain_run_and_back(tmp_path):
    """A pipeline's ``init`` input hands our checkpoint to train.load_init as it is: FiDIP's domain classifier
    (on either side) is left out, the rest loads strictly; other model settings are a one-line error."""
    import torch

    from pose_models.checkpoint import save_checkpoint
    from pose_models.config import TrainConfig
    from pose_models.models import build_model
    from pose_models.train import load_init

    da = build_model("pose2d", {"depth": 18, "deconv_channels": 32, "domain_adaptation": True})
    ckpt = save_checkpoint(tmp_path / "step_1.pt", da, None, 1, 0, {})
    for adapt in (False, True):
        cfg = TrainConfig.from_dict({"task": "pose2d", "train": ["x"], "deconv_channels": 32, "init": str(ckpt),
                                     "domain_adaptation": adapt})
        fresh = build_model("pose2d", {"depth": 18, "deconv_channels": 32, "domain_adaptation": adapt})
        load_init(fresh, cfg)
        assert torch.equal(fresh.final_layer.weight, da.final_layer.weight)
    other = TrainConfig.from_dict({"task": "pose2d", "train": ["x"], "deconv_channels": 64, "init": str(ckpt)})
    with pytest.raises(UserError, match="other model settings \\(deconv_channels\\)"):
        load_init(build_model("pose2d", {"depth": 18, "deconv_channels": 64}), other)


def test_malformed_yaml_is_a_one_line_error(tmp_path):
    from pose_models.config import TrainConfig

    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        pipeline.load_spec(bad)
    with pytest.raises(UserError, match="not valid YAML"):
        TrainConfig.from_yaml(bad)


def test_render_step_takes_its_backgrounds_from_an_input(tmp_path, monkeypatch):
    import syrip_gen.render.run as dataset

    seen = {}

    def fake_render(fits, out, cfg):
        seen["cfg"] = cfg
        return {}

    monkeypatch.setattr(dataset, "render_dataset", fake_render)
    steps._render({"variants": 1}, {"fits": tmp_path, "backgrounds": tmp_path / "bg"}, tmp_path / "out")
    assert seen["cfg"].backgrounds == str(tmp_path / "bg") and seen["cfg"].variants == 1
    spec = pipeline.load_spec(PIPELINES / "ablation.yaml")
    assert {"backgrounds", "render", "train"} <= {s.kind for s in spec.steps}


# ---- issue 22: a step's inputs and outputs as they are on disk now; --keep-going downstream ----
def test_deleted_or_damaged_outputs_rerun_that_step_and_what_reads_them(tmp_path, counting_stages):
    """Deleting a step's folder, or one file in it, reruns that step and every step after it that
    reads from it (the downstream step said "up to date" before); files added later (a review's
    decisions) change nothing."""
    spec = pipeline.load_spec(_spec(tmp_path))
    pipeline.run(spec, echo=lambda s: None)
    import shutil

    shutil.rmtree(spec.out / "render")
    counting_stages.clear()
    pipeline.run(spec, echo=lambda s: None)
    assert counting_stages == ["render", "filter"]
    (spec.out / "render" / "result.json").unlink()
    counting_stages.clear()
    assert [p.done for p in pipeline.plan(spec)] == [True, False, False]
    pipeline.run(spec, echo=lambda s: None)
    assert counting_stages == ["render", "filter"]
    (spec.out / "render" / "result.json").write_text("replaced")
    counting_stages.clear()
    pipeline.run(spec, echo=lambda s: None)
    assert counting_stages == ["render", "filter"]
    (spec.out / "render" / "review").mkdir()
    (spec.out / "render" / "review" / "decisions.json").write_text("{}")
    counting_stages.clear()
    assert {r["status"] for r in pipeline.run(spec, echo=lambda s: None)} == {"skipped"}
    assert counting_stages == []


def test_a_replaced_external_input_folder_reruns_its_steps(tmp_path, counting_stages):
    """An input folder's JSON content is in the step's key; its other files (images) are
    checked by name and size."""
    data = tmp_path / "real"
    (data / "images").mkdir(parents=True)
    (data / "images" / "a.jpg").write_bytes(b"a photo")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(f"name: t\nout: {tmp_path / 'run'}\nsteps:\n"
                         f"  - {{name: filter, kind: filter, inputs: {{dataset: {data}}}}}\n")
    spec = pipeline.load_spec(spec_file)
    pipeline.run(spec, echo=lambda s: None)
    (data / "images" / "a.jpg").write_bytes(b"another photo")
    counting_stages.clear()
    pipeline.run(spec, echo=lambda s: None)
    assert counting_stages == ["filter"]


def test_keep_going_skips_the_whole_downstream_of_a_failed_step_and_says_so_once(tmp_path, counting_stages,
                                                                                   monkeypatch):
    """a fails; b reads a, c reads b (c ran before, and failed on b's missing folder); d reads
    neither and runs. One line names the skipped steps and the failed step; the records tell
    failed, blocked by a failed step, and done apart."""
    def boom(config, inputs, out):
        raise RuntimeError("fit broke")

    monkeypatch.setitem(pipeline.STAGES, "fit", boom)
    src = tmp_path / "skeletons.json"
    src.write_text('{"images": [], "annotations": []}')
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(f"""name: t
out: {tmp_path / 'run'}
steps:
  - {{name: a, kind: fit, inputs: {{skeletons: {src}}}}}
  - {{name: b, kind: render, inputs: {{fits: a}}}}
  - {{name: c, kind: filter, inputs: {{dataset: b}}}}
  - {{name: d, kind: render, inputs: {{fits: {src}}}}}
""")
    lines = []
    records = pipeline.run(pipeline.load_spec(spec_file), keep_going=True, echo=lines.append)
    assert counting_stages == ["render"]  # d only
    assert [(r["name"], r["status"].split(":")[0]) for r in records] == [
        ("a", "failed"), ("b", "blocked"), ("c", "blocked"), ("d", "ran")]
    assert records[2]["blocked_by"] == ["a"]
    skipped = [line for line in lines if "b, c" in line and not line.startswith("pipeline:")]
    assert skipped == ["  not running b, c: they need failed step a"]
    assert not any(line.strip().startswith(("run  b", "run  c", "FAILED c")) for line in lines)
    assert "1 ran, 1 failed (a), 2 not run because a step they need failed (b, c)" in lines[-1]


def test_filter_writes_into_its_own_step_folder(tmp_path, monkeypatch):
    """filter wrote its COCO file into render/annotations/; after deleting render/ the rerun redid
    render, filter said "up to date" and stats failed on the missing filtered file. Now the
    filtered file lives in the filter step's folder, names images that exist, and the render
    folder is left as render made it."""
    from helpers.filter_fixtures import skeleton_2d_samples, write_dataset

    from syrip_gen.coco import load_coco

    def render(config, inputs, out):
        write_dataset(out, skeleton_2d_samples(3))
        return {}

    seen = []

    def stats(config, inputs, out):
        coco = load_coco(pipeline._dataset_of(inputs["dataset"]))
        seen.append(sum((coco.image_dir() / im["file_name"]).is_file() for im in coco.images.values()))
        return {}

    monkeypatch.setitem(pipeline.STAGES, "render", render)
    monkeypatch.setitem(pipeline.STAGES, "stats", stats)
    src = tmp_path / "fits.jsonl"
    src.write_text("")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(f"""name: t
out: {tmp_path / 'run'}
steps:
  - {{name: render, kind: render, inputs: {{fits: {src}}}}}
  - {{name: filter, kind: filter, inputs: {{dataset: render}}, config: {{gates: [out_of_frame]}}}}
  - {{name: stats, kind: stats, inputs: {{dataset: filter}}}}
""")
    spec = pipeline.load_spec(spec_file)
    pipeline.run(spec, echo=lambda s: None)
    render_files = sorted(p.relative_to(spec.out).as_posix() for p in (spec.out / "render").rglob("*") if p.is_file())
    assert not any("filter" in f for f in render_files)
    filtered = pipeline._dataset_of(spec.out / "filter")
    assert filtered.parent == spec.out / "filter" and seen == [3]
    import shutil

    shutil.rmtree(spec.out / "render")
    records = pipeline.run(spec, echo=lambda s: None)
    assert [r["status"] for r in records] == ["ran", "ran", "ran"] and seen == [3, 3]
