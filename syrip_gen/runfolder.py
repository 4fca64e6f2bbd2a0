"""The output folder of a keyed run (``render``, ``fit``): whose it is, and whether we may write.

Why: a user's own dataset or an earlier run with other settings must never be overwritten or
mixed with new results. A folder holds ``run.json`` with the run key (a hash of the input and
the settings that change the output); one command claims a folder only when it is new, empty,
its own run with the same key (resume), or, with ``force``, its own run with another key.
A non-empty folder the command did not make is refused even with ``force``; a run that wrote
nothing but its ``run.json`` (it failed at the start) is replaced without ``force``.

While a command writes, it holds an OS lock (``fcntl.flock``) on ``.syrip-gen.lock`` in its
folder: a second run into the same folder is refused at once, and the lock dies with the
process that held it, so nothing stale blocks a rerun. :func:`check_writable` tells a
read-only or otherwise unwritable output place on one line before any work.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from syrip_gen.errors import UserError

RUN_FILE = "run.json"
RUN_VERSION = 1  # run.json schema; a file without "version" is version 0 (migrate_run)
LOCK_FILE = ".syrip-gen.lock"
FOREIGN_OK = ("step.json", ".step-started.json", LOCK_FILE)  # the pipeline runner's files in its steps' folders


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
            run = migrate_run(json.loads((out / RUN_FILE).read_text()))
            other, made_by = run.get("run_key"), run["command"]
        except (OSError, ValueError, AttributeError):
            other, made_by = "unreadable", command
        if made_by != command:
            raise UserError(f"--out {out} holds a `syrip-gen {made_by}` run; refusing to write a {command} "
                            "run into it: choose a new or empty folder")
    elif made_before_keys(out):
        other = "unknown"
    elif _names(out):
        raise UserError(f"--out {out} is not empty and was not made by `syrip-gen {command}`; refusing to "
                        "write into it (its files would be overwritten): choose a new or empty folder")
    if other is None or other == key:
        return None
    if _names(out) <= {RUN_FILE}:  # that run failed before writing anything: nothing to lose
        return other
    if not force:
        raise UserError(f"{out} holds a different {command} run (another input or settings: key {other}, "
                        f"this run {key}); choose another --out, or pass --force to replace it")
    return other


def record(out: Path, key: str, command: str, **extra) -> None:
    """Write ``run.json``: this folder now holds ``command``'s run ``key`` (plus ``extra``)."""
    from syrip_gen.atomic import atomic_write_json

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RUN_FILE, {"run_key": key, "command": command, **extra, "version": RUN_VERSION})


def migrate_run(run: dict) -> dict:
    """A read ``run.json`` as the current version. Version 0 (no ``version``, written before
    the field) may lack ``command``: only render keyed its folders then."""
    if run.get("version", 0) == 0:
        return {"command": "render", **run, "version": RUN_VERSION}
    return run


def _names(out: Path) -> set[str]:
    """What ``out`` holds besides the files any command's folder may hold (lock, step manifest)."""
    return {p.name for p in out.iterdir() if p.name not in FOREIGN_OK}


def check_writable(path: str | Path, what: str = "--out", folder: bool = True) -> None:
    """One-line UserError unless a ``folder`` (or, ``folder=False``, a file) can be written at
    ``path``: it must not be a file (a folder), nor a folder (a file), and its nearest existing
    folder must take a new file. Probed by creating and deleting a hidden empty file there, so a
    read-only file system, missing permission or a full inode table show now, not after the
    work; nothing is left behind."""
    import errno
    import tempfile

    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file; give a folder")
    if not folder and path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name")
    place = path if folder else path.parent
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise UserError(f"{what} {path}: {place} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=place, prefix=".syrip-gen-probe.", suffix=".tmp")
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UserError(f"disk full at {place} ({what} {path}); nothing was done: free some space "
                            "and rerun") from None
        why = {errno.EROFS: "it is on a read-only file system", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied"}.get(err.errno, err.strerror)
        raise UserError(f"{what} {path}: cannot write in {place} ({why}); nothing was done: choose a "
                        "writable place") from None
    os.close(fd)
    os.unlink(probe)


@contextmanager
def locked(out: str | Path, command: str) -> Iterator[None]:
    """Hold the OS lock of folder ``out`` (made if need be) for the ``with`` block; one-line
    UserError when another process holds it (a second run writing into the same folder)."""
    import fcntl

    out = Path(out)
    check_writable(out)
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(f"{out} is in use by another syrip-gen run (it holds {out / LOCK_FILE}); refusing a "
                        f"second run of `syrip-gen {command}` into it: wait for that run to end, or choose another "
                        "folder") from None
    try:
        yield
    finally:
        os.close(fd)  # releases the lock (the OS does the same when the process dies)
