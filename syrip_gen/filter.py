"""Quality gates over a rendered dataset: every rejection recorded with its reason and value.

Why: SyRIP's authors kept 504 of 1000 renders after removing "unnatural/invalid infant bodies"
by hand, with no record of why. Here each image gets a number per gate (``syrip_gen.gates``),
the numbers are compared with the thresholds of one frozen :class:`FilterConfig`, and the
report says which gate rejected what, by how much. A person then confirms the rest in the
review page; ``use_decisions`` applies their decisions:

- a reviewer's **reject** overrides an automatic accept (reason ``reviewer``);
- a reviewer's **accept** overrides automatic rejections (kept; the gate reasons stay in the
  report, marked ``overridden``);
- images without a decision keep the automatic verdict.

Calibration on the run's own fits: every render is a view of a fitted real pose, so the pose
gates (pose prior, joint limits, hyperextension, penetration) must not reject what the real
infants did. With a fits file holding poses, each of those thresholds is raised to at least
the ``calibrate_percentile`` percentile of the gate's value over the ok fits and their mirror
images (renders mirror half the poses); the report records both numbers. Thresholds never go
below the configured ones, so a planted impossible pose is still caught.

Outputs: the filtered COCO file (``annotations/person_keypoints_<split>_filtered_infant.json``
or ``out``), ``DATASET/filter/report.json`` (counts per reason, per-image verdicts) and one
histogram PNG per gate with its threshold.

Clips (a ``sequence`` output: images carry ``clip_id``), with ``whole_clips`` (the command and
the pipeline step): frames of a clip are alike by design, so the duplicate gate is left out,
and a clip is kept or dropped whole (reason ``clip`` for its passing frames), as the clip
gates of ``sequence`` do: a hole breaks the time axis. The default outputs then go beside the
clip gates' own (``..._filtered_gates_infant.json``, ``DATASET/filter_gates/``), never over them.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from syrip_gen.coco import (KeypointFile, atomic_write_json, dataset_json, dataset_root, filtered_name, load_coco,
                            write_coco)
from syrip_gen.annotate import read_annotations
from syrip_gen.config import check_ranges, from_mapping
from syrip_gen.errors import UserError
from syrip_gen.fits import FitRecord, fit_errors, fits_file, read_records

log = logging.getLogger(__name__)

# gate name -> (which side fails, FilterConfig field holding its threshold, what the value is)
GATES: dict[str, tuple[str, str, str]] = {
    "fit_error": ("above", "max_fit_error", "mean normalised reprojection error of the source fit"),
    "out_of_frame": ("above", "max_out_of_frame", "share of the 17 keypoints outside the image"),
    "too_small": ("below", "min_body_size", "sqrt(box area / image area)"),
    "too_large": ("above", "max_body_size", "sqrt(box area / image area)"),
    "few_visible": ("below", "min_visible", "keypoints labelled in the image (v>=1, see gates.framing)"),
    "hyperextension": ("above", "max_hyperextension_rad", "hyperextension (rad), fit.limits"),
    "joint_limits": ("above", "max_joint_limit_rad", "joint-limit violation (rad), fit.limits"),
    "penetration": ("above", "max_penetration", "worst share of a body part inside another"),
    "pose_prior": ("above", "max_prior_nll", "pose NLL under fit.prior.default_prior()"),
    "hovering": ("above", "max_hover_m", "height (m) of the back (supine/side) or feet (standing) above the support"),
    "unbalanced": ("below", "min_balance_m", "centre of mass inside the touching vertices' hull (m; < 0 tips over)"),
    "duplicate": ("below", "duplicate_score", "max(2D distance / max, pose distance / max) to the nearest kept sample"),
}
FIT_STATUS = "fit_status"  # the source fit itself was rejected by the fitter
CLIP = "clip"  # a frame that passed, dropped with the rest of its clip (whole_clips)
REVIEWER = "reviewer"
NO_ANNOTATION = "no_annotation"  # an image without any keypoint annotation
MISSING_FILE = "missing_file"  # the image file is not in the dataset's images/ folder


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds of the gates; an image fails a gate on the named side of its threshold."""

    gates: tuple[str, ...] = field(default=tuple(GATES), metadata={"choices": tuple(GATES)})  # which gates run
    # source fit's mean_error_norm (per box diagonal)
    max_fit_error: float = field(default=0.05, metadata={"min": 0.0})
    max_out_of_frame: float = field(default=0.2, metadata={"min": 0.0, "max": 1.0})  # > 3 of 17 keypoints outside
    min_body_size: float = field(default=0.15, metadata={"min": 0.0})
    max_body_size: float = field(default=0.95, metadata={"min": 0.0})
    min_visible: int = field(default=6, metadata={"min": 0, "max": 17})
    max_joint_limit_rad: float = field(default=0.35, metadata={"min": 0.0})  # 20 degrees beyond a limit
    max_hyperextension_rad: float = field(default=0.26, metadata={"min": 0.0})  # 15 degrees
    # Depends on the prior. Calibrated on *fits*, not on the prior's own samples: the bundled
    # prior (assets/pose_prior.npz) gives its samples NLL median -56 (p99 -39), but fitted poses
    # sit higher (fits of the bundled skeletons: median -20, p95 58, p98 71, p99 78) because
    # 2D leaves some rotations free. -30 rejected 65 % of good renders; 75 drops ~1-2 %
    # outliers. Check filter/hist_pose_prior.png after a change of prior.
    max_prior_nll: float = 75.0
    # 5% of a part's vertices deeper than penetration_depth_m inside another
    max_penetration: float = field(default=0.05, metadata={"min": 0.0, "max": 1.0})
    # below the other part's own surface (gates/penetration.py): contact (hand to mouth, crossed
    # legs) sits within 2 cm; fits of real photos: 4 % of train200's beyond 0.05 at 2 cm, 11 % at 1.5 cm
    penetration_depth_m: float = field(default=0.02, metadata={"min": 0.0})
    penetration_stride: int = field(default=3, metadata={"min": 1})  # every 3rd vertex: ~20 ms/body instead of ~57
    # render.contact: after settling (<= 30 degrees of tilt), 6 % of supine bodies of train200's fits
    # keep their back more than 3 cm above the mat and 15 % tip over by more than a few cm
    max_hover_m: float = field(default=0.03, metadata={"min": 0.0})
    min_balance_m: float = -0.03
    # RMS keypoint distance in units of the skeleton's RMS radius
    duplicate_max_2d: float = field(default=0.05, metadata={"min": 0.0})
    # largest joint-rotation difference (~9 degrees)
    duplicate_max_pose_rad: float = field(default=0.15, metadata={"min": 0.0})
    duplicate_score: float = 1.0  # fixed by the definition (pairs below 1 are duplicates)
    batch_size: int = field(default=32, metadata={"min": 1})  # bodies per mesh forward pass
    # pose gates >= this percentile of the run's fits (and their mirrors); None: off
    calibrate_percentile: float | None = field(default=99.0, metadata={"min": 0.0, "max": 100.0})

    def __post_init__(self):
        check_ranges(self, "filter config")

    @classmethod
    def from_dict(cls, d: dict | None) -> FilterConfig:
        """From a YAML mapping; unknown keys, wrong types and values out of range are a one-line UserError."""
        return from_mapping(cls, d, "filter config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> FilterConfig:
        from syrip_gen.yamlfile import read_yaml

        d = read_yaml(path, missing="no such gates config file")
        if d is not None and not isinstance(d, dict):
            raise UserError(f"{path}: expected a mapping of filter settings")
        return cls.from_dict(d)


@dataclass
class FilterReport:
    """What the filter did. ``rejected_by``: images per primary (first failing) reason;
    ``failed``: images failing each gate (an image may fail several); ``skipped``: per gate,
    images it could not be computed for, by reason."""

    dataset: str
    coco_in: str
    coco_out: str
    report: str
    n_images: int
    n_kept: int
    n_rejected: int
    rejected_by: dict[str, int]
    failed: dict[str, int]
    skipped: dict[str, dict[str, int]]
    decisions_applied: int = 0
    decisions_unknown_images: int = 0
    missing_files: int = 0  # images whose file is not in images/ (rejected, reason missing_file)
    histograms: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)  # gate -> {configured, fits_percentile, threshold, n_fits}
    keypoints: str | None = None  # the learned keypoints.npz the labels were checked against (None: not asked)
    images: list[dict] = field(default_factory=list)  # per-image verdicts
    n_infants: int = 0  # annotations judged (several per image in multi-infant renders)
    n_infants_kept: int = 0


def _fits_path(coco: KeypointFile, fits_path) -> Path | None:
    """``--fits``, else the fits file the render recorded in the COCO ``info`` (relative to the
    dataset root)."""
    if fits_path:
        return Path(fits_path)
    info = coco.info
    if info.get("fits"):
        p = Path(info["fits"])
        return p if p.is_absolute() else dataset_root(coco.path) / p
    return None


# ---- gate values -----------------------------------------------------------------------------
@dataclass
class _Samples:
    """One row per infant: every annotation of every image (an image without one: one row with
    ``ann`` None). Gates judge rows; an image is kept only if all its infants pass."""

    image_ids: list  # per row: the image it belongs to
    anns: list  # SyntheticAnnotation or None
    kps: np.ndarray  # (N, 17, 3)
    size: np.ndarray  # (N, 2) w, h
    bbox: np.ndarray  # (N, 4)
    poses: np.ndarray  # (N, 24, 3), NaN rows without a body pose
    shapes: list  # per image: list of floats or None
    models: list  # body model name or None
    Ks: list  # (3, 3) intrinsics of the image's camera or None


def _samples(coco: KeypointFile) -> _Samples:
    per_image: dict = {}
    for ann in read_annotations(coco.annotations, str(coco.path)):
        per_image.setdefault(ann.image_id, []).append(ann)
    rows = [(iid, ann) for iid in coco.images for ann in (per_image.get(iid) or [None])]
    ids = [iid for iid, _ in rows]
    n = len(rows)
    kps = np.zeros((n, 17, 3))
    size = np.zeros((n, 2))
    bbox = np.zeros((n, 4))
    poses = np.full((n, 24, 3), np.nan)
    shapes, models, anns, Ks = [], [], [], []
    for i, (iid, ann) in enumerate(rows):
        img = coco.images[iid]
        anns.append(ann)
        cam = img.get("camera") if isinstance(img.get("camera"), dict) else {}
        Ks.append(cam.get("K"))
        size[i] = img.get("width") or 0, img.get("height") or 0
        shapes.append(ann.shape if ann else None)
        models.append(ann.body_model if ann else None)
        if ann is None:
            continue
        kps[i] = ann.keypoints
        bbox[i] = ann.bbox or [0, 0, 0, 0]
        if ann.pose is not None:
            poses[i] = ann.pose
    return _Samples(ids, anns, kps, size, bbox, poses, shapes, models, Ks)


def _framing_values(s: _Samples, values: dict, skipped: dict) -> None:
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


def _contact_values(s: _Samples, values: dict, skipped: dict) -> None:
    """The renders' own contact record (render.contact): hover height and balance margin.
    Sitting infants' seat height is not gated (photos show them on laps and chairs)."""
    n = len(s.anns)
    hover, balance = np.full(n, np.nan), np.full(n, np.nan)
    for i, ann in enumerate(s.anns):
        c = ann.contact if ann else None
        if c is None:
            for gate in ("hovering", "unbalanced"):
                _count(skipped[gate], "no contact record (a render without render.contact)")
            continue
        balance[i] = float(c.get("margin_m", np.nan))
        if c.get("part") in ("sitting", "prone"):  # prone: no one part must touch (crawling)
            _count(skipped["hovering"], f"{c['part']} (not gated)")
        else:
            hover[i] = float(c.get("gap_m", np.nan))
    values["hovering"], values["unbalanced"] = hover, balance


def _fit_values(coco: KeypointFile, s: _Samples, fits_path, values: dict, skipped: dict,
                fit_status: dict) -> None:
    v = np.full(len(s.image_ids), np.nan)
    path = _fits_path(coco, fits_path)
    if path is None:
        skipped["fit_error"]["no fits file (pass --fits FITS/fits.jsonl)"] = len(v)
        values["fit_error"] = v
        return
    fits = fit_errors(path)
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


def _pose_values(s: _Samples, cfg: FilterConfig, values: dict, skipped: dict) -> None:
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


def _penetration_values(s: _Samples, cfg: FilterConfig, body, values: dict, skipped: dict,
                        details: dict) -> None:
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

    from syrip_gen.gates.penetration import coarse_parts, penetration_share

    if body is None:
        from syrip_gen.body import load_body

        body = load_body("anny")
    topo = body.topology()
    parts = coarse_parts(topo.part_of_vertex, topo.part_names)
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


CALIBRATED = ("pose_prior", "joint_limits", "hyperextension", "penetration")


def _fit_records(path: Path | None) -> list[FitRecord] | None:
    """The fits file's records, or None without one (the fit_error gate reports that)."""
    try:
        return read_records(fits_file(path), bad={}) if path is not None else None
    except UserError:
        return None


def _fit_samples(records: list[FitRecord | dict]) -> _Samples | None:
    """The ok fit records with a pose and their mirror images as samples of the pose gates
    (None if there are none)."""
    import torch

    from syrip_gen.body.pose_space import flip_pose

    records = [r if isinstance(r, FitRecord) else FitRecord.from_json(r) for r in records]
    ok = [r for r in records if r.ok and r.pose is not None]
    try:
        poses = np.asarray([r.pose for r in ok], dtype=np.float64).reshape(-1, 24, 3)
    except ValueError:
        return None
    if not len(poses):
        return None
    poses = np.concatenate([poses, flip_pose(torch.as_tensor(poses)).numpy()])
    shapes = [r.shape for r in ok] * 2
    models = [r.body for r in ok] * 2
    n = len(poses)
    return _Samples([None] * n, [None] * n, np.zeros((n, 17, 3)), np.zeros((n, 2)), np.zeros((n, 4)), poses,
                    shapes, models, [None] * n)


def calibrate(cfg: FilterConfig, records: list[FitRecord | dict] | None, body=None) -> tuple[FilterConfig, dict]:
    """``cfg`` with each pose gate's threshold raised to at least the ``calibrate_percentile``
    percentile of its value over the run's ok fit ``records`` (and their mirrors), and a record
    of what was done per gate."""
    gates = [g for g in CALIBRATED if g in cfg.gates]
    s = _fit_samples(records or []) if cfg.calibrate_percentile is not None and gates else None
    if s is None:
        return cfg, {}
    values: dict[str, np.ndarray] = {}
    skipped: dict[str, dict[str, int]] = {g: {} for g in GATES}
    _pose_values(s, cfg, values, skipped)
    if "penetration" in gates:
        _penetration_values(s, cfg, body, values, skipped, {})
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


# ---- verdicts --------------------------------------------------------------------------------
def _fails(gate: str, value: float, cfg: FilterConfig) -> bool:
    side, attr, _ = GATES[gate]
    if not math.isfinite(value):
        return False
    thr = getattr(cfg, attr)
    return value > thr if side == "above" else value < thr


def is_clip_set(coco: KeypointFile) -> bool:
    """Whether a dataset holds clips (a ``sequence`` output: images carry ``clip_id``)."""
    return any(img.get("clip_id") is not None for img in coco.images.values())


def default_outputs(coco_path: Path, clips: bool) -> tuple[Path, Path]:
    """Where ``filter`` writes by default: (filtered COCO file, report folder). A clip set's
    usual names hold the whole clips ``sequence``'s clip gates kept and their report (issue
    34, C31: they were overwritten), so filter's own go beside them."""
    root = dataset_root(coco_path)
    if not clips:
        return filtered_name(coco_path), root / "filter"
    name = filtered_name(coco_path).name.replace("_filtered_infant.json", "_filtered_gates_infant.json")
    return coco_path.with_name(name), root / "filter_gates"


def filter_dataset(dataset_dir: str | Path, cfg: FilterConfig | None = None, fits_path=None,
                   use_decisions: bool = False, out: str | Path | None = None,
                   out_dir: str | Path | None = None, body=None,
                   keypoints: str | Path | None = None, whole_clips: bool = False) -> FilterReport:
    """Run the gates over a dataset, write the filtered COCO file, the report and histograms.

    ``out``: the filtered COCO path (default beside the input, ``*_filtered_infant.json``);
    ``out_dir``: where the report and histograms go (default ``DATASET/filter``; the pipeline
    runner passes its step directory and gets ``filtered.json`` there pointing at the COCO
    file); ``body``: an already loaded Anny body (loaded on demand otherwise); ``keypoints``: the
    learned keypoints.npz the dataset must have been labelled with (a one-line UserError if not:
    the gates judge the labels the render wrote, so they must be the ones meant); ``whole_clips``:
    on a clip set, keep or drop clips whole, without the duplicate gate (see the module docstring).
    """
    from syrip_gen.review.decisions import decisions_path, load_decisions

    cfg = cfg or FilterConfig()
    coco_path = dataset_json(dataset_dir)
    coco = load_coco(coco_path)
    if keypoints is not None:
        from syrip_gen.body.keypoints import check_labelled_with

        check_labelled_with(coco.info.get("config") or {}, keypoints, coco_path)
    root = dataset_root(coco_path)
    clips = whole_clips and is_clip_set(coco)
    default_out, default_dir = default_outputs(coco_path, clips)
    out_dir = Path(out_dir) if out_dir else default_dir
    out = Path(out) if out else default_out
    if clips and "duplicate" in cfg.gates:  # consecutive frames are near-duplicates by design
        cfg = dataclasses.replace(cfg, gates=tuple(g for g in cfg.gates if g != "duplicate"))
    s = _samples(coco)
    n = len(s.image_ids)  # rows: one per infant
    image_ids = list(coco.images)
    if not image_ids:
        raise UserError(f"{coco_path}: the dataset lists no images; nothing to filter")
    image_dir = coco.image_dir()
    missing = [not (isinstance(name := coco.images[iid].get("file_name"), str) and name
                    and (image_dir / name).is_file()) for iid in s.image_ids]
    if any(missing):
        log.warning("%d of %d image files are missing from %s; they are rejected (reason %s)",
                    len({iid for iid, m in zip(s.image_ids, missing) if m}), len(image_ids), image_dir, MISSING_FILE)

    values: dict[str, np.ndarray] = {}
    skipped: dict[str, dict[str, int]] = {g: {} for g in GATES}
    details: dict[int, dict] = {}
    fit_status: dict[int, str] = {}
    _framing_values(s, values, skipped)
    cfg, calibration = calibrate(cfg, _fit_records(_fits_path(coco, fits_path)), body)
    if "fit_error" in cfg.gates:
        _fit_values(coco, s, fits_path, values, skipped, fit_status)
    if {"joint_limits", "hyperextension", "pose_prior"} & set(cfg.gates):
        _pose_values(s, cfg, values, skipped)
    if "penetration" in cfg.gates:
        _penetration_values(s, cfg, body, values, skipped, details)
    if {"hovering", "unbalanced"} & set(cfg.gates):
        _contact_values(s, values, skipped)

    # per-image reasons in gate order (duplicates last: they depend on what else is kept)
    reasons: list[list[dict]] = [[] for _ in range(n)]
    for i, ann in enumerate(s.anns):
        if missing[i]:
            reasons[i].append({"gate": MISSING_FILE, "value": coco.images[s.image_ids[i]].get("file_name"),
                               "threshold": None})
        if ann is None:
            reasons[i].append({"gate": NO_ANNOTATION, "value": None, "threshold": None})
    for i, status in fit_status.items():
        reasons[i].append({"gate": FIT_STATUS, "value": status, "threshold": "ok"})
    for gate in GATES:
        if gate == "duplicate" or gate not in cfg.gates or gate not in values:
            continue
        for i in np.flatnonzero([_fails(gate, x, cfg) for x in values[gate]]):
            r = {"gate": gate, "value": float(values[gate][i]), "threshold": getattr(cfg, GATES[gate][1])}
            if gate in details.get(int(i), {}):
                r["detail"] = details[int(i)][gate]
            reasons[i].append(r)
    if "duplicate" in cfg.gates:
        _duplicates(s, cfg, reasons, values, details)

    decisions, unknown = {}, 0
    if use_decisions:
        known = {str(i) for i in image_ids}
        all_dec = load_decisions(decisions_path(root))
        decisions = {k: v for k, v in all_dec.items() if k in known}
        unknown = len(all_dec) - len(decisions)
        if unknown:
            log.warning("%d review decision(s) name images not in %s; ignored", unknown, coco_path)

    # rows -> images: an image's reasons are all its infants' (each marked with its track id
    # when the image holds several), its values the first infant's (all of them under "infants")
    rows_of: dict = {}
    for i, iid in enumerate(s.image_ids):
        rows_of.setdefault(iid, []).append(i)

    def row_values(i: int) -> dict:
        return {g: (float(values[g][i]) if math.isfinite(values[g][i]) else None) for g in values}

    verdicts, kept = [], set()
    rejected_by: Counter = Counter()
    failed: Counter = Counter()
    for iid in image_ids:
        rows = rows_of[iid]
        img_reasons = []
        for i in rows:
            for r in reasons[i]:
                img_reasons.append({**r, "track_id": _track(s.anns[i], 0)} if len(rows) > 1 else r)
        failed.update({r["gate"] for r in img_reasons})
        is_missing = missing[rows[0]]
        auto = "reject" if img_reasons else "accept"
        review = decisions.get(str(iid), {}).get("decision")
        final = "reject" if is_missing else (review or auto)  # no review keeps a missing file
        rec = {"image_id": iid, "file_name": coco.images[iid].get("file_name"), "auto": auto,
               "review": review, "verdict": final, "reasons": img_reasons, "values": row_values(rows[0])}
        if len(rows) > 1:
            rec["infants"] = [{"track_id": _track(s.anns[i], k), "values": row_values(i)}
                              for k, i in enumerate(rows)]
        if review == "accept" and img_reasons and not is_missing:
            for r in img_reasons:
                r["overridden"] = True
        if review == "reject":
            rec["reasons"] = [{"gate": REVIEWER, "value": "reject", "threshold": None}] + img_reasons
        if final == "accept":
            kept.add(iid)
        else:
            primary = rec["reasons"][0]["gate"]
            rejected_by[primary] += 1
        verdicts.append(rec)
    if clips:
        _whole_clips(verdicts, {iid: img.get("clip_id") for iid, img in coco.images.items()}, kept, rejected_by)
    failed = dict(failed)
    missing_images = {iid for iid, m in zip(s.image_ids, missing) if m}

    images = [img for iid, img in coco.images.items() if iid in kept]
    anns = [a for a in coco.annotations if a["image_id"] in kept]
    extra = {k: v for k, v in coco.data.items() if k not in ("images", "annotations", "categories")}
    if clips and isinstance(extra.get("videos"), list):
        kept_clips = {img.get("clip_id") for img in images}
        extra["videos"] = [v for v in extra["videos"] if not isinstance(v, dict) or v.get("id") in kept_clips]
    if dataset_root(out.resolve()) != root.resolve():  # written away from its images (pipeline step, --out)
        images, extra = _absolute_paths(images, extra, image_dir, _fits_path(coco, None))
    write_coco(out, images, anns, **extra)

    hists = _histograms(values, cfg, out_dir)
    report = FilterReport(
        dataset=str(root), coco_in=str(coco_path), coco_out=str(out), report=str(out_dir / "report.json"),
        n_images=len(image_ids), n_kept=len(kept), n_rejected=len(image_ids) - len(kept),
        rejected_by=dict(rejected_by), failed=failed,
        skipped={g: v for g, v in skipped.items() if v and g in cfg.gates},
        decisions_applied=len(decisions), decisions_unknown_images=unknown,
        missing_files=len(missing_images),
        histograms=hists, config=dataclasses.asdict(cfg), calibration=calibration,
        keypoints=None if keypoints is None else str(keypoints), images=verdicts,
        n_infants=sum(a is not None for a in s.anns), n_infants_kept=sum(1 for a in anns))
    atomic_write_json(out_dir / "report.json", dataclasses.asdict(report))
    atomic_write_json(out_dir / "filtered.json", {"coco": str(out), "n_kept": len(kept), "n_images": len(image_ids)})
    log.info("filter: kept %d of %d images, %d of %d infants (%s)", len(kept), len(image_ids),
             report.n_infants_kept, report.n_infants, dict(rejected_by))
    return report


def _track(ann, default: int):
    """An infant's track id in its image (``default`` when the annotation has none)."""
    return default if ann is None or ann.track_id is None else ann.track_id


def _whole_clips(verdicts: list[dict], clip_of: dict, kept: set, rejected_by: Counter) -> None:
    """Drop every frame of a clip that has a rejected frame (reason ``clip``), in place."""
    bad: dict = {}
    for rec in verdicts:
        c = clip_of.get(rec["image_id"])
        if c is not None and rec["verdict"] != "accept":
            bad.setdefault(c, Counter()).update({rec["reasons"][0]["gate"]} if rec["reasons"] else set())
    for rec in verdicts:
        c = clip_of.get(rec["image_id"])
        if c in bad and rec["verdict"] == "accept":
            why = ", ".join(f"{g} {k}" for g, k in sorted(bad[c].items()))
            rec["verdict"] = "reject"
            rec["reasons"] = [{"gate": CLIP, "value": c, "threshold": None,
                               "detail": f"clip {c} is dropped whole: frames rejected by {why}"}] + rec["reasons"]
            kept.discard(rec["image_id"])
            rejected_by[CLIP] += 1


def _absolute_paths(images: list[dict], extra: dict, image_dir: Path, fits: Path | None) -> tuple[list[dict], dict]:
    """A filtered file written outside its dataset names its images (and the fits file in
    ``info``) by absolute path, so it still finds them."""
    images = [{**im, "file_name": str(image_dir.resolve() / im["file_name"])}
              if isinstance(im.get("file_name"), str) and im["file_name"] else im for im in images]
    if fits is not None and isinstance(extra.get("info"), dict):
        extra = {**extra, "info": {**extra["info"], "fits": str(fits.resolve())}}
    return images, extra


def _duplicates(s: _Samples, cfg: FilterConfig, reasons: list, values: dict, details: dict) -> None:
    """Reject a sample that duplicates an earlier one still kept (so of a pair, the first stays)."""
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
    for j in sorted(partners):
        if reasons[j]:
            continue  # already rejected for another reason
        match = [(sc, i) for i, sc in partners[j] if not reasons[i]]
        if match:
            sc, i = min(match)
            reasons[j].append({"gate": "duplicate", "value": sc, "threshold": cfg.duplicate_score,
                               "detail": f"duplicate of image {s.image_ids[i]}"})


def _histograms(values: dict[str, np.ndarray], cfg: FilterConfig, out_dir: Path) -> list[str]:
    """One PNG per gate: the values' histogram with the threshold as a red line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for gate, (side, attr, what) in GATES.items():
        if gate not in cfg.gates or gate not in values:
            continue
        v = values[gate][np.isfinite(values[gate])]
        if not len(v):
            continue
        thr = getattr(cfg, attr)
        fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=110)
        hi = max(float(v.max()), thr) * 1.05 if gate == "duplicate" else None
        bins = np.linspace(min(float(v.min()), thr), hi if hi else max(float(v.max()), thr * 1.05), 31)
        if gate == "duplicate":
            v = np.minimum(v, bins[-1])
        ax.hist(v, bins=bins, color="#4c72b0", edgecolor="white")
        ax.axvline(thr, color="#c44e52", lw=2, label=f"threshold {thr:g} (fail {side})")
        n_fail = int(np.sum(v > thr) if side == "above" else np.sum(v < thr))
        ax.set_title(f"{gate}: {n_fail} of {len(v)} fail", fontsize=10)
        ax.set_xlabel(what, fontsize=8)
        ax.set_ylabel("images")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"hist_{gate}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(str(path))
    return paths
