"""The stage runner: plan, skip finished steps, rerun what a changed setting touches."""
import json

import pytest

from syrip_gen import pipeline
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


def test_a_trained_pose_model_exports_as_simplebaselines_init(tmp_path):
    import torch

    from pose_models.models import build_model

    model = build_model("pose2d", {"depth": 18, "deconv_channels": 32, "domain_adaptation": True})
    ckpt = tmp_path / "step_1.pt"
    torch.save({"model": model.state_dict()}, ckpt)
    fresh = build_model("pose2d", {"depth": 18, "deconv_channels": 32, "domain_adaptation": False})
    init = pipeline._as_simplebaselines(ckpt, tmp_path / "init.pt")
    fresh.load_pretrained(torch.load(init, weights_only=True), str(init))  # strict names and shapes
    assert torch.equal(fresh.final_layer.weight, model.final_layer.weight)


def test_malformed_yaml_is_a_one_line_error(tmp_path):
    from pose_models.config import TrainConfig

    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        pipeline.load_spec(bad)
    with pytest.raises(UserError, match="not valid YAML"):
        TrainConfig.from_yaml(bad)


def test_render_step_takes_its_backgrounds_from_an_input(tmp_path, monkeypatch):
    import syrip_gen.dataset as dataset

    seen = {}

    def fake_render(fits, out, cfg):
        seen["cfg"] = cfg
        return {}

    monkeypatch.setattr(dataset, "render_dataset", fake_render)
    pipeline._render({"variants": 1}, {"fits": tmp_path, "backgrounds": tmp_path / "bg"}, tmp_path / "out")
    assert seen["cfg"].backgrounds == str(tmp_path / "bg") and seen["cfg"].variants == 1
    spec = pipeline.load_spec(PIPELINES / "ablation.yaml")
    assert {"backgrounds", "render", "train"} <= {s.kind for s in spec.steps}
