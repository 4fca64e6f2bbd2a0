"""Shared fixtures: the Anny body (built once into the project cache) and the real-data paths."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


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
