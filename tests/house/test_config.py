"""The typed config layer (syrip_gen/config.py) and every stage config built through it.

Issue 11."""
from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from syrip_gen.config import from_args, from_mapping, parse_value
from syrip_gen.errors import UserError


@dataclass(frozen=True)
class Inner:
    lo_hi: tuple[float, float] = (0.0, 1.0)
    p: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})


@dataclass(frozen=True)
class Outer:
    n: int = field(default=1, metadata={"min": 1})
    x: float = 0.5
    flag: bool = False
    name: str = "a"
    maybe: int | None = None
    kind: str = field(default="a", metadata={"choices": ("a", "b")})
    many: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)
    items: tuple[Inner, ...] = ()


def test_from_mapping_converts_and_defaults():
    cfg = from_mapping(Outer, {"n": 3, "x": 2, "flag": True, "maybe": None, "many": ["p", "q"],
                               "inner": {"lo_hi": [1, 2]}, "items": [{"p": 0.1}]})
    assert cfg == Outer(n=3, x=2.0, flag=True, many=("p", "q"), inner=Inner(lo_hi=(1.0, 2.0)),
                        items=(Inner(p=0.1),))
    assert isinstance(cfg.x, float) and isinstance(cfg.inner.lo_hi[0], float)
    assert from_mapping(Outer, None) == Outer() == from_mapping(Outer, {})
    assert from_mapping(Outer, {"x": "1e-3"}).x == 0.001  # YAML reads 1e-3 as a string


@pytest.mark.parametrize("mapping, message", [
    ({"nn": 1}, "cfg: unknown key(s) nn; known: flag, inner, items, kind, many, maybe, n, name, x"),
    ({"x": "abc"}, "cfg: x must be a number, got 'abc'"),
    ({"x": float("nan")}, "cfg: x must be a number, got nan"),
    ({"x": True}, "cfg: x must be a number, got True"),
    ({"n": 1.5}, "cfg: n must be an integer, got 1.5"),
    ({"n": None}, "cfg: n must be an integer, not null"),
    ({"n": 0}, "cfg: n must be >= 1, got 0"),
    ({"maybe": "x"}, "cfg: maybe must be an integer, got 'x'"),
    ({"flag": "yes please"}, "cfg: flag must be true or false, got 'yes please'"),
    ({"name": 3}, "cfg: name must be a string, got 3"),
    ({"kind": "c"}, "cfg: kind must be one of a, b, got 'c'"),
    ({"many": "p"}, "cfg: many must be a list of strings, got 'p'"),
    ({"inner": 3}, "cfg: inner must be a mapping of keys to values, got 3"),
    ({"inner": {"q": 1}}, "cfg: inner: unknown key(s) q; known: lo_hi, p"),
    ({"inner": {"lo_hi": [1]}}, "cfg: inner.lo_hi must be a list of 2 values, got 1 value(s): [1]"),
    ({"inner": {"lo_hi": [1, "z"]}}, "cfg: inner.lo_hi[1] must be a number, got 'z'"),
    ({"items": [{"p": 2}]}, "cfg: items[0].p must be <= 1.0, got 2.0"),
])
def test_from_mapping_one_line_errors(mapping, message):
    with pytest.raises(UserError) as err:
        from_mapping(Outer, mapping, "cfg")
    assert str(err.value) == message


def test_from_mapping_rejects_a_non_mapping():
    with pytest.raises(UserError, match="cfg: the settings must be a mapping"):
        from_mapping(Outer, [1, 2], "cfg")


def test_from_args_takes_given_flags_and_names_them():
    ns = argparse.Namespace(n=None, x=0.25, texture=None, kind=None, command="x")
    assert from_args(Outer, ns, "tool") == Outer(x=0.25)
    with pytest.raises(UserError, match="^tool: --n must be >= 1, got 0$"):
        from_args(Outer, argparse.Namespace(n=0), "tool")
    with pytest.raises(UserError, match="^tool: --count must be >= 1, got 0$"):
        from_args(Outer, argparse.Namespace(n=0), "tool", flags={"n": "--count"})


def test_parse_value_one_line_error():
    assert parse_value("[1, 2]", "--set a") == [1, 2]
    with pytest.raises(UserError, match=r"^--set a: the value '\[1' is not valid YAML"):
        parse_value("[1", "--set a")


def test_stage_configs_check_types_and_ranges():
    from pose_models.config import TrainConfig
    from syrip_gen.backgrounds import BackgroundsConfig
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.filter import FilterConfig
    from syrip_gen.fit.fitter import FitConfig

    cases = [
        (lambda: FitConfig.from_dict({"run": {"threads": -1}}), "fit config: run.threads must be >= 1"),
        (lambda: FitConfig.from_dict({"stages": [{"steps": "x", "sigma": 0.1, "prior": 0}]}),
         r"fit config: stages\[0\].steps must be an integer"),
        (lambda: FilterConfig.from_dict({"max_prior_nll": "abc"}), "filter config: max_prior_nll must be a number"),
        (lambda: FilterConfig.from_dict({"max_fit_error": "abc"}), "filter config: max_fit_error must be a number"),
        (lambda: FilterConfig.from_dict({"max_penetration": None}), "max_penetration must be a number, not null"),
        (lambda: FilterConfig.from_dict({"gates": ["pose_prior", "nope"]}), "gates entries must be one of"),
        (lambda: RenderConfig.from_dict({"texture_size": 0}), "render config: texture_size must be >= 64"),
        (lambda: BackgroundsConfig.from_dict({"margin": "wide"}), "backgrounds config: margin must be a number"),
        (lambda: TrainConfig.from_dict({"task": "pose2d", "train": "x"}, ["max_steps=abc"]),
         "train config: max_steps must be an integer, got 'abc'"),
        (lambda: TrainConfig.from_dict({"task": "pose2d", "train": "x"}, ["max_steps=-3"]),
         "train config: max_steps must be >= 1, got -3"),
        (lambda: TrainConfig.from_dict({"task": "pose2d", "train": "x"}, ["augment.flip=[1"]),
         "--set augment.flip: the value '.1' is not valid YAML"),
        (lambda: TrainConfig.from_dict({"task": "pose2d"}), "train config: missing key.s. train"),
    ]
    for build, match in cases:
        with pytest.raises(UserError, match=match):
            build()
    # a config built in Python is held to the same ranges
    with pytest.raises(UserError, match="fit config: batch_size must be >= 1"):
        FitConfig(batch_size=0)
    cfg = TrainConfig.from_dict({"task": "pose2d", "train": ["a", {"path": "b", "weight": 2}]}, ["lr=1e-4"])
    assert [(t.path, t.weight) for t in cfg.train] == [("a", 1.0), ("b", 2.0)] and cfg.lr == 1e-4


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "syrip_gen.cli", *argv], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("argv, message", [
    (["fit", "x.json", "--out", "o", "--threads", "-1"], "fit: --threads must be >= 1, got -1"),
    (["fit", "x.json", "--out", "o", "--fov", "200"], "fit: --fov must be <= 170.0, got 200.0"),
    (["render", "f", "--out", "o", "--texture-size", "0"], "render: --texture-size must be >= 64, got 0"),
    (["backgrounds", "d", "o", "--margin", "-1"], "backgrounds: --margin must be >= 0.0, got -1.0"),
])
def test_cli_bad_values_are_one_line_errors(argv, message, tmp_path):
    r = _cli(*argv)
    assert r.returncode == 2 and r.stderr.strip().endswith(message), r.stderr
    assert "Traceback" not in r.stderr


def test_cli_defaults_come_from_the_config_dataclasses():
    """Flags default to "not given", so a command's config equals the dataclass default."""
    from syrip_gen.backgrounds import BackgroundsConfig
    from syrip_gen.cli import build_parser
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.fit.fitter import FitConfig

    for argv, cls in ((["fit", "x.json", "--out", "o"], FitConfig), (["render", "f", "--out", "o"], RenderConfig),
                      (["backgrounds", "d", "o"], BackgroundsConfig)):
        args = build_parser(argv).parse_args(argv)
        assert from_args(cls, args, argv[0]) == cls()


def test_moved_keys_are_read_with_one_warning_each_and_flags_keep_their_names(caplog):
    """Contact settings and the body triple have one section each; older specs still load."""
    from syrip_gen.body import BodyConfig
    from syrip_gen.cli import build_parser
    from syrip_gen.config import default_help
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.fit.fitter import FitConfig
    from syrip_gen.render.sequence.clips import ClipConfig
    from syrip_gen.render.world.contact import ContactConfig

    old = {"body": "smil", "body_path": "m.npz", "keypoints": "k.npz", "contact_shadow": 0.3,
           "sampling": {"settle_max_tilt_deg": 0.0, "contact_tolerance_m": 0.02, "fill": [0.5, 0.6]}}
    with caplog.at_level("WARNING", logger="syrip_gen.config"):
        cfg = RenderConfig.from_dict(old)
    assert cfg.body == BodyConfig("smil", "m.npz", "k.npz") and cfg.sampling.fill == (0.5, 0.6)
    assert cfg.contact == ContactConfig(max_tilt_deg=0.0, tolerance=0.02, shadow=0.3)
    assert len(caplog.records) == 6 and "render config: body_path is now body.path" in caplog.text
    assert RenderConfig.from_dict({"body": {"name": "smil", "path": "m.npz", "keypoints": "k.npz"},
                                   "contact": {"max_tilt_deg": 0.0, "tolerance": 0.02, "shadow": 0.3},
                                   "sampling": {"fill": [0.5, 0.6]}}) == cfg
    assert ClipConfig.from_dict({"body_path": "m.npz", "body": "smil"}).render.body == BodyConfig("smil", "m.npz")
    assert FitConfig.from_dict({"keypoints": "k.npz"}).body == BodyConfig(keypoints="k.npz")
    with pytest.raises(UserError, match="^render config: contact_shadow and contact.shadow given both"):
        RenderConfig.from_dict({"contact_shadow": 0.3, "contact": {"shadow": 0.2}})
    caplog.clear()
    argv = ["render", "f", "--out", "o", "--body", "smil", "--body-path", "m.npz", "--keypoints", "k.npz"]
    with caplog.at_level("WARNING", logger="syrip_gen.config"):
        assert from_args(RenderConfig, build_parser(argv).parse_args(argv), "render").body == cfg.body
    assert not caplog.records  # flags are not old keys
    with pytest.raises(UserError, match="^render: --body must be one of anny, smil, smpl, got 'x'$"):
        from_args(RenderConfig, argparse.Namespace(body="x"), "render")
    assert default_help(ClipConfig, "render.sampling.fill", "fill", "; note") == "fill (default 0.45 0.7; note)"


def test_run_keys_come_from_field_metadata():
    """RUN_ONLY fields never enter a run key; keyed_when leaves out an option's settings while it is off."""
    from dataclasses import replace

    from syrip_gen.config import RunConfig
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.fit.fitter import SUPPORT_FIELDS, FitConfig
    from syrip_gen.render.sequence.clips import ClipConfig

    base = RenderConfig()
    assert replace(base, run=RunConfig(workers=7, force=True, gl_threads=3), contact_sheet=False).keyed() == base.keyed()
    assert "photo_textures" not in base.keyed() and replace(base, photo_textures=True).keyed()["photo_textures"]
    assert FitConfig(run=RunConfig(device="auto", threads=4), limit=3, overlays=False).keyed() == FitConfig().keyed()
    assert SUPPORT_FIELDS[0] == "support" and set(SUPPORT_FIELDS) <= set(FitConfig(support=True).keyed())
    assert ClipConfig.of(preview=False, video=False).keyed() == ClipConfig().keyed()


def test_run_section_is_one_class_shared_by_fit_render_and_sequence(caplog, tmp_path):
    """How and where a stage runs is one ``run:`` section (RunConfig): old flat keys are read with
    one warning each, CLI flags keep their names without one, and no run value enters a run key."""
    from dataclasses import fields

    from syrip_gen.cli import build_parser
    from syrip_gen.config import RunConfig
    from syrip_gen.fit.fitter import FitConfig
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.render.sequence.clips import ClipConfig

    for cls in (FitConfig, RenderConfig):  # declared once, never keyed
        (run,) = [f for f in fields(cls) if f.name == "run"]
        assert run.type in (RunConfig, "RunConfig") and run.metadata == {"keyed": False}
        assert "run" not in cls().keyed()
    old = {"workers": 3, "backend": "dask", "scheduler": "tcp://h:8786", "gl_threads": 2, "force": True}
    with caplog.at_level("WARNING", logger="syrip_gen.config"):
        cfg = RenderConfig.from_dict({"variants": 2, **old})
    assert cfg.run == RunConfig(**old) and cfg == RenderConfig.from_dict({"variants": 2, "run": old})
    assert len(caplog.records) == 5 and "render config: gl_threads is now run.gl_threads" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="syrip_gen.config"):
        fit = FitConfig.from_dict({"device": "auto", "threads": 2, "force": True})
        clip = ClipConfig.from_dict({"workers": 2, "width": 160})
    assert fit.run == RunConfig(device="auto", threads=2, force=True) and len(caplog.records) == 4
    assert clip.render.run.workers == 2 and ClipConfig().render.run.workers == 1  # a clip: one process
    assert ClipConfig.from_dict({"run": {"force": True}}).render.run == RunConfig(workers=1, force=True)
    with pytest.raises(UserError, match="^render config: workers and run.workers given both; workers is the old name"):
        RenderConfig.from_dict({"workers": 3, "run": {"workers": 1}})
    with pytest.raises(UserError, match=r"^fit config: run.workers not used by this stage \(it runs by run.device"):
        FitConfig.from_dict({"run": {"workers": 8}})
    with pytest.raises(UserError, match="^render config: run.device not used by this stage"):
        RenderConfig.from_dict({"run": {"device": "cuda"}})
    # the flags keep their names and write into run.*, silently
    caplog.clear()
    render_argv = ["render", "f", "--out", "o", "--workers", "3", "--backend", "dask", "--scheduler", "tcp://h:8786",
                   "--gl-threads", "2", "--force"]
    fit_argv = ["fit", "x.json", "--out", "o", "--device", "auto", "--threads", "2", "--force"]
    with caplog.at_level("WARNING", logger="syrip_gen.config"):
        assert from_args(RenderConfig, build_parser(render_argv).parse_args(render_argv), "render").run == cfg.run
        assert from_args(FitConfig, build_parser(fit_argv).parse_args(fit_argv), "fit").run == fit.run
    assert not caplog.records
    with pytest.raises(UserError, match="^render: --workers must be >= 1, got 0$"):
        from_args(RenderConfig, argparse.Namespace(workers=0), "render")
    # run keys: what a stage makes, never how it ran
    assert cfg.keyed() == RenderConfig(variants=2).keyed() and fit.keyed() == FitConfig().keyed()
    assert clip.keyed() == ClipConfig.from_dict({"width": 160}).keyed()
    # a pipeline's --set reaches one key of the section: render.run.workers=4 keeps run.force
    from syrip_gen.commands.pipeline import parse_overrides
    from syrip_gen.pipespec import load_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text("steps:\n  - {name: render, kind: render, inputs: {fits: fits},\n"
                    "     config: {variants: 2, run: {workers: 2, force: true}}}\n")
    (step,) = load_spec(spec, overrides=parse_overrides(["render.run.workers=4"])).steps
    assert RenderConfig.from_dict(step.config).run == RunConfig(workers=4, force=True)
