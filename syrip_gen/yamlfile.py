"""Read a user's YAML file (pipeline spec, config, posture library) with one-line errors."""
from __future__ import annotations

from pathlib import Path

from syrip_gen.errors import UserError


def read_yaml(path: str | Path, missing: str = "no such file") -> object:
    """The parsed YAML of ``path``; UserError ``"<path>: <missing>"`` when it does not exist and
    ``"<path>, line L, column C: not valid YAML (<problem>)"`` when it does not parse (the place
    where the parser gave up, 1-based, as an editor counts)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {missing}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        context, opened = getattr(err, "context", None), getattr(err, "context_mark", None)
        if context and opened is not None:
            context += f" started at line {opened.line + 1}"
        raise UserError(f"{path}{where}: not valid YAML ({problem}{f', {context}' if context else ''})") from None
