"""`syrip-gen filter DATASET`: quality gates (and, with --decisions, the reviewers' decisions)."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="dataset directory in SyRIP layout (or its COCO JSON file)")
    p.add_argument("--fits", help="FITS/fits.jsonl (or its directory) for the fit-quality gate, "
                   "when the dataset does not record it")
    p.add_argument("--config", help="YAML file overriding FilterConfig thresholds (e.g. max_fit_error: 0.04)")
    p.add_argument("--decisions", action="store_true",
                   help="apply DATASET/review/decisions.json: reviewer rejects override automatic "
                        "accepts, reviewer accepts override automatic rejects")
    p.add_argument("--keypoints", metavar="NPZ", help="the learned keypoints.npz the dataset was rendered "
                   "with (`render --keypoints`); refuses a dataset labelled otherwise")
    p.add_argument("--out", help="filtered COCO file (default: annotations/person_keypoints_<split>_filtered_infant.json; "
                   "for clips, ..._filtered_gates_infant.json beside the clip gates' own)")


def run(args: argparse.Namespace) -> int:
    import logging

    from syrip_gen.coco import dataset_json, load_coco
    from syrip_gen.filter import FilterConfig, default_outputs, filter_dataset, is_clip_set
    from syrip_gen.runfolder import check_writable, locked

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = FilterConfig.from_yaml(args.config) if args.config else FilterConfig()
    coco = dataset_json(args.dataset)  # where filter_dataset writes: the filtered COCO file and its report folder
    default_out, report_dir = default_outputs(coco, is_clip_set(load_coco(coco)))
    check_writable(args.out or default_out, "--out", folder=False)
    check_writable(report_dir, "the report folder")
    with locked(report_dir, "filter"):
        r = filter_dataset(args.dataset, cfg, fits_path=args.fits, use_decisions=args.decisions, out=args.out,
                           out_dir=report_dir, keypoints=args.keypoints, whole_clips=True)
    print(f"kept {r.n_kept} of {r.n_images} images -> {r.coco_out}")
    for reason, n in sorted(r.rejected_by.items(), key=lambda kv: -kv[1]):
        print(f"  rejected {n:5d}  {reason}")
    for gate, why in sorted(r.skipped.items()):
        for text, n in why.items():
            print(f"  gate {gate} not computed for {n} image(s): {text}")
    if r.missing_files:
        print(f"  warning: {r.missing_files} image file(s) listed in the dataset are missing; rejected (missing_file)")
    if r.decisions_unknown_images:
        print(f"  warning: {r.decisions_unknown_images} review decision(s) name images not in the dataset; ignored")
    print(f"report: {r.report}")
    return 0
