"""Where the project keeps things: bundled assets, the body-model cache, the shared real data."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS = REPO_ROOT / "assets"
PIPELINES = REPO_ROOT / "pipelines"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")  # what OpenCV reads, commonest first


def cache_dir() -> Path:
    """Project-controlled cache (Anny's built model data lives here, reused by CI and the demo).

    ``SYRIP_GEN_CACHE`` overrides it; the default sits outside the clone so fresh clones reuse it.
    """
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "syrip-gen"
    path = Path(os.environ.get("SYRIP_GEN_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_syrip(split: str) -> Path:
    """The real SyRIP data beside the clone (``../shared/data/syrip/<split>``); may be absent."""
    root = Path(os.environ.get("SYRIP_DATA", REPO_ROOT.parent / "shared" / "data" / "syrip"))
    return root / split
