"""FiDIP-style domain adaptation parts: a gradient-reversal layer and a 3-layer domain classifier.

The alternating two-stage schedule itself lives in :meth:`pose_models.pose2d.PoseResNet.training_loss`
(model-specific code stays in the model; the training loop stays generic).
"""
from __future__ import annotations

import torch
from torch import nn


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float) -> torch.Tensor:
    """Identity forward; gradient multiplied by ``-lam`` backward (Ganin & Lempitsky 2015)."""
    return _GradReverse.apply(x, lam)


class DomainClassifier(nn.Module):
    """Backbone features ``(B, C, h, w)`` -> real/synthetic logit ``(B,)`` (1 = synthetic):
    global average pool, then 3 linear layers (C -> hidden -> hidden -> 1)."""

    def __init__(self, in_channels: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net(feats.mean((-1, -2))).squeeze(-1)


def domain_stage(step: int, stage1_steps: int, stage2_steps: int) -> int:
    """FiDIP alternation: ``stage1_steps`` steps of stage 1 (train the classifier, pose net fixed), then
    ``stage2_steps`` of stage 2 (pose net against the fixed classifier through the GRL), repeated."""
    return 1 if step % (stage1_steps + stage2_steps) < stage1_steps else 2
