"""Pose-ResNet / SimpleBaselines (Xiao et al. 2018): ResNet -> 3 deconvolutions -> 17 heatmaps at stride 4,
with optional FiDIP domain adaptation (Huang et al. 2021) on the backbone features.

``forward`` returns ``(heatmaps, loss)`` nanoGPT-style; ``training_loss`` holds the model-specific
training step (including FiDIP's alternating stages) so the loop in train.py stays generic.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field

import torch
import torch.nn.functional as F
from torch import nn

from pose_models.backbones import load_strict, load_torchvision_resnet, strip_prefix
from pose_models.config import POSE2D_FIELDS, model_config
from pose_models.domain import DomainClassifier, domain_stage, grad_reverse
from pose_models.heads import TrunkModel, early_modules
from pose_models.heatmaps import decode, flip_test
from syrip_gen.errors import UserError


# the model's settings are TrainConfig's (pose_models/config.py POSE2D_FIELDS), not copies
PoseConfig = model_config(
    "PoseConfig", POSE2D_FIELDS,
    extra=(("num_joints", int, field(default=17)),
           ("freeze_early", bool, field(default=False))),  # freeze conv1/bn1/layer1 (TrainConfig.early_frozen decides)
    namespace={"stride": property(lambda self: 4, doc="heatmap stride (pixels)"),
               "heatmap_hw": property(lambda self: (self.input_h // 4, self.input_w // 4), doc="heatmap size")})


class PoseResNet(TrunkModel):
    kind = "pose2d"

    def __init__(self, cfg: PoseConfig):
        super().__init__(cfg, cfg.num_joints)
        self.domain_classifier = DomainClassifier(self.backbone.out_channels) if cfg.domain_adaptation else None
        self._frozen = cfg.freeze_early
        if self._frozen:
            for m in early_modules(self.backbone):
                m.requires_grad_(False)

    def train(self, mode: bool = True):
        """Frozen early stages also keep their BatchNorm statistics fixed."""
        super().train(mode)
        if self._frozen:
            for m in early_modules(self.backbone):
                m.eval()
        return self

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(feats))

    def forward(self, images: torch.Tensor, target: torch.Tensor | None = None,
                weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """images ``(B, 3, H, W) float32`` normalised; target ``(B, J, H/4, W/4)``; weight ``(B, J)``.
        Returns heatmaps ``(B, J, H/4, W/4) float32`` and the weighted MSE loss (None without target)."""
        hm = self.head(self.backbone(images))
        return hm, (None if target is None else heatmap_loss(hm, target, weight))

    def training_loss(self, batch: Mapping[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        if self.domain_classifier is None:
            _, loss = self(batch["image"], batch["target"], batch["weight"])
            return loss, {"pose": loss.item()}
        cfg = self.cfg
        domain = batch["domain"].float()
        if domain_stage(step, cfg.da_stage1_steps, cfg.da_stage2_steps) == 1:
            with torch.no_grad():  # stage 1: pose net fixed, classifier learns real vs synthetic
                feats = self.backbone(batch["image"])
            dloss = F.binary_cross_entropy_with_logits(self.domain_classifier(feats.float()), domain)
            return dloss, {"pose": float("nan"), "domain": dloss.item(), "stage": 1.0}
        # stage 2: pose loss minus lambda * domain loss via the GRL; the classifier is held fixed
        feats = self.backbone(batch["image"])
        hm = self.head(feats)
        ploss = heatmap_loss(hm, batch["target"], batch["weight"])
        fixed = {k: v.detach() for k, v in self.domain_classifier.named_parameters()}
        logits = torch.func.functional_call(self.domain_classifier, fixed, (grad_reverse(feats, cfg.da_lambda),))
        dloss = F.binary_cross_entropy_with_logits(logits.float(), domain)
        # 1e-3 keeps the domain term on the scale of the heatmap MSE (~1e-3), as in FiDIP's weighting
        return ploss + 1e-3 * dloss, {"pose": ploss.item(), "domain": dloss.item(), "stage": 2.0}

    @torch.no_grad()
    def predict_heatmaps(self, images: torch.Tensor, flip: bool = True) -> torch.Tensor:
        """Flip test: average the heatmaps of the image and of its mirror (mirrored back, L/R swapped).
        images ``(B, 3, H, W)`` -> ``(B, J, H/4, W/4) float32``."""
        if flip:
            return flip_test(lambda x: self(x)[0], images)
        return self(images)[0].float()

    @torch.no_grad()
    def predict_keypoints(self, images: torch.Tensor, flip: bool = True, method: str = "dark"
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """images ``(B, 3, H, W)`` -> keypoints ``(B, J, 2)`` in INPUT pixels and scores ``(B, J)``."""
        xy, score = decode(self.predict_heatmaps(images, flip), method)
        return xy * 4 + 1.5, score

    def load_pretrained(self, state: Mapping[str, torch.Tensor], source: str) -> None:
        """``--init``: a torchvision ImageNet ResNet (backbone only) or a SimpleBaselines COCO checkpoint
        (``conv1..layer4``, ``deconv_layers.*``, ``final_layer.*``, optional ``module.`` prefix)."""
        if self.cfg.arch != "resnet":
            raise UserError(f"{source}: outside weights fit only arch resnet; this model is arch {self.cfg.arch}")
        state = strip_prefix(dict(state))
        if any(k.startswith("deconv_layers.") for k in state):
            mapped = {("backbone." + k if not k.startswith(("deconv_layers.", "final_layer.")) else k): v
                      for k, v in state.items()}
            target = {k: v for k, v in self.state_dict().items() if not k.startswith("domain_classifier.")}
            sub = nn.Module()  # a view holding only the SimpleBaselines part, for a strict check
            sub.backbone, sub.deconv_layers, sub.final_layer = self.backbone, self.deconv_layers, self.final_layer
            assert set(sub.state_dict()) == set(target)
            load_strict(sub, mapped, source)
        else:
            load_torchvision_resnet(self.backbone, state, source)


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """SimpleBaselines' joint-weighted MSE: ``0.5 * mean(w * (pred - target)^2)``; v=0 joints weigh 0.
    pred/target ``(B, J, h, w)``; weight ``(B, J)``."""
    err = (pred.float() - target) ** 2
    if weight is not None:
        err = err * weight[:, :, None, None]
    return 0.5 * err.mean()
