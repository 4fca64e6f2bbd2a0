"""ResNet-18/50 backbones whose parameter names and shapes match torchvision's exactly.

Why: users bring ImageNet weights as torchvision ``resnet50-*.pth`` state dicts (and SimpleBaselines
COCO checkpoints, which reuse the same names); matching the layout key for key lets those files load
as they are, with a strict check instead of a silent partial load. torchvision itself is not used.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from syrip_gen.errors import UserError

# depth -> (block type, blocks per stage)
_LAYOUT = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
           101: ("bottleneck", (3, 4, 23, 3))}


def init_conv_bn(module: nn.Module) -> None:
    """He (fan-out) initialisation of every convolution, BatchNorm as identity: torchvision's ResNet init,
    shared by the lite trunk."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck: the stride sits on the 3x3 conv."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + idt)


class ResNet(nn.Module):
    """ResNet trunk. ``forward(x)``: ``(B, 3, H, W) float32`` -> features ``(B, C, H/32, W/32)``
    with ``C = out_channels`` (512 for 18/34, 2048 for 50/101). ``with_fc`` adds the unused ImageNet
    classifier so a full torchvision state dict loads with ``strict=True``."""

    def __init__(self, depth: int = 18, with_fc: bool = False):
        super().__init__()
        if depth not in _LAYOUT:
            raise UserError(f"ResNet depth {depth} not supported; use one of {sorted(_LAYOUT)}")
        kind, blocks = _LAYOUT[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.depth = depth
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, blocks[0], 1)
        self.layer2 = self._make_layer(block, 128, blocks[1], 2)
        self.layer3 = self._make_layer(block, 256, blocks[2], 2)
        self.layer4 = self._make_layer(block, 512, blocks[3], 2)
        self.out_channels = 512 * block.expansion
        if with_fc:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(self.out_channels, 1000)
        init_conv_bn(self)

    def _make_layer(self, block: type, planes: int, n: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, down)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Drop a DataParallel-style prefix from every key that has it."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def unwrap_state_dict(obj: object, source: str) -> dict[str, torch.Tensor]:
    """Accept a bare state dict or the usual wrappers ({'state_dict': ...}, {'model': ...})."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return strip_prefix(dict(obj))
    raise UserError(f"{source}: not a PyTorch state dict (expected a mapping of parameter names to tensors)")


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str,
                ignore: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``module`` requiring identical names and shapes (keys starting with any of
    ``ignore`` are dropped first; BatchNorm ``num_batches_tracked`` may be absent, as in old files).
    Raises UserError naming the first mismatches, so a checkpoint for another architecture fails loudly."""
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches (e.g. {wrong[0]})")
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise UserError(f"{source}: weights do not fit this {type(module).__name__} ({'; '.join(parts)}); "
                        "check the architecture/depth the file was trained with")
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = own[k]
    module.load_state_dict(state, strict=True)


def load_torchvision_resnet(backbone: ResNet, state: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """Load an ImageNet torchvision ResNet state dict into ``backbone`` (the ``fc`` classifier is dropped
    when the backbone has none); strict about every other name and shape."""
    ignore = () if hasattr(backbone, "fc") else ("fc.",)
    load_strict(backbone, strip_prefix(dict(state)), source, ignore)
