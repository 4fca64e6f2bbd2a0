"""Benchmark: does the shipped, render-pretrained model help a user with a few hundred real infants? (issue 31)

Rows, each a metrics JSON written by ``syrip-gen evaluate`` or a pipeline evaluate step (validate100, GT boxes,
flip test) and the CPU-minutes the row cost the *user* (wall time x threads of their own training; the shipped
pretraining is paid once by the project and listed in the model card):

    python benchmarks/shipped_gain.py --row "real only, from scratch (900 steps)=runs/control/m.json:21" \
        --row "shipped, zero-shot=runs/evals/zero.json:0" ... [--mediapipe 0.624] [--note TEXT]

Writes ``benchmarks/results/shipped_gain.{json,md}``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syrip_gen.hardware import describe, git_commit, write_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--row", action="append", required=True, metavar="LABEL=METRICS.json:CPU_MIN")
    p.add_argument("--mediapipe", type=float, help="MediaPipe BlazePose AP on the same set (recorded elsewhere)")
    p.add_argument("--note", action="append", default=[])
    args = p.parse_args()
    rows = []
    for item in args.row:
        label, _, rest = item.partition("=")
        path, _, minutes = rest.rpartition(":")
        m = json.loads(Path(path).read_text())
        rows.append({"row": label, "metrics": path, "cpu_min": float(minutes), "AP": m["oks"]["AP"],
                     "AP50": m["oks"]["AP50"], "pck@0.1": m.get("pck@0.1"), "data": m.get("data")})
    meta = {"command": "python benchmarks/shipped_gain.py " + " ".join(f"'{a}'" for a in sys.argv[1:]),
            "commit": git_commit(RESULTS.parent.parent), "date": datetime.date.today().isoformat(),
            "hardware": describe()}
    md = ["# Does the synthetic data help? The shipped model on real infants (validate100)", "",
          *(f"- {k}: {v}" for k, v in meta.items()), "",
          "| row | AP | AP50 | PCK@0.1 | user's CPU-minutes |", "|---|---|---|---|---|"]
    md += [f"| {r['row']} | {r['AP']:.3f} | {r['AP50']:.3f} | {r['pck@0.1']:.3f} | {r['cpu_min']:.0f} |" for r in rows]
    if args.mediapipe is not None:
        md.append(f"| MediaPipe BlazePose (adult, off the shelf; recorded in report.md) | {args.mediapipe:.3f} | | | 0 |")
    md += ["", *(f"- {n}" for n in args.note)]
    write_results(RESULTS / "shipped_gain", {**meta, "rows": rows, "mediapipe_AP": args.mediapipe, "notes": args.note},
                  "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
