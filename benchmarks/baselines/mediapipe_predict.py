"""What a user would pick instead: MediaPipe Pose (adult BlazePose) on real infant images.

Runs in its own venv (`bash scripts/setup_mediapipe.sh` makes `.venv-mediapipe` with
`mediapipe==0.10.14`, whose wheel ships the BlazePose detector and the 'full' landmark model;
`model_complexity=2` would download the heavy model at run time, so it is not used).
Writes COCO keypoint results (the 33 landmarks mapped to COCO-17) for each annotated person,
cropping the ground-truth box with a 25 % margin so that it is compared with our models
under the same 'GT boxes' protocol. Scored by `syrip-gen benchmark` with pycocotools.

    .venv-mediapipe/bin/python benchmarks/baselines/mediapipe_predict.py \
        ../shared/data/syrip/validate100 --out runs/mediapipe/validate100.json

Predictions on the user's photos are derived from them (SyRIP: research-only): they go to a run
folder, never into the repository; an ``--out`` inside the repository is refused unless it is
under ``runs/`` (ignored by git).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import time

from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]

# BlazePose landmark index of each COCO-17 keypoint (nose, eyes, ears, shoulders, elbows,
# wrists, hips, knees, ankles; BlazePose's eye = its 'left_eye' centre, 2 and 5).
COCO_FROM_BLAZEPOSE = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]


def check_out(out: str | Path) -> Path:
    """``out`` as an absolute path; SystemExit when it lies in the repository outside ``runs/``."""
    path = Path(out).resolve()
    if path.is_relative_to(ROOT) and not path.is_relative_to(ROOT / "runs"):
        raise SystemExit(f"--out {out}: predictions on the user's photos stay out of the repository; "
                         f"write them under {ROOT / 'runs'} or outside {ROOT}")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", help="SyRIP-layout dir (annotations/*.json + images/)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--margin", type=float, default=0.25)
    ap.add_argument("--complexity", type=int, default=1, choices=(0, 1))
    args = ap.parse_args()
    out_path = check_out(args.out)
    from mediapipe.python.solutions import pose as mp_pose

    ann_path = glob.glob(os.path.join(args.dataset, "annotations", "*.json"))[0]
    gt = json.load(open(ann_path))
    images = {im["id"]: im for im in gt["images"]}
    results, missed, t0 = [], 0, time.time()
    with mp_pose.Pose(static_image_mode=True, model_complexity=args.complexity) as model:
        for ann in gt["annotations"]:
            im = images[ann["image_id"]]
            img = cv2.imread(os.path.join(args.dataset, "images", im["file_name"]))
            if img is None:
                continue
            x, y, w, h = ann["bbox"]
            cx, cy, s = x + w / 2, y + h / 2, max(w, h) * (1 + args.margin)
            x0, y0 = int(max(cx - s / 2, 0)), int(max(cy - s / 2, 0))
            x1, y1 = int(min(cx + s / 2, img.shape[1])), int(min(cy + s / 2, img.shape[0]))
            crop = img[y0:y1, x0:x1]
            out = model.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
            if out.pose_landmarks is None:
                missed += 1
                continue
            lm = out.pose_landmarks.landmark
            kps, vis = [], []
            for i in COCO_FROM_BLAZEPOSE:
                kps += [x0 + lm[i].x * crop.shape[1], y0 + lm[i].y * crop.shape[0], float(lm[i].visibility)]
                vis.append(lm[i].visibility)
            results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kps,
                            "score": float(np.mean(vis))})
    seconds = time.time() - t0
    out_path.parent.mkdir(parents=True, exist_ok=True)
    json.dump({"results": results, "missed": missed, "n": len(gt["annotations"]),
               "seconds": round(seconds, 1), "model": f"mediapipe 0.10.14 BlazePose complexity {args.complexity}",
               "protocol": f"GT box crop, {int(args.margin * 100)}% margin"}, open(out_path, "w"), sort_keys=True)
    print(f"{len(results)} predictions, {missed} without a person, {seconds:.1f} s")


if __name__ == "__main__":
    main()
