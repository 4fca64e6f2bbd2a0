"""Command-line entry point: argument parsing and dispatch only.

Each sub-command lives in its own module exposing ``add_arguments(parser)`` and ``run(args)``;
the module is imported only when its command runs (or its ``--help`` is asked), so
``syrip-gen --help`` stays fast and never imports torch. A pipeline stage's command is declared
with the stage (``syrip_gen/stages.py``); the other tools are listed here.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from syrip_gen.stages import REGISTRY

# name -> (one-line help, module with add_arguments/run): the tools, then the stages' own
# commands from the stage registry (syrip_gen/stages.py), then the tools that come after them
_TOOLS_FIRST = {
    "body": ("look at, export or convert infant body models", "syrip_gen.commands.body"),
    "learn-prior": ("learn a pose-prior mixture from a set of fits", "syrip_gen.commands.learn_prior"),
}
_TOOLS_LAST = {
    "review": ("review renders in the browser; decisions saved as you go", "syrip_gen.commands.review"),
    "predict": ("run box -> 2D -> 3D on images and draw the results", "pose_models.commands.predict"),
    "models": ("list the shipped infant models (or print one's card)", "pose_models.commands.models"),
    "pipeline": ("run an end-to-end pipeline spec (pipelines/*.yaml)", "syrip_gen.commands.pipeline"),
    "benchmark": ("write the benchmark report (speed, fit quality, ablation)", "pose_models.commands.benchmark"),
}
COMMANDS: dict[str, tuple[str, str]] = {
    **_TOOLS_FIRST,
    **{st.command[0]: st.command[1:] for st in REGISTRY.values() if st.command},
    **_TOOLS_LAST,
}


class _HelpFormatter(argparse.HelpFormatter):
    """argparse measures sub-command names without their extra indent, which pushes the help
    of the longest one (``learn-prior``) onto the next line; count the indent."""

    def add_argument(self, action):
        super().add_argument(action)
        if action.help is not argparse.SUPPRESS and hasattr(action, "_get_subactions"):
            names = [len(self._format_action_invocation(a)) for a in action._get_subactions()]
            self._action_max_length = max(self._action_max_length, max(names, default=0)
                                          + self._current_indent + self._indent_increment)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syrip-gen",
        description="Synthetic infant pose data and the models that learn from it.",
        formatter_class=_HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (help_text, module_name) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # import only the command being run
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from syrip_gen.errors import UserError, disk_fault

    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        code = args._run(args)
    except UserError as err:
        _end_progress_bars()
        print(f"syrip-gen {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full, read-only or foreign disk met during the work: one line too
        line = disk_fault(err, getattr(args, "out", None))
        if line is None:
            raise
        _end_progress_bars()
        print(f"syrip-gen {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _end_progress_bars()
        print(f"syrip-gen {args.command}: interrupted; finished work is kept, rerun to resume", file=sys.stderr)
        return 130
    return int(code or 0)


def _end_progress_bars() -> None:
    """Close the progress bars a failed command left open, so that its error gets a line of
    its own instead of trailing the last bar."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


if __name__ == "__main__":
    sys.exit(main())
