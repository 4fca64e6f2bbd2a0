"""The pipeline face of the pose-model stages (train, evaluate, curve, predict) and their config checks:
``(config, inputs, out_dir) -> summary dict``, named in ``syrip_gen/stages.py``.

Why here: the runner (``syrip_gen/pipeline.py``) imports no ``pose_models`` (issue 33, item 3).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from syrip_gen.atomic import atomic_write_json
from syrip_gen.errors import UserError
from syrip_gen.stepio import checkpoint_of, dataset_of, need


def check_train(config: dict) -> None:
    from pose_models.config import TrainConfig

    config.pop("weights", None)
    TrainConfig.from_dict({**config, "train": ["(inputs)"], "out_dir": "(step folder)"})


def _check_kwargs(function: str, taken_by_inputs: tuple[str, ...]) -> Callable[[dict], None]:
    """Config keys must be keyword arguments of ``pose_models.evaluate.<function>``."""
    def check(config: dict) -> None:
        import inspect

        import pose_models.evaluate as ev

        params = inspect.signature(getattr(ev, function)).parameters
        known = sorted(k for k, p in params.items() if p.kind == p.KEYWORD_ONLY and k not in taken_by_inputs
                       and k != "log")
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise UserError(f"{function} config: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return check


check_evaluate = _check_kwargs("evaluate", ("bn_calibration", "detector"))  # evaluate and curve steps


def _train(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Every input role but ``val`` and ``init`` is a training source (``config.weights`` maps
    role -> weight); ``init`` is an earlier train step whose model starts this one (pretrain on
    synthetic, fine-tune on real)."""
    from pose_models.config import TrainConfig
    from pose_models.train import train

    cfg = dict(config)
    weights = cfg.pop("weights", {}) or {}
    sources = [{"path": str(dataset_of(p)), "weight": float(weights.get(role, 1.0))}
               for role, p in sorted(inputs.items()) if role not in ("val", "init")]
    val = inputs.get("val")
    cfg.update(train=sources, out_dir=str(out), val=str(dataset_of(val)) if val else None)
    if "init" in inputs:
        if inputs["init"].is_dir():  # an earlier step's model: never pretrained elsewhere, so FiDIP freezes nothing
            cfg.setdefault("freeze_early", False)
        cfg["init"] = str(checkpoint_of(inputs["init"]))  # our checkpoint: train.load_init takes what fits
    ckpt = train(TrainConfig.from_dict(cfg))
    from pose_models.checkpoint import read_checkpoint

    ck = read_checkpoint(ckpt)  # the numeric path the run chose (device.py) goes into step.json
    return {"checkpoint": str(ckpt), **{k: ck[k] for k in ("precision", "channels_last", "images_per_s") if k in ck}}


def _evaluate(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Optional inputs ``calibration``: real images to recompute BatchNorm statistics on (AdaBN);
    ``detector``: a detector train step whose boxes replace the ground truth (with ``boxes: detector``)."""
    from pose_models.evaluate import evaluate

    ckpt = checkpoint_of(need(inputs, "model", "evaluate"))
    calibration = dataset_of(inputs["calibration"]) if "calibration" in inputs else None
    extra = {"detector": checkpoint_of(inputs["detector"])} if "detector" in inputs else {}
    metrics = evaluate(ckpt, dataset_of(need(inputs, "dataset", "evaluate")), bn_calibration=calibration,
                       **extra, **config)
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def _curve(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """A learning curve: every checkpoint the ``model`` train step kept (its ``keep_every``), evaluated."""
    from pose_models.evaluate import evaluate_along

    rows = evaluate_along(need(inputs, "model", "curve"), dataset_of(need(inputs, "dataset", "curve")), **config)
    atomic_write_json(out / "curve.json", rows)
    return {"points": len(rows), "last": rows[-1]}


def check_predict(config: dict):
    """A predict step's config as the VideoConfig it runs with (one-line UserError on a bad key or value)."""
    from pose_models.video import VideoConfig
    from syrip_gen.config import from_mapping

    return from_mapping(VideoConfig, dict(config), "predict config")


def _predict(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Predict on the videos of ``videos`` (a sequence step: its kept clips' ``videos/*.mp4``; or a folder of
    videos) with the ``detector`` and ``pose2d`` inputs (train steps or checkpoints), else the shipped models;
    writes per video the JSON, CSV, overlay and skeleton MP4s and the movement summary under the step folder."""
    from pose_models.video import run_videos
    from syrip_gen.video import is_video

    src = need(inputs, "videos", "predict")
    folder = src / "videos" if (src / "videos").is_dir() else src
    videos = sorted(p for p in folder.iterdir() if p.is_file() and is_video(p))
    if not videos:
        raise UserError(f"predict step: no videos in {folder}")
    models = {role: str(checkpoint_of(inputs[role])) if role in inputs else name
              for role, name in (("detector", "infant-detector"), ("pose2d", "infant-pose2d"))}
    done = run_videos(videos, models["detector"], models["pose2d"], out, check_predict(config), device="auto")
    return {"videos": len(done), "models": models, "outputs": [d.get("json", "") for d in done]}
