"""Benchmark `syrip-gen fit`: accuracy and speed on the real SyRIP skeletons, and a synthetic
round trip for 3D accuracy. Writes benchmarks/results/fit_real.json and .md (hardware from
lscpu, the date). Not a test: numbers are reported as measured.

    python benchmarks/fit_real.py [--splits train200 validate100] [--round-trip 100] [--threads 1]

Real data: ../shared/data/syrip/<split> (research-only, read in place, never copied).
Measures, per split: mean-keypoint error / box diagonal (median, p90, p95, share <= 2 % and
<= 5 % over ALL skeletons, rejected ones counted with their error), statuses, share of fits
violating joint limits (> 0.05 rad summed), hyperextended (> 0.05 rad) or self-penetrating
(> 5 mm capsule overlap), fits per second of the fitting loop (all hypotheses, after model load)
and the model-load time. Round trip: poses drawn from the bundled prior and, separately, from
the hand-written pose families of scripts/make_bundled_prior.py (not what the prior was fitted
on), random views/ages/cameras, projected with 0.3 % pixel noise, fitted; PA-MPJPE of the 17
recovered 3D keypoints in mm.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from syrip_gen.config import RunConfig  # noqa: E402
from syrip_gen.fit.fitter import FitConfig, error_distribution, fit_batch, fit_file, skeleton_noise  # noqa: E402
from syrip_gen.fit.limits import hyperextension, joint_limit_violation  # noqa: E402
from syrip_gen.fit.penetration import capsule_penetration  # noqa: E402
from syrip_gen.fit.prior import default_prior  # noqa: E402
from syrip_gen.fit.synthetic import pa_mpjpe, synthetic_skeletons  # noqa: E402
from syrip_gen.fits import read_fits  # noqa: E402
from syrip_gen.hardware import lscpu, write_results  # noqa: E402
from syrip_gen.paths import shared_syrip  # noqa: E402


def hardware() -> str:
    return "; ".join(f"{k}: {v}" for k, v in lscpu().items()) or "unknown (lscpu unavailable)"


def real_split(split: str, body, threads: int) -> dict | None:
    path = shared_syrip(split)
    if not path.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        s = fit_file(path, tmp, FitConfig(overlays=False, run=RunConfig(threads=threads)), body=body, progress=False)
        recs = read_fits(Path(tmp) / "fits.jsonl")
    fitted = [r for r in recs if r.get("pose") is not None]
    errors = [r["mean_error_norm"] for r in fitted]
    pose = torch.tensor([r["pose"] for r in fitted])
    shape = torch.tensor([r["shape"] for r in fitted])
    with torch.no_grad():
        joints = body(pose, shape).joints
    lim = joint_limit_violation(pose)
    hyp = hyperextension(pose)
    pen = capsule_penetration(joints)
    by_posture: dict[str, list] = {}
    for r in fitted:
        by_posture.setdefault(r.get("posture") or "none", []).append(r["mean_error_norm"])
    return {
        "skeletons": len(recs), "fitted": len(fitted), "statuses": s.counts,
        "error_all_fitted": error_distribution(errors),
        "error_ok_only": s.error,
        "median_error_by_posture": {k: float(np.median(v)) for k, v in sorted(by_posture.items())},
        "share_joint_limit_violation_gt_0.05rad": float((lim > 0.05).float().mean()),
        "share_hyperextension_gt_0.05rad": float((hyp > 0.05).float().mean()),
        "share_penetration_gt_5mm": float((pen > 0.005).float().mean()),
        "fit_seconds": s.seconds, "fits_per_second": s.fits_per_second,
        "hypotheses_chosen": {h: sum(r["hypothesis"] == h for r in fitted) for h in sorted({r["hypothesis"] for r in fitted})},
    }


def round_trip(body, n: int, poses: str, threads: int, seed: int = 0) -> dict:
    from syrip_gen.fit.kinematics import keypoint_model

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(seed)
    prior = default_prior()
    source = prior
    if poses == "hand_written":
        from make_bundled_prior import hand_written_poses

        hw = hand_written_poses(max(1, n // 8 + 1), seed)
        source = _FixedPoses(hw[torch.randperm(len(hw), generator=g)[:n]])
    syn = synthetic_skeletons(body, source, n, g, pixel_noise=0.003)
    cfg = FitConfig(overlays=False, run=RunConfig(threads=threads))
    start = time.perf_counter()
    res = fit_batch(body, keypoint_model(body), prior, syn.keypoints, syn.width, syn.height, [None] * n, cfg,
                    skeleton_noise([str(i) for i in range(n)], 0))
    seconds = time.perf_counter() - start
    pa = pa_mpjpe(res.keypoints_3d, syn.keypoints_3d) * 1000
    return {"n": n, "poses": poses, "pa_mpjpe_mm_median": float(pa.median()), "pa_mpjpe_mm_mean": float(pa.mean()),
            "pa_mpjpe_mm_p90": float(torch.quantile(pa, 0.9)),
            "error_2d": error_distribution(res.error_norm.mean(1).tolist()),
            "age_abs_error_months_median": float((res.age_months - body.age_months(syn.shape)).abs().median()),
            "seconds": seconds}


class _FixedPoses:
    """Prior stand-in that hands out given poses (for the hand-written round trip)."""

    def __init__(self, poses):
        self.poses = poses

    def sample(self, n, generator):
        p = self.poses[:n].clone()
        p[:, 0] = 0
        return p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", nargs="*", default=["train200", "validate100"])
    ap.add_argument("--round-trip", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fit_real"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from syrip_gen.body import load_body

    t = time.perf_counter()
    body = load_body("anny")
    load_s = time.perf_counter() - t
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "hardware": hardware(), "torch_threads": args.threads, "model_load_seconds": load_s,
              "real": {}, "round_trip": []}
    for split in args.splits:
        r = real_split(split, body, args.threads)
        result["real"][split] = r if r is not None else "data not found"
        print(split, json.dumps(r, sort_keys=True)[:400])
    if args.round_trip:
        for kind in ("prior_samples", "hand_written"):
            rt = round_trip(body, args.round_trip, kind, args.threads)
            result["round_trip"].append(rt)
            print("round trip", json.dumps(rt, sort_keys=True))
    out = Path(args.out)
    write_results(out, result, markdown(result))
    print(f"wrote {out}.json and .md")
    return 0


def markdown(r: dict) -> str:
    lines = ["# fit benchmark (`benchmarks/fit_real.py`)", "",
             f"Date: {r['date']}  ", f"Hardware: {r['hardware']}  ",
             f"torch threads: {r['torch_threads']}; Anny load: {r['model_load_seconds']:.1f} s", "",
             "Machine shared with other engineers' jobs while measuring: speed numbers are noisy.", "",
             "## Real SyRIP skeletons", "",
             "| split | n | ok | median err | p90 | p95 | ≤2 % | ≤5 % (goal ≥95 %) | limits viol. | hyperext. | penetr. | fits/s (goal ≥20) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for split, v in r["real"].items():
        if not isinstance(v, dict):
            lines.append(f"| {split} | {v} |")
            continue
        e = v["error_all_fitted"]
        lines.append(f"| {split} | {v['skeletons']} | {v['statuses'].get('ok', 0)} | {100 * e['median']:.2f} % | "
                     f"{100 * e['p90']:.2f} % | {100 * e['p95']:.2f} % | {100 * e['share_le_2pct']:.1f} % | "
                     f"{100 * e['share_le_5pct']:.1f} % | {100 * v['share_joint_limit_violation_gt_0.05rad']:.1f} % | "
                     f"{100 * v['share_hyperextension_gt_0.05rad']:.1f} % | {100 * v['share_penetration_gt_5mm']:.1f} % | "
                     f"{v['fits_per_second']:.1f} ({v['fit_seconds']:.1f} s) |")
    lines += ["", "Errors: mean over labelled keypoints of the 2D error / keypoint-box diagonal, over all fitted "
              "skeletons (rejected ones included).", "", "## Synthetic round trip (PA-MPJPE, goal ≤ 25 mm)", "",
              "| poses | n | PA-MPJPE median | mean | p90 | 2D median err | age error (median) |", "|---|---|---|---|---|---|---|"]
    for v in r["round_trip"]:
        lines.append(f"| {v['poses']} | {v['n']} | {v['pa_mpjpe_mm_median']:.1f} mm | {v['pa_mpjpe_mm_mean']:.1f} mm | "
                     f"{v['pa_mpjpe_mm_p90']:.1f} mm | {100 * v['error_2d']['median']:.2f} % | "
                     f"{v['age_abs_error_months_median']:.1f} months |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
