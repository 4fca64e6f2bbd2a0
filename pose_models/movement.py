"""Per-track movement summaries of a video's keypoints, for movement assessment (GMA-style
measures): per-limb speed and acceleration distributions, quantity of motion, left/right symmetry,
written as JSON beside predict's CSV, with a plot.

Why these: automated general-movement assessment works from exactly such kinematic features
(limb speeds and accelerations, overall motion, symmetry) rather than from pixels. Limb motion
is measured relative to the trunk centre (mean of shoulders and hips), so the infant or camera
shifting as a whole is not counted as limb movement, and in torso lengths (mid-shoulder to
mid-hip, the track's median) as well as pixels, so a zoomed camera gives comparable numbers.
Only consecutive frames of a track are differenced; points scoring below ``min_score`` are left
out (NaN), and a statistic with no data is ``null``.
"""
from __future__ import annotations

import numpy as np

from syrip_gen.coco import KEYPOINT_NAMES

LIMBS = {"left_wrist": 9, "right_wrist": 10, "left_ankle": 15, "right_ankle": 16, "left_elbow": 7, "right_elbow": 8,
         "left_knee": 13, "right_knee": 14, "nose": 0}
PAIRS = {"arms": ("left_wrist", "right_wrist"), "legs": ("left_ankle", "right_ankle")}
VERSION = 1


def _stats(v: np.ndarray) -> dict | None:
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    p = np.percentile(v, [10, 50, 90])
    return {"mean": round(float(v.mean()), 4), "p10": round(float(p[0]), 4), "median": round(float(p[1]), 4),
            "p90": round(float(p[2]), 4), "max": round(float(v.max()), 4), "n": int(len(v))}


def track_series(frames: np.ndarray, times: np.ndarray, xy: np.ndarray, score: np.ndarray, min_score: float = 0.2
                 ) -> dict:
    """Speed ``(F-1, 17)`` and acceleration ``(F-2, 17)`` (px/s, px/s²; trunk-relative; NaN where
    not measurable) of one track's keypoints ``xy (F, 17, 2)`` at ``frames (F,)``/``times (F,)``,
    the speed's times, and the torso length (px)."""
    xy = np.where((score >= min_score)[..., None], np.asarray(xy, np.float64), np.nan)
    trunk_pts = xy[:, [5, 6, 11, 12]]
    seen = np.isfinite(trunk_pts).all(-1)
    trunk = np.full((len(xy), 1, 2), np.nan)  # no trunk point seen: no trunk-relative motion that frame
    n = seen.sum(1)
    ok = n > 0
    trunk[ok, 0] = np.where(seen[ok][..., None], trunk_pts[ok], 0).sum(1) / n[ok, None]
    rel = xy - trunk
    torso = np.linalg.norm(xy[:, [5, 6]].mean(1) - xy[:, [11, 12]].mean(1), axis=-1)
    torso_px = float(np.nanmedian(torso)) if np.isfinite(torso).any() else float("nan")
    step = np.diff(frames) == 1
    dt = np.diff(times)[:, None]
    vel = np.where(step[:, None, None], np.diff(rel, axis=0) / dt[..., None], np.nan)  # (F-1, 17, 2)
    speed = np.linalg.norm(vel, axis=-1)
    acc_ok = step[1:] & step[:-1]
    t_mid = (times[1:] + times[:-1]) / 2
    acc = np.linalg.norm(np.diff(vel, axis=0), axis=-1) / np.diff(t_mid)[:, None] if len(vel) > 1 else np.zeros((0, 17))
    acc = np.where(acc_ok[:, None], acc, np.nan) if len(vel) > 1 else acc
    return {"speed": speed, "acc": acc, "t": t_mid, "torso_px": torso_px}


def summarise_track(frames, times, xy, score, min_score: float = 0.2) -> dict:
    """The movement summary of one track (see the module doc)."""
    import warnings

    with warnings.catch_warnings():  # frames where no point scores are NaN by design (all-NaN slices)
        warnings.simplefilter("ignore", RuntimeWarning)
        return _summarise_track(frames, times, xy, score, min_score)


def _summarise_track(frames, times, xy, score, min_score: float) -> dict:
    frames, times = np.asarray(frames), np.asarray(times, np.float64)
    s = track_series(frames, times, xy, score, min_score)
    torso = s["torso_px"] if np.isfinite(s["torso_px"]) and s["torso_px"] > 0 else None
    limbs = {}
    for name, j in LIMBS.items():
        sp, ac = s["speed"][:, j], s["acc"][:, j]
        limbs[name] = {"speed_px_s": _stats(sp), "acceleration_px_s2": _stats(ac),
                       "speed_torso_s": _stats(sp / torso) if torso else None,
                       "acceleration_torso_s2": _stats(ac / torso) if torso else None}
    body = np.nanmean(s["speed"], axis=1) if s["speed"].size and np.isfinite(s["speed"]).any() else np.zeros(0)
    qom = {"mean_speed_px_s": _stats(body)}
    if torso:
        qom["mean_speed_torso_s"] = _stats(body / torso)
    symmetry = {}
    for part, (left, right) in PAIRS.items():
        a, b = s["speed"][:, LIMBS[left]], s["speed"][:, LIMBS[right]]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 3:
            symmetry[part] = None
            continue
        ma, mb = float(a[ok].mean()), float(b[ok].mean())
        corr = float(np.corrcoef(a[ok], b[ok])[0, 1]) if a[ok].std() > 0 and b[ok].std() > 0 else None
        symmetry[part] = {"left_mean_speed_px_s": round(ma, 4), "right_mean_speed_px_s": round(mb, 4),
                          "ratio": round(min(ma, mb) / max(ma, mb), 4) if max(ma, mb) > 0 else 1.0,
                          "speed_correlation": None if corr is None else round(corr, 4)}
    return {"frames": int(len(frames)), "first_frame": int(frames[0]), "last_frame": int(frames[-1]),
            "seconds": round(float(times[-1] - times[0]), 4), "torso_px": None if torso is None else round(torso, 3),
            "limbs": limbs, "quantity_of_motion": qom, "symmetry": symmetry}


def _by_track(records: list[dict]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for r in sorted(records, key=lambda r: (r["track_id"], r["frame"])):
        t = out.setdefault(r["track_id"], {"frames": [], "times": [], "kp": []})
        t["frames"].append(r["frame"]), t["times"].append(r["time_s"]), t["kp"].append(r["keypoints"])
    return out


def summarise(records: list[dict], info: dict, min_score: float = 0.2) -> dict:
    """Movement summary of every track of a video's records (dicts as in predict's JSON)."""
    tracks = {}
    for tid, t in _by_track(records).items():
        kp = np.asarray(t["kp"], np.float64)
        tracks[str(tid)] = summarise_track(t["frames"], t["times"], kp[..., :2], kp[..., 2], min_score)
    return {"version": VERSION, "video": info.get("video"), "fps": info.get("fps"), "frames": info.get("frames"),
            "min_score": min_score, "relative_to": "trunk centre (mean of shoulders and hips)",
            "limbs": {k: KEYPOINT_NAMES[j] for k, j in LIMBS.items()}, "tracks": tracks}


def plot(records: list[dict], min_score: float = 0.2) -> bytes:
    """One row per track: limb speeds over time (torso lengths/s, px/s without a torso) and
    their distributions (box plots), as PNG bytes."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracks = _by_track(records)
    shown = ["left_wrist", "right_wrist", "left_ankle", "right_ankle"]
    fig, axes = plt.subplots(max(1, len(tracks)), 2, figsize=(11, 2.8 * max(1, len(tracks))), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1]})
    for row, (tid, t) in zip(axes, tracks.items()):
        kp = np.asarray(t["kp"], np.float64)
        s = track_series(np.asarray(t["frames"]), np.asarray(t["times"], np.float64), kp[..., :2], kp[..., 2],
                         min_score)
        scale, unit = (s["torso_px"], "torso/s") if np.isfinite(s["torso_px"]) and s["torso_px"] > 0 else (1.0, "px/s")
        data = []
        for name in shown:
            v = s["speed"][:, LIMBS[name]] / scale
            row[0].plot(s["t"], v, lw=1, label=name.replace("_", " "))
            data.append(v[np.isfinite(v)])
        row[0].set_title(f"infant {tid}: limb speed relative to the trunk")
        row[0].set_xlabel("time (s)"), row[0].set_ylabel(unit)
        row[0].legend(fontsize=7, ncol=4, loc="upper right")
        row[1].boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
        row[1].set_xticks(range(1, len(shown) + 1), [n.replace("left_", "L ").replace("right_", "R ") for n in shown])
        row[1].set_ylabel(unit), row[1].tick_params(axis="x", labelsize=7)
    if not tracks:
        axes[0, 0].set_title("no infant found")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()
