"""``syrip-gen predict IMAGES|VIDEOS --detector D --pose2d P [--lifter L] --out preds.json --vis DIR``.

Images: box -> 2D -> 3D per image. Videos (MP4/AVI/...): every infant detected per frame, 2D
pose on each box, infants tracked across frames, keypoints smoothed in time (One-Euro), written
as JSON + CSV (one record per frame and infant) and an overlay MP4 (see ``pose_models.video``).
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files and/or directories of images, or video files")
    parser.add_argument("--detector", required=True, help="detector checkpoint (box stage)")
    parser.add_argument("--pose2d", required=True, help="2D pose checkpoint")
    parser.add_argument("--lifter", help="3D lifter checkpoint (optional; images only)")
    parser.add_argument("--out", default="preds.json",
                        help="predictions JSON; for videos: X.json (+ X.csv, X_overlay.mp4) for one video, "
                             "or a folder (per video: STEM.json, STEM.csv, STEM_overlay.mp4)")
    parser.add_argument("--vis", help="directory for overlay drawings (PNG; images only)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-flip", action="store_true")
    v = parser.add_argument_group("video")
    v.add_argument("--no-smooth", action="store_true", help="videos: keep the raw per-frame keypoints")
    v.add_argument("--min-cutoff", type=float, help="videos: One-Euro cut-off at rest, Hz (default 1; lower: smoother)")
    v.add_argument("--beta", type=float, help="videos: One-Euro speed coefficient (default 0.01; higher: less lag)")
    v.add_argument("--max-infants", type=int, help="videos: most infants per frame (default 3)")
    v.add_argument("--min-box-score", type=float, help="videos: detector score for a second infant (default 0.3)")
    v.add_argument("--max-frames", type=int, help="videos: only the first N frames")
    v.add_argument("--no-overlay", action="store_true", help="videos: no overlay MP4")


def run(args: argparse.Namespace) -> int:
    from pose_models.predict import predict, split_inputs, write_predictions

    images, videos = split_inputs(args.images)
    if videos:
        return _run_videos(args, videos)
    preds = predict(images, args.detector, args.pose2d, args.lifter, args.device, not args.no_flip, args.vis)
    write_predictions(args.out, preds)
    print(f"{len(preds)} predictions -> {args.out}" + (f", drawings in {args.vis}" if args.vis else ""))
    return 0


def _run_videos(args: argparse.Namespace, videos) -> int:
    import json

    from pose_models.video import VideoConfig, run_videos
    from syrip_gen.config import from_mapping
    from syrip_gen.errors import UserError

    if args.lifter or args.vis:
        raise UserError("--lifter and --vis work on images; for videos the overlay MP4 is written beside --out")
    smoothing = {k: getattr(args, k) for k in ("min_cutoff", "beta") if getattr(args, k) is not None}
    given = {"flip": not args.no_flip, "smooth": not args.no_smooth, "overlay": not args.no_overlay,
             "smoothing": smoothing,
             **{k: getattr(args, k) for k in ("max_infants", "min_box_score", "max_frames") if getattr(args, k) is not None}}
    cfg = from_mapping(VideoConfig, given, "predict",
                       name=lambda path: "--" + path.split(".")[-1].replace("_", "-"))
    for done in run_videos(videos, args.detector, args.pose2d, args.out, cfg, args.device):
        print(json.dumps(done, sort_keys=True))
    return 0
