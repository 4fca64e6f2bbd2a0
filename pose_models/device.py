"""Pick the torch device and the fastest numeric path it trains well in.

``auto`` = CUDA when present, else CPU. Precision ``auto``: float16 autocast on CUDA; on a CPU,
bfloat16 autocast only where the CPU computes bfloat16 natively (AVX-512 BF16 or AMX) *and* a
short probe of the real training step shows it faster, else float32 (oneDNN emulates bfloat16 on
plain AVX2 CPUs, measured 13x slower there). Channels-last memory layout is on by default (oneDNN's
and cuDNN's convolutions prefer it). The choice is made at run time because sessions land on
different CPUs, and recorded with every checkpoint.
"""
from __future__ import annotations

import contextlib
import copy
import time
from pathlib import Path
from typing import Callable

import torch

from syrip_gen.errors import UserError

PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``; asking for CUDA without it is a one-line UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True where the CPU has bfloat16 arithmetic in hardware (``avx512_bf16`` or ``amx_bf16``)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def autocast(device: torch.device, precision: str = "float32"):
    """The autocast context for a resolved precision (``float32``: none)."""
    if precision == "float16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def choose_precision(requested: str, device: torch.device, probe: Callable[[str], float] | None = None,
                     native_bf16: bool | None = None, log=print) -> str:
    """Resolve ``requested`` (one of :data:`PRECISIONS`) to float32 | bfloat16 | float16.

    ``probe(precision)`` returns seconds per training step on the real model and batch; on a CPU with
    native bfloat16 ``auto`` keeps bfloat16 only when the probe finds it at least 5 % faster."""
    if requested not in PRECISIONS:
        raise UserError(f"precision {requested!r}: use one of {', '.join(PRECISIONS)}")
    if requested == "float16" and device.type != "cuda":
        raise UserError("precision float16 needs a CUDA GPU; on a CPU use bfloat16 or auto")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "float16"
    native = cpu_has_native_bf16() if native_bf16 is None else native_bf16
    if not native:
        return "float32"
    if probe is None:
        return "bfloat16"
    t32, t16 = probe("float32"), probe("bfloat16")
    chosen = "bfloat16" if t16 < 0.95 * t32 else "float32"
    log(f"precision probe: float32 {t32 * 1e3:.0f} ms/step, bfloat16 {t16 * 1e3:.0f} ms/step -> {chosen}")
    return chosen


def step_probe(model: torch.nn.Module, batch: dict, loss_fn: Callable, device: torch.device,
               repeats: int = 3, warmup: int = 1) -> Callable[[str], float]:
    """A probe for :func:`choose_precision`: times full training steps (forward, backward, AdamW) of a
    copy of ``model`` on ``batch``, so the real model, its optimiser and the RNG stay untouched."""
    def probe(precision: str) -> float:
        rng = torch.get_rng_state()
        m = copy.deepcopy(model)
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=0.0)
        times = []
        for i in range(warmup + repeats):
            t = time.perf_counter()
            with autocast(device, precision):
                loss = loss_fn(m, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t)
        torch.set_rng_state(rng)
        return sorted(times)[len(times) // 2]
    return probe


def to_channels_last(batch: dict) -> dict:
    """Image tensors (4-D) in channels-last layout; everything else as is."""
    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 and k == "image" else v
            for k, v in batch.items()}
