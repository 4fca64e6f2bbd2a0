"""Dataset statistics: normalisation maths, coverage score behaviour, files written; real data
sanity when present.

Issue 5."""
from __future__ import annotations

import json

import numpy as np
import pytest

from syrip_gen.errors import UserError
from syrip_gen.stats import TAU, dataset_stats, nn_distance, torso_normalise
from helpers.filter_fixtures import sample, skeleton_2d_samples, write_dataset


def test_torso_normalise_aligns_mid_hip_and_shoulders():
    rng = np.random.default_rng(0)
    kps = np.concatenate([rng.uniform(0, 500, (5, 17, 2)), np.full((5, 17, 1), 2.0)], -1)
    kps[4, 11, 2] = 0  # no left hip: skipped
    poses, mask, idx = torso_normalise(kps)
    assert poses.shape == (4, 17, 2) and mask.shape == (4, 17) and idx.tolist() == [0, 1, 2, 3]
    mid_hip = (poses[:, 11] + poses[:, 12]) / 2
    mid_sh = (poses[:, 5] + poses[:, 6]) / 2
    assert np.allclose(mid_hip, 0, atol=1e-9) and np.allclose(mid_sh, [[0, 1]] * 4, atol=1e-9)
    # invariant to image rotation, scale and shift
    c, s = np.cos(0.7), np.sin(0.7)
    moved = kps.copy()
    moved[..., :2] = 3 * kps[..., :2] @ np.array([[c, -s], [s, c]]).T + 40
    assert np.allclose(torso_normalise(moved)[0], poses, atol=1e-9)


def test_nn_distance_uses_common_keypoints_only():
    a = np.zeros((1, 17, 2))
    b = np.zeros((2, 17, 2))
    b[0] += 1.0  # every keypoint 1 away
    b[1, :8] += 0.1
    b[1, 8:] += 50.0  # far, but those keypoints unlabelled in a
    ma = np.zeros((1, 17), bool)
    ma[0, :8] = True
    assert nn_distance(a, ma, b, np.ones((2, 17), bool))[0] == pytest.approx(0.1 * np.sqrt(2))
    ma[0, :] = False
    ma[0, :7] = True  # fewer than MIN_COMMON: no neighbour
    assert np.isinf(nn_distance(a, ma, b, np.ones((2, 17), bool))[0])


def test_stats_files_and_coverage(tmp_path):
    a = write_dataset(tmp_path / "a", skeleton_2d_samples(30, seed=1)).parent.parent
    b = write_dataset(tmp_path / "b", skeleton_2d_samples(20, seed=2)).parent.parent
    rng = np.random.default_rng(3)  # scrambled skeletons: poses nothing like a's
    scrambled = [sample(rng.uniform(-0.3, 0.3, (17, 3)), t=(0, 0, 1.7)) for _ in range(20)]
    c = write_dataset(tmp_path / "c", scrambled).parent.parent
    stats = dataset_stats(a, tmp_path / "out", compare=b)
    for name in ("poses", "postures", "visibility", "viewpoints"):
        assert (tmp_path / "out" / f"{name}.png").stat().st_size > 5000
    on_disk = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert on_disk["coverage"]["tau"] == TAU and on_disk["datasets"]["a"]["n_normalised_poses"] == 30
    assert on_disk["datasets"]["a"]["postures"] == {"prone": 10, "sitting": 10, "supine": 10}
    assert 0 <= on_disk["datasets"]["a"]["visibility"]["nose"]["v2"] <= 1
    knn = on_disk["coverage"]["knn"]
    assert knn["k"] == 3 and knn["real"] == "b" and knn["generated"] == "a" and knn["n_real"] == 20
    assert 0 <= knn["precision"] <= 1 and 0 <= knn["recall"] <= 1
    similar = stats["coverage"]["coverage_at"]["0.5"]
    far = dataset_stats(a, tmp_path / "out2", compare=c, ceiling=b)["coverage"]
    different = far["coverage_at"]["0.5"]
    assert similar > 0.8 and different < 0.3, (similar, different)
    # k-NN: similar sets overlap more than scrambled ones; the ceiling scores b against c
    assert knn["recall"] > far["knn"]["recall"] and far["ceiling"]["generated"] == "b", (knn, far)
    # viewpoint: the stick infants face the camera, so the camera is in front of the chest
    views = stats["datasets"]["a"]["viewpoint_deg"]
    assert views["azimuth_mean_abs"] < 20 and abs(views["elevation_mean"]) < 20


def test_real_train_vs_validate(syrip_train, syrip_validate, tmp_path):
    stats = dataset_stats(syrip_train, tmp_path, compare=syrip_validate)
    cov = stats["coverage"]
    assert cov["n_other_poses"] > 50 and 0.2 < cov["coverage"] <= 1.0, cov
    # two samples of the same real population overlap well (train200 vs validate100: 0.84 / 0.89)
    assert cov["knn"]["precision"] > 0.7 and cov["knn"]["recall"] > 0.7, cov["knn"]
    assert "viewpoints" not in " ".join(stats["files"])  # real data has no 3D: skipped


def test_bad_input(tmp_path):
    with pytest.raises(UserError):
        dataset_stats(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(UserError, match="ceiling"):
        dataset_stats(tmp_path / "missing", tmp_path / "out", ceiling=tmp_path / "missing")
