"""Shared fixtures: the Anny body (built once into the project cache) and the real-data paths."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


@pytest.fixture(scope="session")
def anny_body():
    from syrip_gen.body import load_body

    return load_body("anny")


@pytest.fixture(scope="session")
def syrip_train():
    from syrip_gen.paths import shared_syrip

    path = shared_syrip("train200")
    if not path.exists():
        pytest.skip(f"real SyRIP data not found at {path} (research-only; CI has it beside the clone)")
    return path


@pytest.fixture(scope="session")
def syrip_validate():
    from syrip_gen.paths import shared_syrip

    path = shared_syrip("validate100")
    if not path.exists():
        pytest.skip(f"real SyRIP data not found at {path} (research-only; CI has it beside the clone)")
    return path
