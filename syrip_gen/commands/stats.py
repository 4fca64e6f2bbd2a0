"""`syrip-gen stats DATASET [--compare OTHER]`: pose/posture/visibility/viewpoint pictures and
the pose-coverage score."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="dataset directory in SyRIP layout (or its COCO JSON file)")
    p.add_argument("--compare", help="another dataset (e.g. the real train set) to compare with and "
                   "score pose coverage against")
    p.add_argument("--ceiling", metavar="REAL2", help="a second real set (e.g. the real train set when --compare "
                   "is the validation set): its k-NN precision/recall against --compare, the real-vs-real ceiling")
    p.add_argument("--seed", type=int, default=0, help="seed for drawing the 1000 generated skeletons")
    p.add_argument("--out", help="output directory (default: DATASET/stats)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from syrip_gen.coco import dataset_json, dataset_root
    from syrip_gen.stats import dataset_stats

    out = Path(args.out) if args.out else dataset_root(dataset_json(args.dataset)) / "stats"
    stats = dataset_stats(args.dataset, out, compare=args.compare, ceiling=args.ceiling, seed=args.seed)
    for name, d in stats["datasets"].items():
        ratio = d["hip_shoulder_width_ratio"]
        print(f"{name}: {d['n_annotations']} annotations, {d['n_normalised_poses']} normalised poses, "
              f"postures {d['postures']}, hip/shoulder width {'-' if ratio is None else f'{ratio:.3f}'}")
    c = stats.get("coverage")
    if c:
        print(f"pose coverage of {c['other']} by {c['dataset']} (within {c['tau']} torso lengths): "
              f"{c['coverage']:.3f}; reverse (share of {c['dataset']} near {c['other']}): {c['precision']:.3f}")
    for key, label in (("knn", "k-NN"), ("ceiling", "real-vs-real ceiling")):
        k = (c or {}).get(key)
        if k:
            print(f"{label} (k={k['k']}): {k['generated']} vs {k['real']}: precision {k['precision']:.3f}, "
                  f"recall {k['recall']:.3f} ({k['n_generated']} vs {k['n_real']} skeletons)")
    print(f"wrote {out}/stats.json and {len(stats['files'])} PNG files")
    return 0
