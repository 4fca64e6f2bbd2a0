"""Benchmark: body-model forward(+backward) speed, the cost the fitter pays per step.

Times the keypoints-only path (forward + backward to pose and shape, what fitting does) of
Anny at batch 1, 256 and 4096, and the full-mesh forward (no gradient, what rendering does)
for comparison; optionally the same for an SMPL-sized model through smplx built from random
arrays (6890 vertices, 20 betas: speed does not depend on the values; no licensed file).
Median of ``--repeats`` timed runs after ``--warmup`` untimed ones. Writes
``benchmarks/results/body_forward.{json,md}`` with the hardware and date.

    nice python benchmarks/body_forward.py [--device cuda] [--repeats 7] [--threads 1]
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

from syrip_gen.atomic import atomic_write_bytes
from syrip_gen.hardware import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"




def timed(fn, device, repeats: int, warmup: int) -> dict:
    """Median / min wall seconds and median CPU seconds of ``fn()`` over ``repeats`` runs
    after ``warmup`` runs."""
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        fn()
    sync()
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    # CPU seconds (all threads): not inflated by waiting for a core, but by threads spinning at
    # OpenMP barriers, so a second view of the cost, not a clean one
    return {"median_s": statistics.median(times), "min_s": min(times),
            "cpu_median_s": statistics.median(cpu), "repeats": repeats}


def bench_body(body, name: str, device, batches, mesh_batches, repeats, warmup) -> list[dict]:
    import torch

    g = torch.Generator().manual_seed(0)
    rows = []
    for b in batches:
        pose0 = (0.3 * torch.randn(b, 24, 3, generator=g)).to(device)
        shape0 = body.shape_for_age(torch.full((b,), 6.0)).to(device)

        def step():
            pose = pose0.clone().requires_grad_(True)
            shape = shape0.clone().requires_grad_(True)
            out = body(pose, shape)
            out.keypoints.square().sum().backward()

        r = timed(step, device, repeats, warmup)
        rows.append({"body": name, "path": "keypoints fwd+bwd", "batch": b, **r,
                     "per_body_us": 1e6 * r["median_s"] / b})
        print(f"{name:5s} keypoints fwd+bwd  batch {b:5d}: {1e3 * r['median_s']:9.2f} ms", flush=True)
    for b in mesh_batches:
        pose = (0.3 * torch.randn(b, 24, 3, generator=g)).to(device)
        shape = body.shape_for_age(torch.full((b,), 6.0)).to(device)

        def mesh():
            with torch.no_grad():
                body(pose, shape, with_vertices=True)

        r = timed(mesh, device, repeats, warmup)
        rows.append({"body": name, "path": "full mesh fwd", "batch": b, **r,
                     "per_body_us": 1e6 * r["median_s"] / b})
        print(f"{name:5s} full mesh fwd      batch {b:5d}: {1e3 * r['median_s']:9.2f} ms", flush=True)
    return rows


def synthetic_smpl(seed: int = 0):
    """An SMPL-sized SmplBody from random arrays (6890 vertices, 13776 faces, 20 betas)."""
    import numpy as np

    from syrip_gen.body.pose_space import PARENTS
    from syrip_gen.body.smpl_body import SmplBody

    rng = np.random.default_rng(seed)
    V, S = 6890, 20
    v = rng.normal(0, 0.1, (V, 3)).astype(np.float32)
    w = rng.random((V, 24)).astype(np.float32) ** 8
    w /= w.sum(1, keepdims=True)
    jr = rng.random((24, V)).astype(np.float32)
    jr /= jr.sum(1, keepdims=True)
    arrays = {"v_template": v, "shapedirs": rng.normal(0, 0.01, (V, 3, S)).astype(np.float32),
              "posedirs": rng.normal(0, 0.001, (V, 3, 207)).astype(np.float32), "J_regressor": jr,
              "weights": w, "kintree_table": np.array([[-1] + PARENTS[1:], list(range(24))]),
              "f": rng.integers(0, V, (13776, 3))}
    return SmplBody(arrays, kind="smil")


def write_markdown(path: Path, meta: dict, rows: list[dict]) -> None:
    lines = [
        "# Body-model forward speed",
        "",
        f"- Date: {meta['date']}; device: {meta['device']} ({meta['hardware']})",
        f"- torch {meta['torch']}, {meta['threads']} CPU threads; median of {meta['repeats']} runs "
        f"after {meta['warmup']} warm-up runs; `{meta['command']}`",
        f"- {meta['cpus']} CPUs, 1-minute load average {meta['load_average_1m_start_end'][0]} at the start and "
        f"{meta['load_average_1m_start_end'][1]} at the end (shared machine: above {meta['cpus']} means "
        "other work competed for the cores and times are inflated)",
        f"- {meta['note']}",
        "- keypoints fwd+bwd: keypoints-only forward and backward to pose and shape (a fitting step);",
        "  full mesh fwd: vertices, no gradient (a render). `smil*` = SMPL-sized random arrays through",
        "  smplx (6890 vertices, 20 betas), not the licensed model: same cost, meaningless shapes.",
        "",
        "- CPU ms = process CPU time summed over threads (not inflated by waiting for a core, but by",
        "  threads spinning at OpenMP barriers; with 2 busy threads it can reach twice the wall time).",
        "",
        "| body | path | batch | wall median ms | wall min ms | CPU median ms | wall µs per body |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['body']} | {r['path']} | {r['batch']} | {1e3 * r['median_s']:.2f} | "
                     f"{1e3 * r['min_s']:.2f} | {1e3 * r['cpu_median_s']:.2f} | {r['per_body_us']:.1f} |")
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", default="1,256,4096")
    ap.add_argument("--mesh-batches", default="1,16,64")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: on a shared machine 2 threads oversubscribe and stall)")
    ap.add_argument("--no-smpl", action="store_true", help="skip the SMPL-sized synthetic model")
    ap.add_argument("--note", default="no GPU was lent for this session: CPU only")
    ap.add_argument("--out", default=str(RESULTS / "body_forward"), help="path stem of .json/.md")
    args = ap.parse_args()

    import torch

    from syrip_gen.atomic import atomic_write_json
    from syrip_gen.body import load_body

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here (run on a machine with a GPU)")
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]  # the machine may be shared: record how busy it was
    device = torch.device(args.device)
    batches = [int(x) for x in args.batches.split(",")]
    mesh_batches = [int(x) for x in args.mesh_batches.split(",") if x]
    rows = bench_body(load_body("anny", device=args.device), "anny", device, batches, mesh_batches,
                      args.repeats, args.warmup)
    if not args.no_smpl:
        rows += bench_body(synthetic_smpl().to(device), "smil*", device, batches, mesh_batches,
                           args.repeats, args.warmup)
    hardware = cpu_model() if device.type == "cpu" else torch.cuda.get_device_name(device)
    meta = {"date": datetime.date.today().isoformat(), "device": str(device), "hardware": hardware,
            "cpus": len(os.sched_getaffinity(0)), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "repeats": args.repeats, "warmup": args.warmup,
            "command": "nice python benchmarks/body_forward.py " + " ".join(sys.argv[1:]),
            "note": args.note, "load_average_1m_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)]}
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), {"meta": meta, "results": rows})
    write_markdown(out.with_suffix(".md"), meta, rows)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
