"""Evaluation: pycocotools AP reproduces 1.0 on ground truth and a known value for a known offset.

Issue 6."""
import math

import numpy as np
import pytest

from pose_models.metrics import coco_ap, keypoint_report, pck, sanitise_areas
from syrip_gen.coco import CATEGORY

SIGMAS_INDEPENDENT = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62,
                               1.07, 1.07, .87, .87, .89, .89]) / 10.0


def _gt(n=4):
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(1, n + 1):
        kps = np.c_[rng.uniform(50, 150, (17, 2)), np.full(17, 2.0)]
        kps[3, 2] = 0  # one unlabelled joint: must be ignored by OKS
        images.append({"id": i, "width": 200, "height": 200, "file_name": f"{i}.jpg",
                       "posture": ["Supine", "Prone"][i % 2]})
        anns.append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "bbox": [40, 40, 120, 120],
                     "area": 120 * 120 * 0.5, "num_keypoints": 16, "keypoints": kps.reshape(-1).tolist()})
    return {"images": images, "annotations": anns, "categories": [CATEGORY]}


def _results(gt, offset_for_oks=None):
    out = []
    for ann in gt["annotations"]:
        kps = np.asarray(ann["keypoints"]).reshape(17, 3).copy()
        if offset_for_oks is not None:
            # per-joint shift d with exp(-d^2 / (2 area (2 sigma)^2)) == target OKS
            d = np.sqrt(-2 * ann["area"] * (2 * SIGMAS_INDEPENDENT) ** 2 * math.log(offset_for_oks))
            kps[:, 0] += d
        kps[:, 2] = 1
        out.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kps.reshape(-1).tolist(),
                    "score": 0.9})
    return out


def test_ground_truth_gives_ap_one():
    gt = _gt()
    stats = coco_ap(gt, _results(gt))
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)


def test_known_offset_gives_known_ap():
    gt = _gt()
    oks = 0.72  # passes thresholds 0.50 .. 0.70 (5 of the 10), fails 0.75 .. 0.95
    expected_ap = np.mean([oks >= t for t in np.linspace(0.5, 0.95, 10)])
    assert expected_ap == 0.5
    stats = coco_ap(gt, _results(gt, oks))
    assert stats["AP"] == pytest.approx(expected_ap)
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP75"] == pytest.approx(0.0)


def test_implausible_areas_are_reset_and_counted():
    gt = _gt()
    gt["annotations"][0]["area"] = 1e6   # larger than the image
    gt["annotations"][1]["area"] = 20000  # larger than the box (14400)
    fixed, n = sanitise_areas(gt)
    assert n == 2
    assert fixed["annotations"][0]["area"] == 120 * 120 and fixed["annotations"][2]["area"] == 7200
    assert gt["annotations"][0]["area"] == 1e6  # input untouched


def test_pck_uses_box_diagonal_and_report_breaks_down():
    gt = _gt()
    kps = np.stack([np.asarray(a["keypoints"]).reshape(17, 3) for a in gt["annotations"]])
    boxes = np.array([a["bbox"] for a in gt["annotations"]], float)
    diag = math.hypot(120, 120)
    pred = kps[..., :2] + [0.07 * diag, 0]  # within 0.1 x diagonal, outside 0.05
    p = pck(pred, kps, boxes, 0.1)
    assert np.isnan(p[:, 3]).all() and np.nanmean(p) == 1.0
    assert np.nanmean(pck(pred, kps, boxes, 0.05)) == 0.0
    rep = keypoint_report(gt, _results(gt), kps[..., :2], kps, boxes, ["supine", "prone", "supine", "prone"])
    assert rep["oks"]["AP"] == pytest.approx(1.0) and rep["pck@0.1"] == 1.0
    assert set(rep["per_posture"]) == {"supine", "prone"} and rep["per_posture"]["prone"]["AP"] == pytest.approx(1.0)
    assert rep["per_joint"]["left_ear"]["pck@0.1"] is None  # never labelled


def test_normalised_errors_divide_by_the_box_diagonal_and_skip_unlabelled():
    from pose_models.metrics import normalised_errors

    gt = np.zeros((1, 17, 3))
    gt[0, :, 2] = 2
    gt[0, 3, 2] = 0
    pred = np.zeros((1, 17, 2))
    pred[0, :, 0] = 3.0
    pred[0, :, 1] = 4.0  # 5 px from every label
    err = normalised_errors(pred, gt, np.array([[0.0, 0.0, 30.0, 40.0]]))  # diagonal 50
    assert err.shape == (1, 17) and np.isnan(err[0, 3])
    assert np.allclose(np.delete(err[0], 3), 0.1)
