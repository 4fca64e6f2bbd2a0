"""SMIL (infant) or SMPL from the user's own model file, through smplx, in the common pose space.

The model file is licensed and never shipped: ``SmplBody.from_file("smil_web.pkl")`` reads
the chumpy pickle without chumpy (``body/convert.py``), or the ``.npz`` that
``syrip-gen body convert`` made from it. smplx's ``SMPL`` module is built from the arrays
(``data_struct``), with every shape component of the file: smplx keeps only 10 betas when
``shapedirs`` has fewer than 300 columns, so the columns are zero-padded to 300 and
``num_betas`` set to the file's count (SMIL has 20); smplx then slices back to exactly those.

Frame: SMPL's native frame *is* the common frame (x = body's left, y = up, z = forward,
zero = T-pose), so ``pose`` maps 1:1 onto the SMPL joints. As for every body, the output is
centred on the pelvis and the global orientation ``pose[:, 0]`` turns the body about it.

Two forward paths give the same keypoints (tests check):
- the full mesh through ``smplx.SMPL`` (``with_vertices=True``), for rendering;
- a keypoints-only path for fitting with smplx's own ``lbs`` pieces: the 24 joints come from
  the joint regressor folded into the shape space, and only the 5 face vertices are skinned
  (shape + pose blend shapes + LBS), whatever the mesh size.

COCO-17 keypoints: nose, eyes and ears are mesh vertices, as SMPLify-X picks them (smplx's
``vertex_ids['smplh']``, configurable for other meshes); shoulders, elbows, wrists, knees and
ankles are SMPL joints. Hips are NOT SMPL's hip joints (the femoral-head centres, high and
close together inside the pelvis): COCO annotators click the hip on the body's outline,
near the greater trochanter. ``HipRule`` puts each hip keypoint at the hip joint moved
outwards by ``lateral`` x hip width and down by ``down`` x hip width (hip width = distance
between the two hip joints, so it scales with the body), the point moving rigidly with the
thigh. Defaults (0.25, 0.10) are a starting point to be calibrated on real fits.

Age: SMIL has no age parameter. We read age off the body's length with the WHO
length-for-age medians (boys and girls averaged): ``age_months(shape)`` measures the
crown-to-heel length of the shaped T-pose mesh and looks it up in the table;
``shape_for_age(months)`` returns the smallest shape change (betas are unit-variance) that
gives the median length of that age, clamped to ±3 std. For ``kind="smpl"`` (adult) the
length lookup still answers (extrapolated, so large) but ``shape_for_age`` returns the mean
shape: stretching an adult to an infant's length would not make an infant.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from syrip_gen.body.base import BodyModel, BodyOutput, MeshTopology
from syrip_gen.body.pose_space import JOINT, JOINT_NAMES, NUM_JOINTS, PARENTS
from syrip_gen.errors import UserError

log = logging.getLogger(__name__)

FACE_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
_SMPLX_FACE_NAMES = {"nose": "nose", "left_eye": "leye", "right_eye": "reye",
                     "left_ear": "lear", "right_ear": "rear"}
# COCO-17 keypoints 5..16 that are SMPL joints (hips: None, placed by HipRule)
BODY_KEYPOINT_JOINTS = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                        "left_wrist", "right_wrist", None, None, "left_knee", "right_knee",
                        "left_ankle", "right_ankle")
SHAPE_STD_RANGE = 3.0
# WHO child growth standards, length-for-age medians (cm), months 0..12, boys and girls averaged.
WHO_MONTHS = tuple(float(m) for m in range(13))
WHO_LENGTH_M = tuple(x / 100.0 for x in (
    49.50, 54.20, 57.75, 60.60, 63.00, 64.95, 66.65, 68.25, 69.65, 71.05, 72.40, 73.65, 74.85))


def smpl_face_vertex_ids() -> dict[str, int]:
    """SMPL-topology vertex of each face keypoint, from smplx's ``vertex_ids['smplh']``."""
    from smplx.vertex_ids import vertex_ids

    return {k: int(vertex_ids["smplh"][v]) for k, v in _SMPLX_FACE_NAMES.items()}


@dataclass(frozen=True)
class HipRule:
    """Hip keypoint = hip joint + (±lateral, -down, 0) x hip width in the rest frame, rigid
    with the thigh (see module doc)."""

    lateral: float = 0.25
    down: float = 0.10


class SmplBody(BodyModel):
    """SMIL/SMPL (via smplx) posed in the common pose space, with COCO-17 keypoints."""

    def __init__(self, arrays: dict[str, np.ndarray], kind: str = "smil",
                 face_vertex_ids: dict[str, int] | None = None, hip_rule: HipRule = HipRule(),
                 uv_obj: str | Path | None = None, learned=None):
        """``arrays``: checked model arrays (``body.convert.check_model``); ``kind``: "smil" or
        "smpl"; ``face_vertex_ids``: vertex per name of ``FACE_KEYPOINTS`` (SMPL's by default);
        ``uv_obj``: an ``.obj`` of the same mesh whose ``vt``/``f`` give texture coordinates;
        ``learned``: a ``body.keypoints.LearnedKeypoints`` replacing the default COCO keypoints."""
        super().__init__()
        import smplx
        from smplx.utils import Struct

        if kind not in ("smil", "smpl"):
            raise ValueError(f"kind must be 'smil' or 'smpl', not {kind!r}")
        self.name = kind
        V, S = arrays["v_template"].shape[0], arrays["shapedirs"].shape[-1]
        parents = arrays["kintree_table"][0].astype(np.int64).copy()
        parents[0] = -1
        if parents.tolist() != PARENTS:
            raise UserError(f"{kind} model: its kintree_table is not SMPL's 24-joint tree, so the "
                            "common pose space cannot map onto it")
        face_ids = dict(face_vertex_ids or smpl_face_vertex_ids())
        if sorted(face_ids) != sorted(FACE_KEYPOINTS) or not all(0 <= i < V for i in face_ids.values()):
            raise UserError(f"{kind} model: face keypoint vertices {face_ids} do not fit a mesh of "
                            f"{V} vertices; pass face_vertex_ids for this topology")
        self.shape_names = tuple(f"beta{i}" for i in range(S))
        self._init = dict(arrays=arrays, kind=kind, face_vertex_ids=face_vertex_ids, hip_rule=hip_rule,
                          uv_obj=uv_obj)
        self.hip_rule = hip_rule
        self._uv_obj = Path(uv_obj) if uv_obj else None
        self._faces = arrays["f"].astype(np.int64)
        self._weights = arrays["weights"]

        pad = max(0, smplx.SMPL.SHAPE_SPACE_DIM - S)  # defeat smplx's 10-beta cap (module doc)
        shapedirs = np.concatenate([arrays["shapedirs"], np.zeros((V, 3, pad), np.float32)], -1)
        struct = Struct(v_template=arrays["v_template"], shapedirs=shapedirs,
                        posedirs=arrays["posedirs"], J_regressor=arrays["J_regressor"],
                        weights=arrays["weights"], kintree_table=arrays["kintree_table"],
                        f=arrays["f"])
        self.smpl = smplx.SMPL(
            model_path="", data_struct=struct, num_betas=S, create_betas=False,
            create_global_orient=False, create_body_pose=False, create_transl=False,
            vertex_ids={_SMPLX_FACE_NAMES[k]: v for k, v in face_ids.items()},
            use_hands=False, use_feet_keypoints=False)
        assert self.smpl.num_betas == S and self.smpl.shapedirs.shape[-1] == S

        # keypoints-only path: joint regressor folded into the shape space; 5 face vertices
        jr = arrays["J_regressor"].astype(np.float64)
        f32 = dict(dtype=torch.float32)
        self.register_buffer("j_template", torch.tensor(jr @ arrays["v_template"], **f32))
        self.register_buffer("j_dirs", torch.tensor(np.einsum("jv,vds->jds", jr, arrays["shapedirs"]), **f32))
        self._register_skinned("face", arrays, np.array([face_ids[k] for k in FACE_KEYPOINTS]))
        self.learned = learned
        if learned is not None:  # learned keypoints: default keypoints mixed with a few skinned vertices
            learned.check_body(kind, learned.body_hash, V)
            support = learned.support
            self._register_skinned("learned", arrays, support)
            self.register_buffer("learned_alpha", torch.tensor(learned.alpha, **f32))
            self.register_buffer("learned_mix", torch.tensor(learned.weights[:, support], **f32))
        self.register_buffer("parents", torch.tensor(parents))
        # age <-> length: the rest mesh's heights (V,) and their shape directions (V, S)
        self.register_buffer("rest_y", torch.tensor(arrays["v_template"][:, 1], **f32))
        self.register_buffer("rest_y_dirs", torch.tensor(arrays["shapedirs"][:, 1, :], **f32))
        self.register_buffer("shape_mean", torch.zeros(S))
        self.register_buffer("shape_std", torch.ones(S))
        self.register_buffer("shape_lower", -SHAPE_STD_RANGE * torch.ones(S))
        self.register_buffer("shape_upper", SHAPE_STD_RANGE * torch.ones(S))

    def relearned(self, learned) -> "SmplBody":
        """This body with a learned keypoint regressor (``body.keypoints.LearnedKeypoints``)."""
        return SmplBody(**{**self._init, "learned": learned})

    def _register_skinned(self, prefix: str, arrays: dict[str, np.ndarray], idx: np.ndarray) -> None:
        """Buffers to skin vertices ``idx`` alone (template, shape and pose blend shapes, weights)."""
        f32 = dict(dtype=torch.float32)
        self.register_buffer(f"{prefix}_template", torch.tensor(arrays["v_template"][idx], **f32))
        self.register_buffer(f"{prefix}_dirs", torch.tensor(arrays["shapedirs"][idx], **f32))
        self.register_buffer(f"{prefix}_posedirs", torch.tensor(
            arrays["posedirs"][idx].reshape(3 * len(idx), -1).T, **f32))  # (207, 3n), smplx layout
        self.register_buffer(f"{prefix}_weights", torch.tensor(arrays["weights"][idx], **f32))

    def _skinned(self, prefix: str, shape: torch.Tensor, feature: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """Posed vertices ``(B, n, 3)`` of a ``_register_skinned`` set (SMPL's LBS on n vertices)."""
        B = shape.shape[0]
        x = (getattr(self, f"{prefix}_template") + torch.einsum("bs,fds->bfd", shape, getattr(self, f"{prefix}_dirs"))
             + (feature @ getattr(self, f"{prefix}_posedirs")).view(B, -1, 3))
        return _apply(torch.einsum("fj,bjxy->bfxy", getattr(self, f"{prefix}_weights"), A), x)

    @classmethod
    def from_file(cls, path: str | Path, kind: str = "smil", **kwargs) -> "SmplBody":
        """Load ``smil_web.pkl`` / an SMPL ``.pkl`` (chumpy era) or its converted ``.npz``."""
        from syrip_gen.body.convert import load_model_arrays

        return cls(load_model_arrays(path), kind=kind, **kwargs)

    # ---- forward --------------------------------------------------------------------------
    def forward(self, pose: torch.Tensor, shape: torch.Tensor, with_vertices: bool = False) -> BodyOutput:
        """pose ``(B, 24, 3)`` float32 axis-angle (common space); shape ``(B, S)`` float32 betas
        (``(1, S)`` broadcasts).

        Returns keypoints ``(B, 17, 3)``, joints ``(B, 24, 3)`` and, with ``with_vertices``,
        vertices ``(B, V, 3)``; metres, common frame, pelvis at the origin.
        """
        from smplx.lbs import batch_rigid_transform, batch_rodrigues

        B, dtype = pose.shape[0], pose.dtype
        if shape.shape[0] == 1 and B > 1:
            shape = shape.expand(B, -1)
        rot = batch_rodrigues(pose.reshape(-1, 3)).view(B, NUM_JOINTS, 3, 3)
        eye = torch.eye(3, dtype=dtype, device=pose.device)
        local = torch.cat([eye.expand(B, 1, 3, 3), rot[:, 1:]], 1)  # global orientation later
        J = self.j_template + torch.einsum("bs,jds->bjd", shape, self.j_dirs)
        posed_j, A = batch_rigid_transform(local, J, self.parents, dtype=dtype)

        feature = (rot[:, 1:] - eye).reshape(B, -1)  # (B, 207), SMPL's pose blend-shape feature
        face = self._skinned("face", shape, feature, A)

        hips = self.hip_points(J)  # (B, 2, 3) rest frame, rigid with the thighs
        hips = _apply(A[:, [JOINT["left_hip"], JOINT["right_hip"]]], hips)
        body = [posed_j[:, JOINT[n]] if n else None for n in BODY_KEYPOINT_JOINTS]
        body[6], body[7] = hips[:, 0], hips[:, 1]
        kps = torch.cat([face, torch.stack(body, 1)], 1)
        if self.learned is not None:
            kps = self.learned_alpha[:, None] * kps + torch.einsum(
                "kn,bnd->bkd", self.learned_mix, self._skinned("learned", shape, feature, A))

        pelvis = posed_j[:, :1]
        glob = rot[:, 0]

        def place(x):
            return (x - pelvis) @ glob.transpose(-1, -2)

        verts = None
        if with_vertices:
            out = self.smpl(betas=shape, body_pose=pose[:, 1:].reshape(B, -1),
                            global_orient=torch.zeros(B, 3, dtype=dtype, device=pose.device))
            verts = place(out.vertices)
        return BodyOutput(keypoints=place(kps), joints=place(posed_j), vertices=verts)

    def hip_points(self, J: torch.Tensor) -> torch.Tensor:
        """Rest-frame hip keypoints ``(B, 2, 3)`` (left, right) of rest joints ``J (B, 24, 3)``."""
        lh, rh = J[:, JOINT["left_hip"]], J[:, JOINT["right_hip"]]
        width = (lh - rh).norm(dim=-1, keepdim=True)  # (B, 1)
        r = self.hip_rule
        off = torch.tensor([r.lateral, -r.down, 0.0], dtype=J.dtype, device=J.device) * width
        mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=J.dtype, device=J.device)
        return torch.stack([lh + off, rh + off * mirror], 1)  # +x is the body's left

    # ---- shape <-> age --------------------------------------------------------------------
    def rest_length(self, shape: torch.Tensor) -> torch.Tensor:
        """Crown-to-heel length ``(B,)`` metres of the T-posed mesh of betas ``(B, S)``."""
        y = self.rest_y + shape @ self.rest_y_dirs.T  # (B, V)
        return y.amax(-1) - y.amin(-1)

    def age_months(self, shape: torch.Tensor) -> torch.Tensor:
        from syrip_gen.body.anny_body import interp

        return interp(self.rest_length(shape), WHO_LENGTH_M, WHO_MONTHS)

    def shape_for_age(self, months: torch.Tensor) -> torch.Tensor:
        from syrip_gen.body.anny_body import interp

        months = torch.as_tensor(months, dtype=torch.float32, device=self.device).reshape(-1)
        shape = self.shape_mean.expand(len(months), -1).clone()
        if self.name == "smpl":
            return shape
        target = interp(months, WHO_MONTHS, WHO_LENGTH_M)
        for _ in range(4):  # Newton steps along the length gradient (min-norm, unit-variance betas)
            y = self.rest_y + shape @ self.rest_y_dirs.T
            top, bottom = y.argmax(-1), y.argmin(-1)
            g = self.rest_y_dirs[top] - self.rest_y_dirs[bottom]  # (B, S)
            gap = target - (y.amax(-1) - y.amin(-1))
            shape = shape + (gap / (g * g).sum(-1).clamp(min=1e-12))[:, None] * g
            shape = self.clamp_shape(shape)
        return shape

    # ---- mesh -----------------------------------------------------------------------------
    def topology(self) -> MeshTopology:
        """Faces and body parts (dominant SMPL joint per vertex). Texture coordinates only with
        ``uv_obj``; otherwise ``uvs`` is empty ``(0, 2)`` and renders are untextured."""
        parts = self._weights.argmax(1).astype(np.int16)
        V = self._weights.shape[0]
        if self._uv_obj is None:
            return MeshTopology(body_faces=self._faces, faces=self._faces,
                                uvs=np.zeros((0, 2), np.float32),
                                render_vertex_index=np.arange(V, dtype=np.int64),
                                part_of_vertex=parts, part_names=tuple(JOINT_NAMES))
        faces, uv_faces, uvs = read_obj_uvs(self._uv_obj, V)
        pairs = np.stack([faces.ravel(), uv_faces.ravel()], 1)
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
        return MeshTopology(body_faces=faces, faces=inverse.reshape(-1, 3).astype(np.int64),
                            uvs=uvs[unique[:, 1]].astype(np.float32),
                            render_vertex_index=unique[:, 0].astype(np.int64),
                            part_of_vertex=parts, part_names=tuple(JOINT_NAMES))


def _apply(T: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Rigid transforms ``T (B, N, 4, 4)`` applied to points ``x (B, N, 3)``."""
    return (T[..., :3, :3] @ x[..., None])[..., 0] + T[..., :3, 3]


def read_obj_uvs(path: str | Path, num_vertices: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangles ``(F, 3)``, their texture-coordinate indices ``(F, 3)`` and ``vt (T, 2)`` of
    an ``.obj`` over the model's ``num_vertices`` vertices (polygons fanned into triangles)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"UV file {path} not found; pass the .obj of SMIL's texture kit (with vt)")
    n_v, vts, faces, uv_faces = 0, [], [], []
    with open(path, encoding="latin1") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "v":
                n_v += 1
            elif parts[0] == "vt":
                vts.append([float(parts[1]), float(parts[2])])
            elif parts[0] == "f":
                corners = [c.split("/") for c in parts[1:]]
                if any(len(c) < 2 or not c[1] for c in corners):
                    raise UserError(f"{path}: a face has no texture coordinates (need f v/vt ...)")
                for i in range(1, len(corners) - 1):
                    tri = (corners[0], corners[i], corners[i + 1])
                    faces.append([int(c[0]) - 1 for c in tri])
                    uv_faces.append([int(c[1]) - 1 for c in tri])
    if n_v != num_vertices or not vts or not faces:
        raise UserError(f"{path}: {n_v} vertices, {len(vts)} texture coordinates and {len(faces)} "
                        f"faces; expected the model's {num_vertices} vertices with vt and f v/vt")
    uvs = np.clip(np.asarray(vts, np.float32), 0.0, 1.0)
    return np.asarray(faces, np.int64), np.asarray(uv_faces, np.int64), uvs
