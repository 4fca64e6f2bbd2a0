"""Fit -> learn -> refit: a keypoint regressor learned from fits of the user's own skeletons.

Why: the fitted poses depend on where the body's keypoints are, and where the keypoints should
be is learned from the fitted poses; so we alternate a few small rounds. Skeletons are split
once (by id) into a training and a held-out part: the regressor is learned on the training
fits, its regularisation chosen on the held-out ones (``body/keypoints.py``), and every round
refits *all* skeletons with the new regressor through the fitter's API. The round whose refits
have the lowest held-out median error is kept; it is refused when that is not lower than the
input fits' (the default regressor's) held-out error.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from syrip_gen.body.keypoints import NUM_KEYPOINTS, LearnConfig, LearnedKeypoints, Samples, learn
from syrip_gen.config import from_mapping
from syrip_gen.errors import UserError
from syrip_gen.fit.camera import to_camera
from syrip_gen.fits import FitRecord


MIN_SPLIT = 5  # least skeletons on each side of the learn / held-out split


@dataclass(frozen=True)
class RoundsConfig:
    """How many rounds, how the skeletons are split, and the least number of ok fits."""

    rounds: int = field(default=5, metadata={"min": 1})
    heldout_share: float = field(default=0.25, metadata={"min": 0.05, "max": 0.5})
    min_fits: int = field(default=30, metadata={"min": 2})
    learn: LearnConfig = field(default_factory=LearnConfig)
    chunk: int = field(default=32, metadata={"min": 1})  # bodies per full-mesh forward
    threads: int = field(default=1, metadata={"min": 1})  # torch CPU threads

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "learn_keypoints config", name=None) -> "RoundsConfig":
        """From a pipeline step's ``config:`` (flat: ``radius`` etc. go to ``learn``), checked by
        the one config loader (unknown keys, types, ranges: one-line UserError; ``name`` as there)."""
        d = dict(d or {})
        if not isinstance(d.get("learn", {}), dict):
            raise UserError("learn_keypoints config: learn must be a mapping")
        learn_keys = {f.name for f in fields(LearnConfig)}
        learn_cfg = {**d.pop("learn", {}), **{k: d.pop(k) for k in list(d) if k in learn_keys}}
        return from_mapping(cls, {**d, "learn": learn_cfg}, where, name)


@dataclass
class RoundsResult:
    learned: LearnedKeypoints
    before: dict  # held-out {"median": fit error, "per_joint": [17]} with the input fits
    after: dict  # the same with the kept round's refits
    rounds: list[dict]  # per round: held-out median and the per-pair choices
    refits: list[dict]  # the kept round's fits records (all skeletons)


def heldout_mask(ids: list[str], share: float) -> np.ndarray:
    """``(N,)`` bool: a fixed, id-seeded share of the skeletons held out (stable across runs)."""
    return np.array([zlib.crc32(str(i).encode()) % 10_000 < share * 10_000 for i in ids])


def error_summary(records: list[FitRecord]) -> dict:
    """Median mean-error and per-keypoint median errors (box-diagonal fractions; None if unseen)."""
    errs = np.array([[np.nan if e is None else e for e in r.reproj_error_norm] for r in records], float)
    per_joint = [None if np.isnan(c).all() else float(np.nanmedian(c)) for c in errs.T]
    return {"n": len(records), "median": float(np.median([r.mean_error_norm for r in records])),
            "per_joint": per_joint}


def skeleton_of(record: FitRecord):
    """The fitter's input for a fits record, with the focal length the fit used."""
    from syrip_gen.fit.io import Skeleton

    return Skeleton(id=record.id, source=record.source if record.source is not None else "",
                    image_id=record.image_id, keypoints=np.asarray(record.keypoints_2d, np.float64),
                    file_name=record.file_name, width=record.width, height=record.height, posture=record.posture,
                    focal=record.camera["fx"])


def samples(records: list[FitRecord], body, chunk: int = 32) -> Samples:
    """What the learner needs from fits records, posed with ``body`` (its default keypoints)."""
    from syrip_gen.fit.losses import box_diagonal, keypoint_weights

    defaults, verts = [], []
    for lo in range(0, len(records), chunk):
        part = records[lo: lo + chunk]
        pose = torch.tensor([r.pose for r in part], dtype=torch.float32)
        shape = torch.tensor([r.shape for r in part], dtype=torch.float32)
        t = torch.tensor([r.camera["t"] for r in part], dtype=torch.float32)
        with torch.no_grad():
            out = body(pose.to(body.device), shape.to(body.device), with_vertices=True)
        defaults.append(to_camera(out.keypoints.cpu(), t).double().numpy())
        verts.append(to_camera(out.vertices.cpu(), t).numpy())
    kp = torch.tensor([r.keypoints_2d for r in records], dtype=torch.float32)
    weight = keypoint_weights(kp[..., 2])
    return Samples(defaults=np.concatenate(defaults), vertices=np.concatenate(verts),
                   focal=np.array([r.camera["fx"] for r in records], np.float64),
                   centre=np.array([[r.camera["cx"], r.camera["cy"]] for r in records], np.float64),
                   target=kp[..., :2].double().numpy(), weight=weight.double().numpy(),
                   diag=box_diagonal(kp[..., :2], weight).double().numpy())


def rest_geometry(body) -> tuple[np.ndarray, np.ndarray]:
    """Rest (zero pose, mean shape) vertices ``(V, 3)`` and default keypoints ``(17, 3)``."""
    with torch.no_grad():
        out = body(torch.zeros(1, 24, 3, device=body.device), body.shape_mean[None], with_vertices=True)
    return out.vertices[0].double().cpu().numpy(), out.keypoints[0].double().cpu().numpy()


def learn_rounds(records: list[FitRecord | dict], body, fit_cfg, cfg: RoundsConfig = RoundsConfig(),
                 source: dict | None = None, body_hash: str = "", progress: bool = True) -> RoundsResult:
    """Learn a regressor from fits ``records`` of ``body`` (its default regressor) by ``cfg.rounds``
    fit -> learn -> refit rounds with ``fit_cfg``. One-line UserError for too few ok fits or fits
    of another body; the result says whether the held-out error went down (the caller decides)."""
    from tqdm import tqdm

    from syrip_gen.body import with_keypoints
    from syrip_gen.fit.fitter import fit_skeletons
    from syrip_gen.fit.kinematics import keypoint_model
    from syrip_gen.fit.prior import PosePrior, default_prior

    records = [r if isinstance(r, FitRecord) else FitRecord.from_json(r) for r in records]
    ok = [r for r in records if r.ok and r.pose]
    bodies = sorted({str(r.body) for r in ok})
    if bodies and bodies != [body.name]:
        raise UserError(f"the fits are of body {', '.join(bodies)}, not {body.name!r}; "
                        f"learn with the body the fits were made with (--body)")
    held = heldout_mask([r.id for r in ok], cfg.heldout_share)
    if len(ok) < cfg.min_fits:
        raise UserError(f"only {len(ok)} ok fits; learning keypoints needs at least {cfg.min_fits} (--min-fits; "
                        "fit more annotated skeletons first)")
    if held.sum() < MIN_SPLIT or (~held).sum() < MIN_SPLIT:
        raise UserError(f"{len(ok)} ok fits split into {int((~held).sum())} to learn on and {int(held.sum())} held "
                        f"out; each part needs at least {MIN_SPLIT} (fit more annotated skeletons, or change "
                        f"--heldout from {cfg.heldout_share:g})")
    rest_v, rest_kp = rest_geometry(body)
    prior = PosePrior.load(fit_cfg.pose_prior) if fit_cfg.pose_prior else default_prior()
    skeletons = [skeleton_of(r) for r in ok]
    before = error_summary([r for r, h in zip(ok, held) if h])
    current, best, rounds = ok, None, []
    for i in tqdm(range(cfg.rounds), desc="learn-keypoints rounds", disable=not progress):
        usable = np.array([r.mean_error_norm <= fit_cfg.max_mean_error for r in current])
        s = samples(current, body, cfg.chunk)
        alpha, weights, chosen = learn(s.take(np.flatnonzero(usable & ~held)), s.take(np.flatnonzero(usable & held)),
                                       rest_v, rest_kp, cfg.learn)
        learned = LearnedKeypoints(body=body.name, body_hash=body_hash, num_vertices=rest_v.shape[0],
                                   alpha=alpha, weights=weights)
        lbody = with_keypoints(body, learned)
        current = fit_skeletons(skeletons, lbody, keypoint_model(lbody), prior, fit_cfg, progress=progress)
        after = error_summary([r for r, h in zip(current, held) if h])
        rounds.append({"round": i + 1, "heldout_median": after["median"], "pairs": chosen})
        if best is None or after["median"] < best[1]["median"]:
            best = (learned, after, current)
    learned, after, refits = best
    learned.heldout_before = np.array([np.nan if e is None else e for e in before["per_joint"]])
    learned.heldout_after = np.array([np.nan if e is None else e for e in after["per_joint"]])
    learned.source = {**(source or {}), "n_fits": len(ok), "n_train": int((~held).sum()),
                      "n_heldout": int(held.sum()), "rounds": rounds,
                      "heldout_median_before": before["median"], "heldout_median_after": after["median"],
                      "radius_m": cfg.learn.radius, "heldout_share": cfg.heldout_share}
    assert learned.alpha.shape == (NUM_KEYPOINTS,)
    return RoundsResult(learned=learned, before=before, after=after, rounds=rounds, refits=refits)


def fits_config(fits_dir, threads: int = 1):
    """The fit configuration the fits were made with (their summary.json), without overlays."""
    import dataclasses
    import json
    from pathlib import Path

    from syrip_gen.config import RunConfig, run_moved
    from syrip_gen.fit.fitter import RUN_FIELDS, FitConfig

    summary = Path(fits_dir) / "summary.json"
    recorded = json.loads(summary.read_text()).get("config", {}) if summary.is_file() else {}
    skip = {"limit", "images", "overlays", "run", *run_moved(*RUN_FIELDS)}  # how those fits ran: not this run's
    known = ({f.name for f in dataclasses.fields(FitConfig)} | set(FitConfig.MOVED)) - skip  # MOVED: older summaries
    cfg = FitConfig.from_dict({k: v for k, v in recorded.items() if k in known})
    return dataclasses.replace(cfg, overlays=False, run=RunConfig(threads=threads), limit=None,
                               body=dataclasses.replace(cfg.body, keypoints=None))


def learn_file(fits, out, cfg: RoundsConfig = RoundsConfig(), progress: bool = True,
               force: bool = False) -> RoundsResult:
    """``learn-keypoints``: learn from ``fits`` (folder or .jsonl), write ``out`` (keypoints.npz)
    only when the held-out error goes down; otherwise a one-line UserError with the numbers.
    ``out`` is checked first: a folder, a read-only place, or (without ``force``) an existing
    file is refused before any work."""
    from pathlib import Path

    from syrip_gen.body.keypoints import body_file_hash, file_hash
    from syrip_gen.fits import read_records
    from syrip_gen.runfolder import check_writable

    check_writable(out, folder=False)
    if Path(out).exists() and not force:
        raise UserError(f"--out {out} exists; pass --force to replace it (or choose another file)")
    path = Path(fits)
    path = path / "fits.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"{path}: no fits file; run `syrip-gen fit` on your annotated skeletons first")
    records = read_records(path)
    fit_cfg = fits_config(path.parent, cfg.threads)
    torch.set_num_threads(cfg.threads)
    body = fit_cfg.body.load()
    source = {"fits": str(path.resolve()), "fits_sha256": file_hash(path), "fit_config": fit_cfg.record()}
    res = learn_rounds(records, body, fit_cfg, cfg, source=source,
                       body_hash=body_file_hash(fit_cfg.body.name, fit_cfg.body.path), progress=progress)
    b, a = res.before, res.after
    if not a["median"] < b["median"]:
        raise UserError(f"the learned keypoints do not lower the held-out error (median {100 * b['median']:.2f}% "
                        f"-> {100 * a['median']:.2f}% of the box diagonal over {b['n']} held-out skeletons); "
                        f"{out} not written")
    res.learned.save(out)
    return res
