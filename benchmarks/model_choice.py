"""Benchmark: which 2D network the shipped model uses (issue 31), measured as whole designs on this CPU.

Per design (backbone + head + input size): parameters, GFLOP per crop (forward, torch FlopCounterMode: exact),
training crops/s (forward + backward + AdamW, batch 32) in the numeric path the trainer's rule picks on this
machine and in float32 NCHW, and inference crops/s (batch 8, no flip) -- what video predict pays. Designs are
timed interleaved, step by step (``pose_models.device.step_probe``), so load from other jobs falls on all alike;
the ratios hold on a busy machine, absolute figures are lower bounds there. With ``--curves A.json B.json ...``
(``syrip-gen curve``/``evaluate_along`` outputs, or metrics JSONs named DESIGN@CROPS) the learning curves
(validate100 AP against crops and CPU-minutes) are drawn and tabulated too.

    python benchmarks/model_choice.py [--repeats 3] [--curve NAME=run_dir ...]

Writes ``benchmarks/results/model_choice.{json,md}`` (and ``model_choice.png`` with curves).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syrip_gen.hardware import describe, git_commit, write_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# (label, arch, input_h, input_w, head channels)
DESIGNS = [("ResNet-18 + 3 deconv (earlier product)", "resnet", 96, 64, 128),
           ("ResNet-18 + 3 deconv", "resnet", 128, 96, 256),
           ("lite (shipped)", "lite", 128, 96, 64),
           ("lite", "lite", 192, 144, 64),
           ("lite", "lite", 256, 192, 64)]


def measure(repeats: int, batch: int) -> list[dict]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pose_models.device import numeric_path, step_probe
    from pose_models.models import build_model

    cpu = torch.device("cpu")
    rule = numeric_path("pose2d", cpu)
    paths = [("float32", False)] + ([(rule.precision, rule.channels_last)] if rule.precision != "float32" else [])
    rows = []
    for label, arch, h, w, c in DESIGNS:
        torch.manual_seed(0)
        m = build_model("pose2d", dict(arch=arch, depth=18, input_h=h, input_w=w, deconv_channels=c)).train()
        with FlopCounterMode(display=False) as fc:
            m(torch.randn(1, 3, h, w))
        b = {"image": torch.randn(batch, 3, h, w), "target": torch.rand(batch, 17, h // 4, w // 4),
             "weight": torch.ones(batch, 17)}
        t = step_probe(m, b, lambda mm, x: mm(x["image"], x["target"], x["weight"])[1], cpu, repeats)(paths)
        m.eval()
        x = torch.randn(8, 3, h, w)
        with torch.inference_mode():
            m(x)
            t0 = time.perf_counter()
            for _ in range(repeats * 3):
                m(x)
            infer = 8 * repeats * 3 / (time.perf_counter() - t0)
        rows.append({"design": label, "arch": arch, "input": f"{h}x{w}", "head_channels": c,
                     "params_m": round(sum(p.numel() for p in m.parameters()) / 1e6, 2),
                     "gflop_forward": round(fc.get_total_flops() / 1e9, 3),
                     "train_crops_s_float32": round(batch / t[0], 1),
                     "train_crops_s_rule": round(batch / t[-1], 1), "rule_path": f"{paths[-1][0]}"
                     f"{', channels-last' if paths[-1][1] else ''}",
                     "infer_crops_s_float32": round(infer, 1), "load_avg_1min": round(os.getloadavg()[0], 1)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--curve", action="append", default=[], metavar="NAME=JSON",
                   help="a learning curve: JSON list of {crops, cpu_min, AP} rows (repeatable)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    rows = measure(args.repeats, args.batch)
    curves = {}
    for item in args.curve:
        name, _, path = item.partition("=")
        curves[name] = json.loads(Path(path).read_text())
    meta = {"command": "python benchmarks/model_choice.py " + " ".join(sys.argv[1:]),
            "commit": git_commit(RESULTS.parent.parent), "date": datetime.date.today().isoformat(),
            "hardware": describe(), "threads": torch.get_num_threads()}
    md = ["# Which 2D network ships: whole designs measured on this CPU", "", *(f"- {k}: {v}" for k, v in meta.items()),
          "", "| design | input | head | params (M) | GFLOP fwd | train crops/s float32 | train crops/s (rule's path) "
          "| inference crops/s float32 | load |", "|---|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['design']} | {r['input']} | {r['head_channels']} | {r['params_m']} | {r['gflop_forward']} | "
           f"{r['train_crops_s_float32']} | {r['train_crops_s_rule']} ({r['rule_path']}) | {r['infer_crops_s_float32']} "
           f"| {r['load_avg_1min']} |" for r in rows]
    if curves:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 1, figsize=(6, 4))
        md += ["", "## Learning curves (validate100 AP, GT boxes, flip)", "", "| run | crops | CPU-minutes | AP |",
               "|---|---|---|---|"]
        for name, pts in curves.items():
            ax.plot([q["cpu_min"] for q in pts], [q["AP"] for q in pts], "o-", label=name)
            md += [f"| {name} | {q['crops']} | {q['cpu_min']:.0f} | {q['AP']:.3f} |" for q in pts]
        ax.set_xlabel("CPU-minutes of training (wall x threads)")
        ax.set_ylabel("validate100 AP")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(RESULTS / "model_choice.png", dpi=110)
        md += ["", "![curves](model_choice.png)"]
    write_results(RESULTS / "model_choice", {**meta, "rows": rows, "curves": curves}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
