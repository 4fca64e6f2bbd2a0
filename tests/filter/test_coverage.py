"""k-NN precision/recall of pose sets: the limits (same set, far-apart sets), the radii, the
limb features and the seeded draw.

Issue 14."""
from __future__ import annotations

import numpy as np
import pytest

from syrip_gen.coverage import (LIMBS, draw, knn_radii, limb_features, pose_precision_recall,
                                precision_recall)


def test_identical_sets_score_one():
    x = np.random.default_rng(0).normal(size=(50, 24))
    pr = precision_recall(x, x.copy())
    assert pr.precision == 1.0 and pr.recall == 1.0 and pr.n_real == pr.n_generated == 50


def test_disjoint_sets_score_zero():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(40, 24))
    far = rng.normal(size=(60, 24)) + 100.0
    pr = precision_recall(real, far)
    assert pr.precision == 0.0 and pr.recall == 0.0


def test_partial_overlap_is_between():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(100, 4))
    gen = np.concatenate([rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 50])  # half realistic
    pr = precision_recall(real, gen)
    assert 0.3 < pr.precision < 0.7 and pr.recall > 0.8, pr


def test_knn_radii_exclude_the_sample_itself():
    x = np.array([[0.0], [1.0], [3.0], [6.0]])
    assert knn_radii(x, k=1).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert knn_radii(x, k=3).tolist() == [6.0, 5.0, 3.0, 6.0]
    assert np.isinf(knn_radii(x[:3], k=3)).all()  # too few samples for a 3rd neighbour


def test_limb_features_are_limb_vectors_and_skip_incomplete():
    rng = np.random.default_rng(3)
    poses = rng.normal(size=(4, 17, 2))
    mask = np.ones((4, 17), bool)
    mask[1, 9] = False  # a wrist missing: skipped
    mask[2, 1] = False  # an eye missing: not a limb joint, kept
    f, idx = limb_features(poses, mask)
    assert f.shape == (3, 24) and idx.tolist() == [0, 2, 3]
    assert len(LIMBS) == 12 and not set(LIMBS.ravel()) & {0, 1, 2, 3, 4}
    a, b = LIMBS[0]
    assert np.allclose(f[0, :2], poses[0, b] - poses[0, a])


def test_draw_is_seeded_and_without_replacement():
    x = np.arange(3000).reshape(-1, 1)
    a = draw(x, 1000, np.random.default_rng(7))
    assert len(a) == 1000 and len(np.unique(a)) == 1000
    assert np.array_equal(a, draw(x, 1000, np.random.default_rng(7)))
    assert draw(x[:10], 1000, np.random.default_rng(7)).shape == (10, 1)
    rec = pose_precision_recall(x[:500].astype(float), x.astype(float), seed=7)
    assert rec["n_generated"] == 1000 and rec["seed"] == 7


def test_empty_set_is_an_error():
    with pytest.raises(ValueError):
        precision_recall(np.zeros((0, 24)), np.zeros((5, 24)))
