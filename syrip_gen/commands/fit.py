"""`syrip-gen fit`: fit the infant body model to 2D skeletons (COCO or OpenPose JSON)."""
from __future__ import annotations

import argparse

from syrip_gen.body import BODY_MODELS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="COCO keypoint JSON, a SyRIP-layout dir (annotations/ + images/), "
                   "or OpenPose per-image JSON (file or dir)")
    p.add_argument("--out", required=True, metavar="FITS", help="output folder (fits.jsonl, summary.json, overlays/)")
    p.add_argument("--fov", dest="fov_deg", type=float, help="assumed field of view across the longer image side, degrees")
    p.add_argument("--refine-focal", action="store_true", default=None, help="also optimise the focal length")
    p.add_argument("--pose-prior", metavar="P", help="pose prior .npz (default: the bundled assets/pose_prior.npz)")
    p.add_argument("--body", choices=BODY_MODELS)
    p.add_argument("--body-path", metavar="P", help="model file for --body smil/smpl")
    p.add_argument("--keypoints", metavar="NPZ",
                   help="keypoint regressor from `syrip-gen learn-keypoints` (default: the body's own)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"))
    p.add_argument("--seed", type=int)
    p.add_argument("--limit", type=int, metavar="N", help="fit only the first N skeletons")
    p.add_argument("--batch-size", type=int, help="skeletons per batch (each x all hypotheses)")
    p.add_argument("--images", metavar="DIR", help="photos for overlays (default: inferred from the COCO layout)")
    p.add_argument("--no-overlays", dest="overlays", action="store_false", default=None,
                   help="skip overlay PNGs and the contact sheet")
    p.add_argument("--force", action="store_true", default=None,
                   help="replace the fits in --out when they come from another input or other settings")
    p.add_argument("--threads", type=int,
                   help="torch CPU threads (1 is fastest for these small batched ops on a shared machine)")


def run(args: argparse.Namespace) -> int:
    from syrip_gen.config import from_args
    from syrip_gen.fit.fitter import FitConfig, fit_file

    if args.keypoints:  # fail fast on a wrong file, before reading skeletons and the body
        from syrip_gen.body.keypoints import LearnedKeypoints

        LearnedKeypoints.load(args.keypoints)
    cfg = from_args(FitConfig, args, "fit", flags={"fov_deg": "--fov", "overlays": "--no-overlays"})
    s = fit_file(args.input, args.out, cfg)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items()))
    e = s.error
    err = (f"median error {100 * e['median']:.2f}% of the box diagonal, {100 * e['share_le_5pct']:.0f}% <= 5%"
           if e.get("n") else "no ok fits")
    print(f"fitted {s.fitted} ({s.skipped_existing} already done) in {s.seconds:.1f} s "
          f"({s.fits_per_second:.1f}/s on {s.device}); {counts}; {err}; -> {args.out}/fits.jsonl")
    return 0
