"""Checkpoints that rebuild their model: kind, model args, weights, optimizer, step, config, RNG state.

Written atomically (temporary file + rename) under ``<out_dir>/checkpoints/step_XXXXXXX.pt``; the last
``keep`` are kept, so an interrupted write never destroys the previous checkpoint.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import torch
from torch import nn

from pose_models.models import KINDS, build_model, model_args
from syrip_gen.atomic import atomic_path
from syrip_gen.errors import UserError

FORMAT = "syrip-gen-pose/1"


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None, step: int,
                    epoch: int, config: dict, extra: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {"format": FORMAT, "kind": model.kind, "model_args": model_args(model), "model": model.state_dict(),
           "optimizer": None if optimizer is None else optimizer.state_dict(), "step": step, "epoch": epoch,
           "config": config, "rng": {"torch": torch.get_rng_state(),
                                     "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
           **(extra or {})}
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as err:
        if _disk_full(path.parent):  # torch.save reports a full disk as a RuntimeError ("unexpected pos ...")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err
        raise
    return path


def _disk_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has (almost) no room left for this process."""
    st = os.statvfs(folder)
    free = st.f_bfree if os.geteuid() == 0 else st.f_bavail  # root may use the reserved blocks
    return free * st.f_frsize < (1 << 20)


def checkpoint_file(path: str | Path) -> Path:
    """A checkpoint file as given; a shipped model's name (``infant-pose2d``, syrip_gen/shipped.py) -> its
    weights; a training run's folder (``train --out``, a pipeline train step) -> its last checkpoint, as
    the pipeline takes it (one-line UserError if it has none)."""
    from syrip_gen.shipped import resolve

    path = resolve(path)
    if not path.is_dir():
        return path
    last = latest_checkpoint(path)
    if last is None:
        raise UserError(f"{path}: a folder with no checkpoints (checkpoints/step_*.pt); give a checkpoint file "
                        "or the --out folder of `syrip-gen train`")
    return last


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint dict (tensors on CPU; a training folder: its last one, see
    :func:`checkpoint_file`); UserError if it is not one of ours."""
    path = checkpoint_file(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: an empty file, not a checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a usable checkpoint"
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or obj.get("kind") not in KINDS:
        raise UserError(f"{path}: not a syrip-gen pose checkpoint (for ImageNet/SimpleBaselines weights use --init)")
    return obj


def load_model(path: str | Path, expect: str | tuple[str, ...] | None = None,
               device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint in eval mode; ``expect`` names the kind(s) the caller can use."""
    ck = read_checkpoint(path)
    want = (expect,) if isinstance(expect, str) else expect
    if want and ck["kind"] not in want:
        raise UserError(f"{path}: this is a {ck['kind']} checkpoint, but a {' or '.join(want)} checkpoint is needed here")
    model = build_model(ck["kind"], ck["model_args"])
    try:
        model.load_state_dict(ck["model"], strict=True)  # shipped fp16 weights are copied into float32
    except RuntimeError as err:
        raise UserError(f"{path}: weights do not match the recorded {ck['kind']} architecture "
                        f"({str(err).splitlines()[0]})") from None
    layout = torch.channels_last if ck.get("channels_last") else torch.contiguous_format  # as it trained (device.py)
    return model.to(device, memory_format=layout).eval(), ck


def ship_weights(path: Path, model: nn.Module, provenance: dict) -> Path:
    """The shipped form of a trained model (syrip_gen/shipped.py): the same format as a checkpoint, weights in
    float16 (halves the file; integer buffers kept), no optimiser or RNG state, and where it came from."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    obj = {"format": FORMAT, "kind": model.kind, "model_args": model_args(model), "model": state,
           "optimizer": None, "step": provenance.get("steps", 0), "epoch": 0, "config": provenance.get("config", {}),
           "precision": "float32", "channels_last": False, "provenance": provenance}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    found = sorted((Path(out_dir) / "checkpoints").glob("step_*.pt"))
    return found[-1] if found else None


def checkpoint_step(path: Path) -> int:
    return int(path.stem.removeprefix("step_"))


def prune(out_dir: str | Path, keep: int, keep_every: int = 0) -> None:
    """Delete all but the last ``keep`` checkpoints, sparing those at multiples of ``keep_every``."""
    for p in sorted((Path(out_dir) / "checkpoints").glob("step_*.pt"))[:-keep] if keep > 0 else []:
        if not (keep_every > 0 and checkpoint_step(p) % keep_every == 0):
            p.unlink(missing_ok=True)
