"""The bundled recipes end to end at toy size, through the real CLI, on the real sets (CI has them).

A spec's toy run must exercise every input and step its full-size run uses: a path the toy run
skips is a path that can crash after an hour of real work (issue 20: `filter` crashed on the
learned keypoints file that the toy run, with 4 skeletons, never got to write). The ablation
toy run is the session's one (``ablation_toy`` in conftest.py, which test_ablation_spec.py shares). So besides
"every step ran", each test checks that the optional inputs were really used: the learned
keypoints reached fit, render and filter, photo textures were baked, and (ablation) the detector
chain and the lifter ran.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syrip_gen import pipeline
from syrip_gen.paths import PIPELINES, REPO_ROOT


def run_toy(spec: str, out: Path) -> tuple[subprocess.CompletedProcess, pipeline.Spec]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-c", "import sys; from syrip_gen.cli import main; sys.exit(main())",
           "pipeline", "run", str(PIPELINES / f"{spec}.yaml"), "--profile", "toy", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800)
    return proc, pipeline.load_spec(PIPELINES / f"{spec}.yaml", out=out, profile="toy")


def manifests(spec: pipeline.Spec) -> dict[str, dict]:
    """step name -> its step.json (absent steps: missing from the dict)."""
    return {s.name: json.loads((spec.out / s.name / pipeline.MANIFEST).read_text())
            for s in spec.steps if (spec.out / s.name / pipeline.MANIFEST).exists()}


@pytest.fixture(scope="module", params=["syrip", "ablation"])
def toy(request, syrip_train, syrip_validate, tmp_path_factory):
    default = REPO_ROOT.parent / "shared" / "data" / "syrip" / "train200"
    if Path(syrip_train).resolve() != default.resolve():
        pytest.skip(f"the specs read the real sets from {default.parent}; SYRIP_DATA points elsewhere")
    if request.param == "ablation":  # the session's one ablation toy run (conftest), on the real sets here
        run = request.getfixturevalue("ablation_toy")
        assert run.real, "the real sets are at the spec's paths, yet the ablation toy ran on stand-ins"
        spec = pipeline.load_spec(PIPELINES / "ablation.yaml", out=run.run, profile="toy")
        return "ablation", run.proc, spec, manifests(spec)
    proc, spec = run_toy(request.param, tmp_path_factory.mktemp(f"toy_{request.param}"))
    return request.param, proc, spec, manifests(spec)


def test_every_step_ran_and_none_failed(toy):
    name, proc, spec, done = toy
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log
    assert "FAILED" not in proc.stdout + proc.stderr, log
    assert [s.name for s in spec.steps if s.name not in done] == [], log
    assert not any("skip " in line for line in proc.stdout.splitlines()), "a fresh run skipped a step"


def test_learned_keypoints_reach_fit_render_and_filter(toy):
    _, _, spec, done = toy
    summary = done["keypoints"]["summary"]
    assert "refused" not in summary and summary["keypoints"], summary.get("refused")
    kp = Path(summary["keypoints"])
    assert kp.is_file() and summary["heldout_after"]["median"] < summary["heldout_before"]["median"]
    fit = json.loads((spec.out / "fit" / "summary.json").read_text())
    assert fit["config"]["keypoints"] == str(kp)
    coco = json.loads(Path(done["render"]["summary"]["annotation_path"]).read_text())
    from syrip_gen.body.keypoints import file_hash

    assert coco["info"]["config"]["keypoints"] == file_hash(kp)
    assert done["filter"]["summary"]["keypoints"] == str(kp)
    assert done["filter"]["summary"]["n_kept"] > 0


def test_photo_textures_are_baked_from_the_photos(toy):
    _, _, _, done = toy
    render = done["render"]["summary"]
    assert render["photo_textures"].get("baked", 0) == render["fits_used"] > 0, render["photo_textures"]
    assert render["images"] > 0 and not render["warnings"]


def test_models_train_and_are_scored_on_the_real_test_set(toy):
    name, _, _, done = toy
    evals = {n: m["summary"] for n, m in done.items() if m["kind"] == "evaluate"}
    assert evals and all(0 <= e["oks"]["AP"] <= 1 for e in evals.values() if e.get("kind") == "pose2d")
    trained = [m["summary"] for m in done.values() if m["kind"] == "train"]
    assert trained and all(t["precision"] in ("float32", "bfloat16", "float16") for t in trained)
    if name == "ablation":  # the whole chain: detector boxes -> 2D -> 3D lifter, and both learning curves
        assert evals["eval_detector"]["kind"] == "detector"
        assert evals["eval_finetune_s0_detboxes"]["boxes"] == "detector"
        assert evals["eval_lifter"]["kind"] == "lifter"
        assert done["curve_pretrain"]["summary"]["points"] >= 2
