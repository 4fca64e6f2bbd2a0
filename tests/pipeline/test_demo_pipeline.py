"""The README's main job, reduced: pipelines/demo.yaml --profile toy end to end on the CPU (fit, render, filter,
stats, a clip and predict on it with the shipped models), then a no-op rerun.

Issue 7."""
import csv
import json
from pathlib import Path

from syrip_gen import pipeline
from syrip_gen.paths import PIPELINES


def test_reduced_demo_spec_end_to_end(tmp_path):
    spec = pipeline.load_spec(PIPELINES / "demo.yaml", out=tmp_path / "demo", profile="toy")
    records = pipeline.run(spec, echo=lambda s: None)
    assert [r["status"] for r in records] == ["ran"] * 6
    out = spec.out
    fits = [json.loads(line) for line in (out / "fit" / "fits.jsonl").read_text().splitlines()]
    assert len(fits) == 4 and sum(f["status"] == "ok" for f in fits) >= 3
    coco = json.loads(next((out / "render" / "annotations").glob("*_infant.json")).read_text())
    assert 3 <= len(coco["images"]) <= 4 and all(im["is_synthetic"] for im in coco["images"])
    assert (out / "render" / "contact_sheet.jpg").stat().st_size > 1000
    # the filtered file holds exactly the images the gates accepted, each at a path that exists
    filtered = json.loads((out / "filter" / "filtered.json").read_text())
    kept = json.loads(Path(filtered["coco"]).read_text())
    report = json.loads((out / "filter" / "report.json").read_text())
    accepted = {v["image_id"] for v in report["images"] if v["verdict"] == "accept"}
    assert filtered["n_images"] == len(coco["images"]) and filtered["n_kept"] == len(kept["images"]) >= 1
    assert {im["id"] for im in kept["images"]} == accepted
    assert all(Path(im["file_name"]).is_file() for im in kept["images"])
    assert {a["image_id"] for a in kept["annotations"]} == accepted
    assert (out / "stats" / "stats.json").exists()
    # the main job ends by predicting on a rendered clip with the shipped models (issue 31 item 6)
    clip = next((out / "clip" / "videos").glob("*.mp4"))
    rows = list(csv.DictReader((out / "predict" / f"{clip.stem}.csv").open()))
    assert rows and all(float(r["nose_x"]) >= 0 for r in rows[:3])
    for suffix in ("_overlay.mp4", "_skeleton.mp4", "_movement.json"):
        assert (out / "predict" / f"{clip.stem}{suffix}").stat().st_size > 0
    summary = json.loads((out / "predict" / "step.json").read_text())["summary"]
    assert summary["models"] == {"detector": "infant-detector", "pose2d": "infant-pose2d"} and summary["videos"] == 1
    again = pipeline.run(pipeline.load_spec(PIPELINES / "demo.yaml", out=tmp_path / "demo", profile="toy"),
                         echo=lambda s: None)
    assert [r["status"] for r in again] == ["skipped"] * 6
