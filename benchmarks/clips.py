"""Clips and video: render speed of clips (frames/s), `predict` speed on a video (frames/s), and
what the One-Euro smoothing does to jitter and error against a rendered clip's ground truth.

Free default path only: the bundled posture skeletons (``assets/postures``) are fitted, clips of
them are rendered with procedural appearance, and a frame strip of one clip with its keypoints
is written to ``benchmarks/results/clips_strip.jpg``.

Smoothing is measured two ways on the same clips: (1) the ground-truth keypoints plus a known
Gaussian noise (sigma px, independent per frame: the jitter of a per-frame detector), filtered
with several One-Euro settings; (2) a 2D model trained briefly on the other clips, run through
``predict`` on the held-out clip's MP4 (raw and smoothed keypoints scored against its labels).
Jitter is the mean norm of the keypoints' second difference per frame (px); error the mean
distance to the ground truth (px).

Run: ``python benchmarks/clips.py`` (about 2-3 minutes on 2 CPU cores); writes
``benchmarks/results/clips.{json,md}``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
SETTINGS = [(0.5, 0.0), (1.0, 0.01), (1.0, 0.05), (2.0, 0.05), (4.0, 0.1)]  # (min_cutoff Hz, beta)


def fit_bundled(out: Path, limit: int) -> Path:
    from syrip_gen.fit.fitter import FitConfig, fit_file

    fit_file(ROOT / "assets" / "postures" / "skeletons.json", out, FitConfig.from_dict({"limit": limit, "overlays": False}))
    return out / "fits.jsonl"


def clip_tracks(coco_path: Path) -> dict[int, dict]:
    """Per clip: ground-truth keypoints ``(F, 17, 2)``, visibility ``(F, 17)``, fps, video file."""
    coco = json.loads(coco_path.read_text())
    anns = {a["image_id"]: a for a in coco["annotations"]}
    out: dict[int, dict] = {}
    for img in sorted(coco["images"], key=lambda i: (i["clip_id"], i["frame_id"])):
        c = out.setdefault(img["clip_id"], {"kp": [], "fps": img["fps"], "name": img["file_name"].split("/")[0]})
        c["kp"].append(np.asarray(anns[img["id"]]["keypoints"], np.float64).reshape(17, 3))
    for c in out.values():
        k = np.stack(c.pop("kp"))
        c["xy"], c["vis"] = k[..., :2], k[..., 2]
    return out


def smoothing_on_noise(tracks: dict, sigmas=(1.0, 2.0, 4.0), seed: int = 0) -> list[dict]:
    from pose_models.smoothing import OneEuroConfig, jitter, smooth_track

    rows = []
    rng = np.random.default_rng(seed)
    for sigma in sigmas:
        gt = [c["xy"] for c in tracks.values()]
        noisy = [x + rng.normal(0, sigma, x.shape) for x in gt]
        times = [np.arange(len(x)) / c["fps"] for x, c in zip(gt, tracks.values())]

        def score(est):
            return (float(np.mean([jitter(e) for e in est])),
                    float(np.mean([np.linalg.norm(e - g, axis=-1).mean() for e, g in zip(est, gt)])))

        j_gt = float(np.mean([jitter(g) for g in gt]))
        j_raw, e_raw = score(noisy)
        rows.append({"sigma_px": sigma, "filter": "none", "jitter_px": round(j_raw, 3), "error_px": round(e_raw, 3),
                     "gt_jitter_px": round(j_gt, 3)})
        for fc, beta in SETTINGS:
            cfg = OneEuroConfig(min_cutoff=fc, beta=beta)
            j, e = score([smooth_track(x, t, cfg) for x, t in zip(noisy, times)])
            rows.append({"sigma_px": sigma, "filter": f"one-euro fc={fc} beta={beta}", "jitter_px": round(j, 3),
                         "error_px": round(e, 3), "gt_jitter_px": round(j_gt, 3)})
    return rows


def train_models(coco: Path, out: Path, steps: int) -> dict[str, Path]:
    from pose_models.config import TrainConfig
    from pose_models.train import train

    noaug = {"flip": 0, "rotation": 0, "scale": 0, "colour": 0, "half_body": 0}
    ck = {}
    for task in ("detector", "pose2d"):
        cfg = TrainConfig.from_dict({"task": task, "train": [str(coco)], "out_dir": str(out / task), "max_steps": steps,
                                     "batch_size": 16, "warmup_steps": 1, "log_every": 10, "device": "cpu",
                                     "augment": noaug, "precision": "float32", "channels_last": False})  # no probes
        ck[task] = train(cfg, log=lambda *_: None)
    return ck


def held_out_coco(coco_path: Path, keep_clip: int, out: Path) -> Path:
    """The clips COCO without ``keep_clip`` (the training set for the brief model)."""
    from syrip_gen.coco import write_coco

    d = json.loads(coco_path.read_text())
    images = [i for i in d["images"] if i["clip_id"] != keep_clip]
    ids = {i["id"] for i in images}
    extra = {k: v for k, v in d.items() if k not in ("images", "annotations", "categories")}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_coco(out, images, [a for a in d["annotations"] if a["image_id"] in ids], **extra)
    # images are found beside the annotations folder: link the clip frames there
    link = out.parent.parent / "images"
    if not link.exists():
        link.symlink_to(coco_path.parent.parent / "images", target_is_directory=True)
    return out


def model_on_video(ck: dict, video: Path, gt: dict, work: Path) -> dict:
    from pose_models.smoothing import jitter
    from pose_models.video import VideoConfig, run_videos

    t0 = time.perf_counter()
    done = run_videos([video], ck["detector"], ck["pose2d"], work / "pred.json",
                      VideoConfig(max_infants=1, overlay=False), device="cpu", log=lambda *_: None)[0]
    seconds = time.perf_counter() - t0
    recs = json.loads((work / "pred.json").read_text())["records"]
    recs.sort(key=lambda r: r["frame"])
    raw = np.array([r["keypoints_raw"] for r in recs])[..., :2]
    smooth = np.array([r["keypoints"] for r in recs])[..., :2]
    g = gt["xy"][: len(raw)]
    return {"frames": done["frames"], "seconds": round(seconds, 3), "frames_per_s": round(done["frames"] / seconds, 2),
            "raw": {"jitter_px": round(jitter(raw), 3), "error_px": round(float(np.linalg.norm(raw - g, axis=-1).mean()), 3)},
            "smoothed": {"jitter_px": round(jitter(smooth), 3),
                         "error_px": round(float(np.linalg.norm(smooth - g, axis=-1).mean()), 3)},
            "gt_jitter_px": round(jitter(g), 3)}


def frame_strip(video: Path, preview: Path, dst: Path, n: int = 6) -> None:
    """``n`` evenly spaced frames of a clip (top: as rendered; bottom: its keypoints)."""
    import cv2

    from syrip_gen.video import read_frames

    plain, drawn = list(read_frames(video)), list(read_frames(preview))
    pick = np.linspace(0, len(plain) - 1, n).round().astype(int)
    top = np.concatenate([plain[i] for i in pick], 1)
    bottom = np.concatenate([drawn[i] for i in pick], 1)
    cv2.imwrite(str(dst), np.concatenate([top, bottom], 0), [cv2.IMWRITE_JPEG_QUALITY, 88])


def main(argv=None) -> int:
    from syrip_gen.hardware import describe, git_commit, write_results
    from syrip_gen.render.clips import ClipConfig, render_clips

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=str(ROOT / "runs" / "bench_clips"), help="scratch folder (not committed)")
    p.add_argument("--fits", help="an existing fits.jsonl (default: fit the bundled skeletons)")
    p.add_argument("--fit-limit", type=int, default=4)
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--train-steps", type=int, default=30, help="steps of the brief 2D/detector training")
    p.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/results alone")
    args = p.parse_args(argv)
    work = Path(args.work)
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    fits = Path(args.fits) if args.fits else fit_bundled(work / "fit", args.fit_limit)
    fit_s = time.perf_counter() - t0
    cfg = ClipConfig.of(clips=args.clips, seconds=args.seconds, fps=args.fps, width=args.width, height=args.height,
                     force=True)
    import shutil

    shutil.rmtree(work / "clips", ignore_errors=True)  # render afresh: a resumed run measures no rendering
    t0 = time.perf_counter()
    s = render_clips(fits, work / "clips", cfg, log=lambda *_: None)
    clips_s = time.perf_counter() - t0
    table = json.loads((work / "clips" / "clips.json").read_text())["clips"]
    tracks = clip_tracks(Path(s.annotation_path))
    noise = smoothing_on_noise(tracks)
    last = max(tracks)
    ck = train_models(held_out_coco(Path(s.annotation_path), last, work / "heldout" / "annotations" / "train.json"),
                      work / "models", args.train_steps)
    model = model_on_video(ck, work / "clips" / "videos" / f"{tracks[last]['name']}.mp4", tracks[last], work)
    if not args.no_write:
        first = table[0]["name"]
        frame_strip(work / "clips" / "videos" / f"{first}.mp4", work / "clips" / "previews" / f"{first}.mp4",
                    RESULTS / "clips_strip.jpg")
    result = {
        "command": "python benchmarks/clips.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": git_commit(ROOT), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hardware": describe(), "config": {k: getattr(args, k) for k in ("clips", "seconds", "fps", "width", "height",
                                                                          "train_steps", "fit_limit")},
        "render": {"clips": s.clips, "clips_kept": s.clips_kept, "frames": s.frames, "frames_per_s": s.frames_per_s,
                   "seconds_with_setup_and_gates": round(clips_s, 2), "dropped": s.dropped,
                   "per_clip": [{"name": c["name"], "kept": c["kept"], "dropped": c["dropped"],
                                 "parts": (c.get("motion") or {}).get("parts"), "scales": (c.get("motion") or {}).get("scales"),
                                 "camera_orbit_deg": c.get("camera_orbit_deg"), "stats": c.get("stats")} for c in table]},
        "smoothing_on_noisy_gt": noise, "predict_on_video": model, "fit_seconds": round(fit_s, 1),
        "total_seconds": round(time.perf_counter() - t_all, 1)}
    md = markdown(result)
    print(md)
    if not args.no_write:
        write_results(RESULTS / "clips", result, md)
    return 0


def markdown(r: dict) -> str:
    c, m = r["render"], r["predict_on_video"]
    lines = [
        "# Clips and video: render speed, predict speed, smoothing", "",
        f"- Command: `{r['command'].strip()}`", f"- Commit: {r['commit']}", f"- Date: {r['date']}",
        f"- Hardware: {r['hardware']}", f"- Total: {r['total_seconds']} s (fitting {r['fit_seconds']} s of it)", "",
        "Fits of the bundled posture skeletons, procedural appearance; clips of "
        f"{r['config']['seconds']} s at {r['config']['fps']} fps, {r['config']['width']}x{r['config']['height']}.", "",
        "## Clip rendering", "",
        f"- {c['frames']} frames in {c['clips']} clips ({c['clips_kept']} kept by the per-clip gates): "
        f"**{c['frames_per_s']} frames/s** rendering, labelling and writing (one process); "
        f"{c['seconds_with_setup_and_gates']} s with set-up and gates. Dropped: {c['dropped'] or 'none'}.", "",
        "| clip | kept | moving parts (amplitude share kept) | camera drift ° | speed px/s median / max | "
        "accel px/s² median / max |", "|---|---|---|---|---|---|"]
    for p in c["per_clip"]:
        st = p.get("stats") or {}
        sp, ac = st.get("speed_px_s", {}), st.get("acceleration_px_s2", {})
        parts = ", ".join(f"{k} {v}" for k, v in (p.get("scales") or {}).items())
        lines.append(f"| {p['name']} | {'yes' if p['kept'] else 'no: ' + str(p['dropped'])} | {parts} | "
                     f"{p.get('camera_orbit_deg')} | {sp.get('median')} / {sp.get('max')} | "
                     f"{ac.get('median')} / {ac.get('max')} |")
    lines += ["", "## Smoothing against ground truth plus known noise", "",
              "Ground-truth keypoints of every clip plus Gaussian noise (sigma px per coordinate, independent per "
              "frame). Jitter: mean |second difference| per frame (px; the ground truth's own is its real motion). "
              "Error: mean distance to the ground truth (px).", "",
              "| sigma px | filter | jitter px | error px | GT jitter px |", "|---|---|---|---|---|"]
    for row in r["smoothing_on_noisy_gt"]:
        lines.append(f"| {row['sigma_px']} | {row['filter']} | {row['jitter_px']} | {row['error_px']} | {row['gt_jitter_px']} |")
    lines += ["", "## predict on a clip's MP4", "",
              f"Detector and 2D model (default sizes) trained {r['config']['train_steps']} steps on the other clips, "
              f"run on the held-out clip's MP4 ({m['frames']} frames): **{m['frames_per_s']} frames/s** "
              "(decode, detection, 2D with flip test, tracking, smoothing, JSON/CSV), default One-Euro "
              "(fc=1 Hz, beta=0.01). A briefly trained model is far from converged: its error shows the model, "
              "its jitter what the smoothing removes.", "",
              "| keypoints | jitter px | error px |", "|---|---|---|",
              f"| raw | {m['raw']['jitter_px']} | {m['raw']['error_px']} |",
              f"| smoothed | {m['smoothed']['jitter_px']} | {m['smoothed']['error_px']} |",
              f"| ground truth | {m['gt_jitter_px']} | 0 |", "",
              "![frame strip](clips_strip.jpg)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
