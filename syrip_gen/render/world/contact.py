"""Bodies that rest on their support: contact gap, settling tilt and a soft contact shadow.

Why: the support plane is put at the body's lowest vertex, so nothing sinks in, but a fitted
pose whose depth is off can hang a hand or a heel below the torso: the infant then balances
on that hand and its trunk hovers centimetres above the mat (issue 26). Photos show the trunk
of a lying infant (and the seat of a sitting one, the feet of a standing one) on the support,
darkened around the contact by the body's own shadow.

- :func:`contact_record`: the height of the posture's contact part above the support (the back
  of a supine infant, the seat of a sitting one, the feet of a standing one; 0 when it rests on
  it) and the balance margin (how far the centre of mass lies inside the hull of the vertices
  touching the plane; < 0: it would tip over); recorded per annotation (``contact``) and gated
  by ``filter`` (``hovering``, ``unbalanced``).
- :func:`settle`: the smallest tilt (up to ``max_tilt_deg``) about the pelvis that makes the
  body rest (contact part down, balanced); what a body propped on one hand would do.
- :func:`contact_shadow`: ambient occlusion of the plane by the body, on a grid in the plane
  (min height of the body above each cell, softened with the height), applied in screen space
  to the support's pixels. Cheap (~ms) and the same on the GL and analytic support paths.

World frame: metres, y up (docs/architecture.md). Pure NumPy/OpenCV.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from syrip_gen.geometry import rotvec_to_matrix

# the part that must rest on the support (supine/side: the back; sitting: the seat; standing: the
# feet). Prone infants lie on their belly or crawl on hands and knees: no one part must touch,
# their balance (the support margin) decides.
CONTACT_PARTS = {"supine": ("torso",), "side": ("torso",), "sitting": ("torso", "thigh.L", "thigh.R"),
                 "standing": ("foot.L", "foot.R"), "prone": ()}
_DIRECTIONS = np.stack([[math.cos(a), math.sin(a)] for a in np.linspace(0, 2 * math.pi, 16, endpoint=False)])


@dataclass(frozen=True)
class ContactConfig:
    """How bodies meet their support (lengths in metres)."""

    settle: bool = True  # tilt bodies that hover or would tip over until they rest
    max_tilt_deg: float = 30.0
    tolerance: float = 0.01  # vertices this close to the plane touch it
    shadow: float = 0.55  # contact shadow strength (0: none): darkening right under a touching body
    shadow_height: float = 0.04  # occlusion falls to 1/e at this height of the body above the plane
    shadow_blur: float = 0.03  # softness of the shadow's edge (Gaussian sigma on the plane)
    shadow_cell: float = 0.01  # grid cell of the occlusion map


def contact_kind(posture: str) -> str:
    return posture if posture in CONTACT_PARTS else "sitting"


def contact_mask(parts: np.ndarray, posture: str) -> np.ndarray:
    """``(V,) bool``: vertices of the posture's contact part (none for prone); ``parts`` from
    :func:`syrip_gen.gates.penetration.coarse_parts`."""
    from syrip_gen.gates.penetration import PARTS

    return np.isin(parts, [PARTS.index(p) for p in CONTACT_PARTS[contact_kind(posture)]])


def _measures(y: np.ndarray, xz: np.ndarray, contact: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Gap ``(N,)`` and support margin ``(N,)`` of ``N`` placements: world heights ``y (N, V)``
    and ground positions ``xz (N, V, 2)`` of the same vertices."""
    low = y.min(1, keepdims=True)
    gap = (y[:, contact].min(1) - low[:, 0]) if contact.any() else np.zeros(len(y))
    touching = y <= low + tol  # (N, V)
    com = xz.mean(1, keepdims=True)  # (N, 1, 2): the vertex mean stands in for the centre of mass
    reach = np.einsum("nvc,dc->ndv", xz - com, _DIRECTIONS)  # (N, D, V)
    reach = np.where(touching[:, None, :], reach, -np.inf)
    margin = reach.max(2).min(1)  # support function minus the centre: > 0 inside the contact hull
    return gap, margin


def contact_record(vertices: np.ndarray, contact: np.ndarray, posture: str, tol: float = 0.01,
                   tilt_deg: float = 0.0) -> dict:
    """``{"part", "gap_m", "margin_m", "tilt_deg"}`` of a body whose support is at its lowest
    vertex: ``gap_m`` the height of the contact part above it (0: it rests on it), ``margin_m``
    how far the centre of mass lies inside the hull of the touching vertices (< 0: it would tip
    over, balancing on a hand or a heel)."""
    v = np.asarray(vertices, np.float64)
    gap, margin = _measures(v[None, :, 1], v[None][..., [0, 2]], contact, tol)
    return {"part": contact_kind(posture), "gap_m": round(float(gap[0]), 4),
            "margin_m": round(float(margin[0]), 4), "tilt_deg": round(float(tilt_deg), 2)}


def _tilts(max_deg: float, steps: int = 8, axes: int = 12) -> np.ndarray:
    """Candidate tilts ``(N, 3, 3)`` about horizontal axes, smallest first (identity first)."""
    mats = [np.eye(3)]
    for k in range(1, steps + 1):
        ang = math.radians(max_deg * k / steps)
        for a in range(axes):
            phi = 2 * math.pi * a / axes
            mats.append(rotvec_to_matrix(ang * np.array([math.cos(phi), 0.0, math.sin(phi)])))
    return np.stack(mats)


def settle(vertices: np.ndarray, contact: np.ndarray, cfg: ContactConfig) -> tuple[np.ndarray, float]:
    """The tilt ``(3, 3)`` (about the origin = pelvis) and its angle in degrees that lets a body
    rest: the smallest that puts the contact part on the plane (gap within ``tolerance``) with the
    centre of mass over the touching vertices (margin >= 0), else the one closest to that;
    identity when the body rests already or ``settle`` is off."""
    v = np.asarray(vertices, np.float64)
    sub = slice(None, None, max(1, len(v) // 800))  # ~800 vertices decide the tilt
    vs, cs = v[sub], contact[sub]
    gap, margin = _measures(vs[None, :, 1], vs[None][..., [0, 2]], cs, cfg.tolerance)
    if not cfg.settle or (gap[0] <= cfg.tolerance and margin[0] >= 0):
        return np.eye(3), 0.0
    tilts = _tilts(cfg.max_tilt_deg)
    w = np.einsum("nij,vj->nvi", tilts, vs)  # (N, V, 3) every vertex under every tilt
    gap, margin = _measures(w[..., 1], w[..., [0, 2]], cs, cfg.tolerance)
    bad = np.maximum(gap - cfg.tolerance, 0) + np.maximum(-margin, 0)
    ok = np.flatnonzero(bad <= 0)
    k = int(ok[0]) if len(ok) else int(np.argmin(bad))
    angle = math.degrees(math.acos(float(np.clip((np.trace(tilts[k]) - 1) / 2, -1.0, 1.0))))
    return tilts[k], angle


def occlusion_map(vertices: np.ndarray, plane_y: float, cfg: ContactConfig
                  ) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Occlusion ``(Gz, Gx) float32`` in [0, 1] of the plane under the body and its grid
    ``(x0, z0, cell)``: 1 where the body touches, falling with the body's height above a cell
    (``exp(-h / shadow_height)``), blurred by ``shadow_blur`` plus the height itself (a higher
    body casts a wider, fainter shadow)."""
    import cv2

    v = np.asarray(vertices, np.float64)
    cell = cfg.shadow_cell
    pad = 3 * cfg.shadow_blur + 2 * cfg.shadow_height
    x0, z0 = v[:, 0].min() - pad, v[:, 2].min() - pad
    gx = int(math.ceil((v[:, 0].max() + pad - x0) / cell)) + 1
    gz = int(math.ceil((v[:, 2].max() + pad - z0) / cell)) + 1
    h = np.full((gz, gx), np.inf)
    ix = np.clip(((v[:, 0] - x0) / cell).astype(int), 0, gx - 1)
    iz = np.clip(((v[:, 2] - z0) / cell).astype(int), 0, gz - 1)
    np.minimum.at(h, (iz, ix), np.maximum(v[:, 1] - plane_y, 0.0))
    occ = np.exp(-h / cfg.shadow_height).astype(np.float32)  # inf -> 0
    occ = cv2.dilate(occ, np.ones((3, 3), np.uint8))  # close the gaps between vertices
    sigma = (cfg.shadow_blur + 0.5 * cfg.shadow_height) / cell
    occ = cv2.GaussianBlur(occ, (0, 0), sigma)
    return np.clip(occ * 1.5, 0.0, 1.0), (float(x0), float(z0), float(cell))


def contact_shadow(rgb: np.ndarray, camera, plane_y: float, support_pixels: np.ndarray,
                   vertices: np.ndarray, cfg: ContactConfig) -> np.ndarray:
    """``rgb (H, W, 3) uint8`` with the support's pixels (``support_pixels (H, W) bool``)
    darkened by the body's occlusion of the plane at height ``plane_y`` (seen through ``camera``,
    a :class:`syrip_gen.geometry.Camera`)."""
    import cv2

    if cfg.shadow <= 0 or not support_pixels.any():
        return rgb
    occ, (x0, z0, cell) = occlusion_map(vertices, plane_y, cfg)
    R, t = camera.R, camera.t
    # pixel -> plane (x, z): the inverse of the plane's homography
    img_from_plane = camera.K @ np.stack([R[:, 0], R[:, 2], R[:, 1] * plane_y + t], 1)
    grid_from_plane = np.array([[1 / cell, 0, -x0 / cell], [0, 1 / cell, -z0 / cell], [0, 0, 1]])
    M = grid_from_plane @ np.linalg.inv(img_from_plane)  # pixel -> grid cell
    H, W = rgb.shape[:2]
    warped = cv2.warpPerspective(occ, M, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    shade = 1.0 - cfg.shadow * warped * support_pixels
    out = rgb.astype(np.float32) * shade[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
