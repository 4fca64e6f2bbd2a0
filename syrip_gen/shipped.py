"""Shipped models: names (``infant-pose2d``, ``infant-detector``) -> fp16 weight files in ``assets/models/``
with a model card beside each (``NAME.md``). One owner for "a model given by name or by path".

Why: users fine-tune and predict from weights the project trained itself on renders of its free default
path, so they need not pay the pretraining in every run (issue 31). Loading never touches the network:
the files are in the repository. ``resolve`` turns a name into its file; any other string is a path.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from syrip_gen.errors import UserError
from syrip_gen.paths import ASSETS

MODELS_DIR = ASSETS / "models"


@dataclass(frozen=True)
class Shipped:
    """One shipped model: its name, the task it serves, and what it is for (one line)."""

    name: str
    kind: str
    summary: str

    @property
    def weights(self) -> Path:
        return MODELS_DIR / f"{self.name}.pt"

    @property
    def card(self) -> Path:
        return MODELS_DIR / f"{self.name}.md"


SHIPPED = {m.name: m for m in (
    Shipped("infant-pose2d", "pose2d", "17 COCO keypoints of an infant in a box (lite trunk, 128x96, heatmaps)"),
    Shipped("infant-detector", "detector", "every infant in an image (centre heatmap + box size, lite trunk, 128x128)"),
)}


def is_name(text: str | Path) -> bool:
    """A shipped model's name (a file or folder of that name in the working directory wins)."""
    return str(text) in SHIPPED and not Path(text).exists()


def resolve(text: str | Path) -> Path:
    """A shipped model's weight file for its name (one-line UserError when the file is missing); any
    other value is returned as a path. A bare word that looks like a name but is none is an error."""
    if is_name(text):
        m = SHIPPED[str(text)]
        if not m.weights.is_file():
            raise UserError(f"shipped model {text}: {m.weights} is missing from this installation; "
                            "restore assets/models/ (git checkout) or give a checkpoint path")
        return m.weights
    s = str(text)
    if s.startswith("infant-") and "/" not in s and not Path(s).exists():
        raise UserError(f"unknown model {s!r}; shipped models: {', '.join(SHIPPED)} (`syrip-gen models`)")
    return Path(text)


def listing() -> list[dict]:
    """What ``syrip-gen models`` prints: name, task, size, card, and whether the file is present."""
    rows = []
    for m in SHIPPED.values():
        present = m.weights.is_file()
        rows.append({"name": m.name, "kind": m.kind, "summary": m.summary, "weights": str(m.weights),
                     "present": present, "mb": round(m.weights.stat().st_size / 2**20, 2) if present else None,
                     "card": str(m.card)})
    return rows
