"""Pick the torch device and the numeric path a run trains in: a fixed rule, never a timing race.

``auto`` = CUDA when present, else CPU. The numeric path (precision and memory layout) is a
deterministic function of the machine's flags and the config (:func:`numeric_path`): float16
autocast on CUDA; on a CPU, bfloat16 autocast + channels-last where the CPU computes bfloat16 in
hardware (AVX-512 BF16 or AMX; a quiet microbenchmark on such an EPYC gave 1.78x float32 NCHW) and
the model is convolutional, else float32 NCHW (oneDNN emulates bfloat16 on plain AVX2 CPUs, 13x
slower there). Earlier versions timed the candidates at the start of every run; under load that
race picked different paths for the same spec, and a resumed run could continue in another
precision than it started (issue 30). The path is recorded in every checkpoint and a resume always
continues with the recorded one. ``SYRIP_PRECISION`` (float32 | bfloat16) overrides ``auto``,
e.g. to run the test suite in bfloat16 on a CPU that has it; ``ATEN_CPU_CAPABILITY`` or
``ONEDNN_MAX_CPU_ISA`` capped below AVX-512 BF16 count as "no native bfloat16".
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
from dataclasses import dataclass
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


PRECISION_ENV = "SYRIP_PRECISION"
CONV_TASKS = ("pose2d", "detector")
# ISA caps that leave no bfloat16 arithmetic in hardware (torch's and oneDNN's spellings)
_ATEN_NO_BF16 = {"default", "avx2", "avx512", "avx512_vnni", "zvector", "vsx"}
_ONEDNN_NO_BF16 = {"sse41", "avx", "avx2", "avx2_vnni", "avx512_core", "avx512_core_vnni"}


def cpu_has_native_bf16(cpuinfo: str | None = None, env: dict | None = None) -> bool:
    """True where the CPU has bfloat16 arithmetic in hardware (``avx512_bf16`` or ``amx_bf16``) and
    the environment does not cap torch/oneDNN below it."""
    env = os.environ if env is None else env
    if env.get("ATEN_CPU_CAPABILITY", "").lower() in _ATEN_NO_BF16 \
            or env.get("ONEDNN_MAX_CPU_ISA", "").lower() in _ONEDNN_NO_BF16:
        return False
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


@dataclass(frozen=True)
class NumericPath:
    """How a run computes: precision, memory layout, and why (logged and recorded with checkpoints)."""

    precision: str
    channels_last: bool
    reason: str

    def describe(self) -> str:
        return f"{self.precision}, {'channels-last' if self.channels_last else 'NCHW'} ({self.reason})"


def numeric_path(task: str, device: torch.device, precision: str = "auto", channels_last: bool | None = None,
                 amp: bool = True, native_bf16: bool | None = None, env: dict | None = None) -> NumericPath:
    """The numeric path for ``task`` on ``device``: the config's pins first (``precision``,
    ``channels_last``, ``amp: false`` = float32), then ``SYRIP_PRECISION``, then the rule of the module
    docstring. Pure: the same machine flags and config always give the same path."""
    env = os.environ if env is None else env
    if precision not in PRECISIONS:
        raise UserError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    forced = env.get(PRECISION_ENV, "").strip()
    if forced and forced not in ("float32", "bfloat16"):
        raise UserError(f"{PRECISION_ENV}={forced!r}: use float32 or bfloat16")
    conv = task in CONV_TASKS
    if not amp:
        prec, why = "float32", "amp: false"
    elif precision != "auto":
        prec, why = precision, "pinned by the config"
    elif forced:
        prec, why = forced, f"{PRECISION_ENV}={forced}"
    elif device.type == "cuda":
        prec, why = "float16", "CUDA"
    elif not conv:
        prec, why = "float32", f"auto: the {task} is no convolutional network"
    elif cpu_has_native_bf16(env=env) if native_bf16 is None else native_bf16:
        prec, why = "bfloat16", "auto: this CPU computes bfloat16 natively"
    else:
        prec, why = "float32", "auto: this CPU has no native bfloat16"
    if prec == "float16" and device.type != "cuda":
        raise UserError("precision float16 needs a CUDA GPU; on a CPU use bfloat16 or auto")
    if channels_last is None:
        channels_last = conv and device.type == "cpu" and prec == "bfloat16"
        why += "; layout auto"
    elif channels_last and not conv:
        raise UserError(f"channels_last: the {task} has no image tensors; leave it unset")
    return NumericPath(prec, bool(channels_last), why)


def resumed_path(recorded: dict, task: str, device: torch.device, precision: str = "auto",
                 channels_last: bool | None = None, amp: bool = True) -> NumericPath:
    """The path a resumed run continues in: the one its checkpoint recorded. A config that pins
    another path is a one-line error (continuing in another precision would not be the same run)."""
    if "precision" not in recorded:  # a checkpoint older than the record: decide as a new run would
        return numeric_path(task, device, precision, channels_last, amp)
    rec = NumericPath(recorded["precision"], bool(recorded.get("channels_last", False)), "recorded by the checkpoint")
    pinned_prec = "float32" if not amp else (None if precision == "auto" else precision)
    if (pinned_prec is not None and pinned_prec != rec.precision) or \
            (channels_last is not None and bool(channels_last) != rec.channels_last):
        raise UserError(f"this run was trained in {rec.precision}, "
                        f"{'channels-last' if rec.channels_last else 'NCHW'} and resumes only in that path; unpin "
                        "precision/channels_last/amp in the config or start afresh (--no-resume)")
    if rec.precision == "float16" and device.type != "cuda":
        raise UserError("this run was trained in float16 on a CUDA GPU; resume it there or start afresh (--no-resume)")
    return rec


def step_probe(model: torch.nn.Module, batch: dict, loss_fn: Callable, device: torch.device,
               repeats: int = 3) -> Callable[[list[tuple[str, bool]]], list[float]]:
    """Side-by-side timing for benchmarks (``benchmarks/train_throughput.py``), never for choosing a
    run's path: full training steps (forward, backward, AdamW) of a copy of ``model`` per candidate
    ``(precision, channels_last)`` on ``batch``, one untimed step each, then ``repeats`` rounds
    interleaved so that other load falls on every candidate alike; median seconds per step. The real
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
