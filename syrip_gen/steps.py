"""The pipeline face of the syrip-gen stages: one adapter per step kind, ``(config, inputs,
out_dir) -> summary dict``, each calling its stage's Python API (named in ``syrip_gen/stages.py``).

Why here and not in the runner: ``syrip_gen/pipeline.py`` plans, keys and skips steps and knows no
stage's internals (issue 33, item 3); the pose-model stages' faces are ``pose_models/steps.py``.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from syrip_gen.errors import UserError
from syrip_gen.stepio import as_dict, dataset_of, keypoints_input, need, with_keypoints_input

log = logging.getLogger(__name__)


def _forced(cfg):
    """``cfg`` with ``run.force`` on: a step runs when its key changed, so another run's output
    in its folder is stale."""
    return replace(cfg, run=replace(cfg.run, force=True))


def _fit(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Optional input ``keypoints`` (see :func:`_keypoints`)."""
    from syrip_gen.fit.fitter import FitConfig, fit_file

    cfg = _forced(FitConfig.from_dict(with_keypoints_input(config, inputs)))
    summary = fit_file(need(inputs, "skeletons", "fit"), out, cfg)
    return as_dict(summary)


def _learn_keypoints(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Input ``fits``: a fit step of the annotated skeletons; writes ``keypoints.npz``."""
    from syrip_gen.fit.learn_keypoints import RoundsConfig, learn_file

    cfg = RoundsConfig.from_dict(config)
    (out / "keypoints.npz").unlink(missing_ok=True)  # a rerun that is refused must not leave an old file
    try:
        res = learn_file(need(inputs, "fits", "learn_keypoints"), out / "keypoints.npz", cfg)
    except UserError as err:  # too few fits, or no better than the body's own: later steps use the body's
        log.warning("learn_keypoints: %s; later steps use the body's own keypoints", err)
        return {"keypoints": None, "refused": str(err)}
    return {"keypoints": str(out / "keypoints.npz"), "heldout_before": res.before, "heldout_after": res.after}


def _backgrounds(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    from syrip_gen.backgrounds import BackgroundsConfig, extract_backgrounds

    return as_dict(extract_backgrounds(need(inputs, "dataset", "backgrounds"), out, BackgroundsConfig.from_dict(config)))


def _render(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Optional input ``backgrounds``: a backgrounds step (or a folder of photos)."""
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.render.run import render_dataset

    extra = {"backgrounds": str(inputs["backgrounds"])} if "backgrounds" in inputs else {}
    cfg = _forced(RenderConfig.from_dict({**with_keypoints_input(config, inputs), **extra}))
    return as_dict(render_dataset(need(inputs, "fits", "render") / "fits.jsonl", out, cfg))


def _sequence(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Clips of moving infants; with the per-clip gates on, later steps read the whole clips that
    passed (``filtered.json`` points at them, as a filter step's does)."""
    from syrip_gen.atomic import atomic_write_json
    from syrip_gen.render.sequence.clips import ClipConfig, render_clips

    cfg = ClipConfig.from_dict(with_keypoints_input(config, inputs))
    cfg = replace(cfg, render=_forced(cfg.render))
    summary = render_clips(need(inputs, "fits", "sequence") / "fits.jsonl", out, cfg)
    if summary.filtered_path:
        atomic_write_json(out / "filtered.json", {"coco": summary.filtered_path, "n_kept": summary.clips_kept,
                                                  "n_images": summary.frames})
    return as_dict(summary)


def _filter(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """The filtered COCO file goes into the step's own folder (its images stay where they are,
    named by absolute path), with ``filtered.json`` pointing at it (see :func:`_dataset_of`)."""
    from syrip_gen.coco import dataset_json, filtered_name
    from syrip_gen.filter import FilterConfig, filter_dataset

    fits = inputs.get("fits")
    dataset = need(inputs, "dataset", "filter")
    report = filter_dataset(dataset, FilterConfig.from_dict(config),
                            fits_path=fits / "fits.jsonl" if fits else None, out_dir=out,
                            out=out / filtered_name(dataset_json(dataset)).name,
                            keypoints=keypoints_input(inputs), whole_clips=True)
    return as_dict(report)


def _stats(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    from syrip_gen.stats import dataset_stats

    return dataset_stats(dataset_of(need(inputs, "dataset", "stats")), out,
                         compare=inputs.get("compare"), ceiling=inputs.get("ceiling"))


def _subset(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    from syrip_gen.subset import SubsetConfig, write_subset

    return write_subset(dataset_of(need(inputs, "dataset", "subset")), out, SubsetConfig.from_dict(config))
