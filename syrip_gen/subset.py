"""A seeded subset of a COCO keypoint set (or its complement): the renders-count learning curve
pretrains on subsets, and the 3D lifter is scored on renders it never saw.

The subset is written as a new COCO file whose ``file_name`` entries are absolute, so it can live in
its own step directory while the images stay where the render step wrote them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from syrip_gen.atomic import atomic_write_json
from syrip_gen.coco import load_coco
from syrip_gen.config import from_mapping
from syrip_gen.errors import UserError


@dataclass(frozen=True)
class SubsetConfig:
    images: int = field(default=0, metadata={"min": 0})  # how many images to keep (0: use ``fraction``)
    fraction: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})  # share kept when ``images`` is 0
    complement: bool = False   # keep the images the same draw leaves out instead
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "SubsetConfig":
        return from_mapping(cls, d, "subset config")


def chosen_ids(image_ids: list, cfg: SubsetConfig) -> set:
    """The image ids of the subset: a seeded permutation's first ``n`` (or all but those)."""
    n = cfg.images or max(1, round(cfg.fraction * len(image_ids)))
    if cfg.complement and not cfg.images:
        n = min(n, len(image_ids) - 1)  # a held-out part is never empty
    if not 0 < n <= len(image_ids):
        raise UserError(f"subset: asked for {n} of {len(image_ids)} images (set images or fraction)")
    order = np.random.default_rng(cfg.seed).permutation(len(image_ids))
    picked = {image_ids[i] for i in order[:n]}
    return set(image_ids) - picked if cfg.complement else picked


def write_subset(dataset: str | Path, out_dir: Path, cfg: SubsetConfig) -> dict:
    """Write ``<out_dir>/subset.json`` (COCO) and return a summary."""
    kf = load_coco(dataset)
    keep = chosen_ids(sorted(kf.images), cfg)
    image_dir = kf.image_dir().resolve()
    images = [{**im, "file_name": str(image_dir / im["file_name"])} for im in kf.data["images"] if im["id"] in keep]
    anns = [a for a in kf.data["annotations"] if a["image_id"] in keep]
    path = out_dir / "subset.json"
    atomic_write_json(path, {**kf.data, "images": images, "annotations": anns})
    return {"coco": str(path), "n_images": len(images), "n_annotations": len(anns), "of": len(kf.images)}
