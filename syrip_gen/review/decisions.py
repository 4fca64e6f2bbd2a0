"""The reviewers' decisions file ``DATASET/review/decisions.json``: read, and merge one decision.

Why: decisions are saved as they are made, possibly by two reviewers (two browsers, two
servers) at once. Every write takes an exclusive lock (``decisions.json.lock``), re-reads the
file, changes one image's entry and replaces the file atomically (temp + rename): the file
always parses, the last write wins per image, and everybody else's decisions are kept.
A malformed file is never overwritten: we stop with a message instead.

Format: ``{"version": 1, "decisions": {"<image id>": {"decision": "accept" | "reject",
"file_name": ..., "reviewer": ..., "time": <unix seconds>}}}``.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import time
from pathlib import Path

from syrip_gen.atomic import atomic_write_json
from syrip_gen.errors import UserError

DECISIONS = ("accept", "reject")
VERSION = 1


def decisions_path(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / "review" / "decisions.json"


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load_decisions(path: str | Path) -> dict[str, dict]:
    """Image id (string) -> decision record; ``{}`` when the file does not exist yet.
    A malformed file raises UserError naming it (it is left untouched)."""
    path = Path(path)
    if not path.exists():
        return {}
    fix = "fix it by hand or move it aside (it is never overwritten)"
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: malformed review decisions file ({err}); {fix}") from None
    if not isinstance(data, dict) or not isinstance(data.get("decisions"), dict):
        raise UserError(f"{path}: malformed review decisions file (needs a 'decisions' object); {fix}")
    for key, rec in data["decisions"].items():
        if not isinstance(rec, dict) or rec.get("decision") not in DECISIONS:
            raise UserError(f"{path}: malformed review decision for image {key!r} "
                            f"(needs 'decision': accept|reject); {fix}")
    return data["decisions"]


def record_decision(path: str | Path, image_id: int | str, decision: str | None,
                    file_name: str | None = None, reviewer: str | None = None) -> dict[str, dict]:
    """Set (or with ``decision=None`` clear) one image's decision; returns all decisions.

    Safe against concurrent writers (threads and processes)."""
    if decision is not None and decision not in DECISIONS:
        raise UserError(f"decision must be one of {', '.join(DECISIONS)} or null, got {decision!r}")
    path = Path(path)
    with _locked(path):
        decisions = load_decisions(path)
        key = str(image_id)
        if decision is None:
            decisions.pop(key, None)
        else:
            decisions[key] = {"decision": decision, "file_name": file_name,
                              "reviewer": reviewer, "time": round(time.time(), 3)}
        atomic_write_json(path, {"version": VERSION, "decisions": decisions})
    return decisions
