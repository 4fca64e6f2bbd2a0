"""The gates' values: one number per sample row (``gates/samples.py``) and gate, NaN where a
gate cannot be computed, each such row counted in ``skipped[gate]`` by reason.

Why apart from ``filter.py``: computing a gate's value (from the annotation, the fits file, the
posed mesh) is one job; comparing values with thresholds and writing verdicts is another. Each
function fills ``values[gate]`` for the gates of one source, and the table above it names
those gates (``gates/table.py`` puts them in verdict order).
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np

from syrip_gen.fits import FitRecord, fits_file, read_records
from syrip_gen.gates.samples import Samples


# each group: gate -> (which side fails, FilterConfig field holding its threshold, what the value is)
FRAMING = {
    "out_of_frame": ("above", "max_out_of_frame", "share of the 17 keypoints outside the image"),
    "too_small": ("below", "min_body_size", "sqrt(box area / image area)"),
    "too_large": ("above", "max_body_size", "sqrt(box area / image area)"),
    "few_visible": ("below", "min_visible", "keypoints labelled in the image (v>=1, see gates.framing)"),
}


def framing_values(s: Samples, values: dict, skipped: dict) -> None:
    """The framing gates (out of frame, too small, too large, few visible) from keypoints and box."""
    from syrip_gen.gates import framing

    # keypoints outside the frame: projected from 3D where the render recorded it, else v=0
    out = framing.outside_share_from_visibility(s.kps)
    for i, ann in enumerate(s.anns):
        k3d = ann.keypoints_3d if ann else None
        if k3d is not None and s.Ks[i] is not None:
            xy = framing.pixels_in_front(np.asarray(k3d, float).reshape(1, 17, 3),
                                         np.asarray(s.Ks[i], float).reshape(1, 3, 3))
            out[i] = framing.outside_share(xy, s.size[i:i + 1])[0]
    size = framing.box_size(s.bbox, np.maximum(s.size, 1))
    missing = np.array([a is None for a in s.anns])
    for gate, v in (("out_of_frame", out), ("too_small", size), ("too_large", size),
                    ("few_visible", framing.visible_count(s.kps).astype(float))):
        v = v.astype(float).copy()
        v[missing] = np.nan
        values[gate] = v
        if missing.any():
            skipped[gate]["image has no annotation"] = int(missing.sum())


def _count(counter: dict, reason: str) -> None:
    counter[reason] = counter.get(reason, 0) + 1


CONTACT = {
    "hovering": ("above", "max_hover_m", "height (m) of the back (supine/side) or feet (standing) above the support"),
    "unbalanced": ("below", "min_balance_m", "centre of mass inside the touching vertices' hull (m; < 0 tips over)"),
}


def contact_values(s: Samples, values: dict, skipped: dict) -> None:
    """The renders' own contact record (render.world.contact): hover height and balance margin.
    Sitting infants' seat height is not gated (photos show them on laps and chairs)."""
    n = len(s.anns)
    hover, balance = np.full(n, np.nan), np.full(n, np.nan)
    for i, ann in enumerate(s.anns):
        c = ann.contact if ann else None
        if c is None:
            for gate in ("hovering", "unbalanced"):
                _count(skipped[gate], "no contact record (a render without render.world.contact)")
            continue
        balance[i] = float(c.get("margin_m", np.nan))
        if c.get("part") in ("sitting", "prone"):  # prone: no one part must touch (crawling)
            _count(skipped["hovering"], f"{c['part']} (not gated)")
        else:
            hover[i] = float(c.get("gap_m", np.nan))
    values["hovering"], values["unbalanced"] = hover, balance


FIT_ERROR = {"fit_error": ("above", "max_fit_error", "mean normalised reprojection error of the source fit")}


def fit_values(s: Samples, path: Path | None, records: list[FitRecord] | None, values: dict, skipped: dict,
               fit_status: dict) -> None:
    """The ``fit_error`` gate: each infant's source fit's error among the ``records`` of the fits
    file at ``path`` (None: no fits file; records None: read them, a missing file is a one-line
    UserError); ``fit_status``: row -> status of a source fit that the fitter rejected."""
    v = np.full(len(s.image_ids), np.nan)
    if path is None:
        skipped["fit_error"]["no fits file (pass --fits FITS/fits.jsonl)"] = len(v)
        values["fit_error"] = v
        return
    fits = {str(r.id): r for r in (records if records is not None else read_records(fits_file(path), bad={}))}
    missing: Counter = Counter()
    for i, ann in enumerate(s.anns):
        fid = ann.fit_id if ann else None
        rec = fits.get(fid) if fid is not None else None
        if rec is None:
            why = "no source fit id in provenance" if fid is None else "source fit id not in the fits file"
            missing[why] += 1
            continue
        status = rec.status or ""
        if status != "ok":
            fit_status[i] = status
        err = rec.mean_error_norm
        if isinstance(err, (int, float)) and math.isfinite(err):
            v[i] = err
        else:
            missing["fit has no mean_error_norm"] += 1
    skipped["fit_error"].update(missing)
    values["fit_error"] = v


POSE = {
    "hyperextension": ("above", "max_hyperextension_rad", "hyperextension (rad), fit.limits"),
    "joint_limits": ("above", "max_joint_limit_rad", "joint-limit violation (rad), fit.limits"),
    "pose_prior": ("above", "max_prior_nll", "pose NLL under fit.prior.default_prior()"),
}


def pose_values(s: Samples, cfg, values: dict, skipped: dict) -> None:
    """The pose gates (joint limits, hyperextension, pose prior) that ``cfg.gates`` (a
    ``FilterConfig``) runs, from the rows' body poses."""
    from syrip_gen.gates import pose as pose_gates

    n = len(s.image_ids)
    has = np.isfinite(s.poses).all(axis=(1, 2))
    for gate in ("joint_limits", "hyperextension", "pose_prior"):
        values[gate] = np.full(n, np.nan)
        if (~has).any():
            skipped[gate]["annotation has no body pose"] = int((~has).sum())
    if not has.any():
        return
    poses = s.poses[has]
    if "joint_limits" in cfg.gates or "hyperextension" in cfg.gates:
        res, why = pose_gates.joint_limits(poses)
        for k, gate in enumerate(("joint_limits", "hyperextension")):
            if res is None:
                skipped[gate][why] = int(has.sum())
            else:
                values[gate][has] = res[k]
    if "pose_prior" in cfg.gates:
        nll, why = pose_gates.prior_nll(poses)
        if nll is None:
            skipped["pose_prior"][why] = int(has.sum())
        else:
            values["pose_prior"][has] = nll


PENETRATION = {"penetration": ("above", "max_penetration", "worst share of a body part inside another")}


def penetration_values(s: Samples, cfg, body, values: dict, skipped: dict, details: dict) -> None:
    """The ``penetration`` gate: each Anny row posed with ``body`` (loaded when None) in batches
    of ``cfg.batch_size``; ``details[row]["penetration"]``: the worst pair of parts."""
    n = len(s.image_ids)
    v = np.full(n, np.nan)
    values["penetration"] = v
    ok = np.array([np.isfinite(s.poses[i]).all() and s.shapes[i] is not None and s.models[i] == "anny"
                   for i in range(n)])
    if (~ok).any():
        skipped["penetration"]["no Anny body pose and shape in the annotation"] = int((~ok).sum())
    idx = np.flatnonzero(ok)
    if not len(idx):
        return
    import torch
    from tqdm import tqdm

    from syrip_gen.gates.penetration import body_parts, penetration_share

    if body is None:
        from syrip_gen.body import load_body

        body = load_body("anny")
    topo = body.topology()
    parts = body_parts(body)
    with tqdm(total=len(idx), desc="filter: self-penetration", unit="img", disable=len(idx) < 64) as bar:
        for start in range(0, len(idx), cfg.batch_size):
            b = idx[start:start + cfg.batch_size]
            pose = torch.as_tensor(s.poses[b], dtype=torch.float32)
            shape = torch.as_tensor(np.array([s.shapes[i] for i in b], dtype=np.float32))
            with torch.no_grad():
                verts = body(pose, shape, with_vertices=True).vertices.numpy()
            share, worst = penetration_share(verts, parts, topo.body_faces, depth=cfg.penetration_depth_m,
                                             stride=cfg.penetration_stride)
            v[b] = share
            for i, w in zip(b, worst):
                details.setdefault(int(i), {})["penetration"] = w
            bar.update(len(b))


DUPLICATE = {"duplicate": ("below", "duplicate_score",
                           "max(2D distance / max, pose distance / max) to the nearest kept sample")}


def duplicate_values(s: Samples, cfg, values: dict) -> dict[int, list[tuple[int, float]]]:
    """The ``duplicate`` gate: each annotated row's score to its nearest other sample
    (``gates/duplicates.py``); returns row -> [(earlier row, pair score)] of its duplicates, for
    the verdict that keeps the first of a pair."""
    from syrip_gen.gates.duplicates import duplicate_scores

    has_ann = np.array([a is not None for a in s.anns])
    idx = np.flatnonzero(has_ann)
    d = duplicate_scores(s.kps[idx], s.poses[idx], cfg.duplicate_max_2d, cfg.duplicate_max_pose_rad)
    v = np.full(len(s.image_ids), np.nan)
    v[idx] = d.score
    values["duplicate"] = v
    partners: dict[int, list[tuple[int, float]]] = {}
    for (a, b), sc in zip(d.pairs, d.pair_score):
        partners.setdefault(int(idx[b]), []).append((int(idx[a]), float(sc)))
    return partners
