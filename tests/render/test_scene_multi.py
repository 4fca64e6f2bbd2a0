"""Several infants in one image (issue 24): the scene's spec in parts, placement without
intersection, per-infant masks and visibility from the whole scene's depth, ids and track ids."""
from dataclasses import replace

import numpy as np
import pytest
from helpers.render_data import prepared_fits, write_fits

from syrip_gen.config import RunConfig
from syrip_gen.render.world.sources import posture_pool
from syrip_gen.render.world.spec import VariantSpec
from syrip_gen.render.world.variants import VariantConfig, sample_variants

W, H = 160, 120
TWO = VariantConfig(multi_share=1.0, infants=(2, 2))


@pytest.fixture(scope="module")
def fit_infos(anny_body, tmp_path_factory):
    return prepared_fits(anny_body, tmp_path_factory.mktemp("fits"), n=3)


@pytest.fixture(scope="module")
def maker(anny_body):
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.render.image.compose import make_image_maker

    try:
        return make_image_maker(RenderConfig(width=W, height=H, texture_size=64, support_texels_per_m=64), anny_body)
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"no EGL renderer here: {err}")


def test_single_infant_specs_do_not_change_with_the_option_off(anny_body, fit_infos):
    """multi_share = 0 draws the very specs of before (the further infants have their own
    generator); the JSON record reads back into the same spec."""
    jobs = [(f, v) for f in fit_infos for v in range(2)]
    pool = posture_pool(fit_infos)
    off = sample_variants(jobs, anny_body, VariantConfig(), 4, W, H, pool=pool)
    assert all(len(s.bodies) == 1 for s in off.specs)
    on = sample_variants(jobs, anny_body, replace(VariantConfig(), multi_share=1.0), 4, W, H, pool=pool)
    assert all(len(s.bodies) in (2, 3) for s in on.specs) and {len(s.bodies) for s in on.specs} == {2, 3}
    for a in off.specs:  # the first infant of a multi-infant image is the single-infant image's body
        b = next((s for s in on.specs if (s.fit_index, s.variant_index, s.seed) == (a.fit_index, a.variant_index,
                                                                                   a.seed)), None)
        if b is not None:
            assert b.bodies[0] == a.bodies[0] and b.lighting == a.lighting and b.support.kind == a.support.kind
    for s in off.specs + on.specs:
        back = VariantSpec.from_json(s.to_json())
        assert back.to_json() == s.to_json()
        assert back.bodies == s.bodies and np.allclose(back.camera.K, s.camera.K)


def test_infants_rest_on_one_support_and_never_intersect(anny_body, fit_infos):
    from syrip_gen.gates.penetration import bodies_penetration
    from syrip_gen.render.world.placement import min_clearance

    jobs = [(f, v) for f in fit_infos for v in range(3)]
    s = sample_variants(jobs, anny_body, replace(VariantConfig(), multi_share=1.0, infants=(3, 3)), 2, W, H,
                        pool=posture_pool(fit_infos))
    assert len(s.specs) >= 6
    faces = anny_body.topology().body_faces
    for spec, verts in zip(s.specs, s.scene_vertices):
        assert verts.shape[0] == len(spec.bodies) == 3
        assert [b.track_id for b in spec.bodies] == [0, 1, 2]
        for k in range(3):
            assert abs(verts[k][:, 1].min() - spec.support.y) < 1e-5  # each on the plane
            u, v = spec.camera.project(verts[k])[0].T  # all in the frame
            assert u.min() >= 0 and v.min() >= 0 and u.max() <= W - 1 and v.max() <= H - 1
            for j in range(k):
                assert min_clearance(verts[k], verts[j]) >= TWO.body_gap_m - 1e-6
                assert bodies_penetration(verts[k], verts[j], faces) == 0.0
    # the check itself sees an intersection: one infant moved into another
    v0, v1 = s.scene_vertices[0][:2]
    into = v1 - (v1.mean(0) - v0.mean(0))
    assert bodies_penetration(v0, into, faces) > 0.1


def _occluding_pair(anny_body, fit_infos):
    """A supine infant seen from above with a second one held between it and the camera,
    shifted sideways: it hides part of the first."""
    from syrip_gen.geometry import frame_camera

    s = sample_variants([(fit_infos[0], 0)], anny_body, replace(VariantConfig(), roll_deg=(0.0, 0.0)), 1, W, H)
    spec, v0 = s.specs[0], s.scene_vertices[0][0].astype(np.float64)
    toward = -spec.camera.R[2]  # from the scene towards the camera
    side = spec.camera.R[0]
    offset = 0.3 * toward + 0.12 * side
    v1 = v0 + offset
    camera, why = frame_camera(np.concatenate([v0, v1]), spec.camera.R, W, H, 60.0, 0.8, 1.0)
    assert camera is not None, why
    spec = replace(spec, camera=camera, bodies=(spec.bodies[0], replace(spec.bodies[0], offset=tuple(offset),
                                                                        track_id=1, appearance_seed=99)))
    kp = np.stack([s.scene_keypoints[0][0], s.scene_keypoints[0][0] + offset]).astype(np.float64)
    return spec, np.stack([v0, v1]).astype(np.float32), kp


def test_two_infants_each_keypoint_on_its_own_mask_hidden_ones_v1(anny_body, fit_infos, maker):
    from syrip_gen.annotate import annotate_scene, depth_tolerance

    spec, verts, kp = _occluding_pair(anny_body, fit_infos)
    r = maker.render(spec, verts)
    assert r.labels is not None and set(np.unique(r.labels)) == {-1, 0, 1}
    assert ((r.labels >= 0) == r.mask).all()
    res = annotate_scene(7, "x.jpg", spec, kp, r.labels, r.body_depth, ["supine", "supine"], [{}, {}])
    assert res.image is not None and len(res.annotations) == 2
    a0, a1 = res.annotations
    assert (a0["id"], a0["image_id"], a0["track_id"]) == (7, 7, 0) and a1["image_id"] == 7 and a1["track_id"] == 1
    assert a0["id"] != a1["id"]
    hidden_by_other = 0
    for k, ann in enumerate(res.annotations):
        xyv = np.array(ann["keypoints"]).reshape(17, 3)
        px = np.floor(xyv[:, :2] + 0.5).astype(int)
        z = spec.camera.to_camera(kp[k])[:, 2]
        tol = depth_tolerance(spec.camera.to_camera(kp[k]))
        for (u, v), vis, zk in zip(px, xyv[:, 2], z):
            if vis == 2:  # visible: on its own infant's mask
                assert r.labels[v, u] == k
            if 0 <= u < W and 0 <= v < H and r.labels[v, u] == 1 - k and r.body_depth[v, u] < zk - tol:
                assert vis == 1  # the other infant is in front: hidden
                hidden_by_other += 1
        # its box is its own mask's
        ys, xs = np.nonzero(r.labels == k)
        assert abs(ann["bbox"][0] - xs.min()) < 1e-6 and abs(ann["bbox"][1] - ys.min()) < 1e-6
    assert hidden_by_other >= 2  # the scene really hides some of the far infant's keypoints
    assert np.array(a1["keypoints"]).reshape(17, 3)[:, 2].min() >= 1  # the near one is all in the frame


def test_single_infant_spec_redraws_its_image_alone(anny_body, fit_infos, maker):
    """The provenance's spec (JSON) renders the same pixels as the spec it came from."""
    s = sample_variants([(fit_infos[1], 3)], anny_body, VariantConfig(), 8, W, H)
    spec = s.specs[0]
    a = maker.render(spec, s.scene_vertices[0])
    b = maker.render(VariantSpec.from_json(spec.to_json()), s.scene_vertices[0])
    assert a.jpeg == b.jpeg and (a.labels == b.labels).all()


# ---------------------------------------------------------------- a two-infant dataset through filter

@pytest.fixture(scope="module")
def multi_dataset(anny_body, tmp_path_factory):
    """A small multi-infant render (real GL) of 2 fits x 3 variants, every image 2 infants."""
    import syrip_gen.body as body_module
    import syrip_gen.render.run as ds
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.render.run import render_dataset

    tmp = tmp_path_factory.mktemp("multi")
    fits = write_fits(anny_body, tmp / "fits" / "fits.jsonl", n=2, seed=3)
    cfg = RenderConfig(variants=3, seed=2, width=W, height=H, run=RunConfig(workers=1), texture_size=64,
                       support_texels_per_m=64, contact_sheet=False, sampling=TWO)
    mp = pytest.MonkeyPatch()
    mp.setattr(body_module, "load_body", lambda *a, **k: anny_body)
    from syrip_gen.render.image.worker import _STATE

    _STATE.clear()
    try:
        from syrip_gen.render.pixels.renderer import Renderer

        Renderer(W, H, anny_body.topology())
        summary = render_dataset(fits, tmp / "data", cfg)
    except Exception as err:  # noqa: BLE001
        if "EGL" not in str(err):
            raise
        pytest.skip(f"no EGL renderer here: {err}")
    finally:
        mp.undo()
    return tmp / "data", summary


def test_multi_infant_dataset_has_unique_ids_and_two_annotations_per_image(multi_dataset):
    import json

    from syrip_gen.annotate import ANNOTATION_STRIDE
    from syrip_gen.coco import annotation_path

    out, summary = multi_dataset
    coco = json.loads(annotation_path(out, "train").read_text())
    assert summary.images == len(coco["images"]) >= 3
    ids = [a["id"] for a in coco["annotations"]]
    assert len(ids) == len(set(ids)) == 2 * len(coco["images"])
    for img in coco["images"]:
        anns = sorted((a for a in coco["annotations"] if a["image_id"] == img["id"]), key=lambda a: a["track_id"])
        assert [a["track_id"] for a in anns] == [0, 1]
        assert anns[0]["id"] == img["id"] and anns[1]["id"] == ANNOTATION_STRIDE + img["id"]
        spec = anns[0]["provenance"]["spec"]
        assert len(spec["bodies"]) == 2 and anns[1]["provenance"]["spec"] == spec
        assert anns[1]["provenance"]["fit_id"] == spec["bodies"][1]["fit_id"]
        assert anns[0]["body"]["pose"] != anns[1]["body"]["pose"]


def test_filter_judges_every_infant(multi_dataset, anny_body, tmp_path):
    """Both infants of each image go through the gates; an implausible pose on the second one
    rejects its image (reason marked with its track id); kept images keep both annotations."""
    import json
    import shutil

    from syrip_gen.coco import annotation_path
    from syrip_gen.filter import FilterConfig, filter_dataset

    src, _ = multi_dataset
    # the test fits are random poses: limits wide enough for them, not for an elbow bent backwards
    cfg = FilterConfig(gates=("out_of_frame", "few_visible", "joint_limits", "hyperextension"),
                       calibrate_percentile=None, max_hyperextension_rad=1.2, max_joint_limit_rad=1.2)
    data = tmp_path / "data"
    shutil.copytree(src, data, symlinks=True)
    path = annotation_path(data, "train")
    coco = json.loads(path.read_text())
    before = filter_dataset(data, cfg, body=anny_body, out=tmp_path / "before.json", out_dir=tmp_path / "f0")
    assert before.n_images == len(coco["images"]) and before.n_infants == 2 * before.n_images
    clean = [v["image_id"] for v in before.images if not v["reasons"]]
    assert clean, [v["reasons"] for v in before.images]
    victim = clean[0]
    for a in coco["annotations"]:
        if a["image_id"] == victim and a["track_id"] == 1:
            pose = np.array(a["body"]["pose"])
            pose[18] = [0.0, 0.0, 3.0]  # left elbow bent backwards by 170 degrees
            a["body"]["pose"] = pose.tolist()
    path.write_text(json.dumps(coco))
    rep = filter_dataset(data, cfg, body=anny_body, out=tmp_path / "after.json", out_dir=tmp_path / "f1")
    verdict = next(v for v in rep.images if v["image_id"] == victim)
    assert verdict["verdict"] == "reject"
    assert {r["gate"] for r in verdict["reasons"] if r["track_id"] == 1} & {"joint_limits", "hyperextension"}
    assert [x["track_id"] for x in verdict["infants"]] == [0, 1]
    after = json.loads((tmp_path / "after.json").read_text())
    assert victim not in {i["id"] for i in after["images"]} and len(after["images"]) == before.n_kept - 1
    assert len(after["annotations"]) == 2 * len(after["images"]) == rep.n_infants_kept


# ---------------------------------------------------------------- detector and 2D evaluation over all infants

def _paired(single, out):
    """Two-infant images: the tiny drawn dataset's images side by side, two annotations each."""
    import json

    import cv2

    from syrip_gen.atomic import atomic_write_image
    from syrip_gen.coco import write_coco

    coco = json.loads(next((single / "annotations").glob("*.json")).read_text())
    (out / "images").mkdir(parents=True)
    images, anns = [], []
    ims = coco["images"]
    for k in range(0, len(ims) - 1, 2):
        a, b = ims[k], ims[k + 1]
        pic = np.concatenate([cv2.imread(str(single / "images" / x["file_name"])) for x in (a, b)], 1)
        name = f"pair{k:04d}.jpg"
        atomic_write_image(out / "images" / name, pic[..., ::-1])
        iid = len(images) + 1
        images.append({**a, "id": iid, "file_name": name, "width": a["width"] * 2})
        for t, (img, shift) in enumerate(((a, 0.0), (b, float(a["width"])))):
            src = next(x for x in coco["annotations"] if x["image_id"] == img["id"])
            kp = np.array(src["keypoints"], float).reshape(17, 3)
            kp[kp[:, 2] > 0, 0] += shift
            x, y, w, h = src["bbox"]
            anns.append({**src, "id": 2 * iid + t, "image_id": iid, "track_id": t, "keypoints": kp.ravel().tolist(),
                         "bbox": [x + shift, y, w, h]})
            anns[-1].pop("keypoints_3d", None)
    write_coco(out / "annotations" / "person_keypoints_train_infant.json", images, anns)
    return out


def test_detection_targets_hold_every_infant_and_the_loss_is_unchanged_for_one(tmp_path):
    import torch

    from pose_models.data import MAX_OBJECTS, DetectionDataset, load_records
    from pose_models.detector import DetectorConfig, detector_loss
    from pose_models.synthetic import make_dataset

    pairs = _paired(make_dataset(tmp_path / "one", n=4, width=64, height=96), tmp_path / "two")
    ds = DetectionDataset(load_records(pairs).records, 64)
    assert len(ds) == 2 and [len(b) for b in ds.boxes] == [2, 2]
    item = ds[0]
    assert item["obj"].tolist() == [1.0, 1.0] + [0.0] * (MAX_OBJECTS - 2)
    c = item["center"][0]
    peaks = (c == 1.0).nonzero().tolist()
    assert len(peaks) == 2 and set(item["ind"][:2].tolist()) == {r * 16 + q for r, q in peaks}
    # one box padded to M: the same loss as the single-box formula
    torch.manual_seed(0)
    out = torch.randn(2, 5, 16, 16)
    ind = torch.tensor([[5, 0, 0], [40, 0, 0]])
    batch = {"center": torch.rand(2, 1, 16, 16), "size": torch.rand(2, 3, 2), "offset": torch.rand(2, 3, 2),
             "ind": ind, "obj": torch.tensor([[1.0, 0, 0], [1.0, 0, 0]])}
    cfg = DetectorConfig()
    at = out.reshape(2, 5, -1)[torch.arange(2), :, ind[:, 0]]
    import torch.nn.functional as F

    from pose_models.detector import focal_loss

    old = (focal_loss(out[:, :1], batch["center"]) + F.l1_loss(at[:, 1:3], batch["size"][:, 0]) * 10
           + F.l1_loss(at[:, 3:5], batch["offset"][:, 0]))
    assert torch.allclose(detector_loss(out, batch, cfg), old, atol=1e-6)


def test_evaluate_counts_both_infants(tmp_path):
    """Top-down on every detected box: a detector that finds both infants scores box AP 1 and the
    2D stage runs on both crops; one that finds only the best box misses half the infants."""
    import torch

    from pose_models.data import load_records
    from pose_models.evaluate import detect_boxes, match_detections
    from pose_models.metrics import coco_ap
    from pose_models.synthetic import make_dataset
    from syrip_gen.coco import load_coco

    pairs = _paired(make_dataset(tmp_path / "one", n=8, width=64, height=96), tmp_path / "two")
    recs = load_records(pairs).records
    assert len(recs) == 8

    class Oracle:
        """Detects the ground-truth boxes (in the letterboxed input's pixels)."""

        cfg = type("C", (), {"input_size": 64})()

        def __init__(self, ds_boxes, mats, both):
            self.boxes, self.mats, self.both, self.calls = ds_boxes, mats, both, 0

        def detect(self, images, max_boxes=3, min_score=0.3):
            b = images.shape[0]
            out = torch.zeros(b, max_boxes, 4, dtype=torch.float64)
            score = torch.zeros(b, max_boxes)
            for n in range(b):
                i = self.calls + n
                for k, (x, y, w, h) in enumerate(self.boxes[i]):
                    m = self.mats[i]
                    lo = m[:2, :2] @ np.array([x, y]) + m[:2, 2]
                    out[n, k] = torch.tensor([*lo, w * m[0, 0], h * m[1, 1]])
                    score[n, k] = 0.9 - 0.1 * k
            self.calls += b
            keep = score >= min_score
            if not self.both:
                keep[:, 1:] = False
            return out, score, keep

    from pose_models.data import DetectionDataset

    ref = DetectionDataset(recs, 64)
    gt = load_coco(pairs).data
    for both, ap in ((True, 1.0), (False, 0.5)):
        model = Oracle(ref.boxes, ref.mats, both)
        det, boxes, scores, _ = detect_boxes(model, recs, torch.device("cpu"))
        assert len(det) == (8 if both else 4)
        assert len({r.ann_id for r in det}) == len(det)
        res = [{"image_id": r.image_id, "category_id": 1, "bbox": b.tolist(), "score": float(s)}
               for r, b, s in zip(det, boxes, scores)]
        assert abs(coco_ap(gt, res, "bbox")["AP"] - ap) < 0.05
        match = match_detections(recs, det, boxes)
        assert (match >= 0).sum() == len(det)
        assert np.allclose(boxes[match[match >= 0]], np.stack([r.box for r in recs])[match >= 0], atol=0.6)
