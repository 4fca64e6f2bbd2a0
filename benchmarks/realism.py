"""Benchmark: do renders look like photos to an off-the-shelf pose model? (issue 13)

MediaPipe BlazePose 'full' (the project's baseline, benchmarks/baselines/mediapipe_predict.py, in
the `.venv-mediapipe` that scripts/setup_mediapipe.sh makes) on ground-truth box crops (25 %
margin), scored with pycocotools OKS AP where every set's ``area`` is its box w x h (renders store
the mask area; photos the box area: one rule for all). Per set: AP, miss rate (no person found),
per posture, and the median error per joint (of the box diagonal) where a person was found.
A render set is realistic to this model when its AP is close to the real photos' (ratio) and its
miss rate as low.

    python benchmarks/realism.py --set real=../shared/data/syrip/validate100 \\
        --set photo_textures=RUN_A --set procedural=RUN_B --reference real \\
        --work /tmp/realism [--sample 400]
    python benchmarks/realism.py --sheet /tmp/sheet.jpg --fits FITS --photos ../shared/data/syrip/train200 \\
        --sheet-photo RUN_OWN --sheet-procedural RUN_PROC

The sheet (real photo | its fit | four renders wearing its texture | four procedural renders)
is made of the user's photos: keep it outside the repository. Only numbers are written here
(benchmarks/results/realism.{json,md}).
"""
from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PREDICT = ROOT / "benchmarks" / "baselines" / "mediapipe_predict.py"


def annotation_file(dataset: Path) -> Path:
    """The COCO file of a SyRIP-layout folder, or of a pipeline's filter step (``filtered.json``
    names it; its images are named by absolute path): the renders the ablation trains on."""
    pointer = dataset / "filtered.json"
    if pointer.exists():
        return Path(json.loads(pointer.read_text())["coco"])
    return Path(sorted(glob.glob(str(dataset / "annotations" / "*.json")))[0])


def sampled_dataset(name: str, dataset: Path, work: Path, sample: int | None, seed: int = 0) -> Path:
    """``dataset`` itself, or a fixed seeded sample of its annotations in ``work/name`` (the
    images folder linked, not copied)."""
    if not sample and not (dataset / "filtered.json").exists():
        return dataset  # (a filter step's COCO file is written out below: the predictor reads annotations/)
    gt = json.loads(annotation_file(dataset).read_text())
    anns = gt["annotations"]
    if sample and len(anns) > sample:
        keep = sorted(np.random.default_rng(seed).choice(len(anns), sample, replace=False).tolist())
        anns = [anns[i] for i in keep]
    ids = {a["image_id"] for a in anns}
    sub = {**gt, "images": [im for im in gt["images"] if im["id"] in ids], "annotations": anns}
    out = work / name
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    (out / "annotations" / "sample.json").write_text(json.dumps(sub))
    link = out / "images"
    if not link.exists() and (dataset / "images").exists():
        link.symlink_to((dataset / "images").resolve())
    return out


def predict(name: str, dataset: Path, work: Path, python: str) -> dict:
    """MediaPipe results for ``dataset`` (cached in ``work/name.mediapipe.json``)."""
    out = work / f"{name}.mediapipe.json"
    if not out.exists() or out.stat().st_mtime < annotation_file(dataset).stat().st_mtime:
        subprocess.run([python, str(PREDICT), str(dataset), "--out", str(out)], check=True)
    return json.loads(out.read_text())


def _posture(ann: dict, img: dict) -> str:
    from syrip_gen.coco import image_posture

    p = ann.get("posture") or image_posture(img)
    return str(p).lower() if p else "unknown"


def score(dataset: Path, pred: dict) -> dict:
    """AP (box w x h areas), miss rate, per posture, per-joint median error / box diagonal."""
    from pose_models.metrics import coco_ap, normalised_errors
    from syrip_gen.coco import KEYPOINT_NAMES

    gt = copy.deepcopy(json.loads(annotation_file(dataset).read_text()))
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        ann["area"] = float(w * h)
        ann.pop("segmentation", None)
    images = {im["id"]: im for im in gt["images"]}
    results = pred["results"]
    found = {r["image_id"]: r for r in results}
    anns = [a for a in gt["annotations"] if a["image_id"] in images]
    out = {"n": len(anns), "AP": coco_ap(gt, results)["AP"], "miss_rate": 1 - sum(a["image_id"] in found for a in anns) / len(anns)}
    by_posture: dict[str, list[dict]] = {}
    for a in anns:
        by_posture.setdefault(_posture(a, images[a["image_id"]]), []).append(a)
    out["per_posture"] = {}
    for name, group in sorted(by_posture.items()):
        ids = sorted({a["image_id"] for a in group})
        ap = coco_ap(gt, [r for r in results if r["image_id"] in set(ids)], img_ids=ids)["AP"]
        out["per_posture"][name] = {"n": len(group), "AP": ap,
                                    "miss_rate": 1 - sum(a["image_id"] in found for a in group) / len(group)}
    seen = [a for a in anns if a["image_id"] in found]
    errs = normalised_errors(np.array([found[a["image_id"]]["keypoints"] for a in seen], np.float64).reshape(-1, 17, 3)[..., :2],
                             np.array([a["keypoints"] for a in seen], np.float64).reshape(-1, 17, 3),
                             np.array([a["bbox"] for a in seen], np.float64).reshape(-1, 4))
    out["per_joint_median_error"] = {name: (None if np.isnan(errs[:, j]).all() else round(float(np.nanmedian(errs[:, j])), 4))
                                     for j, name in enumerate(KEYPOINT_NAMES)}
    out["median_error"] = None if np.isnan(errs).all() else round(float(np.nanmedian(errs)), 4)
    return out


def image_oks(dataset: Path, gt: dict, pred: dict) -> dict[int, tuple[float, str, Path]]:
    """Per image: OKS of MediaPipe's answer (0 when it found no one), posture and image path."""
    from syrip_gen.coco import SIGMAS

    images = {im["id"]: im for im in gt["images"]}
    found = {r["image_id"]: np.asarray(r["keypoints"], float).reshape(17, 3) for r in pred["results"]}
    var = (2 * np.asarray(SIGMAS)) ** 2
    out = {}
    for a in gt["annotations"]:
        im = images[a["image_id"]]
        g = np.asarray(a["keypoints"], float).reshape(17, 3)
        x, y, w, h = a["bbox"]
        oks = 0.0
        if a["image_id"] in found and (g[:, 2] > 0).any():
            d2 = ((found[a["image_id"]][:, :2] - g[:, :2]) ** 2).sum(1)
            oks = float(np.exp(-d2 / (2 * max(w * h, 1.0) * var))[g[:, 2] > 0].mean())
        out[a["image_id"]] = (oks, _posture(a, im), dataset / "images" / im["file_name"])
    return out


def _factors(ann: dict) -> dict[str, str]:
    """What a render was made of (its provenance), as the factors the realism table groups by."""
    p = ann.get("provenance") if isinstance(ann.get("provenance"), dict) else {}
    sensor = p.get("sensor") or {}
    effects = [k.replace("_sigma", "").replace("_photons", "") for k in sorted(sensor) if k != "jpeg_quality"]
    spec = p.get("spec") or {}
    return {"sensor": "+".join(effects) or "none", "support": str((p.get("support") or {}).get("kind")),
            "background": "hidden" if str((p.get("background") or {}).get("kind", "")).startswith("hidden")
            else str((p.get("background") or {}).get("kind")),
            "view": str(spec.get("view", "drawn")), "texture": str((p.get("texture") or {}).get("kind"))}


def by_factor(gt: dict, oks: dict) -> dict:
    """Mean OKS and miss rate per value of each render factor (sensor effects, support,
    background, view, texture): which ingredient makes renders unreadable to the model."""
    groups: dict = {}
    for a in gt["annotations"]:
        if a["image_id"] not in oks:
            continue
        for factor, value in _factors(a).items():
            groups.setdefault(factor, {}).setdefault(value, []).append(oks[a["image_id"]][0])
    return {f: {v: {"n": len(x), "oks": round(float(np.mean(x)), 3), "zero": round(float(np.mean(np.array(x) == 0)), 3)}
                for v, x in sorted(vals.items(), key=lambda kv: -len(kv[1]))} for f, vals in groups.items()}


def posture_sheets(name: str, oks: dict, real: dict, work: Path, n: int = 12, tile: int = 160) -> list[Path]:
    """Into ``work`` (never the repository: the photos are the user's): 12 random prone renders
    above 12 prone photos, and the 12 worst-read renders above photos of the same postures."""
    import cv2

    from syrip_gen.atomic import atomic_write_image

    rng = np.random.default_rng(0)

    def row(paths):
        tiles = [t for t in (cv2.imread(str(p)) for p in paths) if t is not None]
        return contact_row(tiles, tile) if tiles else None

    def pick(items, k):
        return [items[i] for i in sorted(rng.choice(len(items), min(k, len(items)), replace=False))] if items else []

    def sheet(top, bottom, path):
        rows = [r for r in (row(top[:n // 2]), row(top[n // 2:]), row(bottom[:n // 2]), row(bottom[n // 2:])) if r is not None]
        if not rows:
            return None
        width = max(r.shape[1] for r in rows)
        atomic_write_image(path, np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]),
                           (cv2.IMWRITE_JPEG_QUALITY, 88))
        return path

    real_by = {}
    for _, p, path in real.values():
        real_by.setdefault(p, []).append(path)
    out = []
    prone = [path for _, p, path in oks.values() if p == "prone"]
    out.append(sheet(pick(prone, n), pick(real_by.get("prone", []), n), work / f"{name}_prone_vs_photos.jpg"))
    worst = sorted(oks.values(), key=lambda t: t[0])[:n]
    photos = [pick(real_by.get(p, []), 1) for _, p, _ in worst]
    out.append(sheet([w[2] for w in worst], [q[0] for q in photos if q], work / f"{name}_worst_vs_photos.jpg"))
    return [p for p in out if p]


def write_markdown(report: dict, path: Path) -> None:
    sets = report["sets"]
    ref = report.get("reference")
    lines = [f"# {report.get('title', 'Realism')}", "",
             f"- Command: `{report['command']}`", f"- Commit: {report['commit']}, {report['date']}",
             f"- Hardware: {report['hardware']}", f"- Model: {report['model']}; protocol: {report['protocol']}",
             "- AP: pycocotools OKS with COCO sigmas; every set's area = its box w x h; miss = no person found in the crop;"
             " error = median distance / box diagonal over labelled joints where a person was found",
             "- AP at the real mix: the set's per-posture APs weighted by the real photos' posture shares",
             "", "| set | images | AP | AP / real | AP at the real posture mix (/ real) | miss rate | median error |",
             "|---|---|---|---|---|---|---|"]
    for name, s in sets.items():
        ratio = f"{s['AP'] / sets[ref]['AP']:.2f}" if ref and sets[ref]["AP"] else "-"
        mix = s.get("AP_reference_posture_mix")
        mixed = f"{mix:.3f} ({mix / sets[ref]['AP']:.2f})" if mix is not None and ref and sets[ref]["AP"] else "-"
        lines.append(f"| {name} | {s['n']} | {s['AP']:.3f} | {ratio} | {mixed} | {s['miss_rate']:.1%} | {s['median_error']} |")
    postures = sorted({p for s in sets.values() for p in s["per_posture"]})
    lines += ["", "Per posture (AP / miss rate, n):", "", "| posture | " + " | ".join(sets) + " |",
              "|---|" + "---|" * len(sets)]
    for p in postures:
        cells = []
        for s in sets.values():
            q = s["per_posture"].get(p)
            cells.append(f"{q['AP']:.3f} / {q['miss_rate']:.0%} ({q['n']})" if q and q["AP"] is not None else "-")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    for name, s in sets.items():
        if not s.get("by_factor"):
            continue
        lines += ["", f"What {name}'s renders are made of (mean OKS / share with OKS 0, n); zero = missed or wholly wrong:", "",
                  "| factor | value | n | mean OKS | OKS 0 |", "|---|---|---|---|---|"]
        for factor, values in s["by_factor"].items():
            for value, q in values.items():
                if q["n"] >= 10:
                    lines.append(f"| {factor} | {value} | {q['n']} | {q['oks']:.3f} | {q['zero']:.0%} |")
    joints = list(next(iter(sets.values()))["per_joint_median_error"])
    lines += ["", "Median error per joint (of the box diagonal):", "", "| joint | " + " | ".join(sets) + " |",
              "|---|" + "---|" * len(sets)]
    for j in joints:
        lines.append(f"| {j} | " + " | ".join(str(s["per_joint_median_error"][j]) for s in sets.values()) + " |")
    if report.get("notes"):
        lines += [""] + [f"- {n}" for n in report["notes"]]
    path.write_text("\n".join(lines) + "\n")


def contact_row(tiles: list[np.ndarray], h: int) -> np.ndarray:
    import cv2

    out = []
    for t in tiles:
        if t is None:
            t = np.full((h, h, 3), 60, np.uint8)
        s = h / t.shape[0]
        out.append(cv2.resize(t, (max(1, round(t.shape[1] * s)), h), interpolation=cv2.INTER_AREA))
    return np.concatenate(out, 1)


def sheet(args) -> None:
    """real photo | its fit | four renders wearing its texture | four procedural renders."""
    import cv2

    from syrip_gen.atomic import atomic_write_image

    def by_fit(run: Path) -> dict[str, list[Path]]:
        gt = json.loads(annotation_file(run).read_text())
        files = {im["id"]: im["file_name"] for im in gt["images"]}
        out: dict[str, list[Path]] = {}
        for a in gt["annotations"]:
            out.setdefault(str(a["provenance"]["fit_id"]), []).append(run / "images" / files[a["image_id"]])
        return out

    own, proc = by_fit(Path(args.sheet_photo)), by_fit(Path(args.sheet_procedural))
    records = [json.loads(line) for line in (Path(args.fits) / "fits.jsonl").read_text().splitlines()]
    records = {str(r["id"]): r for r in records if r.get("status") == "ok"}
    rows, h = [], args.tile
    for fit_id in sorted(own, key=lambda k: sorted(own[k])[0])[:args.sheet_n]:
        r = records[fit_id]
        photo = cv2.imread(str(Path(args.photos) / "images" / r["file_name"]))
        overlay = cv2.imread(str(Path(args.fits) / "overlays" / f"{fit_id}.png"))
        tiles = [photo, overlay] + [cv2.imread(str(p)) for p in sorted(own[fit_id])[:4]] \
            + [cv2.imread(str(p)) for p in sorted(proc.get(fit_id, []))[:4]]
        rows.append(contact_row(tiles, h))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    atomic_write_image(args.sheet, np.concatenate(rows, 0), (cv2.IMWRITE_JPEG_QUALITY, 88))
    print(f"wrote {args.sheet}")


def prone_sheet(dataset: Path, out: Path, tile: int, n: int = 12) -> None:
    """Two rows of ``n / 2`` random prone renders of ``dataset``."""
    import cv2

    from syrip_gen.atomic import atomic_write_image

    gt = json.loads(annotation_file(dataset).read_text())
    images = {im["id"]: im for im in gt["images"]}
    prone = sorted(images[a["image_id"]]["file_name"] for a in gt["annotations"] if _posture(a, images[a["image_id"]]) == "prone")
    if not prone:
        raise SystemExit(f"{dataset}: no prone renders")
    pick = [prone[i] for i in sorted(np.random.default_rng(0).choice(len(prone), min(n, len(prone)), replace=False))]
    tiles = [cv2.imread(str(dataset / "images" / f)) for f in pick]
    rows = [contact_row(tiles[:n // 2], tile)] + ([contact_row(tiles[n // 2:], tile)] if len(tiles) > n // 2 else [])
    width = max(r.shape[1] for r in rows)
    atomic_write_image(out, np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]),
                       (cv2.IMWRITE_JPEG_QUALITY, 85))
    print(f"wrote {out} ({len(pick)} of {len(prone)} prone renders)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], metavar="NAME=DATASET", help="SyRIP-layout folder")
    ap.add_argument("--reference", help="the set the AP ratio is taken against (the real photos)")
    ap.add_argument("--sample", type=int, help="score a fixed seeded sample of this many annotations per set")
    ap.add_argument("--work", default="/tmp/realism", help="predictions and samples (outside the repo)")
    ap.add_argument("--python", default=str(ROOT / ".venv-mediapipe" / "bin" / "python"))
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("--out", default=str(RESULTS / "realism"))
    ap.add_argument("--sheet")
    ap.add_argument("--fits")
    ap.add_argument("--photos")
    ap.add_argument("--sheet-photo")
    ap.add_argument("--sheet-procedural")
    ap.add_argument("--sheet-n", type=int, default=6)
    ap.add_argument("--tile", type=int, default=200)
    ap.add_argument("--title", default="Realism: MediaPipe BlazePose on renders vs real photos (issue 13)")
    ap.add_argument("--prone-sheet", metavar="DATASET",
                    help="only write 12 random prone renders of DATASET (e.g. the demo's: bundled postures, "
                         "procedural appearance, free to publish) to --sheet-out")
    ap.add_argument("--sheet-out", default=str(RESULTS / "prone_renders.jpg"))
    args = ap.parse_args()
    if args.sheet:
        return sheet(args)
    if args.prone_sheet:
        return prone_sheet(Path(args.prone_sheet), Path(args.sheet_out), args.tile)
    from syrip_gen.hardware import cpu_model

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    argv, skip = [], False  # the command without its --note texts (they are listed below it)
    for a in sys.argv[1:]:
        if skip or a == "--note":
            skip = a == "--note"
            continue
        argv.append(a)
    report = {"command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + argv) + (" --note ..." if args.note else ""),
              "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                       text=True).stdout.strip(),
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "hardware": f"{cpu_model()}, 2 CPU cores shared with other work, no GPU",
              "reference": args.reference, "sets": {}, "notes": args.note, "title": args.title}
    scored = {}
    for item in args.set:
        name, path = item.split("=", 1)
        data = sampled_dataset(name, Path(path), work, args.sample)
        t0 = time.time()
        pred = predict(name, data, work, args.python)
        report["model"], report["protocol"] = pred["model"], pred["protocol"]
        report["sets"][name] = {**score(data, pred), "dataset": str(path), "seconds": round(time.time() - t0, 1)}
        gt = json.loads(annotation_file(data).read_text())  # read once for the per-image measures
        scored[name] = image_oks(data, gt, pred)
        if name != args.reference:
            report["sets"][name]["by_factor"] = by_factor(gt, scored[name])
        s = report["sets"][name]
        print(f"{name}: n {s['n']}, AP {s['AP']:.3f}, miss {s['miss_rate']:.1%}")
    ref = report["sets"].get(args.reference) if args.reference else None
    if ref:  # the renders' posture mix differs from the photos': also weigh postures as the photos do
        share = {p: q["n"] / ref["n"] for p, q in ref["per_posture"].items()}
        for s in report["sets"].values():
            aps = {p: q["AP"] for p, q in s["per_posture"].items() if q["AP"] is not None}
            if set(share) <= set(aps):
                s["AP_reference_posture_mix"] = round(sum(share[p] * aps[p] for p in share), 4)
    if args.reference in scored:
        for name in scored:
            if name != args.reference:
                for p in posture_sheets(name, scored[name], scored[args.reference], work):
                    print(f"wrote {p} (the user's photos: keep it out of the repository)")
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1, sort_keys=True))
    write_markdown(report, out.with_suffix(".md"))
    print(f"wrote {out}.md")


if __name__ == "__main__":
    main()
