"""End-to-end render throughput: annotated images per second (variants -> GL render ->
composite -> sensor effects -> JPEG -> annotations -> shards -> merge), plus a contact sheet.

    python benchmarks/render_pipeline.py [--fits N] [--variants V] [--workers 2] [--size 640x480]

Writes benchmarks/results/render_pipeline.{json,md} and benchmarks/results/contact_sheet.jpg.
Fits are random plausible poses (no licensed data). Rates: ``end_to_end`` counts everything
from the call (worker start-up and the ~10 s body load per worker included); ``steady`` counts
images finished after the first shard over the time since it finished.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits", type=int, default=16)
    ap.add_argument("--variants", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--shard-size", type=int, default=20)
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))

    from syrip_gen.body import load_body
    from syrip_gen.dataset import RenderConfig, render_dataset, write_contact_sheet

    tmp = Path(tempfile.mkdtemp(prefix="render_bench_"))
    try:
        write_random_fits(load_body("anny"), tmp / "fits.jsonl", args.fits)
        cfg = RenderConfig(variants=args.variants, width=w, height=h, workers=args.workers,
                           shard_size=args.shard_size, contact_sheet=False)
        stamps = []
        t0 = time.perf_counter()
        summary = render_dataset(tmp / "fits.jsonl", tmp / "ds", cfg,
                                 on_shard_done=lambda s: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
        per_shard = args.shard_size
        steady = (summary.images - per_shard) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else None
        write_contact_sheet(Path(summary.annotation_path), RESULTS / "contact_sheet.jpg", seed=1, n=64, tile_w=160)
        ann = json.loads(Path(summary.annotation_path).read_text())
        vis = np.array([a["keypoints"][2::3] for a in ann["annotations"]])
        tex = sorted({str(a["provenance"]["texture"].get("kind") if isinstance(a["provenance"]["texture"], dict)
                          else a["provenance"]["texture"]) for a in ann["annotations"]})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")), "?")
    result = {
        "date": datetime.date.today().isoformat(), "python": sys.version.split()[0],
        "cpu": model, "cpus": int(next((l.split(":")[1] for l in lscpu.splitlines() if l.startswith("CPU(s):")), 0)),
        "gpu": "none (Mesa llvmpipe software EGL)", "platform": platform.platform(),
        "size": [w, h], "workers": args.workers, "fits": args.fits, "variants": args.variants,
        "shard_size": args.shard_size, "images": summary.images, "rejected": summary.rejected,
        "seconds_total": round(total, 2), "images_per_s_end_to_end": round(summary.images / total, 2),
        "images_per_s_steady": round(steady, 2) if steady else None, "goal_images_per_s": 15,
        "visible_fraction": round(float((vis == 2).mean()), 3), "in_frame_fraction": round(float((vis > 0).mean()), 3),
        "texture_kinds": tex, "pose_check": summary.pose_check,
        "load_average_1min_after": round(__import__("os").getloadavg()[0], 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "render_pipeline.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    md = ["# Render pipeline throughput", "",
          f"{result['date']}, {model}, {result['cpus']} CPUs, {result['gpu']}. `python benchmarks/render_pipeline.py`.", "",
          "| size | workers | images | total s | img/s end to end | img/s steady | goal |", "|---|---|---|---|---|---|---|",
          f"| {w}x{h} | {args.workers} | {summary.images} | {result['seconds_total']} | "
          f"{result['images_per_s_end_to_end']} | {result['images_per_s_steady']} | 15 |", "",
          f"Keypoints visible {result['visible_fraction']:.1%}, in frame {result['in_frame_fraction']:.1%}. "
          f"Textures: {', '.join(tex)}. Pose check: {summary.pose_check}. Rejected: {summary.rejected or 'none'}.", "",
          "End to end includes worker start-up (each worker loads the body, ~10 s, and opens its EGL context); "
          "steady = images after the first shard / time since it finished. "
          f"1-min load average right after the run: {result['load_average_1min_after']} "
          "(the CPUs are shared with other jobs).", "",
          "![contact sheet](contact_sheet.jpg)", ""]
    (RESULTS / "render_pipeline.md").write_text("\n".join(md))
    print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
