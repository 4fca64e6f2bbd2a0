"""End-to-end render throughput: annotated images per second (variants -> GL render -> support,
background, composite -> sensor effects -> JPEG -> annotations -> shards -> merge).

    python benchmarks/render_pipeline.py [--posture-fits | --fits-file FITS/fits.jsonl | --fits 16]
                                         [--variants 10] [--workers 2] [--size 640x480] [--matrix] [--sheet]

Writes benchmarks/results/render_pipeline.json (``--name`` another); with ``--sheet`` also
benchmarks/results/contact_sheet.jpg (64 random images of the main run with keypoints).
Input: ``--posture-fits`` fits every 5th skeleton of the bundled posture library
(assets/postures/skeletons.json, all five postures) with ``syrip_gen.fit.fitter.fit_file``
first; ``--fits-file`` renders a given fits file; else ``--fits`` random plausible poses (no
licensed data in any case).

Rates: ``end_to_end`` counts everything from the call (worker start-up, the body load per
worker, merge); ``steady`` counts the images of the shards finished after the first one per
worker, over the time since then. ``stage_ms`` is worker wall time per image by stage (from
:class:`syrip_gen.render.run.RenderSummary`). ``--matrix`` repeats a smaller run, each in a fresh
process (llvmpipe reads ``LP_NUM_THREADS`` once per process), for workers x GL threads, 4x
MSAA and shadows.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GOAL = 15.0


def write_random_fits(body, path: Path, n: int, seed: int = 0) -> None:
    """``n`` fits of random plausible poses seen from above (as `syrip-gen fit` writes them)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    pose = 0.25 * torch.randn(n, 24, 3, generator=g)
    pose[:, [10, 11, 22, 23]] = 0
    pose[:, 0] = 0
    pose[:, 0, 2] = 0.6 * (torch.rand(n, generator=g) - 0.5)
    shape = body.shape_for_age(12 * torch.rand(n, generator=g))
    postures = ["supine", "prone", "supine", "side", "sitting"]
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"bench{i}", "image_id": i, "status": "ok", "posture": postures[i % 5],
                                "body": body.name, "pose": pose[i].tolist(), "shape": shape[i].tolist()}) + "\n")


def posture_fits(tmp: Path, every: int = 5) -> tuple[Path, str]:
    """Fit every ``every``-th skeleton of the posture library; returns the fits file and a note."""
    from syrip_gen.fit.fitter import FitConfig, fit_file

    lib = json.loads((ROOT / "assets" / "postures" / "skeletons.json").read_text())
    anns = lib["annotations"][::every]
    keep = {a["image_id"] for a in anns}
    sub = {**lib, "images": [i for i in lib["images"] if i["id"] in keep], "annotations": anns}
    (tmp / "skeletons.json").write_text(json.dumps(sub))
    summary = fit_file(tmp / "skeletons.json", tmp / "fits", FitConfig(overlays=False), progress=False)
    return tmp / "fits" / "fits.jsonl", (f"`syrip-gen fit` of every {every}th posture-library skeleton "
                                         f"({len(anns)} skeletons; fits {summary.counts})")


def one_run(fits: Path, out: Path, config: dict) -> dict:
    """Render ``fits`` into ``out`` with ``RenderConfig.from_dict(config)``; timings."""
    from syrip_gen.config import moved
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.render.run import render_dataset

    cfg = RenderConfig.from_dict(moved(RenderConfig, {"contact_sheet": False, **config}))  # flat: the results' layout
    stamps: list[tuple[float, int]] = []
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    s = render_dataset(fits, out, cfg, on_shard_done=lambda shard: stamps.append((time.perf_counter(), shard)))
    total = time.perf_counter() - t0
    per_shard = {k: len(json.loads((out / "shards" / f"{k:05d}" / "shard.json").read_text())["images"])
                 for _, k in stamps}
    first = min(cfg.run.workers, len(stamps)) - 1  # steady state: after each worker's first shard
    steady = None
    if len(stamps) > first + 1:
        steady = sum(per_shard[k] for _, k in stamps[first + 1:]) / (stamps[-1][0] - stamps[first][0])
    return {"config": {k: v for k, v in config.items()}, "images": s.images, "rejected": s.rejected,
            "seconds_total": round(total, 2), "seconds_to_first_shard": round(stamps[0][0] - t0, 2),
            "images_per_s_end_to_end": round(s.images / total, 2),
            "images_per_s_steady": round(steady, 2) if steady else None,
            "stage_ms_per_image": {k: round(1000 * v / max(1, s.images), 1) for k, v in s.stage_seconds.items()},
            "cpu_ms_per_image": round(1000 * s.cpu_seconds / max(1, s.images), 1),
            "load_1min_before": round(load_before, 2), "load_1min_after": round(os.getloadavg()[0], 2),
            "annotation_path": s.annotation_path}


def _subprocess_run(fits: Path, out: Path, config: dict) -> dict:
    """:func:`one_run` in a fresh interpreter (its own GL context and LP_NUM_THREADS)."""
    env = {k: v for k, v in os.environ.items() if k != "LP_NUM_THREADS"}
    proc = subprocess.run([sys.executable, __file__, "--single", json.dumps(config), "--fits-file", str(fits),
                           "--out", str(out)], capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits-file", help="a fits.jsonl to render (default: --fits random poses)")
    ap.add_argument("--posture-fits", action="store_true",
                    help="fit every 5th posture-library skeleton first and render those fits")
    ap.add_argument("--fits", type=int, default=16)
    ap.add_argument("--variants", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--shard-size", type=int, default=20)
    ap.add_argument("--matrix", action="store_true", help="also workers x GL threads, msaa 4, shadows")
    ap.add_argument("--sheet", action="store_true", help="write results/contact_sheet.jpg from the main run")
    ap.add_argument("--limit", type=int, help="render only the first N fits of the file")
    ap.add_argument("--photo-textures", action="store_true",
                    help="bodies wear textures baked from the fits' photos (baking, before the first shard, "
                         "is not in the steady rate)")
    ap.add_argument("--backgrounds", help="background photo folder (as `render --backgrounds`)")
    ap.add_argument("--name", default="render_pipeline", help="results file name under benchmarks/results/")
    ap.add_argument("--single", help=argparse.SUPPRESS)  # internal: one run, JSON config
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.single:
        print(json.dumps(one_run(Path(args.fits_file), Path(args.out), json.loads(args.single))))
        return 0

    from syrip_gen.hardware import lscpu

    w, h = map(int, args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="render_bench_"))
    try:
        if args.posture_fits:
            fits, source = posture_fits(tmp)
        elif args.fits_file:
            fits, source = Path(args.fits_file), f"fits file {args.fits_file}"
        else:
            from syrip_gen.body import load_body

            fits, source = tmp / "fits.jsonl", f"{args.fits} random plausible poses"
            write_random_fits(load_body("anny"), fits, args.fits)
        base = {"width": w, "height": h, "variants": args.variants, "shard_size": args.shard_size}
        base.update({k: v for k, v in (("limit", args.limit), ("backgrounds", args.backgrounds)) if v})
        if args.photo_textures:
            base["photo_textures"] = True
        main_run = _subprocess_run(fits, tmp / "main", {**base, "workers": args.workers})
        if args.sheet:
            from syrip_gen.drawing import write_contact_sheet

            write_contact_sheet(Path(main_run["annotation_path"]), RESULTS / "contact_sheet.jpg", seed=1, n=64,
                                tile_w=160)
        ann = json.loads(Path(main_run["annotation_path"]).read_text())
        matrix = []
        if args.matrix:
            small = {**base, "variants": 4, "shard_size": 8, "limit": 15}
            for cfg in ({"workers": 1, "gl_threads": 1}, {"workers": 1, "gl_threads": 2},
                        {"workers": 2, "gl_threads": 1}, {"workers": 2, "gl_threads": 2},
                        {"workers": 2, "gl_threads": 1, "msaa": 4}, {"workers": 2, "gl_threads": 1, "shadows": 1.0}):
                r = _subprocess_run(fits, tmp / f"m{len(matrix)}", {**small, **cfg})
                r.pop("annotation_path")
                matrix.append(r)
                print(json.dumps(r), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    main_run.pop("annotation_path")
    annots = ann["annotations"]
    vis = [v for a in annots for v in a["keypoints"][2::3]]
    kinds = sorted({a["provenance"]["texture"].get("kind", "?") for a in annots})
    hidden = sum("hidden" in a["provenance"]["background"].get("kind", "") for a in annots)
    result = {
        "command": "python benchmarks/render_pipeline.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now().isoformat(timespec="minutes"), "python": sys.version.split()[0],
        "hardware": lscpu(), "gpu": "none lent this session: Mesa llvmpipe (software EGL) on the CPU",
        "input": source, "size": [w, h], "goal_images_per_s": GOAL, "main": main_run, "matrix": matrix,
        "visible_fraction": round(sum(v == 2 for v in vis) / len(vis), 3),
        "in_frame_fraction": round(sum(v > 0 for v in vis) / len(vis), 3),
        "texture_kinds": kinds, "background_hidden_fraction": round(hidden / len(annots), 3),
        "postures": {p: sum(a["posture"] == p for a in annots) for p in sorted({a["posture"] for a in annots})},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
