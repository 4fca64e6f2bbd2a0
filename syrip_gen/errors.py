"""The one exception type the CLI turns into a one-line message (no traceback, exit code 2),
and the one line for the disk faults it turns into the same (full, read-only, not ours)."""
from __future__ import annotations

import errno


class UserError(Exception):
    """Bad input or environment the user can fix; the message says what and how."""


def disk_fault(err: OSError, where: object = None) -> str | None:
    """The one-line message for an ``OSError`` of the disk the user can fix (full, read-only,
    no permission), naming the file (else ``where``); None for any other error. Every write is
    atomic (temporary file + rename) and runs resume, so what was finished is kept."""
    path = err.filename if err.filename is not None else where or "the output folder"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full at {path}: nothing lost (finished work is kept); free some space and rerun to resume"
    if err.errno == errno.EROFS:
        return f"{path} is on a read-only file system: nothing lost; rerun with a writable --out"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: {path}: nothing lost; make it accessible (or use a writable --out) and rerun"
    return None
