"""Benchmark `syrip-gen learn-keypoints` on the real SyRIP skeletons: does a regressor learned on
train200 bring the fits of validate100 (not seen in learning) closer to the human labels, and do
renders labelled with it have the real labels' hip-width / shoulder-width ratio?

    python benchmarks/keypoints.py [--work /work/scratch/keypoints] [--rounds 5] [--render-fits 150]

Real data: ../shared/data/syrip/{train200,validate100} (research-only, read in place). Every
derived file (fits, keypoints.npz, renders) goes under --work, never into the repository; only the
numbers land in benchmarks/results/keypoints.{json,md}. Steps (each reused when its output exists):
1. fit train200 with the body's own keypoints; 2. learn-keypoints on those fits; 3. fit validate100
with and without the learned file; 4. per split and regressor: median mean-error / box diagonal
over ok fits and the median per-joint residuals (shoulders, hips, all 17); 5. fit train200 again
with the learned file, render ``--render-fits`` of each fits set (2 variants each, 320x240) with
the matching keypoints, and compare the hip/shoulder width ratio with the real labels' through
`syrip-gen stats --compare`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from syrip_gen.atomic import atomic_write_bytes, atomic_write_json  # noqa: E402
from syrip_gen.hardware import lscpu  # noqa: E402
from syrip_gen.paths import shared_syrip  # noqa: E402

NAMES = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
         "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
FOCUS = (5, 6, 11, 12)


def cli(*args: str) -> str:
    """Run ``syrip-gen ARGS`` in this checkout; its stdout (it must succeed)."""
    cmd = [sys.executable, "-m", "syrip_gen.cli", *args]
    print("$ syrip-gen " + " ".join(args), flush=True)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"failed: {' '.join(args)}\n{done.stderr[-2000:]}")
    return done.stdout


def fit(split_dir: Path, out: Path, keypoints: Path | None) -> Path:
    if not (out / "summary.json").exists():
        cli("fit", str(split_dir), "--out", str(out), "--no-overlays",
            *(["--keypoints", str(keypoints)] if keypoints else []))
    return out


def fit_errors(fits_dir: Path) -> dict:
    from syrip_gen.fits import read_fits

    recs = read_fits(fits_dir / "fits.jsonl")
    ok = [r for r in recs if r["status"] == "ok"]
    errs = np.array([[np.nan if e is None else e for e in r["reproj_error_norm"]] for r in ok], float)
    per_joint = {n: float(np.nanmedian(errs[:, k])) for k, n in enumerate(NAMES)}
    return {"n_ok": len(ok), "n": len(recs), "median_fit_error": float(np.median([r["mean_error_norm"] for r in ok])),
            "per_joint_median": per_joint, "max_shoulder_hip_median": max(per_joint[NAMES[k]] for k in FOCUS)}


def render_ratio(fits_dir: Path, out: Path, keypoints: Path | None, n_fits: int, real: Path) -> dict:
    if not (out / "annotations").exists():
        cli("render", str(fits_dir), "--out", str(out), "--variants", "2", "--width", "320", "--height", "240",
            "--limit", str(n_fits), "--workers", "1", *(["--keypoints", str(keypoints)] if keypoints else []))
    cli("stats", str(out), "--compare", str(real), "--out", str(out / "stats"))
    stats = json.loads((out / "stats" / "stats.json").read_text())["datasets"]
    ours = next(v for k, v in stats.items() if Path(v["path"]).resolve().is_relative_to(out.resolve()))
    theirs = next(v for k, v in stats.items() if v is not ours)
    return {"n_images": ours["n_annotations"], "hip_shoulder_width_ratio": ours["hip_shoulder_width_ratio"],
            "real_hip_shoulder_width_ratio": theirs["hip_shoulder_width_ratio"],
            "v1_share": float(np.mean([v["v1"] for v in ours["visibility"].values()]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/work/scratch/keypoints", help="derived files (outside the repo)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--render-fits", type=int, default=150, help="fits rendered per set (x2 variants)")
    args = ap.parse_args()
    work = Path(args.work)
    train, val = shared_syrip("train200"), shared_syrip("validate100")
    if not train.exists() or not val.exists():
        raise SystemExit(f"real SyRIP data not found at {train.parent}")
    kp = work / "keypoints.npz"
    fits_train = fit(train, work / "fits_train200", None)
    learn_out = ""
    if not kp.exists():
        learn_out = cli("learn-keypoints", str(fits_train), "--out", str(kp), "--rounds", str(args.rounds))
    env = f"SYRIP_DATA={os.environ['SYRIP_DATA']} " if os.environ.get("SYRIP_DATA") else ""
    res = {"command": f"{env}python benchmarks/keypoints.py --work {args.work} --rounds {args.rounds} "
                      f"--render-fits {args.render_fits}",
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                    text=True).stdout.strip(),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "hardware": "; ".join(f"{k}: {v}" for k, v in lscpu().items()), "learn_output": learn_out}
    from syrip_gen.body.keypoints import LearnedKeypoints

    learned = LearnedKeypoints.load(kp)
    res["learned"] = {k: learned.source[k] for k in ("n_fits", "n_train", "n_heldout", "heldout_median_before",
                                                     "heldout_median_after", "radius_m")}
    res["learned"]["support_vertices"] = {n: int((learned.weights[k] > 0).sum()) for k, n in enumerate(NAMES)}
    res["learned"]["default_share"] = {n: float(learned.alpha[k]) for k, n in enumerate(NAMES)}
    res["validate100"] = {"default": fit_errors(fit(val, work / "fits_val100_default", None)),
                          "learned": fit_errors(fit(val, work / "fits_val100_learned", kp))}
    res["train200"] = {"default": fit_errors(fits_train),
                       "learned": fit_errors(fit(train, work / "fits_train200_learned", kp))}
    res["renders"] = {"default": render_ratio(fits_train, work / "render_default", None, args.render_fits, train),
                      "learned": render_ratio(work / "fits_train200_learned", work / "render_learned", kp,
                                              args.render_fits, train)}
    out = ROOT / "benchmarks" / "results"
    atomic_write_json(out / "keypoints.json", res)
    atomic_write_bytes(out / "keypoints.md", report(res).encode())
    print(report(res))


def report(r: dict) -> str:
    pct = lambda x: f"{100 * x:.2f} %"  # noqa: E731
    v, rd = r["validate100"], r["renders"]
    lines = [
        "# Learned keypoint regressor (learn-keypoints) on real SyRIP skeletons", "",
        f"Command: `{r['command']}`  ", f"Commit: {r['commit']}  ", f"Date: {r['date']}  ",
        f"Hardware: {r['hardware']} (no GPU; shared by other jobs while measured)", "",
        f"Learned on {r['learned']['n_train']} of {r['learned']['n_fits']} ok train200 fits "
        f"({r['learned']['n_heldout']} held out to choose the regularisation); held-out median fit error "
        f"{pct(r['learned']['heldout_median_before'])} -> {pct(r['learned']['heldout_median_after'])}.", "",
        "## Fits of validate100 (not used in learning): errors as a share of the keypoint-box diagonal", "",
        "| | body's own keypoints | learned keypoints | goal |", "|---|---|---|---|",
        f"| median fit error (ok fits) | {pct(v['default']['median_fit_error'])} | "
        f"{pct(v['learned']['median_fit_error'])} | <= 1.00 % |",
    ]
    for k in FOCUS:
        n = NAMES[k]
        lines.append(f"| {n} median residual | {pct(v['default']['per_joint_median'][n])} | "
                     f"{pct(v['learned']['per_joint_median'][n])} | <= 1.00 % |")
    lines.append(f"| ok fits | {v['default']['n_ok']} / {v['default']['n']} | {v['learned']['n_ok']} / "
                 f"{v['learned']['n']} | |")
    lines += ["", "All joints (validate100 median residual, own -> learned): " + ", ".join(
        f"{n} {100 * v['default']['per_joint_median'][n]:.2f} -> {100 * v['learned']['per_joint_median'][n]:.2f}"
        for n in NAMES), "",
        "train200 (learned on 75 % of it): median fit error "
        f"{pct(r['train200']['default']['median_fit_error'])} -> {pct(r['train200']['learned']['median_fit_error'])}.",
        "", "## Renders: hip width / shoulder width (median over images, `syrip-gen stats --compare`)", "",
        "| renders of train200 fits | images | hip/shoulder width | real train200 labels | difference | v=1 share |",
        "|---|---|---|---|---|---|"]
    for name, d in rd.items():
        lines.append(f"| {name} keypoints | {d['n_images']} | {d['hip_shoulder_width_ratio']:.3f} | "
                     f"{d['real_hip_shoulder_width_ratio']:.3f} | "
                     f"{d['hip_shoulder_width_ratio'] - d['real_hip_shoulder_width_ratio']:+.3f} | "
                     f"{100 * d['v1_share']:.1f} % |")
    lines += ["", "Support of the learned regressor (vertices per keypoint; weight left on the body's own point): "
              + ", ".join(f"{n} {r['learned']['support_vertices'][n]} ({r['learned']['default_share'][n]:.2f})"
                          for n in NAMES), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
