"""Benchmark: training crops/s of the 2D model on every numeric path, side by side, and what the
trainer's fixed rule (``pose_models.device.numeric_path``) picks.

Why: the ablation's length is set by crops/s, and the fastest path depends on the CPU the session
lands on (float32 or bfloat16 autocast; NCHW or channels-last). The variants of one model are timed
interleaved, step by step (``pose_models.device.step_probe``), so load from
other jobs falls on all of them alike and their ratios stay meaningful on a busy machine; absolute
crops/s are recorded with the load average. Each timed step is a full training step (forward,
backward, AdamW) on random tensors; data loading is not timed (the loader caches crops in memory).
GFLOP per crop (forward + backward, torch's FlopCounterMode) are exact and load-independent.

    python benchmarks/train_throughput.py [--repeats 5] [--batch 32] [--device cuda]

Writes ``benchmarks/results/train_throughput.{json,md}``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syrip_gen.hardware import describe, git_commit, write_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# (depth, input_h, input_w, head channels): the spec's CPU model, the earlier CPU recipe, the GPU profile's
CONFIGS = [(18, 96, 64, 128), (18, 128, 96, 256), (50, 256, 192, 256)]


def gflop_per_crop(model, h: int, w: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, 3, h, w)
    with FlopCounterMode(display=False) as fc:
        model(x)[0].sum().backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops() / 1e9


def measure(depth: int, h: int, w: int, c: int, batch: int, device, repeats: int, variants) -> list[dict]:
    import torch

    from pose_models.device import cpu_has_native_bf16, numeric_path, step_probe
    from pose_models.models import build_model

    torch.manual_seed(0)
    model = build_model("pose2d", dict(depth=depth, input_h=h, input_w=w, deconv_channels=c)).to(device).train()
    g = gflop_per_crop(model, h, w)
    b = {"image": torch.randn(batch, 3, h, w, device=device),
         "target": torch.rand(batch, 17, h // 4, w // 4, device=device), "weight": torch.ones(batch, 17, device=device)}
    probe = step_probe(model, b, lambda m, x: m(x["image"], x["target"], x["weight"])[1], device, repeats)
    load = os.getloadavg()[0]
    times = probe(variants)
    rule = numeric_path("pose2d", device)
    chosen = (rule.precision, rule.channels_last)
    base = times[0]
    return [{"depth": depth, "input": f"{h}x{w}", "head_channels": c, "gflop_per_crop": round(g, 3),
             "precision": p, "channels_last": cl, "crops_per_s": round(batch / t, 2), "x_float32_nchw": round(base / t, 2),
             "auto_choice": (p, cl) == chosen, "native_bf16": cpu_has_native_bf16(),
             "load_avg_1min": [round(load, 2), round(os.getloadavg()[0], 2)]} for (p, cl), t in zip(variants, times)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-gpu-config", action="store_true", help="leave out ResNet-50 256x192 on a CPU")
    args = p.parse_args()
    import torch

    device = torch.device(args.device)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    half = "float16" if device.type == "cuda" else "bfloat16"
    variants = [("float32", False), ("float32", True), (half, False), (half, True)]
    rows = []
    for depth, h, w, c in CONFIGS:
        if args.skip_gpu_config and depth == 50:
            continue
        rows += measure(depth, h, w, c, args.batch, device, args.repeats, variants)
        for r in rows[-len(variants):]:
            print(r, flush=True)
    meta = {"command": "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:]), "commit": git_commit(Path(__file__).resolve().parent.parent),
            "date": datetime.date.today().isoformat(), "hardware": describe(), "device": args.device,
            "batch": args.batch, "threads": torch.get_num_threads(), "repeats": args.repeats}
    md = ["# 2D model training crops/s on every numeric path, side by side", "",
          *(f"- {k}: {v}" for k, v in meta.items()), "",
          "| ResNet | input | head | GFLOP / crop | precision | layout | crops/s | × float32 NCHW | auto picks | load avg |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['depth']} | {r['input']} | {r['head_channels']} | {r['gflop_per_crop']} | {r['precision']} | "
           f"{'channels-last' if r['channels_last'] else 'NCHW'} | {r['crops_per_s']} | {r['x_float32_nchw']} | "
           f"{'**yes**' if r['auto_choice'] else ''} | {r['load_avg_1min']} |" for r in rows]
    md += ["", "Variants of one model were timed interleaved (median of the timed steps), so their ratios hold on a "
           "loaded machine; absolute crops/s are lower bounds when the load average exceeds the core count. "
           "'auto picks' is what `train` chooses at run time on this machine (bfloat16 is only tried where the "
           "CPU has it natively; a path must be 5 % faster than float32 NCHW to be chosen)."]
    write_results(RESULTS / "train_throughput", {**meta, "rows": rows}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
