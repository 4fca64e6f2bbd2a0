"""Regenerate the posture library's artefacts: the COCO skeleton file and the contact sheet.

    python scripts/make_posture_skeletons.py                 # skeletons.json + contact_sheet.jpg
    python scripts/make_posture_skeletons.py --sheet-only    # only the picture
    python scripts/make_posture_skeletons.py --check         # labels and joint angles per posture

Deterministic: the same --seed (default 0) gives the same bytes of skeletons.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from syrip_gen.atomic import atomic_write_image
from syrip_gen.drawing import paint_orthographic
from syrip_gen.paths import ASSETS


def view_matrix(yaw_deg: float, elev_deg: float) -> np.ndarray:
    """Rows: camera right, down, forward for a camera looking at the origin from (yaw, elev)."""
    from syrip_gen.geometry import look_at_rotation

    return look_at_rotation(yaw_deg, elev_deg)


def contact_sheet(body, library, path: Path, cell: int = 150, cols: int = 4) -> None:
    """Two mesh views per posture (side and oblique from above), ``cols`` postures a row,
    labelled with name, label and age range; JPEG at ``path``."""
    import cv2

    faces = body.topology().body_faces
    poses = torch.stack([p.pose for p in library])
    months = torch.tensor([sum(p.age_months) / 2 for p in library])
    with torch.no_grad():
        verts = body(poses, body.shape_for_age(months), with_vertices=True).vertices.numpy()
    views = [view_matrix(90.0, 10.0), view_matrix(30.0, 50.0)]
    tiles = []
    for p, v in zip(library, verts):
        centre = (v.max(0) + v.min(0)) / 2
        scale = 0.85 * cell / max(np.ptp(v, axis=0).max(), 1e-6)
        pair = np.concatenate([paint_orthographic(v, faces, R, cell, scale, centre) for R in views], 1)
        cv2.putText(pair, p.name[:34], (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(pair, f"{p.label} {p.age_months[0]:g}-{p.age_months[1]:g} mo", (3, cell - 5),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.34, (90, 40, 40), 1, cv2.LINE_AA)
        cv2.rectangle(pair, (0, 0), (2 * cell - 1, cell - 1), (180, 180, 180), 1)
        tiles.append(pair)
    cols = min(cols, len(tiles))
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[i:i + cols], 1) for i in range(0, len(tiles), cols)]
    sheet = np.concatenate(rows, 0)
    atomic_write_image(path, sheet, (cv2.IMWRITE_JPEG_QUALITY, 70))
    print(f"wrote {path} ({sheet.shape[1]}x{sheet.shape[0]}, {path.stat().st_size // 1024} KB)")


def check(body, library) -> int:
    """Print each posture's classifier label and hinge angles; return the number of problems."""
    from syrip_gen.posture_label import posture_labels
    from syrip_gen.posture_library import hinge_angles

    poses = torch.stack([p.pose for p in library])
    months = torch.tensor([sum(p.age_months) / 2 for p in library])
    with torch.no_grad():
        kp = body(poses, body.shape_for_age(months)).keypoints
    labels = posture_labels(kp, torch.tensor([0.0, 1.0, 0.0]))
    angles = hinge_angles(poses, kp)
    bad = 0
    for i, p in enumerate(library):
        a = {k: float(v[i]) for k, v in angles.items()}
        flags = []
        if labels[i] != p.label:
            flags.append(f"LABEL {labels[i]}")
        flags += [f"{k}={v:.0f}" for k, v in a.items() if (k.endswith("flexion") and v < -10)
                  or (k.endswith("off_plane") and abs(v) > 20)]
        bad += bool(flags)
        print(f"{p.name:32s} {p.label:9s} " + " ".join(f"{k.replace('_flexion', '')[:7]}:{v:4.0f}"
              for k, v in a.items() if k.endswith("flexion")) + ("  <-- " + ", ".join(flags) if flags else ""))
    print(f"{bad} posture(s) with problems out of {len(library)}")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, default=ASSETS / "postures" / "library.yaml")
    parser.add_argument("--out", type=Path, default=ASSETS / "postures" / "skeletons.json")
    parser.add_argument("--sheet", type=Path, default=ASSETS / "postures" / "contact_sheet.jpg")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--views", type=int, default=None, help="views per posture (default: config)")
    parser.add_argument("--sheet-only", action="store_true")
    parser.add_argument("--check", action="store_true", help="only print labels and joint angles")
    args = parser.parse_args(argv)

    from syrip_gen.atomic import atomic_write_json
    from syrip_gen.body import load_body
    from syrip_gen.posture_library import SkeletonConfig, load_library, make_skeletons

    library = load_library(args.library)
    body = load_body("anny")
    if args.check:
        return 1 if check(body, library) else 0
    if not args.sheet_only:
        cfg = SkeletonConfig() if args.views is None else SkeletonConfig(views_per_posture=args.views)
        coco = make_skeletons(body, library, torch.Generator().manual_seed(args.seed), cfg)
        coco["info"]["seed"] = args.seed
        atomic_write_json(args.out, coco)
        print(f"wrote {args.out}: {len(coco['annotations'])} skeletons from {len(library)} postures")
    contact_sheet(body, library, args.sheet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
