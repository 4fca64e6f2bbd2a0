"""annotate.py's record side: one provenance builder for stills and clip frames, the annotation as
the gates read it (SyntheticAnnotation), the one migration of old provenance key names; and the
run.json schema version (runfolder.migrate_run). Issue 33 (typed records)."""
import json
import logging
from types import SimpleNamespace

import pytest

from syrip_gen.annotate import SyntheticAnnotation, migrate_provenance, provenance_blocks, read_annotations
from syrip_gen.runfolder import RUN_VERSION, claim, migrate_run, record

ANN = {"id": 3, "image_id": 3, "keypoints": [1.0, 2.0, 2] * 17, "bbox": [0, 0, 5, 5], "posture": "supine",
       "track_id": 1, "keypoints_3d": [[0.0, 0.0, 1.0]] * 17,
       "body": {"model": "anny", "pose": [[0.0] * 3] * 24, "shape": [0.1] * 3, "age_months": 4.0},
       "contact": {"part": "back", "gap_m": 0.0, "margin_m": 0.02}, "provenance": {"fit_id": "f7", "seed": [1, 2]}}


def test_an_annotation_reads_as_fields():
    a = SyntheticAnnotation.from_json(ANN)
    assert a.fit_id == "f7" and a.track_id == 1 and a.body_model == "anny" and a.pose.shape == (24, 3)
    assert a.keypoints.shape == (17, 3) and a.contact["margin_m"] == 0.02
    real = SyntheticAnnotation.from_json({"image_id": 1, "keypoints": [0] * 51})  # a real annotation
    assert real.fit_id is None and real.pose is None and real.track_id is None and real.contact is None


@pytest.mark.parametrize("old", ["source_fit_id", "source_fit", "fit"])
def test_old_provenance_key_names_are_read_as_fit_id_with_one_warning(old, caplog):
    prov = {old: 12, "seed": [0, 1]}
    assert migrate_provenance(prov) == ({"fit_id": 12, "seed": [0, 1]}, True)
    assert migrate_provenance({"fit_id": "a", old: "b"}) == ({"fit_id": "a", old: "b"}, False)
    assert migrate_provenance(None) == ({}, False)
    with caplog.at_level(logging.WARNING):
        anns = read_annotations([{**ANN, "provenance": prov}, {**ANN, "provenance": prov}], "x.json")
    assert [a.fit_id for a in anns] == ["12", "12"]
    assert sum("old provenance key" in m for m in caplog.messages) == 1


def test_one_provenance_builder_for_stills_and_clip_frames():
    spec = SimpleNamespace(lighting=SimpleNamespace(lights=[{"kind": "key"}], ambient=0.3, shadows=True), seed=(5, 6),
                           bodies=[SimpleNamespace(fit_id="a"), SimpleNamespace(fit_id="b")],
                           to_json=lambda: {"spec": 1})
    rendered = SimpleNamespace(provenance={"texture": {"kind": "scene"}, "background": {"kind": "flat"}},
                               textures=[{"kind": "t0"}])
    src = SimpleNamespace(source_image_id=9, source_file="p.jpg")
    still = provenance_blocks(rendered, spec, [src, None], "prior")
    assert still[0] == {"fit_id": "a", "source_image_id": 9, "source_file": "p.jpg", "texture": {"kind": "t0"},
                        "background": {"kind": "flat"}, "lights": [{"kind": "key"}], "ambient": 0.3,
                        "shadows": True, "seed": [5, 6], "pose_check": "prior", "spec": {"spec": 1}}
    assert still[1]["texture"] == {"kind": "scene"} and still[1]["source_file"] is None
    frame = provenance_blocks(rendered, spec, [src, src], "prior", with_spec=False, clips=[{"name": "c"}] * 2)
    assert "spec" not in frame[0] and frame[1]["clip"] == {"name": "c"}


def test_run_json_carries_its_version_and_old_ones_still_claim(tmp_path):
    record(tmp_path / "a", "k1", "fit")
    assert json.loads((tmp_path / "a" / "run.json").read_text()) == {"run_key": "k1", "command": "fit",
                                                                       "version": RUN_VERSION}
    assert claim(tmp_path / "a", "k1", False, "fit") is None
    assert migrate_run({"run_key": "k"}) == {"run_key": "k", "command": "render", "version": RUN_VERSION}
    old = tmp_path / "b"
    old.mkdir()
    (old / "run.json").write_text(json.dumps({"run_key": "k0"}))  # a render folder from before the field
    (old / "x.jpg").write_bytes(b"")
    with pytest.raises(Exception, match="holds a `syrip-gen render` run"):
        claim(old, "k1", False, "fit")


def test_the_coco_info_carries_the_annotation_schema_version(tmp_path):
    """Render and sequence write ``info.schema_version``; files without it (real data, older
    renders) read as version 0; a newer version is a one-line error before any annotation is read."""
    from syrip_gen.annotate import ANNOTATION_VERSION, annotation_version, read_synthetic, synthetic_info
    from syrip_gen.coco import load_coco, write_coco
    from syrip_gen.errors import UserError

    info = synthetic_info("renders", run_key="k")
    assert info == {"description": "renders", "schema_version": ANNOTATION_VERSION, "run_key": "k"}
    assert annotation_version(None) == 0 and annotation_version({"description": "real"}) == 0
    images = [{"id": 3, "file_name": "a.jpg", "width": 8, "height": 8}]
    for version, ok in ((None, True), (ANNOTATION_VERSION, True), (ANNOTATION_VERSION + 1, False), ("1", False)):
        path = tmp_path / f"v{version}.json"
        write_coco(path, images, [ANN], info={} if version is None else {"schema_version": version})
        if ok:
            assert [a.fit_id for a in read_synthetic(load_coco(path))] == ["f7"]
        else:
            with pytest.raises(UserError, match=r"annotation schema_version .*reads versions 0-1") as err:
                read_synthetic(load_coco(path))
            assert "\n" not in str(err.value)
