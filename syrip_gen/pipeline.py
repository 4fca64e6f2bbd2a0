"""Stage runner for ``pipelines/*.yaml``: plan, then run each step, skipping finished ones.

A spec lists steps in order. Each step has a ``kind`` (fit, render, filter, stats, train,
evaluate, ...), ``inputs`` (role -> an earlier step's name, or a path) and ``config``. A
step's key hashes its kind, config, the version of the code that kind runs and its inputs (an earlier step's key,
or a file's content). Each step writes only into its own folder ``<out>/<step>/``; when it
finishes, ``outputs.json`` lists the files it made (size, modification time) and the manifest
``step.json`` (written last) holds the key, a digest of that list and the state of its inputs
(an input step's output digest, an input folder's file names and sizes). A step is done, and
skipped, when its manifest holds its key, the files it made are all still there unchanged, its
inputs are as they were and every input step is done too; so changing a step's settings, or
deleting or replacing its files or its inputs, reruns it and every step after it that reads
from it. Files added to a step's folder later (a review's decisions) change nothing. Outputs are
never deleted: stages resume their own partial work, but only their own key's: the runner notes
the key a step starts with (``.step-started.json``) and, for a stage that resumes whatever its
folder holds (train: the latest checkpoint), empties the folder first when it holds another
key's work, so a changed spec never continues an old run's model.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


from syrip_gen.codehash import code_version
from syrip_gen.coco import atomic_write_json
from syrip_gen.errors import UserError
from syrip_gen.runfolder import LOCK_FILE
from syrip_gen.stages import REGISTRY, lazy
from syrip_gen.yamlfile import read_yaml

log = logging.getLogger(__name__)
MANIFEST = "step.json"
OUTPUTS = "outputs.json"
STARTED = ".step-started.json"  # the key of the step's last started run (see _start)


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


@dataclass
class PlannedStep:
    step: Step
    key: str
    inputs: dict[str, Path]  # role -> resolved path
    out_dir: Path
    done: bool


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
        if not isinstance(s["kind"], str) or s["kind"] not in STAGES:
            raise UserError(f"{path}: step {s['name']!r} has unknown kind {s['kind']!r}; "
                            f"known: {', '.join(sorted(STAGES))}")
        if s["name"] in seen:
            raise UserError(f"{path}: two steps are named {s['name']!r}")
        seen.add(s["name"])
        if not isinstance(s.get("config") or {}, dict) or not isinstance(s.get("inputs") or {}, dict):
            raise UserError(f"{path}: step {s['name']!r}: 'config' and 'inputs' must be mappings")
        config = dict(s.get("config") or {})
        config.update((overrides or {}).get(s["name"], {}))
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


def _merge(a: dict[str, dict], b: dict[str, dict]) -> dict[str, dict]:
    return {k: {**a.get(k, {}), **b.get(k, {})} for k in {*a, *b}}


def _content_key(path: Path) -> str:
    """Content hash of an external input (a file, or a directory's JSON files)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(path.rglob("*.json"))
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def plan(spec: Spec) -> list[PlannedStep]:
    """Resolve inputs and keys in order; mark steps whose manifest already holds their key."""
    planned: dict[str, PlannedStep] = {}
    names = {s.name for s in spec.steps}
    for step in spec.steps:
        check_step(step)
        resolved, parts = {}, []
        for role, ref in sorted(step.inputs.items()):
            if ref in planned:
                resolved[role] = planned[ref].out_dir
                parts.append(f"{role}=step:{planned[ref].key}")
            elif ref in names:
                raise UserError(f"step {step.name!r}: input {role}={ref} names a step that does not come "
                                "before it; steps run in the order listed")
            else:
                p = Path(ref)
                if not p.exists():
                    raise UserError(f"step {step.name!r}: input {role}={ref} is neither an earlier "
                                    f"step nor an existing path")
                content = p
                if role in MODEL_ROLES and step.kind in ("train", "evaluate", "curve"):
                    try:  # a train folder's model is its last checkpoint: its bytes are the input
                        content = _checkpoint_of(p)
                    except UserError as err:
                        raise UserError(f"step {step.name!r}: input {role}: {err}") from None
                resolved[role] = p
                parts.append(f"{role}=file:{_content_key(content)}")
        blob = json.dumps({"kind": step.kind, "config": step.config, "inputs": parts,
                           "code": code_version(step.kind)}, sort_keys=True)
        key = hashlib.sha256(blob.encode()).hexdigest()[:16]
        out_dir = spec.out / step.name
        upstream_done = all(planned[ref].done for ref in step.inputs.values() if ref in planned)
        done = upstream_done and _is_done(out_dir, key, resolved)
        planned[step.name] = PlannedStep(step, key, resolved, out_dir, done)
    return list(planned.values())


def _manifest(out_dir: Path) -> dict:
    try:
        m = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return m if isinstance(m, dict) else {}


def _is_done(out_dir: Path, key: str, inputs: dict[str, Path]) -> bool:
    """Whether the step in ``out_dir`` finished with ``key``, its files are still as it wrote
    them and its inputs as they were then (manifests written before these checks existed hold
    only the key)."""
    m = _manifest(out_dir)
    if m.get("key") != key:
        return False
    if "outputs" in m and not _outputs_intact(out_dir, m["outputs"]):
        return False
    recorded = m.get("input_state")
    return recorded is None or recorded == _input_state(inputs)


def _file_list(out_dir: Path, times: bool = True) -> dict[str, list[int]]:
    """Every file under a folder (but the runner's own two): relative path -> [size,
    modification time in ns] (``times``) or [size]. One os.scandir stat per file: about a second
    for a 40 000-image render (80 000 files with its shards)."""
    files: dict[str, list[int]] = {}
    stack = [(out_dir, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            rel = prefix + e.name
            if e.is_dir(follow_symlinks=False):
                stack.append((Path(e.path), rel + "/"))
            elif rel not in (MANIFEST, OUTPUTS, STARTED):
                try:
                    st = e.stat()
                except OSError:
                    continue
                files[rel] = [st.st_size, st.st_mtime_ns] if times else [st.st_size]
    return dict(sorted(files.items()))


def _digest(files: dict[str, list[int]]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def _outputs_intact(out_dir: Path, recorded: dict) -> bool:
    """The files a step made (``outputs.json``, checked against the manifest's digest) are all
    still there with the same size and modification time."""
    try:
        files = json.loads((out_dir / OUTPUTS).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(files, dict) or _digest(files) != recorded.get("digest"):
        return False
    now = _file_list(out_dir)
    return all(now.get(rel) == entry for rel, entry in files.items())


def _input_state(inputs: dict[str, Path]) -> dict[str, str]:
    """Role -> what an input is now: an input step's output digest (its key for a manifest
    written before outputs were recorded), an input folder's file names and sizes (its JSON
    content is in the key already; not times, so a folder written again the same way, such as
    drawn stand-in data, is the same input; a file input's content is in the key)."""
    state = {}
    for role, path in sorted(inputs.items()):
        m = _manifest(path) if path.is_dir() else {}
        if m.get("key"):
            state[role] = (m.get("outputs") or {}).get("digest") or m["key"]
        elif path.is_dir():
            state[role] = _digest(_file_list(path, times=False))
    return state


def run(spec: Spec, dry: bool = False, keep_going: bool = False,
        echo: Callable[[str], None] = print) -> list[dict]:
    """Run the plan; returns one record per step (name, status, seconds, summary). Statuses:
    ``ran``, ``skipped`` (up to date), ``planned`` (``dry``), ``failed: <error>``, and
    ``blocked: ...`` for a step not run because a step it needs (directly or through others)
    failed (``blocked_by`` names those)."""
    steps = plan(spec)
    echo(f"pipeline {spec.name}: {len(steps)} steps -> {spec.out}")
    records, blocked_by, announced = [], {}, set()  # step -> the failed steps it needs
    for ps in steps:
        needs = sorted({f for ref in ps.step.inputs.values() for f in blocked_by.get(ref, ())})
        if needs:
            blocked_by[ps.step.name] = needs
            records.append({"name": ps.step.name, "status": f"blocked: needs failed step {', '.join(needs)}",
                            "blocked_by": needs})
            continue
        if ps.done:
            echo(f"  skip {ps.step.name} ({ps.step.kind}): up to date [{ps.key}]")
            records.append({"name": ps.step.name, "status": "skipped"})
            continue
        if dry:
            echo(f"  would run: {ps.step.name} ({ps.step.kind}) [{ps.key}]")
            records.append({"name": ps.step.name, "status": "planned"})
            continue
        echo(f"  run  {ps.step.name} ({ps.step.kind}) [{ps.key}]")
        t0 = time.time()
        try:
            _start(ps)
            summary = STAGES[ps.step.kind](ps.step.config, ps.inputs, ps.out_dir)
        except Exception as err:  # noqa: BLE001 - reported per step, re-raised unless keep_going
            records.append({"name": ps.step.name, "status": f"failed: {err}"})
            if not keep_going:
                raise
            echo(f"  FAILED {ps.step.name}: {err}")
            blocked_by[ps.step.name] = [ps.step.name]
            downstream = [d for d in _downstream(steps, ps.step.name) if d not in announced]
            announced.update(downstream)
            if downstream:
                echo(f"  not running {', '.join(downstream)}: they need failed step {ps.step.name}")
            continue
        seconds = round(time.time() - t0, 2)
        _finish(ps, seconds, summary)
        echo(f"       done in {seconds:.1f} s")
        records.append({"name": ps.step.name, "status": "ran", "seconds": seconds, "summary": summary})
    if not dry:
        echo(run_summary(records))
    return records


def _start(ps: PlannedStep) -> None:
    """Note the key this run of the step starts with. A stage that resumes whatever its folder
    holds (``Stage.resumes``: train continues from the latest checkpoint there) must never
    continue another key's work (issue 34, C50: changed training data gave the old model, 0
    steps, "ran"): its folder is emptied first when it holds work of another key, and refused
    when it holds files no run of this step made."""
    out = ps.out_dir
    if REGISTRY[ps.step.kind].resumes and out.is_dir():
        held = _work_key(out)
        if held is _FOREIGN:
            raise UserError(f"{out} holds files that no run of step {ps.step.name!r} recorded (an interrupted run "
                            "from an older syrip-gen, or files of your own); refusing to resume or delete them: "
                            "move them away, or choose another --out")
        if held is not None and held != ps.key:
            log.info("%s: emptying %s (work of key %s, this run %s)", ps.step.name, out, held, ps.key)
            for entry in out.iterdir():
                if entry.name != LOCK_FILE:
                    shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / STARTED, {"key": ps.key, "kind": ps.step.kind})


_FOREIGN = object()


def _work_key(out: Path):
    """The key of the work a step folder holds: the key its last run started with (else the key
    of its manifest); None when it holds nothing; ``_FOREIGN`` when it holds files of no
    recorded run."""
    for name in (STARTED, MANIFEST):
        try:
            key = json.loads((out / name).read_text()).get("key")
        except (OSError, ValueError, AttributeError):
            continue
        if key:
            return key
    return _FOREIGN if any(e.name != LOCK_FILE for e in out.iterdir()) else None


def _finish(ps: PlannedStep, seconds: float, summary) -> None:
    """Record what the step made (``outputs.json``), then its manifest, last."""
    files = _file_list(ps.out_dir)
    atomic_write_json(ps.out_dir / OUTPUTS, files)
    atomic_write_json(ps.out_dir / MANIFEST, {
        "key": ps.key, "kind": ps.step.kind, "config": ps.step.config,
        "inputs": {k: str(v) for k, v in ps.inputs.items()}, "input_state": _input_state(ps.inputs),
        "outputs": {"files": len(files), "digest": _digest(files)}, "seconds": seconds,
        "summary": summary or {}})


def _downstream(steps: list[PlannedStep], name: str) -> list[str]:
    """The steps after ``name`` that read from it, directly or through other steps (plan order)."""
    reached, out = {name}, []
    for ps in steps:
        if ps.step.name not in reached and reached & set(ps.step.inputs.values()):
            reached.add(ps.step.name)
            out.append(ps.step.name)
    return out


def run_summary(records: list[dict]) -> str:
    """One line: how many steps ran, were up to date, failed, and were not run because a step
    they need failed."""
    def names(prefix):
        return [r["name"] for r in records if r["status"].startswith(prefix)]

    ran, fresh, failed, blocked = names("ran"), names("skipped"), names("failed"), names("blocked")
    parts = [f"{len(ran)} ran"] + ([f"{len(fresh)} up to date"] if fresh else [])
    if failed:
        parts.append(f"{len(failed)} failed ({', '.join(failed)})")
    if blocked:
        parts.append(f"{len(blocked)} not run because a step they need failed ({', '.join(blocked)})")
    return "pipeline: " + ", ".join(parts)


# ---- checks before any step runs (also with --dry) ----------------------------------------
# stage kinds, their inputs, checks and runners: one registry (syrip_gen/stages.py)
REQUIRED_INPUTS = {kind: st.inputs for kind, st in REGISTRY.items() if st.inputs}


def check_step(step: Step) -> None:
    """A step's inputs and config as its stage will read them: a missing input role, an unknown
    key, a wrong type or a value out of range is a one-line UserError now, not hours later."""
    missing = [r for r in REQUIRED_INPUTS.get(step.kind, ()) if r not in step.inputs]
    if step.kind == "train" and not set(step.inputs) - {"val", "init"}:
        missing.append("<a training source>")
    if missing:
        raise UserError(f"step {step.name!r}: a {step.kind} step needs inputs.{', inputs.'.join(missing)}")
    try:
        CONFIG_CHECKS[step.kind](dict(step.config))
    except UserError as err:
        raise UserError(f"step {step.name!r}: {err}") from None


def _check_train(config: dict) -> None:
    from pose_models.config import TrainConfig

    config.pop("weights", None)
    TrainConfig.from_dict({**config, "train": ["(inputs)"], "out_dir": "(step folder)"})


def _check_kwargs(function: str, taken_by_inputs: tuple[str, ...]) -> Callable[[dict], None]:
    """Config keys must be keyword arguments of ``pose_models.evaluate.<function>``."""
    def check(config: dict) -> None:
        import inspect

        import pose_models.evaluate as ev

        params = inspect.signature(getattr(ev, function)).parameters
        known = sorted(k for k, p in params.items() if p.kind == p.KEYWORD_ONLY and k not in taken_by_inputs
                       and k != "log")
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise UserError(f"{function} config: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return check


def _check_none(kind: str) -> Callable[[dict], None]:
    def check(config: dict) -> None:
        if config:
            raise UserError(f"{kind} config: unknown key(s) {', '.join(sorted(config))}; a {kind} step takes none")
    return check


_check_evaluate = _check_kwargs("evaluate", ("bn_calibration", "detector"))  # evaluate and curve steps
CONFIG_CHECKS: dict[str, Callable[[dict], None]] = {
    kind: lazy(st.check) if st.check else _check_none(kind) for kind, st in REGISTRY.items()}


# ---- stage adapters: each calls one stage's Python API ------------------------------------
def _need(inputs: dict[str, Path], role: str, kind: str) -> Path:
    if role not in inputs:
        raise UserError(f"a {kind} step needs inputs.{role}")
    return inputs[role]


def _keypoints(inputs: dict[str, Path]) -> dict:
    """Optional input ``keypoints``: a learn_keypoints step (or a keypoints.npz) -> config entry;
    none when that step refused to write one (the body's own keypoints then)."""
    if "keypoints" not in inputs:
        return {}
    path = inputs["keypoints"]
    if path.is_dir():
        path = path / "keypoints.npz"
        return {"keypoints": str(path)} if path.is_file() else {}
    return {"keypoints": str(path)}


def _fit(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Optional input ``keypoints`` (see :func:`_keypoints`)."""
    from syrip_gen.fit.fitter import FitConfig, fit_file

    cfg = FitConfig.from_dict({**config, **_keypoints(inputs), "force": True})  # the step's key changed: other fits are stale
    summary = fit_file(_need(inputs, "skeletons", "fit"), out, cfg)
    return _as_dict(summary)


def _learn_keypoints(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Input ``fits``: a fit step of the annotated skeletons; writes ``keypoints.npz``."""
    from syrip_gen.fit.learn_keypoints import RoundsConfig, learn_file

    cfg = RoundsConfig.from_dict(config)
    (out / "keypoints.npz").unlink(missing_ok=True)  # a rerun that is refused must not leave an old file
    try:
        res = learn_file(_need(inputs, "fits", "learn_keypoints"), out / "keypoints.npz", cfg)
    except UserError as err:  # too few fits, or no better than the body's own: later steps use the body's
        log.warning("learn_keypoints: %s; later steps use the body's own keypoints", err)
        return {"keypoints": None, "refused": str(err)}
    return {"keypoints": str(out / "keypoints.npz"), "heldout_before": res.before, "heldout_after": res.after}


def _backgrounds(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    from syrip_gen.backgrounds import BackgroundsConfig, extract_backgrounds

    return _as_dict(extract_backgrounds(_need(inputs, "dataset", "backgrounds"), out, BackgroundsConfig.from_dict(config)))


def _render(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Optional input ``backgrounds``: a backgrounds step (or a folder of photos)."""
    from syrip_gen.dataset import RenderConfig, render_dataset

    extra = {"backgrounds": str(inputs["backgrounds"])} if "backgrounds" in inputs else {}
    extra.update(_keypoints(inputs))
    cfg = RenderConfig.from_dict({**config, **extra, "force": True})  # key changed: old shards are stale
    return _as_dict(render_dataset(_need(inputs, "fits", "render") / "fits.jsonl", out, cfg))


def _sequence(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Clips of moving infants; with the per-clip gates on, later steps read the whole clips that
    passed (``filtered.json`` points at them, as a filter step's does)."""
    from syrip_gen.coco import atomic_write_json
    from syrip_gen.render.clips import ClipConfig, render_clips

    cfg = ClipConfig.from_dict({**config, **_keypoints(inputs), "force": True})
    summary = render_clips(_need(inputs, "fits", "sequence") / "fits.jsonl", out, cfg)
    if summary.filtered_path:
        atomic_write_json(out / "filtered.json", {"coco": summary.filtered_path, "n_kept": summary.clips_kept,
                                                  "n_images": summary.frames})
    return _as_dict(summary)


def _filter(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """The filtered COCO file goes into the step's own folder (its images stay where they are,
    named by absolute path), with ``filtered.json`` pointing at it (see :func:`_dataset_of`)."""
    from syrip_gen.coco import dataset_json, filtered_name
    from syrip_gen.filter import FilterConfig, filter_dataset

    fits = inputs.get("fits")
    dataset = _need(inputs, "dataset", "filter")
    report = filter_dataset(dataset, FilterConfig.from_dict(config),
                            fits_path=fits / "fits.jsonl" if fits else None, out_dir=out,
                            out=out / filtered_name(dataset_json(dataset)).name,
                            keypoints=_keypoints(inputs).get("keypoints"), whole_clips=True)
    return _as_dict(report)


def _stats(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    from syrip_gen.stats import dataset_stats

    return dataset_stats(_dataset_of(_need(inputs, "dataset", "stats")), out,
                         compare=inputs.get("compare"), ceiling=inputs.get("ceiling"))


def _train(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Every input role but ``val`` and ``init`` is a training source (``config.weights`` maps
    role -> weight); ``init`` is an earlier train step whose model starts this one (pretrain on
    synthetic, fine-tune on real)."""
    from pose_models.config import TrainConfig
    from pose_models.train import train

    cfg = dict(config)
    weights = cfg.pop("weights", {}) or {}
    sources = [{"path": str(_dataset_of(p)), "weight": float(weights.get(role, 1.0))}
               for role, p in sorted(inputs.items()) if role not in ("val", "init")]
    val = inputs.get("val")
    cfg.update(train=sources, out_dir=str(out), val=str(_dataset_of(val)) if val else None)
    if "init" in inputs:
        if inputs["init"].is_dir():  # an earlier step's model: never pretrained elsewhere, so FiDIP freezes nothing
            cfg.setdefault("freeze_early", False)
        ckpt = _checkpoint_of(inputs["init"])  # 2D models start from the backbone + head only (no DA classifier)
        pose2d = cfg.get("task") == "pose2d"
        cfg["init"] = str(_as_simplebaselines(ckpt, out / "init_simplebaselines.pt") if pose2d else ckpt)
    ckpt = train(TrainConfig.from_dict(cfg))
    from pose_models.checkpoint import read_checkpoint

    ck = read_checkpoint(ckpt)  # the numeric path the run chose (device.py) goes into step.json
    return {"checkpoint": str(ckpt), **{k: ck[k] for k in ("precision", "channels_last", "images_per_s") if k in ck}}


MODEL_ROLES = ("model", "detector", "init")  # inputs that are a trained model: a checkpoint, a train step or folder


def _checkpoint_of(path: Path) -> Path:
    """A train step's output dir -> the final checkpoint its manifest names; a ``train --out``
    folder -> its last checkpoint (issue 34, C51); a file as is. One-line UserError for a folder
    that is neither."""
    if not path.is_dir():
        return path
    if (path / MANIFEST).is_file():
        return Path(json.loads((path / MANIFEST).read_text())["summary"]["checkpoint"])
    found = sorted((path / "checkpoints").glob("step_*.pt"))
    if not found:
        raise UserError(f"{path}: a folder with no checkpoints (checkpoints/step_*.pt); give a checkpoint file, "
                        "the --out folder of `syrip-gen train` or a train step")
    return found[-1]


def _as_simplebaselines(checkpoint: Path, out: Path) -> Path:
    """Our pose2d checkpoint as a SimpleBaselines-layout state dict (``conv1..layer4``,
    ``deconv_layers``, ``final_layer``), which ``TrainConfig.init`` loads strictly."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    plain = {k.removeprefix("backbone."): v for k, v in state.items() if not k.startswith("domain_classifier.")}
    torch.save(plain, out)
    return out


def _evaluate(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """Optional inputs ``calibration``: real images to recompute BatchNorm statistics on (AdaBN);
    ``detector``: a detector train step whose boxes replace the ground truth (with ``boxes: detector``)."""
    from pose_models.evaluate import evaluate

    ckpt = _checkpoint_of(_need(inputs, "model", "evaluate"))
    calibration = _dataset_of(inputs["calibration"]) if "calibration" in inputs else None
    extra = {"detector": _checkpoint_of(inputs["detector"])} if "detector" in inputs else {}
    metrics = evaluate(ckpt, _dataset_of(_need(inputs, "dataset", "evaluate")), bn_calibration=calibration,
                       **extra, **config)
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def _curve(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    """A learning curve: every checkpoint the ``model`` train step kept (its ``keep_every``), evaluated."""
    from pose_models.evaluate import evaluate_along

    rows = evaluate_along(_need(inputs, "model", "curve"), _dataset_of(_need(inputs, "dataset", "curve")), **config)
    atomic_write_json(out / "curve.json", rows)
    return {"points": len(rows), "last": rows[-1]}


def _subset(config: dict, inputs: dict[str, Path], out: Path) -> dict:
    from syrip_gen.subset import SubsetConfig, write_subset

    return write_subset(_dataset_of(_need(inputs, "dataset", "subset")), out, SubsetConfig.from_dict(config))


def _dataset_of(path: Path) -> Path:
    """A filter step's output points at the filtered COCO file it wrote, a subset step's holds
    ``subset.json``; else the path itself."""
    manifest = path / "filtered.json"
    if manifest.exists():
        return Path(json.loads(manifest.read_text())["coco"])
    if (path / "subset.json").exists():
        return path / "subset.json"
    return path


def _as_dict(obj) -> dict:
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return json.loads(json.dumps(dataclasses.asdict(obj), default=str))
    return dict(obj or {})


STAGES: dict[str, Callable[[dict, dict, Path], dict]] = {kind: lazy(st.runner) for kind, st in REGISTRY.items()}
