"""The code hash: which sources each kind of stage runs, and one hash over them.

Why: a cached pipeline step and a render run must rerun when the code that shaped their output
changed, and only then (editing the renderer must not retrain a model). The pipeline's step key
and the render run key (``dataset.run_key``, recorded in ``run.json`` and the COCO ``info``) use
the same table (the stage registry, ``syrip_gen/stages.py``) and the same hash.
"""
from __future__ import annotations

import hashlib

from syrip_gen.paths import REPO_ROOT
from syrip_gen.stages import REGISTRY

# The sources each kind of step runs (paths under the repo): a change there reruns that kind.
# Declared with each stage in syrip_gen/stages.py.
STAGE_CODE: dict[str, tuple[str, ...]] = {kind: st.code for kind, st in REGISTRY.items()}


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
