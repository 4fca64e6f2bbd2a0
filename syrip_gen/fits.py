"""The fits file (``FITS/fits.jsonl``): its schema, and the only code that reads or appends it.

Why one owner: the fitter appends a batch at a time (a crash may leave a truncated last line),
render needs the usable records, filter each fit's status and error, the benchmark report the
errors; they must agree on what a readable record is.

One JSON object per line (sorted keys); docs/formats.md lists the fields. Every record
has ``id`` and ``status`` (``"ok"`` or ``"rejected: <reason>"``); an ok record has ``pose``
(24x3 axis-angle, common space), ``shape`` (S numbers), ``camera``, ``keypoints_2d``,
``keypoints_3d``, ``mean_error_norm`` and the fit's losses and hypotheses. :class:`FitRecord`
is that line as a dataclass; records written before the schema had a ``version`` are read
through :func:`migrate_fit_record`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from syrip_gen.errors import UserError

log = logging.getLogger(__name__)

FITS_NAME = "fits.jsonl"
POSE_SHAPE = (24, 3)
FIT_RECORD_VERSION = 1  # records without a ``version`` are version 0 (see migrate_fit_record)


@dataclass(kw_only=True)
class SkeletonFields:
    """What a fits record keeps of its input skeleton, declared once: :class:`fit.io.Skeleton`
    reads them from the input, :class:`FitRecord` writes them."""

    image_id: Any = None
    file_name: str | None = None
    width: float | None = None
    height: float | None = None
    source: str | None = None  # the input file the skeleton came from
    posture: str | None = None


@dataclass(kw_only=True)
class FitRecord(SkeletonFields):
    """One fits.jsonl record, treated as a value (changed copies by ``dataclasses.replace``). A
    field that is None is absent from the line, unless it is named in ``nulls`` (present as
    JSON null, as the skeleton's input fields may be); keys this version does not name are kept
    in ``extra``, so a record reads and writes back the same keys."""

    id: str
    status: str
    # the skeleton's input fields (fit.io.Skeleton.record) are SkeletonFields's and these 2D keypoints
    keypoints_2d: list | None = None
    # the fit (absent when the skeleton was rejected before fitting)
    body: str | None = None
    pose: list | None = None  # (24, 3) axis-angle, common space
    shape: list | None = None  # (S,)
    age_months: float | None = None
    camera: dict | None = None  # {fx, fy, cx, cy, R, t} (fit.camera.camera_record)
    keypoints_3d: list | None = None  # (17, 3), camera frame
    reproj_error_px: list | None = None
    reproj_error_norm: list | None = None
    mean_error_norm: float | None = None
    losses: dict | None = None
    hypothesis: str | None = None
    hypotheses: Any = None
    hypotheses_final: Any = None
    seed: int | None = None
    support: dict | None = None  # fit option `support`: {normal, offset, camera_elevation_deg}
    version: int = FIT_RECORD_VERSION
    nulls: frozenset = field(default=frozenset(), repr=False)
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        """The record as its JSON line's object (``version`` included)."""
        out = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name in ("nulls", "extra"):
                continue
            value = getattr(self, f.name)
            if value is not None or f.name in self.nulls:
                out[f.name] = value
        return out

    @classmethod
    def from_json(cls, d: dict) -> FitRecord:
        """A record from its JSON object, migrated to this version first."""
        d = migrate_fit_record(d)
        names = {f.name for f in dataclasses.fields(cls)} - {"nulls", "extra"}
        known = {k: v for k, v in d.items() if k in names}
        known.setdefault("id", None)
        known.setdefault("status", None)
        return cls(**known, nulls=frozenset(k for k in known if d.get(k, 0) is None),
                   extra={k: v for k, v in d.items() if k not in names})


def rejected_record(inputs: dict, status: str) -> FitRecord:
    """The record of a skeleton not fitted: its input fields (``Skeleton.record()``) and why."""
    return dataclasses.replace(FitRecord.from_json(inputs), status=status)


def fitted_record(inputs: dict, visible: np.ndarray, error_px: np.ndarray, error_norm: np.ndarray,
                  max_mean_error: float, **fit) -> FitRecord:
    """The record of a fitted skeleton: its input fields, the ``fit`` fields (body, pose, shape,
    camera, ...), the per-keypoint errors ``(K,)`` (None where the keypoint is not ``visible``)
    and a status that rejects a diverged fit or one whose mean normalised error is above
    ``max_mean_error``."""
    import math

    mean_err = float(error_norm[visible].mean())
    status = "ok"
    if not math.isfinite(mean_err):
        status = "rejected: fit diverged (non-finite error)"
    elif mean_err > max_mean_error:
        status = (f"rejected: mean reprojection error {100 * mean_err:.1f}% of the box diagonal "
                  f"(limit {100 * max_mean_error:.0f}%)")
    return dataclasses.replace(
        FitRecord.from_json(inputs), status=status, mean_error_norm=mean_err,
        reproj_error_px=[float(x) if v else None for x, v in zip(error_px, visible)],
        reproj_error_norm=[float(x) if v else None for x, v in zip(error_norm, visible)], **fit)


def migrate_fit_record(d: dict) -> dict:
    """``d`` as a current-version record. Version 0 (no ``version`` key, written before the
    field existed) has the same fields; its ``body`` may be missing (fits made before the
    body option, which any body accepts, see :func:`usable_fits`), and its paths may be
    relative to the folder `fit` ran in (:func:`record_path` finds them)."""
    version = d.get("version", 0)
    if version == FIT_RECORD_VERSION:
        return d
    if version == 0:
        return {**d, "version": FIT_RECORD_VERSION}
    raise UserError(f"fit record {d.get('id')!r} has schema version {version!r}; this syrip-gen reads "
                    f"versions 0-{FIT_RECORD_VERSION} (update syrip-gen)")


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


def read_records(path: str | Path, repair: bool = False, bad: dict[str, int] | None = None) -> list[FitRecord]:
    """:func:`read_fits` as :class:`FitRecord` objects (older records migrated; one warning a file)."""
    raw = read_fits(path, repair=repair, bad=bad)
    old = sum("version" not in r for r in raw)
    if old:
        log.warning("%s: %d fit record(s) without a schema version read as version 0", path, old)
    return [FitRecord.from_json(r) for r in raw]


def append_fits(path: str | Path, records: list[dict | FitRecord]) -> None:
    """Append records (sorted keys, one per line) and flush them to disk. A ``source`` or
    ``image_path`` naming an existing file (relative to the current directory, or absolute) is
    stored relative to the fits file's folder, so the photos are found from wherever the fits
    are read (see :func:`record_path`)."""
    from syrip_gen.atomic import json_default

    if not records:
        return
    folder = Path(path).resolve().parent
    records = [_relative_paths(r.to_json() if isinstance(r, FitRecord) else r, folder) for r in records]
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


def usable_fits(path: str | Path, body_shape_size: int, limit: int | None = None,
                body: str | None = None) -> tuple[list[FitRecord], dict[str, int]]:
    """Usable fit records (``status == "ok"``, well-formed, made with ``body`` when given and
    the record names one) as :class:`FitRecord`, in file order (a record's position in the list
    is its fit index), and the skips counted by reason."""
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
        records.append(FitRecord.from_json(r))
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
