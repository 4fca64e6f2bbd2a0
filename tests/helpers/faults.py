"""Fault injection for tests: a read-only or a full output folder, and one failing write.

Where this process may mount (root with CAP_SYS_ADMIN on Linux) the folder is a real, tiny
tmpfs: read-only (every write ``EROFS``) or with only ``free`` bytes left (the write that does
not fit ``ENOSPC``), so the kernel decides what fails, in every library alike. Elsewhere (or
with ``SYRIP_FAULTS=patch``) the write entry points are monkeypatched instead, raising the
same ``OSError`` for paths under the folder: ``open``/``io.open`` in a writing mode, ``os.open``
with a writing flag (``tempfile``, locks), ``os.mkdir``, ``os.replace``/``rename``/``link`` into
it (not on a full disk: a rename takes no space) and ``cv2.imwrite`` (which returns False); a patched full folder fails every write, as if
``free`` were 0.
"""
from __future__ import annotations

import builtins
import errno
import io
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def can_mount() -> bool:
    """Whether a tmpfs can be mounted here (tried once, on a scratch folder)."""
    global _CAN_MOUNT
    if _CAN_MOUNT is None:
        _CAN_MOUNT = False
        if os.environ.get("SYRIP_FAULTS") != "patch" and hasattr(os, "geteuid") and os.geteuid() == 0:
            import tempfile

            probe = Path(tempfile.mkdtemp(prefix="syrip-faults-probe"))
            try:
                _CAN_MOUNT = _mount(probe, "size=64k")
                if _CAN_MOUNT:
                    _umount(probe)
            finally:
                probe.rmdir()
    return _CAN_MOUNT


_CAN_MOUNT: bool | None = None


def _mount(folder: Path, options: str) -> bool:
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "syrip-faults", str(folder)],
                       capture_output=True, text=True)
    return r.returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@contextmanager
def read_only_folder(folder: Path, monkeypatch):
    """``folder`` (created empty) becomes read-only for the ``with`` block: writes under it fail
    with EROFS. Yields a function that makes it writable again (for the rerun)."""
    folder.mkdir(parents=True, exist_ok=True)
    if can_mount():
        assert _mount(folder, "ro,size=64m,mode=0755"), folder
        try:
            yield lambda: subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        finally:
            _umount(folder)
    else:
        with monkeypatch.context() as m:
            deny_writes(m, folder, errno.EROFS)
            yield m.undo


@contextmanager
def full_folder(folder: Path, monkeypatch, free: int = 0, size: int = 1 << 20):
    """``folder`` (created empty) on a disk with about ``free`` bytes left for the ``with``
    block (a tmpfs of ``size`` bytes holding a ballast file). Yields a function that frees the
    space (removes the ballast) for the rerun."""
    folder.mkdir(parents=True, exist_ok=True)
    if can_mount():
        assert _mount(folder, f"size={size},mode=0755"), folder
        ballast = folder / ".ballast"
        try:
            with open(ballast, "wb") as f:
                try:
                    f.write(b"\0" * max(0, size - free))
                    f.flush()
                except OSError:  # the whole ballast did not fit: the disk is as full as can be
                    pass
            yield lambda: ballast.unlink(missing_ok=True)
        finally:
            _umount(folder)
    else:
        with monkeypatch.context() as m:
            deny_writes(m, folder, errno.ENOSPC)
            yield m.undo


def deny_writes(monkeypatch, under: Path | str, err: int = errno.ENOSPC, match: str = "") -> None:
    """Make writes to paths under ``under`` whose name contains ``match`` raise ``OSError(err)``
    (monkeypatched entry points, see the module docstring). With ``match`` this is one failing
    file, e.g. ``deny_writes(m, out, match="contact_sheet")``: a disk that fills up just there."""
    root = os.path.abspath(under)

    def hit(path) -> bool:
        if isinstance(path, int):
            return False
        p = os.path.abspath(os.fsdecode(path))
        return (p == root or p.startswith(root + os.sep)) and match in os.path.basename(p)

    def fail(path):
        raise OSError(err, os.strerror(err), os.fsdecode(path))

    real_open, real_os_open = builtins.open, os.open

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and hit(file):
            fail(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & WRITE_FLAGS and hit(path):
            fail(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guard(real, arg=0):
        def wrapped(*args, **kwargs):
            if hit(args[arg]):
                fail(args[arg])
            return real(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", guard(os.mkdir))
    if err != errno.ENOSPC:  # a rename takes no space: on a full disk it still works
        for name in ("replace", "rename", "link", "symlink"):
            monkeypatch.setattr(os, name, guard(getattr(os, name), 1))
    try:
        import cv2
    except ImportError:
        return
    real_imwrite = cv2.imwrite
    monkeypatch.setattr(cv2, "imwrite", lambda path, *a, **k: False if hit(path) else real_imwrite(path, *a, **k))
