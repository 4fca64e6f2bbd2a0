"""`syrip-gen pipeline run SPEC.yaml`: run an end-to-end spec, skipping finished steps."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = sub.add_parser("run", help="run (or --dry: plan) a pipeline spec")
    r.add_argument("spec", help="pipelines/<name>.yaml")
    r.add_argument("--out", help="output directory (default: the spec's 'out')")
    r.add_argument("--dry", action="store_true", help="print the plan without running")
    r.add_argument("--keep-going", action="store_true", help="run independent steps after a failure")
    r.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE",
                   help="override a step's config value (YAML syntax), e.g. render.variants=2 "
                        "or render.run.workers=4 (one key of a section)")
    r.add_argument("--profile", help="run the spec at another scale: a name from its x-profiles (e.g. toy, gpu)")
    r.add_argument("--input", action="append", default=[], metavar="STEP.ROLE=PATH",
                   help="point a step's input elsewhere, e.g. fit.skeletons=my/person_keypoints.json")


def parse_overrides(items: list[str], parse: bool = True) -> dict[str, dict]:
    """``["step.key=value", ...]`` -> ``{step: {key: value}}`` (values parsed as YAML)."""
    from syrip_gen.config import parse_value
    from syrip_gen.errors import UserError

    out: dict[str, dict] = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise UserError(f"{item!r}: expected STEP.KEY=VALUE")
        lhs, value = item.split("=", 1)
        step, key = lhs.split(".", 1)
        out.setdefault(step, {})[key] = parse_value(value, f"--set {lhs}") if parse else value
    return out


def run(args: argparse.Namespace) -> int:
    import logging

    from syrip_gen import pipeline

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    spec = pipeline.load_spec(args.spec, out=args.out, overrides=parse_overrides(args.set),
                              input_overrides=parse_overrides(args.input, parse=False),
                              profile=args.profile)
    if args.dry:
        records = pipeline.run(spec, dry=True, keep_going=args.keep_going)
    else:
        from syrip_gen.runfolder import check_writable, locked

        check_writable(spec.out, "--out" if args.out else "the spec's out:")
        with locked(spec.out, "pipeline"):
            records = pipeline.run(spec, keep_going=args.keep_going)
    return 1 if any(r["status"].startswith(("failed", "blocked")) for r in records) else 0
