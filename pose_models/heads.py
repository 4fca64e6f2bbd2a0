"""The heads' shared parts: the SimpleBaselines deconvolution head, and the trunk (backbone + upsampling to
stride-4 features) of each ``arch``, shared by the 2D pose model and the detector."""
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


def trunk(arch: str, depth: int, channels: int) -> tuple[nn.Module, nn.Module]:
    """``(backbone, deconv_layers)`` for ``arch``: ``resnet`` = ResNet-``depth`` + the deconvolution head
    (names as SimpleBaselines' checkpoints); ``lite`` = pose_models.lite.LiteTrunk, whose neck already
    ends at stride 4 (``deconv_layers`` is then the identity). Output: ``channels`` features at stride 4."""
    if arch == "lite":
        from pose_models.lite import LiteTrunk
        return LiteTrunk(channels), nn.Identity()
    from pose_models.backbones import ResNet
    backbone = ResNet(depth)
    return backbone, deconv_layers(backbone.out_channels, channels)


def output_layer(channels: int, out_channels: int) -> nn.Conv2d:
    """The 1x1 convolution from the trunk's features to a model's output maps, initialised as
    SimpleBaselines does (weights N(0, 0.001), bias 0), shared by the 2D pose model and the detector."""
    layer = nn.Conv2d(channels, out_channels, 1)
    nn.init.normal_(layer.weight, std=0.001)
    nn.init.zeros_(layer.bias)
    return layer


class TrunkModel(nn.Module):
    """A trunk of ``cfg.arch``/``cfg.depth`` with ``cfg.deconv_channels`` features and one
    :func:`output_layer` to ``out_channels`` maps: the shape the 2D pose model and the detector share
    (modules ``backbone``, ``deconv_layers``, ``final_layer``, named as SimpleBaselines' checkpoints)."""

    def __init__(self, cfg, out_channels: int):
        super().__init__()
        self.cfg = cfg
        self.backbone, self.deconv_layers = trunk(cfg.arch, cfg.depth, cfg.deconv_channels)
        self.final_layer = output_layer(cfg.deconv_channels, out_channels)


def early_modules(backbone: nn.Module) -> tuple[nn.Module, ...]:
    """The early layers FiDIP freezes: ResNet's conv1/bn1/layer1, the lite trunk's stem and first two stages."""
    if hasattr(backbone, "stem"):
        return (backbone.stem, backbone.stages[0], backbone.stages[1])
    return (backbone.conv1, backbone.bn1, backbone.layer1)
