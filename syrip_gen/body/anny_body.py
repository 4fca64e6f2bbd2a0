"""Anny as an infant body model: newborn to 12 months, COCO-17 keypoints, common pose space.

Anny (PyPI ``anny``: Apache-2.0 code, CC0 MakeHuman assets) is built once into the project's
cache (``syrip_gen.paths.cache_dir()/anny``, ~150 s and ~1.6 GB RAM the first time) and loaded
from there afterwards. We use the ``anny-notoes-nohands`` rig (38 bones) and never Anny's
smpl/smplx topologies (those download non-commercial files).

Two forward paths give the same keypoints:
- the full mesh (Anny's own blend shapes + linear blend skinning), for rendering;
- a keypoints-only path for fitting. Skinning is linear in the rest vertex, so each keypoint
  ``k = Σ_v r_kv Σ_j w_vj T_j [v;1]`` equals ``Σ_j T_j [P_kj; a_kj]`` with ``P`` and ``a``
  folded from the regressor, skinning weights and blend shapes ahead of time. A batch then
  costs one small matrix product plus the 38-bone kinematics, whatever the mesh size.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

import numpy as np
import roma
import torch

from syrip_gen.body.base import BodyModel, BodyOutput, MeshTopology
from syrip_gen.body.pose_space import JOINT, JOINT_NAMES, NUM_JOINTS, PARENTS, change_frame, rx
from syrip_gen.errors import UserError
from syrip_gen.geometry import rotation_between

log = logging.getLogger(__name__)

RIG = "anny-notoes-nohands"
# Local changes we use: the head-scale controls correct Anny's small newborn head.
HEAD_CHANGES = ("head-scale-vert-incr", "head-scale-horiz-incr", "head-scale-depth-incr")
SHAPE_NAMES = ("age", "gender", "weight", "muscle", "height")  # Anny phenotype units
ANNY_AGE_MIN, ANNY_AGE_MAX = -1.0 / 3.0, 0.04  # newborn .. 12 months

# Months -> Anny age, calibrated so that lengths match WHO growth-chart medians
# (50 cm at birth, 67 cm at 6 months, 75 cm at 12 months) with the height phenotype at
# HEIGHT_MEAN; measured 51.4 / 66.9 / 75.6 cm (tests/body/test_body_anny.py checks ±5 cm).
AGE_TABLE_MONTHS = (0.0, 6.0, 12.0)
AGE_TABLE_ANNY = (-1.0 / 3.0, 0.0, 0.04)
HEIGHT_MEAN = 0.42
# Head-scale local change per age (same anchors). Stock Anny's head is 1/4.8 of the length at
# birth (crown to chin); real newborns' is ~1/4. These give 0.257 / 0.248 / 0.238.
HEAD_SCALE_TABLE = (0.5, 0.5, 0.65)

# Common-space joint -> Anny bone. Anny bones left out (twist bones, shoulder01, neck02/03,
# spine04/02) stay at rest; SMPL's foot and hand joints have no bone in this rig.
BONE_OF_JOINT = {
    "left_hip": "upperleg01.L", "right_hip": "upperleg01.R",
    "spine1": "spine05", "left_knee": "lowerleg01.L", "right_knee": "lowerleg01.R",
    "spine2": "spine03", "left_ankle": "foot.L", "right_ankle": "foot.R",
    "spine3": "spine01", "neck": "neck01", "left_collar": "clavicle.L",
    "right_collar": "clavicle.R", "head": "head", "left_shoulder": "upperarm01.L",
    "right_shoulder": "upperarm01.R", "left_elbow": "lowerarm01.L", "right_elbow": "lowerarm01.R",
    "left_wrist": "wrist.L", "right_wrist": "wrist.R",
}
# Joint-centre positions: the head of this bone (pelvis = root).
POSITION_BONE = {**BONE_OF_JOINT, "pelvis": "root", "spine1": "spine04", "spine3": "spine02"}
# Anny's native frame: z up, facing -y. C maps common-frame vectors into it.
FRAME = rx(90.0, dtype=torch.float64)


def interp(x: torch.Tensor, xs: tuple[float, ...], ys: tuple[float, ...]) -> torch.Tensor:
    """Piecewise-linear interpolation ``(B,) -> (B,)``, extrapolated linearly at both ends."""
    xs_t = torch.tensor(xs, dtype=x.dtype, device=x.device)
    ys_t = torch.tensor(ys, dtype=x.dtype, device=x.device)
    i = torch.clamp(torch.searchsorted(xs_t, x.detach().contiguous()) - 1, 0, len(xs) - 2)
    t = (x - xs_t[i]) / (xs_t[i + 1] - xs_t[i])
    return ys_t[i] + t * (ys_t[i + 1] - ys_t[i])


@contextlib.contextmanager
def _file_lock(path: Path):
    """Serialise the one-off Anny build across processes (parallel tests, render workers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def anny_cache_dir() -> Path:
    from syrip_gen.paths import cache_dir

    return Path(os.environ.get("ANNY_CACHE_DIR", cache_dir() / "anny"))


def load_anny(cache: Path | None = None):
    """Build (first time) or load Anny's infant-ready model data from the project cache.

    Keeps only the compact model file Anny needs afterwards: the intermediate build files
    (~900 MB) are deleted once the compact one exists.
    """
    try:
        import anny
        import anny.paths
    except ImportError as err:  # pragma: no cover - dependency missing
        raise UserError(f"the Anny body model is not installed ({err}); run `make setup`") from None
    cache = Path(cache or anny_cache_dir())
    anny.paths.set_anny_cache_path(cache)
    with _file_lock(cache / ".build.lock"):
        first = not any(cache.glob("v*/build_compact_model_data_*.safetensors"))
        if first:
            log.warning("building the Anny infant model into %s (first use, ~2-3 minutes)", cache)
        model = anny.Anny(rig=RIG, topology="anny", local_changes=list(HEAD_CHANGES),
                          skinning_method="lbs")
        for stale in list(cache.glob("v*/load_data_*.safetensors")) + list(
                cache.glob("v*/build_model_data_*.safetensors")):
            stale.unlink(missing_ok=True)
    return model


class AnnyBody(BodyModel):
    """Anny posed in the common pose space, with infant age in months and a corrected head."""

    name = "anny"
    shape_names = SHAPE_NAMES

    def __init__(self, anny_model, regressor_weights: torch.Tensor | None = None):
        """``anny_model``: an ``anny.Anny`` (rig ``anny-notoes-nohands``, head local changes).
        ``regressor_weights``: ``(17, V)`` COCO regressor; Anny's own when None."""
        super().__init__()
        m = anny_model.to(torch.float64)
        self.anny = m
        if regressor_weights is None:
            regressor_weights = default_regressor(m)
        bone = {label: i for i, label in enumerate(m.bone_labels)}
        self.bone_of_joint = torch.tensor(
            [bone[BONE_OF_JOINT[n]] if n in BONE_OF_JOINT else -1 for n in JOINT_NAMES])
        self.position_bone = torch.tensor(
            [bone[POSITION_BONE[n]] if n in POSITION_BONE else -1 for n in JOINT_NAMES])
        self.local_change_index = torch.tensor(
            [m.local_change_labels.index(c) for c in HEAD_CHANGES])
        self.register_buffer("frame", FRAME.float())
        self.register_buffer("shape_lower", torch.tensor([ANNY_AGE_MIN, 0, 0, 0, 0], dtype=torch.float32))
        self.register_buffer("shape_upper", torch.tensor([ANNY_AGE_MAX, 1, 1, 1, 1], dtype=torch.float32))
        self.register_buffer("shape_mean", torch.tensor([0.0, 0.5, 0.5, 0.5, HEIGHT_MEAN], dtype=torch.float32))
        self.register_buffer("shape_std", torch.tensor([0.15, 0.3, 0.2, 0.2, 0.2], dtype=torch.float32))
        self._fold_keypoint_regressor(regressor_weights.to(torch.float64))
        self._fold_phenotype_corners()
        self._fold_rest_correction()
        m.to(torch.float32)  # folded in float64 above; forward passes run in float32

    # ---- set-up ---------------------------------------------------------------------------
    def _fold_keypoint_regressor(self, reg: torch.Tensor) -> None:
        """Precompute ``a (K, J)``, ``P0 (K, J, 3)``, ``Pc (C, K, J, 3)`` (see module doc)."""
        m = self.anny
        V, J = m.template_vertices.shape[0], len(m.bone_labels)
        dense_w = torch.zeros(V, J, dtype=torch.float64)
        dense_w.scatter_add_(1, m.vertex_bone_indices.long(), m.vertex_bone_weights.to(torch.float64))
        rw = reg[:, :, None] * dense_w[None]  # (K, V, J)
        self.register_buffer("kp_a", rw.sum(1).float())
        self.register_buffer("kp_p0", torch.einsum("kvj,vd->kjd", rw, m.template_vertices).float())
        self.register_buffer("kp_pc", torch.einsum("kvj,cvd->ckjd", rw, m.blendshapes).float())

    def _fold_rest_correction(self) -> None:
        """Rotations that take Anny's rest A-pose (arms down, elbows bent) to the T-pose zero."""
        with torch.no_grad():
            coeffs = self._coefficients(self.shape_for_age(torch.tensor([6.0])).double())
            rest = self._rest_bone_poses(coeffs, self.anny)[0, :, :3, 3]
        heads = rest @ FRAME  # common frame (row vectors: v_common = Cᵀ v_anny)
        b = {label: i for i, label in enumerate(self.anny.bone_labels)}
        correction = torch.eye(3, dtype=torch.float64).repeat(NUM_JOINTS, 1, 1)
        for side, sign in (("L", 1.0), ("R", -1.0)):
            target = torch.tensor([sign, 0.0, 0.0], dtype=torch.float64)
            upper = heads[b[f"lowerarm01.{side}"]] - heads[b[f"upperarm01.{side}"]]
            q_sh = torch.from_numpy(rotation_between(upper.numpy(), target.numpy()))
            fore = q_sh @ (heads[b[f"wrist.{side}"]] - heads[b[f"lowerarm01.{side}"]])
            q_el = torch.from_numpy(rotation_between(fore.numpy(), target.numpy()))
            side_name = "left" if side == "L" else "right"
            correction[JOINT[f"{side_name}_shoulder"]] = q_sh
            correction[JOINT[f"{side_name}_elbow"]] = q_el
        # accumulated correction of each joint's parent chain
        chain = torch.eye(3, dtype=torch.float64).repeat(NUM_JOINTS, 1, 1)
        for j in range(1, NUM_JOINTS):
            chain[j] = chain[PARENTS[j]] @ correction[j]
        parent_chain = torch.stack([chain[PARENTS[j]] if j else torch.eye(3, dtype=torch.float64)
                                    for j in range(NUM_JOINTS)])
        self.register_buffer("rest_correction", correction.float())
        self.register_buffer("parent_chain", parent_chain.float())

    # ---- shape ----------------------------------------------------------------------------
    def shape_for_age(self, months: torch.Tensor) -> torch.Tensor:
        months = torch.as_tensor(months, dtype=torch.float32).reshape(-1)
        shape = self.shape_mean.to(months.device).expand(len(months), -1).clone()
        shape[:, 0] = interp(months, AGE_TABLE_MONTHS, AGE_TABLE_ANNY)
        return shape

    def age_months(self, shape: torch.Tensor) -> torch.Tensor:
        return interp(shape[:, 0], AGE_TABLE_ANNY, AGE_TABLE_MONTHS)

    def _anny_coefficients(self, shape: torch.Tensor) -> torch.Tensor:
        """Anny's own blend-shape coefficients ``(B, C)`` of shapes ``(B, 5)``, head scale
        following age (the reference that :meth:`_coefficients` reproduces faster)."""
        m, dtype = self.anny, shape.dtype
        labels = m.phenotype_labels
        pheno = torch.full((shape.shape[0], len(labels)), 0.5, dtype=dtype, device=shape.device)
        for i, name in enumerate(SHAPE_NAMES):
            pheno[:, labels.index(name)] = shape[:, i].to(dtype)
        local = torch.zeros((shape.shape[0], len(m.local_change_labels)), dtype=dtype, device=shape.device)
        local[:, self.local_change_index] = self._head_scale(shape)[:, None]
        facial = torch.zeros((shape.shape[0], 0), dtype=dtype, device=shape.device)
        return m._get_phenotype_blendshape_coefficients(pheno, local, facial)

    def _head_scale(self, shape: torch.Tensor) -> torch.Tensor:
        return interp(shape[:, 0], AGE_TABLE_ANNY, HEAD_SCALE_TABLE)

    def _fold_phenotype_corners(self) -> None:
        """Tabulate the phenotype part of the coefficients at every anchor corner.

        Each of Anny's phenotype blend shapes is weighted by a product of one interpolation
        weight per phenotype group (or by a constant), and the weights of a group sum to one;
        so the coefficients are exactly ``Σ_corners Π_g w_g · T[corner]`` — a product of small
        weight vectors and a table, instead of Anny's product over all variations per shape
        (10-20x slower forward and backward at large batches)."""
        m = self.anny
        anchors = [m.anchors[name].to(torch.float64) for name in SHAPE_NAMES]
        grids = torch.meshgrid(*anchors, indexing="ij")
        corners = torch.stack([g.reshape(-1) for g in grids], 1)  # (N, 5) in SHAPE_NAMES order
        table = self._anny_coefficients(corners)
        table[:, self._local_columns] = 0.0
        self.register_buffer("corner_table", table)

    @property
    def _local_columns(self) -> torch.Tensor:
        """Coefficient columns of the (positive part of the) head local changes."""
        first = self.anny.blendshapes.shape[0] - 2 * len(self.anny.local_change_labels)
        return first + 2 * self.local_change_index

    def _coefficients(self, shape: torch.Tensor) -> torch.Tensor:
        """Blend-shape coefficients ``(B, C)`` of shapes ``(B, 5)``; equal to Anny's own."""
        from anny.utils.interpolation import linear_interpolation_coefficients

        weights = None
        for i, name in enumerate(SHAPE_NAMES):
            w = linear_interpolation_coefficients(shape[:, i], self.anny.anchors[name].to(shape.dtype))
            weights = w if weights is None else (weights[:, :, None] * w[:, None, :]).flatten(1)
        coeffs = weights @ self.corner_table.to(shape.dtype)
        head = self._head_scale(shape)
        local = torch.zeros_like(coeffs)
        local[:, self._local_columns] = head[:, None]  # positive part: head scales are >= 0
        return coeffs + local

    # ---- kinematics -----------------------------------------------------------------------
    @staticmethod
    def _rest_bone_poses(coeffs: torch.Tensor, m) -> torch.Tensor:
        """Rest bone poses ``(B, J, 4, 4)`` (Anny's 'cached' orientation) without any vertex."""
        from anny.skinning.skinning import apply_linear_blendshape

        heads = apply_linear_blendshape(m.template_bone_heads, m.bone_heads_blendshapes, coeffs)
        mats = m.bone_template_orientation_matrices[None] + torch.einsum(
            "ba,akij->bkij", coeffs, m.bone_orientation_blendshapes)
        rot = roma.special_procrustes(mats)
        return roma.Rigid(linear=rot, translation=heads).to_homogeneous()

    def _bone_deltas(self, pose: torch.Tensor) -> torch.Tensor:
        """Common-space pose ``(B, 24, 3)`` -> Anny local-ref deltas ``(B, 38, 4, 4)``.

        ``L_j = G_pᵀ R_j G_p Q_j``: ``Q_j`` takes Anny's rest to the T-pose at joint j and
        ``G_p`` is the accumulated rest correction of j's parents; then ``C L_j Cᵀ``.
        The global orientation (joint 0) is applied afterwards, about the pelvis.
        """
        B = pose.shape[0]
        rot = roma.rotvec_to_rotmat(pose)  # (B, 24, 3, 3)
        gp = self.parent_chain
        local = gp.transpose(-1, -2) @ rot @ gp @ self.rest_correction
        local = change_frame(local, self.frame)
        deltas = torch.eye(4, dtype=pose.dtype, device=pose.device).repeat(B, len(self.anny.bone_labels), 1, 1)
        joints = torch.nonzero(self.bone_of_joint >= 0).flatten()
        deltas[:, self.bone_of_joint[joints], :3, :3] = local[:, joints]
        return deltas

    def forward(self, pose: torch.Tensor, shape: torch.Tensor, with_vertices: bool = False) -> BodyOutput:
        """pose ``(B, 24, 3)`` float32 axis-angle (common space); shape ``(B, 5)`` float32.

        Returns keypoints ``(B, 17, 3)``, joints ``(B, 24, 3)`` and, with ``with_vertices``,
        vertices ``(B, V, 3)``; metres, common frame, pelvis at the origin.
        """
        m = self.anny
        if shape.shape[0] == 1 and pose.shape[0] > 1:
            shape = shape.expand(pose.shape[0], -1)
        coeffs = self._coefficients(shape)
        rest = self._rest_bone_poses(coeffs, m)
        transforms, bone_poses = m.get_bone_transforms(self._bone_deltas(pose), rest)
        # keypoints: Σ_j T_j [P_kj ; a_kj]
        p = self.kp_p0[None] + torch.einsum("bc,ckjd->bkjd", coeffs, self.kp_pc)
        kps = torch.einsum("bjde,bkje->bkd", transforms[:, :, :3, :3], p) + torch.einsum(
            "bjd,kj->bkd", transforms[:, :, :3, 3], self.kp_a)
        heads = bone_poses[:, :, :3, 3]
        joints = heads[:, self.position_bone.clamp(min=0)]
        joints = _fill_extremity_joints(joints)
        pelvis = joints[:, :1]
        glob = roma.rotvec_to_rotmat(pose[:, 0])  # (B, 3, 3)
        to_common = self.frame  # v_common = Cᵀ v_anny, i.e. row-vector v @ C

        def place(x):
            return (x - pelvis) @ to_common @ glob.transpose(-1, -2)

        verts = None
        if with_vertices:
            rest_v = m.get_rest_vertices(coeffs)
            verts = place(m.get_skinned_vertices(rest_v, transforms))
        return BodyOutput(keypoints=place(kps), joints=place(joints), vertices=verts)

    # ---- mesh -----------------------------------------------------------------------------
    def topology(self) -> MeshTopology:
        return anny_topology(self.anny)


def default_regressor(anny_model) -> torch.Tensor:
    """Anny's own COCO-17 vertex regressor ``(17, V)`` (rows sum to one)."""
    import anny

    return anny.KeypointsRegressor.coco(anny_model).regression_weights[:17]


def _fill_extremity_joints(joints: torch.Tensor) -> torch.Tensor:
    """Feet and hands have no bone in this rig: extend the shin and forearm by a third."""
    out = joints.clone()
    for end, mid, base in ((10, 7, 4), (11, 8, 5), (22, 20, 18), (23, 21, 19)):
        out[:, end] = joints[:, mid] + (joints[:, mid] - joints[:, base]) / 3.0
    return out


def anny_topology(m) -> MeshTopology:
    """Triangulated faces, seam-split UVs and body parts of an Anny model."""
    faces = m.faces.long()
    uv_index = m.face_texture_coordinate_indices.long()
    if faces.shape[1] == 4:  # quads -> two triangles each
        faces = torch.cat([faces[:, [0, 1, 2]], faces[:, [0, 2, 3]]])
        uv_index = torch.cat([uv_index[:, [0, 1, 2]], uv_index[:, [0, 2, 3]]])
    pairs = torch.stack([faces.flatten(), uv_index.flatten()], 1).numpy()
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    uvs = m.texture_coordinates.numpy()[unique[:, 1]].astype(np.float32)
    return MeshTopology(
        body_faces=faces.numpy(),
        faces=inverse.reshape(-1, 3).astype(np.int64),
        uvs=uvs,
        render_vertex_index=unique[:, 0].astype(np.int64),
        part_of_vertex=torch.gather(m.vertex_bone_indices, 1, m.vertex_bone_weights.argmax(1, keepdim=True))
        .flatten().numpy().astype(np.int16),
        part_names=tuple(m.bone_labels),
    )
