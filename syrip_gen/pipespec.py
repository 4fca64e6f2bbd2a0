"""Pipeline specs (``pipelines/*.yaml``): read, checked before any work, with ``--set``,
``--input`` and ``--profile`` applied. The runner (``syrip_gen/pipeline.py``) plans and runs them.

Why its own module: what a spec may say (keys, step names, paths) is checked here in one place,
and the runner stays a runner.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from syrip_gen.config import dotted_holder
from syrip_gen.errors import UserError
from syrip_gen.shipped import is_name as is_shipped
from syrip_gen.shipped import resolve as resolve_shipped
from syrip_gen.stages import REGISTRY
from syrip_gen.yamlfile import read_yaml


@dataclass(frozen=True)
class Step:
    name: str
    kind: str
    inputs: dict = field(default_factory=dict)  # role -> step name | path
    config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    name: str
    out: Path
    steps: tuple[Step, ...]
    path: Path
    base: Path = Path(".")  # relative paths in the spec are taken from here (see load_spec)


def load_spec(path: str | Path, out: str | Path | None = None,
              overrides: dict[str, dict] | None = None,
              input_overrides: dict[str, dict] | None = None, profile: str | None = None) -> Spec:
    """Read a YAML spec; ``overrides`` / ``input_overrides`` map step name -> config entries /
    input roles to replace (e.g. point ``fit.skeletons`` at the user's own COCO file). ``profile``
    names an entry of the spec's ``x-profiles`` (e.g. ``toy``, ``gpu``): the same steps at another scale.

    Paths: the spec's own (``out``, inputs) are relative to its ``base:`` folder, itself relative
    to the spec's folder (default: the spec's folder; the bundled specs say ``base: ..``, the
    repository). ``out`` and input overrides given here (the command line) are relative to the
    current directory, as is the default ``runs/<name>``. An override naming a step that is not
    in the spec is an error, not ignored."""
    path = Path(path)
    raw = read_yaml(path, missing="no such pipeline spec (see pipelines/*.yaml)")
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list):
        raise UserError(f"{path}: a pipeline spec needs a 'steps' list")
    _check_keys(raw, SPEC_KEYS, f"{path}:", "spec")
    for key in ("name", "out", "base"):
        if key in raw and not (isinstance(raw[key], str) and raw[key]):
            raise UserError(f"{path}: '{key}' must be text, got {raw[key]!r}")
    base = (path.parent / str(raw.get("base", "."))).resolve()
    for i, s in enumerate(raw["steps"]):
        if not isinstance(s, dict) or "name" not in s or "kind" not in s:
            raise UserError(f"{path}: step {i + 1} needs 'name' and 'kind'")
        _check_name(s["name"], f"{path}: step {i + 1}")
        _check_keys(s, STEP_KEYS, f"{path}: step {s['name']!r}:", "step")
    names = [s["name"] for s in raw["steps"]]
    for what, given in (("--set", overrides), ("--input", input_overrides)):
        unknown = sorted(set(given or {}) - set(names))
        if unknown:
            raise UserError(f"{what}: no step named {', '.join(map(repr, unknown))} in {path}; "
                            f"steps: {', '.join(map(str, names))}")
    if profile:
        overrides = _merge(profile_overrides(raw, profile, path), overrides or {})
    steps, seen = [], set()
    for s in raw["steps"]:
        if not isinstance(s["kind"], str) or s["kind"] not in REGISTRY:
            raise UserError(f"{path}: step {s['name']!r} has unknown kind {s['kind']!r}; "
                            f"known: {', '.join(sorted(REGISTRY))}")
        if s["name"] in seen:
            raise UserError(f"{path}: two steps are named {s['name']!r}")
        seen.add(s["name"])
        if not isinstance(s.get("config") or {}, dict) or not isinstance(s.get("inputs") or {}, dict):
            raise UserError(f"{path}: step {s['name']!r}: 'config' and 'inputs' must be mappings")
        config = dict(s.get("config") or {})
        for key, value in (overrides or {}).get(s["name"], {}).items():
            _set_key(config, str(key), value)
        inputs = {role: _from(base, ref, names) for role, ref in (s.get("inputs") or {}).items()}
        inputs.update({role: _from(Path.cwd(), ref, names)
                       for role, ref in (input_overrides or {}).get(s["name"], {}).items()})
        steps.append(Step(name=s["name"], kind=s["kind"], inputs=inputs, config=config))
    if out:
        out_dir = Path(out).resolve()
    elif raw.get("out"):
        out_dir = (base / str(raw["out"])).resolve()
    else:
        out_dir = Path(f"runs/{raw.get('name', path.stem)}").resolve()
    return Spec(name=raw.get("name", path.stem), out=out_dir, steps=tuple(steps), path=path, base=base)


SPEC_KEYS = ("name", "out", "base", "steps")  # and x-* keys (anchors, profiles)
STEP_KEYS = ("name", "kind", "inputs", "config")
# a step's folder is <out>/<name>: one plain folder name, never '.', '..' or a path (issue 34, C43-C45)
STEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _check_keys(mapping: dict, known: tuple[str, ...], where: str, what: str) -> None:
    """A misspelt key (``output:``, ``configs:``) is an error, not silently a default; ``x-*``
    keys are the user's own (YAML anchors, profiles)."""
    unknown = sorted(str(k) for k in mapping if k not in known and not str(k).startswith("x-"))
    if unknown:
        raise UserError(f"{where} unknown {what} key(s) {', '.join(unknown)}; known: {', '.join(known)} "
                        "(and x-* keys of your own)")


def _check_name(name, where: str) -> None:
    """A step name becomes a folder under the run's ``out``: text of letters, digits, ``_ . -``."""
    if not isinstance(name, str):
        raise UserError(f"{where}: name must be text, got {name!r} (quote it: name: \"{name}\")")
    if not STEP_NAME.fullmatch(name):
        raise UserError(f"{where}: name {name!r} is not a plain folder name; use letters, digits, '_', '.' "
                        "and '-', starting with a letter or digit")


def _from(folder: Path, ref, step_names: list) -> str:
    """An input reference as stored in a Step: a step's name as is, a path made absolute from
    ``folder``."""
    if not isinstance(ref, str) or not ref:
        raise UserError(f"an input must be a step name or a path, got {ref!r}")
    if ref in step_names:
        return ref
    if is_shipped(ref):  # a shipped model by name (`init: infant-pose2d`): its weights file, content-keyed
        return str(resolve_shipped(ref))
    return str((folder / ref).resolve()) if not Path(ref).is_absolute() else ref


def profile_overrides(raw: dict, name: str, path: Path) -> dict[str, dict]:
    """``x-profiles: {NAME: {STEP-PATTERN: {key: value}}}`` -> step name -> config entries. Patterns
    are shell globs over step names (``train_*``); later patterns win over earlier ones."""
    profiles = raw.get("x-profiles") or {}
    if name not in profiles:
        raise UserError(f"{path}: no profile {name!r} (known: {', '.join(sorted(profiles)) or 'none'})")
    out: dict[str, dict] = {}
    for pattern, config in (profiles[name] or {}).items():
        matched = [s["name"] for s in raw["steps"] if isinstance(s, dict) and fnmatch.fnmatchcase(str(s.get("name")), pattern)]
        if not matched:
            raise UserError(f"{path}: profile {name!r}: pattern {pattern!r} matches no step")
        for step in matched:
            out.setdefault(step, {}).update(config or {})
    return out


def inputs_replacing(path: str | Path, replace: dict[str, str]) -> dict[str, dict]:
    """Input overrides that point every step input equal to a key of ``replace`` at its value (e.g.
    the real train set at a downscaled copy): step name -> {role: new path}."""
    raw = read_yaml(Path(path), missing="no such pipeline spec (see pipelines/*.yaml)")
    out: dict[str, dict] = {}
    for s in raw.get("steps") or []:
        for role, ref in (s.get("inputs") or {}).items():
            if ref in replace:
                out.setdefault(s["name"], {})[role] = str(replace[ref])
    return out


def _set_key(config: dict, key: str, value) -> None:
    """``config[key] = value``; a dotted key (``--set render.run.workers=4``) sets one key of a
    section, whose other keys stay (sections on the way are copied, or made when absent; one
    that is not a mapping keeps the dotted key, for the stage's config check to refuse)."""
    section, last = dotted_holder(config, key, make=True)
    if section is None:
        config[key] = value
    else:
        section[last] = value


def _merge(a: dict[str, dict], b: dict[str, dict]) -> dict[str, dict]:
    return {k: {**a.get(k, {}), **b.get(k, {})} for k in {*a, *b}}
