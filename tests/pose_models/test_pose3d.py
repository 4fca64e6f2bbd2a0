"""3D alignment metric: invariant to a similarity transform, not to a mirror or a bent limb; the
LSP <-> COCO mapping; the baselines' shapes.

Issue 14."""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from syrip_gen.coco import KEYPOINT_NAMES
from syrip_gen.pose3d import (COCO_OF_LSP12, LSP14_NAMES, aligned_error, average_pose, coco_to_lsp12,
                              mean_limb_length, unit_limbs, zero_depth)


def _poses(n=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 12, 3))


def test_known_similarity_transform_gives_zero_error():
    ref = _poses()
    rot = Rotation.random(5, random_state=1).as_matrix()
    moved = 3.7 * np.einsum("bij,bkj->bki", rot, ref) + np.array([1.0, -2.0, 5.0])
    err = aligned_error(moved, ref)
    assert err.shape == (5,) and err.dtype == torch.float64 and float(err.max()) < 1e-9


def test_mirror_and_bent_limb_are_errors():
    ref = _poses()
    mirrored = ref * np.array([-1.0, 1.0, 1.0])  # a reflection is no similarity transform
    assert float(aligned_error(mirrored, ref).min()) > 0.05
    bent = ref.copy()
    bent[:, 0] += 0.5  # move the right ankle
    assert float(aligned_error(bent, ref).min()) > 0.01


def test_units_are_mean_limb_lengths():
    ref = torch.as_tensor(_poses(3, 2))
    assert torch.allclose(mean_limb_length(unit_limbs(ref * 42.0)), torch.ones(3, dtype=torch.float64))
    # moving every joint by 0.1 limb lengths along one axis after scaling costs exactly 0.1 without alignment
    u = unit_limbs(ref)
    assert torch.allclose((u + torch.tensor([0.1, 0, 0]) - u).norm(dim=-1).mean(1), torch.full((3,), 0.1, dtype=torch.float64))


def test_lsp_coco_mapping_names_match():
    for lsp, coco in zip(LSP14_NAMES[:12], COCO_OF_LSP12):
        assert KEYPOINT_NAMES[coco] == lsp
    kps = np.arange(17 * 3).reshape(1, 17, 3)
    assert coco_to_lsp12(kps).shape == (1, 12, 3)


def test_baselines():
    ref = _poses(20, 3)
    mean = average_pose(ref)
    assert mean.shape == (12, 3) and abs(float(mean_limb_length(mean[None])[0]) - 1) < 1e-9
    same = np.repeat(ref[:1], 4, 0)
    assert float(aligned_error(average_pose(same).expand(4, 12, 3), same).max()) < 1e-9
    flat = zero_depth(ref[..., :2])
    assert flat.shape == (20, 12, 3) and float(flat[..., 2].abs().max()) == 0.0
