"""The one-shot GPU run of the scaled ablation (issue 15): ``pipelines/ablation.yaml --profile gpu`` on the
downscaled real sets in ``gpu_bundle/real``, then one JSON of results. Called by scripts/gpu_ablation.sh,
which installs the carried wheels and restores the body first.

``--dry``: the same driver on the CPU at toy size (``--profile toy``, drawn stand-ins for the real sets,
no bundle needed), so a test proves the driver, the spec and the results file end to end. ``--dry --real``:
the same on the real sets at the spec's own paths, so the tests' one toy run of the ablation
(``tests/conftest.py``) also checks what only real photos exercise (learned keypoints, photo textures).

The results file is rewritten after every step, so a run stopped at the machine's time limit still
returns what finished.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from syrip_gen import pipeline  # noqa: E402
from pose_models.ablation_report import chain, curves, gather_rows, verdict_lines  # noqa: E402
from syrip_gen.atomic import atomic_write_json  # noqa: E402

SPEC = REPO / "pipelines" / "ablation.yaml"
REAL = {"train": "../shared/data/syrip/train200", "test": "../shared/data/syrip/validate100"}


def hardware() -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"gpu": gpu, "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda if gpu else None}


def commit(bundle: Path | None) -> str | None:
    """The repo's HEAD, or where the tree travelled without .git, the one the bundle was prepared at."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        noted = bundle / "commit.txt" if bundle else None
        return f"{noted.read_text().strip()} (bundle)" if noted and noted.exists() else None


def results(run_dir: Path, steps: dict, meta: dict) -> dict:
    """Everything the report needs from this run, in one JSON-ready dict."""
    rows = gather_rows(run_dir)
    along, by_renders = curves(run_dir)
    return {**meta, "steps": steps, "rows": rows, "goal": verdict_lines(rows)[0], "chain": chain(run_dir),
            "curve_pretraining": along, "curve_renders": by_renders}


def stand_ins(root: Path) -> dict[str, str]:
    """Drawn stick-figure sets in place of the real ones (no licensed data in a dry run)."""
    from pose_models.synthetic import make_dataset

    return {REAL["train"]: str(make_dataset(root / "real_train", n=12, width=192, height=256, seed=1)),
            REAL["test"]: str(make_dataset(root / "real_test", n=8, width=192, height=256, seed=2))}


def real_sets() -> dict[str, str]:
    """No replacement: the spec's own real-set paths, which must exist."""
    missing = [p for p in REAL.values() if not (REPO / p).exists()]
    if missing:
        raise SystemExit(f"{missing[0]} missing (relative to {REPO}): --real needs the real sets there")
    return {}


def run(args) -> dict:
    t0 = time.time()
    out = Path(args.out)
    bundle = None if args.dry else Path(args.bundle)
    if args.dry:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the dry run is a CPU run wherever it runs
        data = real_sets() if args.real else stand_ins(out / "stand_ins")
        profile = "toy"
    else:
        data = {REAL["train"]: str(bundle / "real" / "train200"), REAL["test"]: str(bundle / "real" / "validate100")}
        missing = [p for p in data.values() if not Path(p).exists()]
        if missing:
            raise SystemExit(f"{missing[0]} missing: run `python scripts/gpu_bundle.py prepare` first")
        profile = "gpu"
    spec = pipeline.load_spec(SPEC, out=out / "run", profile=profile,
                              input_overrides=pipeline.inputs_replacing(SPEC, data))
    meta = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "profile": profile, "commit": commit(bundle),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "hardware": hardware()}
    result_path = Path(args.results)
    # the device machine returns what is under $OUT, also when the run is stopped at its time limit
    copies = [result_path] + ([Path(os.environ["OUT"]) / "gpu_ablation_results.json"] if os.environ.get("OUT") else [])
    steps: dict[str, dict] = {}

    def write(obj: dict) -> None:
        for path in copies:
            atomic_write_json(path, obj)

    def progress(line: str) -> None:  # rewrite the results after every finished step
        print(line, flush=True)
        for name in (s.name for s in spec.steps):
            manifest = spec.out / name / pipeline.MANIFEST
            if name not in steps and manifest.exists():
                m = json.loads(manifest.read_text())
                steps[name] = {"seconds": m.get("seconds"), "kind": m.get("kind")}
        write(results(spec.out, steps, {**meta, "seconds": round(time.time() - t0, 1)}))

    records = pipeline.run(spec, keep_going=True, echo=progress)
    failed = {r["name"]: r["status"] for r in records if r["status"].startswith(("failed", "blocked"))}
    final = results(spec.out, steps, {**meta, "seconds": round(time.time() - t0, 1), "failed": failed})
    write(final)
    print(f"results: {result_path} ({final['seconds']:.0f} s); {final['goal']}")
    return final


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry", action="store_true", help="CPU, toy sizes, drawn stand-in data (a test runs this)")
    p.add_argument("--real", action="store_true", help="with --dry: the real sets at the spec's paths, not stand-ins")
    p.add_argument("--bundle", default=str(REPO / "gpu_bundle"), help="what scripts/gpu_bundle.py prepared")
    p.add_argument("--out", default=str(REPO / "runs" / "gpu_ablation"), help="run directory")
    p.add_argument("--results", default=None, help="the results JSON (default: OUT/results.json)")
    args = p.parse_args(argv)
    args.results = args.results or str(Path(args.out) / "results.json")
    final = run(args)
    return 1 if final.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
