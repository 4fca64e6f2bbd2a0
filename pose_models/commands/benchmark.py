"""`syrip-gen benchmark`: write the benchmark report from the recorded results and the ablation run."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default="benchmarks/results", help="where benchmark scripts wrote results")
    p.add_argument("--ablation", default="runs/ablation", help="output of `pipeline run pipelines/ablation.yaml`")
    p.add_argument("--test-set", default=None, help="real test set (default ../shared/data/syrip/validate100)")
    p.add_argument("--out", default="benchmarks/results", help="where report.md/json/png go")
    p.add_argument("--mediapipe", default="runs/mediapipe/validate100.json",
                   help="MediaPipe's predictions on the test set (benchmarks/baselines/mediapipe_predict.py "
                        "--out; predictions on the research-only photos stay outside the repository)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pose_models.report import ReportConfig, check_inputs, write_report

    cfg = ReportConfig(results_dir=Path(args.results), ablation_dir=Path(args.ablation),
                       test_set=Path(args.test_set) if args.test_set else None,
                       out_dir=Path(args.out), mediapipe_predictions=Path(args.mediapipe))
    check_inputs(cfg)
    path = write_report(cfg)
    print(f"wrote {path}")
    return 0
