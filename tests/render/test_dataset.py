"""dataset.py: sharded, resumable, deterministic render runs merged into one COCO file.

Runs use a numpy stand-in for the GL renderer (``FakeMaker``) so they stay fast; the real
renderer is exercised end to end in test_render_data.py.

Issue 4."""
import json
from dataclasses import replace

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from helpers.render_data import use_fake_maker, write_fits

from syrip_gen.render.image.config import RenderConfig
from syrip_gen.config import RunConfig

from syrip_gen.render.run import render_dataset
from syrip_gen.errors import UserError

CFG = RenderConfig(variants=3, width=160, height=120, run=RunConfig(workers=1), shard_size=2, seed=7)


@pytest.fixture
def fits(anny_body, tmp_path):
    return write_fits(anny_body, tmp_path / "fits" / "fits.jsonl", n=2)


def _snapshot(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "run.json"}


def test_sample_run_annotations_are_consistent(fits, tmp_path, monkeypatch):
    use_fake_maker(monkeypatch)
    out = tmp_path / "ds"
    s = render_dataset(fits, out, CFG)
    assert s.images == 6 and s.shards == 3 and s.fits_used == 2 and s.fits_skipped == {"fit not ok": 1}
    coco = COCO(s.annotation_path)
    assert len(coco.getImgIds()) == 6
    for ann in coco.dataset["annotations"]:
        img = coco.imgs[ann["image_id"]]
        assert img["is_synthetic"] is True and (out / "images" / img["file_name"]).is_file()
        rle = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}
        mask = mask_utils.decode(rle).astype(bool)
        ys, xs = np.nonzero(mask)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert ann["area"] == mask.sum()
        kp = np.array(ann["keypoints"], float).reshape(17, 3)
        K = np.array(img["camera"]["K"])
        p3 = np.array(ann["keypoints_3d"])
        uv = np.stack([K[0, 0] * p3[:, 0] / p3[:, 2] + K[0, 2], K[1, 1] * p3[:, 1] / p3[:, 2] + K[1, 2]], 1)
        assert np.abs(uv - kp[:, :2]).max() < 0.01
        vis = kp[:, 2] == 2
        assert vis.sum() >= 5
        px = np.floor(kp[vis, :2] + 0.5).astype(int)
        assert mask[px[:, 1], px[:, 0]].all()  # every visible keypoint lies on the body's mask
        assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum())
        assert ann["provenance"]["fit_id"] in ("ann0", "ann1")
        assert ann["posture"] in ("supine", "prone", "side", "sitting", "standing")
    # ids / names from (fit index, variant index)
    assert sorted(coco.getImgIds()) == [1, 2, 3, 10001, 10002, 10003]
    assert coco.imgs[10002]["file_name"] == "000001_0001.jpg"
    # loadRes-style use: predictions = ground truth, COCO eval gives AP 1
    from pycocotools.cocoeval import COCOeval

    res = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
           for a in coco.dataset["annotations"]]
    ev = COCOeval(coco, coco.loadRes(res), "keypoints")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    assert ev.stats[0] > 0.99
    assert (out / "contact_sheet.jpg").stat().st_size > 0


def test_killed_run_resumes_to_the_same_bytes(fits, tmp_path, monkeypatch):
    use_fake_maker(monkeypatch)
    clean = tmp_path / "clean"
    render_dataset(fits, clean, CFG)

    def kill(shard):
        if shard == 1:
            raise KeyboardInterrupt

    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        render_dataset(fits, killed, CFG, on_shard_done=kill)
    assert (killed / "shards/00001/shard.json").exists() and not (killed / "shards/00002").exists()
    # a half-written shard (images, no manifest) is redone
    (killed / "shards/00002").mkdir()
    (killed / "shards/00002/000001_0001.jpg").write_bytes(b"half")
    s = render_dataset(fits, killed, CFG)
    assert s.shards_resumed == 2
    assert _snapshot(killed) == _snapshot(clean)


def test_other_run_refused_unless_forced(fits, tmp_path, monkeypatch):
    use_fake_maker(monkeypatch)
    out = tmp_path / "ds"
    render_dataset(fits, out, CFG)
    other = replace(CFG, seed=8)
    with pytest.raises(UserError, match="different render run"):
        render_dataset(fits, out, other)
    s = render_dataset(fits, out, replace(other, run=replace(other.run, force=True)))
    assert s.shards_resumed == 0 and s.images == 6
    assert json.loads((out / "run.json").read_text())["run_key"] == s.run_key


def test_bad_fits_inputs(anny_body, tmp_path, monkeypatch):
    use_fake_maker(monkeypatch)
    with pytest.raises(UserError, match="no fits file"):
        render_dataset(tmp_path / "nowhere", tmp_path / "o1", CFG)
    empty = tmp_path / "empty" / "fits.jsonl"
    empty.parent.mkdir()
    empty.write_text("\n")
    with pytest.raises(UserError, match="empty"):
        render_dataset(empty.parent, tmp_path / "o2", CFG)
    bad = tmp_path / "bad" / "fits.jsonl"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"id": "x", "status": "rejected: no keypoints"}) + "\n")
    with pytest.raises(UserError, match="every fit was rejected"):
        render_dataset(bad, tmp_path / "o3", CFG)


def test_dask_backend_matches_joblib(fits, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    use_fake_maker(monkeypatch)
    a = render_dataset(fits, tmp_path / "a", CFG)
    b = render_dataset(fits, tmp_path / "b", replace(CFG, run=RunConfig(backend="dask", workers=1)))
    assert a.run_key == b.run_key
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_real_renderer_run_is_deterministic_and_resumes_to_the_same_bytes(anny_body, fits, tmp_path, monkeypatch):
    """The real image maker (GL, procedural appearance, sensor, JPEG): a killed run resumes
    to the same bytes, and the provenance says what was drawn."""
    import syrip_gen.body as body_module
    import syrip_gen.render.run as ds

    try:
        from syrip_gen.render.pixels.renderer import Renderer

        Renderer(CFG.width, CFG.height, anny_body.topology())
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"no EGL renderer here: {err}")
    monkeypatch.setattr(body_module, "load_body", lambda name="anny", path=None, **kw: anny_body)
    monkeypatch.setattr(ds, "code_version", lambda kind=None: "test-code")
    from syrip_gen.render.image.worker import _STATE

    _STATE.clear()
    cfg = replace(CFG, variants=2, texture_size=64, support_texels_per_m=128, shadows=0.5, contact_sheet=False)
    clean = render_dataset(fits, tmp_path / "clean", cfg)
    assert clean.images == 4 and set(clean.stage_seconds) >= {"GL render + support + composite", "jpeg", "annotate"}

    def kill(shard):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_dataset(fits, tmp_path / "killed", cfg, on_shard_done=kill)
    resumed = render_dataset(fits, tmp_path / "killed", cfg)
    assert resumed.shards_resumed == 1
    assert _snapshot(tmp_path / "killed") == _snapshot(tmp_path / "clean")
    coco = json.loads(open(clean.annotation_path).read())
    for ann in coco["annotations"]:
        p = ann["provenance"]
        assert p["texture"]["kind"] == "procedural" and "tile_m" in p["support"]
        assert 60 <= p["sensor"]["jpeg_quality"] <= 95 and p["seed"][0] == cfg.seed
        assert 1 <= len(p["lights"]) <= 4 and isinstance(p["shadows"], bool)
        assert not any("fallback" in json.dumps(p[k]) for k in ("texture", "background", "support"))


def test_filter_finds_the_fits_from_the_render_alone(fits, tmp_path, monkeypatch):
    """The render records its fits file in the COCO ``info`` (relative to the dataset), so the
    filter's fit-error gate needs no ``--fits``, also after the dataset and fits move together."""
    import shutil

    from syrip_gen.filter import FilterConfig, filter_dataset

    use_fake_maker(monkeypatch)
    s = render_dataset(fits, tmp_path / "ds", replace(CFG, variants=1, contact_sheet=False))
    assert json.loads(open(s.annotation_path).read())["info"]["fits"] == "../fits/fits.jsonl"
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for sub in ("ds", "fits"):
        shutil.move(str(tmp_path / sub), str(moved / sub))
    report = filter_dataset(moved / "ds", FilterConfig(gates=("fit_error",)))
    # found and matched by fit id (these test fits carry no error): not "no fits file"
    assert report.skipped["fit_error"] == {"fit has no mean_error_norm": s.images}
