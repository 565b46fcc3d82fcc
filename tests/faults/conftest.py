"""The fault suites share one world (tests/faults/world.py), built once per session."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    from world import build_world

    with contextlib.redirect_stderr(io.StringIO()):
        return build_world(tmp_path_factory.mktemp("faults") / "world")
