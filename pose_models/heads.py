"""The SimpleBaselines deconvolution head, shared by the 2D pose model and the detector."""
from __future__ import annotations

from torch import nn


def deconv_layers(in_channels: int, channels: int = 256, n: int = 3) -> nn.Sequential:
    """``n`` x (ConvTranspose 4x4 stride 2 -> BN -> ReLU): stride 32 -> stride 32/2**n. The Sequential
    indices (0, 1, 3, 4, 6, 7 hold weights) match Xiao et al.'s ``deconv_layers`` checkpoint keys."""
    layers: list[nn.Module] = []
    for _ in range(n):
        deconv = nn.ConvTranspose2d(in_channels, channels, 4, 2, 1, output_padding=0, bias=False)
        nn.init.normal_(deconv.weight, std=0.001)
        bn = nn.BatchNorm2d(channels)
        layers += [deconv, bn, nn.ReLU(inplace=True)]
        in_channels = channels
    return nn.Sequential(*layers)
