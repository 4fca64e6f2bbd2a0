"""Which labelling convention do the renders follow? An off-the-shelf adult model (MediaPipe
BlazePose, `benchmarks/baselines/mediapipe_predict.py`, GT-box crops) is run on real photos and on
renders labelled with the body's own and with learned keypoints; per keypoint, the median distance
between its prediction and the label, over the box diagonal. If the renders' labels sat where
people click, these offsets would match the real photos'. Writes
benchmarks/results/keypoints_mediapipe.{json,md}.

    python benchmarks/keypoints_mediapipe.py REAL_DIR REAL.json DEFAULT_DIR DEFAULT.json LEARNED_DIR LEARNED.json

(each DIR a SyRIP-layout dataset, each .json the MediaPipe predictions for it; photos and renders
stay outside the repository, only the numbers land here).
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from syrip_gen.atomic import atomic_write_bytes, atomic_write_json  # noqa: E402
from syrip_gen.coco import KEYPOINT_NAMES  # noqa: E402
from syrip_gen.hardware import lscpu  # noqa: E402
from pose_models.metrics import normalised_errors  # noqa: E402


def offsets(dataset: str, predictions: str) -> dict:
    """Per-keypoint median |prediction - label| / box diagonal over labelled keypoints."""
    gt = json.load(open(glob.glob(str(Path(dataset) / "annotations" / "*.json"))[0]))
    pred = {r["image_id"]: np.asarray(r["keypoints"], float).reshape(17, 3)
            for r in json.load(open(predictions))["results"]}
    anns = [a for a in gt["annotations"] if a["image_id"] in pred]
    a = normalised_errors(np.array([pred[x["image_id"]][:, :2] for x in anns]).reshape(-1, 17, 2),
                          np.array([x["keypoints"] for x in anns], float).reshape(-1, 17, 3),
                          np.array([x["bbox"] for x in anns], float).reshape(-1, 4))
    return {"n": len(anns), "median": {n: float(np.nanmedian(a[:, k])) for k, n in enumerate(KEYPOINT_NAMES)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("args", nargs=6)
    a = ap.parse_args().args
    sets = {"real photos": offsets(a[0], a[1]), "renders, body's own keypoints": offsets(a[2], a[3]),
            "renders, learned keypoints": offsets(a[4], a[5])}
    res = {"command": "python benchmarks/keypoints_mediapipe.py " + " ".join(a),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                    text=True).stdout.strip(),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "hardware": "; ".join(f"{k}: {v}" for k, v in lscpu().items()), "sets": sets}
    out = ROOT / "benchmarks" / "results"
    atomic_write_json(out / "keypoints_mediapipe.json", res)
    names = list(sets)
    lines = ["# MediaPipe BlazePose vs the labels: real photos and renders (median offset / box diagonal)", "",
             f"Command: `{res['command']}`  ", f"Commit: {res['commit']}  ", f"Date: {res['date']}  ",
             f"Hardware: {res['hardware']} (no GPU)", "",
             "| keypoint | " + " | ".join(f"{n} (n={sets[n]['n']})" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for k in KEYPOINT_NAMES:
        lines.append(f"| {k} | " + " | ".join(f"{sets[n]['median'][k]:.3f}" for n in names) + " |")
    lines.append("")
    atomic_write_bytes(out / "keypoints_mediapipe.md", "\n".join(lines).encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
