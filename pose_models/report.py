"""The benchmark report: one page that gathers the measured numbers.

Reads the result files the benchmark scripts write (``benchmarks/results/*.json``), the
ablation run's evaluations (``runs/ablation/eval_*/metrics.json``) and the MediaPipe
baseline's predictions (``runs/mediapipe/validate100.json``: predictions on the research-only
photos stay in the run folder, never in the repository), scores the baseline with the same
code as our models, and writes ``report.md`` + ``report.json`` + an AP-per-posture plot.
Numbers it cannot find are shown as missing, never invented; but a file that is there and
cannot be read (truncated, not JSON) is an error, not "not measured"; the command refuses a
``--results`` folder that is missing, or that holds no result file when ``--out`` has a
report, before the recorded report is replaced by an empty one (:func:`check_inputs`; issue
34, C55-C58).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from pose_models.ablation_report import ROWS, ablation_section
from syrip_gen.atomic import atomic_write_bytes, atomic_write_json
from syrip_gen.errors import UserError
from syrip_gen.fits import read_records
from syrip_gen.hardware import describe as hardware



@dataclass(frozen=True)
class ReportConfig:
    results_dir: Path = Path("benchmarks/results")
    ablation_dir: Path = Path("runs/ablation")
    test_set: Path | None = None  # real test set for scoring the MediaPipe baseline
    out_dir: Path = Path("benchmarks/results")
    # MediaPipe's predictions on the test set (benchmarks/baselines/mediapipe_predict.py --out)
    mediapipe_predictions: Path = Path("runs/mediapipe/validate100.json")


MEDIAPIPE_COMMAND = ".venv-mediapipe/bin/python benchmarks/baselines/mediapipe_predict.py {test} --out {out}"


def score_mediapipe(pred_file: Path, test_set: Path) -> dict | None:
    """AP/PCK of the MediaPipe predictions, scored exactly like our models (GT boxes)."""
    if not pred_file.exists() or not test_set.exists():
        return None
    from pose_models.metrics import keypoint_report, sanitise_areas
    from syrip_gen.coco import load_coco

    pred = _read(pred_file, "--mediapipe")
    if not isinstance(pred, dict) or not isinstance(pred.get("results"), list):
        raise UserError(f"--mediapipe {pred_file}: not MediaPipe predictions (a JSON object with a 'results' list, "
                        "from benchmarks/baselines/mediapipe_predict.py)")
    kf = load_coco(test_set)
    gt, _ = sanitise_areas(kf.data)
    by_image = {r["image_id"]: r for r in pred["results"]}
    anns = kf.annotations
    xy = np.full((len(anns), 17, 2), 1e9)  # a missed person counts as wrong everywhere
    for i, ann in enumerate(anns):
        if ann["image_id"] in by_image:
            xy[i] = np.asarray(by_image[ann["image_id"]]["keypoints"]).reshape(17, 3)[:, :2]
    gt_kps = np.stack([kf.keypoints(a) for a in anns])
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float64)
    postures = [(kf.images[a["image_id"]].get("posture") or "unknown").lower() for a in anns]
    out = keypoint_report(gt, pred["results"], xy, gt_kps, boxes, postures)
    out.update(model=pred.get("model"), protocol=pred.get("protocol"), missed=pred.get("missed"))
    return out


def mediapipe_lines(pred_file: Path, test_set: Path, scored: dict | None) -> list[str]:
    """Where the MediaPipe row came from, or why it is absent (and how to make it)."""
    if scored is not None:
        return [f"MediaPipe Pose: {scored.get('model')}, {scored.get('protocol')}, predictions from `{pred_file}`.", ""]
    if not test_set.exists():
        return [f"MediaPipe Pose: not scored, the real test set is not at `{test_set}`.", ""]
    return [f"MediaPipe Pose: not scored, no predictions at `{pred_file}`. They are predictions on the "
            "research-only photos, so they are made into the run folder, never the repository: `"
            + MEDIAPIPE_COMMAND.format(test=test_set, out=pred_file) + "` (`bash scripts/setup_mediapipe.sh` "
            "makes `.venv-mediapipe`), or `syrip-gen benchmark --mediapipe PATH` for another file.", ""]


RESULTS = ("body_forward", "fit_real", "render_core", "render_pipeline", "pose2d_real", "ablation_run", "fit3d",
           "poses_real", "shipped_gain")  # benchmarks/results/<name>.json, written by the benchmark scripts


def _read(path: Path, what: str = "") -> dict | None:
    """A JSON file's content; None when there is no such file (not measured); a one-line
    UserError when it is there but unreadable (truncated, not JSON): never "not measured"."""
    where = f"{what} {path}" if what else str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise UserError(f"{where}: cannot read it ({err.strerror})") from None
    try:
        return json.loads(data)
    except ValueError as err:  # JSONDecodeError, or bytes that are not text
        why = f"{err.msg} at line {err.lineno}" if isinstance(err, json.JSONDecodeError) else "not text"
        raise UserError(f"{where}: not valid JSON ({why}; truncated?); rerun what writes it, or remove it") from None


def check_inputs(cfg: "ReportConfig") -> None:
    """What ``syrip-gen benchmark`` checks before any work: ``--results`` names a folder (a typo
    used to replace the recorded report by an empty one), and one holding no result file does
    not replace a report already in ``--out``; ``--out`` is a writable folder."""
    from syrip_gen.runfolder import check_writable

    res, out = Path(cfg.results_dir), Path(cfg.out_dir)
    if not res.is_dir():
        raise UserError(f"--results {res}: no such folder (the benchmark scripts write into benchmarks/results)")
    check_writable(out, "--out")
    if not any((res / f"{name}.json").is_file() for name in RESULTS) and (out / "report.md").exists():
        raise UserError(f"--results {res} holds none of the result files ({', '.join(n + '.json' for n in RESULTS)}); "
                        f"refusing to replace {out / 'report.md'} by a report without them")


def _fmt(x, digits=3) -> str:
    return "–" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def run_steps(ablation_dir: Path) -> dict[str, dict | None]:
    """The ablation run's step manifests, by step name."""
    return {p.parent.name: _read(p) for p in sorted(ablation_dir.glob("*/step.json"))}


def ablation_run_lines(ablation_dir: Path, steps: dict[str, dict | None]) -> list[str]:
    """What the ablation run did, read from its step manifests (synthetic set size, train time)."""
    if not steps:
        return ["No ablation run found (`syrip-gen pipeline run pipelines/ablation.yaml`).", ""]
    lines = [f"From `{ablation_dir}` (`pipelines/ablation.yaml`):"]
    render = (steps.get("render") or {}).get("summary", {})
    filt = (steps.get("filter") or {}).get("summary", {})
    if render:
        lines.append(f"- synthetic set: {render.get('images')} images rendered from "
                     f"{render.get('fits_used')} fits of the real train skeletons, "
                     f"{filt.get('n_kept', '?')} kept by `filter` (rejected: {filt.get('failed', {})})")
    for name, meta in steps.items():
        if meta and meta.get("kind") == "train":
            cfg = meta.get("config", {})
            init = (meta.get("inputs") or {}).get("init")
            start = f", starting from `{Path(init).name}`" if init else ""
            lines.append(f"- {name}: {cfg.get('max_steps')} steps x {cfg.get('batch_size')} crops{start}, "
                         f"{meta.get('seconds', 0) / 60:.1f} min")
    return lines + [""]


def speed_lines(found: dict[str, dict | None], steps: dict[str, dict | None]) -> list[str]:
    """Fits/s, images/s and training crops/s: the quiet-machine benchmarks and the ablation run's
    own stages (which shared the CPU with nothing but themselves)."""
    fit_b = ((found.get("fit_real") or {}).get("real") or {}).get("train200") or {}
    ren_b = (found.get("render_pipeline") or {}).get("main") or {}
    fit_s = ((steps.get("fit") or {}).get("summary") or {})
    ren_s = ((steps.get("render") or {}).get("summary") or {})
    ren_c = ((steps.get("render") or {}).get("config") or {})
    gpu = (found.get("render_pipeline") or {}).get("gpu") or "not measured"
    rows = [("fit, real train skeletons (benchmarks/fit_real.py)", fit_b.get("fits_per_second"), "fits/s"),
            ("fit, the ablation run's `fit` step", fit_s.get("fits_per_second") or None, "fits/s"),
            ("render 640x480, steady (benchmarks/render_pipeline.py)", ren_b.get("images_per_s_steady"), "images/s"),
            (f"render {ren_c.get('width', 640)}x{ren_c.get('height', 480)}, the ablation run's `render` step",
             ren_s.get("images_per_s"), "images/s")]
    for name, meta in steps.items():
        if meta and meta.get("kind") == "train" and meta.get("seconds"):
            cfg = meta.get("config", {})
            crops = (cfg.get("max_steps") or 0) * (cfg.get("batch_size") or 0)
            rows.append((f"train, the ablation run's `{name}`", crops / meta["seconds"], "crops/s"))
    lines = ["| what | CPU | unit |", "|---|---|---|"]
    lines += [f"| {what} | {_fmt(v, 1) if isinstance(v, float) else _fmt(v)} | {unit} |" for what, v, unit in rows]
    return lines + ["", f"GPU: {gpu}.", ""]


def fit_error_lines(ablation_dir: Path, png: Path) -> list[str]:
    """Distribution of the per-skeleton fit error of the ablation run's fit (real train skeletons):
    percentiles and a histogram."""
    path = ablation_dir / "fit" / "fits.jsonl"
    if not path.exists():
        return ["No fits found (the ablation run's `fit` step).", ""]
    fits = read_records(path, bad={})
    errs = np.array([f.mean_error_norm for f in fits if f.mean_error_norm is not None]) * 100
    if not len(errs):
        return ["The fits hold no errors.", ""]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(errs, bins=np.arange(0, max(12.0, errs.max()) + 0.5, 0.5))
    ax.axvline(5, color="red", linestyle="--", label="5 %")
    ax.set_xlabel("mean 2D keypoint error, % of the keypoint-box diagonal")
    ax.set_ylabel("skeletons")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    p50, p90, p95 = np.percentile(errs, [50, 90, 95])
    return [f"{len(errs)} skeletons (`{path}`): median {p50:.2f} %, p90 {p90:.2f} %, p95 {p95:.2f} %, "
            f"{np.mean(errs <= 2):.1%} within 2 %, {np.mean(errs <= 5):.1%} within 5 % of the box diagonal.", "",
            f"![fit errors]({png.name})", ""]


def coverage_lines(ablation_dir: Path) -> list[str]:
    """Pose coverage of the real train set by the synthetic set (the run's `stats` step)."""
    stats = _read(ablation_dir / "stats" / "stats.json") or {}
    c = stats.get("coverage")
    if not c:
        return ["No coverage found (the ablation run's `stats` step).", ""]
    at = ", ".join(f"{v:.2f} at {k}" for k, v in c.get("coverage_at", {}).items())
    return [f"Share of the {c['n_other_poses']} real train poses with a synthetic pose within {c['tau']} torso "
            f"lengths (torso-normalised 2D keypoints): **{c['coverage']:.3f}** ({at}); share of the "
            f"{c['n_dataset_poses']} synthetic poses near a real one: {c['precision']:.3f}. "
            f"Median nearest-neighbour distance real -> synthetic {c['median_nn_other_to_dataset']:.3f}.", ""] + \
        knn_lines(c)


def knn_lines(c: dict) -> list[str]:
    """The k-NN precision/recall lines of a stats.json ``coverage`` record (and its ceiling)."""
    out = []
    for key, what in (("knn", "synthetic"), ("ceiling", "real-vs-real ceiling")):
        k = c.get(key)
        if k:
            out += [f"k-NN (k = {k['k']}, 12 torso-normalised limb vectors) {what}: {k['generated']} "
                    f"({k['n_generated']} skeletons) vs {k['real']} ({k['n_real']}): precision "
                    f"**{k['precision']:.3f}**, recall **{k['recall']:.3f}**.", ""]
    return out


def real_pose_lines(found: dict) -> list[str]:
    """Rendered poses against real infants (benchmarks/poses_real.py) and 3D against SyRIP's
    corrected 3D (benchmarks/fit3d.py), from their result files."""
    out = []
    pr = (found.get("poses_real") or {}).get("settings", {})
    for name, v in pr.items():
        f, c = v["knn_filtered"], v["ceiling"]
        if f is None:  # a keypoints-only row: no images, no filter
            a = v["knn_all"]
            out.append(f"- `{name}` ({v['images']} variants' projected keypoints, not filtered): precision "
                       f"{a['precision']:.3f}, recall {a['recall']:.3f}.")
            continue
        worst = max(v["filter"]["failed_share"].items(), key=lambda kv: kv[1], default=("none", 0.0))
        out.append(f"- `{name}` ({v['images']} renders of the train200 fits): after `filter`, precision "
                   f"**{f['precision']:.3f}**, recall **{f['recall']:.3f}** against validate100 (real-vs-real ceiling "
                   f"{c['precision']:.3f} / {c['recall']:.3f}); filter kept {1 - v['filter']['rejected_share']:.1%}, "
                   f"worst gate {worst[0]} {worst[1]:.1%}.")
    f3 = (found.get("fit3d") or {}).get("splits", {})
    for split, v in f3.items():
        if not isinstance(v, dict):
            continue
        lifter = v.get("lifter") or {}
        lift = f", lifter from GT 2D {lifter['limb_error_mean']:.3f}" if lifter.get("n") else ""
        out.append(f"- 3D on {split} (mean joint error in limb lengths after similarity alignment, corrected 3D): "
                   f"fits **{v['fit']['mean']:.3f}**{lift}, average pose {v['average_pose']['mean']:.3f}, "
                   f"zero depth {v['zero_depth_2d']['mean']:.3f}.")
    return (out or ["No poses_real / fit3d results (benchmarks/poses_real.py, benchmarks/fit3d.py)."]) + [""]


def shipped_lines(found: dict) -> list[str]:
    """The shipped models' rows (benchmarks/shipped_gain.py): zero-shot, fine-tuned with the
    user's recipe, and the real-only control, each with its CPU cost and its metrics file."""
    g = found.get("shipped_gain")
    if not g or not g.get("rows"):
        return ["No shipped-model results (benchmarks/shipped_gain.py).", ""]
    lines = [f"Measured {g.get('date')} at commit {g.get('commit')} on {g.get('hardware')}; MediaPipe "
             f"{_fmt(g.get('mediapipe_AP'))}.", "", "| setting | AP | AP50 | PCK@0.1 | user CPU-min |", "|---|---|---|---|---|"]
    lines += [f"| {r['row']} | {_fmt(r.get('AP'))} | {_fmt(r.get('AP50'))} | {_fmt(r.get('pck@0.1'))} | "
              f"{_fmt(r.get('cpu_min'), 1)} |" for r in g["rows"]]
    return lines + [""] + [f"- {n}" for n in g.get("notes", [])] + ["", "Details: [shipped_gain](shipped_gain.md).", ""]


def write_report(cfg: ReportConfig) -> Path:
    """Gather, score and write ``report.md`` / ``report.json``; returns the markdown path."""
    from syrip_gen.runfolder import check_writable

    check_writable(cfg.out_dir, "--out")
    res = Path(cfg.results_dir)
    steps = run_steps(Path(cfg.ablation_dir))
    ablation_meta = {step: steps.get(step) for _, names in ROWS for step in names}
    from syrip_gen.paths import shared_syrip

    test_set = cfg.test_set or shared_syrip("validate100")
    mp = score_mediapipe(Path(cfg.mediapipe_predictions), test_set)
    found = {name: _read(res / f"{name}.json", "--results") for name in RESULTS}
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ablation_md, ablation = ablation_section(Path(cfg.ablation_dir), mp, out)
    md = [f"# syrip-gen benchmark report ({date.today().isoformat()})", "",
          f"Hardware of this report's run: {hardware()}.", "",
          "Per-benchmark details (each states its own hardware, date and method):", ""]
    for name, data in found.items():
        if data is not None and (res / f"{name}.md").exists():
            md.append(f"- [{name}]({name}.md)")
    md += ["", "## Speed", ""] + speed_lines(found, steps)
    md += ["## Fit error on the real train skeletons", ""]
    md += fit_error_lines(Path(cfg.ablation_dir), out / "report_fit_errors.png")
    md += ["## Pose coverage of the real train set by the synthetic set", ""] + coverage_lines(Path(cfg.ablation_dir))
    md += ["## Poses near real infants, and 3D on real infants", ""] + real_pose_lines(found)
    md += ["## Does the synthetic data help? (real test set, flip test; GT boxes unless named)", ""]
    md += ablation_run_lines(Path(cfg.ablation_dir), steps)
    md += mediapipe_lines(Path(cfg.mediapipe_predictions), Path(test_set), mp)
    md += ablation_md
    md += ["## The shipped models on real infants (validate100, GT boxes, flip test)", ""] + shipped_lines(found)
    atomic_write_json(out / "report.json", {"ablation": ablation, "ablation_steps": ablation_meta,
                                            "benchmarks": found, "hardware": hardware()})
    path = out / "report.md"
    atomic_write_bytes(path, ("\n".join(md) + "\n").encode())
    return path
