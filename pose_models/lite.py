"""A CPU-first trunk for the 2D pose model and the detector (``arch: lite``): MobileNetV2-style inverted
residual stages (Sandler et al. 2018) to stride 32 and a small FPN-style top-down neck (Lin et al. 2017)
back to stride 4, so the heatmap heads read stride-4 features without transposed convolutions.

Why: on a 2-core CPU the SimpleBaselines head (three 4x4 transposed convolutions from a stride-32 ResNet)
costs as much as the backbone; the light designs that run in real time on CPUs (PP-TinyPose, RTMPose-t,
LPN) spend ~0.1-0.4 GFLOP per crop. Measured against the alternatives in benchmarks/model_choice.py.
``forward(x)``: ``(B, 3, H, W)`` -> ``(B, C, H/4, W/4)`` with ``C = out_channels``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pose_models.backbones import init_conv_bn

# (expansion t, output channels c, blocks n, first stride s) per stage, MobileNetV2's table thinned
STAGES = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 3, 2), (4, 64, 3, 2), (4, 96, 2, 1), (4, 160, 2, 2))


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand -> 3x3 depthwise (stride) -> 1x1 linear project; identity shortcut when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        hidden = cin * t
        layers = [] if t == 1 else [conv_bn(cin, hidden, 1)]
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class LiteTrunk(nn.Module):
    """Inverted-residual backbone + top-down neck; ``out_channels`` = the neck width."""

    def __init__(self, channels: int = 64):
        super().__init__()
        self.stem = conv_bn(3, 32, 3, 2)
        stages, cin = [], 32
        for t, c, n, s in STAGES:
            blocks = [InvertedResidual(cin if i == 0 else c, c, s if i == 0 else 1, t) for i in range(n)]
            stages.append(nn.Sequential(*blocks))
            cin = c
        self.stages = nn.ModuleList(stages)
        # stride of each stage's output: 2, 4, 8, 16, 16, 32 -> taps at 4, 8, 16 (after the 96-channel stage), 32
        self.taps = (1, 2, 4, 5)
        self.lateral = nn.ModuleList(conv_bn(STAGES[i][1], channels, 1) for i in self.taps)
        self.smooth = nn.Sequential(conv_bn(channels, channels, 3, groups=channels), conv_bn(channels, channels, 1),
                                    conv_bn(channels, channels, 3, groups=channels), conv_bn(channels, channels, 1))
        self.out_channels = channels
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.taps:
                feats.append(x)
        y = self.lateral[-1](feats[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
            y = lat(f) + F.interpolate(y, size=f.shape[-2:], mode="nearest")
        return self.smooth(y)
