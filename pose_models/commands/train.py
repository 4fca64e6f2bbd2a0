"""``syrip-gen train CONFIG.yaml [--set key=value ...]``: train a detector, 2D model or lifter."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="training YAML (e.g. pipelines/train_pose2d_cpu.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (YAML value; augment.flip=0 for nested keys); repeatable")
    parser.add_argument("--device", help="auto (default: CUDA with mixed precision if present), cpu or cuda")
    parser.add_argument("--out", help="output directory (checkpoints, log.csv, metrics.json)")
    parser.add_argument("--init", help="initial weights: torchvision ResNet or SimpleBaselines .pth")
    parser.add_argument("--max-steps", type=int, help="number of optimiser steps")
    parser.add_argument("--no-resume", action="store_true", help="start fresh even if out has checkpoints")


def run(args: argparse.Namespace) -> int:
    from pose_models.config import TrainConfig

    flags = {"device": args.device, "out_dir": args.out, "init": args.init, "max_steps": args.max_steps}
    overrides = list(args.overrides) + [f"{k}={v}" for k, v in flags.items() if v is not None]
    if args.no_resume:
        overrides.append("resume=false")
    cfg = TrainConfig.from_yaml(args.config, overrides)
    from pose_models.train import train
    from syrip_gen.runfolder import check_writable, locked

    check_writable(cfg.out_dir, "--out" if args.out else "out_dir")
    with locked(cfg.out_dir, "train"):
        path = train(cfg)
    print(f"checkpoint: {path}")
    return 0
