"""Make the bundled pose prior, ``assets/pose_prior.npz``: a Gaussian mixture fitted to poses
the project itself wrote down (nothing learnt from licensed data), so it may be redistributed.

Source of poses, in order of preference:
1. the posture library (``syrip_gen.posture_library``, ``assets/postures/``) when it exists: every
   library pose plus small seeded jitter (``--source library`` uses only these);
2. while the library has fewer than 50 poses (or with ``--source hand``), hand-written infant-typical pose families generated here (``hand_written_poses``):
   supine with flexed, abducted hips and bent knees (the "frog"/kicking postures of young
   infants), supine with legs up, prone with head lifted and forearm support, prone flat,
   sitting (hips ~90°, legs forward, trunk leaning forward), supported standing, side-lying.
   Ranges are from the degree table below, sampled uniformly with a seeded generator.

Usage: ``python scripts/make_bundled_prior.py [--out assets/pose_prior.npz] [--components 8]``
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import roma
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from syrip_gen.body.pose_space import JOINT, flip_pose  # noqa: E402
from syrip_gen.fit.prior import fit_gmm  # noqa: E402

# Family -> degree ranges (lo, hi) per named motion, left side (right mirrored). Signs are
# handled in _compose: positive = flexion / abduction / external rotation / arm down / arm forward.
FAMILIES = {
    "supine_frog": dict(hip_flex=(40, 100), hip_abd=(20, 55), hip_ext_rot=(10, 60), knee_flex=(50, 120),
                        arm_down=(-20, 60), arm_fwd=(-10, 50), elbow_flex=(30, 130), spine_flex=(-5, 15),
                        neck_turn=(-60, 60), neck_flex=(-10, 20)),
    "supine_legs_up": dict(hip_flex=(70, 120), hip_abd=(0, 30), hip_ext_rot=(-10, 30), knee_flex=(10, 80),
                           arm_down=(0, 70), arm_fwd=(0, 80), elbow_flex=(10, 110), spine_flex=(0, 20),
                           neck_turn=(-45, 45), neck_flex=(0, 25)),
    "supine_relaxed": dict(hip_flex=(0, 45), hip_abd=(0, 30), hip_ext_rot=(0, 40), knee_flex=(0, 60),
                           arm_down=(20, 80), arm_fwd=(-10, 30), elbow_flex=(0, 90), spine_flex=(-5, 10),
                           neck_turn=(-70, 70), neck_flex=(-10, 15)),
    "prone_head_up": dict(hip_flex=(-10, 30), hip_abd=(5, 40), hip_ext_rot=(0, 50), knee_flex=(0, 90),
                          arm_down=(-30, 40), arm_fwd=(40, 100), elbow_flex=(40, 120), spine_flex=(-30, -5),
                          neck_turn=(-30, 30), neck_flex=(-50, -15)),
    "prone_flat": dict(hip_flex=(0, 50), hip_abd=(10, 50), hip_ext_rot=(10, 60), knee_flex=(20, 110),
                       arm_down=(-40, 50), arm_fwd=(0, 60), elbow_flex=(40, 140), spine_flex=(-10, 5),
                       neck_turn=(-90, 90), neck_flex=(-20, 5)),
    "sitting": dict(hip_flex=(70, 110), hip_abd=(10, 45), hip_ext_rot=(0, 45), knee_flex=(0, 90),
                    arm_down=(30, 80), arm_fwd=(0, 60), elbow_flex=(0, 100), spine_flex=(5, 35),
                    neck_turn=(-40, 40), neck_flex=(-20, 15)),
    "standing_supported": dict(hip_flex=(-5, 25), hip_abd=(0, 20), hip_ext_rot=(0, 30), knee_flex=(0, 30),
                               arm_down=(-40, 60), arm_fwd=(0, 90), elbow_flex=(0, 90), spine_flex=(-5, 15),
                               neck_turn=(-40, 40), neck_flex=(-15, 15)),
    "side_lying": dict(hip_flex=(20, 100), hip_abd=(-10, 20), hip_ext_rot=(-10, 30), knee_flex=(20, 120),
                       arm_down=(0, 80), arm_fwd=(20, 90), elbow_flex=(20, 130), spine_flex=(0, 30),
                       neck_turn=(-30, 30), neck_flex=(-10, 25)),
}


def _rot(axis: int, deg: float) -> torch.Tensor:
    v = torch.zeros(3, dtype=torch.float64)
    v[axis] = math.radians(deg)
    return roma.rotvec_to_rotmat(v)


def _compose(m: dict, rng: np.random.Generator) -> torch.Tensor:
    """One pose ``(24, 3)`` from per-side draws of the named motions (sides drawn independently)."""
    pose = torch.zeros(24, 3, dtype=torch.float64)

    def draw(key):
        lo, hi = m[key]
        return float(rng.uniform(lo, hi))

    for side, s in (("left", 1.0), ("right", -1.0)):
        # hip: flexion is -x, abduction +z (left), external rotation +y (left)
        hip = _rot(0, -draw("hip_flex")) @ _rot(2, s * draw("hip_abd")) @ _rot(1, s * draw("hip_ext_rot"))
        pose[JOINT[f"{side}_hip"]] = roma.rotmat_to_rotvec(hip)
        pose[JOINT[f"{side}_knee"], 0] = math.radians(draw("knee_flex"))
        pose[JOINT[f"{side}_ankle"], 0] = math.radians(rng.uniform(-20, 25))
        # shoulder: arm down is -z (left), arm forward -y (left)
        sh = _rot(1, -s * draw("arm_fwd")) @ _rot(2, -s * draw("arm_down")) @ _rot(0, rng.uniform(-30, 30))
        pose[JOINT[f"{side}_shoulder"]] = roma.rotmat_to_rotvec(sh)
        pose[JOINT[f"{side}_elbow"], 1] = -s * math.radians(draw("elbow_flex"))
        pose[JOINT[f"{side}_wrist"]] = torch.tensor(rng.uniform(-0.3, 0.3, 3))
    flex = draw("spine_flex")
    for j in ("spine1", "spine2", "spine3"):
        pose[JOINT[j]] = torch.tensor([math.radians(flex / 3), math.radians(rng.uniform(-8, 8)),
                                       math.radians(rng.uniform(-6, 6))])
    turn, nflex = draw("neck_turn"), draw("neck_flex")
    pose[JOINT["neck"]] = torch.tensor([math.radians(nflex * 0.6), math.radians(turn * 0.5),
                                        math.radians(rng.uniform(-10, 10))])
    pose[JOINT["head"]] = torch.tensor([math.radians(nflex * 0.4), math.radians(turn * 0.5), 0.0])
    return pose.float()


def hand_written_poses(per_family: int, seed: int) -> torch.Tensor:
    """``(F * per_family, 24, 3)`` poses from the families above, seeded."""
    rng = np.random.default_rng(seed)
    poses = []
    for name in sorted(FAMILIES):
        poses += [_compose(FAMILIES[name], rng) for _ in range(per_family)]
    return torch.stack(poses)


def library_poses(jitter: float, copies: int, seed: int) -> torch.Tensor | None:
    """Posture-library poses with seeded jitter, or None when the library does not exist yet."""
    try:
        from syrip_gen import posture_library  # written by the posture-library owner
    except ImportError:
        return None
    lib = posture_library.load_library()
    if not lib:
        return None
    base = posture_library.library_poses(lib).float()
    g = torch.Generator().manual_seed(seed)
    reps = base.repeat(copies, 1, 1)
    reps[:, 1:] += jitter * torch.randn(reps[:, 1:].shape, generator=g)
    reps[:, 0] = 0
    return reps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "assets" / "pose_prior.npz"))
    ap.add_argument("--components", type=int, default=8)
    ap.add_argument("--per-family", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--source", choices=("auto", "hand", "library"), default="auto")
    args = ap.parse_args(argv)
    parts, how = [], []
    lib = None if args.source == "hand" else library_poses(0.08, 20, args.seed)
    if lib is not None:
        parts.append(lib)
        how.append(f"{len(lib) // 20} posture-library poses (assets/postures/library.yaml) x20 with 0.08 rad "
                   "seeded jitter")
    elif args.source == "library":
        raise SystemExit("posture library not available")
    if args.source == "hand" or (args.source == "auto" and (lib is None or len(lib) // 20 < 50)):
        parts.append(hand_written_poses(args.per_family, args.seed))
        how.append(f"hand-written infant pose families ({', '.join(sorted(FAMILIES))}), {args.per_family} "
                   "seeded uniform draws each")
    poses = torch.cat(parts)
    poses = torch.cat([poses, flip_pose(poses)])  # left-right symmetric
    how = " + ".join(how) + f", each also mirrored; {len(poses)} poses (scripts/make_bundled_prior.py, seed {args.seed})"
    prior = fit_gmm(poses, args.components, seed=args.seed,
                    description=f"EM Gaussian mixture ({args.components} full-covariance components) on {how}")
    prior.save(args.out)
    print(f"wrote {args.out}: {prior.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
