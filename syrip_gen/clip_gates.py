"""Quality gates per clip: every frame goes through ``filter``'s gates, and a clip is kept or
dropped whole.

Why: a clip with one bad frame (a knee past its limit, the infant half out of the frame) still
teaches a tracker or smoother something wrong at that frame, and cutting the frame out breaks
the time axis; so the clip goes. The duplicate gate is left out: consecutive frames of a clip
are near-duplicates by design.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from syrip_gen.coco import filtered_name, load_coco, write_coco


def clip_filter_config(cfg=None):
    """``filter``'s config (default: the defaults) without the duplicate gate (frames of a clip are alike by design)."""
    from syrip_gen.filter import FilterConfig, without_duplicate_gate

    return without_duplicate_gate(cfg or FilterConfig())


def gate_clips(coco_path: str | Path, cfg=None, out_dir: str | Path | None = None, body=None) -> dict:
    """Gate every frame of the clips in ``coco_path`` (images carry ``clip_id``), keep whole clips
    whose frames all pass, write them to ``*_filtered_infant.json`` beside it. Returns
    ``{"coco_out", "report", "clips": {clip_id: {"kept", "frames", "rejected_frames", "reasons"}}}``."""
    from syrip_gen.filter import filter_dataset

    coco_path = Path(coco_path)
    out_dir = Path(out_dir) if out_dir else coco_path.parent.parent / "filter"
    report = filter_dataset(coco_path, clip_filter_config(cfg), out=out_dir / "frames_filtered.json",
                            out_dir=out_dir, body=body)
    coco = load_coco(coco_path)
    clip_of = {iid: img.get("clip_id") for iid, img in coco.images.items()}
    per: dict = defaultdict(lambda: {"frames": 0, "rejected_frames": 0, "reasons": Counter()})
    for v in report.images:
        c = per[clip_of.get(v["image_id"])]
        c["frames"] += 1
        if v["verdict"] != "accept":
            c["rejected_frames"] += 1
            c["reasons"].update(r["gate"] for r in v["reasons"])
    clips = {cid: {**c, "kept": c["rejected_frames"] == 0, "reasons": dict(c["reasons"])} for cid, c in per.items()}
    kept = {cid for cid, c in clips.items() if c["kept"]}
    images = [img for img in coco.images.values() if img.get("clip_id") in kept]
    ids = {img["id"] for img in images}
    anns = [a for a in coco.annotations if a["image_id"] in ids]
    extra = {k: v for k, v in coco.data.items() if k not in ("images", "annotations", "categories")}
    if isinstance(extra.get("videos"), list):
        extra["videos"] = [v for v in extra["videos"] if v.get("id") in kept]
    out = filtered_name(coco_path)
    write_coco(out, images, anns, **extra)
    return {"coco_out": str(out), "report": report.report, "clips": clips}
