"""Infant body models behind one interface (see ``base.BodyModel``).

``load_body("anny")`` gives the embedded default; ``load_body("smil", path=...)`` a
user-supplied SMIL/SMPL file through smplx.
"""
from __future__ import annotations

from pathlib import Path

from syrip_gen.body.base import BodyModel, BodyOutput, MeshTopology
from syrip_gen.errors import UserError

BODY_MODELS = ("anny", "smil", "smpl")


def load_body(name: str = "anny", path: str | Path | None = None, device: str = "cpu") -> BodyModel:
    """Load a body model by name; one-line UserError for an unknown name or a bad file."""
    if name == "anny":
        from syrip_gen.body.anny_body import AnnyBody, load_anny

        return AnnyBody(load_anny()).to(device)
    if name in ("smil", "smpl"):
        if path is None:
            raise UserError(f"body model {name!r} needs its model file: pass --body-path "
                            "(e.g. smil_web.pkl or the .npz made by `syrip-gen body convert`)")
        from syrip_gen.body.smpl_body import SmplBody

        return SmplBody.from_file(path, kind=name).to(device)
    raise UserError(f"unknown body model {name!r}; choose one of {', '.join(BODY_MODELS)}")


__all__ = ["BodyModel", "BodyOutput", "MeshTopology", "load_body", "BODY_MODELS"]
