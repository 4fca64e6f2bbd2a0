"""pipelines/ablation.yaml, the scaled protocol, end to end at toy size (``--profile toy``): every
step runs on drawn stand-ins for the real sets, and the report reads the rows, seeds and curves."""
import json

import pytest
import torch

from pose_models.synthetic import make_dataset
from syrip_gen import pipeline
from syrip_gen.paths import PIPELINES

SPEC = PIPELINES / "ablation.yaml"
REAL_TRAIN, REAL_TEST = "../shared/data/syrip/train200", "../shared/data/syrip/validate100"


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("ablation")
    stand_ins = {REAL_TRAIN: make_dataset(root / "real_train", n=12, width=192, height=256, seed=1),
                 REAL_TEST: make_dataset(root / "real_test", n=8, width=192, height=256, seed=2)}
    spec = pipeline.load_spec(SPEC, out=root / "run", profile="toy",
                              input_overrides=pipeline.inputs_replacing(SPEC, stand_ins))
    return spec, pipeline.run(spec, echo=lambda s: None)


def test_every_step_of_the_scaled_spec_runs(toy_run):
    spec, records = toy_run
    assert [r["status"] for r in records] == ["ran"] * len(spec.steps), records
    out = spec.out
    curve = json.loads((out / "curve_pretrain" / "curve.json").read_text())
    assert [p["step"] for p in curve] == [2, 4] and curve[-1]["crops"] == 16  # keep_every=2, batch 4
    fidip = torch.load(json.loads((out / "fidip_s0" / "step.json").read_text())["summary"]["checkpoint"],
                       weights_only=False)
    assert fidip["model_args"]["domain_adaptation"] and not fidip["model_args"]["freeze_early"]
    det = json.loads((out / "eval_finetune_s0_detboxes" / "metrics.json").read_text())
    assert det["boxes"] == "detector" and 0 <= det["oks"]["AP"] <= 1
    assert json.loads((out / "eval_lifter" / "metrics.json").read_text())["mpjpe_mm"] > 0
    sub = json.loads((out / "renders_30pc" / "step.json").read_text())["summary"]
    assert sub["n_images"] < sub["of"]


def test_profiles_scale_the_same_steps():
    toy = pipeline.load_spec(SPEC, profile="toy")
    full = pipeline.load_spec(SPEC)
    gpu = pipeline.load_spec(SPEC, profile="gpu")
    assert [s.name for s in toy.steps] == [s.name for s in full.steps] == [s.name for s in gpu.steps]
    by = {s.name: s.config for s in full.steps}
    assert by["pretrain"]["max_steps"] * by["pretrain"]["batch_size"] >= 250_000
    assert by["real_long"]["max_steps"] == by["pretrain"]["max_steps"] + by["finetune_s0"]["max_steps"]
    assert by["render"]["variants"] * 200 * 0.5 >= 20_000  # >= 20 000 kept at filter's ~57 % pass rate
    g = {s.name: s.config for s in gpu.steps}
    assert g["pretrain"]["depth"] == 50 and (g["pretrain"]["input_h"], g["pretrain"]["input_w"]) == (256, 192)
    assert g["real_long"]["max_steps"] == g["pretrain"]["max_steps"] + g["finetune_s1"]["max_steps"]
    assert "max_steps" not in {s.name: s.config for s in toy.steps}["eval_real_s0"]
