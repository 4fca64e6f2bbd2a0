"""What pipeline steps read from each other's folders: a step's dataset, a train step's model,
and the small helpers every stage's pipeline face shares (stage-agnostic; no NumPy, no torch).

Why: the runner (``syrip_gen/pipeline.py``) and the stages' pipeline faces (``syrip_gen/steps.py``,
``pose_models/steps.py``) both need them; here neither imports the other.
"""
from __future__ import annotations

import json
from pathlib import Path

from syrip_gen.errors import UserError

MANIFEST = "step.json"
MODEL_ROLES = ("model", "detector", "init")  # inputs that are a trained model: a checkpoint, a train step or folder


def need(inputs: dict[str, Path], role: str, kind: str) -> Path:
    if role not in inputs:
        raise UserError(f"a {kind} step needs inputs.{role}")
    return inputs[role]


def keypoints_input(inputs: dict[str, Path]) -> str | None:
    """Optional input ``keypoints``: a learn_keypoints step (or a keypoints.npz) -> its file;
    None when that step refused to write one (the body's own keypoints then)."""
    if "keypoints" not in inputs:
        return None
    path = inputs["keypoints"]
    if path.is_dir():
        path = path / "keypoints.npz"
        return str(path) if path.is_file() else None
    return str(path)


def with_keypoints_input(config: dict, inputs: dict[str, Path]) -> dict:
    """A step's ``config`` with the optional input ``keypoints`` as its ``body.keypoints`` (a
    flat ``body: smil`` of an older spec becomes ``body: {name: smil}``)."""
    path = keypoints_input(inputs)
    if path is None:
        return config
    body = config.get("body")
    body = dict(body) if isinstance(body, dict) else ({} if body is None else {"name": body})
    return {**config, "body": {**body, "keypoints": path}}


def checkpoint_of(path: Path) -> Path:
    """A train step's output dir -> the final checkpoint its manifest names; a ``train --out``
    folder -> its last checkpoint (issue 34, C51); a file as is. One-line UserError for a folder
    that is neither."""
    if not path.is_dir():
        return path
    if (path / MANIFEST).is_file():
        return Path(json.loads((path / MANIFEST).read_text())["summary"]["checkpoint"])
    found = sorted((path / "checkpoints").glob("step_*.pt"))
    if not found:
        raise UserError(f"{path}: a folder with no checkpoints (checkpoints/step_*.pt); give a checkpoint file, "
                        "the --out folder of `syrip-gen train` or a train step")
    return found[-1]


def dataset_of(path: Path) -> Path:
    """A filter step's output points at the filtered COCO file it wrote, a subset step's holds
    ``subset.json``; else the path itself."""
    manifest = path / "filtered.json"
    if manifest.exists():
        return Path(json.loads(manifest.read_text())["coco"])
    if (path / "subset.json").exists():
        return path / "subset.json"
    return path


def as_dict(obj) -> dict:
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return json.loads(json.dumps(dataclasses.asdict(obj), default=str))
    return dict(obj or {})
