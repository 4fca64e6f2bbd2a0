"""``syrip-gen evaluate CHECKPOINT DATA``: metrics of a detector, 2D model or lifter on COCO keypoint data."""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint written by syrip-gen train, or its --out folder (the last "
                        "checkpoint there)")
    parser.add_argument("data", help="COCO keypoint JSON or dataset directory")
    parser.add_argument("--boxes", choices=["gt", "detector"], default="gt",
                        help="2D models: crop around ground-truth boxes or detected ones")
    parser.add_argument("--detector", help="detector checkpoint (with --boxes detector)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-flip", action="store_true", help="2D: no flip test")
    parser.add_argument("--bn-calibration", metavar="DATASET",
                        help="2D: first recompute BatchNorm statistics on these real images (labels unused; "
                             "e.g. your real train set): AdaBN, for models trained on synthetic or mixed data")
    parser.add_argument("--out", help="write the metrics JSON here")


def run(args: argparse.Namespace) -> int:
    from pose_models.evaluate import evaluate
    from syrip_gen.atomic import atomic_write_json
    from syrip_gen.runfolder import check_writable

    if args.out:  # before the work
        check_writable(args.out, "--out", folder=False)

    m = evaluate(args.checkpoint, args.data, boxes=args.boxes, detector=args.detector, device=args.device,
                 flip=not args.no_flip, bn_calibration=args.bn_calibration)
    if args.out:
        atomic_write_json(args.out, m)
    summary = {k: m[k] for k in ("oks", "pck@0.05", "pck@0.1", "bbox", "mpjpe_mm", "pa_mpjpe_mm", "reference_3d") if k in m}
    print(json.dumps(summary, indent=1, sort_keys=True))
    return 0
