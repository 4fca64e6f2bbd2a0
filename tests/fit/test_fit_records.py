"""fits.py's FitRecord: the JSON line round-trips, and records written before the schema had a
``version`` (version 0) are read through the one migration function. Issue 33 (typed records)."""
import json
import logging

import numpy as np
import pytest

from syrip_gen.errors import UserError
from syrip_gen.fits import (FIT_RECORD_VERSION, FitRecord, append_fits, fitted_record, migrate_fit_record,
                            read_records, rejected_record, usable_fits)

# a record as `syrip-gen fit` wrote it before the schema version (no "version" key)
OLD = {"id": "a1", "image_id": 7, "file_name": "x.jpg", "width": 640, "height": 480, "source": "in.json",
       "posture": None, "keypoints_2d": [[1.0, 2.0, 2.0]] * 17, "status": "ok", "body": "anny",
       "pose": [[0.0, 0.0, 0.0]] * 24, "shape": [0.0] * 11, "age_months": 6.0,
       "camera": {"fx": 600.0, "fy": 600.0, "cx": 320.0, "cy": 240.0, "R": np.diag([1.0, -1, -1]).tolist(),
                  "t": [0.0, 0.0, 1.2]},
       "keypoints_3d": [[0.0, 0.0, 1.0]] * 17, "mean_error_norm": 0.01, "hypothesis": "supine",
       "some_later_key": {"kept": True}}


def test_an_old_record_migrates_to_the_current_version_with_the_same_keys():
    rec = FitRecord.from_json(OLD)
    assert rec.version == FIT_RECORD_VERSION and rec.ok and rec.body == "anny" and rec.posture is None
    assert rec.camera["fx"] == 600.0 and rec.extra == {"some_later_key": {"kept": True}}
    assert rec.to_json() == {**OLD, "version": FIT_RECORD_VERSION}  # null posture kept, nothing else added
    assert migrate_fit_record(rec.to_json()) == rec.to_json()


def test_a_record_from_a_newer_syrip_gen_is_a_one_line_error():
    with pytest.raises(UserError, match="schema version 99"):
        FitRecord.from_json({**OLD, "version": 99})


def test_old_fits_files_read_with_one_warning_and_stay_usable(tmp_path, caplog):
    path = tmp_path / "fits.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (OLD, {**OLD, "id": "a2"}, {"id": "b", "status": "rejected: x"})))
    with caplog.at_level(logging.WARNING):
        recs = read_records(path)
    assert [r.id for r in recs] == ["a1", "a2", "b"] and not recs[2].ok
    assert sum("without a schema version" in m for m in caplog.messages) == 1
    usable, skipped = usable_fits(path, 11)
    assert [r.id for r in usable] == ["a1", "a2"] and skipped == {"fit not ok": 1}
    assert all(isinstance(r, FitRecord) and "_index" not in r.to_json() for r in usable)


def test_the_writer_records_status_errors_and_version(tmp_path):
    inputs = {k: OLD[k] for k in ("id", "image_id", "file_name", "width", "height", "source", "posture",
                                  "keypoints_2d")}
    vis = np.array([True, False, True])
    good = fitted_record(inputs, vis, np.array([2.0, 9.0, 4.0]), np.array([0.01, 0.5, 0.03]), 0.05, body="anny",
                         seed=0)
    bad = fitted_record({**inputs, "id": "a2"}, vis, np.zeros(3), np.array([0.1, 0.0, 0.1]), 0.05, body="anny")
    none = rejected_record({**inputs, "id": "a3"}, "rejected: only 3 labelled keypoints (need 6)")
    assert good.ok and good.mean_error_norm == pytest.approx(0.02) and good.reproj_error_px == [2.0, None, 4.0]
    assert bad.status.startswith("rejected: mean reprojection error 10.0%")
    assert none.to_json() == {**inputs, "id": "a3", "status": none.status, "version": FIT_RECORD_VERSION}
    append_fits(tmp_path / "fits.jsonl", [good, bad, none])
    back = [json.loads(line) for line in (tmp_path / "fits.jsonl").read_text().splitlines()]
    assert back == [r.to_json() for r in (good, bad, none)] and back[0]["posture"] is None
