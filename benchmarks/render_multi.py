"""Render speed of two-infant images against single-infant images, side by side (issue 24).

The same jobs (fits x variants) are drawn twice: as single-infant images (``multi_share`` 0) and
as two-infant images (``multi_share`` 1, ``infants`` (2, 2)), and each image goes through the
dataset worker's steps: sampling (body forwards, placement, camera), the image maker (textures,
support, background, GL render, the per-infant label pass, sensor, JPEG) and the annotation.
Procedural appearance only (no photos), bundled-free poses: supine and prone infants posed from
a seeded perturbation of a lying pose. Writes ``benchmarks/results/render_multi.{json,md}`` and a
contact sheet of the two-infant renders with each infant's keypoints (``render_multi_sheet.jpg``:
filled dots visible, rings hidden, one colour per infant). Run:
``python benchmarks/render_multi.py [--images 12] [--width 320 --height 240]`` (about a minute
on 2 idle cores).
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
COLOURS = [(40, 220, 40), (240, 120, 30), (220, 40, 220)]  # BGR per infant


def fit_records(body, n: int, seed: int = 0) -> list[dict]:
    """``n`` lying infants (half supine, half prone) as fit records: a lying pose with every
    joint turned by up to ~0.3 rad, the mean shape of a 4-9 month-old."""
    import torch

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pose = rng.normal(0, 0.15, (24, 3))
        pose[[10, 11, 22, 23]] = 0
        pose[0] = [-np.pi / 2, 0, 0] if i % 2 == 0 else [np.pi / 2, 0, np.pi]
        shape = body.shape_for_age(torch.tensor([float(rng.uniform(4, 9))]))[0].double().numpy()
        out.append({"_index": i, "id": f"bench{i}", "status": "ok", "pose": pose.tolist(), "shape": shape.tolist(),
                    "posture": "supine" if i % 2 == 0 else "prone"})
    return out


def run(kind: str, maker, body, fits, jobs_idx, cfg, width, height, seed) -> tuple[dict, list]:
    import torch

    from syrip_gen.annotate import annotate_scene
    from syrip_gen.posture_label import posture_labels
    from syrip_gen.render.image.compose import StageTimer
    from syrip_gen.render.world.sources import posture_pool
    from syrip_gen.render.world.variants import sample_variants

    jobs = [(fits[f], v) for f, v in jobs_idx]
    t0 = time.perf_counter()
    sampled = sample_variants(jobs, body, cfg, seed, width, height, pool=posture_pool(fits))
    sample_s = time.perf_counter() - t0
    timer = StageTimer()
    per_image, shown = [], []
    for k, spec in enumerate(sampled.specs):
        w0 = time.perf_counter()
        r = maker.render(spec, sampled.scene_vertices[k], timer)
        with timer("annotate"):
            kp = sampled.scene_keypoints[k]
            postures = posture_labels(torch.from_numpy(kp), torch.tensor([0.0, 1.0, 0.0]))
            res = annotate_scene(k + 1, f"{k}.jpg", spec, kp, r.labels, r.body_depth, postures, [{}] * len(kp))
        per_image.append(time.perf_counter() - w0)
        if res.image is not None:
            shown.append((r.jpeg, res.annotations))
    n = len(per_image)
    row = {"kind": kind, "images": n, "infants": sum(len(s.bodies) for s in sampled.specs),
           "annotated": len(shown), "sample_ms_per_image": 1e3 * sample_s / max(n, 1),
           "render_ms_median": 1e3 * float(np.median(per_image)) if n else None,
           "render_ms_mean": 1e3 * float(np.mean(per_image)) if n else None,
           "stage_ms_per_image": {s: round(1e3 * v / max(n, 1), 1) for s, v in sorted(timer.seconds.items())},
           "rejected": sampled.rejected}
    return row, shown


def contact_sheet(shown: list, out: Path, columns: int = 3, limit: int = 6) -> None:
    import cv2

    tiles = []
    for jpeg, anns in shown[:limit]:
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        th = max(1, img.shape[1] // 320)
        for a in anns:
            c = COLOURS[a["track_id"] % len(COLOURS)]
            x, y, w, h = a["bbox"]
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), c, th)
            for u, v, vis in np.array(a["keypoints"]).reshape(17, 3):
                if vis > 0:
                    cv2.circle(img, (int(round(u)), int(round(v))), 2 * th, c, -1 if vis == 2 else th)
        tiles.append(img)
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[i:i + columns], 1) for i in range(0, len(tiles), columns)]
    cv2.imwrite(str(out), np.concatenate(rows, 0), [cv2.IMWRITE_JPEG_QUALITY, 88])


def main(argv=None) -> None:
    sys.path.insert(0, str(ROOT))
    from syrip_gen.body import load_body
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.hardware import describe, git_commit, write_results
    from syrip_gen.render.image.worker import one_torch_thread
    from syrip_gen.render.image.compose import make_image_maker
    from syrip_gen.fits import FitRecord
    from syrip_gen.render.world.sources import prepare_fits
    from syrip_gen.render.world.variants import VariantConfig

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=12, help="images of each kind")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    body = load_body("anny")
    fits = prepare_fits([FitRecord.from_json({"status": "ok", **r}) for r in fit_records(body, 6, args.seed)], body)
    jobs = [(i % len(fits), i // len(fits)) for i in range(args.images)]
    cfg = RenderConfig(width=args.width, height=args.height)
    maker = make_image_maker(cfg, body)
    single = VariantConfig()
    double = VariantConfig(multi_share=1.0, infants=(2, 2))
    with one_torch_thread():
        run("warm-up", maker, body, fits, jobs[:1], single, args.width, args.height, args.seed + 1)
        rows, sheet = [], None
        for kind, sampling in (("one infant", single), ("two infants", double)):
            row, shown = run(kind, maker, body, fits, jobs, sampling, args.width, args.height, args.seed)
            rows.append(row)
            sheet = shown
    RESULTS.mkdir(parents=True, exist_ok=True)
    contact_sheet(sheet, RESULTS / "render_multi_sheet.jpg")
    command = "python benchmarks/render_multi.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"command": command.strip(), "commit": git_commit(ROOT), "date": datetime.date.today().isoformat(),
              "hardware": describe(), "width": args.width, "height": args.height, "rows": rows}
    ratio = rows[1]["render_ms_median"] / rows[0]["render_ms_median"]
    lines = ["# Render speed: two infants per image against one", "",
             f"`{result['command']}` at commit `{result['commit']}`, {result['date']}; {result['hardware']}.",
             f"{args.width}x{args.height}, procedural appearance, the same {args.images} jobs (6 lying fits) drawn "
             "as single- and as two-infant images; each image sampled, rendered (GL + per-infant label pass + "
             "sensor + JPEG) and annotated (one annotation per infant), one torch thread.", "",
             "| images | n | infants | annotated | sampling ms/img | render+annotate ms/img (median) | mean |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['images']} | {r['infants']} | {r['annotated']} | "
                     f"{r['sample_ms_per_image']:.0f} | {r['render_ms_median']:.0f} | {r['render_ms_mean']:.0f} |")
    lines += ["", f"Two-infant images take {ratio:.2f}x the time of single-infant ones per image "
              f"({ratio / 2:.2f}x per infant).", "", "Stages (ms per image):", "",
              "| stage | " + " | ".join(r["kind"] for r in rows) + " |", "|---|" + "---|" * len(rows)]
    stages = sorted({s for r in rows for s in r["stage_ms_per_image"]})
    for s in stages:
        lines.append(f"| {s} | " + " | ".join(str(r["stage_ms_per_image"].get(s, "")) for r in rows) + " |")
    lines += ["", "Rejections while sampling (redraws): "
              + "; ".join(f"{r['kind']}: {r['rejected'] or 'none'}" for r in rows), "",
              "![two-infant renders](render_multi_sheet.jpg)", ""]
    write_results(RESULTS / "render_multi", result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
