"""Gates calibrated on real poses: the penetration gate tells contact from intersection, pose-gate
thresholds follow the run's own fits (never below the configured ones), and planted failures
are still caught when the fits calibrate the gates.

Issue 14."""
from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from syrip_gen.filter import FilterConfig, calibrate, filter_dataset
from syrip_gen.gates.penetration import PARTS, penetration_share, vertex_normals


def _two_balls(gap: float):
    """A hand-sized ball (part hand.L) beside a head-sized ball (part head), ``gap`` metres apart
    (negative: overlapping by that much)."""
    head = trimesh.creation.icosphere(subdivisions=3, radius=0.06)
    hand = trimesh.creation.icosphere(subdivisions=3, radius=0.025)
    hand_v = hand.vertices + [0.06 + 0.025 + gap, 0, 0]
    verts = np.concatenate([head.vertices, hand_v])[None]
    faces = np.concatenate([head.faces, hand.faces + len(head.vertices)])
    parts = np.array([PARTS.index("head")] * len(head.vertices) + [PARTS.index("hand.L")] * len(hand.vertices))
    return verts, parts, faces


@pytest.mark.parametrize("gap", [0.0, -0.005, -0.012])
def test_contact_is_not_penetration(gap):
    verts, parts, faces = _two_balls(gap)  # touching, or pressed in by up to 1.2 cm (soft contact)
    share, _ = penetration_share(verts, parts, faces, depth=0.02)
    assert share[0] <= 0.05, share


def test_intersection_is_penetration():
    verts, parts, faces = _two_balls(-0.045)  # the hand 4.5 cm into the head
    share, worst = penetration_share(verts, parts, faces, depth=0.02)
    assert share[0] > 0.2 and worst == ["hand.L in head"], (share, worst)


def test_normals_point_outwards():
    ball = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    n = vertex_normals(np.asarray(ball.vertices), np.asarray(ball.faces))
    assert np.allclose(np.einsum("ij,ij->i", n, ball.vertices), 1.0, atol=0.02)


def _fits_file(path, poses, shapes):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for i, (p, s) in enumerate(zip(poses, shapes)):
            f.write(json.dumps({"id": f"f{i}", "status": "ok", "mean_error_norm": 0.01, "body": "anny",
                                "pose": np.asarray(p).tolist(), "shape": np.asarray(s).tolist()}) + "\n")
    return path


def test_thresholds_follow_the_fits_but_never_drop(tmp_path, anny_body):
    import torch

    from syrip_gen.fits import read_records as load_fits

    rng = np.random.default_rng(0)
    odd = rng.normal(0, 0.6, (12, 24, 3))  # unlikely poses: high prior NLL
    shapes = anny_body.shape_for_age(torch.full((12,), 6.0)).numpy()
    fits = load_fits(_fits_file(tmp_path / "odd.jsonl", odd, shapes))
    base = FilterConfig(gates=("pose_prior", "joint_limits"))
    cal, record = calibrate(base, fits, anny_body)
    assert record["pose_prior"]["n_fits"] == 24  # the fits and their mirror images
    assert cal.max_prior_nll == max(base.max_prior_nll, record["pose_prior"]["fits_percentile"])
    assert cal.max_prior_nll > base.max_prior_nll  # odd fits: the prior threshold rises
    assert cal.max_joint_limit_rad >= base.max_joint_limit_rad
    calm = load_fits(_fits_file(tmp_path / "calm.jsonl", np.zeros((12, 24, 3)), shapes))
    cal2, record2 = calibrate(base, calm, anny_body)
    assert cal2.max_prior_nll == base.max_prior_nll  # natural fits: never stricter than configured
    assert calibrate(FilterConfig(calibrate_percentile=None), fits, anny_body) == (FilterConfig(calibrate_percentile=None), {})
    assert calibrate(base, {}, anny_body) == (base, {})


def test_planted_failures_still_caught_when_fits_calibrate(tmp_path, anny_body):
    """The planted dataset of test_filter, now with a fits file holding the good poses (what a
    real run has): calibration is on, the good samples pass and every planted failure is
    still rejected for its reason."""
    from test_filter import HAS_LIMITS, PLANTED, planted_samples
    from helpers.filter_fixtures import write_dataset

    names, poses, shape, samples = planted_samples(anny_body)
    root = tmp_path / "data"
    write_dataset(root, samples, info={"fits": "../fits/fits.jsonl"})
    good = [i for i, n in enumerate(names) if PLANTED[n][3] is None]
    path = _fits_file(tmp_path / "fits" / "fits.jsonl", poses.numpy()[good], shape.numpy()[good])
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    with open(path, "w") as f:  # the fits file names every sample's fit (errors as planted)
        for n in names:
            rec = dict(lines[0], id=n, mean_error_norm=PLANTED[n][2])
            if PLANTED[n][3] is None:
                rec.update(pose=poses[names.index(n)].tolist())
            else:
                rec.pop("pose")
            f.write(json.dumps(rec) + "\n")
    report = filter_dataset(root, FilterConfig(), body=anny_body)
    assert report.calibration["pose_prior"]["n_fits"] == 2 * len(good)
    by_id = {r["image_id"]: r for r in report.images}
    for i, n in enumerate(names, 1):
        rec = by_id[i]
        if PLANTED[n][3] is None:
            assert rec["verdict"] == "accept", (n, rec["reasons"])
        elif PLANTED[n][3] != "hyperextension" or HAS_LIMITS:
            assert rec["verdict"] == "reject" and rec["reasons"][0]["gate"] == PLANTED[n][3], (n, rec["reasons"])
