"""pipelines/ablation.yaml, the scaled protocol, end to end at toy size: scripts/gpu_ablation.sh --dry runs
every step of it (``--profile toy``) on the CPU and writes the one results JSON the GPU run writes; the
profiles scale the same steps. The run is the session's one ablation toy run (``ablation_toy`` in
conftest.py: on the real sets where present, which test_recipes.py checks too, else on drawn stand-ins).

Issue 15."""
import json

import pytest
import torch

from syrip_gen import pipeline
from syrip_gen.paths import PIPELINES

SPEC = PIPELINES / "ablation.yaml"


@pytest.fixture(scope="module")
def dry_run(ablation_toy):
    proc = ablation_toy.proc
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return ablation_toy.run, ablation_toy.results


def test_dry_gpu_run_runs_every_step_of_the_scaled_spec(dry_run):
    run, results = dry_run
    names = [s.name for s in pipeline.load_spec(SPEC).steps]
    assert sorted(results["steps"]) == sorted(names) and not results["failed"]
    assert results["profile"] == "toy" and results["hardware"]["gpu"] is None
    assert json.loads((run.parent / "device_out" / "gpu_ablation_results.json").read_text()) == results
    assert all(results["rows"][label]["n"] == 2 for label in ("real only, fine-tuning budget", "synthetic → real",
                                                              "synthetic → real + synthetic, FiDIP DA"))
    assert [p["step"] for p in results["curve_pretraining"]] == [2, 4]  # keep_every=2 of 4 steps
    assert results["curve_pretraining"][-1]["crops"] == 16  # batch 4
    assert len(results["curve_renders"]) == 3
    assert results["curve_renders"][0]["renders"] < results["curve_renders"][-1]["renders"]
    c = results["chain"]
    assert 0 <= c["detector_box_AP"] <= 1 and 0 <= c["pose2d_AP_detector_boxes"] <= 1 and c["lifter_mpjpe_mm"] > 0
    assert results["goal"].startswith("Goal (synthetic → real")


def test_fidip_from_an_earlier_step_freezes_nothing(dry_run):
    run, _ = dry_run
    ckpt = json.loads((run / "fidip_s0" / "step.json").read_text())["summary"]["checkpoint"]
    args = torch.load(ckpt, weights_only=False)["model_args"]
    assert args["domain_adaptation"] and not args["freeze_early"]


def test_rerun_of_the_finished_dry_run_does_nothing(dry_run, ablation_toy):
    run, _ = dry_run
    overrides = pipeline.inputs_replacing(SPEC, ablation_toy.data)
    spec = pipeline.load_spec(SPEC, out=run, profile="toy", input_overrides=overrides)
    assert all(p.done for p in pipeline.plan(spec))


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


def test_syrip_recipe_pretrains_on_the_renders_then_fine_tunes_on_real():
    steps = {s.name: s for s in pipeline.load_spec(PIPELINES / "syrip.yaml").steps}
    pre, fine = steps["pretrain"], steps["train"]
    assert set(pre.inputs) == {"synthetic"} and pre.config["max_steps"] * pre.config["batch_size"] >= 250_000
    assert fine.inputs["init"] == "pretrain" and "synthetic" not in fine.inputs


@pytest.mark.parametrize("profile", [None, "toy", "cpu", "gpu"])
def test_every_step_config_is_valid_at_every_scale(profile):
    """A one-shot GPU run cannot afford a typo: each step's settings build its stage's config."""
    import inspect

    from pose_models.config import TrainConfig
    from pose_models.evaluate import evaluate
    from syrip_gen.backgrounds import BackgroundsConfig
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.filter import FilterConfig
    from syrip_gen.fit.fitter import FitConfig
    from syrip_gen.subset import SubsetConfig

    eval_keys = set(inspect.signature(evaluate).parameters)
    for step in pipeline.load_spec(SPEC, profile=profile).steps:
        c = dict(step.config)
        if step.kind == "train":
            c.pop("weights", None)
            cfg = TrainConfig.from_dict({**c, "train": ["x"]})
            assert cfg.task == "lifter" or cfg.max_steps * cfg.batch_size > 0
        elif step.kind in ("evaluate", "curve"):
            assert set(c) <= eval_keys, (step.name, c)
        else:
            builder = {"fit": FitConfig, "backgrounds": BackgroundsConfig, "render": RenderConfig,
                       "filter": FilterConfig, "subset": SubsetConfig}.get(step.kind)
            if builder:
                builder.from_dict(c)
