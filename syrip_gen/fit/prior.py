"""Infant pose prior: a Gaussian mixture over the body joints' axis-angles (common pose space).

Why: 2D keypoints leave depth ambiguous; the prior keeps fits to poses infants actually take.
It covers joints 1..23 (the global orientation, joint 0, is the camera's business), so a
vector is 69 numbers. Fitting (``fit_gmm``) is plain EM with full covariances in float64
NumPy, seeded k-means++ initialisation, and a variance floor; evaluation (``nll``) and
sampling are batched torch.

File format (``.npz``): ``weights (K,)``, ``means (K, 69)``, ``covariances (K, 69, 69)``,
``joints (23,)`` (which common joints), ``description`` (a string saying how it was made).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from syrip_gen.errors import UserError

BODY_JOINTS = tuple(range(1, 24))
DIM = 3 * len(BODY_JOINTS)


@dataclass
class PosePrior:
    """A Gaussian mixture over body-joint axis-angles. Arrays are float64 NumPy; evaluation
    converts them once per device/dtype."""

    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, 69)
    covariances: np.ndarray  # (K, 69, 69)
    description: str = ""

    def __post_init__(self):
        self.weights = np.asarray(self.weights, np.float64)
        self.means = np.asarray(self.means, np.float64)
        self.covariances = np.asarray(self.covariances, np.float64)
        K = len(self.weights)
        if self.means.shape != (K, DIM) or self.covariances.shape != (K, DIM, DIM):
            raise UserError(f"pose prior has inconsistent shapes: weights {self.weights.shape}, "
                            f"means {self.means.shape}, covariances {self.covariances.shape} "
                            f"(expected K, (K, {DIM}), (K, {DIM}, {DIM}))")
        self._chol = np.linalg.cholesky(self.covariances)  # raises if not positive definite
        self._torch: dict = {}

    @property
    def n_components(self) -> int:
        return len(self.weights)

    # ---- file ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the ``.npz`` atomically (:func:`syrip_gen.atomic.atomic_path`)."""
        from syrip_gen.atomic import atomic_path

        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, weights=self.weights, means=self.means, covariances=self.covariances,
                     joints=np.array(BODY_JOINTS), description=np.array(self.description))

    @classmethod
    def load(cls, path: str | Path) -> "PosePrior":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as f:
                if "joints" in f and tuple(f["joints"].tolist()) != BODY_JOINTS:
                    raise UserError(f"{path}: pose prior covers joints {f['joints'].tolist()}, expected 1..23")
                return cls(f["weights"], f["means"], f["covariances"],
                           str(f["description"]) if "description" in f else "")
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"{path}: not a pose-prior .npz ({err}); make one with `syrip-gen learn-prior`") from None
        except np.linalg.LinAlgError:
            raise UserError(f"{path}: pose prior covariances are not positive definite") from None

    # ---- evaluation ---------------------------------------------------------------------
    def _tensors(self, device, dtype):
        key = (str(device), dtype)
        if key not in self._torch:
            prec = np.linalg.inv(self.covariances)  # (K, D, D)
            prec = (prec + prec.transpose(0, 2, 1)) / 2
            logdet = 2 * np.log(np.diagonal(self._chol, axis1=1, axis2=2)).sum(1)
            lin = np.einsum("kde,ke->kd", prec, self.means)  # Λ μ, (K, D)
            const = (np.log(self.weights) - 0.5 * logdet - 0.5 * DIM * math.log(2 * math.pi)
                     - 0.5 * (lin * self.means).sum(1))
            stacked = prec.transpose(1, 0, 2).reshape(DIM, -1)  # (D, K*D): [Λ_1 ... Λ_K]
            self._torch[key] = tuple(torch.as_tensor(a, dtype=dtype, device=device) for a in
                                     (stacked, lin.T.copy(), const, self._chol, self.weights))
        return self._torch[key]

    def nll(self, pose: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood ``(B,)`` of poses ``(B, 24, 3)`` (joint 0 ignored).

        Mahalanobis terms as ``xᵀΛx - 2μᵀΛx + μᵀΛμ`` with all components' precisions in one
        matrix product: the fitter's hot loop evaluates this for thousands of poses per step."""
        stacked, lin, const, _, _ = self._tensors(pose.device, pose.dtype)
        B = pose.shape[0]
        x = pose[:, 1:].reshape(B, DIM)
        quad = ((x @ stacked).reshape(B, -1, DIM) * x[:, None]).sum(-1)  # (B, K)
        log_p = const[None] - 0.5 * quad + x @ lin
        return -torch.logsumexp(log_p, dim=1)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` poses ``(n, 24, 3)`` float32 (global orientation zero), drawn with ``generator``."""
        _, _, _, chol, weights = self._tensors("cpu", torch.float64)
        means = torch.as_tensor(self.means)
        comp = torch.multinomial(weights, n, replacement=True, generator=generator)
        z = torch.randn(n, DIM, generator=generator, dtype=torch.float64)
        x = means[comp] + torch.einsum("nde,ne->nd", chol[comp], z)
        pose = torch.zeros(n, 24, 3, dtype=torch.float32)
        pose[:, 1:] = x.reshape(n, 23, 3).float()
        return pose


def fit_gmm(poses: torch.Tensor | np.ndarray, n_components: int, seed: int, iterations: int = 200,
            reg: float = 1e-3, tol: float = 1e-6, description: str = "") -> PosePrior:
    """EM fit of a full-covariance mixture to poses ``(N, 24, 3)`` (joint 0 ignored).

    ``reg`` (rad²) is added to every covariance's diagonal: a floor that keeps components of
    few or identical poses well-conditioned. Deterministic for a given ``seed``.
    """
    X = np.asarray(poses.detach().cpu() if isinstance(poses, torch.Tensor) else poses, np.float64)
    if X.ndim != 3 or X.shape[1:] != (24, 3):
        raise UserError(f"fit_gmm needs poses of shape (N, 24, 3), got {X.shape}")
    X = X[:, 1:].reshape(len(X), DIM)
    N = len(X)
    if N < n_components:
        raise UserError(f"cannot fit {n_components} mixture components to {N} poses; use fewer components")
    rng = np.random.default_rng(seed)
    means = _kmeans_pp(X, n_components, rng)
    resp = _assign(X, means)
    prev = -np.inf
    for _ in range(iterations):
        weights, means, covs = _m_step(X, resp, reg)
        log_p = _log_prob(X, weights, means, covs)  # (N, K)
        top = log_p.max(1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(log_p - top).sum(1))
        resp = np.exp(log_p - log_norm[:, None])
        ll = log_norm.mean()
        if abs(ll - prev) < tol * max(1.0, abs(ll)):
            break
        prev = ll
    weights, means, covs = _m_step(X, resp, reg)
    return PosePrior(weights, means, covs, description or f"EM mixture of {n_components} on {N} poses, seed {seed}")


def _kmeans_pp(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [X[rng.integers(len(X))]]
    for _ in range(1, k):
        d2 = np.min(((X[:, None] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(X), 1 / len(X))
        centres.append(X[rng.choice(len(X), p=p)])
    return np.array(centres)


def _assign(X: np.ndarray, means: np.ndarray) -> np.ndarray:
    d2 = ((X[:, None] - means[None]) ** 2).sum(-1)
    resp = np.zeros_like(d2)
    resp[np.arange(len(X)), d2.argmin(1)] = 1.0
    return resp


def _m_step(X, resp, reg):
    nk = resp.sum(0) + 1e-10
    weights = nk / nk.sum()
    means = resp.T @ X / nk[:, None]
    covs = np.empty((len(nk), X.shape[1], X.shape[1]))
    for k in range(len(nk)):
        d = X - means[k]
        covs[k] = (resp[:, k, None] * d).T @ d / nk[k] + reg * np.eye(X.shape[1])
    return weights, means, covs


def _log_prob(X, weights, means, covs):
    chol = np.linalg.cholesky(covs)
    out = np.empty((len(X), len(weights)))
    for k in range(len(weights)):
        z = np.linalg.solve(chol[k], (X - means[k]).T)  # (D, N)
        logdet = 2 * np.log(np.diag(chol[k])).sum()
        out[:, k] = np.log(weights[k]) - 0.5 * (z * z).sum(0) - 0.5 * logdet - 0.5 * X.shape[1] * math.log(2 * math.pi)
    return out


@lru_cache(maxsize=1)
def _default_prior_cached(path: str) -> PosePrior:
    return PosePrior.load(path)


def default_prior() -> PosePrior:
    """The bundled prior, ``assets/pose_prior.npz`` (see assets/README.md for how it was made)."""
    from syrip_gen.paths import ASSETS

    path = ASSETS / "pose_prior.npz"
    if not path.exists():
        raise UserError(f"{path} is missing; rebuild it with `python scripts/make_bundled_prior.py`")
    return _default_prior_cached(str(path))
