"""`syrip-gen render FITS --out DATASET`: annotated synthetic images from body fits.

Thin layer over :func:`syrip_gen.dataset.render_dataset`; torch/pyrender load only in ``run``.
"""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("fits", metavar="FITS", help="fits folder (FITS/fits.jsonl) or the .jsonl file")
    p.add_argument("--out", required=True, metavar="DATASET", help="dataset folder (SyRIP layout)")
    p.add_argument("--variants", type=int, default=10, help="images per fit (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--workers", type=int, default=2, help="render processes (one GL context each)")
    p.add_argument("--backend", choices=("joblib", "dask"), default="joblib")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (default: a local cluster)")
    p.add_argument("--backgrounds", metavar="DIR", help="folder of background photos (default procedural)")
    p.add_argument("--textures", metavar="DIR", help="folder of textures (default procedural)")
    p.add_argument("--shadows", action="store_true", help="directional shadows (slower)")
    p.add_argument("--split", default="train", help="name in annotations/person_keypoints_<split>_infant.json")
    p.add_argument("--depth", action="store_true", help="also write depth PNGs (uint16 mm)")
    p.add_argument("--parts", action="store_true", help="also write part-segmentation PNGs")
    p.add_argument("--force", action="store_true", help="replace a different run in --out")
    p.add_argument("--limit", type=int, help="render only the first N usable fits")
    p.add_argument("--shard-size", type=int, default=50, help="images per shard (resume unit)")


def run(args: argparse.Namespace) -> int:
    import json

    from syrip_gen.dataset import RenderConfig, render_dataset, summary_json

    cfg = RenderConfig(variants=args.variants, seed=args.seed, width=args.width, height=args.height,
                       workers=args.workers, backend=args.backend, scheduler=args.scheduler,
                       backgrounds=args.backgrounds, textures=args.textures, shadows=args.shadows,
                       split=args.split, depth=args.depth, parts=args.parts, force=args.force,
                       limit=args.limit, shard_size=args.shard_size)
    summary = render_dataset(args.fits, args.out, cfg)
    print(json.dumps(summary_json(summary), indent=1, sort_keys=True))
    return 0
