"""The output folder of a keyed run (``render``, ``fit``): whose it is, and whether we may write.

Why: a user's own dataset or an earlier run with other settings must never be overwritten or
mixed with new results. A folder holds ``run.json`` with the run key (a hash of the input and
the settings that change the output); one command claims a folder only when it is new, empty,
its own run with the same key (resume), or, with ``force``, its own run with another key.
A non-empty folder the command did not make is refused even with ``force``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from syrip_gen.errors import UserError

RUN_FILE = "run.json"
FOREIGN_OK = ("step.json",)  # the pipeline runner's manifest sits in its steps' folders


def claim(out: Path, key: str, force: bool, command: str,
          made_before_keys: Callable[[Path], bool] = lambda out: False) -> str | None:
    """Check that ``command`` may write its run ``key`` into ``out``; returns the key of another
    run of the same command there that ``force`` allows replacing (None: a new folder or this
    run, to resume). ``made_before_keys(out)``: whether a folder without ``run.json`` still
    holds this command's output from before runs were keyed (its key counts as unknown)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    if not out.is_dir():
        return None
    other = None
    if (out / RUN_FILE).exists():
        try:
            run = json.loads((out / RUN_FILE).read_text())
            other, made_by = run.get("run_key"), run.get("command", "render")  # render's came first
        except (OSError, ValueError, AttributeError):
            other, made_by = "unreadable", command
        if made_by != command:
            raise UserError(f"--out {out} holds a `syrip-gen {made_by}` run; refusing to write a {command} "
                            "run into it: choose a new or empty folder")
    elif made_before_keys(out):
        other = "unknown"
    elif any(p.name not in FOREIGN_OK for p in out.iterdir()):
        raise UserError(f"--out {out} is not empty and was not made by `syrip-gen {command}`; refusing to "
                        "write into it (its files would be overwritten): choose a new or empty folder")
    if other is None or other == key:
        return None
    if not force:
        raise UserError(f"{out} holds a different {command} run (another input or settings: key {other}, "
                        f"this run {key}); choose another --out, or pass --force to replace it")
    return other


def record(out: Path, key: str, command: str, **extra) -> None:
    """Write ``run.json``: this folder now holds ``command``'s run ``key`` (plus ``extra``)."""
    from syrip_gen.coco import atomic_write_json

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RUN_FILE, {"run_key": key, "command": command, **extra})
