"""Evaluate a checkpoint on a COCO keypoint file; the kind of checkpoint decides what is measured.

- pose2d: COCO keypoint AP/AR (OKS), PCK@0.05/0.1 of the box diagonal, per joint and per posture, with
  ground-truth boxes (``boxes="gt"``) or with boxes from a detector checkpoint (``boxes="detector"``).
- detector: COCO box AP (pycocotools bbox) over every infant: each image's detected boxes (up to
  ``MAX_OBJECTS``, see :meth:`~pose_models.detector.CenterDetector.detect`) against all its annotations.
- pose2d with detector boxes is top-down on every detected box: OKS AP over all infants; PCK pairs each
  annotated infant with the detection of highest box IoU in its image (a missed infant counts as wrong).
- lifter: MPJPE and PA-MPJPE (mm) from the annotated 2D keypoints to ``keypoints_3d``.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pose_models.checkpoint import checkpoint_file, load_model
from pose_models.data import (MAX_OBJECTS, DetectionDataset, LiftingDataset, Pose2DDataset, Record, load_records,
                              report_skips)
from pose_models.device import resolve_device, set_threads
from pose_models.metrics import coco_ap, keypoint_report, sanitise_areas
from syrip_gen.coco import load_coco
from syrip_gen.errors import UserError
from syrip_gen.pose3d import REFERENCE_3D, coco_to_lsp12, read_reference_3d, scores


def _batches(ds, batch_size: int):
    for s in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(s, min(len(ds), s + batch_size))]
        yield {k: torch.stack([it[k] for it in items]) for k in items[0]}


@torch.no_grad()
def predict_keypoints(model, records: list[Record], boxes: list[np.ndarray] | None, device: torch.device,
                      flip: bool = True, batch_size: int = 32, method: str = "dark"
                      ) -> tuple[list[Record], np.ndarray, np.ndarray, Counter]:
    """Run the 2D model on crops around ``boxes`` (default: the records' GT boxes).
    Returns the records kept, keypoints ``(N, 17, 2)`` and scores ``(N, 17)`` in image pixels, skips."""
    cfg = model.cfg
    ds = Pose2DDataset(records, (cfg.input_h, cfg.input_w), cfg.sigma, boxes=boxes)
    xy_all, sc_all = [], []
    for b in _batches(ds, batch_size):
        xy, sc = model.predict_keypoints(b["image"].to(device), flip, method)
        inv = b["inv"].numpy()
        xy = xy.cpu().double().numpy()
        xy_all.append(np.einsum("nij,nkj->nki", inv[:, :, :2], xy) + inv[:, None, :, 2])
        sc_all.append(sc.cpu().numpy())
    if not xy_all:
        return ds.records, np.zeros((0, 17, 2)), np.zeros((0, 17)), ds.skipped
    return ds.records, np.concatenate(xy_all), np.concatenate(sc_all), ds.skipped


@torch.no_grad()
def detect_boxes(model, records: list[Record], device: torch.device, batch_size: int = 32
                 ) -> tuple[list[Record], np.ndarray, np.ndarray, Counter]:
    """Every infant the detector finds: one record per detected box (the image's first record for its
    best box, copies with fresh negative ``ann_id`` for further boxes), boxes ``(N, 4)`` image px
    x,y,w,h, scores ``(N,)``."""
    import dataclasses

    ds = DetectionDataset(records, model.cfg.input_size)
    out_recs, boxes, scores = [], [], []
    for b in _batches(ds, batch_size):
        bx, sc, keep = model.detect(b["image"].to(device), max_boxes=MAX_OBJECTS)
        bx, sc, keep = bx.cpu().double().numpy(), sc.cpu().numpy(), keep.cpu().numpy()
        inv = b["inv"].numpy()  # axis-aligned scale + shift
        for n, i in enumerate(b["index"].tolist()):
            for k in np.flatnonzero(keep[n]):
                lo = inv[n, :, :2] @ bx[n, k, :2] + inv[n, :, 2]
                size = bx[n, k, 2:] * inv[n, [0, 1], [0, 1]]
                rec = ds.records[i] if k == 0 else dataclasses.replace(ds.records[i], ann_id=-(len(out_recs) + 1))
                out_recs.append(rec)
                boxes.append(np.concatenate([lo, size]))
                scores.append(float(sc[n, k]))
    if not boxes:
        return out_recs, np.zeros((0, 4)), np.zeros(0), ds.skipped
    return out_recs, np.stack(boxes), np.array(scores), ds.skipped


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``(N, M)`` of boxes ``a (N, 4)`` and ``b (M, 4)`` given as x, y, w, h."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), -1)
    union = np.prod(a[:, 2:], -1)[:, None] + np.prod(b[:, 2:], -1)[None] - inter
    return inter / np.maximum(union, 1e-9)


def match_detections(gt: list[Record], det: list[Record], det_boxes: np.ndarray) -> np.ndarray:
    """For each annotated infant, the index of its detection (highest box IoU in the same image, each
    detection used once, greedy by IoU), -1 when none overlaps. ``(len(gt),) int64``."""
    out = np.full(len(gt), -1, np.int64)
    by_image: dict = {}
    for j, r in enumerate(det):
        by_image.setdefault(r.image_id, []).append(j)
    gt_by_image: dict = {}
    for i, r in enumerate(gt):
        gt_by_image.setdefault(r.image_id, []).append(i)
    for iid, gi in gt_by_image.items():
        dj = by_image.get(iid, [])
        if not dj:
            continue
        iou = box_iou(np.stack([gt[i].box for i in gi]), det_boxes[dj])
        while (iou > 0).any():
            a, b = np.unravel_index(np.argmax(iou), iou.shape)
            out[gi[a]] = dj[b]
            iou[a, :] = 0
            iou[:, b] = 0
    return out


def instance_score(kp_scores: np.ndarray, thr: float = 0.2) -> np.ndarray:
    """SimpleBaselines' rescoring: mean of the joint confidences above ``thr``. ``(N, 17)`` -> ``(N,)``."""
    m = kp_scores > thr
    return np.where(m.any(1), (kp_scores * m).sum(1) / np.maximum(m.sum(1), 1), 0.0)


def keypoint_results(records: list[Record], xy: np.ndarray, kp_scores: np.ndarray,
                     box_scores: np.ndarray | None = None) -> list[dict]:
    """COCO keypoint result dicts (v=1 per joint as COCO expects; score = instance score x box score)."""
    score = instance_score(kp_scores) * (1.0 if box_scores is None else box_scores)
    out = []
    for r, p, s in zip(records, xy, score):
        kps = np.concatenate([p, np.ones((17, 1))], 1).reshape(-1)
        out.append({"image_id": r.image_id, "category_id": 1, "keypoints": [float(v) for v in kps],
                    "score": float(s)})
    return out


def calibrate_on(model, coco_path: str | Path, device: torch.device, batch_size: int = 32,
                 max_images: int = 2048) -> dict:
    """AdaBN for a 2D model: recompute its BatchNorm statistics on ground-truth-box crops of the
    images in ``coco_path`` (their keypoints are not used), as the test crops will be made."""
    from pose_models.batchnorm import recalibrate_batchnorm

    cfg = model.cfg
    records = load_records(coco_path).records[:max_images]
    if not records:
        raise UserError(f"{coco_path}: no usable images to calibrate BatchNorm on")
    ds = Pose2DDataset(records, (cfg.input_h, cfg.input_w), cfg.sigma)
    seen = recalibrate_batchnorm(model, (b["image"] for b in _batches(ds, batch_size)), device)
    return {"data": str(coco_path), "images": seen}


@torch.no_grad()
def lifter_on_reference(model, records: list[Record], ref: dict[str, np.ndarray], device: torch.device) -> dict:
    """The lifter from the annotated 2D keypoints against reference 3D poses of unknown units
    (SyRIP's corrected 3D): mean per-joint error in limb lengths after unit-limb scaling and a
    similarity alignment on the 12 limb joints (:mod:`syrip_gen.pose3d`), beside the references'
    average pose."""
    from pose_models.lifter import normalise_2d

    recs = [r for r in records if r.image_path.name in ref]
    if not recs:
        return {"n": 0}
    kp2d = torch.from_numpy(np.stack([normalise_2d(r.keypoints[:, :2], r.keypoints[:, 2]) for r in recs]))
    pred = model(kp2d.to(device))[0].cpu().double().numpy()
    return scores(coco_to_lsp12(pred), np.stack([ref[r.image_path.name] for r in recs]))


@torch.no_grad()
def evaluate(checkpoint: str | Path, coco_path: str | Path, *, boxes: str = "gt", detector: str | Path | None = None,
             device: str = "auto", flip: bool = True, batch_size: int = 32, decode: str = "dark",
             bn_calibration: str | Path | None = None, log=print) -> dict:
    """Evaluate ``checkpoint`` on ``coco_path`` (JSON or dataset dir); returns a JSON-serialisable dict.

    ``boxes``: ``gt`` or ``detector`` (then ``detector`` = a detector checkpoint) for pose2d models.
    ``bn_calibration``: a COCO set of real images (e.g. the real *train* set) whose crops first
    replace a 2D model's BatchNorm statistics (AdaBN, see :mod:`pose_models.batchnorm`)."""
    checkpoint = checkpoint_file(checkpoint)  # a training run's folder: its last checkpoint
    dev = resolve_device(device)
    set_threads(None)
    model, ck = load_model(checkpoint, device=dev)
    kind = ck["kind"]
    calibration = None
    if bn_calibration is not None:
        if kind != "pose2d":
            raise UserError(f"BatchNorm calibration is for 2D pose models; {checkpoint} is a {kind}")
        calibration = calibrate_on(model, bn_calibration, dev, batch_size)
    kf = load_coco(coco_path)
    if not kf.images or not kf.annotations:  # an empty set has no score, not a score of 0
        raise UserError(f"{kf.path}: {len(kf.images)} images and {len(kf.annotations)} annotations; "
                        "nothing to evaluate on")
    loaded = load_records(coco_path, need_image=kind != "lifter")
    if not loaded.records:
        why = ", ".join(f"{n} {r}" for r, n in sorted(loaded.skipped.items()))
        raise UserError(f"{kf.path}: no annotation can be evaluated on (skipped: {why})")
    gt, fixed = sanitise_areas(kf.data)
    if fixed:
        log(f"{kf.path}: {fixed} annotation areas larger than their image or box were reset to box w x h")
    out: dict = {"checkpoint": str(checkpoint), "kind": kind, "data": str(kf.path), "areas_fixed": fixed,
                 "step": ck["step"], "bn_calibration": calibration}
    skipped = Counter(loaded.skipped)
    if kind == "lifter":
        ds = LiftingDataset(loaded.records)
        ref = read_reference_3d(kf.path)
        if len(ds) == 0 and not ref:
            raise UserError(f"{kf.path}: no annotation has keypoints_3d and no {REFERENCE_3D} beside it; "
                            "the lifter needs 3D ground truth")
        if len(ds):
            skipped += ds.skipped
            from pose_models.lifter import mpjpe_mm
            preds, gts = [], []
            for b in _batches(ds, batch_size):
                preds.append(model(b["kp2d"].to(dev))[0].cpu().numpy())
                gts.append(b["kp3d"].numpy())
            e, pa = mpjpe_mm(np.concatenate(preds).astype(np.float64), np.concatenate(gts).astype(np.float64))
            out.update({"n": len(ds), "mpjpe_mm": e, "pa_mpjpe_mm": pa})
        if ref:
            out["reference_3d"] = lifter_on_reference(model, loaded.records, ref, dev)
    elif kind == "detector":
        recs, bx, sc, sk = detect_boxes(model, loaded.records, dev, batch_size)
        skipped += sk
        res = [{"image_id": r.image_id, "category_id": 1, "bbox": [float(v) for v in b], "score": float(s)}
               for r, b, s in zip(recs, bx, sc)]
        out.update({"n": len(recs), "infants": len(loaded.records), "bbox": coco_ap(gt, res, "bbox")})
    else:
        recs, det_scores = loaded.records, None
        if boxes == "detector":
            if detector is None:
                raise UserError("boxes='detector' needs a detector checkpoint (--detector PATH)")
            dmodel, _ = load_model(detector, expect="detector", device=dev)
            recs, det_boxes, det_scores, sk = detect_boxes(dmodel, recs, dev, batch_size)
            skipped += sk
            box_list = list(det_boxes)
        elif boxes == "gt":
            box_list = None
        else:
            raise UserError(f"boxes must be 'gt' or 'detector', not {boxes!r}")
        kept, xy, ksc, sk = predict_keypoints(model, recs, box_list, dev, flip, batch_size, decode)
        skipped += sk
        if det_scores is not None:  # map detector scores onto the records the 2D stage kept
            by_id = {r.ann_id: s for r, s in zip(recs, det_scores)}
            det_scores = np.array([by_id[r.ann_id] for r in kept])
        results = keypoint_results(kept, xy, ksc, det_scores)
        if boxes == "detector":  # every annotated infant against its detection (PCK); AP uses all results
            by_ann = {r.ann_id: k for k, r in enumerate(kept)}
            kept_boxes = np.stack([det_boxes[j] for j, r in enumerate(recs) if r.ann_id in by_ann]) if kept \
                else np.zeros((0, 4))
            det_kept = [r for r in recs if r.ann_id in by_ann]
            match = match_detections(loaded.records, det_kept, kept_boxes)
            xy = np.stack([xy[by_ann[det_kept[j].ann_id]] if j >= 0 else np.full((17, 2), np.nan) for j in match])
            kept = loaded.records
            out["infants"] = len(kept)
            out["infants_detected"] = int((match >= 0).sum())
            out["detections"] = len(det_kept)
        gt_kps = np.stack([r.keypoints for r in kept]) if kept else np.zeros((0, 17, 3))
        gt_box = np.stack([r.box for r in kept]) if kept else np.zeros((0, 4))
        out.update(keypoint_report(gt, results, xy, gt_kps, gt_box, [r.posture for r in kept]))
        out["boxes"] = boxes
        out["flip_test"] = flip
    out["skipped"] = dict(skipped)
    if skipped:
        log(report_skips(skipped, str(kf.path)))
    return out



def evaluate_along(train_dir: str | Path, coco_path: str | Path, log=print, **kwargs) -> list[dict]:
    """A learning curve: every checkpoint a run kept (``keep_every``), evaluated like :func:`evaluate`.
    Returns one row per checkpoint: step, crops seen (step x the run's batch size), headline metrics."""
    from pose_models.checkpoint import read_checkpoint

    found = sorted((Path(train_dir) / "checkpoints").glob("step_*.pt"))
    if not found:
        raise UserError(f"{train_dir}: no checkpoints to draw a learning curve from")
    batch = read_checkpoint(found[-1])["config"]["batch_size"]
    rows = []
    for path in tqdm(found, desc="learning curve", mininterval=2):
        m = evaluate(path, coco_path, log=log, **kwargs)
        rows.append({"step": m["step"], "crops": m["step"] * batch, "AP": m["oks"]["AP"],
                     "AP50": m["oks"]["AP50"], "pck@0.1": m.get("pck@0.1")})
    return rows
