"""A user's SMIL/SMPL body (no UV layout) renders end to end: flat-skin texture, full annotations.

Issue 4."""
import json

import torch
from test_body_smpl import FACE_IDS, tiny_model, write_chumpy_pickle
from helpers.render_data import write_fits

import syrip_gen.body as body_pkg
from syrip_gen.body import BodyConfig
from syrip_gen.body.smpl_body import SmplBody
from syrip_gen.render.image.config import RenderConfig
from syrip_gen.config import RunConfig
from syrip_gen.render.run import render_dataset


def test_render_smpl_body_without_uvs(tmp_path, monkeypatch):
    write_chumpy_pickle(tiny_model(), tmp_path / "tiny.pkl")
    body = SmplBody.from_file(tmp_path / "tiny.pkl", kind="smil", face_vertex_ids=FACE_IDS)
    assert len(body.topology().uvs) == 0
    seen = []

    def fake_load_body(name="anny", path=None, device="cpu", keypoints=None):
        seen.append((name, str(path)))
        return body

    monkeypatch.setattr(body_pkg, "load_body", fake_load_body)
    fits = write_fits(body, tmp_path / "fits" / "fits.jsonl", n=2)
    torch.manual_seed(0)
    cfg = RenderConfig(variants=1, width=96, height=72, run=RunConfig(workers=1),
                       body=BodyConfig("smil", str(tmp_path / "tiny.pkl")), texture_size=64, contact_sheet=False)
    summary = render_dataset(fits, tmp_path / "ds", cfg)
    assert seen and all(s == ("smil", str(tmp_path / "tiny.pkl")) for s in seen)
    coco = json.loads(next((tmp_path / "ds" / "annotations").glob("*.json")).read_text())
    assert len(coco["images"]) == summary.images >= 1
    for a in coco["annotations"]:  # num_keypoints counts the labelled ones (v > 0)
        assert a["area"] > 0 and a["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3]) > 0
