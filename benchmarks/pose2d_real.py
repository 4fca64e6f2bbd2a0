"""Benchmark: the CPU-sized 2D model (ResNet-18, 128x96, from scratch) trained on SyRIP train200 (real),
evaluated on validate100 with ground-truth boxes; writes benchmarks/results/pose2d_real.{json,md}.

    nice python benchmarks/pose2d_real.py [--steps 220] [--out-dir /tmp/pose2d_real]

The real data stays where it is (research-only licence); only numbers are written into the repo.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from syrip_gen.hardware import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=220)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out-dir", default="/tmp/pose2d_real_run")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from pose_models.config import TrainConfig
    from pose_models.evaluate import evaluate
    from pose_models.train import train
    from syrip_gen.atomic import atomic_write_json
    from syrip_gen.paths import PIPELINES, shared_syrip

    torch.set_num_threads(args.threads)
    train_dir, val_dir = shared_syrip("train200"), shared_syrip("validate100")
    if not train_dir.exists() or not val_dir.exists():
        raise SystemExit(f"real SyRIP data not found under {train_dir.parent}")
    cfg = TrainConfig.from_yaml(PIPELINES / "train_pose2d_cpu.yaml", [
        f"train=[{{path: {train_dir}}}]", "val=null", f"out_dir={args.out_dir}", f"max_steps={args.steps}",
        f"batch_size={args.batch_size}", "device=cpu", "resume=false", f"warmup_steps={min(50, args.steps // 5)}",
        "workers=0", f"ckpt_every={args.steps}"])
    t0 = time.perf_counter()
    ckpt = train(cfg)
    t_train = time.perf_counter() - t0
    ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    t1 = time.perf_counter()
    metrics = evaluate(ckpt, val_dir, boxes="gt", device="cpu", flip=True)
    t_eval = time.perf_counter() - t1
    n_train = 200
    result = {
        "model": "Pose-ResNet (SimpleBaselines) ResNet-18, 128x96 input, from scratch (no pretrained weights)",
        "train_data": "SyRIP train200 (real)", "eval_data": "SyRIP validate100, ground-truth boxes, flip test, DARK decoding",
        "steps": args.steps, "batch_size": args.batch_size, "epochs": args.steps * args.batch_size / n_train,
        "train_images_per_s": ck.get("images_per_s"), "train_wall_s": t_train, "eval_wall_s": t_eval,
        "hardware": f"{cpu_model()}, {args.threads} CPU threads (2-core machine shared with other work), no GPU",
        "torch": torch.__version__, "metrics": metrics,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / "pose2d_real.json", result)
    m = metrics
    lines = [
        "# 2D pose on real SyRIP (CPU benchmark)", "",
        f"- Model: {result['model']}",
        f"- Training: train200 (real), {args.steps} steps x batch {args.batch_size} = {result['epochs']:.1f} epochs, "
        f"Adam(W) lr 1e-3 cosine, augmentation flip/rotation/scale/colour/half-body",
        f"- Hardware: {result['hardware']}; torch {torch.__version__}",
        f"- Wall time: training {t_train / 60:.1f} min (incl. decoding the 200 JPEGs once), evaluation {t_eval:.0f} s; "
        f"throughput {result['train_images_per_s']:.1f} images/s",
        f"- Evaluation: validate100 ({m['n']} infants), GT boxes, flip test; areas fixed: {m['areas_fixed']}", "",
        "| metric | value |", "|---|---|",
        *[f"| OKS {k} | {v:.3f} |" for k, v in m["oks"].items() if v is not None],
        f"| PCK@0.05 (box diagonal) | {m['pck@0.05']:.3f} |", f"| PCK@0.1 (box diagonal) | {m['pck@0.1']:.3f} |", "",
        "| posture | n | AP | PCK@0.05 | PCK@0.1 |", "|---|---|---|---|---|",
        *[f"| {p} | {v['n']} | {v['AP']:.3f} | {v['pck@0.05']:.3f} | {v['pck@0.1']:.3f} |"
          for p, v in m["per_posture"].items()], "",
        "| joint | PCK@0.05 | PCK@0.1 |", "|---|---|---|",
        *[f"| {j} | {v['pck@0.05']:.3f} | {v['pck@0.1']:.3f} |" for j, v in m["per_joint"].items()], "",
        "From scratch on 200 real images the accuracy is low, as expected; it is reported as measured. "
        "ImageNet initialisation (`--init resnet18-*.pth`) and synthetic data are the intended remedies.",
    ]
    (RESULTS / "pose2d_real.md").write_text("\n".join(lines) + "\n")
    print(json.dumps({k: result[k] for k in ("epochs", "train_images_per_s", "train_wall_s")}), m["oks"]["AP"])


if __name__ == "__main__":
    main()
