"""`syrip-gen render FITS --out DATASET`: annotated synthetic images from body fits.

Thin layer over :func:`syrip_gen.render.run.render_dataset`; torch/pyrender load only in ``run``.
"""
from __future__ import annotations

import argparse
import functools

from syrip_gen.body import BODY_MODELS


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Config flags default to None ("not given"): RenderConfig's defaults rule (shown in the help)."""
    from syrip_gen.config import default_help
    from syrip_gen.render.image.config import RenderConfig

    dflt = functools.partial(default_help, RenderConfig)  # dflt(field path, text, note)

    p.add_argument("fits", metavar="FITS", help="fits folder (FITS/fits.jsonl) or the .jsonl file")
    p.add_argument("--out", required=True, metavar="DATASET", help="dataset folder (SyRIP layout)")
    p.add_argument("--variants", type=int, help=dflt("variants", "images per fit"))
    p.add_argument("--seed", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--workers", type=int, help=dflt("run.workers", "render processes (one GL context each)",
                                                    "; pipeline YAML: run.workers"))
    p.add_argument("--backend", choices=("joblib", "dask"))
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (default: a local cluster)")
    p.add_argument("--backgrounds", metavar="DIR", help="folder of background photos (default procedural); "
                   "`syrip-gen backgrounds` makes one from your own annotated photos")
    p.add_argument("--photo-support", type=_probability, metavar="P",
                   help=dflt("photo_support", "with --backgrounds: share of lying infants placed on a photo "
                             "instead of a procedural mattress/blanket/rug"))
    p.add_argument("--textures", metavar="DIR", help="folder of textures (default procedural)")
    p.add_argument("--photo-textures", action="store_true", default=None,
                   help="bodies wear textures baked from the fits' own photos (once per fit, kept in "
                        "DATASET/photo_textures/); fits without a readable photo stay procedural")
    p.add_argument("--own-photo-texture", type=_probability, metavar="P",
                   help=dflt("own_photo_texture", "with --photo-textures: share of images wearing their own "
                             "fit's photo; the rest wear another fit's"))
    p.add_argument("--max-missing-photos", type=_probability, metavar="P",
                   help=dflt("max_missing_photos", "with --photo-textures: stop before rendering when more than "
                             "this share of the fits' photos is not found", "; the rest are rendered procedurally "
                             "and counted"))
    p.add_argument("--shadows", type=_probability, nargs="?", const=1.0, metavar="P",
                   help="directional shadows in a share P of the images (0-1; bare --shadows = all); "
                        "a shadowed image takes ~3x longer on a CPU")
    p.add_argument("--split", help="name in annotations/person_keypoints_<split>_infant.json")
    p.add_argument("--depth", action="store_true", default=None, help="also write depth PNGs (uint16 mm)")
    p.add_argument("--parts", action="store_true", default=None, help="also write part-segmentation PNGs")
    p.add_argument("--force", action="store_true", default=None, help="replace a different run in --out")
    p.add_argument("--limit", type=int, help="render only the first N usable fits")
    p.add_argument("--shard-size", type=int, help="images per shard (resume unit)")
    p.add_argument("--texture-size", type=int, help=dflt("texture_size", "body texture size in texels"))
    p.add_argument("--msaa", type=int, choices=(0, 2, 4),
                   help=dflt("msaa", "GL multisampling", ": outline softened in 2D; 4: GL antialiasing, slower on a CPU"))
    p.add_argument("--body", choices=BODY_MODELS,
                   help=dflt("body.name", "body model the fits were made with"))
    p.add_argument("--body-path", help="the SMIL/SMPL model file (.pkl or converted .npz) for --body smil|smpl")
    p.add_argument("--keypoints", metavar="NPZ",
                   help="label keypoints with a regressor from `syrip-gen learn-keypoints` (default: the body's own)")
    p.add_argument("--multi-share", type=_probability, metavar="P",
                   help=dflt("sampling.multi_share", "share of images holding 2-3 infants",
                             "; pipeline YAML: sampling.multi_share"))
    p.add_argument("--gl-threads", type=int, metavar="N",
                   help="software-GL (llvmpipe) threads per worker; default CPUs // workers")


def _probability(text: str) -> float:
    """``--shadows`` value: a number in [0, 1], or on/off words."""
    words = {"on": 1.0, "true": 1.0, "yes": 1.0, "off": 0.0, "false": 0.0, "no": 0.0}
    if text.lower() in words:
        return words[text.lower()]
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability 0-1 or on/off, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability 0-1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from dataclasses import asdict

    from syrip_gen.config import from_args
    from syrip_gen.render.image.config import RenderConfig
    from syrip_gen.render.run import render_dataset

    cfg = from_args(RenderConfig, args, "render")
    if getattr(args, "multi_share", None) is not None:  # a field of the nested sampling config
        from dataclasses import replace

        cfg = replace(cfg, sampling=replace(cfg.sampling, multi_share=args.multi_share))
    summary = render_dataset(args.fits, args.out, cfg)
    print(json.dumps(asdict(summary), indent=1, sort_keys=True))
    for warning in summary.warnings:
        print(f"syrip-gen render: warning: {warning}", file=sys.stderr)
    return 0
