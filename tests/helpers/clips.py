"""Helpers for the clip tests: a fits file of plausible poses (pose-prior samples inside the joint
limits)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from helpers.render_data import write_fits


def plausible_fits(body, path: Path, n: int = 2, seed: int = 0) -> Path:
    """``write_fits``' records with their body poses replaced by pose-prior samples held 0.1 rad
    inside the joint limits (what a good fit of a real photo looks like to the gates)."""
    from syrip_gen.fit.limits import limit_table
    from syrip_gen.fit.prior import default_prior

    path = write_fits(body, path, n=n, seed=seed, postures=("supine",), extra_bad=False)
    lo, hi = limit_table()
    poses = default_prior().sample(n, torch.Generator().manual_seed(seed)).reshape(n, -1, 3)
    lines = []
    for rec, p in zip((json.loads(x) for x in path.read_text().splitlines()), poses):
        pose = torch.tensor(rec["pose"], dtype=torch.float32)
        body_pose = p[-23:].clone()
        body_pose = torch.maximum(torch.minimum(body_pose, hi[1:] - 0.1), lo[1:] + 0.1)
        pose[1:] = body_pose
        rec["pose"] = pose.tolist()
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n")
    return path
