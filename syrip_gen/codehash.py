"""The code hash: which sources each kind of stage runs, and one hash over them.

Why: a cached pipeline step and a render run must rerun when the code that shaped their output
changed, and only then (editing the renderer must not retrain a model). The pipeline's step key
and the render run key (``dataset.run_key``, recorded in ``run.json`` and the COCO ``info``) use
the same table and the same hash.
"""
from __future__ import annotations

import hashlib

from syrip_gen.paths import REPO_ROOT

# The sources each kind of step runs (paths under the repo): a change there reruns that kind.
_SHARED = ("syrip_gen/coco.py", "syrip_gen/errors.py", "syrip_gen/body", "syrip_gen/posture.py",
           "syrip_gen/geometry.py")
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "fit": _SHARED + ("syrip_gen/fit", "syrip_gen/fits.py", "assets/pose_prior.npz"),
    "learn_keypoints": _SHARED + ("syrip_gen/fit", "syrip_gen/fits.py", "assets/pose_prior.npz"),
    "backgrounds": ("syrip_gen/coco.py", "syrip_gen/errors.py", "syrip_gen/backgrounds.py"),
    "render": _SHARED + ("syrip_gen/render", "syrip_gen/annotate.py", "syrip_gen/dataset.py", "syrip_gen/fits.py",
                         "syrip_gen/drawing.py", "syrip_gen/fit/prior.py", "syrip_gen/fit/limits.py",
                         "assets/pose_prior.npz"),
    "sequence": _SHARED + ("syrip_gen/render", "syrip_gen/annotate.py", "syrip_gen/dataset.py", "syrip_gen/fits.py",
                           "syrip_gen/fit/prior.py", "syrip_gen/fit/limits.py", "syrip_gen/video.py",
                           "syrip_gen/clip_gates.py", "syrip_gen/filter.py", "syrip_gen/gates", "assets/pose_prior.npz"),
    "filter": _SHARED + ("syrip_gen/filter.py", "syrip_gen/gates", "syrip_gen/fit", "syrip_gen/fits.py",
                         "assets/pose_prior.npz"),
    "stats": _SHARED + ("syrip_gen/stats.py", "syrip_gen/coverage.py"),
    "train": ("syrip_gen/coco.py", "syrip_gen/errors.py", "pose_models"),
    "evaluate": ("syrip_gen/coco.py", "syrip_gen/errors.py", "pose_models"),
    "curve": ("syrip_gen/coco.py", "syrip_gen/errors.py", "pose_models"),
    "subset": ("syrip_gen/coco.py", "syrip_gen/errors.py", "syrip_gen/subset.py"),
}


def code_version(kind: str | None = None) -> str:
    """Hash of the sources a kind of step runs (all project sources when ``kind`` is None or
    unlisted)."""
    return source_hash(STAGE_CODE.get(kind) or ("syrip_gen", "pose_models"))


def source_hash(paths: tuple[str, ...]) -> str:
    """Hash of the files (or the ``*.py`` under the folders) at ``paths`` under the repo: each
    file's repo path and bytes, in path order."""
    h = hashlib.sha256()
    for rel in paths:
        root = REPO_ROOT / rel
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for f in files:
            if f.exists():
                h.update(f.relative_to(REPO_ROOT).as_posix().encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]
