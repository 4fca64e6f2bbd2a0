"""`render --photo-textures` end to end: a fit with a photo wears its baked texture, a fit
without one is rendered procedurally and counted; a rerun reuses the baked texture.

Issue 13."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from syrip_gen.config import RunConfig


@pytest.fixture
def fits_with_one_photo(anny_body, tmp_path):
    """Two fits (helpers.render_data.write_fits); the first gets a 'photo': its fitted
    body rendered flat-lit in a known colour on a grey floor, at the fit camera."""
    import cv2
    from helpers.render_data import write_fits

    from syrip_gen.geometry import Camera
    from syrip_gen.render.pixels.renderer import Renderer
    from syrip_gen.render.world.scene import BodyMesh, Scene

    path = write_fits(anny_body, tmp_path / "fits" / "fits.jsonl", n=2, extra_bad=False)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    r = records[0]
    with torch.no_grad():
        v = anny_body(torch.tensor([r["pose"]]), torch.tensor([r["shape"]]), with_vertices=True).vertices[0].double().numpy()
    cam = r["camera"]
    verts_cam = v @ np.asarray(cam["R"]).T + np.asarray(cam["t"])
    K = np.array([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1.0]])
    texture = np.zeros((64, 64, 3), np.uint8)
    texture[:] = (200, 60, 150)
    background = np.full((480, 640, 3), 110, np.uint8)
    renderer = Renderer(640, 480, anny_body.topology())
    photo = renderer.render(Scene(bodies=(BodyMesh(verts_cam.astype(np.float32), texture),),
                                  camera=Camera(K=K, R=np.eye(3), t=np.zeros(3), width=640, height=480),
                                  lights=(), ambient=(1.0, 1.0, 1.0), background=background)).rgb
    cv2.imwrite(str(tmp_path / "photo0.png"), photo[..., ::-1])
    r["image_path"] = str(tmp_path / "photo0.png")
    path.write_text("".join(json.dumps(x) + "\n" for x in records))
    return path


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_render_with_photo_textures(fits_with_one_photo, tmp_path):
    from syrip_gen.coco import load_coco
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.render.run import render_dataset
    from syrip_gen.render.image.worker import _STATE

    cfg = RenderConfig(variants=3, seed=1, width=160, height=120, run=RunConfig(workers=1), texture_size=64,
                       photo_textures=True, contact_sheet=False, max_missing_photos=0.5)
    _STATE.clear()
    s = render_dataset(fits_with_one_photo, tmp_path / "data", cfg)
    assert s.photo_textures == {"baked": 1, "photo missing (rendered procedurally)": 1}
    kinds = {}
    for ann in load_coco(s.annotation_path).data["annotations"]:
        prov = ann["provenance"]
        kinds.setdefault(prov["fit_id"], set()).add(prov["texture"]["kind"])
    assert kinds == {"ann0": {"photo"}, "ann1": {"procedural"}}
    baked = sorted((tmp_path / "data" / "photo_textures").glob("*.png"))
    assert len(baked) == 1
    tex = __import__("cv2").imread(str(baked[0]))[..., ::-1].reshape(-1, 3).astype(int)
    # the body was (200, 60, 150) everywhere: the baked texture is that colour, give or take
    # pyrender's gamma round trip
    assert np.abs(np.median(tex, 0) - (200, 60, 150)).max() <= 12
    mtime = baked[0].stat().st_mtime_ns
    again = render_dataset(fits_with_one_photo, tmp_path / "data", cfg)
    assert again.run_key == s.run_key and again.shards_resumed == again.shards
    assert baked[0].stat().st_mtime_ns == mtime


def test_photo_texture_choice_is_seeded_and_mixes_own_and_other():
    from syrip_gen.render.looks.photo_textures import choose_texture

    paths = {0: "a.png", 1: "b.png", 2: "c.png"}
    picks = [choose_texture(s, 0, paths, 0.5) for s in range(400)]
    assert picks == [choose_texture(s, 0, paths, 0.5) for s in range(400)]
    own = picks.count("a.png") / len(picks)
    assert 0.4 < own < 0.6  # own with probability 0.5; the others never draw it again
    assert {"b.png", "c.png"} <= set(picks)
    assert all(choose_texture(s, 0, paths, 1.0) == "a.png" for s in range(50))
    assert "a.png" not in {choose_texture(s, 0, paths, 0.0) for s in range(50)}


def _fits_with_photos(anny_body, folder, photos: dict[int, bytes]):
    """write_fits' two fits, fit i photographed by ``photos[i]`` (bytes written to a file)."""
    from helpers.render_data import write_fits

    path = write_fits(anny_body, folder / "fits" / "fits.jsonl", n=2, extra_bad=False)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for i, data in photos.items():
        (folder / f"photo{i}.jpg").write_bytes(data)
        records[i]["image_path"] = str(folder / f"photo{i}.jpg")
    path.write_text("".join(json.dumps(x) + "\n" for x in records))
    return path


def test_an_empty_photo_is_counted_like_a_truncated_one(anny_body, tmp_path, monkeypatch):
    """A 0-byte photo (cv2.imdecode raised ``!buf.empty()`` before, leaving a run.json behind) is
    rendered procedurally and counted, as a truncated one is; the same command then resumes."""
    import cv2
    from helpers.render_data import use_fake_maker

    from syrip_gen.render.image.config import RenderConfig

    from syrip_gen.render.run import render_dataset

    use_fake_maker(monkeypatch)
    photo = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", photo)
    cut = buf.tobytes()[: len(buf) // 2]
    fits = _fits_with_photos(anny_body, tmp_path, {0: b"", 1: cut})
    cfg = RenderConfig(variants=2, seed=1, width=160, height=120, run=RunConfig(workers=1), texture_size=64,
                       photo_textures=True, contact_sheet=False)
    s = render_dataset(fits, tmp_path / "data", cfg)
    assert s.photo_textures == {"photo unreadable (rendered procedurally)": 2} and s.images == 4
    assert any("2 of 2 fits: photo unreadable" in w for w in s.warnings)
    again = render_dataset(fits, tmp_path / "data", cfg)
    assert again.run_key == s.run_key and again.shards_resumed == again.shards


def test_photos_are_found_from_any_folder_and_missing_ones_stop_the_run(anny_body, tmp_path, monkeypatch):
    """`fit data/annotations/k.json` run in ``project/``, then `render ../project/fits
    --photo-textures` from ``other/``: the photos are found (they were all "photo missing", exit 0
    and no warning, before). Old fits files (source relative to where `fit` ran) still work from
    there. Photos really missing beyond ``max_missing_photos`` stop the run before any work;
    fewer are counted and warned about."""
    from helpers.render_data import use_fake_maker, write_fits

    from syrip_gen.coco import write_coco
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.render.run import render_dataset
    from syrip_gen.errors import UserError
    from syrip_gen.fit.io import load_skeletons
    from syrip_gen.fits import append_fits

    use_fake_maker(monkeypatch)
    project, other = tmp_path / "project", tmp_path / "other"
    (project / "data" / "images").mkdir(parents=True)
    other.mkdir()
    fitted = [json.loads(line) for line in
              write_fits(anny_body, tmp_path / "tmp.jsonl", n=2, extra_bad=False).read_text().splitlines()]
    write_coco(project / "data" / "annotations" / "k.json",
               [{"id": 100 + i, "file_name": f"img{i}.jpg", "width": 640, "height": 480} for i in range(2)],
               [{"id": i + 1, "image_id": 100 + i, "keypoints": np.asarray(r["keypoints_2d"]).ravel().tolist()}
                for i, r in enumerate(fitted)])
    for i in range(2):  # present, but not images: counted as unreadable, no bake needed here
        (project / "data" / "images" / f"img{i}.jpg").write_bytes(b"not an image")
    monkeypatch.chdir(project)
    skeletons = load_skeletons("data/annotations/k.json")
    (project / "fits").mkdir()
    append_fits("fits/fits.jsonl", [{**r, **{k: sk.record()[k] for k in ("id", "source", "file_name")}}
                                    for r, sk in zip(fitted, skeletons)])
    old = project / "old" / "fits.jsonl"  # a fits file as fit wrote it before: source as typed
    old.parent.mkdir()
    old.write_text("".join(json.dumps({**r, "source": "data/annotations/k.json", "file_name": f"img{i}.jpg"}) + "\n"
                           for i, r in enumerate(fitted)))
    cfg = RenderConfig(variants=1, seed=1, width=160, height=120, run=RunConfig(workers=1), texture_size=64,
                       photo_textures=True, contact_sheet=False)
    unreadable = {"photo unreadable (rendered procedurally)": 2}
    assert render_dataset("old", project / "ds_old", cfg).photo_textures == unreadable
    monkeypatch.chdir(other)
    assert render_dataset("../project/fits", "ds", cfg).photo_textures == unreadable
    (project / "data" / "images" / "img1.jpg").unlink()
    with pytest.raises(UserError, match=r"1 of 2 fits' photos are missing .50% > max_missing_photos 10%.*img1.jpg"):
        render_dataset("../project/fits", "ds2", cfg)
    assert not (other / "ds2").exists()  # stopped before any work
    s = render_dataset("../project/fits", "ds2", replace(cfg, max_missing_photos=0.5))
    assert s.photo_textures == {"photo missing (rendered procedurally)": 1,
                                "photo unreadable (rendered procedurally)": 1}
    assert any("1 of 2 fits: photo missing" in w for w in s.warnings)
