"""The batched fitter: infant body + camera to 2D skeletons, every orientation hypothesis at once.

Why: this is the stage that turns a few hundred real skeletons into 3D bodies to render. It
runs all skeletons x hypotheses of a batch as one tensor problem (CPU or GPU), anneals the
objective over stages like SMPLify-X, prunes to the best hypotheses half-way, and writes each
batch to ``FITS/fits.jsonl`` as soon as it is done (a rerun skips ids already there).

Objective per body (see ``FitConfig`` for weights): robust Geman-McClure reprojection on errors
normalised by the keypoint box diagonal; Gaussian-mixture pose prior; shape prior (z-scores
of ``body.shape_mean/std``); no-hyperextension; joint limits; capsule self-penetration. The
shape is frozen in the first stages (the folded kinematics in ``fit/kinematics.py`` make every
step cost one 24-joint chain) and clamped to the body's 0-12-month bounds after every step.
Final numbers (3D keypoints, errors) come from the exact body forward.
"""
from __future__ import annotations

import re
import time
from collections import Counter
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from syrip_gen.body import BODY_MOVED, BodyConfig
from syrip_gen.config import RUN_ONLY, RunConfig, check_ranges, from_mapping, keyed, run_moved
from syrip_gen.errors import UserError
from syrip_gen.fit import hypotheses as hyp
from syrip_gen.fit.camera import camera_record, focal_from_fov, initial_translation, project, to_camera
from syrip_gen.fit.limits import hyperextension, joint_limit_violation
from syrip_gen.fit.losses import box_diagonal, keypoint_weights, reprojection_errors, robust_reprojection
from syrip_gen.fit.penetration import capsule_penetration
from syrip_gen.fit.prior import DIM, PosePrior
from syrip_gen.fits import FitRecord, fitted_record, rejected_record
from syrip_gen.fit import support as sup


@dataclass(frozen=True)
class Stage:
    steps: int = field(metadata={"min": 0})
    sigma: float = field(metadata={"min": 1e-6})  # Geman-McClure scale, fraction of the box diagonal
    prior: float = field(metadata={"min": 0.0})  # pose-prior weight (on nll / 69)
    optimise_pose: bool = True
    optimise_shape: bool = False
    lr: float = field(default=0.03, metadata={"min": 0.0})


DEFAULT_STAGES = (
    Stage(30, 0.20, 0.05, optimise_pose=False, lr=0.05),
    Stage(40, 0.10, 0.02),
    Stage(60, 0.05, 0.008, optimise_shape=True),
    Stage(50, 0.03, 0.004, optimise_shape=True, lr=0.015),
)


def _with_support(cfg) -> bool:  # the support's settings change nothing while it is off
    return cfg.support


RUN_FIELDS = ("device", "threads", "force")  # the fit's fields of RunConfig (the others are refused)


def _pruned_twice(cfg) -> bool:  # final_hypotheses changes nothing unless it prunes again
    return cfg.final_hypotheses < cfg.keep_hypotheses


@dataclass(frozen=True)
class FitConfig:
    """Everything that decides a fit; defaults live here once. ``RUN_ONLY`` fields (how, where
    and how many are fitted, not what a fit is) stay out of the run key: a run may resume with
    other values."""

    # across the longer image side (see fit/camera.py for why)
    fov_deg: float = field(default=60.0, metadata={"min": 1.0, "max": 170.0})
    refine_focal: bool = False
    body: BodyConfig = field(default_factory=BodyConfig)  # model, its file, learned keypoints
    pose_prior: str | None = None  # .npz; None = the bundled prior
    seed: int = field(default=0, metadata={"min": 0})
    batch_size: int = field(default=256, metadata={"min": 1})  # skeletons per batch (x hypotheses rows)
    limit: int | None = field(default=None, metadata={"min": 1, **RUN_ONLY})
    overlays: bool = field(default=True, metadata=RUN_ONLY)
    images: str | None = None
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    prune_after: int = field(default=1, metadata={"min": 0})  # stage index after which hypotheses are pruned
    keep_hypotheses: int = field(default=3, metadata={"min": 1})
    # rows kept for the last stage (fewer than keep_hypotheses: a long last stage spent on the best
    # only; benchmarks/results/keypoints.md, "Levers tried")
    final_hypotheses: int = field(default=3, metadata={"min": 1, "keyed_when": _pruned_twice})
    shape_weight: float = field(default=0.01, metadata={"min": 0.0})
    hyperextension_weight: float = field(default=1.0, metadata={"min": 0.0})
    limit_weight: float = field(default=1.0, metadata={"min": 0.0})
    penetration_weight: float = field(default=20.0, metadata={"min": 0.0})  # per metre of overlap
    label_bias_weight: float = field(default=0.02, metadata={"min": 0.0})  # posture-label nudge, in data-term units
    # the support the infant rests on (fit/support.py): a plane under the posture's contact side,
    # fitted with the body from stage support_from_stage on; benchmarks/results/fit3d.md
    support: bool = field(default=False, metadata={"keyed_when": _with_support})
    support_weight: float = field(default=10.0, metadata={"min": 0.0, "keyed_when": _with_support})  # per metre of probes through the plane
    contact_weight: float = field(default=10.0, metadata={"min": 0.0, "keyed_when": _with_support})  # per metre the touching side is off it
    side_weight: float = field(default=1.0, metadata={"min": 0.0, "keyed_when": _with_support})  # per unit of cosine past the posture's tilt
    elevation_weight: float = field(default=1.0, metadata={"min": 0.0, "keyed_when": _with_support})  # per unit of elevation sine short
    # camera over a supine infant
    supine_elevation_deg: float = field(default=30.0, metadata={"min": 0.0, "max": 90.0, "keyed_when": _with_support})
    support_from_stage: int = field(default=2, metadata={"min": 0, "keyed_when": _with_support})
    init_jitter: float = field(default=0.01, metadata={"min": 0.0})  # rad, seeded noise on the starting body pose
    max_mean_error: float = field(default=0.10, metadata={"min": 0.0})  # reject above this mean error / box diagonal
    min_keypoints: int = field(default=6, metadata={"min": 1, "max": 17})
    # how and where it runs (the torch device and CPU threads; force: replace a different fit run in the output folder)
    run: RunConfig = field(default_factory=RunConfig, metadata=RUN_ONLY)

    # flat body and run keys of older specs and fit summaries (read with a warning)
    MOVED = {**BODY_MOVED, **run_moved(*RUN_FIELDS)}

    def __post_init__(self):
        check_ranges(self, "fit config")
        self.run.check_used(RUN_FIELDS, "fit config")
        if not self.prune_after < len(self.stages) - 1:  # hypotheses are pruned between two stages
            raise UserError(f"fit config: prune_after ({self.prune_after}) must name a stage before the last "
                            f"of the {len(self.stages)} stages")
        if self.support and self.support_from_stage >= len(self.stages):
            raise UserError(f"fit config: support_from_stage ({self.support_from_stage}) must name one of the "
                            f"{len(self.stages)} stages")

    def resolved_device(self) -> str:
        if self.run.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.run.device

    @classmethod
    def from_dict(cls, d: dict | None) -> "FitConfig":
        """From a pipeline spec's ``config:`` mapping; unknown keys, wrong types and values out
        of range are a one-line UserError."""
        return from_mapping(cls, d, "fit config")

    def record(self) -> dict:
        d = asdict(self)
        d["stages"] = [asdict(s) for s in self.stages]
        return d

    def keyed(self) -> dict:
        """The fields that change a fit record (the run key's part of the config; field
        metadata decides, see :func:`syrip_gen.config.keyed`)."""
        return keyed(self)


SUPPORT_FIELDS = tuple(f.name for f in fields(FitConfig) if f.metadata.get("keyed_when") is _with_support)


def fit_run_key(skeletons: list, cfg: FitConfig) -> str:
    """Hash of the input skeletons (their content, not their path; all of them, before
    ``limit``) and of the config fields that change a fit."""
    import hashlib
    import json

    inputs = [{k: v for k, v in s.record().items() if k != "source"} for s in skeletons]
    blob = json.dumps({"inputs": inputs, "config": cfg.keyed()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def check_fit_out(out_dir: Path, key: str, cfg: FitConfig) -> str | None:
    """Whether this run may write into ``out_dir`` (:func:`syrip_gen.runfolder.claim`: another
    input or settings are refused, or replaced with ``force``; a folder the fitter did not make
    is never written into); returns the key of the run ``force`` replaces, if any."""
    from syrip_gen.runfolder import claim

    fits_path = out_dir / "fits.jsonl"
    return claim(out_dir, key, cfg.run.force, "fit",
                 made_before_keys=lambda o: fits_path.exists() and fits_path.stat().st_size > 0)


def prepare_fit_out(out_dir: Path, key: str, cfg: FitConfig) -> None:
    """Claim the output folder (:func:`check_fit_out`), remove the run it replaces, and record
    this run's key in ``run.json``."""
    import shutil

    from syrip_gen.runfolder import record

    other = check_fit_out(out_dir, key, cfg)
    if other is not None:
        for name in ("fits.jsonl", "summary.json", "contact_sheet.jpg"):
            (out_dir / name).unlink(missing_ok=True)
        shutil.rmtree(out_dir / "overlays", ignore_errors=True)
    record(out_dir, key, "fit", config=cfg.keyed())


@dataclass
class BatchFit:
    """Best fit per skeleton of a batch (tensors on CPU; B = skeletons)."""

    pose: torch.Tensor  # (B, 24, 3)
    shape: torch.Tensor  # (B, S)
    age_months: torch.Tensor  # (B,)
    focal: torch.Tensor  # (B,)
    t: torch.Tensor  # (B, 3)
    keypoints_3d: torch.Tensor  # (B, 17, 3) camera frame, exact body
    keypoints_px: torch.Tensor  # (B, 17, 2)
    error_px: torch.Tensor  # (B, 17)
    error_norm: torch.Tensor  # (B, 17)
    losses: list[dict]  # per skeleton {term: value}
    hypothesis: list[str]
    hypotheses: list[dict]  # per skeleton {name: total loss at the pruning stage} (all comparable)
    hypotheses_final: list[dict]  # per skeleton {name: final total loss} of the kept hypotheses
    # with cfg.support: the plane under the final body (support.fitted_plane), else None
    support_normal: torch.Tensor | None = None  # (B, 3) unit, camera frame, towards the body
    support_offset: torch.Tensor | None = None  # (B,) metres: the camera's height over the plane
    camera_elevation_deg: torch.Tensor | None = None  # (B,) the camera's elevation over it


def _terms(model, prior, pose, shape_z, t, focal, centre, kp2d, weight, diag, sigma, body, consts=None,
           data_only=False, plane=None):
    """Loss terms, each ``(N,)``. ``consts``: the keypoint model's shape constants when the shape
    is frozen (else computed from ``shape_z``); ``data_only`` skips the pose terms (stage 0);
    ``plane``: ``(normal (N, 3), support.SupportRows)`` adds the support terms (the plane's offset
    solved under the contact side, ``support.support_terms``)."""
    if consts is None:
        consts = model.constants(body.shape_mean + body.shape_std * shape_z)
    kps, joints = model.posed(pose, consts)
    pred = project(to_camera(kps, t), focal, centre)
    terms = {"data": robust_reprojection(pred, kp2d, weight, diag, sigma)}
    if plane is not None:
        terms.update(sup.support_terms(to_camera(joints, t), plane[0], None, plane[1]))
    if data_only:
        return terms
    terms.update({
        "pose_prior": prior.nll(pose) / DIM,
        "shape_prior": (shape_z ** 2).mean(1),
        "hyperextension": hyperextension(pose),
        "joint_limits": joint_limit_violation(pose),
        "penetration": capsule_penetration(joints),
    })
    return terms


def _total(terms, stage: Stage, cfg: FitConfig) -> torch.Tensor:
    support = 0.0
    if "support_penetration" in terms:
        support = (cfg.support_weight * terms["support_penetration"] + cfg.contact_weight * terms["support_contact"]
                   + cfg.side_weight * terms["support_side"]
                   + cfg.elevation_weight * terms["camera_elevation"])
    if "pose_prior" not in terms:
        return terms["data"] + support
    return support + (terms["data"] + stage.prior * terms["pose_prior"] + cfg.shape_weight * terms["shape_prior"]
            + cfg.hyperextension_weight * terms["hyperextension"] + cfg.limit_weight * terms["joint_limits"]
            + cfg.penetration_weight * terms["penetration"])


def _initial_normal(model, body, pose, shape_z, t, rows: sup.SupportRows) -> torch.Tensor:
    """Starting support-plane normal ``(N, 3)`` under the current bodies: the posture's side
    direction (``support.side_direction``; towards the camera without a posture)."""
    with torch.no_grad():
        _, joints = model.posed(pose, model.constants(body.shape_mean + body.shape_std * shape_z))
        return sup.side_direction(to_camera(joints, t), rows.side)


def fit_batch(body, model, prior: PosePrior, kp: torch.Tensor, width: torch.Tensor, height: torch.Tensor,
              postures: list[str | None], cfg: FitConfig, noise: torch.Tensor,
              focal: torch.Tensor | None = None) -> BatchFit:
    """Fit ``B`` skeletons ``kp (B, 17, 3)`` (x, y, v; pixels) in images ``width, height (B,)``.

    Every skeleton is tried from every hypothesis (``fit/hypotheses.py``); after stage
    ``cfg.prune_after`` only the ``cfg.keep_hypotheses`` best go on. ``focal (B,)`` (NaN where
    unknown) overrides the field-of-view guess. ``noise (B, H, 24, 3)`` standard normal (``skeleton_noise``) jitters
    the starting body pose by ``cfg.init_jitter``; each row's fit depends only on its own inputs.
    """
    dev = body.shape_mean.device
    B = kp.shape[0]
    H = len(hyp.HYPOTHESES)
    kp = kp.to(dev, torch.float32)
    kp2d, weight = kp[..., :2], keypoint_weights(kp[..., 2])
    width, height = width.to(dev, torch.float32), height.to(dev, torch.float32)
    guess = focal_from_fov(width, height, cfg.fov_deg)
    focal = guess if focal is None else torch.where(torch.isfinite(focal.to(dev)), focal.to(dev, torch.float32), guess)
    centre = torch.stack([width, height], 1) / 2
    diag = box_diagonal(kp2d, weight)

    # rows = skeleton-major (b * H + h)
    glob0 = hyp.initial_orientations(hyp.roll_angle(kp2d.cpu(), weight.cpu())).to(dev)  # (B, H, 3)
    starts = torch.stack([hyp.start_pose(h.start) for h in hyp.HYPOTHESES]).to(dev)  # (H, 24, 3)
    pose0 = starts[None].expand(B, H, 24, 3).clone()
    pose0 = pose0 + cfg.init_jitter * noise.to(dev, torch.float32)
    pose0[:, :, 0] = glob0
    rows = torch.arange(B * H, device=dev)
    sk = rows // H  # skeleton of each row
    hid = rows % H
    mean_shape = body.shape_mean[None].expand(B, -1)
    with torch.no_grad():
        tpose_kp, _ = model(torch.zeros(B, 24, 3, device=dev), mean_shape)
    t0 = initial_translation(kp2d, weight, tpose_kp, focal, centre)

    pose = pose0.reshape(B * H, 24, 3).clone()
    shape_z = torch.zeros(B * H, body.shape_mean.numel(), device=dev)
    t = t0[sk].clone()
    log_f = torch.zeros(B * H, device=dev)
    bias = torch.stack([hyp.label_bias(p) for p in postures]).to(dev) * cfg.label_bias_weight  # (B, H)
    last_loss = torch.full((B, H), float("nan"), device=dev)
    lower_z = (body.shape_lower - body.shape_mean) / body.shape_std
    upper_z = (body.shape_upper - body.shape_mean) / body.shape_std

    demands = sup.support_rows(postures, cfg.supine_elevation_deg, sup.MAX_TILT_DEG, dev)
    normal = None  # the support plane's normal per row, from its first stage on
    pruning_loss = None
    for si, stage in enumerate(cfg.stages):
        glob = pose[:, :1].clone().requires_grad_(True)
        rest = pose[:, 1:].clone().requires_grad_(stage.optimise_pose)
        shape_z = shape_z.clone().requires_grad_(stage.optimise_shape)
        t = t.clone().requires_grad_(True)
        log_f = log_f.clone().requires_grad_(cfg.refine_focal and si > 0)
        if cfg.support and si >= cfg.support_from_stage and normal is None:
            normal = _initial_normal(model, body, pose, shape_z, t, demands[sk])
        normal = None if normal is None else normal.clone().requires_grad_(True)
        params = [p for p in (glob, rest, shape_z, t, log_f, normal) if p is not None and p.requires_grad]
        opt = torch.optim.Adam(params, lr=stage.lr)
        consts = None
        if not stage.optimise_shape:
            with torch.no_grad():
                consts = model.constants(body.shape_mean + body.shape_std * shape_z)
        data_only = not stage.optimise_pose and not stage.optimise_shape
        args = (centre[sk], kp2d[sk], weight[sk], diag[sk], stage.sigma, body)
        plane = None if normal is None else (normal, demands[sk])
        for _ in range(stage.steps):
            opt.zero_grad(set_to_none=True)
            terms = _terms(model, prior, torch.cat([glob, rest], 1), shape_z, t, focal[sk] * log_f.exp(),
                           *args, consts=consts, data_only=data_only, plane=plane)
            loss = _total(terms, stage, cfg)
            loss.sum().backward()
            opt.step()
            with torch.no_grad():
                shape_z.clamp_(min=lower_z, max=upper_z)
                t[:, 2].clamp_(min=0.05)
        pose = torch.cat([glob, rest], 1).detach()
        shape_z, t, log_f = shape_z.detach(), t.detach(), log_f.detach()
        if normal is not None:
            normal = normal.detach() / normal.detach().norm(dim=-1, keepdim=True).clamp_min(1e-9)
            plane = (normal, demands[sk])
        with torch.no_grad():
            terms = _terms(model, prior, pose, shape_z, t, focal[sk] * log_f.exp(), *args, plane=plane)
            loss = _total(terms, stage, cfg)
        last_loss[sk, hid] = loss
        if si == cfg.prune_after:
            pruning_loss = last_loss.clone()
        keep_n = (cfg.keep_hypotheses if si == cfg.prune_after else
                  cfg.final_hypotheses if si == len(cfg.stages) - 2 else H)
        if keep_n < len(sk) // B:  # prune to the best keep_n surviving rows per skeleton
            score = torch.full((B, H), float("inf"), device=dev)
            score[sk, hid] = last_loss[sk, hid] + bias[sk, hid]
            keep = score.topk(keep_n, dim=1, largest=False).indices.sort(1).values  # (B, K)
            row_of = torch.full((B, H), -1, dtype=torch.long, device=dev)
            row_of[sk, hid] = torch.arange(len(sk), device=dev)
            sel = row_of.gather(1, keep).flatten()  # rows index into the current arrays
            pose, shape_z, t, log_f = pose[sel], shape_z[sel], t[sel], log_f[sel]
            if normal is not None:
                normal = normal[sel]
            sk, hid = sk[sel], keep.flatten()
    # choose per skeleton among the surviving rows
    final = torch.full((B, H), float("inf"), device=dev)
    final[sk, hid] = loss + bias[sk, hid]
    best_h = final.argmin(1)
    best_row = torch.full((B, H), -1, dtype=torch.long, device=dev)
    best_row[sk, hid] = torch.arange(len(sk), device=dev)
    best = best_row[torch.arange(B, device=dev), best_h]
    with torch.no_grad():
        f_best = focal * log_f[best].exp()
        shape = body.clamp_shape(body.shape_mean + body.shape_std * shape_z[best])
        out = body(pose[best], shape)
        cam = to_camera(out.keypoints, t[best])
        px = project(cam, f_best, centre)
        err_norm = reprojection_errors(px, kp2d, diag)
        err_px = err_norm * diag[:, None]
        plane = (None,) * 3 if normal is None else sup.fitted_plane(to_camera(out.joints, t[best]), normal[best],
                                                                     demands)
    term_rows = {k: v[best].cpu() for k, v in terms.items()}
    losses = [{k: float(v[i]) for k, v in term_rows.items()} for i in range(B)]
    for i in range(B):
        losses[i]["total"] = float(loss[best[i]])
    pruning_loss = last_loss if pruning_loss is None else pruning_loss
    hyps = [{h.name: float(pruning_loss[b, j]) for j, h in enumerate(hyp.HYPOTHESES)} for b in range(B)]
    finals = [{hyp.NAMES[int(hid[r])]: float(loss[r]) for r in range(len(sk)) if int(sk[r]) == b} for b in range(B)]
    return BatchFit(pose=pose[best].cpu(), shape=shape.cpu(), age_months=body.age_months(shape).cpu(),
                    focal=f_best.cpu(), t=t[best].cpu(), keypoints_3d=cam.cpu(), keypoints_px=px.cpu(),
                    error_px=err_px.cpu(), error_norm=err_norm.cpu(), losses=losses,
                    hypothesis=[hyp.NAMES[int(h)] for h in best_h], hypotheses=hyps, hypotheses_final=finals,
                    **{k: None if v is None else v.cpu() for k, v in
                       zip(("support_normal", "support_offset", "camera_elevation_deg"), plane)})


def skeleton_noise(ids: list[str], seed: int) -> torch.Tensor:
    """Standard-normal start noise ``(B, H, 24, 3)`` float32, one generator per skeleton seeded by
    (run seed, id): a skeleton's fit does not depend on what else is in its batch or on resumes."""
    out = []
    for i in ids:
        g = torch.Generator().manual_seed(seed * 2_654_435_761 % 2**61 + zlib.crc32(str(i).encode()))
        out.append(torch.randn(len(hyp.HYPOTHESES), 24, 3, generator=g))
    return torch.stack(out) if out else torch.zeros(0, len(hyp.HYPOTHESES), 24, 3)


def fit_skeletons(skeletons: list, body, model, prior: PosePrior, cfg: FitConfig, progress: bool = False) -> list[FitRecord]:
    """Fits records of ``skeletons`` (``fit.io.Skeleton``, none with a ``problem``), in input
    order, in batches of ``cfg.batch_size``; for callers that refit in memory (learn-keypoints)."""
    from tqdm import tqdm

    records = []
    for lo in tqdm(range(0, len(skeletons), cfg.batch_size), desc="fit", unit="batch", disable=not progress):
        batch = skeletons[lo: lo + cfg.batch_size]
        kp = torch.tensor(np.stack([s.keypoints for s in batch]), dtype=torch.float32)
        res = fit_batch(body, model, prior, kp, torch.tensor([s.width for s in batch]),
                        torch.tensor([s.height for s in batch]), [s.posture for s in batch], cfg,
                        skeleton_noise([s.id for s in batch], cfg.seed),
                        focal=torch.tensor([s.focal or float("nan") for s in batch]))
        records += [_record(s, res, i, body.name, cfg) for i, s in enumerate(batch)]
    return records


# ---- the file-level runner -----------------------------------------------------------------

@dataclass
class FitSummary:
    """What a run did (also written as FITS/summary.json)."""

    out_dir: str
    counts: dict = field(default_factory=dict)  # status -> count (this file, all records)
    error: dict = field(default_factory=dict)  # distribution of mean_error_norm over ok fits
    fitted: int = 0  # fitted in this run
    skipped_existing: int = 0
    seconds: float = 0.0
    fits_per_second: float = 0.0
    device: str = "cpu"
    config: dict = field(default_factory=dict)
    rejected: dict = field(default_factory=dict)  # reason -> [ids]
    overlays: dict = field(default_factory=dict)  # written / existing / skipped {reason: [ids]}


def error_distribution(values: list[float]) -> dict:
    """Median, p90, p95 and the shares at or below 2 % and 5 % of mean errors (fractions)."""
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=np.float64)
    return {"n": int(a.size), "median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "p95": float(np.percentile(a, 95)), "share_le_2pct": float((a <= 0.02).mean()),
            "share_le_5pct": float((a <= 0.05).mean()), "mean": float(a.mean())}


def fit_file(input_path: str | Path, out_dir: str | Path, cfg: FitConfig = FitConfig(),
             body=None, progress: bool = True) -> FitSummary:
    """Fit every skeleton of ``input_path`` (COCO/OpenPose JSON) into ``out_dir``.

    Appends to ``out_dir/fits.jsonl`` per batch; ids already there are skipped (a truncated last
    line is dropped first); writes ``summary.json`` and, with ``cfg.overlays``, overlay PNGs and
    a contact sheet. ``body`` may be passed to reuse a loaded model.
    """
    from syrip_gen.fit import io
    from syrip_gen.fit.kinematics import keypoint_model
    from syrip_gen.fit.prior import default_prior
    from syrip_gen.runfolder import check_writable, locked

    out_dir = Path(out_dir)
    check_writable(out_dir)
    # everything is checked before the folder is claimed: a failed start leaves nothing behind
    skeletons = io.load_skeletons(input_path, cfg.images, cfg.min_keypoints)
    if not skeletons:
        raise UserError(f"{input_path}: no skeletons to fit (the input lists no annotations)")
    key = fit_run_key(skeletons, cfg)
    check_fit_out(out_dir, key, cfg)  # a refused folder fails fast, before the body loads
    if cfg.limit is not None:
        skeletons = skeletons[: cfg.limit]
    device = cfg.resolved_device()
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    body = body if body is not None else cfg.body.load(device)
    body = body.to(device)
    model = keypoint_model(body)
    prior = PosePrior.load(cfg.pose_prior) if cfg.pose_prior else default_prior()
    with locked(out_dir, "fit"):
        prepare_fit_out(out_dir, key, cfg)
        return _fit_claimed(skeletons, out_dir, cfg, body, model, prior, device, progress)


def _fit_claimed(skeletons, out_dir: Path, cfg: FitConfig, body, model, prior, device: str,
                 progress: bool) -> FitSummary:
    """``fit_file``'s work, in a folder it holds and has claimed."""
    from tqdm import tqdm

    from syrip_gen.atomic import atomic_write_json
    from syrip_gen import fits

    fits_path = out_dir / "fits.jsonl"
    done = {r.id for r in fits.read_records(fits_path, repair=True)}
    todo = [s for s in skeletons if s.id not in done]
    start = time.perf_counter()
    fitted = 0
    bar = tqdm(total=len(todo), desc="fit", unit="skel", disable=not progress)
    # Batches are fixed chunks of the input, so a resumed batch is fitted with the same
    # companions as in the first run (same bytes); only the missing ids are written.
    for lo in range(0, len(skeletons), cfg.batch_size):
        batch = skeletons[lo: lo + cfg.batch_size]
        missing = [s for s in batch if s.id not in done]
        if not missing:
            continue
        records = [rejected_record(s.record(), f"rejected: {s.problem}") for s in missing if s.problem]
        good = [s for s in batch if not s.problem]
        if any(not s.problem for s in missing):
            kp = torch.tensor(np.stack([s.keypoints for s in good]), dtype=torch.float32)
            res = fit_batch(body, model, prior, kp, torch.tensor([s.width for s in good]),
                            torch.tensor([s.height for s in good]), [s.posture for s in good], cfg,
                            skeleton_noise([s.id for s in good], cfg.seed),
                            focal=torch.tensor([s.focal or float("nan") for s in good]))
            records += [_record(s, res, i, body.name, cfg) for i, s in enumerate(good) if s.id not in done]
            fitted += sum(s.id not in done for s in good)
        order = {s.id: i for i, s in enumerate(batch)}
        records.sort(key=lambda r: order[r.id])
        fits.append_fits(fits_path, records)
        bar.update(len(missing))
    bar.close()
    seconds = time.perf_counter() - start
    all_records = fits.read_records(fits_path)
    summary = summarise(all_records, out_dir, fitted, len(skeletons) - len(todo), seconds, device, cfg)
    if cfg.overlays:
        from syrip_gen.fit.overlay import write_overlays

        summary.overlays = write_overlays(all_records, skeletons, body, out_dir, progress=progress)
    atomic_write_json(out_dir / "summary.json", asdict(summary))
    return summary


def status_reason(status: str) -> str:
    """A status without the numbers that belong to one record (its error, its count of
    labelled keypoints, its id), which become ``N``; numbers in brackets (a limit) stay:
    ``"rejected: only 3 labelled keypoints (need 6)"`` -> ``"rejected: only N labelled
    keypoints (need 6)"``, so the summary counts one reason once."""
    return re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])(?![^()]*\))", "N", status)


def summarise(records, out_dir, fitted, skipped, seconds, device, cfg) -> FitSummary:
    """``counts`` and ``rejected`` group the statuses by :func:`status_reason`."""
    counts = dict(Counter(status_reason(r.status) for r in records))
    errors = [r.mean_error_norm for r in records if r.ok]
    rejected: dict[str, list] = {}
    for r in records:
        if not r.ok:
            rejected.setdefault(status_reason(r.status), []).append(r.id)
    return FitSummary(out_dir=str(out_dir), counts=counts, error=error_distribution(errors), fitted=fitted,
                      skipped_existing=skipped, seconds=seconds,
                      fits_per_second=fitted / seconds if seconds > 0 and fitted else 0.0,
                      device=device, config=cfg.record(), rejected=rejected)


def _record(s, res: BatchFit, i: int, body_name: str, cfg: FitConfig) -> FitRecord:
    """Skeleton ``s``'s record from row ``i`` of a batch's fit (fits.py owns the schema)."""
    support = None
    if res.support_normal is not None:  # fit option `support`: the plane the body rests on
        support = {"normal": [float(x) for x in res.support_normal[i]], "offset": float(res.support_offset[i]),
                   "camera_elevation_deg": float(res.camera_elevation_deg[i])}
    return fitted_record(
        s.record(), s.keypoints[:, 2] > 0, res.error_px[i].numpy(), res.error_norm[i].numpy(), cfg.max_mean_error,
        body=body_name, pose=res.pose[i].tolist(), shape=res.shape[i].tolist(), age_months=float(res.age_months[i]),
        camera=camera_record(float(res.focal[i]), s.width / 2, s.height / 2, res.t[i].tolist()),
        keypoints_3d=res.keypoints_3d[i].tolist(), losses=res.losses[i], hypothesis=res.hypothesis[i],
        hypotheses=res.hypotheses[i], hypotheses_final=res.hypotheses_final[i], seed=cfg.seed, support=support)
