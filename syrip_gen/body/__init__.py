"""Infant body models behind one interface (see ``base.BodyModel``).

``load_body("anny")`` gives the embedded default; ``load_body("smil", path=...)`` a
user-supplied SMIL/SMPL file through smplx.
"""
from __future__ import annotations

from pathlib import Path

import torch

from syrip_gen.body.base import BodyModel, BodyOutput, MeshTopology
from syrip_gen.errors import UserError

BODY_MODELS = ("anny", "smil", "smpl")


def load_body(name: str = "anny", path: str | Path | None = None, device: str = "cpu",
              keypoints: str | Path | None = None) -> BodyModel:
    """Load a body model by name; one-line UserError for an unknown name or a bad file.

    ``keypoints``: a ``keypoints.npz`` from ``syrip-gen learn-keypoints`` whose learned COCO-17
    regressor replaces the body's own (checked to belong to this body); None keeps the body's.
    """
    learned = None
    if keypoints is not None:  # read and check the small file before the slow model load
        from syrip_gen.body.keypoints import LearnedKeypoints, body_file_hash

        learned = LearnedKeypoints.load(keypoints)
        learned.check_body(name, body_file_hash(name, path), learned.num_vertices, what="body")
    if name == "anny":
        from syrip_gen.body.anny_body import AnnyBody, load_anny

        body = AnnyBody(load_anny())
    elif name in ("smil", "smpl"):
        if path is None:
            raise UserError(f"body model {name!r} needs its model file: pass --body-path "
                            "(e.g. smil_web.pkl or the .npz made by `syrip-gen body convert`)")
        from syrip_gen.body.smpl_body import SmplBody

        body = SmplBody.from_file(path, kind=name)
    else:
        raise UserError(f"unknown body model {name!r}; choose one of {', '.join(BODY_MODELS)}")
    return (body if learned is None else with_keypoints(body, learned)).to(device)


def with_keypoints(body: BodyModel, learned) -> BodyModel:
    """The same body with a learned keypoint regressor (``body.keypoints.LearnedKeypoints``)
    instead of its own; one-line UserError when it was learned on another body or mesh."""
    from syrip_gen.body.anny_body import AnnyBody, default_regressor
    from syrip_gen.body.smpl_body import SmplBody

    if isinstance(body, AnnyBody):
        m = body.anny
        learned.check_body(body.name, "", m.template_vertices.shape[0])
        reg = learned.regressor(default_regressor(m).double().numpy())
        return AnnyBody(m, regressor_weights=torch.as_tensor(reg)).to(body.device)
    if isinstance(body, SmplBody):
        return body.relearned(learned).to(body.device)
    raise UserError(f"body {body.name!r} cannot take a learned keypoint regressor")


__all__ = ["BodyModel", "BodyOutput", "MeshTopology", "load_body", "with_keypoints", "BODY_MODELS"]
