"""Pick the torch device: ``auto`` = CUDA (with autocast mixed precision) when present, else CPU."""
from __future__ import annotations

import contextlib

import torch

from syrip_gen.errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``; asking for CUDA without it is a one-line UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool = True):
    """bfloat16/float16 autocast on CUDA, a no-op context on CPU (CPU autocast brings no speed here)."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()
