"""The stage registry: every kind of pipeline step, declared once.

Why: a stage used to be registered by hand in six places (the pipeline's runners, its config
checks and required inputs, the code hash's source table, the CLI's command list, the docs);
one forgotten entry gave a stage that ran but never reran, or a command missing from --help.
Everything reads this table: ``pipeline.STAGES`` / ``REQUIRED_INPUTS`` / ``CONFIG_CHECKS``,
``codehash.STAGE_CODE`` and ``cli.COMMANDS``.

Adding a stage is one entry in :data:`REGISTRY` (plus the code it runs): its kind, the
pipeline adapter ``runner`` (``"module:function"`` taking ``(config, inputs, out_dir)`` and
returning a summary dict), the sources whose change reruns it, the input roles it needs, how
its config is checked and, when people run it by hand too, its CLI command. Standard library
only: ``syrip-gen --help`` reads it without importing NumPy or torch.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

# modules stages import whose change never changes an output (where files are, run bookkeeping, YAML
# reading, package docstrings): not hashed. Every other module in the import closure of a stage's runner
# must be in its source list (tests/house/test_registry.py derives the closure and fails on a gap).
NEUTRAL = ("syrip_gen/__init__.py", "syrip_gen/paths.py", "syrip_gen/runfolder.py", "syrip_gen/codehash.py",
           "syrip_gen/stages.py", "syrip_gen/yamlfile.py", "syrip_gen/fit/__init__.py", "syrip_gen/gates/__init__.py",
           "syrip_gen/render/__init__.py", "syrip_gen/review/__init__.py",
           *(f"syrip_gen/render/{room}/__init__.py" for room in ("world", "looks", "pixels", "image", "sequence")))
# the pipeline faces of the syrip-gen stages (pose_models/steps.py is under pose_models)
_FACE = ("syrip_gen/steps.py", "syrip_gen/stepio.py", "syrip_gen/config.py")
# sources every body-handling stage runs (a change there reruns them all)
SHARED = ("syrip_gen/coco.py", "syrip_gen/atomic.py", "syrip_gen/errors.py", "syrip_gen/body",
          "syrip_gen/posture_label.py", "syrip_gen/geometry.py", "syrip_gen/raster.py") + _FACE
# what drawing images from fits runs (render and sequence); placement and contact use gates/penetration.py
_RENDERING = SHARED + ("syrip_gen/render", "syrip_gen/annotate.py", "syrip_gen/render/run.py", "syrip_gen/fits.py",
                       "syrip_gen/fit/prior.py", "syrip_gen/fit/limits.py", "assets/pose_prior.npz",
                       "syrip_gen/gates/penetration.py", "syrip_gen/gates/pose.py")
_POSE = ("syrip_gen/coco.py", "syrip_gen/atomic.py", "syrip_gen/errors.py", "syrip_gen/geometry.py", "pose_models",
         "syrip_gen/stepio.py", "syrip_gen/config.py", "syrip_gen/pose3d.py", "syrip_gen/fit/camera.py",
         "syrip_gen/fit/synthetic.py", "syrip_gen/shipped.py")


@dataclass(frozen=True)
class Stage:
    """One kind of pipeline step.

    ``runner``: ``"module:function"`` called as ``f(config, inputs, out_dir) -> dict``;
    ``code``: paths under the repo (files or folders of ``*.py``) whose change reruns the stage;
    ``inputs``: input roles a step of this kind must name; ``check``: ``"module:attr[.attr]"``
    called with the step's config dict (a config class's ``from_dict``, or a check function),
    None for a stage that takes no config; ``command``: ``(name, one-line help, module)`` of its
    CLI command (the module has ``add_arguments(parser)`` and ``run(args)``), None when it has
    none; ``resumes``: the stage continues whatever work its folder holds without asking whose
    it is (train: the latest checkpoint), so the runner moves its work aside when it holds another
    step key's work (``pipeline._start``)."""

    runner: str
    code: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    check: str | None = None
    command: tuple[str, str, str] | None = None
    resumes: bool = False


REGISTRY: dict[str, Stage] = {
    "fit": Stage("syrip_gen.steps:_fit", SHARED + ("syrip_gen/fit", "syrip_gen/fits.py", "assets/pose_prior.npz",
                                                    "syrip_gen/drawing.py"),
                 ("skeletons",), "syrip_gen.fit.fitter:FitConfig.from_dict",
                 ("fit", "fit the infant body model to 2D skeletons (COCO keypoints)", "syrip_gen.commands.fit")),
    "learn_keypoints": Stage(
        "syrip_gen.steps:_learn_keypoints",
        SHARED + ("syrip_gen/fit", "syrip_gen/fits.py", "assets/pose_prior.npz", "syrip_gen/drawing.py"),
        ("fits",), "syrip_gen.fit.learn_keypoints:RoundsConfig.from_dict",
        ("learn-keypoints", "learn where your annotators put the keypoints on the body",
         "syrip_gen.commands.learn_keypoints")),
    "backgrounds": Stage(
        "syrip_gen.steps:_backgrounds",
        ("syrip_gen/coco.py", "syrip_gen/atomic.py", "syrip_gen/errors.py", "syrip_gen/backgrounds.py",
         "syrip_gen/geometry.py", "syrip_gen/render/looks/photo_stats.py", "syrip_gen/render/world/scene.py") + _FACE,
        ("dataset",), "syrip_gen.backgrounds:BackgroundsConfig.from_dict",
        ("backgrounds", "person-free background photos from your annotated images", "syrip_gen.commands.backgrounds")),
    "render": Stage(
        "syrip_gen.steps:_render",
        _RENDERING + ("syrip_gen/drawing.py",),
        ("fits",), "syrip_gen.render.image.config:RenderConfig.from_dict",
        ("render", "render annotated synthetic images from fits", "syrip_gen.commands.render")),
    "sequence": Stage(
        "syrip_gen.steps:_sequence",
        _RENDERING + ("syrip_gen/video.py", "syrip_gen/clip_gates.py", "syrip_gen/filter.py", "syrip_gen/gates",
                      "syrip_gen/drawing.py", "syrip_gen/review/decisions.py"),
        ("fits",), "syrip_gen.render.sequence.clips:ClipConfig.from_dict",
        ("sequence", "render clips of moving infants (frames, track ids, MP4 previews)", "syrip_gen.commands.sequence")),
    "filter": Stage(
        "syrip_gen.steps:_filter",
        SHARED + ("syrip_gen/filter.py", "syrip_gen/gates", "syrip_gen/fit", "syrip_gen/fits.py", "assets/pose_prior.npz",
                  "syrip_gen/review/decisions.py", "syrip_gen/annotate.py"),
        ("dataset",), "syrip_gen.filter:FilterConfig.from_dict",
        ("filter", "apply quality gates (and review decisions) to a dataset", "syrip_gen.commands.filter")),
    "stats": Stage("syrip_gen.steps:_stats", SHARED + ("syrip_gen/stats.py", "syrip_gen/coverage.py",
                                                      "syrip_gen/annotate.py"),
                   ("dataset",), None,
                   ("stats", "statistics of a dataset: poses, postures, visibility, coverage", "syrip_gen.commands.stats")),
    "train": Stage("pose_models.steps:_train", _POSE, (), "pose_models.steps:check_train",
                   ("train", "train a pose model (detector, 2D, lifter) on COCO data", "pose_models.commands.train"),
                   resumes=True),
    "evaluate": Stage("pose_models.steps:_evaluate", _POSE, ("model", "dataset"), "pose_models.steps:check_evaluate",
                      ("evaluate", "evaluate a trained pose model on COCO keypoint data", "pose_models.commands.evaluate")),
    "curve": Stage("pose_models.steps:_curve", _POSE, ("model", "dataset"), "pose_models.steps:check_evaluate"),
    "predict": Stage("pose_models.steps:_predict", _POSE + ("syrip_gen/video.py", "syrip_gen/drawing.py",
                                                             "assets/models/infant-pose2d.pt",
                                                             "assets/models/infant-detector.pt"), ("videos",),
                     "pose_models.steps:check_predict"),
    "subset": Stage("syrip_gen.steps:_subset",
                    ("syrip_gen/coco.py", "syrip_gen/atomic.py", "syrip_gen/errors.py", "syrip_gen/subset.py") + _FACE,
                    ("dataset",), "syrip_gen.subset:SubsetConfig.from_dict"),
}


def resolve(ref: str) -> Callable:
    """``"package.module:Name.attr"`` -> that object (imported now, not when the table is read)."""
    module, _, attrs = ref.partition(":")
    obj = importlib.import_module(module)
    for name in attrs.split("."):
        obj = getattr(obj, name)
    return obj


def lazy(ref: str) -> Callable:
    """A function that resolves ``ref`` on its first call and passes its arguments on (keeps
    ``syrip-gen --help`` and ``import syrip_gen.pipeline`` light)."""
    def call(*args, **kwargs):
        return resolve(ref)(*args, **kwargs)
    call.__name__ = call.__qualname__ = ref.rpartition(":")[2].rpartition(".")[0] or ref.rpartition(":")[2]
    call.ref = ref
    return call
