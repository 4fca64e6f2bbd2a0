"""The ablation part of the benchmark report (``pipelines/ablation.yaml``): rows over seeds as
mean ± spread, the detector -> 2D -> 3D chain, and the two learning curves (AP against pretraining
crops, AP against the number of renders).

Why its own module: the rows follow the spec's step names, so they change with the protocol and
not with the rest of the report. Every number is read from the run's files; a missing step shows
as "not run", never as a number.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from syrip_gen.coco import SYRIP_POSTURES as POSTURES

# label -> the evaluate steps whose metrics are the seeds of that row (ablation.yaml)
ROWS: list[tuple[str, tuple[str, ...]]] = [
    ("real only, fine-tuning budget", ("eval_real_s0", "eval_real_s1")),
    ("real only, pretraining + fine-tuning budget (control)", ("eval_real_long",)),
    ("synthetic only (the pretraining)", ("eval_synthetic",)),
    ("synthetic → real", ("eval_finetune_s0", "eval_finetune_s1")),
    ("synthetic → real + synthetic mixed", ("eval_mixed_s0", "eval_mixed_s1")),
    ("synthetic → real + synthetic, FiDIP DA", ("eval_fidip_s0", "eval_fidip_s1")),
    ("synthetic → real, detector boxes", ("eval_finetune_s0_detboxes", "eval_finetune_s1_detboxes")),
    ("real only control, detector boxes", ("eval_real_long_detboxes",)),
]
HEADLINE = "synthetic → real"
CONTROL = "real only, pretraining + fine-tuning budget (control)"
RENDER_CURVE = (("renders_10pc", "eval_pretrain_10pc"), ("renders_30pc", "eval_pretrain_30pc"),
                ("filter", "eval_pretrain_100pc"))


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fmt(x, digits=3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def over_seeds(runs: list[dict]) -> dict:
    """Mean and spread (population std: half the range for two seeds) of the headline metrics
    over the seeds that ran; ``n`` is how many did."""
    def stat(values):
        v = np.array([x for x in values if x is not None], dtype=float)
        return (float(v.mean()), float(v.std())) if len(v) else (None, None)

    out = {"n": len(runs)}
    for key, get in (("AP", lambda m: m["oks"]["AP"]), ("AP50", lambda m: m["oks"]["AP50"]),
                     ("AR", lambda m: m["oks"]["AR"]), ("pck@0.1", lambda m: m.get("pck@0.1"))):
        out[key], out[key + "_spread"] = stat([get(m) for m in runs])
    for p in POSTURES:
        out[f"AP {p}"], _ = stat([(m.get("per_posture") or {}).get(p, {}).get("AP") for m in runs])
    return out


def gather_rows(run_dir: Path) -> dict[str, dict | None]:
    """Label -> :func:`over_seeds` of the row's evaluations (None when none ran)."""
    rows = {}
    for label, steps in ROWS:
        runs = [m for m in (_read(run_dir / s / "metrics.json") for s in steps) if m]
        rows[label] = over_seeds(runs) if runs else None
    return rows


def rows_table(rows: dict[str, dict | None], mediapipe: dict | None) -> list[str]:
    head = ["model", "seeds", "AP", "AP50", "AR", "PCK@0.1"] + [f"AP {p}" for p in POSTURES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, r in rows.items():
        if not r:
            lines.append(f"| {label} | not run |" + " |" * (len(head) - 2))
            continue
        pm = [f"{_fmt(r[k])} ± {_fmt(r[k + '_spread'])}" if r["n"] > 1 else _fmt(r[k])
              for k in ("AP", "AP50", "AR", "pck@0.1")]
        lines.append(f"| {label} | {r['n']} | " + " | ".join(pm + [_fmt(r[f'AP {p}']) for p in POSTURES]) + " |")
    if mediapipe:
        pp = mediapipe.get("per_posture", {})
        cells = [mediapipe["oks"]["AP"], mediapipe["oks"]["AP50"], mediapipe["oks"]["AR"], mediapipe.get("pck@0.1")]
        cells += [pp.get(p, {}).get("AP") for p in POSTURES]
        lines.append("| MediaPipe Pose (adult, off the shelf, its own person detection) | – | "
                     + " | ".join(_fmt(c) for c in cells) + " |")
    return lines


def verdict_lines(rows: dict[str, dict | None], goal: float = 0.55, margin: float = 0.15) -> list[str]:
    """The issue's bar: synthetic -> real >= ``goal`` AP (mean over seeds) and >= ``margin`` over the control."""
    h, c = rows.get(HEADLINE), rows.get(CONTROL)
    if not h or not c:
        return ["Goal check: the headline or the control row did not run.", ""]
    gain = h["AP"] - c["AP"]
    ok = h["AP"] >= goal and gain >= margin
    return [f"Goal (synthetic → real ≥ {goal} AP and ≥ {margin} over the control): synthetic → real "
            f"{h['AP']:.3f}, control {c['AP']:.3f}, gain {gain:+.3f} — **{'met' if ok else 'not met'}**"
            + ("" if ok else f" (short by {max(0.0, goal - h['AP']):.3f} AP and {max(0.0, margin - gain):.3f} gain)")
            + ".", ""]


def chain(run_dir: Path) -> dict:
    """The detector -> 2D -> 3D numbers: box AP, 2D AP with detector boxes (mean over seeds), the
    lifter's MPJPE / PA-MPJPE on held-out renders (None where a step did not run)."""
    det = _read(run_dir / "eval_detector" / "metrics.json") or {}
    two = [m for m in (_read(run_dir / s / "metrics.json") for s in dict(ROWS)["synthetic → real, detector boxes"]) if m]
    lift = _read(run_dir / "eval_lifter" / "metrics.json") or {}
    return {"detector_box_AP": det.get("bbox", {}).get("AP"), "pose2d_AP_detector_boxes": over_seeds(two)["AP"] if two else None,
            "lifter_mpjpe_mm": lift.get("mpjpe_mm"), "lifter_pa_mpjpe_mm": lift.get("pa_mpjpe_mm")}


def chain_lines(c: dict) -> list[str]:
    cells = [_fmt(c["detector_box_AP"]), _fmt(c["pose2d_AP_detector_boxes"]), _fmt(c["lifter_mpjpe_mm"], 1),
             _fmt(c["lifter_pa_mpjpe_mm"], 1)]
    return ["| detector box AP (real test) | 2D AP, detector boxes (real test) | 3D MPJPE mm (held-out renders) "
            "| 3D PA-MPJPE mm |", "|---|---|---|---|", "| " + " | ".join(cells) + " |", "",
            "The lifter is scored on renders it never saw (the real sets have no 3D ground truth), "
            "from their ground-truth 2D keypoints.", ""]


def curves(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """(AP along the pretraining, AP against the number of renders): the rows the run wrote."""
    along = _read(run_dir / "curve_pretrain" / "curve.json") or []
    by_renders = []
    for data_step, eval_step in RENDER_CURVE:
        meta = (_read(run_dir / data_step / "step.json") or {}).get("summary") or {}
        n = meta.get("n_images", meta.get("n_kept"))
        m = _read(run_dir / eval_step / "metrics.json")
        if n and m:
            by_renders.append({"renders": n, "AP": m["oks"]["AP"], "AP50": m["oks"]["AP50"],
                               "pck@0.1": m.get("pck@0.1")})
    return along, by_renders


def _curve_table(rows: list[dict], keys: tuple[str, ...], missing: str) -> list[str]:
    """A markdown table: the ``keys`` columns as they are, then AP, AP50, PCK@0.1."""
    if not rows:
        return [f"not run ({missing})."]
    head = [*keys, "AP", "AP50", "PCK@0.1"]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join([str(r[k]) for k in keys] + [_fmt(r[k]) for k in ("AP", "AP50", "pck@0.1")]) + " |"
        for r in rows]


def curve_lines(along: list[dict], by_renders: list[dict], png: Path) -> list[str]:
    lines = ["Synthetic-only AP on the real test set along the pretraining (its kept checkpoints):", ""]
    lines += _curve_table(along, ("step", "crops"), "`curve_pretrain`")
    lines += ["", "Synthetic-only AP after the same short pretraining on subsets of the renders:", ""]
    lines += _curve_table(by_renders, ("renders",), "`pretrain_10pc` ... `pretrain_100pc`")
    if along or by_renders:
        plot_curves(along, by_renders, png)
        lines += ["", f"![learning curves]({png.name})"]
    return lines + [""]


def plot_curves(along: list[dict], by_renders: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    if along:
        a.plot([r["crops"] for r in along], [r["AP"] for r in along], "o-")
    a.set_xlabel("pretraining crops")
    a.set_ylabel("synthetic-only AP, real test set")
    if by_renders:
        b.plot([r["renders"] for r in by_renders], [r["AP"] for r in by_renders], "o-")
        b.set_xscale("log")
    b.set_xlabel("renders (same short pretraining)")
    b.set_ylabel("synthetic-only AP, real test set")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_rows(rows: dict[str, dict | None], mediapipe: dict | None, path: Path) -> None:
    """AP per row with the seeds' spread as error bars, MediaPipe as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k, v in rows.items() if v]
    if not names:
        return
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.barh(range(len(names)), [rows[n]["AP"] for n in names], xerr=[rows[n]["AP_spread"] for n in names])
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    if mediapipe:
        ax.axvline(mediapipe["oks"]["AP"], color="red", linestyle="--", label="MediaPipe Pose")
        ax.legend(fontsize=8)
    ax.set_xlabel("OKS AP on the real test set (mean ± spread over seeds)")
    ax.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def ablation_section(run_dir: Path, mediapipe: dict | None, out_dir: Path) -> tuple[list[str], dict]:
    """The markdown lines and the JSON record of the ablation section."""
    rows = gather_rows(run_dir)
    along, by_renders = curves(run_dir)
    plot_rows(rows, mediapipe, out_dir / "report_ablation.png")
    md = rows_table(rows, mediapipe) + [""] + verdict_lines(rows)
    md += ["![AP per row](report_ablation.png)", "", "### The whole model: detector → 2D → 3D", ""]
    whole = chain(run_dir)
    md += chain_lines(whole)
    md += ["### Learning curves", ""] + curve_lines(along, by_renders, out_dir / "report_curves.png")
    return md, {"rows": rows, "chain": whole, "curve_pretraining": along, "curve_renders": by_renders,
                "mediapipe": mediapipe}
