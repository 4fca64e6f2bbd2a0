"""TrainConfig: the one frozen config of the training stage, built from YAML (a dict) plus overrides.

No torch import here, so the pipeline runner and ``--help`` can build and check configs cheaply.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from syrip_gen.errors import UserError

TASKS = ("detector", "pose2d", "lifter")


@dataclass(frozen=True)
class DataSource:
    """One COCO keypoint file (JSON or dataset dir) and its sampling weight when several are mixed."""

    path: str
    weight: float = 1.0


@dataclass(frozen=True)
class Augment:
    flip: float = 0.5        # probability of a horizontal flip (left/right joints swapped)
    rotation: float = 30.0   # max rotation (degrees), applied with probability 0.6
    scale: float = 0.25      # crop scale in [1 - scale, 1 + scale]
    colour: float = 0.2      # brightness/contrast/saturation jitter strength
    half_body: float = 0.3   # probability of an upper- or lower-body crop
    margin: float = 1.25     # crop = box grown to the input aspect ratio x margin


@dataclass(frozen=True)
class TrainConfig:
    task: str                                   # detector | pose2d | lifter
    train: tuple[DataSource, ...]               # mixed by weight (weights None-equivalent when one source)
    out_dir: str = "runs/pose"
    val: str | None = None                      # COCO file evaluated at the end (metrics.json)
    # model
    depth: int = 18                             # ResNet depth (18 or 50)
    input_h: int = 128                          # 2D model input height
    input_w: int = 96                           # 2D model input width
    detector_size: int = 128                    # detector square input
    deconv_channels: int = 256
    sigma: float = 2.0                          # heatmap Gaussian sigma (heatmap pixels)
    domain_adaptation: bool = False             # FiDIP switch (pose2d)
    da_lambda: float = 0.5
    da_stage1_steps: int = 1
    da_stage2_steps: int = 1
    freeze_early: bool | None = None            # None: FiDIP's protocol, i.e. conv1/bn1/layer1 frozen under
                                                # domain_adaptation only when ``init`` loads weights learned
                                                # elsewhere; a network trained from scratch is never frozen
    lifter_hidden: int = 1024
    lifter_blocks: int = 2
    dropout: float = 0.5
    init: str | None = None                     # ImageNet (torchvision) or SimpleBaselines weights
    augment: Augment = field(default_factory=Augment)
    # optimisation
    batch_size: int = 32
    max_steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05                  # cosine decay to lr * min_lr_ratio at max_steps
    grad_clip: float = 0.0                      # 0 = off
    # run
    seed: int = 0
    device: str = "auto"                        # auto | cpu | cuda
    amp: bool = True                            # autocast fp16 on CUDA (ignored on CPU)
    workers: int = 0                            # DataLoader workers (0-2 on small machines)
    epoch_size: int | None = None               # samples per epoch (default: all)
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    keep_every: int = 0                         # also keep every checkpoint at a multiple of this step
                                                # (a learning curve along the run); 0 = none
    log_every: int = 10
    resume: bool = True                         # continue from the latest checkpoint in out_dir
    tensorboard: bool = False                   # also log to TensorBoard when importable

    def __post_init__(self):
        if self.task not in TASKS:
            raise UserError(f"task {self.task!r} unknown; use one of {', '.join(TASKS)}")
        if not self.train:
            raise UserError("config needs at least one 'train' data source")
        if self.input_h % 32 or self.input_w % 32 or self.detector_size % 32:
            raise UserError("input sizes must be multiples of 32 (the backbone stride)")
        if self.batch_size < 2 and self.task != "lifter":
            raise UserError("batch_size must be >= 2 (BatchNorm)")

    @classmethod
    def from_dict(cls, d: dict, overrides: list[str] | tuple[str, ...] = ()) -> "TrainConfig":
        """Build from a YAML mapping plus ``key=value`` overrides (values parsed as YAML; ``augment.flip=0``)."""
        d = dict(d)
        for item in overrides:
            if "=" not in item:
                raise UserError(f"override {item!r} must look like key=value")
            key, value = item.split("=", 1)
            value = yaml.safe_load(value)
            if "." in key:
                outer, inner = key.split(".", 1)
                d[outer] = {**(d.get(outer) or {}), inner: value}
            else:
                d[key] = value
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"config keys not understood: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        train = d.get("train")
        if isinstance(train, (str, dict)):
            train = [train]
        try:
            d["train"] = tuple(DataSource(path=str(t)) if isinstance(t, (str, Path)) else DataSource(**t)
                               for t in train or [])
            d["augment"] = Augment(**(d.get("augment") or {}))
            return cls(**d)
        except TypeError as err:
            raise UserError(f"bad config: {err}") from None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> "TrainConfig":
        from syrip_gen.yamlfile import read_yaml

        path = Path(path)
        data = read_yaml(path, missing="config file not found") or {}
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a YAML mapping of config keys")
        return cls.from_dict(data, overrides)

    @property
    def early_frozen(self) -> bool:
        """Whether conv1/bn1/layer1 stay fixed: FiDIP freezes the early layers of a *pretrained* network
        (they already hold general features); frozen random weights would only cripple a from-scratch one."""
        if self.freeze_early is not None:
            return self.freeze_early
        return self.domain_adaptation and self.init is not None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["train"] = [dataclasses.asdict(t) for t in self.train]
        return d

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
