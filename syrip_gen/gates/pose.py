"""Pose plausibility from the fitting stage's priors: pose-prior NLL, joint-limit violation and
hyperextension, each ``(B,)`` for poses ``(B, 24, 3)`` (filter's gates), and the
:class:`PoseChecker` that render sampling and clip motion ask before keeping a perturbed pose.

Why: the fitter may accept an odd pose to explain odd 2D keypoints; the render then shows an
unnatural infant. These reuse the exact functions the fitter penalises with
(``syrip_gen.fit.prior``, ``syrip_gen.fit.limits``), so "plausible" means one thing project-wide.
The gate functions return None (and the filter counts the gate as skipped with the reason) when
those modules are not available.
"""
from __future__ import annotations

import numpy as np


def _torch_pose(pose: np.ndarray):
    import torch

    return torch.as_tensor(np.asarray(pose, dtype=np.float32))


def prior_nll(pose: np.ndarray) -> tuple[np.ndarray | None, str]:
    """NLL ``(B,) float64`` of poses ``(B, 24, 3)`` under ``fit.prior.default_prior()``, or
    (None, why not)."""
    try:
        from syrip_gen.fit.prior import default_prior
    except ImportError as err:
        return None, f"pose prior unavailable ({err})"
    import torch

    from syrip_gen.errors import UserError

    try:
        prior = default_prior()
    except UserError as err:  # e.g. the bundled prior file not built
        return None, f"pose prior unavailable ({err})"
    with torch.no_grad():
        return prior.nll(_torch_pose(pose)).double().numpy(), ""


def joint_limits(pose: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """(limit violation, hyperextension), each ``(B,) float64`` radians, of poses
    ``(B, 24, 3)`` from ``fit.limits``; or (None, why not)."""
    try:
        from syrip_gen.fit.limits import hyperextension, joint_limit_violation
    except ImportError as err:
        return None, f"joint limits unavailable ({err})"
    import torch

    p = _torch_pose(pose)
    with torch.no_grad():
        return (joint_limit_violation(p).double().numpy(), hyperextension(p).double().numpy()), ""


class PoseChecker:
    """Rejects pose perturbations that the pose prior (``fit.prior.default_prior()``) or the
    joint limits (``fit.limits``) dislike; ``kind`` names the checks (recorded per image)."""

    kind = "prior+limits"

    def __init__(self, max_nll_increase: float):
        from syrip_gen.fit.limits import joint_limit_violation
        from syrip_gen.fit.prior import default_prior

        self.max_increase = max_nll_increase
        self.prior = default_prior()
        self.limits = joint_limit_violation

    def accept(self, base: np.ndarray, new: np.ndarray) -> np.ndarray:
        """``(B,)`` bool: keep perturbed pose ``new (B, 24, 3)`` against fitted ``base``."""
        import torch

        ok = np.ones(len(new), dtype=bool)
        b = torch.tensor(base, dtype=torch.float32)
        n = torch.tensor(new, dtype=torch.float32)
        with torch.no_grad():
            inc = (self.prior.nll(n) - self.prior.nll(b)).reshape(-1).numpy()
            ok &= inc <= self.max_increase
            vb = torch.as_tensor(self.limits(b)).reshape(len(new), -1).sum(-1).numpy()
            vn = torch.as_tensor(self.limits(n)).reshape(len(new), -1).sum(-1).numpy()
            ok &= vn <= vb + 1e-6
        return ok
