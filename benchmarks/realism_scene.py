"""Frame statistics of real photos and of renders, side by side (issue 26, item 4): noise
(luma, chroma), JPEG quality, letterbox and white-studio shares, caption text, and empty or
stretched corners, all measured by :mod:`syrip_gen.render.looks.photo_stats` at one common size.

Writes the numbers (never images: real photos are research-only) into
``benchmarks/results/realism_scene.json`` / ``.md``, one section per ``--set`` (earlier
sections of other sets are kept). Run:

    python benchmarks/realism_scene.py --set real=/work/shared/data/syrip/train200 \
        --set renders=/tmp/run/render [--side 320]

A set is a folder of images or a dataset folder with ``images/``.
"""
from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "realism_scene"
PCT = (5, 25, 50, 75, 95)


def image_files(folder: Path) -> list[Path]:
    from syrip_gen.paths import IMAGE_SUFFIXES

    folder = folder / "images" if (folder / "images").is_dir() else folder
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and "_depth" not in p.name
                  and "_parts" not in p.name)


def measure(files: list[Path], side: int, limit: int | None) -> dict:
    """Per-set statistics of ``files``, each shrunk to ``side`` px on its longer side."""
    import cv2

    from syrip_gen.render.looks import photo_stats as ps

    rows = []
    for f in tqdm(files[:limit] if limit else files, desc="measure", mininterval=2):
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            continue
        s = side / max(img.shape[:2])
        if s < 1:
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        noise = ps.noise_sigma(img)
        bands = ps.letterbox_bands(img)
        corners = ps.empty_corners(img)
        rows.append({"luma": noise.luma, "chroma": noise.chroma, "jpeg_quality": ps.jpeg_quality(f),
                     "band": bands.colour, "studio": ps.is_studio(img), "text": bool(ps.text_boxes(img)),
                     "bad_corners": not corners.ok})
    n = len(rows)
    q = [r["jpeg_quality"] for r in rows if r["jpeg_quality"]]

    def pct(values):
        return [round(float(v), 3) for v in np.percentile(values, PCT)] if len(values) else []

    return {"images": n, "side": side,
            "noise_luma_pct": pct([r["luma"] for r in rows]), "noise_chroma_pct": pct([r["chroma"] for r in rows]),
            "jpeg_quality_pct": pct(q),
            "letterbox_black": round(sum(r["band"] == "black" for r in rows) / max(n, 1), 4),
            "letterbox_white": round(sum(r["band"] == "white" for r in rows) / max(n, 1), 4),
            "studio": round(sum(r["studio"] for r in rows) / max(n, 1), 4),
            "text": round(sum(r["text"] for r in rows) / max(n, 1), 4),
            "bad_corners": round(sum(r["bad_corners"] for r in rows) / max(n, 1), 4)}


def markdown(result: dict) -> str:
    lines = ["# Scene realism: frame statistics of real photos and renders (issue 26, item 4)", "",
             "Measured by `syrip_gen/render/looks/photo_stats.py` on every image shrunk to the set's `side` px "
             "(longer side). Noise: sigma in grey levels from the finest diagonal Haar band, strong "
             "edges excluded, on Y (luma) and Cr/Cb (chroma) after the file's own JPEG; percentiles "
             f"{'/'.join(map(str, PCT))}. Shares: of the set's images.", ""]
    for name, sec in sorted(result.get("sets", {}).items()):
        lines += [f"## {name}", "", f"- Command: `{sec['command']}`", f"- Commit: {sec['commit']}, {sec['date']}",
                  f"- Hardware: {sec['hardware']}", f"- Source: {sec['source']}", ""]
        lines += ["| measure | value |", "|---|---|"]
        for k, v in sec["stats"].items():
            lines.append(f"| {k} | {v} |")
        lines.append("")
    for name, sec in sorted(result.get("notes", {}).items()):
        lines += [f"## {name}", "", sec, ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    import sys

    from syrip_gen.hardware import describe, git_commit, write_results

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", action="append", required=True, help="NAME=FOLDER")
    p.add_argument("--side", type=int, default=320, help="longer side every image is shrunk to")
    p.add_argument("--limit", type=int, default=None, help="first N images of each set only")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    out = Path(args.out)
    result = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    for spec in args.set:
        name, _, folder = spec.partition("=")
        stats = measure(image_files(Path(folder)), args.side, args.limit)
        result.setdefault("sets", {})[name] = {
            "command": "python benchmarks/realism_scene.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "commit": git_commit(ROOT), "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "hardware": describe(), "source": folder, "stats": stats}
        print(name, json.dumps(stats))
    write_results(out, result, markdown(result))


if __name__ == "__main__":
    main()
