"""What machine a measurement ran on (for benchmark result files): lscpu fields, load, GPU; and the
result files themselves (one JSON + one Markdown page per benchmark)."""
from __future__ import annotations

import os
import platform
import subprocess

LSCPU_KEYS = ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "Hypervisor vendor")


def lscpu(keys: tuple[str, ...] = LSCPU_KEYS) -> dict[str, str]:
    """Selected ``lscpu`` fields; empty when lscpu is unavailable."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys:
            fields[key.strip()] = value.strip()
    return fields


def cpu_model() -> str:
    return lscpu().get("Model name") or platform.processor() or "unknown CPU"


def describe() -> str:
    """One line: CPU model, core count, current load average, GPU if torch sees one."""
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpu_model()}, {os.cpu_count()} CPUs, load average {load}, {gpu}"


def git_commit(root: str | os.PathLike) -> str:
    """Short commit id of the checkout at ``root`` (for result files), or "unknown"."""
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_results(out: str | os.PathLike, result: dict, markdown: str) -> None:
    """``out``.json (sorted keys, atomic) and ``out``.md beside it: a benchmark's two result files."""
    from pathlib import Path

    from syrip_gen.atomic import atomic_write_json

    out = Path(out)
    atomic_write_json(out.with_suffix(".json"), result)
    out.with_suffix(".md").write_text(markdown)
