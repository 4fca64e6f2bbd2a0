"""Pick the torch device and the fastest numeric path it trains well in.

``auto`` = CUDA when present, else CPU. Precision ``auto``: float16 autocast on CUDA; on a CPU,
bfloat16 autocast only where the CPU computes bfloat16 natively (AVX-512 BF16 or AMX) *and* a
short probe of the real training step shows it faster, else float32 (oneDNN emulates bfloat16 on
plain AVX2 CPUs, measured 13x slower there). The memory layout likewise: channels-last is faster for
some models and CPUs and slower for others (on an AVX2 EPYC: ResNet-18 96x64 with a 128-channel
head +10 %, 128x96 with a 256-channel transposed-conv head 2.7x slower), so ``auto`` times both.
The choice is made at run time, by timing the real step side by side, because sessions land on
different CPUs; it is recorded with every checkpoint.
"""
from __future__ import annotations

import contextlib
import copy
import os
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


def set_threads(threads: int | None) -> int:
    """Torch CPU threads for this stage: ``threads`` or every core this process may use (an earlier stage
    of the same pipeline process, e.g. a one-thread fit, must not leave training on one core)."""
    n = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    return n


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


def precision_candidates(requested: str, device: torch.device, native_bf16: bool | None = None) -> list[str]:
    """The precisions worth trying for ``requested`` (one of :data:`PRECISIONS`)."""
    if requested not in PRECISIONS:
        raise UserError(f"precision {requested!r}: use one of {', '.join(PRECISIONS)}")
    if requested == "float16" and device.type != "cuda":
        raise UserError("precision float16 needs a CUDA GPU; on a CPU use bfloat16 or auto")
    if requested != "auto":
        return [requested]
    if device.type == "cuda":
        return ["float16"]
    native = cpu_has_native_bf16() if native_bf16 is None else native_bf16
    return ["float32", "bfloat16"] if native else ["float32"]


def choose_fast_path(candidates: list[tuple[str, bool]], probe: Callable[[list[tuple[str, bool]]], list[float]],
                     log=print) -> tuple[str, bool]:
    """The fastest ``(precision, channels_last)`` of ``candidates`` by ``probe`` (seconds per step of each,
    measured side by side); the first candidate (the plain path) unless another is at least 5 % faster."""
    if len(candidates) == 1:
        return candidates[0]
    times = probe(candidates)
    best = min(range(len(candidates)), key=times.__getitem__)
    chosen = candidates[best] if times[best] < 0.95 * times[0] else candidates[0]
    log("fast-path probe: " + ", ".join(f"{p}{' channels-last' if cl else ''} {1e3 * t:.0f} ms/step"
                                        for (p, cl), t in zip(candidates, times))
        + f" -> {chosen[0]}{', channels-last' if chosen[1] else ', NCHW'}")
    return chosen


def step_probe(model: torch.nn.Module, batch: dict, loss_fn: Callable, device: torch.device,
               repeats: int = 3) -> Callable[[list[tuple[str, bool]]], list[float]]:
    """A probe for :func:`choose_fast_path`: full training steps (forward, backward, AdamW) of a copy of
    ``model`` per candidate on ``batch``, one untimed step each, then ``repeats`` rounds interleaved so
    that other load on the machine falls on every candidate alike; median seconds per step. The real
    model, its optimiser and the RNG stay untouched."""
    def probe(candidates: list[tuple[str, bool]]) -> list[float]:
        rng = torch.get_rng_state()
        runs = []
        for _, cl in candidates:
            m = copy.deepcopy(model)
            b = batch
            if cl:
                m, b = m.to(memory_format=torch.channels_last), to_channels_last(batch)
            runs.append((m, torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=0.0), b))
        times = [[] for _ in candidates]
        for r in range(repeats + 1):
            for i, ((precision, _), (m, opt, b)) in enumerate(zip(candidates, runs)):
                t = time.perf_counter()
                with autocast(device, precision):
                    loss = loss_fn(m, b)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if r:
                    times[i].append(time.perf_counter() - t)
        torch.set_rng_state(rng)
        return [sorted(t)[len(t) // 2] for t in times]
    return probe


def to_channels_last(batch: dict) -> dict:
    """Image tensors (4-D) in channels-last layout; everything else as is."""
    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 and k == "image" else v
            for k, v in batch.items()}
