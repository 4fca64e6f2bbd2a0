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
folder holds (train: the latest checkpoint), moves the folder's work aside first (``<out>/.superseded/``) when it holds another
key's work, so a changed spec never continues an old run's model.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


from syrip_gen.atomic import atomic_write_json
from syrip_gen.codehash import code_version
from syrip_gen.errors import UserError
from syrip_gen.pipespec import Spec, Step, inputs_replacing, load_spec, profile_overrides  # noqa: F401 - the runner's API
from syrip_gen.runfolder import LOCK_FILE
from syrip_gen.stepio import MANIFEST, MODEL_ROLES, checkpoint_of as _checkpoint_of, dataset_of as _dataset_of  # noqa: F401
from syrip_gen.stages import REGISTRY, lazy

log = logging.getLogger(__name__)
OUTPUTS = "outputs.json"
STARTED = ".step-started.json"  # the key of the step's last started run (see _start)


@dataclass
class PlannedStep:
    step: Step
    key: str
    inputs: dict[str, Path]  # role -> resolved path
    out_dir: Path
    done: bool


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
    steps, "ran"): when its folder holds work of another key, that work is moved aside first
    (:func:`_set_aside`: hours of training are not deleted for an edited spec), and a folder of
    files no run of this step made is refused."""
    out = ps.out_dir
    if REGISTRY[ps.step.kind].resumes and out.is_dir():
        held = _work_key(out)
        if held is _FOREIGN:
            raise UserError(f"{out} holds files that no run of step {ps.step.name!r} recorded (an interrupted run "
                            "from an older syrip-gen, or files of your own); refusing to resume or delete them: "
                            "move them away, or choose another --out")
        if held is not None and held != ps.key:
            _set_aside(out, held)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / STARTED, {"key": ps.key, "kind": ps.step.kind})


_FOREIGN = object()
SUPERSEDED = ".superseded"  # <out>/.superseded/<step>/<key>/: work of a step's earlier key, set aside


def _set_aside(out: Path, key: str) -> Path:
    """Move everything in step folder ``out`` but its lock into ``<out>/../.superseded/<step>/<key>``
    (one rename each, same file system) and say so; returns that folder."""
    aside = out.parent / SUPERSEDED / out.name / key
    n = 1
    while aside.exists():
        n += 1
        aside = aside.with_name(f"{key}.{n}")
    aside.mkdir(parents=True)
    for entry in out.iterdir():
        if entry.name != LOCK_FILE:
            entry.rename(aside / entry.name)
    log.warning("step %s: its folder held the work of another step key (%s); moved to %s (delete it when no "
                "longer needed), starting afresh", out.name, key, aside)
    return aside


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


def _check_none(kind: str) -> Callable[[dict], None]:
    def check(config: dict) -> None:
        if config:
            raise UserError(f"{kind} config: unknown key(s) {', '.join(sorted(config))}; a {kind} step takes none")
    return check


CONFIG_CHECKS: dict[str, Callable[[dict], None]] = {
    kind: lazy(st.check) if st.check else _check_none(kind) for kind, st in REGISTRY.items()}


STAGES: dict[str, Callable[[dict, dict, Path], dict]] = {kind: lazy(st.runner) for kind, st in REGISTRY.items()}
