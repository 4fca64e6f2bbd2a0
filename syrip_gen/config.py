"""The one typed config loader: a user's mapping (YAML, ``--set``, CLI flags) -> a frozen dataclass.

Why: every stage's settings arrive as loose values (YAML, ``key=value`` overrides, argparse
flags). Checked here once, a typo'd key, ``'abc'`` for a number, ``null`` where a value is
needed or a number out of range is a one-line :class:`UserError` naming the key, never a
traceback deep inside a stage or a silently accepted value.

Types are read from the dataclass annotations: ``int``, ``float`` (an int or a numeric string
is accepted; NaN/inf are not), ``bool``, ``str``, ``X | None``, ``tuple[X, ...]``,
``tuple[X, Y]``, ``dict`` and nested dataclasses (given as mappings). Ranges are declared
where the default lives, as field metadata::

    workers: int = field(default=2, metadata={"min": 1})
    msaa: int = field(default=0, metadata={"choices": (0, 2, 4)})

``min``/``max`` are inclusive and apply to each element of a tuple; ``choices`` lists the
allowed values. A pair of numbers (``tuple[float, float]``) is a ``(low, high)`` range: a
reversed one is refused here, before any work, not by the sampler hours later. Cross-field
rules stay in each class's ``__post_init__``.

What enters a run key is read from field metadata too (:func:`keyed`): ``RUN_ONLY`` marks a
field that changes how, where or how many, never the output (workers, device, force); a
``"keyed_when"`` function of the config leaves out an option's settings while it is off.

A class that moved keys lists them in ``MOVED`` (old dotted path -> new dotted path, e.g.
``{"contact_shadow": "contact.shadow"}``): an old key is still read, with a one-line warning.

:class:`RunConfig` is the one ``run:`` section (how and where a stage runs) of the fit, render
and sequence configs.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import math
import types
import typing
from typing import Any, Callable, Mapping, TypeVar

from syrip_gen.errors import UserError

T = TypeVar("T")
log = logging.getLogger(__name__)
RUN_ONLY = {"keyed": False}  # field metadata: execution only, never in a run key (see keyed)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How and where a stage runs, never what it makes: the ``run:`` section of the fit, render
    and sequence configs, nested there as a ``RUN_ONLY`` field (never in a run key: a run may
    resume with other values). A stage runs by some of these fields and refuses the others
    (:meth:`check_used`): ``workers: 8`` must not pass silently where nothing runs in parallel."""

    workers: int = dataclasses.field(default=2, metadata={"min": 1})  # render processes (one GL context each)
    backend: str = dataclasses.field(default="joblib", metadata={"choices": ("joblib", "dask")})
    scheduler: str | None = None  # dask scheduler address; None = a LocalCluster
    # llvmpipe threads per render worker (LP_NUM_THREADS; None = CPUs // workers; ignored on a GPU)
    gl_threads: int | None = dataclasses.field(default=None, metadata={"min": 1})
    # torch CPU threads of the fit (None = torch's default); 1 is fastest for its small batched ops
    threads: int | None = dataclasses.field(default=1, metadata={"min": 1})
    device: str = dataclasses.field(default="cpu", metadata={"choices": ("cpu", "cuda", "auto")})  # the fit's torch
    force: bool = False  # replace a different run in the output folder

    def __post_init__(self):
        check_ranges(self, "run config")

    def check_used(self, used: tuple[str, ...], where: str) -> None:
        """A one-line UserError when a field the stage does not run by (not in ``used``) was set."""
        default = RunConfig()
        unused = [f.name for f in dataclasses.fields(self)
                  if f.name not in used and getattr(self, f.name) != getattr(default, f.name)]
        if unused:
            raise UserError(f"{where}: run.{', run.'.join(unused)} not used by this stage (it runs by "
                            f"run.{', run.'.join(used)})")


def run_moved(*names: str) -> dict[str, str]:
    """``MOVED`` entries of a stage's flat execution keys of older specs (``workers``: ``run.workers``)."""
    return {name: f"run.{name}" for name in names}


def from_mapping(cls: type[T], mapping: Mapping | None, where: str = "config",
                 name: Callable[[str], str] | None = None) -> T:
    """``cls(**mapping)`` after checking keys, types and ranges; one-line UserError otherwise.

    ``where`` starts every message (e.g. ``"render config"``); ``name`` turns a key path
    (``"sampling.fill"``) into what the user typed (e.g. a CLI flag). Missing keys take the
    dataclass defaults."""
    return _dataclass(cls, mapping, where, name or (lambda path: path), "")


def from_args(cls: type[T], args: argparse.Namespace, where: str, flags: Mapping[str, str] | None = None) -> T:
    """``cls`` from the argparse flags the user actually gave: config flags default to None
    ("not given", with ``dest`` = the field name), so the dataclass defaults rule. Errors name
    the flag: ``--texture-size`` for ``texture_size``, or ``flags[field]`` where it differs.
    A flag named after a key ``cls`` moved (``--body-path``: ``body.path``) keeps its name."""
    flags = {**flag_names(cls), **dict(flags or {})}
    known = {f.name for f in dataclasses.fields(cls)} | set(getattr(cls, "MOVED", {}))
    given = moved(cls, {k: v for k, v in vars(args).items() if k in known and v is not None})
    return from_mapping(cls, given, where, name=lambda path: flags.get(path, "--" + path.replace("_", "-")))


def flag_names(cls) -> dict[str, str]:
    """New key path -> the CLI flag that still sets it under its old name (``"body.path"``:
    ``"--body-path"``), for error messages."""
    return {new: "--" + old.replace("_", "-") for old, new in getattr(cls, "MOVED", {}).items() if "." not in old}


def moved(cls, mapping: Mapping, where: str | None = None) -> dict:
    """``mapping`` with ``cls``'s old keys (its ``MOVED``) put where they live now: silently
    (for CLI flags, whose names stay), or with the loader's warning when ``where`` is given."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    return _moved(cls, mapping, fields, where or "", str, "", warn=where is not None)


def _dataclass(cls, mapping, where, name, prefix):
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise UserError(f"{where}: {name(prefix[:-1]) if prefix else 'the settings'} must be a mapping of "
                        f"keys to values, got {_show(mapping)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    mapping = _moved(cls, mapping, fields, where, name, prefix)
    unknown = sorted(str(k) for k in mapping if k not in fields)
    if unknown:
        at = f" {name(prefix[:-1])}:" if prefix else ""
        raise UserError(f"{where}:{at} unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in mapping.items():
        f = fields[key]
        path = prefix + key
        values[key] = _check_range(_convert(value, hints[key], where, name, path), f.metadata, where, name, path)
    missing = [k for k, f in fields.items() if k not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UserError(f"{where}: missing key(s) {', '.join(name(prefix + k) for k in missing)}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:  # a class's own check that is not a UserError yet
        raise UserError(f"{where}: {err}") from None


def _moved(cls, mapping, fields, where, name, prefix, warn=True):
    """``mapping`` with the old keys of ``cls.MOVED`` put where they live now, a warning for
    each. An old key that is still a field (``body``) is old only when it is not a mapping."""
    out = dict(mapping)
    for old, new in getattr(cls, "MOVED", {}).items():
        src, key = dotted_holder(out, old)
        if src is None or key not in src or (src is out and key in fields and _is_section(src[key])):
            continue
        value = src.pop(key)  # first: an old key may name the new section (body: anny -> body.name)
        dst, new_key = dotted_holder(out, new, make=True)
        if dst is None:  # a built section (a dataclass) in the way: the old key stays, refused as unknown
            src[key] = value
            continue
        if new_key in dst:
            raise UserError(f"{where}: {name(prefix + old)} and {name(prefix + new)} given both; "
                            f"{name(prefix + old)} is the old name")
        dst[new_key] = value
        if warn:
            log.warning("%s: %s is now %s (the old key is still read)", where, name(prefix + old), name(prefix + new))
    return out


def dotted_holder(out: dict, path: str, make: bool = False) -> tuple[dict | None, str]:
    """The mapping inside ``out`` that holds dotted ``path``'s last key, and that key; the
    mappings on the way are copied (the caller's stay as they were), made when ``make``; None
    when one on the way is not a mapping."""
    *head, key = path.split(".")
    d = out
    for h in head:
        if make and d.get(h) is None:
            d[h] = {}
        if not isinstance(d.get(h), Mapping):
            return None, key
        d[h] = dict(d[h])
        d = d[h]
    return d, key


def _is_section(value) -> bool:
    return isinstance(value, Mapping) or dataclasses.is_dataclass(value)


def _convert(value, tp, where, name, path):
    """``value`` as type ``tp`` (see the module docstring), or a one-line UserError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(value, inner[0], where, name, path)
        for a in inner:  # first that fits
            try:
                return _convert(value, a, where, name, path)
            except UserError:
                continue
        raise _bad(where, name, path, " or ".join(_what(a) for a in inner), value)
    if value is None:
        raise UserError(f"{where}: {name(path)} must be {_what(tp)}, not null")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return _dataclass(tp, value, where, name, path + ".")
    if origin is tuple or tp is tuple:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
            raise _bad(where, name, path, _what(tp), value)
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], where, name, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise UserError(f"{where}: {name(path)} must be {_what(tp)}, got {len(value)} value(s): {_show(value)}")
        pair = tuple(_convert(v, a, where, name, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        if len(pair) == 2 and all(a in (int, float) for a in args) and pair[0] > pair[1]:
            raise UserError(f"{where}: {name(path)} is a (low, high) range; low must not exceed high, "
                            f"got {_show(value)}")
        return pair
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _bad(where, name, path, "a mapping", value)
        return dict(value)
    if origin is list or tp is list:
        if not isinstance(value, (list, tuple)):
            raise _bad(where, name, path, "a list", value)
        return list(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _bad(where, name, path, "true or false", value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _bad(where, name, path, "an integer", value)
    if tp is float:
        if isinstance(value, bool):
            raise _bad(where, name, path, "a number", value)
        try:
            number = float(value) if isinstance(value, (int, float, str)) else None
        except ValueError:
            number = None
        if number is None or not math.isfinite(number):
            raise _bad(where, name, path, "a number", value)
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise _bad(where, name, path, "a string", value)
    if tp is Any or tp is object:
        return value
    raise TypeError(f"config field {path}: type {tp!r} is not supported by syrip_gen.config")


def _check_range(value, meta, where, name, path):
    if value is None or not meta:
        return value
    items, each = (value, " entries") if isinstance(value, tuple) else ((value,), "")
    for v in items:
        if "choices" in meta and v not in meta["choices"]:
            raise UserError(f"{where}: {name(path)}{each} must be one of {', '.join(map(str, meta['choices']))}, "
                            f"got {_show(v)}")
        if "min" in meta and isinstance(v, (int, float)) and v < meta["min"]:
            raise UserError(f"{where}: {name(path)}{each} must be >= {meta['min']}, got {_show(v)}")
        if "max" in meta and isinstance(v, (int, float)) and v > meta["max"]:
            raise UserError(f"{where}: {name(path)}{each} must be <= {meta['max']}, got {_show(v)}")
    return value


def _bad(where, name, path, what, value) -> UserError:
    return UserError(f"{where}: {name(path)} must be {what}, got {_show(value)}")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _what(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is tuple or tp is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        return f"a list of {len(args)} values" if args else "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _plural(tp) -> str:
    if dataclasses.is_dataclass(tp):
        return "mappings"
    return {bool: "booleans", int: "integers", float: "numbers", str: "strings"}.get(tp, str(tp))


def keyed(cfg) -> dict:
    """The fields of ``cfg`` that change its stage's output (the run key's part of the config):
    all but those marked ``RUN_ONLY`` or whose ``keyed_when(cfg)`` is false; a nested config
    gives its own ``keyed()`` (or this), a tuple of configs a list of them."""
    out = {}
    for f in dataclasses.fields(cfg):
        when = f.metadata.get("keyed_when")
        if f.metadata.get("keyed", True) and (when is None or when(cfg)):
            out[f.name] = _keyed_value(getattr(cfg, f.name))
    return out


def _keyed_value(value):
    if dataclasses.is_dataclass(value):
        return value.keyed() if hasattr(value, "keyed") else keyed(value)
    if isinstance(value, (tuple, list)) and value and all(dataclasses.is_dataclass(v) for v in value):
        return [_keyed_value(v) for v in value]
    return value


def default_help(cls: type, path: str, text: str, note: str = "") -> str:
    """``text`` and the dataclass default of ``path`` (``"sampling.fill"``), as
    ``"text (default 0.45 0.7)"``; ``note`` follows the value (``": a free one"``). Why: a CLI
    help string that repeats a default number goes stale; the dataclass owns the number."""
    value = _default_instance(cls)
    for name in path.split("."):
        value = getattr(value, name)
    return f"{text} (default {_flag_text(value)}{note})"


@functools.lru_cache(maxsize=None)
def _default_instance(cls: type):
    return cls()


def _flag_text(value) -> str:
    """A value as the user would type it after the flag (a pair: ``LO HI``)."""
    if isinstance(value, (tuple, list)):
        return " ".join(_flag_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_value(text: str, what: str) -> Any:
    """A ``--set`` value parsed as YAML; a one-line UserError when it does not parse."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = str(err).splitlines()[0]
        raise UserError(f"{what}: the value {text!r} is not valid YAML ({problem})") from None


def check_ranges(obj, where: str) -> None:
    """The metadata ranges of an already built config (``__post_init__`` calls this, so a
    config built in Python is held to the same ranges as one read from YAML)."""
    for f in dataclasses.fields(obj):
        if f.metadata:
            _check_range(getattr(obj, f.name), f.metadata, where, lambda path: path, f.name)
