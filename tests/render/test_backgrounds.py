"""Person-free backgrounds from annotated photos: no pixel of a person survives, either way
(crop or fill), and the folder works as a render background folder.

Issue 7."""
import json

import cv2
import numpy as np
import pytest

from syrip_gen.backgrounds import (BackgroundsConfig, extract_backgrounds, fill_people, largest_free_crop,
                                   person_mask)
from syrip_gen.errors import UserError

RED = (0, 0, 255)  # BGR: the "person"


def _scene(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A textured green/blue floor with a red person box ``(x0, y0, x1, y1)``."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (128 + 100 * np.sin(xx / 7.0)).astype(np.uint8)
    img[..., 1] = (128 + 100 * np.cos(yy / 5.0)).astype(np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = RED
    return img


def _red(img: np.ndarray) -> int:
    return int(((img[..., 2] > 200) & (img[..., 1] < 60) & (img[..., 0] < 60)).sum())


def test_largest_free_crop_avoids_the_person_and_keeps_the_aspect():
    mask = person_mask((300, 400), [(100, 50, 220, 250)])
    x, y, w, h = largest_free_crop(mask, 4 / 3)
    assert w * h > 0 and abs(w / h - 4 / 3) < 0.1
    assert not mask[y:y + h, x:x + w].any()
    assert largest_free_crop(np.ones((30, 40), bool), 4 / 3) is None


def test_fill_people_replaces_the_person_with_its_surroundings():
    box = (150, 60, 260, 240)
    img = _scene(300, 400, box)
    out = fill_people(img, [box])
    assert _red(img) > 10000 and _red(out) == 0
    assert (out[:, :140] == img[:, :140]).all()  # outside the box: untouched
    # a box touching three borders is filled from the only free side
    edge = (0, 0, 300, 300)
    out = fill_people(_scene(300, 400, edge), [edge])
    assert _red(out) == 0


def test_extract_backgrounds_writes_person_free_folder(tmp_path):
    from syrip_gen.render.looks.background import BackgroundFolder

    images_dir = tmp_path / "data" / "images"
    images_dir.mkdir(parents=True)
    # a small infant (crop), a big one (fill), and one filling the photo (nothing left: skipped)
    small, big, whole = (20, 20, 60, 60), (120, 80, 280, 220), (10, 10, 390, 290)
    images, anns = [], []
    for i, box in enumerate((small, big, whole), start=1):
        cv2.imwrite(str(images_dir / f"{i}.png"), _scene(300, 400, box))
        x0, y0, x1, y1 = box
        kps = [x0 + 5, y0 + 5, 2] * 17
        images.append({"id": i, "file_name": f"{i}.png", "width": 400, "height": 300})
        anns.append({"id": i, "image_id": i, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                     "keypoints": kps, "num_keypoints": 17, "iscrowd": 0})
    coco = tmp_path / "data" / "annotations" / "person_keypoints_train.json"
    coco.parent.mkdir()
    coco.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person"}]}))
    out = tmp_path / "bgs"
    summary = extract_backgrounds(coco, out, BackgroundsConfig(margin=0.1))
    assert summary.n_backgrounds == 2 and summary.kinds == {"crop": 1, "filled": 1}
    assert summary.skipped == {"people cover more than 60% of the photo": 1}
    index = json.loads((out / "backgrounds.json").read_text())
    assert [i["kind"] for i in index["items"]] == ["crop", "filled"]
    assert all(i["perspective"] in ("floor", "room") for i in index["items"])
    assert sum(summary.perspectives.values()) == 2
    for item in index["items"]:
        img = cv2.imread(str(out / item["file"]))
        assert img is not None and _red(img) == 0
    assert len(BackgroundFolder(out).files) == 2
    with pytest.raises(UserError, match="unknown key.s. margins"):
        BackgroundsConfig.from_dict({"margins": 1})


def test_letterbox_bands_are_cut_and_captioned_crops_dropped(tmp_path):
    """A letterboxed photo loses its bands before cropping (a band on a floor is a black
    corner); a crop with a burnt-in caption is dropped and counted."""
    from syrip_gen.backgrounds import person_free_background

    img = _scene(300, 400, (20, 20, 60, 60))
    img[:40], img[-40:] = 0, 0  # letterbox (and the person box stays where it was)
    cfg = BackgroundsConfig(margin=0.1)
    out = person_free_background(img, [np.array([20, 20, 40, 40], float)], cfg)
    assert out.bands == (40, 40, 0, 0) and out.image is not None
    assert (out.image.reshape(-1, 3).max(1) > 10).all()  # no band pixel in the crop
    assert _red(out.image) == 0

    images_dir = tmp_path / "data" / "images"
    images_dir.mkdir(parents=True)
    plain = _scene(300, 400, (20, 20, 60, 60))
    captioned = plain.copy()
    cv2.rectangle(captioned, (60, 240), (390, 280), (20, 20, 20), -1)
    cv2.putText(captioned, "beginning to demonstrate", (70, 270), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                (255, 255, 255), 2, cv2.LINE_AA)
    images, anns = [], []
    for i, im in enumerate((plain, captioned), start=1):
        cv2.imwrite(str(images_dir / f"{i}.png"), im)
        images.append({"id": i, "file_name": f"{i}.png", "width": 400, "height": 300})
        anns.append({"id": i, "image_id": i, "category_id": 1, "bbox": [20, 20, 40, 40],
                     "keypoints": [25, 25, 2] * 17, "num_keypoints": 17, "iscrowd": 0})
    coco = tmp_path / "data" / "annotations" / "person_keypoints_train.json"
    coco.parent.mkdir()
    coco.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    summary = extract_backgrounds(coco, tmp_path / "bgs", cfg)
    assert summary.n_backgrounds == 1 and summary.skipped == {"caption text or logo in the crop": 1}
