"""The fits file (``FITS/fits.jsonl``): its schema, and the only code that reads or appends it.

Why one owner: the fitter appends a batch at a time (a crash may leave a truncated last line),
render needs the usable records, filter each fit's status and error, the benchmark report the
errors; they must agree on what a readable record is.

One JSON object per line (sorted keys); docs/architecture.md lists the fields. Every record
has ``id`` and ``status`` (``"ok"`` or ``"rejected: <reason>"``); an ok record has ``pose``
(24x3 axis-angle, common space), ``shape`` (S numbers), ``camera``, ``keypoints_2d``,
``keypoints_3d``, ``mean_error_norm`` and the fit's losses and hypotheses.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from syrip_gen.errors import UserError

FITS_NAME = "fits.jsonl"
POSE_SHAPE = (24, 3)


def fits_file(path: str | Path) -> Path:
    """``path`` itself or ``path/fits.jsonl`` when it is a directory; UserError when missing."""
    path = Path(path)
    if path.is_dir():
        path = path / FITS_NAME
    if not path.exists():
        raise UserError(f"{path}: no fits file; run `syrip-gen fit` first or pass FITS/fits.jsonl")
    return path


def read_fits(path: str | Path, repair: bool = False, bad: dict[str, int] | None = None) -> list[dict]:
    """Records of a fits.jsonl (none when the file does not exist), in file order.

    A truncated last line (a crash mid-write) is dropped and, with ``repair``, cut from the
    file so appends continue cleanly; an unreadable line elsewhere is a UserError. With a
    ``bad`` dict, unreadable lines (anywhere) and lines that are not JSON objects are counted
    there by reason instead and the file is left alone.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    records, good_bytes = [], 0
    for i, line in enumerate(lines):
        end = 1 if i < len(lines) - 1 else 0
        if not line.strip():
            good_bytes += len(line) + end
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if bad is not None:
                bad["not valid JSON"] = bad.get("not valid JSON", 0) + 1
                continue
            if end and any(ln.strip() for ln in lines[i + 1:]):
                raise UserError(f"{path}: line {i + 1} is not JSON (not a truncated last line); "
                                "move the file away and rerun") from None
            break
        if bad is not None and not isinstance(rec, dict):
            bad["not a JSON object"] = bad.get("not a JSON object", 0) + 1
            continue
        records.append(rec)
        good_bytes += len(line) + end
    if repair and bad is None and good_bytes < len(raw):
        with open(path, "r+b") as f:
            f.truncate(good_bytes)
            if good_bytes and raw[good_bytes - 1:good_bytes] != b"\n":
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
    return records


def append_fits(path: str | Path, records: list[dict]) -> None:
    """Append records (sorted keys, one per line) and flush them to disk. A ``source`` or
    ``image_path`` naming an existing file (relative to the current directory, or absolute) is
    stored relative to the fits file's folder, so the photos are found from wherever the fits
    are read (see :func:`record_path`)."""
    from syrip_gen.atomic import json_default

    if not records:
        return
    folder = Path(path).resolve().parent
    records = [_relative_paths(r, folder) for r in records]
    text = "".join(json.dumps(r, sort_keys=True, default=json_default) + "\n" for r in records)
    with open(path, "a") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


PATH_FIELDS = ("source", "image_path")


def _relative_paths(record: dict, folder: Path) -> dict:
    """``record`` with its existing input paths made relative to ``folder`` (labels such as
    ``"posture-library"`` and paths that do not exist are kept as given)."""
    out = dict(record)
    for key in PATH_FIELDS:
        value = record.get(key)
        if isinstance(value, (str, os.PathLike)) and str(value) and Path(value).exists():
            out[key] = os.path.relpath(Path(value).resolve(), folder)
    return out


def record_path(record: dict, key: str, fits_path: str | Path | None) -> Path | None:
    """The file a record's ``source`` or ``image_path`` names. Fits files store it relative to
    their own folder; older ones relative to the folder `fit` ran in. So a relative path is
    taken beside the fits file when it exists there, else from the current directory when it
    exists there, else beside the fits file (absent; for the caller to report)."""
    value = record.get(key)
    if not value or not isinstance(value, str):
        return None
    given = Path(value)
    if given.is_absolute() or fits_path is None:
        return given
    beside = Path(fits_path).resolve().parent / given
    if beside.exists() or not given.exists():
        return beside
    return given.resolve()


def fit_errors(path: str | Path) -> dict[str, dict]:
    """Fit id -> ``{status, mean_error_norm}`` (unreadable lines skipped)."""
    return {str(r.get("id")): {"status": r.get("status"), "mean_error_norm": r.get("mean_error_norm")}
            for r in read_fits(fits_file(path), bad={})}


def usable_fits(path: str | Path, body_shape_size: int, limit: int | None = None,
                body: str | None = None) -> tuple[list[dict], dict[str, int]]:
    """Usable fit records (``status == "ok"``, well-formed, made with ``body`` when given and
    the record names one) in file order, each given ``_index`` (its position among them), and
    the skips counted by reason."""
    path = fits_file(path)
    skipped: dict[str, int] = {}
    raw = read_fits(path, bad=skipped)
    if not raw and not skipped:
        raise UserError(f"{path}: the fits file is empty; run `syrip-gen fit` on your keypoint file first")

    def skip(reason):
        skipped[reason] = skipped.get(reason, 0) + 1

    records = []
    for r in raw:
        if r.get("status") != "ok":
            skip("fit not ok")
            continue
        if not well_formed(r, body_shape_size):
            skip("malformed pose/shape/id")
            continue
        if body is not None and r.get("body", body) != body:
            skip(f"fit made with another body model ({str(r.get('body'))[:40]!r}, not {body!r})")
            continue
        if limit is not None and len(records) >= limit:
            skip("beyond --limit")
            continue
        r["_index"] = len(records)
        records.append(r)
    if not records:
        detail = ", ".join(f"{n} {k}" for k, n in sorted(skipped.items()))
        raise UserError(f"{path}: no usable fits ({detail}); every fit was rejected — check `syrip-gen fit`'s summary")
    return records, skipped


def well_formed(record: dict, body_shape_size: int) -> bool:
    """An ok record a body can pose: finite ``pose (24, 3)``, ``shape (S,)`` and an ``id``."""
    try:
        pose = np.asarray(record["pose"], np.float64)
        shape = np.asarray(record["shape"], np.float64)
    except (KeyError, TypeError, ValueError):
        return False
    return (pose.shape == POSE_SHAPE and shape.shape == (body_shape_size,) and bool(np.isfinite(pose).all())
            and bool(np.isfinite(shape).all()) and "id" in record)
