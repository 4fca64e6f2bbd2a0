"""Benchmark the fitter's 3D on real infants: the fits' 3D keypoints against SyRIP's hand-corrected
3D poses (``<split>/3d/keypoints_3d_corrected.json``), next to two baselines. Writes
benchmarks/results/fit3d.json and .md (command, commit, date, hardware). Not a test: numbers are
reported as measured.

    python benchmarks/fit3d.py [--splits train200 validate100] [--fits train200=DIR ...] [--lifter CKPT]

Metric (syrip_gen/pose3d.py): both poses scaled to unit mean limb length, the prediction
similarity-aligned to the reference on the 12 limb joints, mean per-joint error in limb lengths.
Baselines: the set's own average pose (generalised Procrustes mean of the references: no
information about the image) and the ground-truth 2D keypoints with zero depth (no depth).
Fits are made here (default settings) unless ``--fits SPLIT=DIR`` names a fit output folder.
``--lifter``: a lifter checkpoint (`syrip-gen train`, task lifter), scored the same way from the
ground-truth 2D keypoints (pose_models.evaluate.lifter_on_reference).
Train200 is for development, validate100 for the record. The corrected 3D is read in place
(research-only licence); only numbers leave it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from syrip_gen.coco import load_coco  # noqa: E402
from syrip_gen.fits import fits_file, read_fits  # noqa: E402
from syrip_gen.hardware import describe, git_commit, write_results  # noqa: E402
from syrip_gen.paths import shared_syrip  # noqa: E402
from syrip_gen.pose3d import (REFERENCE_3D, aligned_error, average_pose, coco_to_lsp12,  # noqa: E402
                              read_reference_3d, zero_depth)


def _fits(split: str, split_dir: Path, given: str | None) -> tuple[list[dict], str]:
    if given:
        path = Path(given)
        return read_fits(fits_file(path)), str(given)
    from syrip_gen.fit.fitter import FitConfig, fit_file

    with tempfile.TemporaryDirectory() as tmp:
        fit_file(split_dir, tmp, FitConfig(overlays=False))
        return read_fits(Path(tmp) / "fits.jsonl"), "fitted here with default FitConfig"


def _summary(err: np.ndarray) -> dict:
    return {"n": int(len(err)), "mean": float(err.mean()), "median": float(np.median(err)),
            "p90": float(np.percentile(err, 90))}


def lifter_scores(checkpoint: str, split_dir: Path, ref: dict) -> dict:
    from pose_models.checkpoint import load_model
    from pose_models.data import load_records
    from pose_models.evaluate import lifter_on_reference

    model, ck = load_model(checkpoint, expect="lifter", device="cpu")
    cfg = ck.get("config") or {}
    trained = {k: cfg.get(k) for k in ("train", "lifter_hidden", "lifter_blocks", "dropout", "batch_size", "max_steps", "lr")}
    return {**lifter_on_reference(model, load_records(split_dir, need_image=False).records, ref,
                                  next(model.parameters()).device), "checkpoint": str(checkpoint), "step": ck["step"],
            "trained": trained}


def measure(split: str, given_fits: str | None, lifter: str | None = None) -> dict | str:
    split_dir = shared_syrip(split)
    if not (split_dir / REFERENCE_3D).exists():
        return "data not found"
    ref = read_reference_3d(split_dir)
    coco = load_coco(split_dir)
    names = {img["id"]: img["file_name"] for img in coco.images.values()}
    gt2d = {names[a["image_id"]]: coco.keypoints(a) for a in coco.annotations if a["image_id"] in names}
    fits, fits_from = _fits(split, split_dir, given_fits)
    fitted = [f for f in fits if f.get("keypoints_3d") is not None and f.get("file_name") in ref]
    fit_names = [f["file_name"] for f in fitted]
    pred = coco_to_lsp12(np.asarray([f["keypoints_3d"] for f in fitted], np.float64))
    fit_ref = np.stack([ref[n] for n in fit_names])
    fit_err = aligned_error(pred, fit_ref).numpy()
    all_names = sorted(n for n in ref if n in gt2d)
    all_ref = np.stack([ref[n] for n in all_names])
    mean_pose = average_pose(all_ref)
    avg_err = aligned_error(mean_pose.expand(len(all_ref), 12, 3), all_ref).numpy()
    flat = zero_depth(coco_to_lsp12(np.stack([gt2d[n] for n in all_names])))
    flat_err = aligned_error(flat, all_ref).numpy()
    ok = np.array([f.get("status") == "ok" for f in fitted])
    same = np.isin(all_names, fit_names)  # baselines on exactly the fitted images too
    by_posture: dict[str, list] = {}
    for f, e in zip(fitted, fit_err):
        by_posture.setdefault(f.get("posture") or "none", []).append(float(e))
    return {"references": len(ref), "fits": len(fits), "fits_from": fits_from,
            "fit": _summary(fit_err), "fit_ok_only": _summary(fit_err[ok]) if ok.any() else None,
            "average_pose": _summary(avg_err), "zero_depth_2d": _summary(flat_err),
            "average_pose_on_fitted": _summary(avg_err[same]), "zero_depth_on_fitted": _summary(flat_err[same]),
            "fit_mean_by_posture": {k: float(np.mean(v)) for k, v in sorted(by_posture.items())},
            "lifter": lifter_scores(lifter, split_dir, ref) if lifter else None}


def markdown(r: dict) -> str:
    lines = ["# Fit 3D on real infants (`benchmarks/fit3d.py`)", "",
             f"Command: `{r['command']}`  ", f"Commit: {r['commit']}  ", f"Date: {r['date']}  ",
             f"Hardware: {r['hardware']}", "",
             "Mean per-joint error on the 12 limb joints, in mean limb lengths, after scaling both poses to unit "
             "mean limb length and a similarity (Procrustes) alignment, against SyRIP's hand-corrected 3D. "
             "Goal (issue 14): fits ≤ 0.35 on validate100.", "",
             "| split | fits (n) | fits, ok only | lifter from GT 2D | average pose of the set | GT 2D, zero depth | by posture (fits) |",
             "|---|---|---|---|---|---|---|"]
    for split, v in r["splits"].items():
        if not isinstance(v, dict):
            lines.append(f"| {split} | {v} | | | | | |")
            continue
        ok = v["fit_ok_only"]
        post = ", ".join(f"{k} {e:.3f}" for k, e in v["fit_mean_by_posture"].items())
        lines.append(f"| {split} | **{v['fit']['mean']:.3f}** (median {v['fit']['median']:.3f}, n={v['fit']['n']}) | "
                     f"{ok['mean']:.3f} (n={ok['n']}) | "
                     f"{_lifter_cell(v.get('lifter'))} | {v['average_pose']['mean']:.3f} (n={v['average_pose']['n']}) | "
                     f"{v['zero_depth_2d']['mean']:.3f} | {post} |")
    lines += ["", "Baselines on the fitted images only: " + "; ".join(
        f"{s}: average pose {v['average_pose_on_fitted']['mean']:.3f}, zero depth {v['zero_depth_on_fitted']['mean']:.3f}"
        for s, v in r["splits"].items() if isinstance(v, dict)) + ".", "",
              "Fits: " + "; ".join(f"{s}: {v['fits_from']} ({v['fits']} records)" for s, v in r["splits"].items()
                                   if isinstance(v, dict)) + " (made by `syrip-gen fit <split> --out DIR --no-overlays`, "
              "default settings, when a folder is named).", ""]
    lifters = {json.dumps(v["lifter"]["trained"], sort_keys=True): v["lifter"] for v in r["splits"].values()
               if isinstance(v, dict) and v.get("lifter")}
    for lf in lifters.values():
        lines += [f"Lifter: `{lf['checkpoint']}` (step {lf['step']}), trained with `syrip-gen train` on "
                  f"`{json.dumps(lf['trained'], sort_keys=True)}`; scored from the ground-truth 2D keypoints.", ""]
    return "\n".join(lines)


def _lifter_cell(lifter: dict | None) -> str:
    if not lifter or not lifter.get("n"):
        return "not measured"
    return f"{lifter['limb_error_mean']:.3f} (n={lifter['n']})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", nargs="*", default=["train200", "validate100"])
    ap.add_argument("--fits", nargs="*", default=[], metavar="SPLIT=DIR", help="use these fits instead of fitting")
    ap.add_argument("--lifter", metavar="CKPT", help="also score this lifter checkpoint from the GT 2D")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fit3d"))
    args = ap.parse_args(argv)
    given = dict(x.split("=", 1) for x in args.fits)
    result = {"command": "python benchmarks/fit3d.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
              "commit": git_commit(ROOT), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "hardware": describe(), "splits": {}}
    for split in args.splits:
        result["splits"][split] = measure(split, given.get(split), args.lifter)
        print(split, json.dumps(result["splits"][split], sort_keys=True)[:600])
    out = Path(args.out)
    write_results(out, result, markdown(result))
    print(f"wrote {out}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
