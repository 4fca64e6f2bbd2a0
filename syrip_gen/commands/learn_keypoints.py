"""`syrip-gen learn-keypoints`: learn where the user's annotators put COCO keypoints on the body."""
from __future__ import annotations

import argparse

COCO_NAMES = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
              "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("fits", metavar="FITS", help="fits folder of annotated skeletons (FITS/fits.jsonl, "
                   "from `syrip-gen fit` with the body's own keypoints) or the .jsonl file")
    p.add_argument("--out", required=True, metavar="NPZ", help="where to write the regressor (keypoints.npz); "
                   "keep it with your data, not in a repository")
    p.add_argument("--rounds", type=int, default=2, help="fit -> learn -> refit rounds (default 2)")
    p.add_argument("--heldout", type=float, default=0.25, help="share of skeletons held out (default 0.25)")
    p.add_argument("--radius", type=float, default=0.05,
                   help="candidate vertices within this many metres of each default keypoint (default 0.05)")
    p.add_argument("--min-fits", type=int, default=30, help="refuse with fewer ok fits (default 30)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def fit_config(fits_dir, threads: int):
    """The fit configuration the fits were made with (their summary.json), without overlays."""
    import dataclasses
    import json
    from pathlib import Path

    from syrip_gen.fit.fitter import FitConfig

    summary = Path(fits_dir) / "summary.json"
    recorded = json.loads(summary.read_text()).get("config", {}) if summary.is_file() else {}
    known = {f.name for f in dataclasses.fields(FitConfig)} - {"limit", "images", "overlays", "threads", "device"}
    cfg = FitConfig.from_dict({k: v for k, v in recorded.items() if k in known})
    return dataclasses.replace(cfg, overlays=False, threads=threads, limit=None)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from syrip_gen.body import load_body
    from syrip_gen.body.keypoints import LearnConfig, body_file_hash, file_hash
    from syrip_gen.errors import UserError
    from syrip_gen.fit.io import read_fits
    from syrip_gen.fit.learn_keypoints import RoundsConfig, learn_rounds

    if args.rounds < 1:
        raise UserError("--rounds must be at least 1")
    if not 0.05 <= args.heldout <= 0.5:
        raise UserError(f"--heldout {args.heldout}: hold out between 0.05 and 0.5 of the skeletons")
    if not 0.0 < args.radius <= 0.2:
        raise UserError(f"--radius {args.radius}: give a radius in metres in (0, 0.2]")
    path = Path(args.fits)
    path = path / "fits.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"{path}: no fits file; run `syrip-gen fit` on your annotated skeletons first")
    records = read_fits(path)
    cfg = fit_config(path.parent, args.threads)
    torch.set_num_threads(args.threads)
    body = load_body(cfg.body, cfg.body_path)
    rounds = RoundsConfig(rounds=args.rounds, heldout_share=args.heldout, min_fits=args.min_fits,
                          learn=LearnConfig(radius=args.radius))
    source = {"fits": str(path.resolve()), "fits_sha256": file_hash(path), "fit_config": cfg.record()}
    res = learn_rounds(records, body, cfg, rounds, source=source,
                       body_hash=body_file_hash(cfg.body, cfg.body_path))
    b, a = res.before, res.after
    for name, e0, e1 in zip(COCO_NAMES, b["per_joint"], a["per_joint"]):
        if e0 is not None and e1 is not None:
            print(f"  {name:<11} held-out median error {100 * e0:5.2f}% -> {100 * e1:5.2f}%")
    if not a["median"] < b["median"]:
        raise UserError(f"the learned keypoints do not lower the held-out error (median {100 * b['median']:.2f}% "
                        f"-> {100 * a['median']:.2f}% of the box diagonal over {b['n']} held-out skeletons); "
                        f"{args.out} not written")
    res.learned.save(args.out)
    print(f"wrote {args.out}: learned on {res.learned.source['n_train']} of {res.learned.source['n_fits']} ok fits "
          f"of {path} ({args.rounds} rounds); held-out median fit error {100 * b['median']:.2f}% -> "
          f"{100 * a['median']:.2f}% of the box diagonal ({b['n']} skeletons)")
    return 0
