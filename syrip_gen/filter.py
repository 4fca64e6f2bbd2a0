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

The numbers come from ``gates/`` (``samples``: the records as arrays, ``values``: one number
per gate and infant, ``calibrate``, ``histograms``); this module holds the thresholds, the
verdicts and the outputs.

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

from syrip_gen.atomic import atomic_write_json
from syrip_gen.coco import KeypointFile, dataset_json, dataset_root, filtered_name, load_coco, write_coco
from syrip_gen.config import check_ranges, from_mapping
from syrip_gen.errors import UserError
from syrip_gen.gates import values as gate_values
from syrip_gen.gates.calibrate import calibrate, fit_records
from syrip_gen.gates.histograms import histograms
from syrip_gen.gates.samples import Samples, dataset_samples
from syrip_gen.gates.table import GATES

log = logging.getLogger(__name__)

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


# ---- verdicts --------------------------------------------------------------------------------
def _fails(gate: str, value: float, cfg: FilterConfig) -> bool:
    side, attr, _ = GATES[gate]
    if not math.isfinite(value):
        return False
    thr = getattr(cfg, attr)
    return value > thr if side == "above" else value < thr


def without_duplicate_gate(cfg: FilterConfig) -> FilterConfig:
    """``cfg`` without the duplicate gate: for clips, whose consecutive frames are near-duplicates by design."""
    return dataclasses.replace(cfg, gates=tuple(g for g in cfg.gates if g != "duplicate"))


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
    if clips:
        cfg = without_duplicate_gate(cfg)
    s = dataset_samples(coco)  # rows: one per infant
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
    gate_values.framing_values(s, values, skipped)
    fits = _fits_path(coco, fits_path)
    records = fit_records(fits)  # read once: calibration and the fit_error gate
    cfg, calibration = calibrate(cfg, records, body)
    if "fit_error" in cfg.gates:
        gate_values.fit_values(s, fits, records, values, skipped, fit_status)
    if {"joint_limits", "hyperextension", "pose_prior"} & set(cfg.gates):
        gate_values.pose_values(s, cfg, values, skipped)
    if "penetration" in cfg.gates:
        gate_values.penetration_values(s, cfg, body, values, skipped, details)
    if {"hovering", "unbalanced"} & set(cfg.gates):
        gate_values.contact_values(s, values, skipped)

    reasons = _row_reasons(coco, s, cfg, values, missing, fit_status, details)

    decisions, unknown = {}, 0
    if use_decisions:
        known = {str(i) for i in image_ids}
        all_dec = load_decisions(decisions_path(root))
        decisions = {k: v for k, v in all_dec.items() if k in known}
        unknown = len(all_dec) - len(decisions)
        if unknown:
            log.warning("%d review decision(s) name images not in %s; ignored", unknown, coco_path)

    verdicts, kept, rejected_by, failed = _image_verdicts(coco, s, reasons, values, missing, decisions)
    if clips:
        _whole_clips(verdicts, {iid: img.get("clip_id") for iid, img in coco.images.items()}, kept, rejected_by)
    failed = dict(failed)
    missing_images = {iid for iid, m in zip(s.image_ids, missing) if m}

    anns = _write_kept(coco, kept, out, root, clips, _fits_path(coco, None))

    hists = histograms(values, cfg, out_dir)
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


def _row_reasons(coco: KeypointFile, s: Samples, cfg: FilterConfig, values: dict, missing: list,
                 fit_status: dict, details: dict) -> list[list[dict]]:
    """Each row's failing reasons in gate order (duplicates last: they depend on what else is kept)."""
    reasons: list[list[dict]] = [[] for _ in range(len(s.image_ids))]
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
        _duplicates(s, cfg, reasons, gate_values.duplicate_values(s, cfg, values))
    return reasons


def _image_verdicts(coco: KeypointFile, s: Samples, reasons: list, values: dict, missing: list,
                    decisions: dict) -> tuple[list[dict], set, Counter, Counter]:
    """Rows -> images: an image's reasons are all its infants' (each marked with its track id
    when the image holds several), its values the first infant's (all of them under "infants");
    the reviewer's ``decisions`` applied. Returns the verdicts, the kept image ids, and the
    images rejected per primary reason and failing per gate."""
    rows_of: dict = {}
    for i, iid in enumerate(s.image_ids):
        rows_of.setdefault(iid, []).append(i)

    def row_values(i: int) -> dict:
        return {g: (float(values[g][i]) if math.isfinite(values[g][i]) else None) for g in values}

    verdicts, kept = [], set()
    rejected_by: Counter = Counter()
    failed: Counter = Counter()
    for iid in coco.images:
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
    return verdicts, kept, rejected_by, failed


def _write_kept(coco: KeypointFile, kept: set, out: Path, root: Path, clips: bool, fits: Path | None) -> list[dict]:
    """Write the kept images and their annotations to ``out`` (and, for clips, the kept clips'
    ``videos``; away from the dataset ``root``, paths made absolute); returns the kept annotations."""
    image_dir = coco.image_dir()
    images = [img for iid, img in coco.images.items() if iid in kept]
    anns = [a for a in coco.annotations if a["image_id"] in kept]
    extra = {k: v for k, v in coco.data.items() if k not in ("images", "annotations", "categories")}
    if clips and isinstance(extra.get("videos"), list):
        kept_clips = {img.get("clip_id") for img in images}
        extra["videos"] = [v for v in extra["videos"] if not isinstance(v, dict) or v.get("id") in kept_clips]
    if dataset_root(out.resolve()) != root.resolve():  # written away from its images (pipeline step, --out)
        images, extra = _absolute_paths(images, extra, image_dir, fits)
    write_coco(out, images, anns, **extra)
    return anns


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


def _duplicates(s: Samples, cfg: FilterConfig, reasons: list, partners: dict) -> None:
    """Reject a sample that duplicates an earlier one still kept (so of a pair, the first stays);
    ``partners``: row -> [(earlier row, score)] (``gates.values.duplicate_values``)."""
    for j in sorted(partners):
        if reasons[j]:
            continue  # already rejected for another reason
        match = [(sc, i) for i, sc in partners[j] if not reasons[i]]
        if match:
            sc, i = min(match)
            reasons[j].append({"gate": "duplicate", "value": sc, "threshold": cfg.duplicate_score,
                               "detail": f"duplicate of image {s.image_ids[i]}"})
