"""BatchNorm statistics recomputed on the images of the domain the model will meet (AdaBN,
Li et al. 2016, "Revisiting batch normalization for practical domain adaptation").

Why: a network trained on synthetic (or mixed synthetic + real) batches keeps the running means
and variances of *those* batches; real test images are then normalised with statistics that are
not theirs. Recomputing them on real images needs no labels and no gradient, only forward passes,
so it is the cheapest domain adaptation there is. The learned weights are not touched.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor], device: torch.device) -> int:
    """Replace every BatchNorm layer's running mean/variance by the plain average over ``batches``
    (each ``(B, 3, H, W) float32``, normalised like the training inputs; ``model(x)`` must run
    them). Returns the number of images seen; the model comes back in eval mode with its
    BatchNorm momenta restored."""
    layers = batchnorm_layers(model)
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every image weighs the same
    model.eval()
    for m in layers:
        m.train()  # only the BatchNorm layers update statistics; nothing else changes mode
    seen = 0
    for x in batches:
        model(x.to(device))
        seen += len(x)
    for m, mom in zip(layers, momenta):
        m.momentum = mom
    model.eval()
    return seen
