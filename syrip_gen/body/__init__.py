"""Infant body models behind one interface (see ``base.BodyModel``), and their registry.

``load_body("anny")`` gives the embedded default; ``load_body("smil", path=...)`` a
user-supplied SMIL/SMPL file through smplx.

:data:`BODIES` is the one list of body models: ``load_body``, the config checks
(``RenderConfig.body``, ``FitConfig.body``), the CLI's ``--body`` choices and the learned
keypoints' file hash all read it, so adding a body model is one entry here (and its module).
:class:`BodyConfig` is the one ``body:`` section of the fit, render and sequence configs.
This module imports neither torch nor NumPy until a body is loaded (``--help`` stays light).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from syrip_gen.errors import UserError

if TYPE_CHECKING:
    from syrip_gen.body.base import BodyModel, BodyOutput, MeshTopology


@dataclass(frozen=True)
class BodyKind:
    """A registered body model: ``load(name, path)`` -> ``BodyModel`` (imports its module
    then); ``needs_file``: the user supplies the model file (``--body-path``), whose hash then
    identifies the mesh; ``about``: a few words for help texts."""

    load: Callable[[str, "str | Path | None"], "BodyModel"]
    needs_file: bool
    about: str


def _load_anny(name: str, path) -> "BodyModel":
    from syrip_gen.body.anny_body import AnnyBody, load_anny

    return AnnyBody(load_anny())


def _load_smpl(name: str, path) -> "BodyModel":
    if path is None:
        raise UserError(f"body model {name!r} needs its model file: pass --body-path "
                        "(e.g. smil_web.pkl or the .npz made by `syrip-gen body convert`)")
    from syrip_gen.body.smpl_body import SmplBody

    return SmplBody.from_file(path, kind=name)


BODIES: dict[str, BodyKind] = {
    "anny": BodyKind(_load_anny, False, "Anny, embedded (default)"),
    "smil": BodyKind(_load_smpl, True, "SMIL infant model, your file"),
    "smpl": BodyKind(_load_smpl, True, "SMPL adult model, your file"),
}
BODY_MODELS = tuple(BODIES)  # the names, in registry order (config and CLI choices)
FILE_BODIES = tuple(n for n, b in BODIES.items() if b.needs_file)  # those loaded from the user's file


@dataclass(frozen=True)
class BodyConfig:
    """Which body a stage uses (the ``body:`` section of fit, render and sequence configs):
    ``name`` from :data:`BODIES`, ``path`` the user's model file (SMIL/SMPL), ``keypoints`` a
    learned regressor (``keypoints.npz`` from learn-keypoints; None = the body's own)."""

    name: str = field(default="anny", metadata={"choices": BODY_MODELS})
    path: str | None = None
    keypoints: str | None = None

    def keyed(self) -> dict:
        """The run key's part: the keypoints file by its content (its name changes no label)."""
        from syrip_gen.body.keypoints import file_hash

        kp = self.keypoints
        return {"name": self.name, "path": self.path,
                "keypoints": file_hash(kp) if kp is not None and Path(kp).is_file() else kp}

    def load(self, device: str = "cpu") -> "BodyModel":
        return load_body(self.name, self.path, device=device, keypoints=self.keypoints)


# the flat keys of configs written before the body: section (read with a warning, see syrip_gen.config)
BODY_MOVED = {"body": "body.name", "body_path": "body.path", "keypoints": "body.keypoints"}


def __getattr__(name: str):
    """``BodyModel``, ``BodyOutput``, ``MeshTopology`` (torch) are imported when first asked for."""
    if name in ("BodyModel", "BodyOutput", "MeshTopology"):
        from syrip_gen.body import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    if name not in BODIES:
        raise UserError(f"unknown body model {name!r}; choose one of {', '.join(BODIES)}")
    body = BODIES[name].load(name, path)
    return (body if learned is None else with_keypoints(body, learned)).to(device)


def with_keypoints(body: BodyModel, learned) -> BodyModel:
    """The same body with a learned keypoint regressor (``body.keypoints.LearnedKeypoints``)
    instead of its own; one-line UserError when it was learned on another body or mesh."""
    import torch

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


__all__ = ["BodyModel", "BodyOutput", "MeshTopology", "load_body", "with_keypoints", "BODIES", "BodyKind",
           "BODY_MODELS", "FILE_BODIES", "BodyConfig", "BODY_MOVED"]
