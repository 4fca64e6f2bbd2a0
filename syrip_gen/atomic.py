"""Every read and write of a file (as Kubric's ``file_io``): atomic writes, one image reader.

Why: a process killed midway (a full disk, Ctrl-C, a pre-empted node) must never leave a
half-written annotation file, prior, model or checkpoint where the next run would read it.
Every writer of the project goes through :func:`atomic_path` (writers that want a file name:
``np.savez``, ``torch.save``), :func:`atomic_write_bytes`, :func:`atomic_write_json`,
:func:`atomic_write_image` or :func:`atomic_link`; MP4s are streamed by ``syrip_gen.video``
through a temporary file of their own. Files are 0644; the temp file is
``.<name>.<random><suffix>`` (``render/run.py`` sweeps left-over ``.*.tmp``). Images are read by
:func:`read_image`, which returns None for a missing or unreadable file (and can count it),
so each caller decides once whether that skips the file or stops the run.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it replaces
    ``path`` (mode 0644), else it is removed. OS errors name ``path``, not the temp file.
    ``suffix``: for writers that add their own ending (``np.savez`` adds ``.npz``)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.close(fd)
    except OSError as err:
        raise _naming(err, path) from err
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _naming(err, path) from err
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | Path, obj: object) -> None:
    """Write JSON with sorted keys atomically; NumPy scalars and arrays become numbers and lists."""
    atomic_write_bytes(path, json.dumps(obj, sort_keys=True, default=json_default).encode())


def atomic_write_image(path: str | Path, image: np.ndarray, params: tuple[int, ...] = ()) -> None:
    """Encode ``image`` (``(H, W, 3) uint8`` BGR) by ``path``'s suffix and write it atomically.
    Use this, not ``cv2.imwrite``: that returns False on a full disk instead of raising."""
    import cv2

    ok, buf = cv2.imencode(Path(path).suffix, image, list(params))
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode a {image.shape} {image.dtype} image as {Path(path).suffix}")
    atomic_write_bytes(path, buf.tobytes())


def atomic_link(src: Path, dst: Path) -> None:
    """Make ``dst`` a hard link to ``src`` (a copy across file systems), replacing it atomically."""
    if dst.exists():
        if os.path.samefile(src, dst):
            return
        dst.unlink()
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def read_image(path: str | Path, flags: int | None = None, skipped: dict | None = None,
               why: str = "image unreadable") -> np.ndarray | None:
    """The image at ``path`` decoded by OpenCV (BGR ``uint8``; ``flags`` default
    ``IMREAD_COLOR``), or None when it is missing, unreadable or empty; then ``skipped[why]``
    (a dict or Counter of reasons, when given) goes up by one."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR if flags is None else flags)
    if img is None or img.size == 0:
        if skipped is not None:
            skipped[why] = skipped.get(why, 0) + 1
        return None
    return img


def json_default(o):
    """``json.dumps`` ``default=`` for NumPy values."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _naming(err: OSError, path: Path) -> OSError:
    """The same error naming the file meant (a write to a full disk names none; a temporary
    file's name means nothing to the user)."""
    return OSError(err.errno, err.strerror, str(path)) if err.errno else err
