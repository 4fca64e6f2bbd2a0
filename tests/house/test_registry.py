"""Registries kept in one place: body models (syrip_gen.body.BODIES), stages
(syrip_gen.stages.REGISTRY) and the 2D model's config (derived from TrainConfig).

Issues 24, 33."""
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from syrip_gen.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def test_every_body_choice_reads_the_body_registry():
    from syrip_gen import body
    from syrip_gen.body.keypoints import body_file_hash
    from syrip_gen.cli import build_parser
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.fit.fitter import FitConfig

    assert body.BODY_MODELS == tuple(body.BODIES)
    from syrip_gen.render.sequence.clips import ClipConfig

    for cfg in (RenderConfig(), FitConfig(), ClipConfig().render):  # one body section, one list
        assert type(cfg.body) is body.BodyConfig
    (f,) = [f for f in dataclasses.fields(body.BodyConfig) if f.name == "name"]
    assert f.metadata["choices"] is body.BODY_MODELS
    for argv in (["render", "x"], ["fit", "x"], ["sequence", "x"], ["body", "preview"]):
        parser = build_parser(argv)
        sub = parser._subparsers._group_actions[0].choices[argv[0]]
        if argv[0] == "body":
            sub = sub._subparsers._group_actions[0].choices["preview"]
        (opt,) = [a for a in sub._actions if "--body" in a.option_strings]
        if argv[0] == "body":  # checked by load_body (one-line error), listed in the help
            assert all(name in opt.help for name in body.BODY_MODELS)
        else:
            assert tuple(opt.choices) == body.BODY_MODELS, argv
    assert body_file_hash("anny", __file__) == ""  # the embedded body has no file
    assert body_file_hash(body.FILE_BODIES[0], __file__) != ""


def test_a_body_added_to_the_registry_loads_and_others_are_refused(monkeypatch):
    from syrip_gen import body

    class Toy:
        name = "toy"

        def to(self, device):
            return self

    seen = []
    monkeypatch.setitem(body.BODIES, "toy", body.BodyKind(lambda name, path: seen.append((name, path)) or Toy(),
                                                          False, "a test body"))
    assert isinstance(body.load_body("toy", path="p"), Toy) and seen == [("toy", "p")]
    with pytest.raises(UserError, match="unknown body model 'nope'; choose one of anny, smil, smpl, toy"):
        body.load_body("nope")


def test_every_stage_table_is_the_registry():
    from syrip_gen import codehash, pipeline, stages
    from syrip_gen.cli import COMMANDS

    kinds = set(stages.REGISTRY)
    assert set(pipeline.STAGES) == set(pipeline.CONFIG_CHECKS) == set(codehash.STAGE_CODE) == kinds
    assert pipeline.REQUIRED_INPUTS == {k: s.inputs for k, s in stages.REGISTRY.items() if s.inputs}
    for kind, st in stages.REGISTRY.items():
        assert codehash.STAGE_CODE[kind] == st.code
        stages.resolve(st.runner)  # every runner and check exists
        if st.check:
            stages.resolve(st.check)
        if st.command:
            assert COMMANDS[st.command[0]] == st.command[1:]
        for path in st.code:
            assert (ROOT / path).exists(), (kind, path)
    # the new shared modules are hashed: editing them reruns the stages that run them
    for kind in ("fit", "render", "filter"):
        assert {"syrip_gen/atomic.py", "syrip_gen/raster.py", "syrip_gen/geometry.py"} <= set(stages.REGISTRY[kind].code)


def test_a_stage_added_in_one_place_runs_everywhere(tmp_path):
    """One entry in stages.REGISTRY: the pipeline plans, checks and runs it, the code hash covers
    its sources and the CLI lists its command (a fresh interpreter, so every table is built anew)."""
    (tmp_path / "toy_stage.py").write_text(textwrap.dedent("""
        import argparse, json
        from pathlib import Path

        def run(config, inputs, out):
            (Path(out) / "toy.json").write_text(json.dumps({"n": config.get("n", 0), "src": str(inputs["dataset"])}))
            return {"ran": True}

        def check(config):
            from syrip_gen.errors import UserError
            if set(config) - {"n"}:
                raise UserError("toy config: only n")

        def add_arguments(p):
            p.add_argument("--n", type=int)

        def main(args):
            return 0
    """))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("x")
    (tmp_path / "spec.yaml").write_text(
        "name: toy\nsteps:\n  - name: t\n    kind: toy\n    inputs: {dataset: data}\n    config: {n: 3}\n")
    code = textwrap.dedent(f"""
        import json, sys
        from syrip_gen import stages
        stages.REGISTRY["toy"] = stages.Stage("toy_stage:run", ("syrip_gen/subset.py",), ("dataset",),
                                              "toy_stage:check", ("toy", "a toy stage", "toy_stage"))
        from syrip_gen import codehash, pipeline
        from syrip_gen.cli import COMMANDS
        spec = pipeline.load_spec({str(tmp_path / 'spec.yaml')!r}, out={str(tmp_path / 'out')!r})
        for s in spec.steps:
            pipeline.check_step(s)
        bad = pipeline.Step(name="b", kind="toy", inputs={{}}, config={{}})
        try:
            pipeline.check_step(bad)
            missing = None
        except Exception as err:
            missing = str(err)
        pipeline.run(spec, echo=lambda *a: None)
        print(json.dumps({{"command": "toy" in COMMANDS, "code": codehash.code_version("toy") != codehash.code_version(None),
                          "missing": missing}}))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["command"] and out["code"]
    assert "needs inputs.dataset" in out["missing"]
    assert json.loads((tmp_path / "out" / "t" / "toy.json").read_text()) == {"n": 3, "src": str(tmp_path / "data")}


def test_the_2d_model_config_is_derived_from_train_config():
    from pose_models.config import POSE2D_FIELDS, TrainConfig
    from pose_models.pose2d import PoseConfig
    from pose_models.train import model_args_from

    train = {f.name: f for f in dataclasses.fields(TrainConfig)}
    pose = {f.name: f for f in dataclasses.fields(PoseConfig)}
    for name in POSE2D_FIELDS:
        assert pose[name].default == train[name].default and pose[name].metadata == train[name].metadata
    assert set(pose) - set(POSE2D_FIELDS) == {"num_joints", "freeze_early"}  # the model's own
    cfg = TrainConfig.from_dict({"task": "pose2d", "train": ["x"], "input_h": 64, "sigma": 3.0})
    args = model_args_from(cfg)
    built = PoseConfig(**args)
    assert (built.input_h, built.sigma, built.heatmap_hw, built.stride) == (64, 3.0, (16, 24), 4)


# ---- issue 33, item 3: a stage's source list covers what its runner imports ----------------------------
def _module_file(name: str) -> Path | None:
    p = ROOT / Path(*name.split("."))
    if (p / "__init__.py").is_file():
        return p / "__init__.py"
    return p.with_suffix(".py") if p.with_suffix(".py").is_file() else None


def _imports(node, package: str) -> set[str]:
    """The repository modules an AST imports anywhere (module level and inside functions)."""
    import ast

    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            out |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                parts = package.split(".")[: len(package.split(".")) - n.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out |= {base} | {f"{base}.{a.name}" for a in n.names}
    return {m for m in out if m.split(".")[0] in ("syrip_gen", "pose_models") and _module_file(m)}


def _closure(modules: set[str]) -> set[str]:
    import ast

    seen, todo = set(), list(modules)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        f = _module_file(m)
        todo += _imports(ast.parse(f.read_text()), m if f.name == "__init__.py" else m.rpartition(".")[0])
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run their __init__
    return seen


def test_every_module_a_stage_runs_is_in_its_source_list():
    """The import closure of each stage's runner (its own imports, then every repository module
    those import, at any level) minus ``stages.NEUTRAL`` lies under the stage's ``code`` paths; a
    module missing there would change the stage's output without rerunning it."""
    import ast

    from syrip_gen import stages

    def covered(rel: str, code) -> bool:
        return any(rel == c or rel.startswith(c.rstrip("/") + "/") for c in code)

    gaps = {}
    for kind, st in stages.REGISTRY.items():
        module, _, name = st.runner.partition(":")
        tree = ast.parse(_module_file(module).read_text())
        (func,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
        files = {_module_file(module)} | {_module_file(m) for m in _closure(_imports(func, module.rpartition(".")[0]))}
        rels = {f.relative_to(ROOT).as_posix() for f in files}
        missing = sorted(r for r in rels if not covered(r, st.code + stages.NEUTRAL))
        if missing:
            gaps[kind] = missing
        assert len(rels) > 3, (kind, rels)  # the closure was followed
    assert not gaps, f"add these to the stages' code lists (syrip_gen/stages.py), or to NEUTRAL: {gaps}"
