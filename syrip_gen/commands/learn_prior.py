"""`syrip-gen learn-prior`: fit a pose-prior mixture to the `ok` fits of a fits file."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("fits", metavar="FITS", help="fits folder (FITS/fits.jsonl) or the .jsonl file")
    p.add_argument("--out", required=True, help="where to write the prior (.npz)")
    p.add_argument("--components", type=int, default=8, help="mixture components")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=True,
                   help="add each pose's left-right mirror image (default on)")
    p.add_argument("--force", action="store_true", help="replace --out when it exists")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from syrip_gen.body.pose_space import flip_pose
    from syrip_gen.errors import UserError
    from syrip_gen.fit.prior import fit_gmm
    from syrip_gen.fits import fits_file, read_records

    from syrip_gen.runfolder import check_writable

    # issue 34, C61/C62: the settings and --out before any work; an existing file is replaced only with
    # --force, as learn-keypoints does
    if args.components < 1:
        raise UserError(f"--components must be at least 1, got {args.components}")
    check_writable(args.out, "--out", folder=False)
    if Path(args.out).exists() and not args.force:
        raise UserError(f"--out {args.out} exists; pass --force to replace it (or choose another file)")
    path = fits_file(args.fits)
    ok = [r for r in read_records(path) if r.ok and r.pose]
    need = max(2 * args.components, 4)
    if len(ok) < need:
        raise UserError(f"{path}: only {len(ok)} ok fits; need at least {need} "
                        f"for {args.components} components (use --components fewer)")
    poses = torch.tensor([r.pose for r in ok], dtype=torch.float32)
    if args.mirror:
        poses = torch.cat([poses, flip_pose(poses)])
    prior = fit_gmm(poses, args.components, seed=args.seed,
                    description=f"EM mixture ({args.components} components) on {len(ok)} ok fits of {path}"
                                + (" and their mirror images" if args.mirror else "") + f", seed {args.seed}")
    prior.save(args.out)
    print(f"wrote {args.out}: {prior.description}")
    return 0
