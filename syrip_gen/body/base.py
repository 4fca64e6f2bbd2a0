"""The small interface every infant body model offers (Anny, SMIL/SMPL through smplx).

A body is stateless: the pose and shape variables belong to the fitter. Inputs and outputs
are batched float32 tensors on the model's device, and everything is differentiable.

Output frame: metres, the common pose space's frame (x = body's left, y = up, z = forward),
with the pelvis at the origin; the global orientation ``pose[:, 0]`` rotates about it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class BodyOutput:
    """What a forward pass gives. Fields a call did not compute stay ``None``."""

    keypoints: torch.Tensor  # (B, 17, 3) float32, COCO-17 keypoints
    joints: torch.Tensor  # (B, 24, 3) float32, common-space joint centres
    vertices: torch.Tensor | None = None  # (B, V, 3) float32, posed mesh


@dataclass(frozen=True)
class MeshTopology:
    """Triangles and texture coordinates of a body, split at UV seams for rendering.

    ``render_vertex_index[i]`` is the body vertex that render vertex ``i`` copies; ``uvs[i]``
    its texture coordinate; ``faces`` index render vertices. ``body_faces`` index body vertices.
    """

    body_faces: np.ndarray  # (F, 3) int64
    faces: np.ndarray  # (F, 3) int64
    uvs: np.ndarray  # (R, 2) float32 in [0, 1]
    render_vertex_index: np.ndarray  # (R,) int64
    part_of_vertex: np.ndarray | None = None  # (V,) int16, body-part id per body vertex
    part_names: tuple[str, ...] = ()


class BodyModel(torch.nn.Module):
    """Interface: ``forward(pose, shape, with_vertices)`` and a few facts about the shape space.

    Subclasses set ``name``, ``shape_names``, ``shape_lower``, ``shape_upper``, ``shape_mean``,
    ``shape_std`` (each ``(S,)`` float32) and implement ``forward``, ``topology`` and the
    age <-> shape helpers.
    """

    name: str = "body"
    shape_names: tuple[str, ...] = ()

    def forward(self, pose: torch.Tensor, shape: torch.Tensor, with_vertices: bool = False) -> BodyOutput:
        """pose ``(B, 24, 3)`` axis-angle in the common space; shape ``(B, S)``."""
        raise NotImplementedError

    def topology(self) -> MeshTopology:
        raise NotImplementedError

    def shape_for_age(self, months: torch.Tensor) -> torch.Tensor:
        """Mean shape ``(B, S)`` of an infant of ``months (B,)`` months."""
        raise NotImplementedError

    def age_months(self, shape: torch.Tensor) -> torch.Tensor:
        """Age ``(B,)`` in months that a shape ``(B, S)`` stands for."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return self.shape_mean.device

    def clamp_shape(self, shape: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(shape, self.shape_upper), self.shape_lower)
