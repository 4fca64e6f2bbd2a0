"""Statistics of a keypoint dataset, optionally against another: pose distribution, postures,
visibility, viewpoints, and a pose-coverage score.

Why: the point of synthetic data is to cover the poses real infants take. These pictures (the
SyRIP paper's normalised-skeleton overlay among them) and one number say whether it does.

Normalised 2D pose (:func:`torso_normalise`): keypoints with image y flipped to point up,
mid-hip moved to the origin, rotated so that mid-hip -> mid-shoulder points along +y, and
divided by that torso length. Needs both hips and both shoulders labelled; others are counted
as skipped.

Pose coverage of OTHER by DATASET at radius ``tau`` (torso lengths): the share of OTHER's
normalised poses whose nearest neighbour in DATASET lies within ``tau``, where the distance
between two poses is the mean Euclidean distance over the keypoints labelled in both (at least
``MIN_COMMON`` of them, else infinite). ``coverage`` is that share at ``TAU``; the reverse
direction (``precision``: the share of DATASET's poses near some OTHER pose) says how much of
DATASET is realistic-looking; both are reported for several radii with the median
nearest-neighbour distances. ``coverage.knn`` adds the k-NN precision/recall of
:mod:`syrip_gen.coverage` (DATASET generated, OTHER real), and ``ceiling`` the same measure of a
second real set against OTHER when one is given (how far real poses cover real poses).

Viewpoint (renders with ``keypoints_3d``): the unit vector from the mid-hip to the camera,
expressed in the body's torso frame (y = hips -> shoulders, z = chest normal, x = body's left):
azimuth = atan2(x, z) (0 = camera in front of the chest, +90 = on the body's left), elevation
= asin(y) (+ = towards the head). Images without 3D keypoints are skipped (real data).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from syrip_gen import coverage as knn
from syrip_gen.annotate import SyntheticAnnotation, read_synthetic
from syrip_gen.atomic import atomic_write_json
from syrip_gen.coco import KEYPOINT_NAMES, SKELETON, image_posture, load_coco
from syrip_gen.errors import UserError
from syrip_gen.runfolder import FOREIGN_OK, claim, locked, record

L_SH, R_SH, L_HIP, R_HIP = 5, 6, 11, 12
TAU = 0.25  # real train200 vs validate100: 0.60 here, 0.97 at 0.5 (too lenient to tell sets apart)
TAUS = (0.25, 0.5, 0.75, 1.0)
MIN_COMMON = 8
SIDE_COLOURS = {"left": "#1f77b4", "right": "#ff7f0e", "centre": "#555555"}
V_COLOURS = ("#c44e52", "#dd8452", "#55a868")  # v = 0, 1, 2


def _side(i: int) -> str:
    name = KEYPOINT_NAMES[i]
    return "left" if name.startswith("left") else "right" if name.startswith("right") else "centre"


def labelled(kps: np.ndarray) -> np.ndarray:
    """``(N, 17) bool``: keypoint labelled (v > 0) with finite coordinates."""
    return (kps[..., 2] > 0) & np.isfinite(kps[..., :2]).all(-1)


def torso_normalise(kps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``kps (N, 17, 3)`` image keypoints -> normalised poses ``(M, 17, 2)`` float64, their mask
    ``(M, 17) bool`` and the indices ``(M,)`` of the samples that had hips and shoulders."""
    lab = labelled(kps)
    ok = lab[:, [L_SH, R_SH, L_HIP, R_HIP]].all(1)
    xy = kps[ok, :, :2].astype(np.float64) * np.array([1.0, -1.0])  # y up
    hip = (xy[:, L_HIP] + xy[:, R_HIP]) / 2
    axis = (xy[:, L_SH] + xy[:, R_SH]) / 2 - hip
    length = np.linalg.norm(axis, axis=1)
    good = length > 1e-6
    xy, hip, axis, length = xy[good], hip[good], axis[good], length[good]
    idx = np.flatnonzero(ok)[good]
    ang = np.arctan2(axis[:, 0], axis[:, 1])  # rotate the axis onto +y
    c, s = np.cos(ang), np.sin(ang)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (M, 2, 2)
    rel = xy - hip[:, None]
    out = np.einsum("mij,mkj->mki", rot, rel) / length[:, None, None]
    mask = lab[idx]
    out[~mask] = np.nan
    return out, mask, idx


def hip_shoulder_ratio(kps: np.ndarray) -> float | None:
    """Median 2D hip width / shoulder width over skeletons ``(N, 17, 3)`` with both hips and both
    shoulders labelled (None without any): where a labelling convention puts hips and shoulders
    (real SyRIP labels ~0.80; joint-centre renders ~0.69)."""
    lab = labelled(kps)
    ok = lab[:, L_HIP] & lab[:, R_HIP] & lab[:, L_SH] & lab[:, R_SH]
    xy = kps[ok, :, :2]
    hips = np.linalg.norm(xy[:, L_HIP] - xy[:, R_HIP], axis=1)
    shoulders = np.linalg.norm(xy[:, L_SH] - xy[:, R_SH], axis=1)
    good = shoulders > 0
    return float(np.median(hips[good] / shoulders[good])) if good.any() else None


def nn_distance(a: np.ndarray, ma: np.ndarray, b: np.ndarray, mb: np.ndarray,
                chunk: int = 256) -> np.ndarray:
    """For each pose of ``a (N, 17, 2)`` (mask ``(N, 17)``), the distance ``(N,)`` to its nearest
    pose in ``b (M, 17, 2)``: mean keypoint distance over keypoints labelled in both, inf when
    fewer than ``MIN_COMMON`` are."""
    out = np.full(len(a), np.inf)
    if not len(a) or not len(b):
        return out
    b0 = np.nan_to_num(b)
    for s in range(0, len(a), chunk):
        aa, am = np.nan_to_num(a[s:s + chunk]), ma[s:s + chunk]
        common = am[:, None] & mb[None]  # (n, M, 17)
        d = np.linalg.norm(aa[:, None] - b0[None], axis=-1) * common
        n = common.sum(-1)
        mean = np.where(n >= MIN_COMMON, d.sum(-1) / np.maximum(n, 1), np.inf)
        out[s:s + chunk] = mean.min(1)
    return out


def viewpoints(anns: list[SyntheticAnnotation]) -> np.ndarray:
    """``(K, 2)`` azimuth, elevation in degrees of the camera relative to the body, for the
    annotations with ``keypoints_3d`` (camera frame)."""
    from syrip_gen.posture_label import torso_frame
    import torch

    k3d = [np.asarray(a.keypoints_3d, np.float64).reshape(17, 3) for a in anns if a.keypoints_3d is not None]
    if not k3d:
        return np.zeros((0, 2))
    kp = np.stack(k3d)
    axis, front = (t.numpy() for t in torso_frame(torch.as_tensor(kp)))
    left = np.cross(axis, front)  # y x z = x
    hip = (kp[:, L_HIP] + kp[:, R_HIP]) / 2
    to_cam = -hip / np.linalg.norm(hip, axis=1, keepdims=True)  # camera at the origin
    x, y, z = (np.sum(to_cam * e, axis=1) for e in (left, axis, front))
    return np.degrees(np.stack([np.arctan2(x, z), np.arcsin(np.clip(y, -1, 1))], 1))


class _Data:
    """One dataset's arrays."""

    def __init__(self, path):
        from syrip_gen.coco import dataset_json

        self.coco = load_coco(dataset_json(path))
        self.name = self.coco.path.parent.parent.name if self.coco.path.parent.name == "annotations" else self.coco.path.stem
        anns = read_synthetic(self.coco)
        self.kps = np.stack([a.keypoints for a in anns]) if anns else np.zeros((0, 17, 3))
        # SyRIP puts v=0 keypoints at (-45, -45) or 0: the mask, not the coordinates, says labelled
        self.poses, self.mask, self.idx = torso_normalise(self.kps)
        if not len(self.poses):  # issue 34, C53: a traceback from the coverage features before
            why = "no annotations" if not anns else f"none of its {len(anns)} annotations labels both hips and shoulders"
            raise UserError(f"{self.coco.path}: no infant poses to describe ({len(self.coco.images)} images, {why}); "
                            "give an annotated dataset (after a filter step, check that it kept any images)")
        self.postures = [image_posture(self.coco.images.get(a.image_id, {})) or
                         (a.posture or "").lower() or "unknown" for a in anns]
        self.views = viewpoints(anns)
        self.limbs, _ = knn.limb_features(self.poses, self.mask)


def coverage(target: _Data, source: _Data) -> dict:
    """How well ``source``'s poses cover ``target``'s (see the module docstring)."""
    t2s = nn_distance(target.poses, target.mask, source.poses, source.mask)
    s2t = nn_distance(source.poses, source.mask, target.poses, target.mask)
    fin = lambda d: float(np.median(d)) if len(d) else None  # noqa: E731
    return {
        "tau": TAU, "min_common_keypoints": MIN_COMMON,
        "coverage": float(np.mean(t2s <= TAU)) if len(t2s) else None,
        "precision": float(np.mean(s2t <= TAU)) if len(s2t) else None,
        "coverage_at": {f"{t:g}": float(np.mean(t2s <= t)) for t in TAUS} if len(t2s) else {},
        "precision_at": {f"{t:g}": float(np.mean(s2t <= t)) for t in TAUS} if len(s2t) else {},
        "median_nn_other_to_dataset": fin(t2s), "median_nn_dataset_to_other": fin(s2t),
        "n_other_poses": int(len(t2s)), "n_dataset_poses": int(len(s2t)),
    }


def knn_coverage(real: _Data, generated: _Data, seed: int = 0) -> dict | None:
    """k-NN precision/recall of ``generated``'s limb features against ``real``'s (None when
    either has no complete skeleton)."""
    if not len(real.limbs) or not len(generated.limbs):
        return None
    return {**knn.pose_precision_recall(real.limbs, generated.limbs, seed=seed),
            "real": real.name, "generated": generated.name,
            "skipped_incomplete_limbs": {real.name: int(len(real.poses) - len(real.limbs)),
                                         generated.name: int(len(generated.poses) - len(generated.limbs))}}


def dataset_stats(dataset_dir: str | Path, out_dir: str | Path, compare: str | Path | None = None,
                  ceiling: str | Path | None = None, seed: int = 0) -> dict:
    """Write ``poses.png``, ``postures.png``, ``visibility.png``, ``viewpoints.png`` (when
    renders carry 3D keypoints) and ``stats.json`` into ``out_dir``; return the numbers.
    ``ceiling``: a second real set, scored against ``compare`` like the dataset is."""
    import matplotlib

    from syrip_gen.runfolder import check_writable

    matplotlib.use("Agg")
    out_dir = Path(out_dir)
    check_writable(out_dir)
    _claim(out_dir)  # before any work
    if ceiling and not compare:
        raise UserError("a real-vs-real ceiling needs --compare REAL to score it against")
    sets = [_Data(dataset_dir)] + ([_Data(compare)] if compare else [])
    if len(sets) == 2 and sets[0].name == sets[1].name:
        sets[1].name += " (compare)"
    stats: dict = {"datasets": {}}
    for d in sets:
        counts = {p: d.postures.count(p) for p in sorted(set(d.postures))}
        v = d.kps[..., 2]
        stats["datasets"][d.name] = {
            "path": str(d.coco.path), "n_images": len(d.coco.images), "n_annotations": len(d.kps),
            "n_normalised_poses": int(len(d.poses)),
            "skipped_no_hips_or_shoulders": int(len(d.kps) - len(d.poses)),
            "postures": counts,
            "visibility": {name: {"v2": float(np.mean(v[:, k] == 2)), "v1": float(np.mean(v[:, k] == 1)),
                                  "v0": float(np.mean(v[:, k] <= 0))} for k, name in enumerate(KEYPOINT_NAMES)}
            if len(v) else {},
            "n_viewpoints": int(len(d.views)),
            "hip_shoulder_width_ratio": hip_shoulder_ratio(d.kps),
        }
        if len(d.views):
            stats["datasets"][d.name]["viewpoint_deg"] = {
                "azimuth_mean_abs": float(np.mean(np.abs(d.views[:, 0]))),
                "elevation_mean": float(np.mean(d.views[:, 1])),
            }
    if compare:
        stats["coverage"] = coverage(sets[1], sets[0])
        stats["coverage"].update({"dataset": sets[0].name, "other": sets[1].name})
        stats["coverage"]["knn"] = knn_coverage(sets[1], sets[0], seed)
    if ceiling:
        second = _Data(ceiling)
        if second.name in (sets[1].name, sets[0].name):
            second.name += " (ceiling)"
        stats["coverage"]["ceiling"] = knn_coverage(sets[1], second, seed)
    with locked(out_dir, "stats"):
        _claim(out_dir)
        record(out_dir, "stats", "stats")
        files = [_plot_poses(sets, out_dir / "poses.png"), _plot_postures(sets, out_dir / "postures.png"),
                 _plot_visibility(sets, out_dir / "visibility.png")]
        if any(len(d.views) for d in sets):
            files.append(_plot_viewpoints(sets, out_dir / "viewpoints.png"))
        stats["files"] = [str(f) for f in files]
        atomic_write_json(out_dir / "stats.json", stats)
    return stats


def _claim(out: Path) -> None:
    """``out`` must be new, empty or an earlier stats output (each run rewrites it all), never
    a folder ``stats`` did not make (:func:`syrip_gen.runfolder.claim`)."""
    claim(out, "stats", True, "stats", made_before_keys=lambda o: (o / "stats.json").is_file() and all(
        p.suffix in (".png", ".json", ".tmp") or p.name in FOREIGN_OK for p in o.iterdir()))


# ---- pictures --------------------------------------------------------------------------------
def _plot_poses(sets: list[_Data], path: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    fig, axes = plt.subplots(1, len(sets), figsize=(4.6 * len(sets), 5.2), dpi=110, squeeze=False)
    for ax, d in zip(axes[0], sets):
        alpha = float(np.clip(25.0 / max(len(d.poses), 1), 0.03, 0.5))
        for side in ("centre", "left", "right"):
            segs = []
            for a, b in SKELETON:
                a, b = a - 1, b - 1
                if (_side(a) if _side(a) == _side(b) else "centre") != side:
                    continue
                ok = d.mask[:, a] & d.mask[:, b]
                segs.extend(np.stack([d.poses[ok, a], d.poses[ok, b]], 1))
            if segs:
                ax.add_collection(LineCollection(segs, colors=SIDE_COLOURS[side], alpha=alpha, linewidths=1.0))
        ax.plot([0, 0], [0, 1], color="black", lw=2)  # the torso every pose is aligned on
        ax.set_xlim(-2.6, 2.6)
        ax.set_ylim(-2.4, 2.8)
        ax.set_aspect("equal")
        ax.set_title(f"{d.name}: {len(d.poses)} poses", fontsize=10)
        ax.set_xlabel("torso lengths (mid-hip at 0, shoulders up)", fontsize=8)
    handles = [plt.Line2D([], [], color=c, label=s) for s, c in SIDE_COLOURS.items()]
    axes[0][0].legend(handles=handles, loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_postures(sets: list[_Data], path: Path) -> Path:
    import matplotlib.pyplot as plt

    labels = sorted({p for d in sets for p in d.postures})
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    width = 0.8 / len(sets)
    for k, d in enumerate(sets):
        share = [d.postures.count(p) / max(len(d.postures), 1) for p in labels]
        ax.bar(np.arange(len(labels)) + (k - (len(sets) - 1) / 2) * width, share, width,
               label=f"{d.name} (n={len(d.postures)})")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("share of annotations")
    ax.set_title("postures", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_visibility(sets: list[_Data], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(sets), 1, figsize=(9, 2.9 * len(sets)), dpi=110, squeeze=False)
    for ax, d in zip(axes[:, 0], sets):
        v = d.kps[..., 2]
        bottom = np.zeros(17)
        for val, label, colour in ((2, "v=2 visible", V_COLOURS[2]), (1, "v=1 occluded", V_COLOURS[1]),
                                   (0, "v=0 not labelled / out of frame", V_COLOURS[0])):
            share = np.mean(v <= 0, 0) if val == 0 else np.mean(v == val, 0)
            if not len(v):
                share = np.zeros(17)
            ax.bar(range(17), share, bottom=bottom, color=colour, label=label)
            bottom += share
        ax.set_xticks(range(17), [n.replace("left_", "L ").replace("right_", "R ") for n in KEYPOINT_NAMES],
                      rotation=45, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"{d.name}: keypoint visibility", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_viewpoints(sets: list[_Data], path: Path) -> Path:
    import matplotlib.pyplot as plt

    shown = [d for d in sets if len(d.views)]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.8 * len(shown), 3.8), dpi=110, squeeze=False)
    for ax, d in zip(axes[0], shown):
        h = ax.hist2d(d.views[:, 0], d.views[:, 1], bins=[24, 12], range=[[-180, 180], [-90, 90]], cmap="viridis")
        fig.colorbar(h[3], ax=ax, label="images")
        ax.set_xlabel("azimuth (deg, 0 = camera facing the chest, + = body's left)", fontsize=7)
        ax.set_ylabel("elevation (deg, + = towards the head)", fontsize=7)
        ax.set_title(f"{d.name}: camera relative to the body", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["dataset_stats", "torso_normalise", "nn_distance", "viewpoints", "coverage", "TAU"]
