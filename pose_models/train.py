"""One training loop for every model (nanoGPT style): lr -> batch -> loss -> step -> log -> checkpoint.

Model-specific behaviour (losses, FiDIP's alternating stages) lives in each model's ``training_loss``;
the data a task needs is chosen by :func:`build_dataset`. ``train(cfg)`` returns the final checkpoint.
"""
from __future__ import annotations

import csv
import math
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from pose_models.checkpoint import latest_checkpoint, prune, read_checkpoint, save_checkpoint
from pose_models.config import POSE2D_FIELDS, TrainConfig
from pose_models.data import (DetectionDataset, LiftingDataset, Pose2DDataset, SeededBatches, load_records,
                              report_skips)
from pose_models.device import (autocast, numeric_path, resolve_device, resumed_path, set_threads,
                                to_channels_last)
from pose_models.models import build_model, model_args
from syrip_gen.errors import UserError


def model_args_from(cfg: TrainConfig) -> dict:
    """The model config dict for ``cfg.task`` (what the checkpoint records to rebuild the model)."""
    if cfg.task == "pose2d":
        return {**{name: getattr(cfg, name) for name in POSE2D_FIELDS}, "freeze_early": cfg.early_frozen}
    if cfg.task == "detector":
        return dict(depth=cfg.depth, arch=cfg.arch, input_size=cfg.detector_size,
                    deconv_channels=min(cfg.deconv_channels, 128))
    return dict(hidden=cfg.lifter_hidden, blocks=cfg.lifter_blocks, dropout=cfg.dropout)


def build_dataset(cfg: TrainConfig, log=print):
    """The task's training dataset and the per-source index lists used for weighted mixing."""
    records, skipped = [], Counter()
    for k, src in enumerate(cfg.train):
        loaded = load_records(src.path, source=k, need_image=cfg.task != "lifter")
        records += loaded.records
        skipped += loaded.skipped
    if cfg.task == "pose2d":
        ds = Pose2DDataset(records, (cfg.input_h, cfg.input_w), cfg.sigma, cfg.augment)
    elif cfg.task == "detector":
        ds = DetectionDataset(records, cfg.detector_size, cfg.augment)
    else:
        ds = LiftingDataset(records)
    skipped += ds.skipped
    if skipped:
        log(report_skips(skipped, "training data"))
    if len(ds) == 0:
        raise UserError("no usable training samples: " + (report_skips(skipped, "all") or "the data is empty"))
    sources = [[i for i, r in enumerate(ds.records) if r.source == k] for k in range(len(cfg.train))]
    return ds, sources


# model settings that change only FiDIP's training, not the network a checkpoint holds
DOMAIN_ARGS = {"domain_adaptation", "da_lambda", "da_stage1_steps", "da_stage2_steps", "freeze_early"}


def load_init(model, cfg: TrainConfig) -> None:
    """``init``: one of our checkpoints of the same kind (the whole model: a shipped model by name, e.g.
    ``infant-pose2d``, or a detector pretrained on renders), or outside weights the model maps itself
    (ImageNet ResNet, SimpleBaselines)."""
    from pose_models.backbones import unwrap_state_dict
    from pose_models.checkpoint import FORMAT, checkpoint_file

    path = checkpoint_file(cfg.init)
    if not path.is_file():
        raise UserError(f"init {cfg.init}: file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not usable weights"
        raise UserError(f"init {cfg.init}: not a readable PyTorch weights file ({type(err).__name__})") from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if obj["kind"] != cfg.task:
            raise UserError(f"init {cfg.init}: a {obj['kind']} model cannot start this {cfg.task} run")
        own = model_args(model)
        diff = sorted(k for k in set(obj["model_args"]) | set(own)
                      if obj["model_args"].get(k) != own.get(k) and k not in DOMAIN_ARGS)
        if diff:
            raise UserError(f"init {cfg.init}: a {obj['kind']} with other model settings ({', '.join(diff)}) "
                            f"cannot start this {cfg.task} run")
        # the same network; FiDIP's domain classifier (present on either side or not) starts afresh
        state = {k: v for k, v in obj["model"].items() if not k.startswith("domain_classifier.")}
        state.update({k: v for k, v in model.state_dict().items() if k.startswith("domain_classifier.")})
        model.load_state_dict(state)
        return
    model.load_pretrained(unwrap_state_dict(obj, cfg.init), cfg.init)


def _to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    return to_channels_last(batch) if channels_last else batch


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


class RunLog:
    """CSV log (always) and TensorBoard (only when asked and importable)."""

    def __init__(self, out_dir: Path, use_tensorboard: bool):
        self.path = out_dir / "log.csv"
        self.tb = None
        if use_tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(out_dir / "tb"))
            except ImportError:
                pass

    def write(self, step: int, values: dict[str, float]) -> None:
        row = {"step": step, **{k: f"{v:.6g}" for k, v in values.items()}}
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row), restval="")  # models log the same keys every step
            if new:
                w.writeheader()
            w.writerow(row)
        if self.tb:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)


def train(cfg: TrainConfig, log=print) -> Path:
    """Train ``cfg.task`` and return the final checkpoint path (``<out_dir>/checkpoints/step_*.pt``).
    Resumes exactly from the latest checkpoint in ``out_dir`` when ``cfg.resume``."""
    device = resolve_device(cfg.device)
    set_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.task, model_args_from(cfg)).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, resume_from = 0, latest_checkpoint(out) if cfg.resume else None
    path_args = (cfg.task, device, cfg.precision, cfg.channels_last, cfg.amp)
    numeric = numeric_path(*path_args)
    if resume_from is not None:
        ck = read_checkpoint(resume_from)
        if ck["kind"] != cfg.task or ck["model_args"] != model_args(model):
            raise UserError(f"{resume_from}: was trained with other model settings; use a new out_dir (--out) "
                            "or start afresh (--no-resume; in YAML resume: false)")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        step = ck["step"]
        numeric = resumed_path(ck, *path_args)
        torch.set_rng_state(ck["rng"]["torch"])
        if device.type == "cuda" and ck["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(ck["rng"]["cuda"])
        log(f"resuming from {resume_from} at step {step}")
    elif cfg.init:
        load_init(model, cfg)
    if step >= cfg.max_steps and resume_from is not None:
        return resume_from
    ds, sources = build_dataset(cfg, log)
    weights = [s.weight for s in cfg.train] if len(cfg.train) > 1 else None
    batches = SeededBatches(sources, weights, cfg.batch_size, cfg.seed, start_step=step, epoch_size=cfg.epoch_size)
    loader = DataLoader(ds, batch_sampler=batches, num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                        pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(cfg.seed))  # keeps the global RNG (dropout) untouched
    model.train()
    batch_iter = iter(loader)
    precision, channels_last = numeric.precision, numeric.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "float16")
    fast_path = {"precision": precision, "channels_last": channels_last, "numeric_reason": numeric.reason,
                 "threads": torch.get_num_threads()}
    log(f"train {cfg.task}: {device.type}, {numeric.describe()}, {fast_path['threads']} threads")
    runlog = RunLog(out, cfg.tensorboard)
    bar = tqdm(total=cfg.max_steps, initial=step, desc=f"train {cfg.task}", mininterval=2)
    t0, seen, path = time.perf_counter(), 0, None
    while step < cfg.max_steps:
        lr = lr_at(step, cfg)
        for g in optimizer.param_groups:
            g["lr"] = lr
        batch = _to_device(next(batch_iter), device, channels_last)
        with autocast(device, precision):
            loss, logs = model.training_loss(batch, step)
        if not torch.isfinite(loss):
            raise UserError(f"loss became {loss.item()} at step {step}; lower lr or check the data")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        step += 1
        seen += len(batch["index"])
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            ips = seen / (time.perf_counter() - t0)
            runlog.write(step, {"loss": loss.item(), "lr": lr, "images_per_s": ips, **logs})
            bar.set_postfix(loss=f"{loss.item():.4g}", ips=f"{ips:.1f}")
        if step % cfg.ckpt_every == 0 or step == cfg.max_steps or (cfg.keep_every and step % cfg.keep_every == 0):
            path = save_checkpoint(out / "checkpoints" / f"step_{step:07d}.pt", model, optimizer, step,
                                   step // batches.steps_per_epoch, cfg.to_dict(),
                                   {"images_per_s": seen / (time.perf_counter() - t0), **fast_path})
            prune(out, cfg.keep_checkpoints, cfg.keep_every)
    bar.close()
    if cfg.val:
        from pose_models.evaluate import evaluate
        from syrip_gen.atomic import atomic_write_json
        metrics = evaluate(path, cfg.val, device=cfg.device, log=log)
        atomic_write_json(out / "metrics.json", metrics)
    return path
