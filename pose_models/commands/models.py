"""``syrip-gen models [NAME]``: the shipped models (syrip_gen/shipped.py), or one model's card."""
from __future__ import annotations

import argparse

from syrip_gen.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="print this model's card (infant-pose2d, infant-detector)")


def run(args: argparse.Namespace) -> int:
    from syrip_gen.shipped import SHIPPED, listing

    if args.name:
        if args.name not in SHIPPED:
            raise UserError(f"unknown model {args.name!r}; shipped models: {', '.join(SHIPPED)}")
        card = SHIPPED[args.name].card
        if not card.is_file():
            raise UserError(f"{card}: the card of {args.name} is missing from this installation")
        print(card.read_text(), end="")
        return 0
    for row in listing():
        size = f"{row['mb']:.2f} MB" if row["present"] else "MISSING"
        print(f"{row['name']:<17} {row['kind']:<9} {size:>9}  {row['summary']}")
        print(f"{'':<17} card: {row['card']}")
    print("use a name wherever a checkpoint is asked: predict --pose2d infant-pose2d, evaluate infant-pose2d DATA, "
          "train --init infant-pose2d")
    return 0
