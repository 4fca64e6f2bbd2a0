"""``syrip-gen predict IMAGES|VIDEOS --detector D --pose2d P [--lifter L] --out preds.json --vis DIR``.

Images: box -> 2D -> 3D per image. Videos (MP4/AVI/...): infants detected (every few frames,
boxes carried from the keypoints in between), 2D pose on each box, infants tracked across
frames, keypoints smoothed in time (One-Euro), written as JSON + CSV (one record per frame and
infant), an overlay MP4, a skeleton-only MP4 and per-track movement summaries (JSON + PNG) (see
``pose_models.video``, ``pose_models.movement``).
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files and/or directories of images, or video files")
    parser.add_argument("--detector", default="infant-detector",
                        help="detector checkpoint, its train --out folder, or a shipped model's name (default: the "
                             "shipped infant-detector; `syrip-gen models`)")
    parser.add_argument("--pose2d", default="infant-pose2d",
                        help="2D pose checkpoint, its train --out folder, or a shipped model's name (default: the "
                             "shipped infant-pose2d)")
    parser.add_argument("--lifter", help="3D lifter checkpoint (optional; images only)")
    parser.add_argument("--out", default="preds.json",
                        help="predictions JSON; for videos: X.json (+ X.csv, X_overlay.mp4, X_skeleton.mp4, "
                             "X_movement.json, X_movement.png) for one video, or a folder (the same per video, "
                             "named by its STEM)")
    parser.add_argument("--vis", help="directory for overlay drawings (PNG; images only)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-flip", action="store_true", help="images: no flip test (videos have none by default)")
    v = parser.add_argument_group("video")
    v.add_argument("--no-smooth", action="store_true", help="videos: keep the raw per-frame keypoints")
    v.add_argument("--min-cutoff", type=float, help="videos: One-Euro cut-off at rest, Hz (default 1; lower: smoother)")
    v.add_argument("--beta", type=float, help="videos: One-Euro speed coefficient (default 0.01; higher: less lag)")
    v.add_argument("--max-infants", type=int, help="videos: most infants per frame (default 3)")
    v.add_argument("--min-box-score", type=float,
                   help="videos: detector score an infant needs (default 0.3; a frame with none has no infant)")
    v.add_argument("--min-box-side", type=float,
                   help="videos: smallest infant box as a share of the frame's shorter side (default 0.04)")
    v.add_argument("--detect-every", type=int,
                   help="videos: the detector every K frames, boxes carried in between (default 5; 1: every frame)")
    v.add_argument("--flip", action="store_true", help="videos: flip test (twice the 2D work)")
    v.add_argument("--precision", choices=("float32", "bfloat16"), help="videos: inference precision (default float32)")
    v.add_argument("--max-frames", type=int, help="videos: only the first N frames")
    v.add_argument("--no-overlay", action="store_true", help="videos: no overlay MP4")
    v.add_argument("--no-skeleton-video", action="store_true", help="videos: no skeleton-only MP4")
    v.add_argument("--no-movement", action="store_true", help="videos: no movement summary JSON and plot")


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
    if args.no_flip and args.flip:
        raise UserError("--flip and --no-flip: give one")
    given = {"flip": args.flip, "smooth": not args.no_smooth, "overlay": not args.no_overlay,
             "skeleton_video": not args.no_skeleton_video, "movement": not args.no_movement, "smoothing": smoothing,
             **{k: getattr(args, k) for k in ("max_infants", "min_box_score", "min_box_side", "max_frames",
                                              "detect_every", "precision")
                if getattr(args, k) is not None}}
    cfg = from_mapping(VideoConfig, given, "predict",
                       name=lambda path: "--" + path.split(".")[-1].replace("_", "-"))
    for done in run_videos(videos, args.detector, args.pose2d, args.out, cfg, args.device):
        print(json.dumps(done, sort_keys=True))
    return 0
