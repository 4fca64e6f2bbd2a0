"""The one atomic writer: a temporary file in the target's folder, then ``os.replace``.

Why: a process killed midway (a full disk, Ctrl-C, a pre-empted node) must never leave a
half-written annotation file, prior, model or checkpoint where the next run would read it.
Every writer of the project goes through :func:`atomic_path` (writers that want a file name:
``np.savez``, ``torch.save``) or :func:`write_bytes` / :func:`write_json` (``syrip_gen.coco``
re-exports them as ``atomic_write_bytes`` / ``atomic_write_json``). Files are 0644; the temp
file is ``.<name>.<random><suffix>`` (``dataset.py`` sweeps left-over ``.*.tmp``).
"""
from __future__ import annotations

import json
import os
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


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | Path, obj: object) -> None:
    """Write JSON with sorted keys atomically; NumPy scalars and arrays become numbers and lists."""
    write_bytes(path, json.dumps(obj, sort_keys=True, default=json_default).encode())


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
