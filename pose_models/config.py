"""TrainConfig: the one frozen config of the training stage, built from YAML (a dict) plus overrides.

No torch import here, so the pipeline runner and ``--help`` can build and check configs cheaply.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from syrip_gen.config import check_ranges, from_mapping, parse_value
from syrip_gen.errors import UserError

TASKS = ("detector", "pose2d", "lifter")


@dataclass(frozen=True)
class DataSource:
    """One COCO keypoint file (JSON or dataset dir) and its sampling weight when several are mixed."""

    path: str
    weight: float = field(default=1.0, metadata={"min": 0.0})


@dataclass(frozen=True)
class Augment:
    # probability of a horizontal flip (left/right joints swapped)
    flip: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    rotation: float = field(default=30.0, metadata={"min": 0.0})  # max rotation (degrees), applied with probability 0.6
    scale: float = field(default=0.25, metadata={"min": 0.0, "max": 0.9})  # crop scale in [1 - scale, 1 + scale]
    colour: float = field(default=0.2, metadata={"min": 0.0})  # brightness/contrast/saturation jitter strength
    half_body: float = field(default=0.3, metadata={"min": 0.0, "max": 1.0})  # probability of an upper- or lower-body crop
    margin: float = field(default=1.25, metadata={"min": 0.1})  # crop = box grown to the input aspect ratio x margin


@dataclass(frozen=True)
class TrainConfig:
    task: str = field(metadata={"choices": TASKS})  # detector | pose2d | lifter
    train: tuple[DataSource, ...]               # mixed by weight (weights None-equivalent when one source)
    out_dir: str = "runs/pose"
    val: str | None = None                      # COCO file evaluated at the end (metrics.json)
    # model
    arch: str = field(default="resnet", metadata={"choices": ("resnet", "lite")})  # resnet: ResNet + deconv head
                                                # (SimpleBaselines); lite: the CPU-first trunk of pose_models/lite.py
    depth: int = field(default=18, metadata={"choices": (18, 50)})  # ResNet depth (arch resnet)
    input_h: int = field(default=128, metadata={"min": 32})  # 2D model input height
    input_w: int = field(default=96, metadata={"min": 32})  # 2D model input width
    detector_size: int = field(default=128, metadata={"min": 32})  # detector square input
    deconv_channels: int = field(default=256, metadata={"min": 1})  # head width (lite: the neck's channels)
    sigma: float = field(default=2.0, metadata={"min": 0.1})  # heatmap Gaussian sigma (heatmap pixels)
    domain_adaptation: bool = False             # FiDIP switch (pose2d)
    da_lambda: float = field(default=0.5, metadata={"min": 0.0})
    da_stage1_steps: int = field(default=1, metadata={"min": 0})
    da_stage2_steps: int = field(default=1, metadata={"min": 0})
    freeze_early: bool | None = None            # None: FiDIP's protocol, i.e. conv1/bn1/layer1 frozen under
                                                # domain_adaptation only when ``init`` loads weights learned
                                                # elsewhere; a network trained from scratch is never frozen
    lifter_hidden: int = field(default=1024, metadata={"min": 1})
    lifter_blocks: int = field(default=2, metadata={"min": 0})
    dropout: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    init: str | None = None                     # ImageNet (torchvision) or SimpleBaselines weights
    augment: Augment = field(default_factory=Augment)
    # optimisation
    batch_size: int = field(default=32, metadata={"min": 1})
    max_steps: int = field(default=1000, metadata={"min": 1})
    lr: float = field(default=1e-3, metadata={"min": 0.0})
    weight_decay: float = field(default=1e-4, metadata={"min": 0.0})
    warmup_steps: int = field(default=50, metadata={"min": 0})
    min_lr_ratio: float = field(default=0.05, metadata={"min": 0.0, "max": 1.0})  # cosine decay to lr * ratio
    grad_clip: float = field(default=0.0, metadata={"min": 0.0})  # 0 = off
    # run
    seed: int = field(default=0, metadata={"min": 0})
    device: str = "auto"                        # auto | cpu | cuda
    amp: bool = True                            # False: float32 everywhere, whatever ``precision`` says
    precision: str = field(default="auto", metadata={"choices": ("auto", "float32", "bfloat16", "float16")})
                                                # auto: float16 on CUDA; bfloat16 on CPUs that compute it natively
                                                # and where a probe finds it faster; else float32 (device.py)
    channels_last: bool | None = None           # NHWC memory layout; None: timed against NCHW at the start
    workers: int = field(default=0, metadata={"min": 0})  # DataLoader workers (0-2 on small machines)
    threads: int | None = field(default=None, metadata={"min": 1})  # torch CPU threads; None: every core
    epoch_size: int | None = field(default=None, metadata={"min": 1})  # samples per epoch (default: all)
    ckpt_every: int = field(default=500, metadata={"min": 1})
    keep_checkpoints: int = field(default=2, metadata={"min": 1})
    # also keep every checkpoint at a multiple of this step (a learning curve along the run); 0 = none
    keep_every: int = field(default=0, metadata={"min": 0})
    log_every: int = field(default=10, metadata={"min": 1})
    resume: bool = True                         # continue from the latest checkpoint in out_dir
    tensorboard: bool = False                   # also log to TensorBoard when importable

    def __post_init__(self):
        check_ranges(self, "train config")
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
            value = parse_value(value, f"--set {key}")
            if "." in key:
                outer, inner = key.split(".", 1)
                section = d.get(outer)
                d[outer] = {**(section if isinstance(section, dict) else {}), inner: value}
            else:
                d[key] = value
        train = d.get("train")
        if isinstance(train, (str, dict)):
            train = [train]
        if isinstance(train, list):
            d["train"] = [{"path": str(t)} if isinstance(t, (str, Path)) else t for t in train]
        return from_mapping(cls, d, "train config")

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


# ---- model configs derived from TrainConfig --------------------------------------------------
# The 2D pose model's own settings: declared once above (type, default, range), copied into
# pose2d.PoseConfig by :func:`model_config` and into its checkpoint args by train.model_args_from.
POSE2D_FIELDS = ("arch", "depth", "input_h", "input_w", "deconv_channels", "sigma", "domain_adaptation", "da_lambda",
                 "da_stage1_steps", "da_stage2_steps")


def model_config(name: str, names: tuple[str, ...], extra: tuple = (), namespace: dict | None = None,
                 module: str = "pose_models.pose2d") -> type:
    """A frozen dataclass ``name`` whose fields ``names`` are TrainConfig's (same type, default and
    range metadata), plus ``extra`` ``(name, type, field)`` entries the model alone has."""
    src = {f.name: f for f in dataclasses.fields(TrainConfig)}
    spec = [(n, src[n].type, field(default=src[n].default, metadata=src[n].metadata)) for n in names]
    cls = dataclasses.make_dataclass(name, spec + list(extra), frozen=True, namespace=namespace)
    cls.__module__ = module  # where it lives (pickling, reprs)
    return cls
