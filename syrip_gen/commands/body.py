"""`syrip-gen body preview|export|convert`: look at, export or convert an infant body model.

- ``preview``: a posed, lit infant seen from the front and from its left side, as a PNG; with
  ``--keypoints`` (a learned regressor) it also draws each keypoint where the body puts it (grey
  ring), where the learned regressor puts it (filled dot) and the vertices it uses (dots sized
  by weight), so a person can see where "hip" now is.
  The views are body-relative (the global orientation is left out, so a supine pose shows
  its limbs rather than the soles of its feet). Rendered by ``render.preview`` when it is
  available; otherwise (or if GL fails) by a small OpenCV flat-shaded painter that needs no GL.
- ``export``: the posed mesh (global orientation included) as an ``.obj``, with texture
  coordinates when the body has them.
- ``convert``: a SMIL/SMPL chumpy pickle to a plain ``.npz`` (``body/convert.py``).

Named poses: the built-in ones below (common space, degrees as rotation vectors; knee
flexion is +x, hip flexion -x, left hip abduction +z, left elbow flexion -y, see tests/body/test_body_anny.py), the
posture library's names (``syrip_gen/posture_library.py``, e.g. ``prone_forearms_head_up``), or a
JSON file holding a 24x3 axis-angle list (radians), bare or under ``"pose"``.
"""
from __future__ import annotations

import argparse

from syrip_gen.body import BODY_MODELS, FILE_BODIES

AGE_RANGE = (0.0, 12.0)
BUILTIN_POSES_DEG: dict[str, dict[str, tuple[float, float, float]]] = {
    "tpose": {},
    "supine-kicking": {
        "pelvis": (-90, 0, 0), "left_hip": (-70, 0, 20), "right_hip": (-40, 0, -15),
        "left_knee": (80, 0, 0), "right_knee": (45, 0, 0),
        "left_shoulder": (0, -20, -40), "right_shoulder": (0, 20, 40),
        "left_elbow": (0, -70, 0), "right_elbow": (0, 50, 0),
    },
    "sitting": {
        "spine1": (10, 0, 0), "spine2": (8, 0, 0), "left_hip": (-85, 0, 20), "right_hip": (-85, 0, -20),
        "left_knee": (20, 0, 0), "right_knee": (20, 0, 0),
        "left_shoulder": (0, -30, -60), "right_shoulder": (0, 30, 60),
        "left_elbow": (0, -30, 0), "right_elbow": (0, 30, 0),
    },
    "prone-head-up": {
        "pelvis": (90, 0, 0), "spine2": (-5, 0, 0), "spine3": (-10, 0, 0),
        "neck": (-25, 0, 0), "head": (-15, 0, 0),
        "left_shoulder": (0, -75, 10), "right_shoulder": (0, 75, -10),
        "left_elbow": (0, 0, 90), "right_elbow": (0, 0, -90),
        "left_hip": (0, 0, 10), "right_hip": (0, 0, -10),
    },
}


def _add_body_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--body", default="anny", help=f"body model: {', '.join(BODY_MODELS)} (default anny)")
    p.add_argument("--body-path", help="SMIL/SMPL model file (.pkl or the .npz from `body convert`)")
    p.add_argument("--uv-obj", help="SMIL/SMPL: .obj of the same mesh with texture coordinates (vt)")
    p.add_argument("--age", type=float, default=6.0, help="age in months, 0-12 (default 6)")
    p.add_argument("--pose", default="tpose",
                   help=f"a named pose ({', '.join(BUILTIN_POSES_DEG)}, or a posture-library name such as "
                        "supine_kicking) "
                        "or a JSON file with a 24x3 axis-angle pose")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    pv = sub.add_parser("preview", help="render a posed infant, front and side, to a PNG")
    _add_body_options(pv)
    pv.add_argument("--out", default="infant.png", help="output PNG (default infant.png)")
    pv.add_argument("--size", type=int, default=512, help="height of each view in pixels (default 512)")
    pv.add_argument("--keypoints", metavar="NPZ", help="draw a learned keypoint regressor "
                    "(`syrip-gen learn-keypoints`) against the body's own keypoints")
    ex = sub.add_parser("export", help="write the posed mesh as an .obj")
    _add_body_options(ex)
    ex.add_argument("--out", required=True, help="output .obj")
    cv = sub.add_parser("convert", help="convert a SMIL/SMPL .pkl into a plain .npz (no chumpy needed)")
    cv.add_argument("src", help="smil_web.pkl (or another SMPL-format pickle)")
    cv.add_argument("--out", required=True, help="output .npz")


def run(args: argparse.Namespace) -> int:
    import logging

    from syrip_gen.errors import UserError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.action == "convert":
        from syrip_gen.body.convert import convert

        out = convert(args.src, args.out)
        print(f"wrote {out} (keep it out of the repository: the model is licensed)")
        return 0
    if not AGE_RANGE[0] <= args.age <= AGE_RANGE[1]:
        raise UserError(f"--age {args.age:g} is outside 0-12 months; infant bodies cover newborn to 12 months")
    if args.action == "preview" and not 64 <= args.size <= 4096:
        raise UserError(f"--size {args.size} is out of range; use 64-4096 pixels")
    pose = pose_from_arg(args.pose)  # before the (slow) model load: fail fast on a typo
    learned = None
    if getattr(args, "keypoints", None):  # the small file first: fail fast on a wrong one
        from syrip_gen.body.keypoints import LearnedKeypoints, body_file_hash

        learned = LearnedKeypoints.load(args.keypoints)
        learned.check_body(args.body, body_file_hash(args.body, args.body_path), learned.num_vertices)
    body = load_cli_body(args)
    if learned is not None:
        learned.check_body(body.name, learned.body_hash, body.topology().part_of_vertex.shape[0])
    args.learned = learned
    if args.action == "preview":
        return _preview(body, pose, args)
    return _export(body, pose, args)


def load_cli_body(args):
    from syrip_gen.body import load_body
    from syrip_gen.errors import UserError

    if args.uv_obj and args.body not in FILE_BODIES:
        raise UserError(f"--uv-obj is for SMIL/SMPL meshes; {args.body!r} brings its own texture coordinates")
    if args.body in FILE_BODIES and args.body_path and args.uv_obj:
        from syrip_gen.body.smpl_body import SmplBody

        return SmplBody.from_file(args.body_path, kind=args.body, uv_obj=args.uv_obj)
    return load_body(args.body, path=args.body_path)


def pose_from_arg(value: str):
    """``(1, 24, 3)`` float32 pose of a built-in name, a posture-library name or a JSON file."""
    import json
    import math
    from pathlib import Path

    import numpy as np
    import torch

    from syrip_gen.body.pose_space import JOINT
    from syrip_gen.errors import UserError

    if value in BUILTIN_POSES_DEG:
        pose = torch.zeros(1, 24, 3)
        for joint, deg in BUILTIN_POSES_DEG[value].items():
            pose[0, JOINT[joint]] = torch.tensor(deg) * (math.pi / 180.0)
        return pose
    library = _library_names()
    if value in library:
        from syrip_gen.posture_library import posture_pose

        return posture_pose(value).float()[None]
    path = Path(value)
    if not path.is_file():
        raise UserError(f"--pose {value!r}: no such pose or file; named poses: "
                        f"{', '.join(list(BUILTIN_POSES_DEG) + library)} (or a JSON file with a 24x3 pose)")
    try:
        data = json.loads(path.read_text())
        arr = np.asarray(data["pose"] if isinstance(data, dict) else data, dtype=np.float32)
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"--pose {path}: not a JSON 24x3 axis-angle pose ({err})") from None
    if arr.shape != (24, 3) or not np.all(np.isfinite(arr)):
        raise UserError(f"--pose {path}: expected 24x3 finite axis-angle values, got shape {arr.shape}")
    return torch.from_numpy(arr)[None]


def _library_names() -> list[str]:
    """Posture names of ``syrip_gen.posture_library`` (the authored library); [] if it is absent."""
    try:
        from syrip_gen.posture_library import load_library
    except ImportError:
        return []
    return [p.name for p in load_library()]


def _posed(body, pose, age: float):
    """Posed vertices ``(V, 3)`` and the body's own keypoints ``(17, 3)`` (float32, body frame)."""
    import torch

    with torch.no_grad():
        shape = body.shape_for_age(torch.tensor([age]))
        out = body(pose.to(body.device), shape.to(body.device), with_vertices=True)
    return out.vertices[0].cpu().numpy(), out.keypoints[0].cpu().numpy()


def _posed_vertices(body, pose, age: float):
    return _posed(body, pose, age)[0]


def _draw_learned(image, learned, verts, defaults, project) -> None:
    """Draw, per panel, each keypoint's support vertices (dot area ~ weight), the body's own
    keypoint (grey ring) and the learned one (filled dot); ``project(points) -> [(N, 2)] per panel``."""
    import colorsys

    import cv2
    import numpy as np

    pts = learned.keypoints(defaults[None].astype(np.float64), verts[None].astype(np.float64))[0]
    size = image.shape[0]
    for k in range(len(pts)):
        rgb = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(k / len(pts), 0.9, 0.85))
        vids = np.flatnonzero(learned.weights[k])
        for panel, (sup, own, new) in enumerate(zip(project(verts[vids]), project(defaults[k:k + 1]),
                                                    project(pts[k:k + 1]))):
            off = np.array([panel * size, 0])
            for p, w in zip(sup, learned.weights[k, vids]):
                cv2.circle(image, tuple(int(x) for x in p + off), max(1, int(round(6 * np.sqrt(w)))), rgb, -1,
                           cv2.LINE_AA)
            cv2.circle(image, tuple(int(x) for x in own[0] + off), 5, (120, 120, 120), 1, cv2.LINE_AA)
            cv2.circle(image, tuple(int(x) for x in new[0] + off), 4, rgb, -1, cv2.LINE_AA)
            cv2.circle(image, tuple(int(x) for x in new[0] + off), 4, (20, 20, 20), 1, cv2.LINE_AA)


def _preview(body, pose, args) -> int:
    import logging

    import cv2

    log = logging.getLogger(__name__)
    pose = pose.clone()
    pose[:, 0] = 0.0  # body-relative views (module doc)
    verts, defaults = _posed(body, pose, args.age)
    topo = body.topology()
    views = ("front", "side")
    image = project = None
    try:
        from syrip_gen.render.pixels.preview import render_body_views
    except ImportError:
        render_body_views = None
    if render_body_views is not None:
        if len(topo.uvs) == 0:  # SMIL/SMPL without --uv-obj: untextured, any UV gives plain skin
            import dataclasses

            import numpy as np

            topo = dataclasses.replace(topo, uvs=np.zeros((len(topo.render_vertex_index), 2), np.float32))
        try:
            image = render_body_views(verts, topo, texture=None, size=args.size, views=views)
            from syrip_gen.render.pixels.preview import body_view_cameras

            cams = body_view_cameras(verts, args.size, views)
            project = lambda p: [c.project(p)[0] for c in cams]  # noqa: E731
        except Exception as err:  # GL missing or failing: the painter still gives a preview
            log.warning("renderer failed (%s: %s); using the OpenCV painter", type(err).__name__, err)
    if image is None:
        from syrip_gen import drawing

        image = drawing.paint_views(verts, topo.body_faces, size=args.size, views=views)
        project = lambda p: [drawing.painter_project(verts, p, args.size, v)[0] for v in views]  # noqa: E731
    if getattr(args, "learned", None) is not None:
        _draw_learned(image, args.learned, verts, defaults, project)
    label = f"{body.name}, {args.age:g} months, pose {args.pose}"
    cv2.putText(image, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (40, 40, 40), 1, cv2.LINE_AA)
    from syrip_gen.atomic import atomic_write_image

    atomic_write_image(args.out, image[..., ::-1].copy())  # RGB -> BGR for OpenCV
    print(f"wrote {args.out}")
    return 0


def _export(body, pose, args) -> int:
    import trimesh

    verts = _posed_vertices(body, pose, args.age)
    topo = body.topology()
    if len(topo.uvs):
        mesh = trimesh.Trimesh(vertices=verts[topo.render_vertex_index], faces=topo.faces,
                               visual=trimesh.visual.TextureVisuals(uv=topo.uvs), process=False)
    else:
        mesh = trimesh.Trimesh(vertices=verts, faces=topo.body_faces, process=False)
    text = trimesh.exchange.obj.export_obj(mesh, include_texture=len(topo.uvs) > 0, write_texture=False,
                                           include_normals=False)
    from syrip_gen.atomic import atomic_write_bytes

    atomic_write_bytes(args.out, text.encode())
    note = "" if len(topo.uvs) else " (no texture coordinates: this body has none)"
    print(f"wrote {args.out}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces{note}")
    return 0
