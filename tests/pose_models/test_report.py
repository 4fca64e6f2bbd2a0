"""The benchmark report: baseline scored like our models, missing runs shown as missing.

Issue 7."""
import json

import numpy as np

from syrip_gen.coco import write_coco
from pose_models.report import ReportConfig, score_mediapipe, write_report


def _tiny_test_set(tmp_path, n=4):
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(n):
        kps = np.c_[rng.uniform(20, 180, (17, 2)), np.full(17, 2.0)]
        x0, y0 = kps[:, :2].min(0)
        x1, y1 = kps[:, :2].max(0)
        images.append({"id": i + 1, "file_name": f"{i}.jpg", "width": 200, "height": 200,
                       "posture": "Supine" if i % 2 else "Prone"})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "keypoints": kps.flatten().tolist(),
                     "num_keypoints": 17, "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0)})
    path = tmp_path / "test" / "annotations" / "person_keypoints_test_infant.json"
    write_coco(path, images, anns)
    return path, anns


def test_baseline_scored_like_our_models(tmp_path):
    path, anns = _tiny_test_set(tmp_path)
    preds = tmp_path / "mp.json"
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in anns[:3]]  # one person missed
    preds.write_text(json.dumps({"results": results, "missed": 1, "model": "m"}))
    m = score_mediapipe(preds, path)
    assert abs(m["oks"]["AP"] - 76 / 101) < 1e-6  # precision 1 up to recall 0.75 on COCO's 101 points
    assert m["pck@0.1"] == 0.75  # 3 of 4 people perfect, the missed one wrong everywhere


def test_report_marks_missing_runs_and_gives_seeds_mean_and_spread(tmp_path):
    path, anns = _tiny_test_set(tmp_path)
    abl = tmp_path / "ablation"
    for step, ap in (("eval_real_s0", 0.5), ("eval_real_s1", 0.3)):
        (abl / step).mkdir(parents=True)
        metrics = {"oks": {"AP": ap, "AP50": 0.6, "AR": 0.55}, "pck@0.05": 0.4, "pck@0.1": 0.7,
                   "per_posture": {"supine": {"AP": 0.45}}}
        (abl / step / "metrics.json").write_text(json.dumps(metrics))
    md = write_report(ReportConfig(results_dir=tmp_path / "none", ablation_dir=abl, test_set=path,
                                   out_dir=tmp_path / "out")).read_text()
    assert ("| real only, fine-tuning budget | 2 | 0.400 ± 0.100 | 0.600 ± 0.000 | 0.550 ± 0.000 | "
            "0.700 ± 0.000 | 0.450 |") in md
    assert "| synthetic → real | not run |" in md
    assert "Goal check: the headline or the control row did not run." in md


def test_report_gives_the_goal_check_chain_and_learning_curves(tmp_path):
    abl = tmp_path / "ablation"

    def put(step, name, obj):
        (abl / step).mkdir(parents=True, exist_ok=True)
        (abl / step / name).write_text(json.dumps(obj))

    def m(ap):
        return {"oks": {"AP": ap, "AP50": 0.9, "AR": 0.6}, "pck@0.1": 0.8, "per_posture": {}}

    put("eval_finetune_s0", "metrics.json", m(0.60))
    put("eval_finetune_s1", "metrics.json", m(0.56))
    put("eval_real_long", "metrics.json", m(0.40))
    put("eval_detector", "metrics.json", {"bbox": {"AP": 0.71}})
    put("eval_finetune_s0_detboxes", "metrics.json", m(0.50))
    put("eval_lifter", "metrics.json", {"mpjpe_mm": 41.25, "pa_mpjpe_mm": 30.0})
    put("curve_pretrain", "curve.json", [{"step": 1000, "crops": 32000, "AP": 0.1, "AP50": 0.3, "pck@0.1": 0.4},
                                         {"step": 2000, "crops": 64000, "AP": 0.2, "AP50": 0.4, "pck@0.1": 0.5}])
    put("renders_10pc", "step.json", {"summary": {"n_images": 100}})
    put("eval_pretrain_10pc", "metrics.json", m(0.05))
    put("filter", "step.json", {"summary": {"n_kept": 1000}})
    put("eval_pretrain_100pc", "metrics.json", m(0.12))
    out = tmp_path / "out"
    md = write_report(ReportConfig(results_dir=tmp_path / "none", ablation_dir=abl, test_set=tmp_path / "no",
                                   out_dir=out)).read_text()
    assert "synthetic → real 0.580, control 0.400, gain +0.180 — **met**" in md
    assert "| 0.710 | 0.500 | 41.2 | 30.0 |" in md
    assert "| 2000 | 64000 | 0.200 | 0.400 | 0.500 |" in md
    assert "| 100 | 0.050 | 0.900 | 0.800 |" in md and "| 1000 | 0.120 |" in md
    assert (out / "report_curves.png").exists() and (out / "report_ablation.png").exists()
    rep = json.loads((out / "report.json").read_text())["ablation"]
    assert rep["rows"]["synthetic → real"]["n"] == 2 and len(rep["curve_pretraining"]) == 2


def test_report_gathers_speed_fit_errors_and_coverage(tmp_path):
    abl = tmp_path / "ablation"
    (abl / "fit").mkdir(parents=True)
    errs = [0.01, 0.02, 0.03, 0.08]
    (abl / "fit" / "fits.jsonl").write_text("".join(json.dumps({"id": str(i), "mean_error_norm": e}) + "\n"
                                                    for i, e in enumerate(errs)))
    (abl / "fit" / "step.json").write_text(json.dumps({"summary": {"fits_per_second": 2.0}}))
    (abl / "render").mkdir()
    (abl / "render" / "step.json").write_text(json.dumps({"summary": {"images_per_s": 12.5}}))
    (abl / "train_real").mkdir()
    (abl / "train_real" / "step.json").write_text(json.dumps(
        {"kind": "train", "config": {"max_steps": 10, "batch_size": 4}, "seconds": 8.0}))
    (abl / "stats").mkdir()
    cov = {"tau": 0.25, "coverage": 0.5, "precision": 0.25, "coverage_at": {"0.25": 0.5}, "n_other_poses": 4,
           "n_dataset_poses": 8, "median_nn_other_to_dataset": 0.3}
    (abl / "stats" / "stats.json").write_text(json.dumps({"coverage": cov}))
    out = tmp_path / "out"
    md = write_report(ReportConfig(results_dir=tmp_path / "none", ablation_dir=abl, test_set=tmp_path / "no",
                                   out_dir=out)).read_text()
    assert "| fit, the ablation run's `fit` step | 2.0 | fits/s |" in md
    assert "| render 640x480, the ablation run's `render` step | 12.5 | images/s |" in md
    assert "| train, the ablation run's `train_real` | 5.0 | crops/s |" in md
    assert "median 2.50 %" in md and "75.0% within 5 %" in md and (out / "report_fit_errors.png").exists()
    assert "**0.500**" in md


def test_report_carries_real_pose_and_3d_results(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    pr = {"settings": {"photo_view": {"images": 196, "knn_filtered": {"precision": 0.791, "recall": 0.747},
                                      "ceiling": {"precision": 0.843, "recall": 0.889},
                                      "filter": {"rejected_share": 0.071, "failed_share": {"fit_error": 0.041}}}}}
    (res / "poses_real.json").write_text(json.dumps(pr))
    f3 = {"splits": {"validate100": {"fit": {"mean": 0.534}, "average_pose": {"mean": 0.52},
                                     "zero_depth_2d": {"mean": 0.608}, "lifter": {"n": 99, "limb_error_mean": 0.61}}}}
    (res / "fit3d.json").write_text(json.dumps(f3))
    md = write_report(ReportConfig(results_dir=res, ablation_dir=tmp_path / "none", test_set=tmp_path / "no",
                                   out_dir=tmp_path / "out")).read_text()
    assert "precision **0.791**, recall **0.747**" in md and "ceiling 0.843 / 0.889" in md
    assert "fits **0.534**, lifter from GT 2D 0.610, average pose 0.520, zero depth 0.608" in md


def test_report_reads_mediapipe_from_the_run_folder_and_says_when_it_is_absent(tmp_path):
    """Predictions on the research-only photos live in a run folder (issue 20), not in
    benchmarks/results; without them the report says so and how to make them."""
    assert ReportConfig().mediapipe_predictions.parts[0] == "runs"
    path, anns = _tiny_test_set(tmp_path)
    preds = tmp_path / "runs" / "mediapipe" / "validate100.json"

    def report(**kw):
        return write_report(ReportConfig(results_dir=tmp_path / "none", ablation_dir=tmp_path / "none",
                                         out_dir=tmp_path / "out", mediapipe_predictions=preds, **kw)).read_text()

    md = report(test_set=path)
    assert f"MediaPipe Pose: not scored, no predictions at `{preds}`" in md
    assert f"benchmarks/baselines/mediapipe_predict.py {path} --out {preds}" in md
    assert f"MediaPipe Pose: not scored, the real test set is not at `{tmp_path / 'no'}`" in report(test_set=tmp_path / "no")
    preds.parent.mkdir(parents=True)
    preds.write_text(json.dumps({"results": [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
                                              "score": 1.0} for a in anns], "missed": 0, "model": "mp 1",
                                 "protocol": "GT box crop"}))
    md = report(test_set=path)
    assert f"MediaPipe Pose: mp 1, GT box crop, predictions from `{preds}`." in md
    assert "| MediaPipe Pose (adult, off the shelf" in md


def test_mediapipe_predictions_stay_out_of_the_repository(tmp_path):
    """The predict script refuses an --out in the repository (runs/ aside), and no committed
    benchmark result holds per-image predictions."""
    import importlib.util
    from pathlib import Path

    import pytest

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("mediapipe_predict", root / "benchmarks/baselines/mediapipe_predict.py")
    mp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mp)
    with pytest.raises(SystemExit, match="stay out of the repository"):
        mp.check_out(root / "benchmarks" / "results" / "mediapipe_validate100.json")
    assert mp.check_out(root / "runs" / "mediapipe" / "validate100.json") == root / "runs" / "mediapipe" / "validate100.json"
    assert mp.check_out(tmp_path / "p.json") == (tmp_path / "p.json").resolve()
    for f in sorted((root / "benchmarks" / "results").glob("*.json")):
        text = f.read_text()
        assert '"image_id"' not in text and "mediapipe_validate100" not in f.name, f


def test_report_carries_the_shipped_models_rows_and_says_when_they_are_absent(tmp_path):
    """The shipped-model gain table (benchmarks/shipped_gain.py) is one section of the report."""
    res = tmp_path / "results"
    res.mkdir()
    out = tmp_path / "out"
    md = write_report(ReportConfig(results_dir=res, ablation_dir=tmp_path / "none", test_set=tmp_path / "no",
                                   out_dir=out)).read_text()
    assert "No shipped-model results (benchmarks/shipped_gain.py)." in md
    rows = [{"row": "shipped, zero-shot", "AP": 0.101, "AP50": 0.362, "pck@0.1": 0.504, "cpu_min": 0.0},
            {"row": "shipped -> real, seed 0", "AP": 0.425, "AP50": 0.82, "pck@0.1": 0.787, "cpu_min": 11.0}]
    (res / "shipped_gain.json").write_text(json.dumps({"rows": rows, "mediapipe_AP": 0.624, "date": "d",
                                                        "commit": "c", "hardware": "h", "notes": ["gain +0.24"]}))
    md = write_report(ReportConfig(results_dir=res, ablation_dir=tmp_path / "none", test_set=tmp_path / "no",
                                   out_dir=out)).read_text()
    assert "| shipped -> real, seed 0 | 0.425 | 0.820 | 0.787 | 11.0 |" in md
    assert "| shipped, zero-shot | 0.101 | 0.362 | 0.504 | 0.0 |" in md and "- gain +0.24" in md
