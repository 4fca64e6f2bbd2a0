"""`syrip-gen sequence FITS --out CLIPS`: rendered clips of moving infants with per-frame labels.

Thin layer over :func:`syrip_gen.render.sequence.clips.render_clips`; pyrender loads only in ``run`` (torch
already with the help: it shows :class:`ClipConfig`'s defaults).
"""
from __future__ import annotations

import argparse
import functools

from syrip_gen.body import BODY_MODELS


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Config flags default to None ("not given"): ClipConfig's defaults rule (image flags such as
    --width go to its ``render`` settings; the help shows its defaults)."""
    from syrip_gen.config import default_help
    from syrip_gen.render.sequence.clips import ClipConfig

    dflt = functools.partial(default_help, ClipConfig)  # dflt(field path, text, note)

    p.add_argument("fits", metavar="FITS", help="fits folder (FITS/fits.jsonl) or the .jsonl file")
    p.add_argument("--out", required=True, metavar="CLIPS", help="output folder (frames, COCO, MP4 previews)")
    p.add_argument("--clips", type=int, help=dflt("clips", "number of clips", "; fits taken in turn"))
    p.add_argument("--seconds", type=float, help=dflt("seconds", "length of each clip"))
    p.add_argument("--fps", type=float, help=dflt("fps", "frames per second"))
    p.add_argument("--seed", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--camera-orbit-deg", type=float, nargs=2, metavar=("LO", "HI"),
                   help=dflt("camera_orbit_deg", "total turn of a moving camera about the infant over a clip",
                             "; 0 0 = fixed"))
    p.add_argument("--moving-camera-prob", type=float, metavar="P", help=dflt("moving_camera_prob", "share of clips whose camera drifts"))
    p.add_argument("--fill", type=float, nargs=2, metavar=("LO", "HI"),
                   help=dflt("render.sampling.fill", "share of the frame the infant's box fills, drawn per clip",
                             "; pipeline YAML: sampling.fill"))
    p.add_argument("--multi-share", type=float, metavar="P",
                   help=dflt("render.sampling.multi_share", "share of clips holding 2-3 infants",
                             "; pipeline YAML: sampling.multi_share"))
    p.add_argument("--split", help="name in annotations/person_keypoints_<split>_infant.json")
    p.add_argument("--limit", type=int, help="use only the first N usable fits")
    p.add_argument("--no-preview", dest="preview", action="store_false", default=None, help="no MP4 previews")
    p.add_argument("--no-video", dest="video", action="store_false", default=None,
                   help="no plain MP4 of the rendered frames per clip")
    p.add_argument("--no-gate", dest="gate", action="store_false", default=None,
                   help="skip the per-clip quality gates (filter's gates on every frame)")
    p.add_argument("--force", action="store_true", default=None, help="replace a different run in --out")
    p.add_argument("--body", choices=BODY_MODELS, help=dflt("render.body.name", "body model the fits were made with"))
    p.add_argument("--body-path", help="the SMIL/SMPL model file for --body smil|smpl")
    p.add_argument("--keypoints", metavar="NPZ", help="learned keypoint regressor (`syrip-gen learn-keypoints`)")
    p.add_argument("--texture-size", type=int, help=dflt("render.texture_size", "body texture size in texels"))
    p.add_argument("--backgrounds", metavar="DIR", help="folder of background photos (default procedural)")
    p.add_argument("--photo-textures", action="store_true", default=None,
                   help="infants wear textures baked from their fits' own photos (as `render --photo-textures`)")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from syrip_gen.config import flag_names, moved
    from syrip_gen.render.sequence.clips import ClipConfig, render_clips
    from syrip_gen.render.image.config import RenderConfig

    known = ({f.name for f in dataclasses.fields(ClipConfig)} | {f.name for f in dataclasses.fields(RenderConfig)}
             | set(RenderConfig.MOVED))
    given = moved(RenderConfig, {k: v for k, v in vars(args).items() if k in known and v is not None})
    sampling = {k: v for k, v in (("fill", args.fill), ("multi_share", args.multi_share)) if v is not None}
    if sampling:  # fields of the nested sampling config
        given["sampling"] = sampling
    flags = flag_names(RenderConfig)  # body.path: --body-path
    cfg = ClipConfig.from_dict(given, name=lambda path: flags.get(path.removeprefix("render."),
                                                                  "--" + path.split(".")[-1].replace("_", "-")))
    summary = render_clips(args.fits, args.out, cfg)
    print(json.dumps(dataclasses.asdict(summary), indent=1, sort_keys=True))
    return 0
