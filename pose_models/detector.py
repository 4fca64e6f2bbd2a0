"""Infant detector: CenterNet-style centre heatmap + box size + sub-pixel offset on a ResNet.

Every infant of an image is a centre peak (renders hold 1-3, SyRIP frames one): :meth:`CenterDetector.detect`
keeps the local maxima (3x3) of the centre map, the best one always and the others while their score is at
least ``min_score``, up to ``max_boxes``; each box then goes through the 2D model (top-down), the first
stage of box -> 2D -> 3D. The input is the whole image letterboxed to a square (data.letterbox).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pose_models.backbones import load_torchvision_resnet
from pose_models.heads import TrunkModel
from syrip_gen.errors import UserError


@dataclass(frozen=True)
class DetectorConfig:
    depth: int = 18
    arch: str = "resnet"        # resnet | lite (pose_models/heads.trunk)
    input_size: int = 128       # square letterboxed input
    deconv_channels: int = 128
    size_weight: float = 1.0    # L1 weight of the (normalised) box size
    offset_weight: float = 1.0

    @property
    def heatmap_size(self) -> int:
        return self.input_size // 4


class CenterDetector(TrunkModel):
    kind = "detector"

    def __init__(self, cfg: DetectorConfig):
        super().__init__(cfg, 5)  # centre logit, w, h, dx, dy
        with torch.no_grad():
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

    @torch.no_grad()
    def detect(self, images: torch.Tensor, max_boxes: int = 3, min_score: float = 0.3
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images ``(B, 3, S, S)`` -> boxes ``(B, K, 4)`` ``[x, y, w, h]`` in INPUT pixels, scores ``(B, K)``,
        ``keep (B, K) bool`` (K = ``max_boxes``): the peaks of the centre map (3x3 local maxima), best
        first; the best always kept, the others when their score >= ``min_score``."""
        out, _ = self(images)
        b, _, h, w = out.shape
        heat = torch.sigmoid(out[:, 0:1])
        peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
        score, idx = peaks.reshape(b, -1).topk(min(max_boxes, h * w), -1)  # (B, K)
        flat = out.reshape(b, 5, -1).gather(2, idx[:, None].expand(b, 5, idx.shape[1]))  # (B, 5, K)
        cx = (idx % w).float() + flat[:, 3]
        cy = torch.div(idx, w, rounding_mode="floor").float() + flat[:, 4]
        cx, cy = cx * 4 + 1.5, cy * 4 + 1.5  # heatmap -> input pixels
        bw, bh = flat[:, 1].clamp_min(0) * w * 4, flat[:, 2].clamp_min(0) * h * 4
        keep = score >= min_score
        keep[:, 0] = True
        return torch.stack([cx - bw / 2, cy - bh / 2, bw, bh], -1), score, keep

    def load_pretrained(self, state: Mapping[str, torch.Tensor], source: str) -> None:
        """``--init``: a torchvision ImageNet ResNet state dict for the backbone."""
        if self.cfg.arch != "resnet":
            raise UserError(f"{source}: outside weights fit only arch resnet; this detector is arch {self.cfg.arch}")
        load_torchvision_resnet(self.backbone, state, source)


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss. logits/target ``(B, 1, h, w)``; target peaks are exactly 1."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = (1 - pos) * (1 - target) ** 4
    loss = -(torch.log(p) * (1 - p) ** 2 * pos + torch.log(1 - p) * p ** 2 * neg).sum()
    return loss / pos.sum().clamp_min(1)


def detector_loss(out: torch.Tensor, batch: Mapping[str, torch.Tensor], cfg: DetectorConfig) -> torch.Tensor:
    """out ``(B, 5, h, w)``; batch: ``center (B, 1, h, w)``, ``size (B, M, 2)``, ``offset (B, M, 2)``,
    ``ind (B, M)`` long, ``obj (B, M)`` (1: a box, 0: padding). Size and offset: L1 over the real boxes
    (with one box per image the same mean as before several infants existed)."""
    b = out.shape[0]
    loss = focal_loss(out[:, :1], batch["center"])
    ind = batch["ind"]
    at = out.reshape(b, 5, -1).gather(2, ind[:, None].expand(b, 5, ind.shape[1])).transpose(1, 2)  # (B, M, 5)
    obj = batch["obj"][..., None]
    n = obj.sum().clamp_min(1) * 2

    def l1(pred, target):
        return ((pred - target).abs() * obj).sum() / n

    loss = loss + cfg.size_weight * l1(at[..., 1:3], batch["size"]) * 10
    return loss + cfg.offset_weight * l1(at[..., 3:5], batch["offset"])
