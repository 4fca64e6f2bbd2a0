"""Clips and video: `predict` speed on video end to end (frames/s for 1 and 2 infants at 640x480
and 1280x720, each speed-up switched on in turn, with the keypoint error against the clip's
ground truth), and optionally (``--render``) clip render speed and what the One-Euro smoothing
does to jitter and error.

predict speed: stick-infant clips (``pose_models.stickvideo``: drawn, ground truth known, made in
seconds) of ``--frames`` frames at 25 fps; models from ``--detector``/``--pose2d`` (e.g. the shipped
ones) or, by default, toy models of the tests' size trained ``--train-steps`` steps on one- and
two-infant stick images. Each row adds one speed-up to the one above, from the per-frame full
inference (detector on every frame, flip test, one 2D forward per infant, decode/encode in turn,
float32) to the default (detector every 5 frames, boxes carried from the keypoints, no flip test,
all infants in one forward, decode/encode threads), then bfloat16. Frames/s is the whole
``run_videos`` call (model loading, decode, models, tracking, smoothing, JSON/CSV, overlay and
skeleton MP4s, movement summary) divided by the frames. Error: mean distance of the raw keypoints
to the ground truth (px), each infant matched to its nearest track; the ratio is to the per-frame
full inference (the goal: at most 1.05).

``--render`` adds the free default path: the bundled posture skeletons are fitted, clips of them
rendered with procedural appearance (render speed, per-clip motion) and the smoothing measured on
their ground truth plus known noise; a frame strip goes to ``benchmarks/results/clips_strip.jpg``.

Run: ``python benchmarks/clips.py`` (a few minutes on 2 CPU cores); writes
``benchmarks/results/clips.{json,md}``. With the shipped models:
``python benchmarks/clips.py --detector D.pt --pose2d P.pt``.
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

    fit_file(ROOT / "assets" / "postures" / "skeletons.json", out,
             FitConfig.from_dict({"limit": limit, "overlays": False}))
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


def train_toy_models(out: Path, steps: int) -> dict[str, Path]:
    """Detector and 2D model of the tests' size (64 px inputs) trained ``steps`` steps on one- and
    two-infant stick images: light stand-ins until shipped models are given."""
    from pose_models.config import TrainConfig
    from pose_models.stickvideo import multi_dataset
    from pose_models.train import train

    data = multi_dataset(out / "data", n=48)
    noaug = {"flip": 0, "rotation": 0, "scale": 0, "colour": 0, "half_body": 0}
    small = {"batch_size": 16, "input_h": 64, "input_w": 64, "detector_size": 64, "deconv_channels": 64, "sigma": 1.0,
             "warmup_steps": 1, "min_lr_ratio": 1.0, "log_every": 10, "device": "cpu", "augment": noaug, "lr": 1e-3,
             "precision": "float32", "channels_last": False, "threads": 1}
    return {task: train(TrainConfig.from_dict({"task": task, "train": [str(data)], "out_dir": str(out / task),
                                               "max_steps": steps, **small}), log=lambda *_: None)
            for task in ("detector", "pose2d")}


LADDER = [  # (name, VideoConfig changes), each row adding one speed-up to the row above
    ("per-frame full inference", {"detect_every": 1, "flip": True, "batch_crops": False, "threads": False}),
    ("+ all infants in one 2D forward", {"batch_crops": True}),
    ("+ no flip test", {"flip": False}),
    ("+ detector every 5 frames, boxes carried", {"detect_every": 5}),
    ("+ decode/encode threads (default)", {"threads": True}),
    ("+ bfloat16", {"precision": "bfloat16"}),
]


def keypoint_error(records: list[dict], gt: np.ndarray) -> float:
    """Mean distance (px) of the raw keypoints to the ground truth ``gt (F, N, 17, 2)``; each
    record goes to the nearest ground-truth infant of its frame."""
    errs = []
    for r in records:
        kp = np.asarray(r["keypoints_raw"])[:, :2]
        d = np.linalg.norm(gt[r["frame"]] - kp[None], axis=-1).mean(-1)
        errs.append(d.min())
    return float(np.mean(errs)) if errs else float("nan")


def predict_speed(ck: dict, work: Path, frames: int, sizes, infants_list, short_sizes=()) -> list[dict]:
    """Rows of the ladder per size and infant count (at ``short_sizes`` only the first row, the
    default and bfloat16)."""
    from dataclasses import replace

    from pose_models.stickvideo import stick_clip
    from pose_models.video import VideoConfig, run_videos

    warm = work / "warm.mp4"  # imports and first calls (scipy, matplotlib, torch) before any row is timed
    stick_clip(warm, frames=3, size=(160, 120))
    run_videos([warm], ck["detector"], ck["pose2d"], work / "pred" / "warm.json", VideoConfig(min_box_score=0.0),
               device="cpu", log=lambda *_: None, warn=lambda *_: None)
    rows = []
    for size in sizes:
        short = size in short_sizes
        ladder = [(name, change) if not short or i in (0, 4, 5) else (None, change) for i, (name, change) in
                  enumerate(LADDER)]
        for n in infants_list:
            video = work / f"stick_{size[0]}x{size[1]}_{n}.mp4"
            gt = stick_clip(video, frames=frames, size=size, infants=n, fps=25.0)
            cfg, base_err = VideoConfig(max_infants=n, min_box_score=0.2), None
            for name, change in ladder:
                cfg = replace(cfg, **change)
                if name is None:
                    continue
                out = work / "pred" / f"{video.stem}.json"
                t0, c0 = time.perf_counter(), time.process_time()
                done = run_videos([video], ck["detector"], ck["pose2d"], out, cfg, device="cpu", log=lambda *_: None,
                                  warn=lambda *_: None)[0]
                sec, cpu = time.perf_counter() - t0, time.process_time() - c0
                recs = json.loads(out.read_text())["records"]
                err = keypoint_error(recs, gt)
                base_err = err if base_err is None else base_err
                rows.append({"size": f"{size[0]}x{size[1]}", "infants": n, "variant": name, "frames": done["frames"],
                             "seconds": round(sec, 2), "frames_per_s": round(done["frames"] / sec, 1),
                             "cpu_seconds": round(cpu, 2), "frames_per_cpu_s": round(done["frames"] / cpu, 1),
                             "loop_frames_per_s": round(done["frames_per_s"], 1),
                             "loop_frames_per_cpu_s": round(done["frames"] / max(done["cpu_seconds"], 1e-9), 1),
                             "detector_runs": done["detector_runs"], "records": done["records"],
                             "tracks": done["tracks"], "error_px": round(err, 2),
                             "error_ratio": round(err / base_err, 3) if base_err else None})
                print(rows[-1], flush=True)
    return rows


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

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=str(ROOT / "runs" / "bench_clips"), help="scratch folder (not committed)")
    p.add_argument("--detector", help="detector checkpoint (default: toy models trained here)")
    p.add_argument("--pose2d", help="2D pose checkpoint (default: toy models trained here)")
    p.add_argument("--train-steps", type=int, default=40, help="steps of each toy model")
    p.add_argument("--frames", type=int, default=40, help="frames of each predict clip")
    p.add_argument("--sizes", default="640x480,1280x720")
    p.add_argument("--short-sizes", default="1280x720",
                   help="sizes measured only per-frame full, default and bfloat16 (keeps the run short)")
    p.add_argument("--infants", default="1,2")
    p.add_argument("--render", action="store_true", help="also clip render speed and smoothing (slow)")
    p.add_argument("--fits", help="--render: an existing fits.jsonl (default: fit the bundled skeletons)")
    p.add_argument("--fit-limit", type=int, default=4)
    p.add_argument("--clips", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/results alone")
    args = p.parse_args(argv)
    if bool(args.detector) != bool(args.pose2d):
        p.error("give both --detector and --pose2d, or neither (toy models)")
    import torch

    work = Path(args.work)
    hardware = describe()  # the load before this run adds its own
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    ck = ({"detector": Path(args.detector), "pose2d": Path(args.pose2d)} if args.detector else
          train_toy_models(work / "models", args.train_steps))
    train_s = time.perf_counter() - t0
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    short = [tuple(int(v) for v in s.split("x")) for s in args.short_sizes.split(",") if s]
    speed = predict_speed(ck, work, args.frames, sizes, [int(n) for n in args.infants.split(",")], short)
    result = {
        "command": "python benchmarks/clips.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": git_commit(ROOT), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware, "torch_threads": torch.get_num_threads(), "lscpu": lscpu(),
        "models": {k: str(v) for k, v in ck.items()}, "toy_models": not args.detector,
        "train_steps": None if args.detector else args.train_steps, "train_seconds": round(train_s, 1),
        "predict_speed": speed}
    if args.render:
        result.update(render_section(args, work))
    result["total_seconds"] = round(time.perf_counter() - t_all, 1)
    result["hardware_after"] = describe()
    md = markdown(result)
    print(md)
    if not args.no_write:
        write_results(RESULTS / "clips", result, md)
    return 0


def lscpu() -> str:
    import subprocess

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    keep = ("Model name", "CPU(s):", "Thread(s) per core", "Core(s) per socket", "L2 cache", "L3 cache", "Flags")
    lines = [ln for ln in out.splitlines() if ln.startswith(keep)]
    return "; ".join(" ".join(ln.split()) if not ln.startswith("Flags") else
                     "avx512_bf16" + (" yes" if "avx512_bf16" in ln else " no") for ln in lines)


def render_section(args, work: Path) -> dict:
    """Clip render speed, per-clip motion and smoothing on noisy ground truth (``--render``)."""
    import shutil

    from syrip_gen.render.sequence.clips import ClipConfig, render_clips
    from syrip_gen.config import RunConfig

    t0 = time.perf_counter()
    fits = Path(args.fits) if args.fits else fit_bundled(work / "fit", args.fit_limit)
    fit_s = time.perf_counter() - t0
    cfg = ClipConfig.of(clips=args.clips, seconds=args.seconds, fps=args.fps, width=args.width, height=args.height,
                     run=RunConfig(workers=1, force=True))
    shutil.rmtree(work / "clips", ignore_errors=True)  # render afresh: a resumed run measures no rendering
    t0 = time.perf_counter()
    s = render_clips(fits, work / "clips", cfg, log=lambda *_: None)
    clips_s = time.perf_counter() - t0
    table = json.loads((work / "clips" / "clips.json").read_text())["clips"]
    tracks = clip_tracks(Path(s.annotation_path))
    if not args.no_write:
        first = table[0]["name"]
        frame_strip(work / "clips" / "videos" / f"{first}.mp4", work / "clips" / "previews" / f"{first}.mp4",
                    RESULTS / "clips_strip.jpg")
    return {"config": {k: getattr(args, k) for k in ("clips", "seconds", "fps", "width", "height", "fit_limit")},
            "render": {"clips": s.clips, "clips_kept": s.clips_kept, "frames": s.frames, "frames_per_s": s.frames_per_s,
                       "seconds_with_setup_and_gates": round(clips_s, 2), "dropped": s.dropped,
                       "per_clip": [{"name": c["name"], "kept": c["kept"], "dropped": c["dropped"],
                                     "parts": (c.get("motion") or {}).get("parts"),
                                     "scales": (c.get("motion") or {}).get("scales"),
                                     "camera_orbit_deg": c.get("camera_orbit_deg"), "stats": c.get("stats")}
                                    for c in table]},
            "smoothing_on_noisy_gt": smoothing_on_noise(tracks), "fit_seconds": round(fit_s, 1)}


def goal_lines(rows: list[dict]) -> list[str]:
    """Issue 32's goal checked on the default rows: >= 30 frames/s for one infant and >= 15 for two
    at 640x480, keypoint error at most 5 % over the per-frame full inference."""
    out = []
    for n, goal in ((1, 30), (2, 15)):
        row = next((x for x in rows if x["size"] == "640x480" and x["infants"] == n and "(default)" in x["variant"]),
                   None)
        if row is None:
            continue
        ok = row["frames_per_s"] >= goal and (row["error_ratio"] or 0) <= 1.05
        out.append(f"- Goal, {n} infant{'s' if n > 1 else ''} at 640x480 (default settings): >= {goal} frames/s with "
                   f"error ratio <= 1.05: {'**met**' if ok else '**not met** here'} ({row['frames_per_s']} frames/s "
                   f"wall clock, {row['frames_per_cpu_s']} per CPU-second, error ratio {row['error_ratio']}).")
    return out


def markdown(r: dict) -> str:
    toy = (f"toy models of the tests' size (64 px inputs, ResNet-18, 64 deconv channels) trained {r['train_steps']} "
           f"steps on stick images ({r['train_seconds']} s)" if r["toy_models"] else
           f"`{r['models']['detector']}`, `{r['models']['pose2d']}`")
    lines = [
        "# Clips and video: predict speed on video, render speed, smoothing", "",
        f"- Command: `{r['command'].strip()}`", f"- Commit: {r['commit']}", f"- Date: {r['date']}",
        f"- Hardware: {r['hardware']} at the start, {r['hardware_after']} at the end; torch threads "
        f"{r['torch_threads']} (predict's models: the cores less one)", f"- lscpu: {r['lscpu']}", f"- Total: {r['total_seconds']} s", "",
        "## predict on video: frames/s end to end", "",
        f"Models: {toy}. Clips: stick infants (`pose_models.stickvideo`), 25 fps, ground truth known. Each row adds "
        "one speed-up to the row above; frames/s is the whole `run_videos` call (model loading, decode, detection, 2D, "
        "tracking, smoothing, JSON/CSV, overlay and skeleton MP4s, movement summary) over the frames (wall clock). "
        "Frames per CPU-second counts only this process's own CPU time (all its threads), which the other jobs on "
        "the machine change much less: an idle 2-core machine should give about that frames/s or more (decoding "
        "and encoding run beside the models). Error: mean distance of the raw keypoints to the ground truth; "
        "ratio: to the per-frame full inference (goal <= 1.05). "
        "The load average above is what the machine carried besides this run (other jobs share the 2 cores).", "",
        "Frame loop: the frame loop alone (decode to records, video outputs included; no model loading, "
        "JSON/CSV or movement summary): what a long video approaches.", "",
        "| size | infants | variant | frames/s | frames per CPU-second | frame loop frames/s | frame loop frames per "
        "CPU-second | detector runs / frames | tracks | error px | error ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    header = lines[-2:]
    lines[-2:] = goal_lines(r["predict_speed"]) + [""] + header
    for row in r["predict_speed"]:
        lines.append(f"| {row['size']} | {row['infants']} | {row['variant']} | **{row['frames_per_s']}** | "
                     f"{row['frames_per_cpu_s']} | {row.get('loop_frames_per_s', '-')} | "
                     f"{row.get('loop_frames_per_cpu_s', '-')} | {row['detector_runs']} / {row['frames']} | "
                     f"{row['tracks']} | {row['error_px']} | {row['error_ratio']} |")
    if "render" in r:
        c = r["render"]
        lines += [
            "", "## Clip rendering", "",
            "Fits of the bundled posture skeletons, procedural appearance; clips of "
            f"{r['config']['seconds']} s at {r['config']['fps']} fps, {r['config']['width']}x{r['config']['height']}.",
            "",
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
            lines.append(f"| {row['sigma_px']} | {row['filter']} | {row['jitter_px']} | {row['error_px']} | "
                         f"{row['gt_jitter_px']} |")
        lines += ["", "![frame strip](clips_strip.jpg)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
