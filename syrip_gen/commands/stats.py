"""`syrip-gen stats DATASET [--compare OTHER]`: pose/posture/visibility/viewpoint pictures and
the pose-coverage score."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="dataset directory in SyRIP layout (or its COCO JSON file)")
    p.add_argument("--compare", help="another dataset (e.g. the real train set) to compare with and "
                   "score pose coverage against")
    p.add_argument("--out", help="output directory (default: DATASET/stats)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from syrip_gen.filter import dataset_json, dataset_root
    from syrip_gen.stats import dataset_stats

    out = Path(args.out) if args.out else dataset_root(dataset_json(args.dataset)) / "stats"
    stats = dataset_stats(args.dataset, out, compare=args.compare)
    for name, d in stats["datasets"].items():
        print(f"{name}: {d['n_annotations']} annotations, {d['n_normalised_poses']} normalised poses, "
              f"postures {d['postures']}")
    c = stats.get("coverage")
    if c:
        print(f"pose coverage of {c['other']} by {c['dataset']} (within {c['tau']} torso lengths): "
              f"{c['coverage']:.3f}; reverse (share of {c['dataset']} near {c['other']}): {c['precision']:.3f}")
    print(f"wrote {out}/stats.json and {len(stats['files'])} PNG files")
    return 0
