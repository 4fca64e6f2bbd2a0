"""Read a user's YAML file (pipeline spec, config, posture library) with one-line errors."""
from __future__ import annotations

from pathlib import Path

from syrip_gen.errors import UserError


def read_yaml(path: str | Path, missing: str = "no such file") -> object:
    """The parsed YAML of ``path``; UserError ``"<path>: <missing>"`` when it does not exist and
    ``"<path>: not valid YAML (...)"`` when it does not parse."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {missing}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
