"""box -> 2D -> 3D on plain images, with drawings: the 2D skeleton over the image and a 3D skeleton view."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from pose_models.checkpoint import load_model
from pose_models.data import Record
from pose_models.device import resolve_device
from pose_models.evaluate import detect_boxes, predict_keypoints
from syrip_gen.atomic import atomic_write_json, read_image
from syrip_gen.coco import SKELETON
from syrip_gen.errors import UserError
from syrip_gen.paths import IMAGE_SUFFIXES


@dataclass
class Prediction:
    image: str
    box: list[float]                        # x, y, w, h (image pixels)
    box_score: float
    keypoints: list[list[float]]            # 17 x (x, y, confidence), image pixels
    keypoints_3d: list[list[float]] | None  # 17 x 3 metres, pelvis-relative, camera axes (None without lifter)


def list_images(paths: list[str | Path]) -> list[Path]:
    """Files as given plus the images inside given directories (sorted); UserError when none."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"{p}: no such image or directory")
    if not out:
        raise UserError("no images to predict on")
    return out


def split_inputs(paths: list[str | Path]) -> tuple[list[Path], list[Path]]:
    """Inputs as (images, videos): video files (by suffix, ``syrip_gen.video``) go to the video
    path; images and image folders to :func:`predict`. Both kinds at once is a UserError."""
    from syrip_gen.video import is_video

    videos = [Path(p) for p in paths if Path(p).is_file() and is_video(p)]
    images = [Path(p) for p in paths if Path(p) not in videos]
    missing = [v for v in map(Path, paths) if is_video(v) and not v.exists()]
    if missing:
        raise UserError(f"{missing[0]}: no such video")
    if videos and images:
        raise UserError("give images or videos to predict on, not both")
    return (list_images(images) if images else []), videos


@torch.no_grad()
def predict(images: list[str | Path], detector: str | Path, pose2d: str | Path, lifter: str | Path | None = None,
            device: str = "auto", flip: bool = True, vis_dir: str | Path | None = None, log=print
            ) -> list[Prediction]:
    """Run the three stages from their checkpoints; unreadable images are skipped and counted."""
    dev = resolve_device(device)
    det, _ = load_model(detector, expect="detector", device=dev)
    pose, _ = load_model(pose2d, expect="pose2d", device=dev)
    lift = load_model(lifter, expect="lifter", device=dev)[0] if lifter else None
    paths = list_images(images)
    recs = [Record(p, i, i, 0, 0, np.zeros(4), np.zeros((17, 3)), False, None, None) for i, p in enumerate(paths)]
    recs, boxes, box_scores, skipped = detect_boxes(det, recs, dev)
    kept, xy, kp_scores, sk2 = predict_keypoints(pose, recs, list(boxes), dev, flip)
    skipped += sk2
    if skipped:
        log("predict: skipped " + ", ".join(f"{n} ({r})" for r, n in skipped.items()))
    by_id = {r.ann_id: (b, s) for r, b, s in zip(recs, boxes, box_scores)}  # one per detected infant
    kp3d = None
    if lift is not None and len(kept):
        from pose_models.lifter import normalise_2d
        x = torch.from_numpy(normalise_2d(xy, (kp_scores > 0.1).astype(np.float64))).to(dev)
        kp3d = lift(x)[0].cpu().numpy()
    preds = []
    for i, r in enumerate(kept):
        b, s = by_id[r.ann_id]
        preds.append(Prediction(str(r.image_path), [float(v) for v in b], float(s),
                                np.c_[xy[i], kp_scores[i]].round(3).tolist(),
                                None if kp3d is None else kp3d[i].round(4).tolist()))
    if vis_dir is not None:
        for p in preds:
            draw(p, Path(vis_dir) / (Path(p.image).stem + ".png"))
    return preds


def write_predictions(path: str | Path, preds: list[Prediction]) -> None:
    atomic_write_json(path, {"predictions": [asdict(p) for p in preds]})


def draw(pred: Prediction, out: Path) -> None:
    """Image with box and 2D skeleton (left) and, when present, a 3D skeleton view (right); matplotlib Agg."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = read_image(pred.image)
    if img is None:
        return
    kps = np.asarray(pred.keypoints)
    x, y, w, h = pred.box
    th = max(1, int(round(max(img.shape[:2]) / 300)))
    cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), (0, 255, 0), th)
    for a, b in SKELETON:
        pa, pb = kps[a - 1], kps[b - 1]
        cv2.line(img, (int(pa[0]), int(pa[1])), (int(pb[0]), int(pb[1])), (0, 200, 255), th)
    for j, k in enumerate(kps):
        cv2.circle(img, (int(k[0]), int(k[1])), 2 * th, (255, 0, 0) if j % 2 else (0, 0, 255), -1)
    three = pred.keypoints_3d is not None
    fig = plt.figure(figsize=(10 if three else 5, 5))
    ax = fig.add_subplot(1, 2 if three else 1, 1)
    ax.imshow(img[:, :, ::-1])
    ax.set_title(f"box score {pred.box_score:.2f}")
    ax.axis("off")
    if three:
        p3 = np.asarray(pred.keypoints_3d)
        ax3 = fig.add_subplot(1, 2, 2, projection="3d")
        for a, b in SKELETON:
            ax3.plot(*[[p3[a - 1, k], p3[b - 1, k]] for k in (0, 2, 1)], color="tab:orange")
        ax3.scatter(p3[:, 0], p3[:, 2], p3[:, 1], s=8)
        ax3.invert_zaxis()  # image y points down
        ax3.set_xlabel("x (m)"), ax3.set_ylabel("z (m)"), ax3.set_zlabel("y (m)")
        ax3.set_title("3D (pelvis-relative)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, bbox_inches="tight")
    plt.close(fig)
