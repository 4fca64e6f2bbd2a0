"""Single-infant detector: CenterNet-style centre heatmap + box size + sub-pixel offset on a ResNet.

One box per image (the highest centre peak) with its score: SyRIP frames hold one infant, and this is the
first stage of box -> 2D -> 3D. The input is the whole image letterboxed to a square (data.letterbox).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pose_models.backbones import ResNet, load_torchvision_resnet
from pose_models.heads import deconv_layers


@dataclass(frozen=True)
class DetectorConfig:
    depth: int = 18
    input_size: int = 128       # square letterboxed input
    deconv_channels: int = 128
    size_weight: float = 1.0    # L1 weight of the (normalised) box size
    offset_weight: float = 1.0

    @property
    def heatmap_size(self) -> int:
        return self.input_size // 4


class CenterDetector(nn.Module):
    kind = "detector"

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = ResNet(cfg.depth)
        self.deconv_layers = deconv_layers(self.backbone.out_channels, cfg.deconv_channels)
        self.final_layer = nn.Conv2d(cfg.deconv_channels, 5, 1)  # centre logit, w, h, dx, dy
        nn.init.normal_(self.final_layer.weight, std=0.001)
        with torch.no_grad():
            self.final_layer.bias.zero_()
            self.final_layer.bias[0] = -2.19  # CenterNet prior: sigmoid = 0.1

    def forward(self, images: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """images ``(B, 3, S, S)`` -> raw maps ``(B, 5, S/4, S/4) float32`` (ch 0 centre logit, 1-2 box
        w/h as fractions of the map, 3-4 sub-pixel offset) and the loss when ``batch`` holds targets."""
        out = self.final_layer(self.deconv_layers(self.backbone(images))).float()
        return out, (None if batch is None else detector_loss(out, batch, self.cfg))

    def training_loss(self, batch: Mapping[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        _, loss = self(batch["image"], batch)
        return loss, {"det": loss.item()}

    @torch.no_grad()
    def predict_boxes(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images ``(B, 3, S, S)`` -> boxes ``(B, 4)`` ``[x, y, w, h]`` in INPUT pixels, scores ``(B,)``."""
        out, _ = self(images)
        b, _, h, w = out.shape
        score, idx = torch.sigmoid(out[:, 0]).reshape(b, -1).max(-1)
        r = torch.arange(b)
        flat = out.reshape(b, 5, -1)[r, :, idx]  # (B, 5) at the peak
        cx = (idx % w).float() + flat[:, 3]
        cy = torch.div(idx, w, rounding_mode="floor").float() + flat[:, 4]
        cx, cy = cx * 4 + 1.5, cy * 4 + 1.5  # heatmap -> input pixels
        bw, bh = flat[:, 1].clamp_min(0) * w * 4, flat[:, 2].clamp_min(0) * h * 4
        return torch.stack([cx - bw / 2, cy - bh / 2, bw, bh], -1), score

    def load_pretrained(self, state: Mapping[str, torch.Tensor], source: str) -> None:
        """``--init``: a torchvision ImageNet ResNet state dict for the backbone."""
        load_torchvision_resnet(self.backbone, state, source)


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss. logits/target ``(B, 1, h, w)``; target peaks are exactly 1."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = (1 - pos) * (1 - target) ** 4
    loss = -(torch.log(p) * (1 - p) ** 2 * pos + torch.log(1 - p) * p ** 2 * neg).sum()
    return loss / pos.sum().clamp_min(1)


def detector_loss(out: torch.Tensor, batch: Mapping[str, torch.Tensor], cfg: DetectorConfig) -> torch.Tensor:
    """out ``(B, 5, h, w)``; batch: ``center (B, 1, h, w)``, ``size (B, 2)``, ``offset (B, 2)``, ``ind (B,)`` long."""
    b = out.shape[0]
    loss = focal_loss(out[:, :1], batch["center"])
    at = out.reshape(b, 5, -1)[torch.arange(b), :, batch["ind"]]  # (B, 5)
    loss = loss + cfg.size_weight * F.l1_loss(at[:, 1:3], batch["size"]) * 10
    return loss + cfg.offset_weight * F.l1_loss(at[:, 3:5], batch["offset"])
