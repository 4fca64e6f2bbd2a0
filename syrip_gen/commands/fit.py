"""`syrip-gen fit`: fit the infant body model to 2D skeletons (COCO or OpenPose JSON)."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="COCO keypoint JSON, a SyRIP-layout dir (annotations/ + images/), "
                   "or OpenPose per-image JSON (file or dir)")
    p.add_argument("--out", required=True, metavar="FITS", help="output folder (fits.jsonl, summary.json, overlays/)")
    p.add_argument("--fov", type=float, default=60.0, help="assumed field of view across the longer image side, degrees")
    p.add_argument("--refine-focal", action="store_true", help="also optimise the focal length")
    p.add_argument("--pose-prior", metavar="P", help="pose prior .npz (default: the bundled assets/pose_prior.npz)")
    p.add_argument("--body", choices=("anny", "smil", "smpl"), default="anny")
    p.add_argument("--body-path", metavar="P", help="model file for --body smil/smpl")
    p.add_argument("--keypoints", metavar="NPZ",
                   help="keypoint regressor from `syrip-gen learn-keypoints` (default: the body's own)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, metavar="N", help="fit only the first N skeletons")
    p.add_argument("--batch-size", type=int, default=256, help="skeletons per batch (each x all hypotheses)")
    p.add_argument("--images", metavar="DIR", help="photos for overlays (default: inferred from the COCO layout)")
    p.add_argument("--no-overlays", action="store_true", help="skip overlay PNGs and the contact sheet")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 is fastest for these small batched ops on a shared machine)")


def run(args: argparse.Namespace) -> int:
    from syrip_gen.errors import UserError
    from syrip_gen.fit.fitter import FitConfig, fit_file

    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if not 1.0 < args.fov < 170.0:
        raise UserError(f"--fov {args.fov}: give a field of view in degrees between 1 and 170")
    if args.keypoints:  # fail fast on a wrong file, before reading skeletons and the body
        from syrip_gen.body.keypoints import LearnedKeypoints

        LearnedKeypoints.load(args.keypoints)
    cfg = FitConfig(fov_deg=args.fov, refine_focal=args.refine_focal, body=args.body, body_path=args.body_path,
                    keypoints=args.keypoints,
                    pose_prior=args.pose_prior, device=args.device, seed=args.seed, batch_size=args.batch_size,
                    limit=args.limit, overlays=not args.no_overlays, images=args.images, threads=args.threads)
    s = fit_file(args.input, args.out, cfg)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items()))
    e = s.error
    err = (f"median error {100 * e['median']:.2f}% of the box diagonal, {100 * e['share_le_5pct']:.0f}% <= 5%"
           if e.get("n") else "no ok fits")
    print(f"fitted {s.fitted} ({s.skipped_existing} already done) in {s.seconds:.1f} s "
          f"({s.fits_per_second:.1f}/s on {s.device}); {counts}; {err}; -> {args.out}/fits.jsonl")
    return 0
