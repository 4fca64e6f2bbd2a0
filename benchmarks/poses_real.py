"""Benchmark how near to real infants the rendered poses stay: renders of the train200 fits under a
named sampling setting, the filter over them, and k-NN pose precision/recall (syrip_gen/coverage.py)
against validate100 before and after the filter, with the real-vs-real ceiling (train200 against
validate100). Writes benchmarks/results/poses_real.json and .md (command, commit, date, hardware);
each setting's entry is replaced when it is measured again.

    python benchmarks/poses_real.py --fits FITS_DIR --work DIR --settings photo_view default ...

Settings (VariantConfig overrides; ``photo_view`` is the gate calibration check: every render is
the unperturbed fitted pose seen from its photo's camera, so every one is a real pose and no
gate should reject more than 5 % of them). Renders are 320x240 (the measures use keypoints only),
seed 0. ``--keypoints-only``: no images and no filter; each variant's 3D keypoints are projected
through its camera (the same 2D keypoints the renders are annotated with, before visibility), a
quick way to compare sampling choices (rows marked "keypoints only").
Real data is read in place (research-only); only numbers are written.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from syrip_gen.hardware import describe, git_commit, write_results  # noqa: E402
from syrip_gen.paths import shared_syrip  # noqa: E402

PHOTO = {"own_view_share": 1.0, "own_view_jitter_deg": 0.0, "pose_sigma": 0.0, "mirror_prob": 0.0}
SETTINGS: dict[str, tuple[int, dict]] = {  # name -> (variants per fit, sampling overrides)
    "photo_view": (1, PHOTO),
    "default": (5, {}),
    "near_real": (5, {"own_view_share": 0.3, "posture_view_share": 0.7, "blend_share": 0.5}),
    "own_views": (5, {"own_view_share": 1.0}),
    "posture_views": (5, {"posture_view_share": 1.0}),
    "posture_views_blend": (5, {"posture_view_share": 1.0, "blend_share": 0.5}),
    "own_views_blend": (5, {"own_view_share": 1.0, "blend_share": 1.0, "blend_weight": [0.3, 0.7]}),
    "posture_views_blend_wide": (5, {"posture_view_share": 1.0, "blend_share": 1.0, "blend_weight": [0.3, 0.7]}),
    "drawn_views_blend": (5, {"blend_share": 1.0}),
    "mix_blend_wide": (5, {"own_view_share": 0.3, "posture_view_share": 0.7, "blend_share": 1.0,
                           "blend_weight": [0.3, 0.7]}),
}


def keypoints_only(name: str, fits: Path, seed: int) -> dict:
    """P/R of the sampled variants' projected keypoints (no rendering, no filter)."""
    import numpy as np
    import torch

    from syrip_gen.body import load_body
    from syrip_gen.coverage import limb_features, pose_precision_recall
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.fits import usable_fits
    from syrip_gen.gates.pose import PoseChecker
    from syrip_gen.render.world.sources import posture_pool, prepare_fits
    from syrip_gen.render.world.variants import sample_variants
    from syrip_gen.stats import _Data, torso_normalise

    variants, sampling = SETTINGS[name]
    cfg = RenderConfig.from_dict({"variants": variants, "width": 320, "height": 240, "sampling": dict(sampling)})
    body = load_body("anny")
    infos = prepare_fits(usable_fits(fits / "fits.jsonl", len(body.shape_names))[0], body)
    jobs, uv = [(f, v) for f in infos for v in range(variants)], []
    with torch.no_grad():
        for s in range(0, len(jobs), 100):
            sm = sample_variants(jobs[s:s + 100], body, cfg.sampling, seed, cfg.width, cfg.height,
                                 checker=PoseChecker(cfg.sampling.max_nll_increase), pool=posture_pool(infos))
            uv += [sp.camera.project(k.astype(np.float64))[0] for sp, ks in zip(sm.specs, sm.scene_keypoints) for k in ks]
    kps = np.concatenate([np.array(uv), np.full((len(uv), 17, 1), 2.0)], -1)
    feats, _ = limb_features(*torso_normalise(kps)[:2])
    real, ceiling = _Data(shared_syrip("validate100")), _Data(shared_syrip("train200"))
    return {"variants": variants, "sampling": sampling, "images": len(uv), "keypoints_only": True,
            "knn_all": _pr(pose_precision_recall(real.limbs, feats, seed=seed)), "knn_filtered": None,
            "ceiling": _pr(pose_precision_recall(real.limbs, ceiling.limbs, seed=seed)), "filter": None}


def measure(name: str, fits: Path, work: Path, seed: int) -> dict:
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.render.run import render_dataset
    from syrip_gen.filter import FilterConfig, filter_dataset
    from syrip_gen.stats import dataset_stats

    variants, sampling = SETTINGS[name]
    out = work / name
    cfg = RenderConfig.from_dict({"variants": variants, "width": 320, "height": 240, "seed": seed,
                                  "texture_size": 128, "sampling": dict(sampling), "run": {"force": True}})
    render = render_dataset(fits, out, cfg)
    rep = filter_dataset(out, FilterConfig(), fits_path=fits / "fits.jsonl")
    real, ceiling = shared_syrip("validate100"), shared_syrip("train200")
    before = dataset_stats(out, work / f"{name}_stats_all", compare=real, ceiling=ceiling, seed=seed)["coverage"]
    after = dataset_stats(rep.coco_out, work / f"{name}_stats_filtered", compare=real, seed=seed)["coverage"]
    failed = {g: n / max(rep.n_images, 1) for g, n in sorted(rep.failed.items())}
    return {"variants": variants, "sampling": sampling, "images": render.images, "render_rejected": render.rejected,
            "filter": {"n_images": rep.n_images, "n_kept": rep.n_kept, "rejected_share": rep.n_rejected / max(rep.n_images, 1),
                       "failed_share": failed, "calibration": rep.calibration},
            "knn_all": _pr(before["knn"]), "knn_filtered": _pr(after["knn"]), "ceiling": _pr(before["ceiling"])}


def _pr(k: dict | None) -> dict | None:
    return None if k is None else {key: k[key] for key in ("precision", "recall", "n_real", "n_generated", "k")}


def markdown(r: dict) -> str:
    lines = ["# Rendered poses against real infants (`benchmarks/poses_real.py`)", "",
             "Renders of the train200 fits (320x240, seed 0) under each sampling setting, filtered with the default "
             "`FilterConfig` (pose gates calibrated on the run's fits), compared with validate100 by k-NN precision/"
             "recall (k = 3, 12 torso-normalised limb vectors, up to 1000 generated skeletons drawn). Goal (issue 14): "
             "after the filter precision ≥ 0.85 and recall ≥ 0.60; photo-view renders rejected ≤ 5 % by any gate.", "",
             "| setting | images | P / R all | P / R after filter | kept | worst gate (share failing) | ceiling P / R | command, commit, date |",
             "|---|---|---|---|---|---|---|---|"]
    for name, v in r["settings"].items():
        a, f, c = v["knn_all"], v["knn_filtered"], v["ceiling"]
        if v.get("keypoints_only"):
            lines.append(f"| {name} | {v['images']} | {a['precision']:.3f} / {a['recall']:.3f} | "
                         f"not filtered | | | {c['precision']:.3f} / {c['recall']:.3f} | `{v['command']}`, "
                         f"{v['commit']}, {v['date'][:16]} |")
            continue
        worst = max(v["filter"]["failed_share"].items(), key=lambda kv: kv[1], default=("none", 0.0))
        lines.append(f"| {name} | {v['images']} | {a['precision']:.3f} / {a['recall']:.3f} | "
                     f"**{f['precision']:.3f} / {f['recall']:.3f}** | {v['filter']['n_kept']} "
                     f"({1 - v['filter']['rejected_share']:.1%}) | {worst[0]} {worst[1]:.1%} | "
                     f"{c['precision']:.3f} / {c['recall']:.3f} | `{v['command']}`, {v['commit']}, {v['date'][:16]} |")
    lines += ["", "Sampling of each setting (VariantConfig overrides) and every gate's failing share:", ""]
    for name, v in r["settings"].items():
        gates = ", ".join(f"{g} {s:.1%}" for g, s in (v["filter"] or {}).get("failed_share", {}).items()) or "none"
        lines.append(f"- {name}: {v['variants']} variants per fit, `{json.dumps(v['sampling'], sort_keys=True)}`; "
                     f"failing: {gates}.")
    lines += ["", f"Hardware: {r['hardware']}", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits", required=True, help="fit output folder of train200 (`syrip-gen fit ... --out DIR`)")
    ap.add_argument("--work", required=True, help="scratch folder for renders (outside the repo)")
    ap.add_argument("--settings", nargs="+", default=["photo_view"], choices=sorted(SETTINGS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keypoints-only", action="store_true", help="project the variants' keypoints; no images, no filter")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "poses_real"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    old = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    result = {"hardware": describe(), "settings": old.get("settings", {})}
    command = "python benchmarks/poses_real.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    for name in args.settings:
        r = (keypoints_only(name, Path(args.fits), args.seed) if args.keypoints_only
             else measure(name, Path(args.fits), Path(args.work), args.seed))
        key = f"{name} (keypoints only)" if args.keypoints_only else name
        r.update(command=command, commit=git_commit(ROOT),
                 date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        result["settings"][key] = r
        print(key, json.dumps({k: r[k] for k in ("knn_all", "knn_filtered", "ceiling")}), (r["filter"] or {}).get("failed_share"))
        write_results(out, result, markdown(result))
    print(f"wrote {out}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
