"""`syrip-gen learn-keypoints`: learn where the user's annotators put COCO keypoints on the body."""
from __future__ import annotations

import argparse

COCO_NAMES = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
              "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("fits", metavar="FITS", help="fits folder of annotated skeletons (FITS/fits.jsonl, "
                   "from `syrip-gen fit`) or the .jsonl file")
    p.add_argument("--out", required=True, metavar="NPZ", help="where to write the regressor (keypoints.npz); "
                   "keep it with your data, not in a repository")
    p.add_argument("--rounds", type=int, default=3, help="fit -> learn -> refit rounds (default 3)")
    p.add_argument("--heldout", type=float, default=0.25, help="share of skeletons held out (default 0.25)")
    p.add_argument("--radius", type=float, default=0.05,
                   help="candidate vertices within this many metres of each default keypoint (default 0.05)")
    p.add_argument("--min-fits", type=int, default=30, help="refuse with fewer ok fits (default 30)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    from syrip_gen.body.keypoints import LearnConfig
    from syrip_gen.errors import UserError
    from syrip_gen.fit.learn_keypoints import RoundsConfig, learn_file

    if args.rounds < 1:
        raise UserError("--rounds must be at least 1")
    if not 0.05 <= args.heldout <= 0.5:
        raise UserError(f"--heldout {args.heldout}: hold out between 0.05 and 0.5 of the skeletons")
    if not 0.0 < args.radius <= 0.2:
        raise UserError(f"--radius {args.radius}: give a radius in metres in (0, 0.2]")
    cfg = RoundsConfig(rounds=args.rounds, heldout_share=args.heldout, min_fits=args.min_fits,
                       learn=LearnConfig(radius=args.radius), threads=args.threads)
    res = learn_file(args.fits, args.out, cfg)
    b, a, src = res.before, res.after, res.learned.source
    for name, e0, e1 in zip(COCO_NAMES, b["per_joint"], a["per_joint"]):
        if e0 is not None and e1 is not None:
            print(f"  {name:<11} held-out median error {100 * e0:5.2f}% -> {100 * e1:5.2f}%")
    print(f"wrote {args.out}: learned on {src['n_train']} of {src['n_fits']} ok fits ({args.rounds} rounds); "
          f"held-out median fit error {100 * b['median']:.2f}% -> {100 * a['median']:.2f}% of the box diagonal "
          f"({b['n']} skeletons)")
    return 0
