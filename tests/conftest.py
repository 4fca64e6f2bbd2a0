"""Shared fixtures: the Anny body (built once into the project cache), the real-data paths, the one
toy run of the ablation spec; and the ``slow`` lane (``make test-fast`` runs ``-m "not slow"``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

# Tests live in room folders (body/, fit/, render/, clips/, filter/, pose_models/, pipeline/, house/), with no
# __init__.py, so pytest imports each test file by its plain name (names are unique across rooms). tests/ and
# every room are put on sys.path, so `helpers.<module>` (tests/helpers/) and a test module by its plain name
# (`from test_filter import PLANTED`: the module pytest collects) import the same from any room.
TESTS = Path(__file__).resolve().parent
for _folder in (TESTS, *sorted(p for p in TESTS.iterdir() if p.is_dir() and any(p.glob("test_*.py")))):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

# Tests of the full lane only (`make test`, CI), by file name (without its room folder) and test name
# prefix, and why. Kept here rather than as marks in each file so the list is one place to read; an entry
# that names no test file, or no test of a collected file, is an error. (Also `slow`, marked in their
# files: the two learn-keypoints runs in test_keypoints.py and the SIGKILL resume test in test_safety.py.)
# Measured 2026-12-07 on the shared 2-core EPYC at load 9-16, files four at a time, OMP_NUM_THREADS=1
# (wall, CPU in brackets): the ablation toy run 14.6 min (7 min) on stand-ins and over 40 min on the real
# sets; test_pose_train.py over 20 min (over 2.7 min: stopped at 20 min); the demo toy 1-3 min; the planted
# goldens 1.3 min.
SLOW = {
    "test_recipes.py": "toy syrip.yaml, and the ablation toy run's checks on the real sets",
    "test_ablation_spec.py::test_dry_gpu_run": "the ablation toy run (shared with test_recipes)",
    "test_ablation_spec.py::test_fidip_from_an_earlier_step": "the ablation toy run",
    "test_ablation_spec.py::test_rerun_of_the_finished_dry_run": "the ablation toy run",
    "test_demo_pipeline.py": "demo.yaml at toy size",
    "test_pose_train.py::test_pose2d_loss": "trains models (module fixtures: about twenty short trainings)",
    "test_pose_train.py::test_detector_loss": "trains models (module fixtures: about twenty short trainings)",
    "test_pose_train.py::test_domain_adaptation_": "trains models (module fixtures: about twenty short trainings)",
    "test_pose_train.py::test_lifter_": "trains models (module fixtures: about twenty short trainings)",
    "test_pose_train.py::test_evaluate_with": "trains models (module fixtures: about twenty short trainings)",
    "test_pose_train.py::test_predict_writes": "trains models (module fixtures: about twenty short trainings)",
    "test_pose_train.py::test_bad_input_is_counted": "trains models (module fixtures: about twenty short trainings)",
    "test_golden.py::test_planted_": "each plants a change and reruns a render or fit to see the golden fail",
    # from the fast lane's --durations (2026-12-07, 538 s wall at load 1-8, 0.52 cores on average; see below)
    "test_shipped_models.py::test_finetune_recipe_": "finetune.yaml at toy size (49 s under load)",
    "test_shipped_models.py::test_pretrain_spec_": "pretrain.yaml at toy size (24 s under load)",
    "test_pose_train.py::test_a_resumed_run_continues_": "three short trainings (35 s under load)",
    "test_readme.py::test_your_own_data_commands_run_": "the README's fit, backgrounds, render, filter at toy size "
                                                         "(27 s under load)",
}
# The fast lane (`make test-fast`) without these four: 487 tests, 538 - 135 = 403 s wall measured under load;
# the run took 282 s of CPU in all (0.52 cores), so on a quiet 2-core machine about 210-230 s (3.5-3.9 min).


def pytest_collection_modifyitems(config, items):
    modules = {}
    for item in items:
        path, sep, rest = item.nodeid.partition("::")
        modules[Path(path).name] = getattr(item, "module", None)
        if any((Path(path).name + sep + rest).startswith(prefix) for prefix in SLOW):
            item.add_marker(pytest.mark.slow)
    # an entry naming no test file in any room, or no function of its (collected) module: renamed or gone,
    # so it marks nothing
    files = {p.name for p in TESTS.rglob("test_*.py")}
    stale = [p for p in SLOW if p.split("::")[0] not in files
             or "::" in p and modules.get(p.split("::")[0]) is not None
             and not any(name.startswith(p.split("::")[1]) for name in dir(modules[p.split("::")[0]]))]
    if stale:
        raise pytest.UsageError(f"tests/conftest.py SLOW names no test: {', '.join(stale)}")


@pytest.fixture(scope="session")
def anny_body():
    from syrip_gen.body import load_body

    return load_body("anny")


def _shared_split(split: str):
    from syrip_gen.paths import shared_syrip

    path = shared_syrip(split)
    if not path.exists():
        pytest.skip(f"real SyRIP data not found at {path} (research-only; CI has it beside the clone)")
    return path


@pytest.fixture(scope="session")
def syrip_train():
    return _shared_split("train200")


@pytest.fixture(scope="session")
def syrip_validate():
    return _shared_split("validate100")


@dataclass(frozen=True)
class AblationToy:
    """The finished toy run: ``out`` holds ``run/`` (the pipeline's steps), ``results.json`` and
    ``device_out/``; ``data``: the spec paths replaced (stand-ins), empty on the real sets."""

    proc: subprocess.CompletedProcess
    out: Path
    real: bool
    data: dict

    @property
    def run(self) -> Path:
        return self.out / "run"

    @property
    def results(self) -> dict:
        return json.loads((self.out / "results.json").read_text())


@pytest.fixture(scope="session")
def ablation_toy(tmp_path_factory) -> AblationToy:
    """pipelines/ablation.yaml at toy size, run once per test session (it is the slowest thing the
    tests do) through the GPU driver's ``--dry`` mode, so one run checks the driver and the recipe:
    on the real sets where the spec finds them (``../shared/data/syrip``: CI), else on drawn stand-ins.
    """
    from syrip_gen.paths import REPO_ROOT, shared_syrip

    spec_data = REPO_ROOT.parent / "shared" / "data" / "syrip"
    real = all((spec_data / s).is_dir() and shared_syrip(s).resolve() == (spec_data / s).resolve()
               for s in ("train200", "validate100"))
    out = tmp_path_factory.mktemp("ablation_toy")
    (out / "device_out").mkdir()
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "2",
           "OUT": str(out / "device_out")}  # OUT: where the device machine collects what it returns
    cmd = ["bash", str(REPO_ROOT / "scripts" / "gpu_ablation.sh"), "--dry", "--out", str(out)]
    proc = subprocess.run(cmd + (["--real"] if real else []), env=env, capture_output=True, text=True,
                          timeout=2400)
    data = {} if real else {"../shared/data/syrip/train200": str(out / "stand_ins" / "real_train"),
                            "../shared/data/syrip/validate100": str(out / "stand_ins" / "real_test")}
    return AblationToy(proc, out, real, data)
