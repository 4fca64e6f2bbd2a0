"""Pose metrics as functions: COCO keypoint AP/AR (pycocotools, OKS), PCK, box AP, MPJPE.

Area rule (:func:`sanitise_areas`): OKS divides squared distances by the annotation's ``area``. Some SyRIP
files store areas larger than the image or than the person's box, which makes every prediction look
close and inflates AP. An area is *implausible* when it exceeds the image (w x h) or the annotation box
(w x h) by more than 1%; such areas are replaced by box w x h. We use box w x h (not COCO's ~0.53 x box,
a segmentation-to-box ratio of adult COCO persons) because SyRIP's own validation file (validate100)
stores exactly box w x h, so the repaired values stay comparable with published SyRIP numbers.
"""
from __future__ import annotations

import contextlib
import copy
import io

import numpy as np

from syrip_gen.coco import KEYPOINT_NAMES, SIGMAS, image_posture


def sanitise_areas(gt: dict) -> tuple[dict, int]:
    """Copy of COCO dict ``gt`` with implausible ``area`` values replaced (rule in the module docstring);
    returns it and the number replaced."""
    gt = copy.deepcopy(gt)
    images = {im["id"]: im for im in gt["images"]}
    fixed = 0
    for ann in gt["annotations"]:
        x, y, w, h = (ann.get("bbox") or [0, 0, 0, 0])[:4]
        im = images.get(ann["image_id"], {})
        limit = min(v for v in (w * h, im.get("width", 0) * im.get("height", 0)) if v > 0) if w * h > 0 else None
        area = ann.get("area")
        if limit and (not isinstance(area, (int, float)) or area <= 0 or area > 1.01 * limit):
            ann["area"] = float(w * h)
            fixed += 1
    return gt, fixed


def _coco(gt: dict):
    from pycocotools.coco import COCO

    c = COCO()
    c.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):
        c.createIndex()
    return c


STAT_NAMES_KP = ["AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L"]
STAT_NAMES_BOX = ["AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "AR1", "AR10", "AR100", "AR_S", "AR_M", "AR_L"]


def coco_ap(gt: dict, results: list[dict], iou_type: str = "keypoints", img_ids: list[int] | None = None
            ) -> dict[str, float]:
    """COCOeval summary stats (``keypoints`` uses OKS with COCO sigmas; ``bbox`` uses IoU).
    ``results``: COCO result dicts. -1 entries (no GT in a range) are reported as None."""
    from pycocotools.cocoeval import COCOeval

    names = STAT_NAMES_KP if iou_type == "keypoints" else STAT_NAMES_BOX
    if not results:
        return {n: 0.0 for n in names}
    cgt = _coco(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        cdt = cgt.loadRes(copy.deepcopy(results))
        ev = COCOeval(cgt, cdt, iou_type)
        if iou_type == "keypoints":
            ev.params.kpt_oks_sigmas = SIGMAS
        if img_ids is not None:
            ev.params.imgIds = sorted(img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {n: (None if s < 0 else float(s)) for n, s in zip(names, ev.stats)}


def pck(pred: np.ndarray, gt: np.ndarray, boxes: np.ndarray, thr: float) -> np.ndarray:
    """Percentage of Correct Keypoints, normalised by the ground-truth BOX DIAGONAL sqrt(w^2 + h^2).

    pred ``(N, J, 2)``, gt ``(N, J, 3)`` (x, y, v), boxes ``(N, 4)`` x, y, w, h. A labelled joint (v > 0)
    is correct when its error is <= ``thr`` x diagonal. Returns ``(N, J) float`` of 1/0, NaN where unlabelled."""
    diag = np.hypot(boxes[:, 2], boxes[:, 3])[:, None]
    ok = (np.linalg.norm(pred - gt[..., :2], axis=-1) <= thr * diag).astype(np.float64)
    return np.where(gt[..., 2] > 0, ok, np.nan)


def normalised_errors(pred: np.ndarray, gt: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Distance of each prediction to its label over the ground-truth box diagonal.

    pred ``(N, J, 2)``, gt ``(N, J, 3)`` (x, y, v), boxes ``(N, 4)`` x, y, w, h. Returns ``(N, J) float64``,
    NaN where the joint is unlabelled (v = 0)."""
    diag = np.hypot(boxes[:, 2], boxes[:, 3])[:, None]
    err = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64)[..., :2], axis=-1) / diag
    return np.where(np.asarray(gt)[..., 2] > 0, err, np.nan)


def keypoint_report(gt: dict, results: list[dict], pred_xy: np.ndarray, gt_kps: np.ndarray,
                    gt_boxes: np.ndarray, postures: list[str | None]) -> dict:
    """AP/AR overall and per posture, PCK@0.05/0.1 overall, per joint and per posture.
    pred_xy ``(N, 17, 2)`` paired with gt_kps ``(N, 17, 3)`` and gt_boxes ``(N, 4)``."""
    out: dict = {"n": int(len(gt_kps)), "oks": coco_ap(gt, results)}
    p05, p10 = pck(pred_xy, gt_kps, gt_boxes, 0.05), pck(pred_xy, gt_kps, gt_boxes, 0.1)
    out["pck@0.05"], out["pck@0.1"] = _nanmean(p05), _nanmean(p10)
    out["pck_normaliser"] = "ground-truth box diagonal"
    out["per_joint"] = {name: {"pck@0.05": _nanmean(p05[:, j]), "pck@0.1": _nanmean(p10[:, j])}
                        for j, name in enumerate(KEYPOINT_NAMES)}
    ids_by_posture: dict[str, list[int]] = {}
    for im in gt["images"]:
        ids_by_posture.setdefault(image_posture(im) or "unknown", []).append(im["id"])
    out["per_posture"] = {}
    post = np.array([p or "unknown" for p in postures])
    for name, ids in sorted(ids_by_posture.items()):
        sel = post == name
        out["per_posture"][name] = {"n": int(sel.sum()), "AP": coco_ap(gt, [r for r in results if r["image_id"] in set(ids)],
                                                                       img_ids=ids)["AP"],
                                    "pck@0.05": _nanmean(p05[sel]), "pck@0.1": _nanmean(p10[sel])}
    return out


def _nanmean(a: np.ndarray) -> float | None:
    a = np.asarray(a, np.float64)
    return None if np.isnan(a).all() else float(np.nanmean(a))
