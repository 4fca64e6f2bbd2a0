"""Benchmark: what one training crop of the 2D model costs, per input size, depth and head width.

Why: the scaled ablation (pipelines/ablation.yaml) must fit two runs of >= 250 000 crops into
about 150 minutes on the CPU, so its model is chosen by cost. The cost is given two ways: GFLOP
per crop (forward + backward, torch's FlopCounterMode: exact and load-independent) and crops/s of
a full training step (forward, backward, AdamW) on random tensors, median of ``--repeats`` timed
steps after ``--warmup`` untimed ones. Crops/s depends on what else runs on the machine: the
load average is recorded with it. Data loading is not timed (the loader caches crops in memory).

    nice python benchmarks/train_throughput.py [--device cuda] [--repeats 5] [--batch 32]

Writes ``benchmarks/results/train_throughput.{json,md}``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syrip_gen.hardware import describe  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# (depth, input_h, input_w, head channels): the old CPU recipe, the scaled CPU spec, the GPU profile
CONFIGS = [(18, 128, 96, 256), (18, 128, 96, 128), (18, 96, 64, 256), (18, 96, 64, 128), (50, 256, 192, 256)]


def gflop_per_crop(model, h: int, w: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, 3, h, w)
    with FlopCounterMode(display=False) as fc:
        model(x)[0].sum().backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops() / 1e9


def crops_per_s(model, h: int, w: int, batch: int, device, repeats: int, warmup: int) -> float:
    import torch

    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, h, w, device=device)
    target = torch.rand(batch, 17, h // 4, w // 4, device=device)
    weight = torch.ones(batch, 17, device=device)
    times = []
    for i in range(warmup + repeats):
        t = time.perf_counter()
        _, loss = model(x, target, weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--skip-gpu-config", action="store_true", help="leave out ResNet-50 256x192 on a CPU")
    args = p.parse_args()
    import torch

    from pose_models.models import build_model

    device = torch.device(args.device)
    rows = []
    for depth, h, w, c in CONFIGS:
        if args.skip_gpu_config and depth == 50:
            continue
        torch.manual_seed(0)
        model = build_model("pose2d", dict(depth=depth, input_h=h, input_w=w, deconv_channels=c))
        g = gflop_per_crop(model, h, w)
        load_before = os.getloadavg()[0]
        speed = crops_per_s(model, h, w, args.batch, device, args.repeats, args.warmup)
        rows.append({"depth": depth, "input": f"{h}x{w}", "head_channels": c, "gflop_per_crop": round(g, 3),
                     "crops_per_s": round(speed, 2), "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
        print(rows[-1], flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {"command": "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:]), "commit": commit,
            "date": datetime.date.today().isoformat(), "hardware": describe(), "device": args.device,
            "batch": args.batch, "threads": torch.get_num_threads()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_throughput.json").write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
    md = ["# 2D model training cost per crop", "", *(f"- {k}: {v}" for k, v in meta.items()), "",
          "| ResNet | input | head channels | GFLOP / crop (fwd + bwd) | crops/s | load avg (before, after) |",
          "|---|---|---|---|---|---|"]
    md += [f"| {r['depth']} | {r['input']} | {r['head_channels']} | {r['gflop_per_crop']} | {r['crops_per_s']} | "
           f"{r['load_avg_1min']} |" for r in rows]
    md += ["", "GFLOP are exact; crops/s were measured while other jobs shared the CPU when the load average "
           "exceeds the core count, so they are lower bounds and their ratios are rough."]
    (RESULTS / "train_throughput.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
