"""Model registry: checkpoint ``kind`` -> (config dataclass, module class). Rebuilds models from checkpoints."""
from __future__ import annotations

from dataclasses import asdict, fields

from torch import nn

from pose_models.detector import CenterDetector, DetectorConfig
from pose_models.lifter import Lifter, LifterConfig
from pose_models.pose2d import PoseConfig, PoseResNet
from syrip_gen.errors import UserError

KINDS: dict[str, tuple[type, type]] = {
    "detector": (DetectorConfig, CenterDetector),
    "pose2d": (PoseConfig, PoseResNet),
    "lifter": (LifterConfig, Lifter),
}


def build_model(kind: str, model_args: dict) -> nn.Module:
    """``model_args``: the asdict() of the kind's config dataclass (unknown keys are an error)."""
    if kind not in KINDS:
        raise UserError(f"unknown model kind {kind!r}; expected one of {sorted(KINDS)}")
    cfg_cls, model_cls = KINDS[kind]
    names = {f.name for f in fields(cfg_cls)}
    extra = set(model_args) - names
    if extra:
        raise UserError(f"{kind} model arguments not understood: {sorted(extra)}")
    return model_cls(cfg_cls(**model_args))


def model_args(model: nn.Module) -> dict:
    return asdict(model.cfg)
