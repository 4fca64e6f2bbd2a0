"""`syrip-gen learn-keypoints`: learn where the user's annotators put COCO keypoints on the body."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags default to "not given": RoundsConfig / LearnConfig hold the defaults and ranges."""
    from syrip_gen.config import default_help
    from syrip_gen.fit.learn_keypoints import RoundsConfig

    p.add_argument("fits", metavar="FITS", help="fits folder of annotated skeletons (FITS/fits.jsonl, "
                   "from `syrip-gen fit`) or the .jsonl file")
    p.add_argument("--out", required=True, metavar="NPZ", help="where to write the regressor (keypoints.npz); "
                   "keep it with your data, not in a repository")
    p.add_argument("--rounds", type=int, help=default_help(RoundsConfig, "rounds", "fit -> learn -> refit rounds"))
    p.add_argument("--heldout", dest="heldout_share", type=float,
                   help=default_help(RoundsConfig, "heldout_share", "share of skeletons held out, 0.05-0.5"))
    p.add_argument("--radius", type=float,
                   help=default_help(RoundsConfig, "learn.radius",
                                     "candidate vertices within this many metres of each default keypoint"))
    p.add_argument("--min-fits", type=int, help=default_help(RoundsConfig, "min_fits", "refuse with fewer ok fits"))
    p.add_argument("--threads", type=int, help=default_help(RoundsConfig, "threads", "torch CPU threads"))
    p.add_argument("--force", action="store_true", help="replace --out when it exists")


def run(args: argparse.Namespace) -> int:
    from syrip_gen.coco import KEYPOINT_NAMES
    from syrip_gen.fit.learn_keypoints import RoundsConfig, learn_file

    flags = {"rounds": "--rounds", "heldout_share": "--heldout", "learn.radius": "--radius",
             "min_fits": "--min-fits", "threads": "--threads"}
    given = {k.removeprefix("learn."): getattr(args, k.removeprefix("learn.")) for k in flags}
    cfg = RoundsConfig.from_dict({k: v for k, v in given.items() if v is not None}, "learn-keypoints",
                                 name=lambda path: flags.get(path, path))
    res = learn_file(args.fits, args.out, cfg, force=args.force)
    b, a, src = res.before, res.after, res.learned.source
    for name, e0, e1 in zip(KEYPOINT_NAMES, b["per_joint"], a["per_joint"]):
        if e0 is not None and e1 is not None:
            print(f"  {name:<14} held-out median error {100 * e0:5.2f}% -> {100 * e1:5.2f}%")
    print(f"wrote {args.out}: learned on {src['n_train']} of {src['n_fits']} ok fits ({cfg.rounds} rounds); "
          f"held-out median fit error {100 * b['median']:.2f}% -> {100 * a['median']:.2f}% of the box diagonal "
          f"({b['n']} skeletons)")
    return 0
