"""Frame measurements (syrip_gen/render/looks/photo_stats.py) on synthetic images whose answer is known.

Issue 26."""
import numpy as np

from syrip_gen.render.looks import photo_stats as ps


def _natural(seed=0, h=240, w=320):
    """A smooth, textured, photo-like image without text: blurred noise at a few scales."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for cells, amp in ((4, 60), (16, 25), (64, 10)):
        g = rng.standard_normal((cells, cells * w // h, 3)).astype(np.float32)
        img += amp * cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(img + 128, 0, 255).astype(np.uint8)


def test_noise_sigma_reads_added_noise_and_tells_luma_from_chroma():
    rng = np.random.default_rng(1)
    base = _natural()
    clean = ps.noise_sigma(base)
    grey_noise = rng.normal(0, 4, base.shape[:2])[..., None].repeat(3, 2)  # same on all channels
    luma_only = ps.noise_sigma(np.clip(base + grey_noise, 0, 255).astype(np.uint8))
    speckle = ps.noise_sigma(np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8))
    assert clean.luma < 1.0
    assert 3.0 < luma_only.luma < 5.0 and luma_only.chroma < 1.0
    assert speckle.chroma > 2.0 and 2.5 < speckle.luma < 5.0


def test_jpeg_quality_is_read_back(tmp_path):
    import cv2

    for q in (60, 80, 95):
        cv2.imwrite(str(tmp_path / f"{q}.jpg"), _natural(), [cv2.IMWRITE_JPEG_QUALITY, q])
        assert abs(ps.jpeg_quality(tmp_path / f"{q}.jpg") - q) <= 2
    cv2.imwrite(str(tmp_path / "x.png"), _natural())
    assert ps.jpeg_quality(tmp_path / "x.png") is None


def test_letterbox_bands_and_studio():
    img = _natural()
    assert not ps.letterbox_bands(img).any and not ps.is_studio(img)
    boxed = img.copy()
    boxed[:30], boxed[-30:] = 0, 0
    b = ps.letterbox_bands(boxed)
    assert b.colour == "black" and (b.top, b.bottom) == (30, 30) and ps.crop_bands(boxed).shape[0] == 180
    one_side = img.copy()
    one_side[:30] = 255  # a white wall along the top is not a letterbox
    assert not ps.letterbox_bands(one_side).any
    studio = np.full_like(img, 245)
    studio[80:160, 100:220] = img[80:160, 100:220]  # a subject in the middle of a white backdrop
    assert ps.is_studio(studio)


def test_text_boxes_find_captions_not_texture():
    import cv2

    for seed in range(3):
        img = _natural(seed)
        assert ps.text_boxes(img) == [], seed
        captioned = img.copy()
        cv2.rectangle(captioned, (20, 195), (300, 225), (20, 20, 20), -1)
        cv2.putText(captioned, "towards the head area", (28, 218), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (255, 255, 255), 1, cv2.LINE_AA)
        boxes = ps.text_boxes(captioned)
        assert boxes and all(185 <= y + h / 2 <= 230 for x, y, w, h in boxes), boxes
        logo = img.copy()
        cv2.putText(logo, "Pathways", (190, 30), cv2.FONT_HERSHEY_DUPLEX, 0.7, (250, 250, 250), 1, cv2.LINE_AA)
        assert ps.text_boxes(logo), seed


def test_empty_corners_flags_black_flat_and_smeared_corners_only():
    import cv2

    img = _natural(4)
    assert ps.empty_corners(img).ok
    assert ps.empty_corners(np.full_like(img, 250)).ok  # a plain studio frame is not a hole
    h, w = img.shape[:2]
    # a rotation with a constant border leaves black wedges in all four corners
    M = cv2.getRotationMatrix2D((w / 2, h / 2), 12, 1.0)
    rotated = cv2.warpAffine(img, M, (w, h), borderMode=cv2.BORDER_CONSTANT)
    assert set(ps.empty_corners(rotated).empty) == {"tl", "tr", "bl", "br"}
    # BORDER_REPLICATE smears the edge pixels into streaks instead
    shifted = cv2.warpAffine(img, np.float32([[1, 0, 40], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
    c = ps.empty_corners(shifted)
    assert {"tl", "bl"} <= set(c.empty + c.stretched) and "tr" not in c.empty + c.stretched
    # BORDER_REFLECT leaves real texture there
    assert ps.empty_corners(cv2.warpAffine(img, M, (w, h), borderMode=cv2.BORDER_REFLECT)).ok
    # and a letterboxed frame's bands are its frame, not holes
    boxed = img.copy()
    boxed[:20], boxed[-20:] = 0, 0
    assert ps.empty_corners(boxed).ok
