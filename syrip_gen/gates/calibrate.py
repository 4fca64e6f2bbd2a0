"""Gate calibration on the run's own fits: every render is a view of a fitted real pose, so the
pose gates must not reject what the real infants did (see ``filter.py``'s docstring).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from syrip_gen.errors import UserError
from syrip_gen.fits import FitRecord, fits_file, read_records
from syrip_gen.gates.samples import fit_samples
from syrip_gen.gates.table import GATES
from syrip_gen.gates.values import penetration_values, pose_values

CALIBRATED = ("pose_prior", "joint_limits", "hyperextension", "penetration")


def fit_records(path: Path | None) -> list[FitRecord] | None:
    """The fits file's records, or None without one (the fit_error gate reports that)."""
    try:
        return read_records(fits_file(path), bad={}) if path is not None else None
    except UserError:
        return None


def calibrate(cfg, records: list[FitRecord] | None, body=None) -> tuple:
    """``cfg`` with each pose gate's threshold raised to at least the ``calibrate_percentile``
    percentile of its value over the run's ok fit ``records`` (and their mirrors), and a record
    of what was done per gate. ``cfg``: a ``FilterConfig``; returns ``(config, record)``."""
    gates = [g for g in CALIBRATED if g in cfg.gates]
    s = fit_samples(records or []) if cfg.calibrate_percentile is not None and gates else None
    if s is None:
        return cfg, {}
    values: dict[str, np.ndarray] = {}
    skipped: dict[str, dict[str, int]] = {g: {} for g in GATES}
    pose_values(s, cfg, values, skipped)
    if "penetration" in gates:
        penetration_values(s, cfg, body, values, skipped, {})
    changes, out = {}, {}
    for gate in gates:
        v = values.get(gate, np.array([]))
        v = v[np.isfinite(v)]
        if not len(v):
            continue
        attr = GATES[gate][1]
        pct = float(np.percentile(v, cfg.calibrate_percentile))
        changes[attr] = max(getattr(cfg, attr), pct)
        out[gate] = {"configured": getattr(cfg, attr), "fits_percentile": pct, "threshold": changes[attr],
                     "percentile": cfg.calibrate_percentile, "n_fits": int(len(v))}
    return dataclasses.replace(cfg, **changes), out
