"""Fast keypoints-and-joints forward for fitting: the body folded onto the 24-joint tree.

Why: the fitter evaluates thousands of bodies for hundreds of steps. Anny's own forward
rebuilds rest bone poses (38 SVDs per body) and runs 38-bone kinematics every call, ~2 ms per
body per step on CPU. In the common pose space every Anny bone is moved rigidly by one
posed joint (its nearest posed ancestor), so each COCO keypoint is

    k = Σ_a [ G_a (Y_ka - W_ka J_a) + W_ka J̃_a ]            (a over the 24 joints)

with ``G_a`` the joint's accumulated rotation, ``J_a`` its pivot in the T-pose, ``J̃_a`` the
posed pivot and ``Y_ka``, ``W_ka`` the keypoint regressor folded onto joint a in the T-pose.
``Y`` and ``J`` depend only on shape: we tabulate them on a grid of ages (linear
interpolation, so the age stays differentiable) plus a first-order term in the other shape
parameters (finite differences at each grid age). Per step this costs one 24-joint chain.

The approximation error is checked by tests (≪ 1 mm at the grid ages); the fitter reports
its final numbers with the exact body forward. Bodies other than Anny use their own forward.
"""
from __future__ import annotations

import roma
import torch

from syrip_gen.body.pose_space import JOINT_NAMES, NUM_JOINTS, PARENTS

EXTREMITIES = ((10, 7, 4), (11, 8, 5), (22, 20, 18), (23, 21, 19))  # end, mid, base



def _levels():
    """The 24-joint tree by depth: per level the joints and their parents' positions in the
    level before, plus the permutation back to joint order."""
    depth = [0] * NUM_JOINTS
    for j in range(1, NUM_JOINTS):
        depth[j] = depth[PARENTS[j]] + 1
    levels = [[j for j in range(NUM_JOINTS) if depth[j] == d] for d in range(max(depth) + 1)]
    parent_pos = [None] + [[levels[d - 1].index(PARENTS[j]) for j in levels[d]] for d in range(1, len(levels))]
    order = [j for lev in levels for j in lev]
    inverse = [order.index(j) for j in range(NUM_JOINTS)]
    return levels, parent_pos, inverse


LEVELS, PARENT_POS, INVERSE = _levels()


def chain(pose: torch.Tensor, pivots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Accumulated rotations ``G (B, 24, 3, 3)`` and posed pivots ``(B, 24, 3)`` of a pose
    ``(B, 24, 3)`` (joint 0's rotation ignored: the global orientation is applied later) about
    T-pose pivots ``(B, 24, 3)``; all float32. One batched product per tree level (8 levels)."""
    B = pose.shape[0]
    rot = roma.rotvec_to_rotmat(pose)
    G = [torch.eye(3, dtype=pose.dtype, device=pose.device).expand(B, 1, 3, 3)]
    P = [pivots[:, :1]]
    for lev, ppos in zip(LEVELS[1:], PARENT_POS[1:]):
        Gp, Pp = G[-1][:, ppos], P[-1][:, ppos]  # (B, n, 3, 3), (B, n, 3)
        off = pivots[:, lev] - pivots[:, [PARENTS[j] for j in lev]]
        G.append(Gp @ rot[:, lev])
        P.append(Pp + (Gp @ off[..., None])[..., 0])
    return torch.cat(G, 1)[:, INVERSE], torch.cat(P, 1)[:, INVERSE]


class FoldedAnny(torch.nn.Module):
    """Shape-tabulated keypoint/joint model of an ``AnnyBody`` (see module doc)."""

    def __init__(self, body, grid_points: int = 9, delta: float = 0.05):
        super().__init__()
        lo, hi = float(body.shape_lower[0]), float(body.shape_upper[0])
        # Anny's age is piecewise linear with a knot at 0 (6 months): keep it on the grid
        knot = 0.0 if lo < 0.0 < hi else (lo + hi) / 2
        n1 = max(2, grid_points - 2)
        grid = torch.cat([torch.linspace(lo, knot, n1), torch.linspace(knot, hi, 3)[1:]])
        self.register_buffer("grid", grid.float())
        mean = body.shape_mean.detach().cpu().float()
        self.register_buffer("mean", mean)
        S = mean.numel()
        shapes = mean.repeat(len(grid), S, 1)  # (G, S, S): variant 0 = base, s>0 = +delta in s
        shapes[:, :, 0] = grid[:, None]
        for s in range(1, S):
            shapes[:, s, s] += delta
        with torch.no_grad():
            Y, J, H = _tpose_constants(body, shapes.reshape(-1, S).to(body.device))
        G = len(grid)
        Y, J, H = (x.reshape(G, S, *x.shape[1:]).cpu() for x in (Y, J, H))
        self.register_buffer("Y", Y[:, 0])  # (G, 17, 24, 3)
        self.register_buffer("J", J[:, 0])  # (G, 24, 3)
        self.register_buffer("H", H[:, 0])  # (G, 24, 3)
        self.register_buffer("dY", (Y[:, 1:] - Y[:, :1]) / delta)  # (G, S-1, 17, 24, 3)
        self.register_buffer("dJ", (J[:, 1:] - J[:, :1]) / delta)
        self.register_buffer("dH", (H[:, 1:] - H[:, :1]) / delta)
        self.register_buffer("W", _folded_weights(body).cpu())  # (17, 24)
        self.register_buffer("owner_of_position", _position_owner(body))
        self.to(body.device)

    def _interp(self, shape: torch.Tensor):
        """Constants ``Y (B,17,24,3)``, ``J (B,24,3)``, ``H (B,24,3)`` for shapes ``(B, S)``."""
        age = shape[:, 0].clamp(self.grid[0], self.grid[-1])
        i = torch.clamp(torch.searchsorted(self.grid, age.detach().contiguous()) - 1, 0, len(self.grid) - 2)
        t = (age - self.grid[i]) / (self.grid[i + 1] - self.grid[i])
        wts = torch.zeros(shape.shape[0], len(self.grid), dtype=shape.dtype, device=shape.device)
        wts = wts.scatter(1, i[:, None], (1 - t)[:, None]).scatter_add(1, (i + 1)[:, None], t[:, None])
        off = shape[:, 1:] - self.mean[1:]

        def mix(base, d):
            flat = base.flatten(1)
            dflat = d.flatten(2)  # (G, S-1, n)
            mixed = (wts[:, :, None] * off[:, None, :]).flatten(1)  # (B, G*(S-1))
            return (wts @ flat + mixed @ dflat.flatten(0, 1)).reshape(-1, *base.shape[1:])

        return mix(self.Y, self.dY), mix(self.J, self.dJ), mix(self.H, self.dH)

    def constants(self, shape: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Shape-dependent constants for ``posed``: compute once while the shape is frozen."""
        Y, J, H = self._interp(shape)
        rel = Y - self.W[None, :, :, None] * J[:, None]  # (B, 17, 24, 3)
        o = self.owner_of_position
        return rel.flatten(2).transpose(1, 2), J, H - J[:, o]  # rel as (B, 72, 17)

    def posed(self, pose: torch.Tensor, consts: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints ``(B, 17, 3)`` and joints ``(B, 24, 3)`` of poses ``(B, 24, 3)``."""
        rel, J, H_rel = consts
        G, P = chain(pose, J)
        B = pose.shape[0]
        kps = (G.transpose(1, 2).reshape(B, 3, -1) @ rel).transpose(1, 2) + torch.einsum("kj,bjd->bkd", self.W, P)
        o = self.owner_of_position
        joints = P[:, o] + (G[:, o] @ H_rel[..., None])[..., 0]
        joints = _fill_extremities(joints)
        glob = roma.rotvec_to_rotmat(pose[:, 0]).transpose(-1, -2)
        return kps @ glob, joints @ glob

    def forward(self, pose: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pose ``(B, 24, 3)``, shape ``(B, S)`` -> keypoints ``(B, 17, 3)``, joints ``(B, 24, 3)``
        float32, common frame, pelvis at the origin, global orientation applied."""
        return self.posed(pose, self.constants(shape))


class GenericKeypoints(torch.nn.Module):
    """Any ``BodyModel`` through its own forward (SMIL/SMPL, or a test body)."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def constants(self, shape):
        return shape

    def posed(self, pose, shape):
        out = self.body(pose, shape)
        return out.keypoints, out.joints

    def forward(self, pose, shape):
        return self.posed(pose, shape)


def keypoint_model(body) -> torch.nn.Module:
    """The fastest exact-enough keypoint model for ``body``."""
    from syrip_gen.body.anny_body import AnnyBody

    return FoldedAnny(body) if isinstance(body, AnnyBody) else GenericKeypoints(body)


# ---- set-up helpers (use AnnyBody's internals once, at construction) ------------------------

def _owner_bones(body) -> tuple[list[int], list[int]]:
    """For each Anny bone, the common joint that moves it; for each common joint, its bone."""
    from syrip_gen.body.anny_body import BONE_OF_JOINT

    m = body.anny
    labels = list(m.bone_labels)
    parents = [int(p) for p in m.bone_parents]
    joint_of_bone = {BONE_OF_JOINT[n]: JOINT_NAMES.index(n) for n in BONE_OF_JOINT}
    joint_of_bone[labels[0]] = 0  # root bone = pelvis
    owner = []
    for c in range(len(labels)):
        while labels[c] not in joint_of_bone:
            c = parents[c]
        owner.append(joint_of_bone[labels[c]])
    bone_of_joint = [labels.index(BONE_OF_JOINT[n]) if n in BONE_OF_JOINT else -1 for n in JOINT_NAMES]
    bone_of_joint[0] = 0
    return owner, bone_of_joint


def _folded_weights(body) -> torch.Tensor:
    owner, _ = _owner_bones(body)
    W = torch.zeros(body.kp_a.shape[0], NUM_JOINTS, dtype=torch.float32, device=body.kp_a.device)
    return W.index_add(1, torch.tensor(owner, device=W.device), body.kp_a)


def _position_owner(body) -> torch.Tensor:
    owner, _ = _owner_bones(body)
    pos = body.position_bone.clamp(min=0)
    return torch.tensor([owner[int(c)] for c in pos])


def _tpose_constants(body, shape: torch.Tensor):
    """T-pose constants in the common frame, pelvis at the origin, for shapes ``(N, S)``:
    ``Y (N, 17, 24, 3)``, pivots ``J (N, 24, 3)``, joint-position points ``H (N, 24, 3)``."""
    m = body.anny
    owner, bone_of_joint = _owner_bones(body)
    N = shape.shape[0]
    coeffs = body._coefficients(shape)
    rest = body._rest_bone_poses(coeffs, m)
    zero = torch.zeros(N, NUM_JOINTS, 3, dtype=shape.dtype, device=shape.device)
    T, poses = m.get_bone_transforms(body._bone_deltas(zero), rest)
    p = body.kp_p0[None] + torch.einsum("bc,ckjd->bkjd", coeffs, body.kp_pc)  # (N, 17, 38, 3)
    y = torch.einsum("bjde,bkje->bkjd", T[:, :, :3, :3], p) + T[:, None, :, :3, 3] * body.kp_a[None, :, :, None]
    Y = torch.zeros(N, y.shape[1], NUM_JOINTS, 3, dtype=y.dtype, device=y.device)
    Y = Y.index_add(2, torch.tensor(owner, device=y.device), y)
    heads = poses[:, :, :3, 3]
    pelvis = heads[:, :1]
    J = heads[:, torch.tensor(bone_of_joint).clamp(min=0)]
    H = heads[:, body.position_bone.clamp(min=0)]
    W = _folded_weights(body)
    C = body.frame
    Y = (Y - W[None, :, :, None] * pelvis[:, None]) @ C
    return Y, (J - pelvis) @ C, (H - pelvis) @ C


def _fill_extremities(joints: torch.Tensor) -> torch.Tensor:
    """Feet and hands have no bone in Anny's rig: extend the shin and forearm by a third."""
    out = joints.clone()
    for end, mid, base in EXTREMITIES:
        out[:, end] = joints[:, mid] + (joints[:, mid] - joints[:, base]) / 3.0
    return out
