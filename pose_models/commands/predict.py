"""``syrip-gen predict IMAGES --detector D --pose2d P [--lifter L] --out preds.json --vis DIR``."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files and/or directories of images")
    parser.add_argument("--detector", required=True, help="detector checkpoint (box stage)")
    parser.add_argument("--pose2d", required=True, help="2D pose checkpoint")
    parser.add_argument("--lifter", help="3D lifter checkpoint (optional)")
    parser.add_argument("--out", default="preds.json", help="predictions JSON")
    parser.add_argument("--vis", help="directory for overlay drawings (PNG)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-flip", action="store_true")


def run(args: argparse.Namespace) -> int:
    from pose_models.predict import predict, write_predictions

    preds = predict(args.images, args.detector, args.pose2d, args.lifter, args.device, not args.no_flip, args.vis)
    write_predictions(args.out, preds)
    print(f"{len(preds)} predictions -> {args.out}" + (f", drawings in {args.vis}" if args.vis else ""))
    return 0
