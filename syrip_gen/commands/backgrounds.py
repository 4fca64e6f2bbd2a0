"""`syrip-gen backgrounds DATASET OUT`: person-free background photos from your annotated images."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags default to "not given": BackgroundsConfig holds the defaults (shown in the help)."""
    from syrip_gen.backgrounds import BackgroundsConfig
    from syrip_gen.config import default_help

    p.add_argument("dataset", help="COCO keypoint file or dataset directory of your real photos")
    p.add_argument("out", help="folder to write the backgrounds to (keep it with your data, not in a repository)")
    p.add_argument("--margin", type=float,
                   help=default_help(BackgroundsConfig, "margin", "grow each person box by this share per side"))
    p.add_argument("--aspect", type=float,
                   help=default_help(BackgroundsConfig, "aspect", "width/height of the crops", ": 640x480 renders"))


def run(args: argparse.Namespace) -> int:
    from syrip_gen.backgrounds import BackgroundsConfig, extract_backgrounds
    from syrip_gen.config import from_args

    summary = extract_backgrounds(args.dataset, args.out, from_args(BackgroundsConfig, args, "backgrounds"))
    print(f"wrote {summary.n_backgrounds} backgrounds to {args.out} ({summary.kinds['crop']} person-free "
          f"crops, {summary.kinds['filled']} with the people filled in); use: render --backgrounds {args.out}")
    for why, n in summary.skipped.items():
        print(f"skipped {n} photos: {why}")
    return 0
